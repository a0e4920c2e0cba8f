#include "net/proxy.h"

#include <string.h>

#include "core/openai.h"
#include "core/retry.h"
#include "core/strbuf.h"
#include "net/agent.h"
#include "net/client.h"
#include "net/log.h"

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

bool is_sse(const HeaderValue& content_type) { return header_starts_with(content_type, "text/event-stream"); }

}  // namespace

// ---- start: validate the request --------------------------------------------------------------

void ProxyExchange::start(Agent* agent, ClientConn* client, uint64_t now_ms) {
    agent_ = agent;
    client_ = client;
    state_ = ExchangeState::attempting;
    cand_count_ = cand_next_ = 0;
    attempts_ = retries_same_ = 0;
    conn_ = nullptr;
    cur_ = Candidate{255, 255, nullptr};
    stream_ = committed_ = saw_done_ = fallback_used_ = stale_retry_ = failover_pending_ = false;
    started_ms_ = now_ms;
    backoff_until_ms_ = 0;
    head_ms_ = 0;
    last_status_ = 0;
    last_kind_ = ResultKind::ok;
    last_error_[0] = '\0';
    requested_model_[0] = '\0';
    tail_len_ = 0;
    const Config& cfg = agent_->config();
    deadline_ms_ = now_ms + cfg.agent.request_timeout_ms;

    const RequestParser& r = client_->request();
    const char* body = r.body;
    size_t n = r.body_len;
    if (n == 0) {
        reject(400, "The request body is empty; send a JSON object.", "invalid_request_error", nullptr, now_ms);
        return;
    }
    // One pass validates the document and finds "model"; the error text needs a second.
    int count = json_find_key(body, n, "model", &model_span_);
    if (count < 0) {
        JsonError jerr;
        char msg[160];
        StrBuf m(msg, sizeof msg);
        if (json_validate(body, n, &jerr) != JsonStatus::ok)
            m.appendf("The request body is not valid JSON: %s at byte %zu.", jerr.message, jerr.offset);
        else
            m.append("The request body must be a JSON object.");
        reject(400, msg, "invalid_request_error", nullptr, now_ms);
        return;
    }
    if (count == 0) {
        reject(400, "you must provide a model parameter", "invalid_request_error", "model", now_ms);
        return;
    }
    if (count > 1) {
        reject(400, "The request has more than one \"model\" member.", "invalid_request_error", "model", now_ms);
        return;
    }
    if (!json_span_string(body, model_span_, requested_model_, sizeof requested_model_) || !requested_model_[0]) {
        reject(400, "\"model\" must be a non-empty string of at most 63 bytes.", "invalid_request_error", "model",
               now_ms);
        return;
    }
    JsonSpan stream_span;
    if (json_find_key(body, n, "stream", &stream_span) >= 1) json_span_bool(body, stream_span, &stream_);

    if (!router_model_known(cfg, requested_model_)) {
        char msg[160];
        StrBuf m(msg, sizeof msg);
        m.append("The model `");
        m.append(requested_model_);
        m.append("` is not served by any endpoint of this edgeway agent.");
        reject(404, msg, "invalid_request_error", "model", now_ms, "model_not_found");
        return;
    }
    cand_count_ = router_candidates(cfg, agent_->health(), requested_model_, now_ms, agent_->random(), cands_,
                                    EW_ROUTER_CANDIDATES_CAP);
    agent_->loop().add(this);
    next_attempt(now_ms);
}

void ProxyExchange::reject(uint16_t status, const char* message, const char* type, const char* param,
                           uint64_t now_ms, const char* code) {
    char body[512];
    StrBuf b(body, sizeof body);
    openai_error_body(&b, message, type, param, code);
    char hdr[256];
    extra_headers(hdr, sizeof hdr, false);
    client_->respond(status, "application/json", b.data, b.len, hdr);
    end(now_ms, status);
}

// ---- attempts -------------------------------------------------------------------------------

