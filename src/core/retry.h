// The attempt policy: which outcomes fail over, back-off before re-trying an endpoint,
// Retry-After parsing. Pure: no clock (HTTP-dates are read against the response's own Date
// header, since a device often has no true wall clock), no allocation.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "core/health.h"

namespace ew {

enum class AttemptVerdict : uint8_t {
    success,           // 2xx: relay it
    retry_next,        // connect, tls, timeout, bad_response, 408, 429, 5xx: next candidate
    key_bad_failover,  // 401, 403: mark the endpoint's key bad, next candidate
    return_to_client,  // 400, 404, 422, other 4xx (and 1xx/3xx): relay it unchanged
};

// `http_status` is read when kind is http_status, or ok with a status set (0 = none).
// http_status with status 0 counts as a bad response.
AttemptVerdict classify_attempt(ResultKind kind, uint16_t http_status);
const char* to_string(AttemptVerdict v);  // "success", "retry_next", "key_bad_failover", "return_to_client"

// Jittered exponential back-off before retry number `retry_index` (0-based) of the same
// endpoint. "Equal jitter": with cap = min(max_ms, base_ms * 2^retry_index) the result is
// uniform in [cap/2, cap] from `rng` (any 32-bit random value), so it is never 0 unless cap
// is 0 and never above max_ms.
uint32_t backoff_ms(uint32_t retry_index, uint32_t base_ms, uint32_t max_ms, uint32_t rng);

// max(backoff_ms(...), retry_after_ms), capped at remaining_ms (time left before the
// request's deadline). retry_after_ms = 0 when the response had none.
uint32_t backoff_with_retry_after(uint32_t retry_index, uint32_t base_ms, uint32_t max_ms, uint32_t rng,
                                  uint64_t retry_after_ms, uint64_t remaining_ms);

// True when another attempt may start: fewer than max_attempts made and the deadline not
// reached.
bool attempt_allowed(uint32_t attempts_made, uint32_t max_attempts, uint64_t now_ms, uint64_t deadline_ms);

// Longest delay any Retry-After is taken to mean; larger values are capped to this.
#define EW_RETRY_AFTER_MAX_MS 86400000ull  // one day

// Retry-After header value (surrounding spaces/tabs allowed): delta-seconds, or an HTTP-date
// (IMF-fixdate, RFC 850 or asctime) taken relative to the same response's Date header
// (`date_header`, may be nullptr). A date with no or unparseable Date header returns false
// rather than trusting the local clock; a date before Date gives 0. Garbage returns false.
bool parse_retry_after(const char* value, size_t len, const char* date_header, size_t date_len,
                       uint64_t* out_delay_ms);

// `retry-after-ms` header value: milliseconds, possibly fractional (rounded up).
bool parse_retry_after_ms(const char* value, size_t len, uint64_t* out_delay_ms);

// An HTTP-date (RFC 9110 section 5.6.7: IMF-fixdate, RFC 850 with a 2-digit year taken as
// 1970..2069, asctime) to seconds since 1970-01-01T00:00:00Z. Surrounding spaces allowed;
// names are matched case-insensitively; the weekday is checked to be a weekday name but not
// against the date. Returns false on anything else or an impossible date/time.
bool http_date_to_unix(const char* s, size_t len, int64_t* out);

}  // namespace ew
