// StartBudget: at most N containers of the daemon run at once (`sandrun serve -j N`); a start
// over the budget waits its turn, first come first served, as `sandrun run`'s scheduler queues
// its jobs. Pure bookkeeping on the loop thread: the registry says when a run begins and ends.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <string>

namespace sandrun::runner {

class StartBudget {
 public:
  // 0: no limit (Docker's behaviour).
  explicit StartBudget(size_t max = 0) : max_(max) {}
  size_t max() const { return max_; }
  size_t in_use() const { return in_use_; }
  size_t waiting() const { return queue_.size(); }
  bool queued(const std::string& id) const;

  // Calls `go` now when there is room (taking one place), else once a place is released. An
  // id is queued at most once (a second admit while queued is a caller bug and is ignored).
  void admit(const std::string& id, std::function<void()> go);
  // A run that took a place has ended: the place goes to the first queued start.
  void release();
  // A queued start is given up (stopped, removed, the daemon shutting down): true when it was
  // queued; its `go` is dropped.
  bool withdraw(const std::string& id);

 private:
  struct Waiting {
    std::string id;
    std::function<void()> go;
  };
  size_t max_;
  size_t in_use_ = 0;
  std::deque<Waiting> queue_;
};

}  // namespace sandrun::runner
