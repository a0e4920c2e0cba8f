#include "net/state_store.h"

#include <errno.h>
#include <string.h>

#include "core/strbuf.h"
#include "net/log.h"
#include "net/state_log.h"
#include "pal.h"

namespace ew {

void StateStore::configure(const Config& cfg) {
    if (strcmp(path_, cfg.agent.state_file) != 0) {
        written_count_ = 0;  // a new file: everything is new to it
        last_error_ = 0;
    }
    copy_str(path_, sizeof path_, cfg.agent.state_file);
    enabled_ = path_[0] != '\0';
    schedule_.interval_ms = cfg.agent.state_write_interval_ms;
}

void StateStore::load(const NetContext& ctx, uint64_t now_ms) {
    loaded_ = true;
    if (!enabled_) return;
    const Config& cfg = *ctx.cfg;
    size_t len = 0;
    bool private_ok = true;
    bool rewrite = false;  // an unusable file is replaced at the first chance (one warning, not one per start)
    int e = pal::read_file(path_, buf_, sizeof buf_, &len, &private_ok);
    if (e == ENOENT) {
        EW_LOG_INFO("state_file %s: none yet; starting fresh", path_);
    } else if (e == ENOTSUP) {
        EW_LOG_WARN("state_file %s: not supported on this port; health is not kept across restarts", path_);
        enabled_ = false;
    } else if (e != 0) {
        EW_LOG_WARN("state_file %s: ignored, cannot read it: %s; starting fresh", path_, pal::strerror(e));
        rewrite = true;
    } else {
        StateLoadResult r;
        StateLoad s = state_decode(buf_, len, cfg, ctx.health, *ctx.params, now_ms, pal::wall_ms(), &r);
        if (s != StateLoad::ok) {
            EW_LOG_WARN("state_file %s: ignored, %s; starting fresh", path_, r.why);
            rewrite = true;
        } else {
            EW_LOG_INFO("state_file %s: restored %u of %u endpoints, %u limited or DOWN (%s %llu ms since it was written)",
                        path_, r.restored, cfg.endpoint_count, r.limited,
                        r.wall_trusted ? "wall clock:" : "no trusted wall clock: counted as",
                        static_cast<unsigned long long>(r.elapsed_ms));
            for (uint32_t i = 0; i < cfg.endpoint_count; i++) note_state(ctx, i, now_ms, "state file");
        }
    }
    // What is in the health table now is what the file says (or nothing was): no write
    // until something changes.
    written_count_ = cfg.endpoint_count;
    for (uint32_t i = 0; i < cfg.endpoint_count && i < EW_CAP_ENDPOINTS; i++)
        state_facts_of(ctx.health[i], now_ms, &written_[i]);
    if (rewrite) written_count_ = 0;
}

bool StateStore::changed(const NetContext& ctx, uint64_t now_ms) const {
    const Config& cfg = *ctx.cfg;
    if (written_count_ != cfg.endpoint_count) return true;
    for (uint32_t i = 0; i < cfg.endpoint_count && i < EW_CAP_ENDPOINTS; i++) {
        StateFacts f;
        state_facts_of(ctx.health[i], now_ms, &f);
        if (state_facts_changed(written_[i], f)) return true;
    }
    return false;
}

void StateStore::tick(const NetContext& ctx, uint64_t now_ms) {
    if (!enabled_ || !loaded_) return;
    if (schedule_.written && now_ms - schedule_.last_write_ms < schedule_.interval_ms) return;  // cheap path
    if (schedule_.due(changed(ctx, now_ms), now_ms)) write(ctx, now_ms);
}

void StateStore::flush(const NetContext& ctx, uint64_t now_ms) {
    if (!enabled_ || !loaded_) return;
    bool running = false;
    for (uint32_t i = 0; i < ctx.cfg->endpoint_count && i < EW_CAP_ENDPOINTS; i++) {
        StateFacts f;
        state_facts_of(ctx.health[i], now_ms, &f);
        running = running || f.rate_limited_until_ms || f.down || f.key_exhausted_until_ms;
        for (uint64_t m : f.model_limited_until_ms) running = running || m;
        for (uint64_t m : f.model_unavailable_until_ms) running = running || m;
    }
    if (running || changed(ctx, now_ms)) write(ctx, now_ms);
}

void StateStore::write(const NetContext& ctx, uint64_t now_ms) {
    const Config& cfg = *ctx.cfg;
    schedule_.wrote(now_ms);  // a failed write waits for the next interval too
    StrBuf out(buf_, sizeof buf_);
    if (!state_encode(cfg, ctx.health, now_ms, pal::wall_ms(), &out)) {
        if (last_error_ != EFBIG) EW_LOG_ERROR("state_file %s: the state does not fit %u bytes (EW_CAP_STATE_BYTES); not written",
                                               path_, static_cast<unsigned>(sizeof buf_));
        last_error_ = EFBIG;
        return;
    }
    int e = pal::write_file_atomic(path_, out.data, out.len);
    if (e == ENOTSUP) {
        EW_LOG_WARN("state_file %s: not supported on this port; health is not kept across restarts", path_);
        enabled_ = false;
        return;
    }
    if (e != 0) {
        if (e != last_error_) EW_LOG_WARN("state_file %s: cannot write it: %s (retried each interval)", path_, pal::strerror(e));
        last_error_ = e;
        return;
    }
    if (last_error_ != 0) EW_LOG_INFO("state_file %s: written again", path_);
    last_error_ = 0;
    writes_++;
    written_count_ = cfg.endpoint_count;
    for (uint32_t i = 0; i < cfg.endpoint_count && i < EW_CAP_ENDPOINTS; i++)
        state_facts_of(ctx.health[i], now_ms, &written_[i]);
    EW_LOG_DEBUG("state_file %s: written (%zu bytes)", path_, out.len);
}

}  // namespace ew
