// The answers edgeway itself makes for a proxied request (its error answers, 503s with their
// class), and how an exchange ends: metrics, the access log line, cancellation.
#include <string.h>

#include "core/header_policy.h"
#include "core/request_check.h"
#include "core/strbuf.h"
#include "net/log.h"
#include "net/proxy.h"
#include "net/state_log.h"

namespace ew {
namespace {

constexpr uint16_t kClientLeft = 499;  // counted (nginx's code) when the client went away first

}  // namespace
// ---- answers edgeway makes ------------------------------------------------------------------

void ProxyExchange::edgeway_headers(StrBuf* h, bool served) const {
    const Config& cfg = *ctx_->cfg;
    bool tried = cur_.endpoint < cfg.endpoint_count && (served || attempts_ > 0);
    const char* ep = tried ? cfg.endpoints[cur_.endpoint].name : "none";
    // Both names are validated (the config's, and the request's by model_name_check).
    const char* model = cur_.model && tried ? cur_.model : (requested_model_[0] ? requested_model_ : "none");
    h->appendf("x-request-id: %s\r\nx-edgeway-endpoint: %s\r\nx-edgeway-model: %s\r\nx-edgeway-attempts: %u\r\n",
               request_id_, ep, model, attempts_);
}

void ProxyExchange::answer_error(uint16_t status, const char* message, const char* type, const char* param,
                                 const char* code, const char* more_headers, uint64_t now_ms) {
    char body[EW_CAP_ERROR_TEXT + 512];
    StrBuf b(body, sizeof body);
    openai_error_body(&b, message, type, param, code);
    char hdr[EW_CAP_CLIENT_HEAD / 2];
    StrBuf h(hdr, sizeof hdr);
    edgeway_headers(&h, false);
    h.append(more_headers);
    out_->respond(status, "application/json", b.data, b.len, hdr);
    end(AnswerEnd::complete, status, now_ms);
}

void ProxyExchange::answer_unavailable(uint64_t now_ms) {
    // An upstream's own answer (a 404 model_not_found, a 400 context_length_exceeded) that
    // nothing else could avoid goes to the client as it was sent.
    if (relay_held(now_ms)) return;
    const Config& cfg = *ctx_->cfg;
    uint64_t soonest = router_soonest_serve_ms(cfg, ctx_->health, requested_model_, now_ms);
    uint64_t wait_ms = cfg.probe.down_interval_ms;
    if (soonest != UINT64_MAX) wait_ms = soonest > now_ms ? soonest - now_ms : 0;
    uint64_t secs = (wait_ms + 999) / 1000;
    if (secs < 1) secs = 1;
    char msg[EW_CAP_ERROR_TEXT + 160];
    StrBuf m(msg, sizeof msg);
    char more[160];
    StrBuf hs(more, sizeof more);
    hs.appendf("Retry-After: %llu\r\n", static_cast<unsigned long long>(secs));
    uint16_t status = 503;
    const char* type = "server_error";
    const char* code = "all_endpoints_down";
    bool all_limited = fail_rate_limited_ > 0 && fail_key_bad_ == 0 && fail_other_ == 0 && fail_quota_ == 0;
    bool all_keys = fail_key_bad_ > 0 && fail_rate_limited_ == 0 && fail_other_ == 0 && fail_quota_ == 0;
    bool all_quota = fail_quota_ > 0 && fail_rate_limited_ == 0 && fail_key_bad_ == 0 && fail_other_ == 0;
    if (attempts_ == 0) untried_cause(now_ms, &all_limited, &all_keys, &all_quota);
    if (all_quota) {
        // Out of quota is not a rate limit: retrying in seconds cannot help (x-should-retry).
        status = 429;
        type = "insufficient_quota";
        code = "insufficient_quota";
        m.appendf("Every upstream for model `%s` has run out of quota (insufficient_quota); see /status.",
                  requested_model_);
        hs.append("x-should-retry: false\r\n");
    } else if (all_limited) {
        status = 429;
        type = "rate_limit_error";
        code = "rate_limit_exceeded";
        hs.appendf("retry-after-ms: %llu\r\n", static_cast<unsigned long long>(wait_ms ? wait_ms : 1000));
        if (attempts_ > 0)
            m.appendf("Every upstream for model `%s` is rate limited; last: %s.", requested_model_, last_error_);
        else
            m.appendf("Every upstream for model `%s` is rate limited; retry after the Retry-After delay.",
                      requested_model_);
    } else if (all_keys) {
        code = "upstream_auth_failed";
        if (attempts_ > 0)
            m.appendf("Every upstream for model `%s` rejected its API key; last: %s.", requested_model_, last_error_);
        else
            m.appendf("Every upstream for model `%s` rejected its API key (see /status); check the keys.",
                      requested_model_);
    } else if (attempts_ == 0) {
        m.appendf("No upstream can serve model `%s` right now (all endpoints down or rate limited).", requested_model_);
    } else {
        m.appendf("All %u upstream attempts for model `%s` failed; last: %s.", attempts_, requested_model_, last_error_);
    }
    // The attempts were spent here: an SDK's own retries would only multiply upstream load.
    if (attempts_ > 0 && !all_limited && !all_quota) hs.append("x-should-retry: false\r\n");
    EW_LOG_WARN("request failed model=%s attempts=%u status=%u error=\"%s\"", requested_model_, attempts_, status,
                last_error_);
    answer_error(status, msg, type, nullptr, code, more, now_ms);
}

// Nothing was tried: the endpoints that serve the model (or its fallbacks) were all left
// out. When each was left out for a rate limit, or each for a rejected key, the answer says
// so (429 / upstream_auth_failed), as it does after attempts that met the same.
void ProxyExchange::untried_cause(uint64_t now_ms, bool* all_limited, bool* all_keys, bool* all_quota) const {
    const Config& cfg = *ctx_->cfg;
    const char* chain[EW_ROUTER_CHAIN_CAP];
    size_t chain_n = router_model_chain(cfg, requested_model_, chain, EW_ROUTER_CHAIN_CAP);
    size_t serving = 0, limited = 0, keys = 0, quota = 0;
    for (size_t c = 0; c < chain_n; c++)
        for (uint32_t e = 0; e < cfg.endpoint_count; e++) {
            const EndpointConfig& ec = cfg.endpoints[e];
            for (uint32_t m = 0; m < ec.model_count; m++) {
                if (strcmp(ec.models[m], chain[c]) != 0) continue;
                const Health& h = ctx_->health[e];
                serving++;
                if (h.key_bad)
                    keys++;
                else if (health_key_exhausted_now(h, now_ms))
                    quota++;
                else if (h.state != HealthState::down &&
                         (now_ms < h.rate_limited_until_ms || now_ms < h.model_limited_until_ms[m]))
                    limited++;
            }
        }
    *all_limited = serving > 0 && limited == serving;
    *all_keys = serving > 0 && keys == serving;
    *all_quota = serving > 0 && quota == serving;
}

void ProxyExchange::end(AnswerEnd how, uint16_t status, uint64_t now_ms) {
    finish_metrics(how, status, now_ms);
    close_attempts();
    ctx_->loop->remove(this);
    state_ = ExchangeState::done;
    ClientWriter* w = out_;
    bool chunked = commit_status_ != 0 && !bodiless_;
    out_ = nullptr;
    w->end_answer(how, chunked);
}

// Counts the request as the client saw it: a stream cut after its head was relayed counts
// with the relayed status (and as broken), never as a 502 the client did not get.
void ProxyExchange::finish_metrics(AnswerEnd how, uint16_t status, uint64_t now_ms) {
    Metrics& m = *ctx_->metrics;
    bool served = commit_status_ != 0;
    bool broken = served && how == AnswerEnd::unfinished;
    if (served && status != kClientLeft) status = commit_status_;
    m.total++;
    bool ok = status >= 200 && status < 300 && !broken;
    if (ok) {
        m.success++;
        m.latency_sum_ms += head_ms_ > attempt_started_ms_ ? head_ms_ - attempt_started_ms_ : 0;
    } else {
        m.failed++;
    }
    if (ok && fallback_used_) m.fallback_triggered++;
    if (in_flight_ && m.in_flight) m.in_flight--;
    in_flight_ = false;
    RequestRecord r;
    r.endpoint = served ? cur_.endpoint : kNoEndpoint;
    r.model_slot = served ? cur_.model_slot : kNoSlot;
    r.requested = requested_ref_;
    r.status = status;
    r.duration_ms = now_ms - started_ms_;
    r.broken = broken;
    r.failed_over = failed_over_;
    r.now_ms = now_ms;
    m.count_request(r);
    if (ok && (prompt_tokens_ || completion_tokens_) && cur_.endpoint < EW_CAP_ENDPOINTS &&
        cur_.model_slot < EW_CAP_MODELS_PER_ENDPOINT) {
        m.prompt_tokens[cur_.endpoint][cur_.model_slot] += prompt_tokens_;
        m.completion_tokens[cur_.endpoint][cur_.model_slot] += completion_tokens_;
    }
    // A hedge's loser was sent the same prompt: the winner's count is its best estimate.
    if (loser_sent_) m.hedge.loser_prompt_tokens += prompt_tokens_;
    loser_sent_ = false;
    prompt_tokens_ = completion_tokens_ = 0;
    log_access(status, broken, now_ms);
}

// One line per proxied request. Names are validated (config, model_name_check), the id too;
// the path is the validated local one or "-" when it was refused.
void ProxyExchange::log_access(uint16_t status, bool broken, uint64_t now_ms) const {
    if (!log_enabled(LogLevel::info)) return;
    const Config& cfg = *ctx_->cfg;
    bool served = commit_status_ != 0 && cur_.endpoint < cfg.endpoint_count;
    char path[64];
    StrBuf p(path, sizeof path);
    const char* why = "";
    if (upstream_path_check(req_.path, req_.path_len, &why))
        p.append(req_.path, req_.path_len);
    else
        p.append("-");
    char ttft[24] = "-";
    if (ttft_ms_ != UINT64_MAX) {
        StrBuf t(ttft, sizeof ttft);
        t.appendf("%llu", static_cast<unsigned long long>(ttft_ms_));
    }
    EW_LOG_INFO("access id=%s method=%s path=%s model=%s served_model=%s endpoint=%s status=%u%s attempts=%u "
                "duration_ms=%llu ttft_ms=%s",
                request_id_, req_.method, path, requested_model_[0] ? requested_model_ : "-",
                served && cur_.model ? cur_.model : "-", served ? cfg.endpoints[cur_.endpoint].name : "edgeway", status,
                broken ? " broken=1" : "", attempts_, static_cast<unsigned long long>(now_ms - started_ms_), ttft);
}

void ProxyExchange::cancel(uint64_t now_ms) {
    if (!active()) return;
    // The client left: free the upstream attempt and the slot now.
    for (const ProxyAttempt& a : att_)
        if (a.conn)
            EW_LOG_INFO("client left: cancelling attempt on endpoint=%s", ctx_->cfg->endpoints[a.cand.endpoint].name);
    finish_metrics(AnswerEnd::complete, kClientLeft, now_ms);  // no broken stream, and no success either
    close_attempts();
    ctx_->loop->remove(this);
    state_ = ExchangeState::done;
    out_ = nullptr;
}

// Every attempt's connection closed (never parked: none was read to its end), the slots free;
// a trial still open ends with no outcome (its slot in health is freed).
void ProxyExchange::close_attempts() {
    hedge_at_ms_ = 0;
    stager_ = -1;
    err_owner_ = -1;
    for (ProxyAttempt& a : att_) {
        abandon_trial(a);
        if (a.conn) {
            a.conn->release(false);
            a.conn = nullptr;
        }
        set_state(a, ExchangeState::idle);
    }
}

}  // namespace ew
