// Health that survives a restart: the state file's text ([agent] state_file), and when to
// write it. Pure: no I/O (net/state_store.cpp reads and writes the file through the PAL),
// time passed in (monotonic now_ms, and the wall clock where the device has one).
//
// Format, version 1: short ASCII lines, every one ending in '\n'.
//
//   edgeway-state 1 wall=1764650000123
//   E primary url=1c291ca3 ej=2 cl=1 rl=58210 lat=412
//   E backup url=0a4c2e19 ej=3 cl=0 dn=4100 dl=4 dt=1 kb=1 key=9f1e33a0
//   M gpt-4o-mini rl=12000
//   crc=5d0e8a71
//
//   header  magic, version, wall=Unix ms at the write (0: the device had no clock then)
//   E       an endpoint by its name, then key=value fields:
//             url  CRC-32 of its url (a reconfigured endpoint does not inherit the state)
//             ej   ejections (times it went DOWN), cl its cooldown level (flap memory)
//             rl   remaining ms of its endpoint-wide RATE_LIMITED deadline (absent: none)
//             dn   present only while DOWN: remaining ms of its cooldown (0: the cooldown
//                  is over, it still waits for `rise` good probes, as before the restart)
//             dl   with dn: the deepest failure of the outage (CheckLevel: 1 tcp, 2 tls,
//                  3 models, 4 chat), dp the deepest of its probes' failures, dt=1 when
//                  traffic saw it: a recovery needs a check that deep, or live trials
//             lat  latency EWMA in ms (absent: none known yet)
//             kb   1 when its API key was rejected (401/403)
//             kx   remaining ms of its key's exhaustion (a 429 insufficient_quota)
//             key  with kb or kx: a 32-bit fingerprint (FNV-1a) of the key they are about,
//                  never the key; both are restored only while the configured key has it
//   M       a model of the E line above it, by name: rl = remaining ms of its rate limit,
//           na = of its unavailability (a 404 model_not_found); written only for models
//           with one of them running
//   crc     CRC-32 (IEEE) of every byte before this line, 8 hex digits; the last line
//
// Version rule: a new field (key=value) or a new line type is added WITHOUT a version
// change: readers skip keys and lines they do not know, and a missing key means "none"
// (0). The version goes up only when an existing key or line changes its meaning or unit;
// a reader refuses every other version (one warning, fresh start). To add a field (as `kx`
// and `na` were added, in version 1): write it in state_encode, read it in
// read_endpoint_field / the M line, apply it, and add it to StateFacts if a change of it
// must cause a write; nothing else changes.
//
// Remaining times are stored, not deadlines: the monotonic clock starts again at a boot.
// On load the wall-clock time since the write is subtracted when both wall readings are
// plausible (2024..2100) and the clock did not go back; otherwise the whole remaining time
// applies again (conservative: a device without a clock waits once more rather than hammer
// an endpoint that told it to wait). Remaining times are capped at kStateMaxRemainingMs.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/caps.h"
#include "core/config.h"
#include "core/health.h"

namespace ew {

struct StrBuf;

constexpr uint32_t kStateVersion = 1;
constexpr uint64_t kStateMaxRemainingMs = 7ULL * 86400000ULL;  // a longer value is cut to a week
constexpr uint64_t kWallPlausibleMinMs = 1704067200000ULL;     // 2024-01-01
constexpr uint64_t kWallPlausibleMaxMs = 4102444800000ULL;     // 2100-01-01

uint32_t crc32(const void* data, size_t len, uint32_t crc = 0);
uint32_t key_fingerprint(const char* key);  // FNV-1a 32 of the key's bytes
bool wall_plausible(uint64_t wall_ms);

// The state of cfg's endpoints at now_ms as the file's text. False when `out` overflowed
// (nothing usable was written).
bool state_encode(const Config& cfg, const Health* health, uint64_t now_ms, uint64_t wall_ms, StrBuf* out);

enum class StateLoad : uint8_t { ok, empty, not_state, bad_version, truncated, bad_checksum, bad_line };
const char* to_string(StateLoad s);  // short reason, e.g. "checksum mismatch"

struct StateLoadResult {
    StateLoad status = StateLoad::ok;
    uint32_t line = 0;             // for bad_line: the line number
    uint32_t version = 0;          // the file's version, when it has a header
    uint32_t restored = 0;         // endpoints of the configuration that took state from the file
    uint32_t limited = 0;          // ...of them RATE_LIMITED (endpoint or a model) or DOWN after the load
    bool wall_trusted = false;     // elapsed_ms came from the wall clock
    uint64_t elapsed_ms = 0;       // time subtracted from every remaining time
    char why[96] = "";             // the reason in words, for the one warning
};

// Checks the whole text first (header, version, checksum, every known field); only a valid
// file is applied, to the endpoints of cfg that match an E line by name and url hash (and
// their models by name). Unknown endpoints, models, keys and line types are skipped.
StateLoad state_decode(const char* text, size_t len, const Config& cfg, Health* health, const HealthParams& p,
                       uint64_t now_ms, uint64_t wall_now_ms, StateLoadResult* r);

// What of one endpoint's health the file keeps, at a moment: deadlines that have passed are
// 0. A write is due when these differ from the ones last written.
struct StateFacts {
    uint64_t rate_limited_until_ms = 0;
    bool down = false;
    uint64_t down_until_ms = 0;  // while DOWN: the cooldown end, 0 once it has passed
    uint64_t model_limited_until_ms[EW_CAP_MODELS_PER_ENDPOINT] = {};
    uint64_t key_exhausted_until_ms = 0;
    uint64_t model_unavailable_until_ms[EW_CAP_MODELS_PER_ENDPOINT] = {};
    uint32_t ejections = 0;
    uint32_t cooldown_level = 0;
    uint32_t latency_ms = 0;
    bool has_latency = false;
    bool key_bad = false;
};
void state_facts_of(const Health& h, uint64_t now_ms, StateFacts* out);
// True when `now` differs from `written` in something persistent. The latency EWMA counts
// only when it moved by a quarter (and at least 20 ms): traffic moves it with every request.
bool state_facts_changed(const StateFacts& written, const StateFacts& now);

// Flash wear: at most one write per interval, and only when something changed. The first
// write after a start may happen at once (a device that dies soon after a 429 keeps it).
struct StateWriteSchedule {
    uint32_t interval_ms = 60000;
    uint64_t last_write_ms = 0;
    bool written = false;

    bool due(bool changed, uint64_t now_ms) const {
        return changed && (!written || now_ms - last_write_ms >= interval_ms);
    }
    void wrote(uint64_t now_ms) {
        written = true;
        last_write_ms = now_ms;
    }
};

}  // namespace ew
