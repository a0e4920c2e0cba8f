#include "net/probe.h"

#include <string.h>

#include "core/openai.h"
#include "core/retry.h"
#include "core/strbuf.h"
#include "net/agent.h"
#include "net/log.h"

namespace ew {

void Probe::init(Agent* agent, uint8_t endpoint) {
    agent_ = agent;
    endpoint_ = endpoint;
    conn_ = nullptr;
    next_ms_ = 0;
    runs_ = 0;
    last_ = Outcome();
    last_error_[0] = '\0';
}

void Probe::stop() {
    if (conn_) {
        UpstreamConn* c = conn_;
        conn_ = nullptr;
        c->close_now();
    }
    agent_->loop().remove(this);
}

void Probe::start(uint64_t now_ms) {
    if (conn_) return;
    const Config& cfg = agent_->config();
    const EndpointConfig& ec = cfg.endpoints[endpoint_];
    started_ms_ = now_ms;
    body_bytes_ = 0;
    body_head_len_ = 0;
    runs_++;
    next_ms_ = 0;
    UpstreamConn* c = agent_->pool().take_free();
    if (c == nullptr) {
        // Every connection slot is busy with traffic: try again shortly, no verdict.
        next_ms_ = now_ms + 1000;
        return;
    }
    conn_ = c;
    uint64_t deadline = now_ms + cfg.probe.timeout_ms;
    if (!c->open(&ec, &agent_->runtime(endpoint_), endpoint_, this, &agent_->loop(), deadline, now_ms)) {
        // open() reported through on_upstream_error already.
        return;
    }
}

void Probe::on_upstream_ready(UpstreamConn* c, uint64_t now_ms) {
    const Config& cfg = agent_->config();
    const EndpointConfig& ec = cfg.endpoints[endpoint_];
    ProbeKind kind = cfg.probe.kind;
    if (kind == ProbeKind::tcp || kind == ProbeKind::tls) {
        // tcp: connected; tls: connected and handshake verified (plain tcp for http urls).
        c->release(false);
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
    if (ec.api_key[0]) h.appendf("Authorization: Bearer %s\r\n", ec.api_key);
    h.append("\r\n");
    if (h.overflow || !c->send(h.data, h.len, body_ptr, body_len, segments, false, started_ms_ + cfg.probe.timeout_ms)) {
        c->release(false);
        conn_ = nullptr;
        finish(ResultKind::bad_response, 0, "probe request too large", now_ms);
    }
}

void Probe::on_upstream_head(UpstreamConn*, uint64_t) {}

void Probe::on_upstream_body(UpstreamConn*, const char* data, size_t len) {
    body_bytes_ += len;
    for (size_t i = 0; i < len && body_head_len_ < sizeof body_head_ - 1; i++) {
        char ch = data[i];
        if (body_head_len_ == 0 && (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t')) continue;
        body_head_[body_head_len_++] = ch;
    }
    body_head_[body_head_len_] = '\0';
}

void Probe::on_upstream_done(UpstreamConn* c, uint64_t now_ms) {
    const ResponseParser& r = c->response();
    uint16_t status = r.status;
    conn_ = nullptr;
    if (status == 429) {
        uint64_t delay = 0;
        bool have = parse_retry_after_ms(r.retry_after_ms.text, r.retry_after_ms.len, &delay) ||
                    parse_retry_after(r.retry_after.text, r.retry_after.len, r.date.present ? r.date.text : nullptr,
                                      r.date.len, &delay);
        if (!have) delay = agent_->config().probe.down_interval_ms;
        c->release(false);
        Health& h = agent_->health()[endpoint_];
        health_rate_limit(&h, -1, now_ms + delay, now_ms);
        agent_->metrics().count_probe(endpoint_, ResultKind::http_status);
        h.last_kind = ResultKind::http_status;
        h.last_http_status = 429;
        StrBuf e(h.last_error, sizeof h.last_error);
        e.appendf("HTTP 429: rate limited for %llu ms", static_cast<unsigned long long>(delay));
        last_.kind = ResultKind::http_status;
        last_.http_status = 429;
        last_.latency_ms = static_cast<uint32_t>(now_ms - started_ms_);
        copy_str(last_error_, sizeof last_error_, h.last_error);
        EW_LOG_INFO("probe endpoint=%s result=http_status status=429 retry_after_ms=%llu",
                    agent_->config().endpoints[endpoint_].name, static_cast<unsigned long long>(delay));
        schedule_next(now_ms);
        return;
    }
    c->release(r.keep_alive && false);  // probes always start fresh
    if (status == 401 || status == 403) {
        health_key_bad(&agent_->health()[endpoint_], status, now_ms);
        agent_->metrics().count_probe(endpoint_, ResultKind::http_status);
        last_.kind = ResultKind::http_status;
        last_.http_status = status;
        copy_str(last_error_, sizeof last_error_, agent_->health()[endpoint_].last_error);
        EW_LOG_WARN("probe endpoint=%s result=http_status status=%u api_key=rejected",
                    agent_->config().endpoints[endpoint_].name, status);
        schedule_next(now_ms);
        return;
    }
    if (status < 200 || status > 299) {
        char msg[64];
        StrBuf m(msg, sizeof msg);
        m.appendf("HTTP %u", status);
        finish(ResultKind::http_status, status, msg, now_ms);
        return;
    }
    if (body_head_len_ == 0 || (body_head_[0] != '{' && body_head_[0] != '[')) {
        finish(ResultKind::bad_response, status, "HTTP 200 without a JSON body", now_ms);
        return;
    }
    finish(ResultKind::ok, status, "", now_ms);
}

void Probe::on_upstream_error(UpstreamConn*, ResultKind kind, const char* message, uint64_t now_ms) {
    conn_ = nullptr;
    finish(kind, 0, message, now_ms);
}

void Probe::finish(ResultKind kind, uint16_t status, const char* error, uint64_t now_ms) {
    Outcome o;
    o.kind = kind;
    o.http_status = status;
    o.latency_ms = static_cast<uint32_t>(now_ms - started_ms_);
    o.error = error;
    Health& h = agent_->health()[endpoint_];
    HealthState before = h.state;
    health_record(&h, agent_->health_params(), o, now_ms, true);
    agent_->metrics().count_probe(endpoint_, kind);
    last_ = o;
    copy_str(last_error_, sizeof last_error_, error);
    last_.error = last_error_;
    const char* name = agent_->config().endpoints[endpoint_].name;
    if (kind == ResultKind::ok)
        EW_LOG_DEBUG("probe endpoint=%s result=ok latency_ms=%u", name, o.latency_ms);
    else
        EW_LOG_INFO("probe endpoint=%s result=%s latency_ms=%u error=\"%s\"", name, to_string(kind), o.latency_ms,
                    error);
    if (h.state != before)
        EW_LOG_WARN("endpoint=%s state %s -> %s score=%.1f", name, to_string(before), to_string(h.state), h.score);
    schedule_next(now_ms);
}

void Probe::schedule_next(uint64_t now_ms) {
    const ProbeConfig& p = agent_->config().probe;
    const Health& h = agent_->health()[endpoint_];
    uint32_t interval = h.state == HealthState::down ? p.down_interval_ms : p.interval_ms;
    uint32_t spread = static_cast<uint32_t>(static_cast<uint64_t>(interval) * p.jitter_pct / 100);
    uint64_t next = now_ms + interval;
    if (spread > 0) {
        uint32_t r = agent_->random() % (2 * spread + 1);
        next = next - spread + r;
    }
    next_ms_ = next;
}

}  // namespace ew
