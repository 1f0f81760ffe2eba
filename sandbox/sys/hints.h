// Known causes of system errors, shared by the error renderer and `sandrun doctor`.
#pragma once

#include <string>

namespace sandrun {

// Advice for an errno that has one well-known cause in sandrun's context, or "".
// Specific call sites attach sharper hints with Error::hint(); this is the fallback.
std::string hint_for_errno(int code);

}  // namespace sandrun
