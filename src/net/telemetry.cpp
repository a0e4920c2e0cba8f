#include "net/telemetry.h"

#include <string.h>

#include "core/strbuf.h"
#include "net/log.h"
#include "net/resolver.h"

namespace ew {

#if EW_CAP_TELEMETRY
namespace {

constexpr uint32_t kConnectTimeoutMs = 10000;  // TCP, TLS and CONNACK together
constexpr uint32_t kRetryFirstMs = 1000;
constexpr uint32_t kRetryMaxMs = 30000;
constexpr uint16_t kKeepaliveS = 60;
constexpr uint32_t kPingIdleMs = 30000;     // a PINGREQ after this long without sending anything
constexpr uint32_t kPingTimeoutMs = 15000;  // no PINGRESP by then: the connection is dead
constexpr uint32_t kNameCheckMs = 200;      // while the broker's name is being looked up
constexpr int kFlushPackets = 32;           // packets written per call at most (then the loop turns)
constexpr int kReadRounds = 16;

bool same(const TelemetryConfig& a, const TelemetryConfig& b) {
    return a.on == b.on && strcmp(a.mqtt_url, b.mqtt_url) == 0 && strcmp(a.device_id, b.device_id) == 0 &&
           strcmp(a.username, b.username) == 0 && strcmp(a.password, b.password) == 0 &&
           strcmp(a.ca_file, b.ca_file) == 0 && strcmp(a.topic_prefix, b.topic_prefix) == 0 &&
           a.interval_ms == b.interval_ms && a.queue_max == b.queue_max;
}

uint64_t min_nonzero(uint64_t a, uint64_t b) { return a == 0 ? b : b == 0 ? a : a < b ? a : b; }

}  // namespace

void Telemetry::init(NetContext* ctx, TlsCaCache* ca_cache, uint64_t started_ms) {
    ctx_ = ctx;
    ca_cache_ = ca_cache;
    started_ms_ = started_ms;
}

bool Telemetry::topic(char* out, size_t cap, const char* tail) const {
    StrBuf t(out, cap);
    t.appendf("%s/%s/%s", cfg_.topic_prefix, device_, tail);
    return !t.overflow;
}

void Telemetry::update_stats() {
    TelemetryStats& s = ctx_->metrics->telemetry;
    s.on = phase_ != Phase::off;
    s.connected = phase_ == Phase::connected;
    s.queued = queue_.size();
    s.dropped = queue_.dropped();
}

void Telemetry::configure(uint64_t now_ms) {
    const TelemetryConfig& want = ctx_->cfg->telemetry;
    if (!want.on) {
        if (phase_ != Phase::off) {
            stop();
            EW_LOG_INFO("telemetry: off");
        }
        update_stats();
        return;
    }
    if (phase_ != Phase::off && same(cfg_, want)) {
        queue_all(now_ms);  // the endpoint set may have changed
        flush(now_ms);
        update_stats();
        return;
    }
    stop();
    cfg_ = want;
    const char* id = cfg_.device_id;
    char host[EW_CAP_DEVICE_ID];
    if (!id[0]) id = pal::host_name(host, sizeof host) && telemetry_device_id_ok(host, strlen(host)) ? host : "edgeway";
    copy_str(device_, sizeof device_, id);
    tls_ready_ = false;
    if (cfg_.tls) {
        TlsClientOptions o;
        o.verify = true;
        o.ca_chain = ca_cache_->get(cfg_.ca_file, last_error_, sizeof last_error_);
        if (o.ca_chain == nullptr) {
            EW_LOG_ERROR("telemetry: %s", last_error_);
        } else if (tls_.setup(o) != 0) {
            copy_str(last_error_, sizeof last_error_, tls_.error_text());
            EW_LOG_ERROR("telemetry: tls setup failed: %s", last_error_);
        } else {
            tls_ready_ = true;
        }
    }
    queue_.init(cfg_.queue_max);
    backoff_ms_ = 0;
    last_error_[0] = '\0';
    phase_ = Phase::waiting;
    if (ctx_->names) ctx_->names->set_host(kTelemetryNameSlot, cfg_.host, cfg_.port, now_ms);
    EW_LOG_INFO("telemetry: publishing to %s as %s/%s every %u ms (queue %u)", cfg_.mqtt_url, cfg_.topic_prefix,
                device_, static_cast<unsigned>(cfg_.interval_ms), static_cast<unsigned>(cfg_.queue_max));
    next_periodic_ms_ = now_ms + cfg_.interval_ms;
    queue_all(now_ms);
    start_attempt(now_ms);
    update_stats();
}

void Telemetry::stop() {
    if (phase_ == Phase::off) return;
    if (transport_) transport_->close();
    transport_ = nullptr;
    if (ctx_->names) ctx_->names->clear(kTelemetryNameSlot);
    phase_ = Phase::off;
    queue_.init(cfg_.queue_max);
    tx_len_ = tx_off_ = rx_len_ = 0;
    ping_sent_ms_ = 0;
    deadline_ = 0;
    update_stats();
}

// ---- documents ------------------------------------------------------------------------------

void Telemetry::queue_endpoint(uint32_t e, const TelemetryChange& change, uint64_t now_ms) {
    const Config& cfg = *ctx_->cfg;
    if (e >= cfg.endpoint_count) return;
    MetricsView v{&cfg, ctx_->health, ctx_->params, ctx_->metrics, now_ms, started_ms_};
    NameView names[EW_CAP_ENDPOINTS];
    if (ctx_->names) {
        ctx_->names->describe(cfg.endpoint_count, names);
        v.names = names;
    }
    v.process.wall_ms = pal::wall_ms();
    char t[EW_CAP_MQTT_TOPIC];
    char tail[EW_CAP_NAME + 16];
    StrBuf tb(tail, sizeof tail);
    tb.appendf("endpoints/%s", cfg.endpoints[e].name);
    char doc[EW_CAP_MQTT_PAYLOAD + 1];
    StrBuf d(doc, sizeof doc);
    telemetry_endpoint_doc(v, device_, e, change, &d);
    if (!topic(t, sizeof t, tail) || d.overflow || !queue_.push(t, d.data, d.len, change.changed))
        EW_LOG_DEBUG("telemetry: the document of endpoint %s does not fit; not sent", cfg.endpoints[e].name);
}

void Telemetry::queue_status(uint64_t now_ms) {
    MetricsView v{ctx_->cfg, ctx_->health, ctx_->params, ctx_->metrics, now_ms, started_ms_};
    v.process.wall_ms = pal::wall_ms();
    char t[EW_CAP_MQTT_TOPIC];
    char doc[EW_CAP_MQTT_PAYLOAD + 1];
    StrBuf d(doc, sizeof doc);
    telemetry_status_doc(v, device_, &d);
    if (!topic(t, sizeof t, "status") || d.overflow || !queue_.push(t, d.data, d.len, false))
        EW_LOG_DEBUG("telemetry: the status document does not fit; not sent");
}

void Telemetry::queue_all(uint64_t now_ms) {
    queue_status(now_ms);
    for (uint32_t e = 0; e < ctx_->cfg->endpoint_count; e++) queue_endpoint(e, TelemetryChange{}, now_ms);
}

void Telemetry::on_state_change(uint32_t e, HealthState from, const char* cause, uint64_t now_ms) {
    if (phase_ == Phase::off) return;
    TelemetryChange ch;
    ch.changed = true;
    ch.from = from;
    ch.cause = cause ? cause : "";
    queue_endpoint(e, ch, now_ms);
    queue_status(now_ms);
    flush(now_ms);
    update_stats();
}

// ---- the connection ---------------------------------------------------------------------------

void Telemetry::start_attempt(uint64_t now_ms) {
    pal::Addr a;
    bool have = ctx_->names ? ctx_->names->address(kTelemetryNameSlot, &a) : pal::parse_addr(cfg_.host, cfg_.port, &a);
    if (have) {
        connect_to(a, now_ms);
        return;
    }
    const char* why = ctx_->names ? ctx_->names->unresolved_reason(kTelemetryNameSlot) : "no resolver";
    if (why[0] && strcmp(why, last_error_) != 0) {
        copy_str(last_error_, sizeof last_error_, why);
        EW_LOG_WARN("telemetry: broker %s: %s; waiting for its address", cfg_.host, why);
    }
    phase_ = Phase::resolving;
    deadline_ = now_ms + kNameCheckMs;
}

void Telemetry::connect_to(const pal::Addr& addr, uint64_t now_ms) {
    transport_ = cfg_.tls ? static_cast<Transport*>(&tls_transport_) : static_cast<Transport*>(&plain_);
    tx_len_ = tx_off_ = rx_len_ = 0;
    ping_sent_ms_ = 0;
    phase_ = Phase::connecting;
    deadline_ = now_ms + kConnectTimeoutMs;
    if (cfg_.tls && !tls_ready_) {
        lost(last_error_[0] ? last_error_ : "TLS is not set up", now_ms);
        return;
    }
    TransportStep s = transport_->start(addr, cfg_.host, cfg_.tls ? &tls_ : nullptr);
    if (s == TransportStep::error) {
        if (ctx_->names) ctx_->names->connect_failed(kTelemetryNameSlot, addr, now_ms);
        lost(transport_->error_text(), now_ms);
        return;
    }
    if (s == TransportStep::done) send_connect(now_ms);
}

void Telemetry::drive_connect(uint64_t now_ms) {
    TransportStep s = transport_->advance();
    if (s == TransportStep::in_progress) return;
    pal::Addr a;
    bool have = ctx_->names && ctx_->names->address(kTelemetryNameSlot, &a);
    if (s == TransportStep::error) {
        if (have) ctx_->names->connect_failed(kTelemetryNameSlot, a, now_ms);
        lost(transport_->error_text(), now_ms);
        return;
    }
    if (have) ctx_->names->connect_ok(kTelemetryNameSlot, a);
    send_connect(now_ms);
}

void Telemetry::send_connect(uint64_t now_ms) {
    char will_topic[EW_CAP_MQTT_TOPIC];
    char will[EW_CAP_DEVICE_ID + 64];
    StrBuf w(will, sizeof will);
    telemetry_offline_doc(device_, &w);
    topic(will_topic, sizeof will_topic, "status");
    MqttConnect c;
    c.client_id = device_;
    c.username = cfg_.username;
    c.password = cfg_.password;
    c.keepalive_s = kKeepaliveS;
    c.clean_session = true;
    c.will_topic = will_topic;
    c.will_payload = w.data;
    c.will_len = w.len;
    c.will_qos = 1;
    c.will_retain = true;
    tx_len_ = mqtt_encode_connect(c, tx_, sizeof tx_);
    tx_off_ = 0;
    if (tx_len_ == 0) {
        lost("CONNECT does not fit the packet buffer", now_ms);
        return;
    }
    phase_ = Phase::handshake;
    flush(now_ms);
}

void Telemetry::lost(const char* reason, uint64_t now_ms) {
    char why[EW_CAP_ERROR_TEXT];
    copy_str(why, sizeof why, reason);  // reason may be the transport's text or last_error_
    bool was_connected = phase_ == Phase::connected;
    if (transport_) transport_->close();
    transport_ = nullptr;
    queue_.connection_lost();
    tx_len_ = tx_off_ = rx_len_ = 0;
    ping_sent_ms_ = 0;
    TelemetryStats& s = ctx_->metrics->telemetry;
    if (!was_connected) s.connect_failures++;
    backoff_ms_ = backoff_ms_ == 0 ? kRetryFirstMs : backoff_ms_ >= kRetryMaxMs / 2 ? kRetryMaxMs : backoff_ms_ * 2;
    // 75..125 % of the back-off, so that a fleet does not come back in step.
    uint32_t wait = backoff_ms_ * 3 / 4 + (ctx_->rng ? ctx_->rng->next() % (backoff_ms_ / 2 + 1) : backoff_ms_ / 4);
    phase_ = Phase::waiting;
    deadline_ = now_ms + wait;
    // A repeated failure is logged once, then at debug until something else happens.
    bool repeat = !was_connected && strcmp(why, last_error_) == 0;
    if (repeat) {
        EW_LOG_DEBUG("telemetry: %s:%u: %s; retrying in %u ms", cfg_.host, cfg_.port, why, wait);
    } else {
        EW_LOG_WARN("telemetry: %s %s:%u: %s; retrying in %u ms", was_connected ? "lost the broker" : "cannot connect to",
                    cfg_.host, cfg_.port, why, wait);
    }
    copy_str(last_error_, sizeof last_error_, why);
    update_stats();
}

void Telemetry::flush(uint64_t now_ms) {
    if (transport_ == nullptr || (phase_ != Phase::handshake && phase_ != Phase::connected)) return;
    for (int i = 0; i < kFlushPackets; i++) {
        if (tx_off_ < tx_len_) {
            pal::IoResult r = transport_->send(reinterpret_cast<const char*>(tx_) + tx_off_, tx_len_ - tx_off_);
            if (r.status == pal::Io::would_block) return;
            if (r.status != pal::Io::ok) {
                char why[EW_CAP_ERROR_TEXT];
                StrBuf m(why, sizeof why);
                if (transport_->is_tls() && transport_->error_text()[0]) m.append(transport_->error_text());
                else m.appendf("send: %s", r.status == pal::Io::closed ? "closed" : pal::strerror(r.err));
                lost(why, now_ms);
                return;
            }
            tx_off_ += r.n;
            last_tx_ms_ = now_ms;
            continue;
        }
        tx_len_ = tx_off_ = 0;
        if (phase_ != Phase::connected) return;  // nothing but CONNECT before the CONNACK
        QueuedDoc* d = queue_.next_to_send();
        if (d == nullptr) break;
        bool dup = d->state == QueuedState::resend;
        uint16_t id = dup ? d->packet_id : queue_.next_packet_id();
        tx_len_ = mqtt_encode_publish(d->topic, d->payload, d->len, 1, true, dup, id, tx_, sizeof tx_);
        queue_.sent(d, id);
        if (tx_len_ == 0) queue_.ack(id);  // cannot be encoded (cannot happen within the caps): let it go
    }
    update_stats();
}

void Telemetry::take_packet(const MqttIn& in, uint64_t now_ms) {
    if (in.type == MqttType::connack) {
        if (phase_ != Phase::handshake) return lost("a second CONNACK from the broker", now_ms);
        if (in.connack_code != 0) {
            char why[EW_CAP_ERROR_TEXT];
            StrBuf m(why, sizeof why);
            m.appendf("the broker refused the session: %s", mqtt_connack_text(in.connack_code));
            return lost(why, now_ms);
        }
        phase_ = Phase::connected;
        backoff_ms_ = 0;
        last_error_[0] = '\0';
        ctx_->metrics->telemetry.connects++;
        EW_LOG_INFO("telemetry: connected to %s:%u%s as %s (%u queued)", cfg_.host, cfg_.port,
                    cfg_.tls ? " (TLS)" : "", device_, static_cast<unsigned>(queue_.size()));
        queue_all(now_ms);  // the retained documents, again: the broker may have restarted without them
        update_stats();
        return;
    }
    if (phase_ != Phase::connected) return lost("a packet before the CONNACK", now_ms);
    if (in.type == MqttType::puback) {
        if (queue_.ack(in.packet_id)) ctx_->metrics->telemetry.published++;
    } else if (in.type == MqttType::pingresp) {
        ping_sent_ms_ = 0;
    }
}

void Telemetry::read_input(uint64_t now_ms) {
    for (int round = 0; round < kReadRounds && transport_; round++) {
        pal::IoResult r = transport_->recv(reinterpret_cast<char*>(rx_) + rx_len_, sizeof rx_ - rx_len_);
        if (r.status == pal::Io::would_block) return;
        if (r.status == pal::Io::closed) return lost("the broker closed the connection", now_ms);
        if (r.status != pal::Io::ok) {
            char why[EW_CAP_ERROR_TEXT];
            StrBuf m(why, sizeof why);
            if (transport_->is_tls() && transport_->error_text()[0]) m.append(transport_->error_text());
            else m.appendf("recv: %s", pal::strerror(r.err));
            return lost(why, now_ms);
        }
        rx_len_ += r.n;
        for (;;) {
            MqttIn in;
            size_t used = 0;
            const char* why = "";
            MqttDecode d = mqtt_decode(rx_, rx_len_, sizeof rx_, &in, &used, &why);
            if (d == MqttDecode::need_more) break;
            if (d == MqttDecode::error) return lost(why, now_ms);
            memmove(rx_, rx_ + used, rx_len_ - used);
            rx_len_ -= used;
            take_packet(in, now_ms);
            if (transport_ == nullptr) return;  // lost in take_packet
        }
    }
}

// ---- Pollable -----------------------------------------------------------------------------------

pal::Socket Telemetry::poll_socket() const {
    if (transport_ == nullptr) return pal::kNoSocket;
    return transport_->socket();
}

uint16_t Telemetry::poll_events() const {
    if (transport_ == nullptr) return 0;
    if (phase_ == Phase::connecting) return transport_->wants_write() ? pal::kOut : pal::kIn;
    uint16_t ev = pal::kIn;
    bool sendable = phase_ == Phase::connected && queue_.size() > queue_.in_flight() &&
                    queue_.in_flight() < EW_CAP_MQTT_INFLIGHT;
    if (tx_off_ < tx_len_ || sendable || transport_->wants_write()) ev |= pal::kOut;
    return ev;
}

bool Telemetry::has_pending() const {
    return transport_ != nullptr && phase_ != Phase::connecting && transport_->pending();
}

uint64_t Telemetry::deadline_ms() const {
    if (phase_ == Phase::off) return 0;
    uint64_t d = next_periodic_ms_;
    if (phase_ == Phase::connected) {
        d = min_nonzero(d, ping_sent_ms_ ? ping_sent_ms_ + kPingTimeoutMs : last_tx_ms_ + kPingIdleMs);
    } else {
        d = min_nonzero(d, deadline_);
    }
    return d;
}

void Telemetry::on_ready(uint16_t, uint64_t now_ms) {
    if (transport_ == nullptr) return;
    if (phase_ == Phase::connecting) {
        drive_connect(now_ms);
        return;
    }
    read_input(now_ms);
    flush(now_ms);
}

void Telemetry::on_deadline(uint64_t now_ms) {
    if (phase_ == Phase::off) return;
    if (now_ms >= next_periodic_ms_) {
        // While the broker is away these replace the waiting periodic ones (the queue does not grow).
        queue_all(now_ms);
        next_periodic_ms_ = now_ms + cfg_.interval_ms;
    }
    switch (phase_) {
        case Phase::waiting:
            if (now_ms >= deadline_) start_attempt(now_ms);
            break;
        case Phase::resolving:
            if (now_ms >= deadline_) start_attempt(now_ms);
            break;
        case Phase::connecting:
        case Phase::handshake:
            if (now_ms >= deadline_)
                lost(phase_ == Phase::connecting ? "connect timed out" : "no CONNACK from the broker in time", now_ms);
            break;
        case Phase::connected:
            if (ping_sent_ms_ && now_ms >= ping_sent_ms_ + kPingTimeoutMs) {
                lost("no PINGRESP from the broker in time", now_ms);
            } else if (!ping_sent_ms_ && tx_off_ >= tx_len_ && now_ms >= last_tx_ms_ + kPingIdleMs) {
                tx_len_ = mqtt_encode_pingreq(tx_, sizeof tx_);
                tx_off_ = 0;
                ping_sent_ms_ = now_ms;
            }
            break;
        case Phase::off: break;
    }
    flush(now_ms);
    update_stats();
}

#else  // EW_CAP_TELEMETRY 0: no MQTT client (the reader refuses [telemetry]); the agent's calls do nothing.

void Telemetry::init(NetContext* ctx, TlsCaCache* ca_cache, uint64_t started_ms) {
    ctx_ = ctx;
    ca_cache_ = ca_cache;
    started_ms_ = started_ms;
}
void Telemetry::configure(uint64_t) {}
void Telemetry::stop() {}
void Telemetry::on_state_change(uint32_t, HealthState, const char*, uint64_t) {}
pal::Socket Telemetry::poll_socket() const { return pal::kNoSocket; }
uint16_t Telemetry::poll_events() const { return 0; }
uint64_t Telemetry::deadline_ms() const { return 0; }
bool Telemetry::has_pending() const { return false; }
void Telemetry::on_ready(uint16_t, uint64_t) {}
void Telemetry::on_deadline(uint64_t) {}

#endif  // EW_CAP_TELEMETRY

}  // namespace ew
