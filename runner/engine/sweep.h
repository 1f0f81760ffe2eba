// What dead runs left behind: container slots, cgroups, outbound network stacks.
#pragma once

#include <string>

namespace sandrun::runner {

// Cleans what dead runs left behind (and, with `remove_idle`, deletes idle container slots),
// reporting it on stderr.
void sweep_and_report(const std::string& root, bool remove_idle);

}  // namespace sandrun::runner