void ProxyExchange::next_attempt(uint64_t now_ms) {
    const Config& cfg = agent_->config();
    Health* health = agent_->health();
    for (;;) {
        if (!attempt_allowed(attempts_, cfg.agent.max_attempts, now_ms, deadline_ms_)) {
            answer_unavailable(now_ms);
            return;
        }
        if (cand_next_ >= cand_count_) {
            // Every candidate was tried once: start over with what can serve now, after a
            // back-off, since this re-tries endpoints that just failed.
            health_tick_all(now_ms);
            cand_count_ = router_candidates(cfg, health, requested_model_, now_ms, agent_->random(), cands_,
                                            EW_ROUTER_CANDIDATES_CAP);
            cand_next_ = 0;
            if (cand_count_ == 0) {
                answer_unavailable(now_ms);
                return;
            }
            uint64_t remaining = deadline_ms_ > now_ms ? deadline_ms_ - now_ms : 0;
            uint32_t wait = backoff_with_retry_after(retries_same_++, cfg.agent.retry_backoff_ms,
                                                     cfg.agent.retry_backoff_max_ms, agent_->random(), 0, remaining);
            if (wait >= remaining) {
                answer_unavailable(now_ms);
                return;
            }
            if (wait > 0) {
                backoff_until_ms_ = now_ms + wait;
                state_ = ExchangeState::waiting_backoff;
                return;
            }
        }
        const Candidate& c = cands_[cand_next_++];
        // Health may have changed since the list was made (another request's failure).
        if (!health_can_serve(health[c.endpoint], c.model_slot, now_ms)) continue;
        cur_ = c;
        break;
    }
    if (failover_pending_) {
        agent_->metrics().failovers[static_cast<size_t>(failover_reason_)]++;
        failover_pending_ = false;
    }
    attempts_++;
    state_ = ExchangeState::attempting;
    attempt_started_ms_ = now_ms;
    head_ms_ = 0;
    const EndpointConfig& ec = cfg.endpoints[cur_.endpoint];
    uint64_t attempt_deadline = now_ms + ec.timeout_ms;
    if (attempt_deadline > deadline_ms_) attempt_deadline = deadline_ms_;

    UpstreamPool& pool = agent_->pool();
    UpstreamConn* c = pool.take_idle(cur_.endpoint, this, attempt_deadline);
    if (c) {
        conn_ = c;
        send_request(now_ms);
        return;
    }
    c = pool.take_free();
    if (c == nullptr) {
        // The connection table is full: answer at once rather than queue.
        copy_str(last_error_, sizeof last_error_, "upstream connection table full");
        answer_unavailable(now_ms);
        return;
    }
    conn_ = c;
    c->open(&ec, &agent_->runtime(cur_.endpoint), cur_.endpoint, this, &agent_->loop(), attempt_deadline, now_ms);
}

void ProxyExchange::on_upstream_ready(UpstreamConn*, uint64_t now_ms) { send_request(now_ms); }

void ProxyExchange::send_request(uint64_t now_ms) {
    const Config& cfg = agent_->config();
    const EndpointConfig& ec = cfg.endpoints[cur_.endpoint];
    const RequestParser& r = client_->request();
    size_t lit = 0;
    json_string_literal(cur_.model, strlen(cur_.model), model_json_, sizeof model_json_, &lit);
    json_rewrite_model(r.body, r.body_len, model_span_, model_json_, lit, &body_);
    char head[EW_CAP_UPSTREAM_HEAD];
    StrBuf h(head, sizeof head);
    // Local path /v1/<rest> maps to the endpoint's base path + /<rest>.
    h.appendf("POST %s%s HTTP/1.1\r\nHost: %s:%u\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
              "Accept: %s\r\nUser-Agent: edgeway/%s\r\n",
              ec.base_path, r.path + 3, ec.host, ec.port, body_.total(),
              stream_ ? "text/event-stream" : "application/json", EW_VERSION);
    if (ec.api_key[0]) h.appendf("Authorization: Bearer %s\r\n", ec.api_key);
    h.append("\r\n");
    if (h.overflow) {
        reject(414, "The request path is too long.", "invalid_request_error", nullptr, now_ms);
        return;
    }
    fallback_used_ = fallback_used_ || strcmp(cur_.model, requested_model_) != 0;
    EW_LOG_DEBUG("attempt %u endpoint=%s model=%s reused=%d", attempts_, ec.name, cur_.model,
                 conn_->reused() ? 1 : 0);
    conn_->send(head, h.len, body_.part, body_.len, 3, false, conn_->deadline_ms());
}

