// libarchive, loaded on first use. Only image imports need it, and loading it at every start
// (with libxml2 and ICU behind it, about 1.3 ms here) would cost more than starting a container.
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include "sandbox/sys/result.h"

namespace sandrun::cache {

#define SANDRUN_ARCHIVE_FUNCTIONS(X)                                                              \
  X(archive_entry_filetype) X(archive_entry_free) X(archive_entry_gid) X(archive_entry_hardlink)  \
  X(archive_entry_mtime) X(archive_entry_mtime_is_set) X(archive_entry_mtime_nsec)                \
  X(archive_entry_new) X(archive_entry_pathname) X(archive_entry_pathname_utf8)                   \
  X(archive_entry_perm) X(archive_entry_rdevmajor) X(archive_entry_rdevminor)                     \
  X(archive_entry_set_filetype) X(archive_entry_set_gid)                                          \
  X(archive_entry_set_mtime) X(archive_entry_set_pathname) X(archive_entry_set_perm)              \
  X(archive_entry_set_size) X(archive_entry_set_symlink) X(archive_entry_set_uid)                 \
  X(archive_entry_size) X(archive_entry_size_is_set) X(archive_entry_symlink)                     \
  X(archive_entry_symlink_utf8) X(archive_entry_uid) X(archive_entry_xattr_next)                  \
  X(archive_entry_xattr_reset) X(archive_errno) X(archive_error_string) X(archive_filter_code) X(archive_read_data)      \
  X(archive_read_data_block) X(archive_read_free) X(archive_read_new) X(archive_read_next_header) \
  X(archive_read_open) X(archive_read_open_fd) X(archive_read_support_format_raw) X(archive_read_support_format_tar)      \
  X(archive_read_support_filter_gzip) X(archive_read_support_filter_bzip2)                        \
  X(archive_read_support_filter_xz) X(archive_read_support_filter_lzma)                           \
  X(archive_read_support_filter_zstd) X(archive_read_support_filter_lz4) X(archive_set_error)     \
  X(archive_write_close) X(archive_write_data) X(archive_write_free) X(archive_write_header)      \
  X(archive_write_new) X(archive_write_open_fd) X(archive_write_set_format_pax_restricted)       \
  X(archive_write_set_format_raw) X(archive_write_add_filter_gzip) X(archive_write_add_filter_zstd)

// The libarchive functions sandrun uses, resolved from the shared library.
struct ArchiveLib {
#define SANDRUN_ARCHIVE_MEMBER(name) decltype(&::name) name = nullptr;
  SANDRUN_ARCHIVE_FUNCTIONS(SANDRUN_ARCHIVE_MEMBER)
#undef SANDRUN_ARCHIVE_MEMBER
};

// Loads libarchive (once, thread-safe). Every entry point that reads or writes archives calls
// this first and returns its error; an installation without libarchive13 can still run
// containers.
Result<void> load_archive_lib();
// The loaded functions; only valid after load_archive_lib() succeeded.
const ArchiveLib& arc();

// archive_error_string() or "unknown error".
const char* archive_text(struct archive* a);

}  // namespace sandrun::cache
