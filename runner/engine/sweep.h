// What dead runs left behind: container slots, cgroups, outbound network stacks.
#pragma once

#include <set>
#include <string>

namespace sandrun::runner {

// Cleans what dead runs left behind (and, with `remove_idle`, deletes idle container slots),
// reporting it on stderr. The cgroups of containers a live-restore daemon of `root` left
// running (Engine::next_cgroup: "live-<tag>-...") go too, but those `keep_live` names; null:
// all of them while a daemon holds the root, none else (their processes are ended through
// their slots then: a sweep while no daemon holds the root ends what a live restore left).
void sweep_and_report(const std::string& root, bool remove_idle, const std::set<std::string>* keep_live = nullptr);
// Whether a `sandrun serve` holds `root` now (its serve.lock).
bool daemon_holds(const std::string& root);

}  // namespace sandrun::runner
