// UvHandle<T>: the one owner of a libuv handle. Its destructor calls uv_close and the memory
// is freed in the close callback, so an owner may go away at any time, callbacks included.
#pragma once

#include <uv.h>

#include <utility>

namespace sandrun::runner {

template <typename T>
class UvHandle {
 public:
  UvHandle() : h_(new T{}) {}
  ~UvHandle() { close(); }
  UvHandle(UvHandle&& o) noexcept : h_(std::exchange(o.h_, nullptr)), live_(std::exchange(o.live_, false)) {}
  UvHandle& operator=(UvHandle&& o) noexcept {
    if (this != &o) {
      close();
      h_ = std::exchange(o.h_, nullptr);
      live_ = std::exchange(o.live_, false);
    }
    return *this;
  }
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;

  T* get() { return h_; }
  uv_handle_t* handle() { return reinterpret_cast<uv_handle_t*>(h_); }
  // Call after a successful uv_*_init: from then on closing goes through uv_close.
  void mark_live() { live_ = true; }
  bool live() const { return live_; }

  void close() {
    if (!h_) return;
    if (live_) {
      if (!uv_is_closing(handle())) {
        uv_close(handle(), [](uv_handle_t* h) { delete reinterpret_cast<T*>(h); });
      }
    } else {
      delete h_;
    }
    h_ = nullptr;
    live_ = false;
  }

 private:
  T* h_;
  bool live_ = false;
};

}  // namespace sandrun::runner
