// SharedLib: a shared library loaded on first use (dlopen once, thread-safe), for the optional
// dependencies (libarchive, libcurl, libxml2) that only some commands need.
#pragma once

#include <mutex>
#include <string>

#include "sandbox/sys/result.h"

namespace sandrun::sys {

// One soname, opened RTLD_NOW | RTLD_LOCAL (its symbols, and its dependencies', stay out of the
// global namespace) at the first load() and never closed. Meant to be a namespace-scope object.
class SharedLib {
 public:
  // `soname` is what dlopen gets ("libcurl.so.4"); `name` is how errors call it ("libcurl");
  // `package` is the Debian package a hint tells the user to install ("libcurl4").
  SharedLib(const char* soname, const char* name, const char* package)
      : soname_(soname), name_(name), package_(package) {}
  SharedLib(const SharedLib&) = delete;
  SharedLib& operator=(const SharedLib&) = delete;

  // Opens the library and calls `fill(*this)` once, whatever the number of threads calling;
  // `fill` resolves the symbols (resolve()) and may run the library's own initialisation,
  // failing with fail(). Every call returns the outcome of the first:
  //   cannot load libcurl: libcurl.so.4: cannot open shared object file ... (+ install hint)
  template <typename Fill>
  Result<void> load(Fill&& fill) {
    std::call_once(once_, [&] {
      if (open()) fill(*this);
    });
    return outcome();
  }

  // Sets `out` to the symbol `symbol`; a missing one fails the load (the first failure is the
  // one reported). For use inside load()'s `fill`.
  template <typename F>
  bool resolve(F*& out, const char* symbol) {
    out = reinterpret_cast<F*>(address(symbol));
    return out != nullptr;
  }
  // Fails the load with `why` (unless it failed already).
  void fail(std::string why);
  bool ok() const { return error_.empty(); }

 private:
  bool open();
  void* address(const char* symbol);
  Result<void> outcome() const;

  const char* soname_;
  const char* name_;
  const char* package_;
  std::once_flag once_;
  void* handle_ = nullptr;
  std::string error_;  // empty: loaded
};

}  // namespace sandrun::sys