void ProxyExchange::on_upstream_head(UpstreamConn* c, uint64_t now_ms) {
    const ResponseParser& r = c->response();
    uint16_t status = r.status;
    head_ms_ = now_ms;
    AttemptVerdict v = classify_attempt(ResultKind::http_status, status);
    const Config& cfg = agent_->config();
    Health& h = agent_->health()[cur_.endpoint];
    if (v == AttemptVerdict::success || v == AttemptVerdict::return_to_client) {
        // The service answered properly: that is health, whatever the status.
        record_outcome(ResultKind::ok, status, now_ms);
        state_ = ExchangeState::relaying;
        if (v == AttemptVerdict::success && stream_ && is_sse(r.content_type)) {
            // Commit waits for the first data event, within first_token_timeout_ms.
            sse_init(&sse_);
            uint64_t d = now_ms + cfg.agent.first_token_timeout_ms;
            c->set_deadline(d < deadline_ms_ ? d : deadline_ms_);
            return;
        }
        commit(status, r.content_type.present ? r.content_type.text : "application/json", now_ms);
        return;
    }
    // A failure: this attempt ends here, the connection is not reused (body unread).
    conn_ = nullptr;
    c->release(false);
    if (v == AttemptVerdict::key_bad_failover) {
        health_key_bad(&h, status, now_ms);
        agent_->metrics().attempts[cur_.endpoint][static_cast<size_t>(AttemptOutcome::http_4xx)]++;
        EW_LOG_WARN("endpoint=%s api_key=rejected status=%u", cfg.endpoints[cur_.endpoint].name, status);
    } else if (status == 429) {
        uint64_t delay = 0;
        bool have = parse_retry_after_ms(r.retry_after_ms.text, r.retry_after_ms.len, &delay) ||
                    parse_retry_after(r.retry_after.text, r.retry_after.len, r.date.present ? r.date.text : nullptr,
                                      r.date.len, &delay);
        if (!have) delay = cfg.agent.retry_backoff_ms;
        health_rate_limit(&h, cur_.model_slot, now_ms + delay, now_ms);
        agent_->metrics().attempts[cur_.endpoint][static_cast<size_t>(AttemptOutcome::http_429)]++;
        EW_LOG_INFO("endpoint=%s model=%s rate_limited_ms=%llu", cfg.endpoints[cur_.endpoint].name, cur_.model,
                    static_cast<unsigned long long>(delay));
    } else {
        record_outcome(ResultKind::http_status, status, now_ms);
    }
    note_failure(ResultKind::http_status, status, nullptr);
    next_attempt(now_ms);
}

void ProxyExchange::on_upstream_error(UpstreamConn* c, ResultKind kind, const char* message, uint64_t now_ms) {
    conn_ = nullptr;
    if (committed_) {
        fail_committed(message, now_ms);
        return;
    }
    bool first_token = state_ == ExchangeState::relaying && kind == ResultKind::timeout;
    if (kind == ResultKind::connect && c->reused() && c->bytes_in() == 0 && !stale_retry_) {
        // A parked connection the server had closed: not the endpoint's fault. Same candidate,
        // fresh connection, no health penalty.
        stale_retry_ = true;
        cand_next_--;
        attempts_--;
        next_attempt(now_ms);
        return;
    }
    record_outcome(kind, 0, now_ms);
    note_failure(kind, 0, message);
    if (first_token) failover_reason_ = FailoverReason::first_token;
    state_ = ExchangeState::attempting;
    next_attempt(now_ms);
}

void ProxyExchange::note_failure(ResultKind kind, uint16_t status, const char* message) {
    last_kind_ = kind;
    last_status_ = status;
    const char* name = agent_->config().endpoints[cur_.endpoint].name;
    StrBuf e(last_error_, sizeof last_error_);
    if (kind == ResultKind::http_status)
        e.appendf("%s: HTTP %u", name, status);
    else
        e.appendf("%s: %s", name, message && message[0] ? message : to_string(kind));
    // Counted as a failover only if another attempt follows (next_attempt).
    failover_pending_ = true;
    failover_reason_ = reason_of(kind, status);
    EW_LOG_INFO("attempt %u failed endpoint=%s model=%s error=\"%s\"", attempts_, name, cur_.model, last_error_);
}

void ProxyExchange::record_outcome(ResultKind kind, uint16_t status, uint64_t now_ms) {
    Outcome o;
    o.kind = kind;
    o.http_status = status;
    o.latency_ms = static_cast<uint32_t>(now_ms - attempt_started_ms_);
    char msg[EW_CAP_ERROR_TEXT];
    if (kind == ResultKind::http_status) {
        StrBuf m(msg, sizeof msg);
        m.appendf("HTTP %u", status);
        o.error = msg;
    }
    Health& h = agent_->health()[cur_.endpoint];
    HealthState before = h.state;
    health_record(&h, agent_->health_params(), o, now_ms, false);
    agent_->metrics().attempts[cur_.endpoint][static_cast<size_t>(outcome_of(kind, status))]++;
    if (h.state != before)
        EW_LOG_WARN("endpoint=%s state %s -> %s (traffic) score=%.1f", agent_->config().endpoints[cur_.endpoint].name,
                    to_string(before), to_string(h.state), h.score);
}

// ---- endings --------------------------------------------------------------------------------

