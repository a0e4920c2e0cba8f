// The hedge half of a proxied request: the two attempt slots, when a second attempt starts
// beside a slow first one, which one stages its first bytes in the client's buffer, and the
// loser's end (closed unread: never parked, never relayed, not a failure of its endpoint).
//
// Staging: before commit, the client buffer holds one attempt's first bytes (the stager).
// While the other attempt holds it, an attempt's reads wait (upstream_body_room is 0), so
// its bytes stay in the socket. The stager lets go when what it staged holds nothing that
// must reach the client: SSE comments before any data (": keep-alive"), JSON's leading
// whitespace; those bytes are dropped then, which only happens while two attempts run.
// Bytes that arrive with a head (same read) cannot wait: when they hold a whole first event
// (or JSON's first byte) the attempt has delivered and takes the buffer (the other is the
// loser); when they hold part of one while the other holds the buffer, that attempt is
// closed as a loser (both were mid-way through a first event; the one staging goes on).
#include <string.h>

#include "core/retry.h"
#include "core/strbuf.h"
#include "net/log.h"
#include "net/proxy.h"

namespace ew {
namespace {

const char kTableFull[] = "upstream connection table full";

}  // namespace

ProxyAttempt* ProxyExchange::free_slot() { return att_[0].live() ? &att_[1] : &att_[0]; }

void ProxyExchange::set_state(ProxyAttempt& a, ExchangeState s) {
    a.state = s;
    settle();
}

// The exchange's state follows its attempts until commit: `hedged` while two are in
// flight, else the one in flight's (none in flight: left as set, backoff or done).
void ProxyExchange::settle() {
    bool both = att_[0].live() && att_[1].live();
    if (paired_ && !both) {
        paired_ = false;
        HedgeStats& hs = ctx_->metrics->hedge;
        if (hs.in_flight) hs.in_flight--;
    }
    if (state_ == ExchangeState::committed || state_ == ExchangeState::done || state_ == ExchangeState::idle) return;
    if (both)
        state_ = ExchangeState::hedged;
    else if (att_[0].live())
        state_ = att_[0].state;
    else if (att_[1].live())
        state_ = att_[1].state;
}

// An attempt started alone: when hedging is on (and not used yet), it is hedged unless it
// delivers within the delay (measured from its start, connect included).
void ProxyExchange::arm_hedge(const ProxyAttempt& a, uint64_t now_ms) {
    (void)now_ms;
    hedge_at_ms_ = 0;
    if (hedge_used_ || multipart_) return;  // audio uploads are not sent twice
    uint32_t d = hedge_delay_ms(ctx_->cfg->agent, ctx_->metrics->hedge, a.cand.endpoint, stream_);
    if (d == 0) return;
    hedge_at_ms_ = a.started_ms + d;
}

// Never onto an endpoint that told us to wait or rejected its key (or ran out of quota, or
// lost the model), nor onto one only panic routing or a trial would try (DOWN): a trial is
// one live request at a time (health_trial_begin), never spent on a hedge.
bool ProxyExchange::hedge_target(const Candidate& c, uint64_t now_ms) const {
    const Health& h = ctx_->health[c.endpoint];
    if (c.panic || h.key_bad || h.state == HealthState::rate_limited) return false;
    return health_can_serve(h, c.model_slot, now_ms);
}

void ProxyExchange::start_hedge(uint64_t now_ms) {
    hedge_at_ms_ = 0;
    if (att_[0].live() == att_[1].live()) return;  // none in flight, or already two
    ProxyAttempt& p = att_[0].live() ? att_[0] : att_[1];
    HedgeStats& hs = ctx_->metrics->hedge;
    const Config& cfg = *ctx_->cfg;
    if (!attempt_allowed(attempts_, cfg.agent.max_attempts, now_ms, deadline_ms_)) {
        hs.skipped[static_cast<size_t>(HedgeSkip::attempts)]++;
        return;
    }
    size_t pick = cand_count_;
    for (size_t i = cand_next_; i < cand_count_ && pick == cand_count_; i++)
        if (hedge_target(cands_[i], now_ms)) pick = i;
    if (pick == cand_count_) {
        hs.skipped[static_cast<size_t>(HedgeSkip::no_candidate)]++;
        return;
    }
    if (hs.in_flight >= EW_CAP_HEDGES) {
        hs.skipped[static_cast<size_t>(HedgeSkip::concurrency)]++;
        return;
    }
    if (!hedge_spend(&hs)) {
        hs.skipped[static_cast<size_t>(HedgeSkip::budget)]++;
        return;
    }
    // The hedge takes the next usable candidate; the ones it passed over stay next in line
    // for the normal failover.
    Candidate c = cands_[pick];
    for (size_t i = pick; i > cand_next_; i--) cands_[i] = cands_[i - 1];
    cands_[cand_next_++] = c;
    hedge_used_ = true;
    ProxyAttempt& h = other(p);
    h.cand = c;
    h.role = AttemptRole::hedge;
    h.trial = false;
    cur_ = c;
    attempts_++;
    hs.started++;
    EW_LOG_INFO("hedge: endpoint=%s model=%s after %llu ms without a %s on endpoint=%s", cfg.endpoints[c.endpoint].name,
                c.model, static_cast<unsigned long long>(now_ms - p.started_ms),
                stream_ ? "first token" : "response head", cfg.endpoints[p.cand.endpoint].name);
    char err[EW_CAP_ERROR_TEXT];
    ResultKind k = open_attempt(h, now_ms, false, err, sizeof err);
    if (k == ResultKind::ok && h.live()) {
        p.role = AttemptRole::primary;
        paired_ = true;
        hs.in_flight++;
        // What the primary staged so far may hold only comments (or JSON whitespace): let go.
        if (stager_ == p.slot) release_staging(p, p.state == ExchangeState::awaiting_body || !sse_has_partial(&p.sse));
        return;
    }
    if (strcmp(err, kTableFull) == 0) {  // no slot to spare: not the endpoint's fault
        attempts_--;
        hs.started--;
        hs.skipped[static_cast<size_t>(HedgeSkip::concurrency)]++;
        hs.budget_centi += 100;
        return;
    }
    // The hedge failed at once (connect refused, say): a failure of its endpoint; the
    // primary carries on alone.
    AttemptFailure f;
    f.kind = k;
    f.message = err;
    f.reason = FailoverReason::connect;
    h.role = AttemptRole::hedge;
    record(h, f, now_ms);
    cur_ = p.cand;
}

// The other attempt delivered first (or both were mid-way through a first event): closed
// unread, never parked for reuse; no health observation either way.
void ProxyExchange::cancel_loser(ProxyAttempt& loser, const char* why, uint64_t now_ms) {
    (void)now_ms;
    EW_LOG_INFO("hedge: closing the %s attempt on endpoint=%s: %s", loser.role == AttemptRole::hedge ? "hedge" : "primary",
                ctx_->cfg->endpoints[loser.cand.endpoint].name, why);
    if (loser.conn) {
        loser.conn->release(false);
        loser.conn = nullptr;
    }
    if (stager_ == loser.slot) {
        out_->drop_staged();
        stager_ = -1;
    }
    if (err_owner_ == loser.slot) err_owner_ = -1;  // an error body half read: not read for its meaning
    abandon_trial(loser);  // a primary on trial that lost: no outcome for its endpoint
    if (loser.state != ExchangeState::connecting) loser_sent_ = true;  // its prompt went out
    ctx_->metrics->hedge.losers_cancelled++;
    set_state(loser, ExchangeState::idle);
}

// `a` commits: the other attempt (if still in flight) loses; the win is counted.
void ProxyExchange::hedge_committed(ProxyAttempt& a, uint64_t now_ms) {
    won_ = a.slot;
    cur_ = a.cand;
    hedge_at_ms_ = 0;
    ProxyAttempt& o = other(a);
    if (o.live()) cancel_loser(o, "the other attempt delivered first", now_ms);
    HedgeStats& hs = ctx_->metrics->hedge;
    if (a.role == AttemptRole::primary) hs.won_primary++;
    if (a.role == AttemptRole::hedge) hs.won_hedge++;
}

bool ProxyExchange::stage_first(ProxyAttempt& a, const char* data, size_t len) {
    if (!out_->stage(data, len)) return false;
    stager_ = static_cast<int8_t>(a.slot);
    return true;
}

// After a feed that did not commit: the stager lets go of the buffer when nothing staged
// must reach the client and another attempt could use it.
void ProxyExchange::release_staging(ProxyAttempt& a, bool droppable) {
    if (stager_ != a.slot || !droppable || !other(a).live()) return;
    out_->drop_staged();
    stager_ = -1;
}

// `a` delivered with bytes that came with its head while the other attempt held the
// buffer: that one's staged bytes go, it loses, and `a`'s bytes are staged. False when they
// do not fit (the caller fails `a`).
bool ProxyExchange::take_staging(ProxyAttempt& a, const char* data, size_t len, uint64_t now_ms) {
    ProxyAttempt& o = other(a);
    out_->drop_staged();
    stager_ = -1;
    if (o.live()) cancel_loser(o, "the other attempt delivered first", now_ms);
    return stage_first(a, data, len);
}

size_t ProxyExchange::upstream_body_room(const ProxyAttempt& a) const {
    if (out_ == nullptr) return 0;
    // Before commit the staging decides (a first event too large fails the attempt), and
    // only one attempt stages at a time.
    if (state_ != ExchangeState::committed) {
        // An error body goes to its own buffer (ErrorAnswer::append stops at its cap).
        if (a.state == ExchangeState::awaiting_error_body) return 2 * EW_CAP_UPSTREAM_RX + 64;
        if (stager_ >= 0 && stager_ != a.slot) return 0;
        return 2 * EW_CAP_UPSTREAM_RX + 64;
    }
    if (a.slot != won_) return 0;
    return out_->chunk_room();
}

}  // namespace ew
