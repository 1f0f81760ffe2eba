// SharedLib: dlopen once, resolve symbols, remember why it failed.
#include "sandbox/sys/dl.h"

#include <dlfcn.h>

namespace sandrun::sys {

bool SharedLib::open() {
  handle_ = ::dlopen(soname_, RTLD_NOW | RTLD_LOCAL);
  if (handle_) return true;
  const char* why = ::dlerror();
  fail(why ? why : fmt::format("dlopen {} failed", soname_));
  return false;
}

void* SharedLib::address(const char* symbol) {
  void* p = handle_ ? ::dlsym(handle_, symbol) : nullptr;
  if (!p) fail(fmt::format("{} has no {}", soname_, symbol));
  return p;
}

void SharedLib::fail(std::string why) {
  if (error_.empty()) error_ = why.empty() ? std::string("unknown error") : std::move(why);
}

Result<void> SharedLib::outcome() const {
  if (error_.empty()) return {};
  return Error::msg("cannot load {}: {}", name_, error_).hint(fmt::format("install it with: apt-get install {}", package_));
}

}  // namespace sandrun::sys
