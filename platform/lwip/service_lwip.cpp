// The service manager on an lwIP device: none. A firmware's own supervisor (a hardware
// watchdog fed from the loop, say) would hook in here; the agent calls these at the same
// points as on Linux (ready, reloading, stopping, and every watchdog interval).
#include "pal.h"

namespace pal {

void service_notify(ServiceState, const char*) {}

uint64_t service_watchdog_interval_ms() { return 0; }

}  // namespace pal
