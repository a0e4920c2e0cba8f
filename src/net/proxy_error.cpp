// The exchange's reading of upstream error answers for their meaning (core/upstream_error.h):
// a 400, 404 or 429 with a JSON body of at most EW_CAP_ERROR_BODY bytes is read whole
// (state awaiting_error_body, the attempt's timeout still running) before anything is
// decided; then
//   429 insufficient_quota       the endpoint's key is exhausted (a long cooldown); fail
//                                over as for a rejected key
//   400 context_length_exceeded  move to the [context_fallback] models of the model that
//                                said it; the 400 is kept
//   404 model_not_found          that (endpoint, model) is unavailable for a while; fail
//                                over to the rest of the candidates; the 404 is kept
//   anything else                the status-code rules, as for an answer not read
// A kept answer goes to the client, as the upstream sent it (status, content type, relayed
// headers, body), when no other attempt serves the request. A body larger than the cap, or
// one that is not declared JSON, is handled as it comes, as it always was.
//
// With a hedge (proxy_hedge.cpp) the waiting state is the attempt's (ProxyAttempt::state),
// and the one ErrorAnswer being read has one owner at a time (err_owner_). An error answer
// read while the other attempt is still in flight ends only its own attempt: a failure
// (insufficient_quota, model_not_found, a 429) leaves the other attempt carrying on, the
// kept answer held for the case that nothing else serves; a 400/404 of no meaning here is
// the upstream's proper answer and commits (the other attempt loses, as on any commit);
// context_length_exceeded moves the request to the [context_fallback] models and closes the
// other attempt as a loser, unless there is nowhere to move, then the other carries on. An
// error head that comes while the other attempt owns the buffer is not read for its
// meaning: a 429 is a rate limit (the status-code rule), a 400/404 is closed as a loser (the
// answer being read decides).
#include <string.h>

#include "core/retry.h"
#include "core/strbuf.h"
#include "net/log.h"
#include "net/proxy.h"
#include "net/state_log.h"

