// Timer over a uv_timer_t owned by UvHandle.
#include "runner/loop/timer.h"

#include "runner/loop/uv_handle.h"

namespace sandrun::runner {

struct Timer::Impl {
  UvHandle<uv_timer_t> handle;
  std::function<void()> f;
};

Timer::Timer(Loop& loop) : impl_(std::make_unique<Impl>()) {
  if (uv_timer_init(loop.get(), impl_->handle.get()) == 0) impl_->handle.mark_live();
  impl_->handle.get()->data = impl_.get();
}

Timer::~Timer() = default;  // UvHandle closes the handle: no callback after this

void Timer::start(std::chrono::milliseconds after, std::function<void()> f) {
  impl_->f = std::move(f);
  uv_timer_start(
      impl_->handle.get(),
      [](uv_timer_t* t) {
        auto* impl = static_cast<Impl*>(t->data);
        auto f = std::move(impl->f);
        impl->f = nullptr;
        if (f) f();  // may destroy the Timer: nothing of it is used after
      },
      static_cast<uint64_t>(std::max<int64_t>(0, after.count())), 0);
}

void Timer::stop() {
  uv_timer_stop(impl_->handle.get());
  impl_->f = nullptr;
}

}  // namespace sandrun::runner
