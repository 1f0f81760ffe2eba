// Loading the embedded sandrun-init into a sealed, executable memfd.
//
// Containers execute init from this memfd (execveat AT_EMPTY_PATH), so /proc/1/exe inside a
// container is a sealed anonymous file: a container cannot overwrite a host binary through it
// (runc's CVE-2019-5736).
#include "sandbox/init_binary.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <mutex>

#include "sandbox/sys/fs.h"

extern "C" const unsigned char sandrun_init_blob[];
extern "C" const unsigned char sandrun_init_blob_end[];

namespace sandrun::sandbox {
namespace {

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

Result<int> create() {
  // MFD_EXEC (Linux 6.3+) keeps the memfd executable where vm.memfd_noexec asks for noexec
  // by default; older kernels reject the flag and are executable anyway.
  int fd = ::memfd_create("sandrun-init", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  if (fd < 0 && errno == EINVAL) fd = ::memfd_create("sandrun-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return Error::sys("memfd_create for sandrun-init");
  UniqueFd owner(fd);
  std::string_view blob(reinterpret_cast<const char*>(sandrun_init_blob),
                        static_cast<size_t>(sandrun_init_blob_end - sandrun_init_blob));
  SANDRUN_TRY(fs::write_all(fd, blob).wrap("write sandrun-init to its memfd"));
  if (::fchmod(fd, 0555) < 0) return Error::sys("chmod sandrun-init memfd");
  if (::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
    return Error::sys("seal sandrun-init memfd");
  return owner.release();
}

}  // namespace

Result<int> init_memfd() {
  static std::mutex mutex;
  static int fd = -1;
  std::lock_guard lock(mutex);
  if (fd >= 0) return fd;
  auto r = create();
  if (!r) return std::move(r).error();
  fd = *r;
  return fd;
}

}  // namespace sandrun::sandbox