void ProxyExchange::answer_unavailable(uint64_t now_ms) {
    const Config& cfg = agent_->config();
    uint64_t soonest = router_soonest_serve_ms(cfg, agent_->health(), requested_model_, now_ms);
    uint64_t secs = 1;
    if (soonest != UINT64_MAX && soonest > now_ms) secs = (soonest - now_ms + 999) / 1000;
    if (soonest == UINT64_MAX) secs = (cfg.probe.down_interval_ms + 999) / 1000;
    if (secs < 1) secs = 1;
    char msg[EW_CAP_ERROR_TEXT + 160];
    StrBuf m(msg, sizeof msg);
    if (attempts_ == 0)
        m.appendf("No upstream can serve model `%s` right now (all endpoints down or rate limited).",
                  requested_model_);
    else
        m.appendf("All %u upstream attempts for model `%s` failed; last: %s.", attempts_, requested_model_,
                  last_error_);
    char body[EW_CAP_ERROR_TEXT + 400];
    StrBuf b(body, sizeof body);
    openai_error_body(&b, msg, "server_error", nullptr, "upstream_unavailable");
    char hdr[384];
    StrBuf hs(hdr, sizeof hdr);
    extra_headers(hdr, sizeof hdr, false);
    hs.len = strlen(hdr);
    hs.appendf("Retry-After: %llu\r\n", static_cast<unsigned long long>(secs));
    // The attempts were spent here: an SDK's own retries would only multiply upstream load.
    if (attempts_ > 0) hs.append("x-should-retry: false\r\n");
    client_->respond(503, "application/json", b.data, b.len, hdr);
    end(now_ms, 503);
}

void ProxyExchange::end(uint64_t now_ms, uint16_t status) {
    finish_metrics(status, now_ms);
    ClientConn* cl = client_;
    detach();
    cl->finish_response();
}

void ProxyExchange::finish_metrics(uint16_t status, uint64_t now_ms) {
    Metrics& m = agent_->metrics();
    m.total++;
    bool ok = status >= 200 && status < 300;
    if (ok) {
        m.success++;
        m.latency_sum_ms += head_ms_ > attempt_started_ms_ ? head_ms_ - attempt_started_ms_ : 0;
    } else {
        m.failed++;
    }
    if (ok && fallback_used_) m.fallback_triggered++;
    m.request_duration.observe_ms(now_ms - started_ms_);
    m.count_request(cur_.endpoint, cur_.model_slot, status);
    if (ok && (prompt_tokens_ || completion_tokens_) && cur_.endpoint < EW_CAP_ENDPOINTS &&
        cur_.model_slot < EW_CAP_MODELS_PER_ENDPOINT) {
        m.prompt_tokens[cur_.endpoint][cur_.model_slot] += prompt_tokens_;
        m.completion_tokens[cur_.endpoint][cur_.model_slot] += completion_tokens_;
    }
    prompt_tokens_ = completion_tokens_ = 0;
}

void ProxyExchange::detach() {
    if (conn_) {
        conn_->release(false);
        conn_ = nullptr;
    }
    agent_->loop().remove(this);
    state_ = ExchangeState::idle;
    client_ = nullptr;
}

void ProxyExchange::cancel() {
    if (!active()) return;
    // The client left: free the upstream attempt and the slot now.
    if (conn_) EW_LOG_INFO("client left: cancelling attempt on endpoint=%s",
                           agent_->config().endpoints[cur_.endpoint].name);
    finish_metrics(499, pal::now_ms());
    detach();
}

void ProxyExchange::on_client_drained(uint64_t) {
    // Upstream reads resume through upstream_body_room() on the next poll; nothing to do.
}

uint64_t ProxyExchange::deadline_ms() const {
    if (state_ == ExchangeState::waiting_backoff) return backoff_until_ms_;
    if (committed_) return 0;
    return deadline_ms_;
}

void ProxyExchange::on_deadline(uint64_t now_ms) {
    if (state_ == ExchangeState::waiting_backoff) {
        state_ = ExchangeState::attempting;
        next_attempt(now_ms);
        return;
    }
    if (committed_ || !active()) return;
    // The whole request ran out of time before anything was committed.
    if (conn_) {
        conn_->release(false);
        conn_ = nullptr;
    }
    copy_str(last_error_, sizeof last_error_, "request_timeout_ms reached");
    char body[256];
    StrBuf b(body, sizeof body);
    openai_error_body(&b, "edgeway: no upstream answered within request_timeout_ms.", "server_error", nullptr,
                      "timeout");
    char hdr[256];
    extra_headers(hdr, sizeof hdr, false);
    client_->respond(504, "application/json", b.data, b.len, hdr);
    end(now_ms, 504);
}

// ---- small parts ----------------------------------------------------------------------------

void ProxyExchange::extra_headers(char* buf, size_t cap, bool served) const {
    StrBuf h(buf, cap);
    const Config& cfg = agent_->config();
    const char* ep = cur_.endpoint < cfg.endpoint_count ? cfg.endpoints[cur_.endpoint].name : "none";
    const char* model = cur_.model ? cur_.model : (requested_model_[0] ? requested_model_ : "none");
    if (!served) ep = attempts_ ? ep : "none";
    h.appendf("x-edgeway-endpoint: %s\r\nx-edgeway-model: %s\r\nx-edgeway-attempts: %u\r\n", ep, model, attempts_);
}

void ProxyExchange::health_tick_all(uint64_t now_ms) { agent_->tick_health(now_ms); }

}  // namespace ew
