// The state file on the device: read once at start (run mode only, not --probe-once),
// written when something persistent changed, at most once per state_write_interval_ms,
// and at a clean stop. The text and the rules are core/health_state.h's; the file goes
// through pal::read_file and pal::write_file_atomic.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/health_state.h"
#include "net/context.h"

namespace ew {

class StateStore {
public:
    // Takes [agent] state_file and state_write_interval_ms (again after a reload: a new
    // path is written at the next chance).
    void configure(const Config& cfg);
    // Reads the file into the health table. A missing file: one info line; an unreadable,
    // truncated, corrupt or foreign-version one: one warning naming it and why, and a
    // fresh start. Endpoint states the file restored are noted (logged) at once.
    void load(const NetContext& ctx, uint64_t now_ms);
    // Writes when something persistent changed and the interval allows (one small write;
    // it blocks the loop for the write and its fsyncs, once per interval at most).
    void tick(const NetContext& ctx, uint64_t now_ms);
    // At a clean stop: writes when anything changed since the last write, or a deadline
    // is still running (so that its remaining time is fresh), whatever the interval.
    void flush(const NetContext& ctx, uint64_t now_ms);

    bool enabled() const { return enabled_; }
    uint32_t writes() const { return writes_; }

private:
    bool changed(const NetContext& ctx, uint64_t now_ms) const;
    void write(const NetContext& ctx, uint64_t now_ms);

    char path_[EW_CAP_PATH] = "";
    bool enabled_ = false;
    bool loaded_ = false;        // load() ran (run mode): only then is anything written
    int last_error_ = 0;         // the write error last logged (each new one is logged once)
    uint32_t writes_ = 0;
    StateWriteSchedule schedule_;
    StateFacts written_[EW_CAP_ENDPOINTS];
    uint32_t written_count_ = 0; // endpoints in written_; another count is a change
    char buf_[EW_CAP_STATE_BYTES];
};

}  // namespace ew
