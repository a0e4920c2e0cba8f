#include "net/probe.h"

#include <string.h>

#include "core/header_policy.h"
#include "core/openai.h"
#include "core/probe_budget.h"
#include "core/retry.h"
#include "core/strbuf.h"
#include "net/log.h"
#include "net/resolver.h"
#include "net/state_log.h"

namespace ew {

void Probe::init(const NetContext* ctx, uint8_t endpoint) {
    ctx_ = ctx;
    endpoint_ = endpoint;
    conn_ = nullptr;
    next_ms_ = 0;
    runs_ = 0;
    last_ = Outcome();
    last_error_[0] = '\0';
    kind_ = ctx->cfg->probe.kind;
    if (ctx->health) ctx->health[endpoint].probe_level = probe_level_of(kind_);
}

void Probe::stop() {
    if (conn_) {
        UpstreamConn* c = conn_;
        conn_ = nullptr;
        c->close_now();
    }
    if (ctx_) ctx_->loop->remove(this);
}

void Probe::start(uint64_t now_ms) {
    if (conn_) return;
    if (ctx_->names && !ctx_->names->has_address(endpoint_)) {
        // No address yet: no verdict (an unresolved name is not a down upstream). The agent
        // schedules this probe again the moment the name resolves.
        next_ms_ = 0;
        copy_str(last_error_, sizeof last_error_, ctx_->names->unresolved_reason(endpoint_));
        return;
    }
    const uint64_t limited_until = ctx_->health[endpoint_].rate_limited_until_ms;
    if (now_ms < limited_until) {
        // The endpoint said to wait (a 429's Retry-After, perhaps from before a restart,
        // kept in the state file): a probe would be one more request it asked not to get.
        // No verdict; the probe runs when the limit ends.
        next_ms_ = limited_until;
        return;
    }
    if (ctx_->pool->ticket_pending(endpoint_) && now_ms < ticket_wait_until_ms_) {
        // The last probe's TLS 1.3 connection has not read its ticket yet (a slow device, a
        // busy server): a new connection now would make a full handshake. Wait for it, a
        // little at a time, at most one probe timeout in all (the linger's own bound).
        next_ms_ = now_ms + kTicketWaitStepMs;
        return;
    }
    if (!plan_run(now_ms)) return;
    const Config& cfg = *ctx_->cfg;
    const EndpointConfig& ec = cfg.endpoints[endpoint_];
    started_ms_ = now_ms;
    body_bytes_ = 0;
    body_head_len_ = 0;
    body_len_ = 0;
    body_whole_ = true;
    runs_++;
    next_ms_ = 0;
    UpstreamConn* c = ctx_->pool->take_free();
    if (c == nullptr) {
        // Every connection slot is busy with traffic: try again shortly, no verdict.
        next_ms_ = now_ms + 1000;
        return;
    }
    char err[EW_CAP_ERROR_TEXT];
    ResultKind k = c->open(&ec, &ctx_->runtime[endpoint_], endpoint_, this, now_ms + cfg.probe.timeout_ms, now_ms, err,
                           sizeof err);
    if (k != ResultKind::ok) {
        finish(k, 0, err, now_ms);
        return;
    }
    conn_ = c;
}

void Probe::on_upstream_ready(UpstreamConn* c, uint64_t now_ms) {
    const Config& cfg = *ctx_->cfg;
    const EndpointConfig& ec = cfg.endpoints[endpoint_];
    ProbeKind kind = kind_;
    if (kind == ProbeKind::tcp || kind == ProbeKind::tls) {
        // tcp: connected; tls: connected and handshake verified (plain tcp for http urls).
        // Over TLS 1.3 the connection lingers until the server's ticket is read (so the
        // next probe resumes), for at most one probe timeout from now: a slow handshake that
        // used most of the probe's time still gets its ticket. The verdict is now.
        c->release_after_ticket(now_ms + cfg.probe.timeout_ms);
        ticket_wait_until_ms_ = now_ms + cfg.probe.timeout_ms;
        conn_ = nullptr;
        finish(ResultKind::ok, 0, "", now_ms);
        return;
    }
    char head[EW_CAP_UPSTREAM_HEAD];
    StrBuf h(head, sizeof head);
    const char* body_ptr[1] = {request_body_};
    size_t body_len[1] = {0};
    size_t segments = 0;
    if (kind == ProbeKind::models) {
        h.appendf("GET %s/models HTTP/1.1\r\n", ec.base_path);
    } else {
        StrBuf b(request_body_, sizeof request_body_);
        openai_chat_probe_body(&b, ec.models[0]);
        body_len[0] = b.len;
        segments = 1;
        h.appendf("POST %s/chat/completions HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n",
                  ec.base_path, b.len);
    }
    h.appendf("Host: %s:%u\r\nUser-Agent: edgeway/%s\r\nAccept: application/json\r\n", ec.host, ec.port,
              EW_VERSION);
    h.append(ec.extra_headers);
    append_auth_header(&h, ec.auth_header, ec.api_key);
    h.append("\r\n");
    char err[EW_CAP_ERROR_TEXT];
    ResultKind k = h.overflow ? ResultKind::bad_response
                              : c->send(h.data, h.len, body_ptr, body_len, segments, false,
                                        started_ms_ + cfg.probe.timeout_ms, now_ms, err, sizeof err);
    if (k != ResultKind::ok) {
        if (h.overflow) {
            c->release(false);
            copy_str(err, sizeof err, "probe request too large");
        }
        conn_ = nullptr;
        finish(k, 0, err, now_ms);
    }
}

void Probe::on_upstream_head(UpstreamConn*, uint64_t) {}

void Probe::on_upstream_body(UpstreamConn*, const char* data, size_t len, uint64_t) {
    body_bytes_ += len;
    for (size_t i = 0; i < len && body_head_len_ < sizeof body_head_ - 1; i++) {
        char ch = data[i];
        if (body_head_len_ == 0 && (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t')) continue;
        body_head_[body_head_len_++] = ch;
    }
    body_head_[body_head_len_] = '\0';
    if (kind_ == ProbeKind::chat) {
        size_t room = sizeof body_ - 1 - body_len_;
        if (len > room) body_whole_ = false;
        size_t take = len < room ? len : room;
        memcpy(body_ + body_len_, data, take);
        body_len_ += take;
        body_[body_len_] = '\0';
    }
}

void Probe::on_upstream_done(UpstreamConn* c, uint64_t now_ms) {
    const ResponseParser& r = c->response();
    Observation o;
    o.kind = ResultKind::http_status;
    o.http_status = r.status;
    o.latency_ms = static_cast<uint32_t>(now_ms - started_ms_);
    o.from_probe = true;
    if (r.status == 429) o.has_retry_after = response_retry_after_ms(r, &o.retry_after_ms);
    conn_ = nullptr;
    c->release(false);  // probes always start fresh: they check connect and TLS too
    char msg[64];
    StrBuf m(msg, sizeof msg);
    if (kind_ == ProbeKind::chat && r.status >= 200 && r.status <= 299) {
        // A chat probe that was answered cost tokens: its usage, or the probe's bound.
        const uint64_t t = probe_chat_tokens(body_, body_len_, body_whole_);
        ctx_->metrics->probe_tokens[endpoint_] += t;
        if (ctx_->probe_budget) {
            probe_budget_spend(ctx_->probe_budget, t, now_ms);
            ctx_->metrics->probe_budget_spent = ctx_->probe_budget->spent;
        }
    }
    if (r.status >= 200 && r.status <= 299) {
        if (body_head_len_ == 0 || (body_head_[0] != '{' && body_head_[0] != '[')) {
            o.kind = ResultKind::bad_response;
            o.error = "HTTP 200 without a JSON body";
        } else {
            o.kind = ResultKind::ok;
        }
    } else {
        m.appendf("HTTP %u", r.status);
        o.error = msg;
    }
    finish(o, now_ms);
}

void Probe::on_upstream_error(UpstreamConn*, ResultKind kind, const char* message, uint64_t now_ms) {
    conn_ = nullptr;
    finish(kind, 0, message, now_ms);
}

void Probe::finish(ResultKind kind, uint16_t status, const char* error, uint64_t now_ms) {
    Observation o;
    o.kind = kind;
    o.http_status = status;
    o.latency_ms = static_cast<uint32_t>(now_ms - started_ms_);
    o.error = error;
    o.from_probe = true;
    finish(o, now_ms);
}

uint64_t Probe::due_ms() const {
    if (next_ms_ == 0 || ctx_ == nullptr) return next_ms_;
    const Health& h = ctx_->health[endpoint_];
    if (h.state != HealthState::down || started_ms_ >= h.down_since_ms) return next_ms_;
    const uint64_t soon = h.down_since_ms + ctx_->cfg->probe.down_interval_ms;
    return soon < next_ms_ ? soon : next_ms_;
}

// What this run does (probe_plan): skipped while live traffic is fresher; a chat probe runs
// as a models probe once the day's token budget is spent (so a DOWN endpoint that only a
// chat check could confirm gets trial requests instead: Health::probe_level says so).
bool Probe::plan_run(uint64_t now_ms) {
    const Config& cfg = *ctx_->cfg;
    Health& h = ctx_->health[endpoint_];
    bool allows = true;
    if (cfg.probe.kind == ProbeKind::chat && ctx_->probe_budget) {
        allows = probe_budget_allows(ctx_->probe_budget, now_ms);
        ctx_->metrics->probe_budget_limit = ctx_->probe_budget->limit;
        ctx_->metrics->probe_budget_spent = ctx_->probe_budget->spent;
    }
    const ProbePlan plan = probe_plan(h, cfg.probe.kind, cfg.probe.interval_ms, allows, now_ms);
    kind_ = plan == ProbePlan::run_as_models ? ProbeKind::models : cfg.probe.kind;
    h.probe_level = probe_level_of(kind_);
    if (plan == ProbePlan::skip_fresh_traffic) {
        ctx_->metrics->probes_skipped_fresh[endpoint_]++;
        EW_LOG_DEBUG("probe endpoint=%s skipped: live traffic succeeded %llu ms ago", cfg.endpoints[endpoint_].name,
                     static_cast<unsigned long long>(now_ms - h.last_traffic_ok_ms));
        schedule_next(now_ms);
        return false;
    }
    if (plan == ProbePlan::run_as_models) {
        ctx_->metrics->probes_as_models[endpoint_]++;
        if (ctx_->probe_budget) ctx_->probe_budget->skipped++;
    }
    return true;
}

void Probe::finish(const Observation& o, uint64_t now_ms) {
    Health& h = ctx_->health[endpoint_];
    HealthState before = h.state;
    // The same rule as for proxied attempts (429, 401/403, failures): /status agrees with itself.
    // The level says what this probe could have seen (a models 200 does not confirm chat 503s).
    Observation lo = o;
    lo.level = probe_level_of(kind_);
    health_observe(&h, *ctx_->params, lo, now_ms);
    ctx_->metrics->count_probe(endpoint_, o.kind);
    last_.kind = o.kind;
    last_.http_status = o.http_status;
    last_.latency_ms = o.latency_ms;
    copy_str(last_error_, sizeof last_error_, o.kind == ResultKind::ok ? "" : h.last_error);
    last_.error = last_error_;
    log_result(o, before, now_ms);
    note_state(*ctx_, endpoint_, now_ms, "");
    schedule_next(now_ms);
}

// A failed probe of an endpoint already DOWN is logged when its error changes and then at
// most once per kRepeatLogMs, with the count of failures since the last line; the others
// at debug. Any other failure is logged at info, a success at debug.
void Probe::log_result(const Observation& o, HealthState before, uint64_t now_ms) {
    const char* name = ctx_->cfg->endpoints[endpoint_].name;
    const HealthState after = ctx_->health[endpoint_].state;
    if (o.kind == ResultKind::ok) {
        EW_LOG_DEBUG("probe endpoint=%s result=ok latency_ms=%u", name, o.latency_ms);
        quiet_failures_ = 0;
        logged_error_[0] = '\0';
        return;
    }
    quiet_failures_++;
    bool repeat = before == HealthState::down && after == HealthState::down;
    bool changed = strcmp(logged_error_, last_error_) != 0;
    if (repeat && !changed && now_ms - logged_ms_ < kRepeatLogMs) {
        EW_LOG_DEBUG("probe endpoint=%s result=%s latency_ms=%u error=\"%s\"", name, to_string(o.kind), o.latency_ms,
                     last_error_);
        return;
    }
    EW_LOG_INFO("probe endpoint=%s result=%s latency_ms=%u error=\"%s\" failures=%u", name, to_string(o.kind),
                o.latency_ms, last_error_, quiet_failures_);
    quiet_failures_ = 0;
    logged_ms_ = now_ms;
    copy_str(logged_error_, sizeof logged_error_, last_error_);
}

void Probe::schedule_next(uint64_t now_ms) {
    const ProbeConfig& p = ctx_->cfg->probe;
    const Health& h = ctx_->health[endpoint_];
    uint32_t interval = h.state == HealthState::down ? p.down_interval_ms : p.interval_ms;
    uint32_t spread = static_cast<uint32_t>(static_cast<uint64_t>(interval) * p.jitter_pct / 100);
    uint64_t next = now_ms + interval;
    if (spread > 0) {
        uint32_t r = ctx_->rng->next() % (2 * spread + 1);
        next = next - spread + r;
    }
    next_ms_ = next;
}

}  // namespace ew
