// The sealed memfd holding sandrun-init, the PID 1 of every container.
#pragma once

#include "sandbox/sys/result.h"

namespace sandrun::sandbox {

// A descriptor (O_CLOEXEC, owned by the process) of a sealed memfd containing the static
// sandrun-init binary embedded in sandrun. Created on first use.
Result<int> init_memfd();

}  // namespace sandrun::sandbox