namespace ew {

bool ProxyExchange::begin_error_body(ProxyAttempt& a, const ResponseParser& r, uint64_t now_ms) {
    if (!error_body_wanted(r.status) || bodiless_) return false;
    if (err_owner_ >= 0 && err_owner_ != a.slot) {
        // The other attempt's error body is being read: this one is not read for its meaning.
        if (r.status == 429) return false;  // a rate limit, by its status
        cancel_loser(a, "an error answer while the other attempt's is read", now_ms);
        return true;
    }
    ErrorAnswer& e = err_[reading_];
    if (!e.begin(r, a.cand)) return false;
    if (r.status == 429) a.retry_after_known = response_retry_after_ms(r, &a.retry_after_ms);
    err_owner_ = static_cast<int8_t>(a.slot);
    if (!other(a).live()) hedge_at_ms_ = 0;         // it answered: nothing to hedge
    set_state(a, ExchangeState::awaiting_error_body);  // the attempt's deadline still applies
    return true;
}

void ProxyExchange::feed_error_body(ProxyAttempt& a, const char* data, size_t len, uint64_t now_ms) {
    ErrorAnswer& e = err_[reading_];
    if (e.append(data, len)) return;
    err_owner_ = -1;
    // Larger than the cap: what it says is not read; the status-code rules, as ever.
    if (e.status == 429) {
        AttemptFailure f;
        f.kind = ResultKind::http_status;
        f.status = 429;
        f.reason = FailoverReason::rate_limited;
        attempt_failed(a, f, now_ms);
        return;
    }
    // A 400 / 404 is relayed from its head on, the bytes read so far first.
    sse_init(&a.sse);
    if (!commit(a, e.status, e.content_type, now_ms)) return;
    if (e.len) relay(e.body, e.len, now_ms);
    if (state_ == ExchangeState::committed) relay(data, len, now_ms);
}

// The connection broke, or the attempt's time ran out, before the body was whole.
void ProxyExchange::error_body_broken(ProxyAttempt& a, ResultKind kind, const char* message, uint64_t now_ms) {
    AttemptFailure f;
    if (err_[reading_].status == 429) {
        // The head said enough: a rate limit, as a 429 without its body always was.
        f.kind = ResultKind::http_status;
        f.status = 429;
        f.reason = FailoverReason::rate_limited;
    } else {
        f.kind = kind;
        f.message = message;
        f.reason = kind == ResultKind::timeout   ? FailoverReason::timeout
                   : kind == ResultKind::connect ? FailoverReason::connect
                                                 : FailoverReason::bad_response;
    }
    attempt_failed(a, f, now_ms);
}

void ProxyExchange::finish_error_body(ProxyAttempt& a, UpstreamConn* c, uint64_t now_ms) {
    const ErrorAnswer& e = err_[reading_];
    ErrorMeaning meaning = upstream_error_meaning(e.status, e.body, e.len);
    // Read to its end: the connection may serve the next request.
    a.conn = nullptr;
    c->release(true);
    ctx_->pool->park_limit(a.cand.endpoint);
    err_owner_ = -1;
    const char* name = ctx_->cfg->endpoints[a.cand.endpoint].name;
    AttemptFailure f;
    f.kind = ResultKind::http_status;
    f.status = e.status;
    f.meaning = meaning;
    switch (meaning) {
        case ErrorMeaning::insufficient_quota:
            f.message = "HTTP 429 insufficient_quota";
            f.reason = FailoverReason::quota;
            attempt_failed(a, f, now_ms);
            return;
        case ErrorMeaning::model_not_found:
            f.message = "HTTP 404 model_not_found";
            f.reason = FailoverReason::model_not_found;
            hold_answer();
            attempt_failed(a, f, now_ms);
            return;
        case ErrorMeaning::context_length_exceeded:
            // The service answered properly: a success of the endpoint, not a failure.
            record_success(a, e.status, now_ms);
            EW_LOG_INFO("attempt %u endpoint=%s model=%s: context_length_exceeded", attempts_, name, a.cand.model);
            hold_answer();
            context_failover(a, now_ms);
            return;
        case ErrorMeaning::none: break;
    }
    if (e.status == 429) {
        f.reason = FailoverReason::rate_limited;
        attempt_failed(a, f, now_ms);
        return;
    }
    // A 400 / 404 of no meaning here: relayed as it is, as always (the other attempt, if
    // any, loses as on any commit).
    record_success(a, e.status, now_ms);
    hedge_committed(a, now_ms);
    relay_error_answer(e, now_ms);
}

// The answer just read becomes the one the client gets if nothing else serves (the newest
// kept answer wins); the next one is read into the other slot.
void ProxyExchange::hold_answer() {
    held_ = true;
    reading_ = static_cast<uint8_t>(1 - reading_);
}

bool ProxyExchange::relay_held(uint64_t now_ms) {
    if (!held_) return false;
    const ErrorAnswer& a = err_[1 - reading_];
    EW_LOG_INFO("request answered with the upstream's HTTP %u from endpoint=%s model=%s (nothing else served)",
                a.status, ctx_->cfg->endpoints[a.from.endpoint].name, a.from.model);
    relay_error_answer(a, now_ms);
    return true;
}

// The answer as the upstream sent it, with edgeway's own headers, framed as a relayed
// answer is (chunked). Health and metrics were told when it was read.
void ProxyExchange::relay_error_answer(const ErrorAnswer& a, uint64_t now_ms) {
    cur_ = a.from;
    char hdr[EW_CAP_CLIENT_HEAD - 256];
    StrBuf h(hdr, sizeof hdr);
    edgeway_headers(&h, true);
    h.append(a.passthrough, a.passthrough_len);
    commit_status_ = a.status;
    state_ = ExchangeState::committed;
    out_->drop_staged();
    if (!out_->begin_chunked(a.status, a.content_type, hdr)) {
        fail_committed("response head too large to relay", now_ms);  // cannot happen within the caps
        return;
    }
    if (a.len && !out_->write_chunk(a.body, a.len, false)) {
        fail_committed("client buffer full", now_ms);
        return;
    }
    end(AnswerEnd::complete, a.status, now_ms);
}

// The model of the attempt said the prompt is longer than its context: the request moves
// to that model's [context_fallback] models (those not yet told the same), on whichever
// endpoints serve them. None: the client gets the 400.
//
// With the other attempt of a hedged pair still in flight: when the request moves, that
// attempt is closed as a loser (it was sent the same prompt); when there is nowhere to move,
// it carries on (the 400 held for the case that it fails and nothing else serves).
void ProxyExchange::context_failover(ProxyAttempt& a, uint64_t now_ms) {
    const Config& cfg = *ctx_->cfg;
    const Candidate said = a.cand;
    drop_connection(a);  // read to its end already: the slot is free
    cur_ = said;
    if (context_tried_n_ < EW_ROUTER_CHAIN_CAP) context_tried_[context_tried_n_++] = said.model;
    const char* next[EW_CAP_FALLBACK_CHAIN];
    size_t next_n = 0;
    const FallbackRule* rule = router_context_rule(cfg, said.model);
    for (uint32_t j = 0; rule && j < rule->next_count && j < EW_CAP_FALLBACK_CHAIN; j++) {
        bool tried = false;
        for (size_t t = 0; t < context_tried_n_ && !tried; t++) tried = strcmp(context_tried_[t], rule->next[j]) == 0;
        if (!tried) next[next_n++] = rule->next[j];
    }
    ProxyAttempt& o = other(a);
    if (next_n == 0 && o.live()) return;  // the other attempt may still serve
    if (o.live()) cancel_loser(o, "the request moves to the [context_fallback] models", now_ms);
    hedge_at_ms_ = 0;
    for (size_t j = 0; j < next_n; j++) context_models_[j] = next[j];
    context_n_ = next_n;
    cand_count_ = context_n_ ? route_candidates(now_ms) : 0;
    cand_next_ = 0;
    if (cand_count_ == 0) {
        relay_held(now_ms);
        return;
    }
    failover_pending_ = true;
    failover_reason_ = FailoverReason::context_length;
    failover_from_ = said.endpoint;
    schedule(now_ms);
}

// The candidates of a (new) pass: the [context_fallback] models once the request moved to
// them, else the requested model's chain.
size_t ProxyExchange::route_candidates(uint64_t now_ms) {
    const Config& cfg = *ctx_->cfg;
    if (context_n_)
        return router_candidates_among(cfg, ctx_->health, context_models_, context_n_, now_ms, cands_,
                                       EW_ROUTER_CANDIDATES_CAP);
    return router_candidates(cfg, ctx_->health, requested_model_, now_ms, cands_, EW_ROUTER_CANDIDATES_CAP);
}

}  // namespace ew
