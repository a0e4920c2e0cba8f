// Internal to the INI reader (config.cpp): the [telemetry] section (SPEC section 6).
#pragma once
#include "core/config_values.h"

namespace ew {
namespace ini {

enum TelemetryKey { T_MQTT_URL, T_DEVICE_ID, T_USERNAME, T_PASSWORD_FILE, T_CA_FILE, T_TOPIC_PREFIX, T_INTERVAL,
                    T_QUEUE_MAX, T_PASSWORD_CREDENTIAL, T_COUNT };
extern const char* const kTelemetryKeys[T_COUNT];

// Keys whose value may be empty (device_id: the host name; username, password_file,
// password_credential, ca_file: none).
bool telemetry_empty_ok(int k);
bool telemetry_key(Ctx& c, TelemetryConfig& t, int k, Span v);
// The checks that need the whole section; seen[k] = line of key k (0 = absent), header = line of [telemetry].
void telemetry_finish(Ctx& c, TelemetryConfig& t, const uint32_t* seen, uint32_t header);

}  // namespace ini
}  // namespace ew
