// The attempt half of a proxied request: validation, candidates, attempts and the one
// failure path (the answers edgeway makes are in proxy_answer.cpp, the relay in proxy_relay.cpp).
#include "net/proxy.h"

#include <string.h>

#include "core/header_policy.h"
#include "core/request_check.h"
#include "core/retry.h"
#include "core/strbuf.h"
#include "net/log.h"
#include "net/state_log.h"

namespace ew {
namespace {

AttemptOutcome outcome_of(ResultKind kind, uint16_t status) {
    switch (kind) {
        case ResultKind::ok: return AttemptOutcome::ok;
        case ResultKind::connect: return AttemptOutcome::connect;
        case ResultKind::tls: return AttemptOutcome::tls;
        case ResultKind::timeout: return AttemptOutcome::timeout;
        case ResultKind::bad_response: return AttemptOutcome::bad_response;
        case ResultKind::http_status:
            if (status == 429) return AttemptOutcome::http_429;
            if (status >= 500) return AttemptOutcome::http_5xx;
            if (status >= 200 && status < 300) return AttemptOutcome::ok;
            return AttemptOutcome::http_4xx;
    }
    return AttemptOutcome::bad_response;
}

// The local path is `want`, with or without a query.
bool path_is(const RequestView& r, const char* want) {
    size_t n = strlen(want);
    return r.path_len >= n && memcmp(r.path, want, n) == 0 && (r.path_len == n || r.path[n] == '?');
}

FailoverReason reason_of(ResultKind kind, uint16_t status) {
    switch (kind) {
        case ResultKind::connect: return FailoverReason::connect;
        case ResultKind::tls: return FailoverReason::tls;
        case ResultKind::timeout: return FailoverReason::timeout;
        case ResultKind::bad_response: return FailoverReason::bad_response;
        default: break;
    }
    if (status == 429) return FailoverReason::rate_limited;
    if (status == 401 || status == 403) return FailoverReason::auth;
    return FailoverReason::server_error;
}

}  // namespace

// A client's X-Request-Id is kept when it is 1..64 characters of [A-Za-z0-9._:-] (it goes
// into our logs and back into the answer's head); otherwise the request gets 16 hex digits.
void ProxyExchange::take_request_id() {
    const char* id = req_.request_id ? req_.request_id : "";
    size_t n = strlen(id);
    bool ok = n > 0 && n < sizeof request_id_;
    for (size_t i = 0; ok && i < n; i++) {
        char c = id[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
             c == ':' || c == '-';
    }
    if (ok) {
        copy_str(request_id_, sizeof request_id_, id, n);
        return;
    }
    StrBuf b(request_id_, sizeof request_id_);
    b.appendf("%08x%08x", static_cast<unsigned>(ctx_->rng->next()), static_cast<unsigned>(ctx_->rng->next()));
}

const char* to_string(ExchangeState s) {
    switch (s) {
        case ExchangeState::idle: return "idle";
        case ExchangeState::backoff: return "backoff";
        case ExchangeState::connecting: return "connecting";
        case ExchangeState::awaiting_head: return "awaiting_head";
        case ExchangeState::awaiting_body: return "awaiting_body";
        case ExchangeState::awaiting_first_event: return "awaiting_first_event";
        case ExchangeState::awaiting_error_body: return "awaiting_error_body";
        case ExchangeState::hedged: return "hedged";
        case ExchangeState::committed: return "committed";
        case ExchangeState::done: return "done";
    }
    return "?";
}

// ---- start: validate the request --------------------------------------------------------------

void ProxyExchange::start(const NetContext* ctx, ClientWriter* out, const RequestView& req, uint64_t now_ms) {
    ctx_ = ctx;
    out_ = out;
    req_ = req;
    state_ = ExchangeState::backoff;
    cand_count_ = cand_next_ = 0;
    attempts_ = rounds_ = 0;
    fail_rate_limited_ = fail_key_bad_ = fail_other_ = fail_quota_ = 0;
    held_ = false;
    err_owner_ = -1;
    context_n_ = context_tried_n_ = 0;
    for (uint8_t i = 0; i < 2; i++) {
        att_[i].ex = this;
        att_[i].slot = i;
        att_[i].conn = nullptr;
        att_[i].state = ExchangeState::idle;
        att_[i].role = AttemptRole::single;
        att_[i].trial = false;
    }
    won_ = 0;
    stager_ = -1;
    hedge_at_ms_ = 0;
    hedge_used_ = paired_ = loser_sent_ = false;
    cur_ = Candidate{255, 255, nullptr, false};
    stream_ = fresh_retry_ = fresh_retry_used_ = fallback_used_ = failover_pending_ = false;
    multipart_ = raw_ = speech_ = responses_api_ = false;
    mp_model_ = MultipartSpan{};
    saw_done_ = bodiless_ = false;
    started_ms_ = now_ms;
    wake_ms_ = 0;
    head_ms_ = 0;
    commit_status_ = 0;
    last_error_[0] = '\0';
    requested_model_[0] = '\0';
    tail_len_ = 0;
    prompt_tokens_ = completion_tokens_ = 0;
    failover_from_ = kNoEndpoint;
    failed_over_ = in_flight_ = false;
    fresh_trial_ = false;
    requested_ref_ = kNoModelRef;
    ttft_ms_ = UINT64_MAX;
    take_request_id();
    deadline_ms_ = now_ms + ctx_->cfg->agent.request_timeout_ms;
    ctx_->metrics->in_flight++;
    in_flight_ = true;
    if (!validate(now_ms)) return;
    requested_ref_ = model_ref(*ctx_->cfg, requested_model_);
    if (ctx_->cfg->agent.hedge_mode != HedgeMode::off) hedge_earn(&ctx_->metrics->hedge, ctx_->cfg->agent.hedge_budget_pct);
    cand_count_ = router_candidates(*ctx_->cfg, ctx_->health, requested_model_, now_ms, cands_,
                                    EW_ROUTER_CANDIDATES_CAP);
    ctx_->loop->add(this);
    next_attempt(now_ms);
}

// Exactly one "model" (a JSON member or a form field), else a 400 answer and false.
bool ProxyExchange::one_model(int count, const char* what, uint64_t now_ms) {
    if (count == 1) return true;
    char msg[96];
    StrBuf m(msg, sizeof msg);
    if (count == 0)
        m.append("you must provide a model parameter");
    else
        m.appendf("The request has more than one \"model\" %s.", what);
    answer_error(400, msg, "invalid_request_error", "model", nullptr, "", now_ms);
    return false;
}

bool ProxyExchange::validate(uint64_t now_ms) {
    const char* why = "";
    if (!upstream_path_check(req_.path, req_.path_len, &why)) {
        char msg[160];
        StrBuf m(msg, sizeof msg);
        m.appendf("The request path is not one edgeway forwards: %s.", why);
        answer_error(400, msg, "invalid_request_error", nullptr, "invalid_path", "", now_ms);
        return false;
    }
    responses_api_ = path_is(req_, "/v1/responses");
    speech_ = path_is(req_, "/v1/audio/speech");
    raw_ = speech_;
    if (path_is(req_, "/v1/audio/transcriptions") || path_is(req_, "/v1/audio/translations"))
        return validate_multipart(now_ms);
    const char* body = req_.body;
    size_t n = req_.body_len;
    if (n == 0) {
        answer_error(400, "The request body is empty; send a JSON object.", "invalid_request_error", nullptr, nullptr,
                     "", now_ms);
        return false;
    }
    // One pass validates the document and finds "model" and "stream"; the error text needs a second.
    static const char* const kKeys[] = {"model", "stream"};
    int counts[2] = {0, 0};
    JsonSpan spans[2];
    int count = json_find_keys(body, n, kKeys, 2, counts, spans) ? counts[0] : -1;
    if (count > 0) model_span_ = spans[0];
    if (count < 0) {
        JsonError jerr;
        char msg[160];
        StrBuf m(msg, sizeof msg);
        if (json_validate(body, n, &jerr) != JsonStatus::ok)
            m.appendf("The request body is not valid JSON: %s at byte %zu.", jerr.message, jerr.offset);
        else
            m.append("The request body must be a JSON object.");
        answer_error(400, msg, "invalid_request_error", nullptr, nullptr, "", now_ms);
        return false;
    }
    if (!one_model(count, "member", now_ms)) return false;
    // Decoded into a buffer one byte larger than a valid name, so that a long one is seen as
    // long (never truncated into a valid-looking one).
    char name[EW_CAP_MODEL_NAME + 1];
    size_t name_len = 0;
    bool is_string = json_span_string(body, model_span_, name, sizeof name, &name_len);
    if (!is_string && json_span_type(body, model_span_) == JsonType::string) name_len = sizeof name;  // too long
    ModelNameCheck mc = is_string ? model_name_check(name, name_len)
                                  : (name_len == sizeof name ? ModelNameCheck::too_long : ModelNameCheck::empty);
    if (!is_string && mc == ModelNameCheck::empty && json_span_type(body, model_span_) != JsonType::string) {
        answer_error(400, "\"model\" must be a string.", "invalid_request_error", "model", nullptr, "", now_ms);
        return false;
    }
    if (mc != ModelNameCheck::ok) {
        char msg[160];
        StrBuf m(msg, sizeof msg);
        if (mc == ModelNameCheck::too_long)
            m.appendf("\"model\" is longer than %u bytes.", static_cast<unsigned>(EW_CAP_MODEL_NAME - 1));
        else if (mc == ModelNameCheck::empty)
            m.append("\"model\" must not be empty.");
        else
            m.append("\"model\" must be printable ASCII (no control characters or line breaks).");
        answer_error(400, msg, "invalid_request_error", "model", nullptr, "", now_ms);
        return false;
    }
    if (counts[1] >= 1) json_span_bool(body, spans[1], &stream_);
    return accept_model(name, name_len, now_ms);
}

bool ProxyExchange::accept_model(const char* name, size_t len, uint64_t now_ms) {
    copy_str(requested_model_, sizeof requested_model_, name, len);
    if (!router_model_known(*ctx_->cfg, requested_model_)) {
        char msg[160];
        StrBuf m(msg, sizeof msg);
        m.appendf("The model `%s` is not served by any endpoint of this edgeway agent.", requested_model_);
        answer_error(404, msg, "invalid_request_error", "model", "model_not_found", "", now_ms);
        return false;
    }
    return true;
}

// /v1/audio/transcriptions and /translations: multipart/form-data, passed through as it
// came but for the "model" field, which each attempt rewrites (three segments, no copy).
bool ProxyExchange::validate_multipart(uint64_t now_ms) {
    const char* b = nullptr;
    size_t bl = 0;
    if (!multipart_boundary(req_.content_type, req_.content_type_len, &b, &bl) ||
        !header_value_ok(req_.content_type, req_.content_type_len)) {
        answer_error(400, "This path takes multipart/form-data (with a boundary), as OpenAI's audio API does.",
                     "invalid_request_error", nullptr, "invalid_content_type", "", now_ms);
        return false;
    }
    int count = 0;
    MultipartStatus st = multipart_find_field(req_.body, req_.body_len, b, bl, "model", &mp_model_, &count);
    if (st != MultipartStatus::ok) {
        char msg[160];
        StrBuf m(msg, sizeof msg);
        m.appendf("The request body is not valid multipart/form-data: %s.", to_string(st));
        answer_error(400, msg, "invalid_request_error", nullptr, nullptr, "", now_ms);
        return false;
    }
    if (!one_model(count, "field", now_ms)) return false;
    const char* name = req_.body + mp_model_.begin;
    ModelNameCheck mc = model_name_check(name, mp_model_.size());
    if (mc != ModelNameCheck::ok) {
        answer_error(400, "\"model\" must be 1-63 bytes of printable ASCII.", "invalid_request_error", "model",
                     nullptr, "", now_ms);
        return false;
    }
    MultipartSpan s;
    int streams = 0;
    multipart_find_field(req_.body, req_.body_len, b, bl, "stream", &s, &streams);
    stream_ = streams >= 1 && s.size() == 4 && memcmp(req_.body + s.begin, "true", 4) == 0;
    multipart_ = true;
    raw_ = !stream_;  // JSON, or text/srt/vtt as response_format asks
    return accept_model(name, mp_model_.size(), now_ms);
}

// ---- attempts -------------------------------------------------------------------------------

void ProxyExchange::schedule(uint64_t at_ms) {
    wake_ms_ = at_ms;
    state_ = ExchangeState::backoff;
}

void ProxyExchange::on_deadline(uint64_t now_ms) {
    if (state_ == ExchangeState::backoff && now_ms >= wake_ms_) {
        next_attempt(now_ms);
        return;
    }
    if (!active() || state_ == ExchangeState::committed) return;
    if (hedge_at_ms_ && now_ms >= hedge_at_ms_ && now_ms < deadline_ms_) {
        start_hedge(now_ms);
        return;
    }
    if (now_ms < deadline_ms_) return;
    // The whole request ran out of time before anything was committed.
    drop_all();
    if (relay_held(now_ms)) return;  // an upstream's own answer beats a 504
    copy_str(last_error_, sizeof last_error_, "request_timeout_ms reached");
    EW_LOG_WARN("request failed model=%s attempts=%u status=504 error=\"request_timeout_ms=%u reached before an answer\"",
                requested_model_, attempts_, ctx_->cfg->agent.request_timeout_ms);
    answer_error(504, "edgeway: no upstream answered within request_timeout_ms.", "server_error", nullptr, "timeout",
                 "", now_ms);
}

uint64_t ProxyExchange::deadline_ms() const {
    if (state_ == ExchangeState::backoff) return wake_ms_ < deadline_ms_ ? wake_ms_ : deadline_ms_;
    if (state_ == ExchangeState::committed || !active()) return 0;
    if (hedge_at_ms_ && hedge_at_ms_ < deadline_ms_) return hedge_at_ms_;
    return deadline_ms_;
}

void ProxyExchange::next_attempt(uint64_t now_ms) {
    const Config& cfg = *ctx_->cfg;
    char err[EW_CAP_ERROR_TEXT];
    ProxyAttempt* a = free_slot();  // nothing is in flight when the next attempt starts
    for (;;) {
        // A parked connection the server had closed: the same candidate again on a fresh
        // connection. Not a new attempt, and no health penalty.
        bool fresh = fresh_retry_;
        fresh_retry_ = false;
        if (fresh) a->trial = fresh_trial_;  // the same attempt again, in whichever slot is free
        fresh_trial_ = false;
        if (!fresh) {
            if (!attempt_allowed(attempts_, cfg.agent.max_attempts, now_ms, deadline_ms_)) {
                answer_unavailable(now_ms);
                return;
            }
            if (cand_next_ >= cand_count_) {
                // Every candidate was tried once: start over with what can serve now, after a
                // back-off, since this re-tries endpoints that just failed.
                for (uint32_t i = 0; i < cfg.endpoint_count; i++) health_tick(&ctx_->health[i], *ctx_->params, now_ms);
                cand_count_ = route_candidates(now_ms);
                cand_next_ = 0;
                if (cand_count_ == 0) {
                    answer_unavailable(now_ms);
                    return;
                }
                if (attempts_ > 0) {
                    uint64_t remaining = deadline_ms_ > now_ms ? deadline_ms_ - now_ms : 0;
                    uint32_t wait = backoff_with_retry_after(rounds_++, cfg.agent.retry_backoff_ms,
                                                             cfg.agent.retry_backoff_max_ms, ctx_->rng->next(), 0,
                                                             remaining);
                    if (wait >= remaining) {
                        answer_unavailable(now_ms);
                        return;
                    }
                    if (wait > 0) {
                        schedule(now_ms + wait);  // the new list is walked when the wait ends
                        return;
                    }
                }
            }
            const Candidate& c = cands_[cand_next_++];
            // Health may have changed since the list was made (another request's failure).
            Health& ch = ctx_->health[c.endpoint];
            if (!router_candidate_usable(ch, c, now_ms, cfg.agent.trial_requests)) continue;
            if (failover_pending_) {
                ctx_->metrics->failovers[static_cast<size_t>(failover_reason_)]++;
                if (failover_from_ < EW_CAP_ENDPOINTS)
                    ctx_->metrics->failovers_from[failover_from_][static_cast<size_t>(failover_reason_)]++;
                failover_pending_ = false;
                failed_over_ = true;
            }
            cur_ = c;
            attempts_++;
            a->trial = router_candidate_is_trial(ch, c, now_ms);
            if (a->trial) {
                // Held until this attempt reports, at most until its deadline.
                uint64_t until = now_ms + cfg.endpoints[c.endpoint].timeout_ms;
                if (until > deadline_ms_) until = deadline_ms_;
                health_trial_begin(&ch, until, now_ms);
                EW_LOG_INFO("trial request endpoint=%s model=%s (DOWN, its probe cannot confirm recovery)",
                            cfg.endpoints[c.endpoint].name, c.model);
            }
        }
        a->cand = cur_;
        a->role = AttemptRole::single;
        ResultKind k = open_attempt(*a, now_ms, fresh, err, sizeof err);
        if (k == ResultKind::ok) {
            if (a->live()) arm_hedge(*a, now_ms);
            return;
        }
        if (state_ == ExchangeState::done) return;  // answered (e.g. the table was full)
        AttemptFailure f;
        f.kind = k;
        f.message = err;
        f.reason = reason_of(k, 0);
        record(*a, f, now_ms);
    }
}

ResultKind ProxyExchange::open_attempt(ProxyAttempt& a, uint64_t now_ms, bool fresh_only, char* err, size_t cap) {
    const EndpointConfig& ec = ctx_->cfg->endpoints[a.cand.endpoint];
    a.started_ms = now_ms;
    a.head_ms = 0;
    uint64_t attempt_deadline = now_ms + ec.timeout_ms;
    if (attempt_deadline > deadline_ms_) attempt_deadline = deadline_ms_;
    UpstreamPool& pool = *ctx_->pool;
    a.retry_after_known = false;
    a.retry_after_ms = 0;
    a.sse_first = a.sse_early_end = false;
    if (!other(a).live()) {
        // What only the committed attempt uses.
        saw_done_ = bodiless_ = false;
        tail_len_ = 0;
        prompt_tokens_ = completion_tokens_ = 0;
    }
    UpstreamConn* c = fresh_only ? nullptr : pool.take_idle(a.cand.endpoint, &a, attempt_deadline);
    if (c) {
        a.conn = c;
        return send_request(a, now_ms, err, cap);
    }
    c = pool.take_free();
    if (c == nullptr) {
        if (other(a).live()) {  // a hedge (or its retry) finds no slot: the attempt in flight carries on
            copy_str(err, cap, "upstream connection table full");
            return ResultKind::connect;
        }
        // The connection table is full: answer at once rather than queue.
        copy_str(last_error_, sizeof last_error_, "upstream connection table full");
        EW_LOG_WARN("request failed model=%s attempts=%u status=503 error=\"every upstream connection slot is in use "
                    "(EW_CAP_UPSTREAM_CONNS=%u)\"",
                    requested_model_, attempts_, static_cast<unsigned>(EW_CAP_UPSTREAM_CONNS));
        answer_error(503, "edgeway: every upstream connection slot is in use; retry shortly.", "server_error", nullptr,
                     "overloaded", "Retry-After: 1\r\n", now_ms);
        return ResultKind::connect;
    }
    ResultKind k = c->open(&ec, &ctx_->runtime[a.cand.endpoint], a.cand.endpoint, &a, attempt_deadline, now_ms, err, cap);
    if (k != ResultKind::ok) return k;
    a.conn = c;
    set_state(a, ExchangeState::connecting);
    return ResultKind::ok;
}

void ProxyExchange::on_upstream_ready(ProxyAttempt& a, uint64_t now_ms) {
    char err[EW_CAP_ERROR_TEXT];
    ResultKind k = send_request(a, now_ms, err, sizeof err);
    if (k == ResultKind::ok) return;
    AttemptFailure f;
    f.kind = k;
    f.message = err;
    f.reason = reason_of(k, 0);
    attempt_failed(a, f, now_ms);
}

ResultKind ProxyExchange::send_request(ProxyAttempt& a, uint64_t now_ms, char* err, size_t cap) {
    const EndpointConfig& ec = ctx_->cfg->endpoints[a.cand.endpoint];
    char head[EW_CAP_UPSTREAM_HEAD];
    StrBuf h(head, sizeof head);
    // Local path /v1/<rest> (validated) maps to the endpoint's base path + /<rest>.
    h.appendf("POST %s%s HTTP/1.1\r\nHost: %s:%u\r\n", ec.base_path, req_.path + 3, ec.host, ec.port);
    if (multipart_) {
        // The form as sent, the model's value replaced: [before][model][after].
        body_.part[0] = req_.body;
        body_.len[0] = mp_model_.begin;
        body_.part[1] = a.cand.model;
        body_.len[1] = strlen(a.cand.model);
        body_.part[2] = req_.body + mp_model_.end;
        body_.len[2] = req_.body_len - mp_model_.end;
        h.append("Content-Type: ");
        h.append(req_.content_type, req_.content_type_len);
        h.append("\r\n");
    } else {
        size_t lit = 0;
        json_string_literal(a.cand.model, strlen(a.cand.model), a.model_json, sizeof a.model_json, &lit);
        json_rewrite_model(req_.body, req_.body_len, model_span_, a.model_json, lit, &body_);
        h.append("Content-Type: application/json\r\n");
    }
    h.appendf("Content-Length: %zu\r\nAccept: %s\r\nUser-Agent: edgeway/%s\r\n", body_.total(),
              stream_ ? "text/event-stream" : speech_ ? "*/*" : "application/json", EW_VERSION);
    // The client's OpenAI headers (header_policy), the endpoint's own, then its key.
    h.append(req_.forward_headers, req_.forward_len);
    h.append(ec.extra_headers);
    append_auth_header(&h, ec.auth_header, ec.api_key);
    h.append("\r\n");
    if (h.overflow) {
        copy_str(err, cap, "request head too large");
        drop_connection(a);
        return ResultKind::bad_response;
    }
    fallback_used_ = fallback_used_ || strcmp(a.cand.model, requested_model_) != 0;
    EW_LOG_DEBUG("attempt %u endpoint=%s model=%s reused=%d%s", attempts_, ec.name, a.cand.model,
                 a.conn->reused() ? 1 : 0, a.role == AttemptRole::hedge ? " hedge=1" : "");
    bool reused = a.conn->reused();
    ResultKind k = a.conn->send(head, h.len, body_.part, body_.len, 3, false, a.conn->deadline_ms(), now_ms, err, cap);
    if (k != ResultKind::ok) {
        a.conn = nullptr;  // closed by send()
        if (reused && !fresh_retry_used_) {
            fresh_retry_used_ = true;
            if (retry_fresh(a, now_ms, err, cap)) return ResultKind::ok;  // not a failure of the endpoint
            return ResultKind::connect;
        }
        return k;
    }
    set_state(a, ExchangeState::awaiting_head);
    return ResultKind::ok;
}

// The same candidate again on a fresh connection (its parked one was stale): from the loop
// when it is the only attempt, at once when another is in flight (the exchange is not in
// back-off then). False: the fresh connection failed too (the attempt is over).
bool ProxyExchange::retry_fresh(ProxyAttempt& a, uint64_t now_ms, char* err, size_t cap) {
    if (!other(a).live()) {
        set_state(a, ExchangeState::idle);
        cur_ = a.cand;
        fresh_trial_ = a.trial;  // next_attempt may take the other slot
        a.trial = false;
        fresh_retry_ = true;
        schedule(now_ms);
        return true;
    }
    return open_attempt(a, now_ms, true, err, cap) == ResultKind::ok;
}

void ProxyExchange::on_upstream_error(ProxyAttempt& a, UpstreamConn* c, ResultKind kind, const char* message,
                                      uint64_t now_ms) {
    a.conn = nullptr;
    if (state_ == ExchangeState::committed) {
        fail_committed(message, now_ms);
        return;
    }
    if (a.state == ExchangeState::awaiting_error_body) {
        error_body_broken(a, kind, message, now_ms);
        return;
    }
    AttemptFailure f;
    f.kind = kind;
    f.message = message;
    char err[EW_CAP_ERROR_TEXT];
    if (kind == ResultKind::connect && c->reused() && c->bytes_in() == 0 && !fresh_retry_used_) {
        fresh_retry_used_ = true;
        if (retry_fresh(a, now_ms, err, sizeof err)) return;
        f.message = err;
    }
    f.reason = a.state == ExchangeState::awaiting_first_event && kind == ResultKind::timeout ? FailoverReason::first_token
                                                                                             : reason_of(kind, 0);
    attempt_failed(a, f, now_ms);
}

// The one failure path: the attempt is over, its outcome is recorded, and the next one starts
// from the loop, unless the other attempt of a hedged pair is still in flight: it carries on.
void ProxyExchange::attempt_failed(ProxyAttempt& a, const AttemptFailure& f, uint64_t now_ms) {
    drop_connection(a);
    record(a, f, now_ms);
    if (other(a).live()) {
        EW_LOG_INFO("hedged attempt failed endpoint=%s; the other attempt carries on",
                    ctx_->cfg->endpoints[a.cand.endpoint].name);
        return;
    }
    hedge_at_ms_ = 0;
    schedule(now_ms);
}

void ProxyExchange::drop_connection(ProxyAttempt& a) {
    if (a.conn) {
        a.conn->release(false);
        a.conn = nullptr;
    }
    if (stager_ == a.slot) {
        out_->drop_staged();
        stager_ = -1;
    }
    if (err_owner_ == a.slot) err_owner_ = -1;
    set_state(a, ExchangeState::idle);
}

void ProxyExchange::drop_all() {
    hedge_at_ms_ = 0;
    drop_connection(att_[0]);
    drop_connection(att_[1]);
}

void ProxyExchange::record(ProxyAttempt& a, const AttemptFailure& f, uint64_t now_ms) {
    cur_ = a.cand;
    const char* name = ctx_->cfg->endpoints[a.cand.endpoint].name;
    StrBuf e(last_error_, sizeof last_error_);
    if (f.kind == ResultKind::http_status && !(f.message && f.message[0]))
        e.appendf("%s: HTTP %u", name, f.status);
    else
        e.appendf("%s: %s", name, f.message && f.message[0] ? f.message : to_string(f.kind));
    Observation o;
    o.kind = f.kind;
    o.http_status = f.status;
    o.latency_ms = static_cast<uint32_t>(now_ms - a.started_ms);
    o.model_index = f.status == 429 || f.meaning == ErrorMeaning::model_not_found ? a.cand.model_slot : -1;
    o.meaning = f.meaning;
    o.error = f.message && f.message[0] ? f.message : "";
    char status_text[24];
    if (f.kind == ResultKind::http_status && !o.error[0]) {
        StrBuf st(status_text, sizeof status_text);
        st.appendf("HTTP %u", f.status);
        o.error = status_text;
    }
    o.has_retry_after = f.status == 429 && a.retry_after_known;
    o.retry_after_ms = a.retry_after_ms;
    o.trial = a.trial;
    a.trial = false;
    Health& h = ctx_->health[a.cand.endpoint];
    ObservationEffect eff = health_observe(&h, *ctx_->params, o, now_ms);
    ctx_->metrics->attempts[a.cand.endpoint][static_cast<size_t>(outcome_of(f.kind, f.status))]++;
    if (eff == ObservationEffect::rate_limited)
        fail_rate_limited_++;
    else if (eff == ObservationEffect::key_bad)
        fail_key_bad_++;
    else if (eff == ObservationEffect::key_exhausted)
        fail_quota_++;
    else
        fail_other_++;
    failover_pending_ = true;
    failover_reason_ = f.reason;
    failover_from_ = a.cand.endpoint;
    EW_LOG_INFO("attempt %u failed endpoint=%s model=%s error=\"%s\"", attempts_, name, a.cand.model, last_error_);
    if (eff == ObservationEffect::key_bad) EW_LOG_WARN("endpoint=%s api_key=rejected status=%u", name, f.status);
    if (eff == ObservationEffect::key_exhausted)
        EW_LOG_WARN("endpoint=%s api_key=exhausted (insufficient_quota) retry_in_s=%u", name,
                    static_cast<unsigned>(ctx_->params->key_exhausted_ms / 1000));
    note_state(*ctx_, a.cand.endpoint, now_ms, "traffic");
}

void ProxyExchange::record_success(ProxyAttempt& a, uint16_t status, uint64_t now_ms) {
    Observation o;
    o.kind = ResultKind::ok;
    o.http_status = status;
    o.latency_ms = static_cast<uint32_t>(now_ms - a.started_ms);
    o.trial = a.trial;
    a.trial = false;
    health_observe(&ctx_->health[a.cand.endpoint], *ctx_->params, o, now_ms);
    ctx_->metrics->attempts[a.cand.endpoint][static_cast<size_t>(AttemptOutcome::ok)]++;
    note_state(*ctx_, a.cand.endpoint, now_ms, "traffic");
}

// ---- an attempt's upstream events, to its exchange ---------------------------------------------

void ProxyAttempt::on_upstream_ready(UpstreamConn*, uint64_t now_ms) { ex->on_upstream_ready(*this, now_ms); }
void ProxyAttempt::on_upstream_head(UpstreamConn* c, uint64_t now_ms) { ex->on_upstream_head(*this, c, now_ms); }
void ProxyAttempt::on_upstream_body(UpstreamConn*, const char* data, size_t len, uint64_t now_ms) {
    ex->on_upstream_body(*this, data, len, now_ms);
}
void ProxyAttempt::on_upstream_done(UpstreamConn* c, uint64_t now_ms) { ex->on_upstream_done(*this, c, now_ms); }
void ProxyAttempt::on_upstream_error(UpstreamConn* c, ResultKind kind, const char* message, uint64_t now_ms) {
    ex->on_upstream_error(*this, c, kind, message, now_ms);
}
size_t ProxyAttempt::upstream_body_room() const { return ex ? ex->upstream_body_room(*this) : 0; }

void ProxyExchange::abandon_trial(ProxyAttempt& a) {
    if (!a.trial) return;
    a.trial = false;
    if (a.cand.endpoint < EW_CAP_ENDPOINTS) health_trial_abandon(&ctx_->health[a.cand.endpoint]);
}

}  // namespace ew
