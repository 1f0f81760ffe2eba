// The daemon's `-j` budget: places taken by running containers, a queue of the others.
#include "runner/engine/start_budget.h"

#include <algorithm>

namespace sandrun::runner {

bool StartBudget::queued(const std::string& id) const {
  return std::any_of(queue_.begin(), queue_.end(), [&](const Waiting& w) { return w.id == id; });
}

void StartBudget::admit(const std::string& id, std::function<void()> go) {
  if (max_ == 0 || in_use_ < max_) {
    ++in_use_;
    return go();
  }
  if (queued(id)) return;
  queue_.push_back(Waiting{id, std::move(go)});
}

void StartBudget::release() {
  if (in_use_ > 0) --in_use_;
  // The place is taken before `go` runs: a `go` that fails at once and releases it again
  // (re-entering here) hands it on to the next one in turn.
  while (!queue_.empty() && (max_ == 0 || in_use_ < max_)) {
    Waiting w = std::move(queue_.front());
    queue_.pop_front();
    ++in_use_;
    w.go();
  }
}

bool StartBudget::withdraw(const std::string& id) {
  auto it = std::find_if(queue_.begin(), queue_.end(), [&](const Waiting& w) { return w.id == id; });
  if (it == queue_.end()) return false;
  queue_.erase(it);
  return true;
}

}  // namespace sandrun::runner
