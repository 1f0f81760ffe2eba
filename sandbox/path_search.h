// execvp's PATH search without libc or allocation, shared by the sandbox child (no init) and
// the freestanding sandrun-init. Uses nothing but loops: it must compile without a libc.
#pragma once

#include <cstddef>

namespace sandrun::sandbox {

// Tries `file` in each entry of `path` (":"-separated; an empty entry is "."), or `file` itself
// when it contains a '/'. `exec(full_path)` performs the execve and returns its errno (it
// returns only on failure). Returns the errno to report: EACCES if some candidate was not
// executable, else ENOENT, or the first other error, as execvp does.
template <typename Exec>
int search_path(const char* file, const char* path, Exec exec) {
  constexpr int kEnoent = 2, kEacces = 13, kEnotdir = 20, kEnodev = 19, kEstale = 116;
  size_t flen = 0;
  bool has_slash = false;
  for (; file[flen]; ++flen) has_slash = has_slash || file[flen] == '/';
  if (has_slash) return exec(file);
  char buf[4096];
  bool eacces = false;
  for (const char* s = path;;) {
    const char* e = s;
    while (*e && *e != ':') ++e;
    const size_t dlen = static_cast<size_t>(e - s);
    if (dlen + flen + 2 <= sizeof buf) {
      size_t off = 0;
      for (; off < dlen; ++off) buf[off] = s[off];
      if (off == 0) buf[off++] = '.';
      buf[off++] = '/';
      for (size_t i = 0; i <= flen; ++i) buf[off + i] = file[i];
      const int err = exec(buf);
      if (err == kEacces) {
        eacces = true;
      } else if (err != kEnoent && err != kEnotdir && err != kEstale && err != kEnodev) {
        return err;
      }
    }
    if (!*e) break;
    s = e + 1;
  }
  return eacces ? kEacces : kEnoent;
}

}  // namespace sandrun::sandbox
