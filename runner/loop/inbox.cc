// Inbox: a uv_async_t and a queue under a mutex.
#include "runner/loop/inbox.h"

namespace sandrun::runner {

Inbox::Inbox(Loop& loop) : shared_(std::make_shared<Shared>()) {
  if (uv_async_init(loop.get(), handle_.get(), on_async) < 0) return;
  handle_.mark_live();
  handle_.get()->data = this;
  shared_->async = handle_.get();
}

Inbox::~Inbox() {
  std::lock_guard lock(shared_->mu);
  shared_->async = nullptr;  // no uv_async_send after this: the handle closes below
  shared_->queue.clear();
}

Inbox::Post Inbox::poster() const {
  return [s = shared_](std::function<void()> f) {
    std::lock_guard lock(s->mu);
    if (!s->async) return;
    s->queue.push_back(std::move(f));
    uv_async_send(s->async);
  };
}

void Inbox::run_pending() {
  std::vector<std::function<void()>> now;
  {
    std::lock_guard lock(shared_->mu);
    now.swap(shared_->queue);
  }
  for (auto& f : now) f();  // may destroy this inbox: nothing of it is used after
}

void Inbox::on_async(uv_async_t* h) { static_cast<Inbox*>(h->data)->run_pending(); }

void Inbox::unref() {
  if (handle_.live()) uv_unref(reinterpret_cast<uv_handle_t*>(handle_.get()));
}

}  // namespace sandrun::runner
