// Fleet telemetry: an MQTT 3.1.1 client session that publishes the agent's state to a
// broker ([telemetry], off when the section is absent). For devices behind NAT that no
// Prometheus can scrape.
//
// What it publishes (retained, QoS 1; net/telemetry_doc.h has the documents):
//   <prefix>/<device>/status            the status page's verdict and counts
//   <prefix>/<device>/endpoints/<name>  one per endpoint: state, why, score, latency, ...
// on every endpoint state change (note_state in net/state_log calls on_state_change), every
// interval_ms, and in full after every CONNACK (a broker restarted without persistence has
// lost the retained ones). The last will, set in CONNECT, is the status topic's offline
// document, retained: the broker publishes it when edgeway goes away without a DISCONNECT
// (killed, crashed, its network gone, or stopped: edgeway never sends DISCONNECT).
//
// One Pollable on the loop, never blocking: the broker's name through the agent's resolver,
// TCP or TLS (mqtts://) through the Transport of net/transport.h (so the PAL, and the lwIP
// port), then CONNECT / CONNACK, PUBLISH / PUBACK, PINGREQ / PINGRESP. Documents wait in a
// fixed queue (net/telemetry_queue.h: queue_max entries, oldest dropped and counted,
// unacknowledged ones re-sent with DUP after a reconnect). A lost or refused connection is
// retried after 1 s, doubling to 30 s (with jitter), back to 1 s once a session is accepted.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/health.h"
#include "core/mqtt_codec.h"
#include "net/telemetry_doc.h"
#include "net/telemetry_queue.h"
#include "net/context.h"
#include "net/loop.h"
#include "net/tls.h"
#include "net/transport.h"

namespace ew {

class Telemetry final : public Pollable {
public:
    // ctx: the agent's (its cfg->telemetry is read by configure()); the CA cache is shared
    // with the endpoints.
    void init(NetContext* ctx, TlsCaCache* ca_cache, uint64_t started_ms);
    // Takes ctx->cfg->telemetry: off, unchanged (documents are queued again for the new
    // endpoint set), or changed (the session starts again with the new settings).
    void configure(uint64_t now_ms);
    // Closes the connection (the broker then publishes the will); queued documents are dropped.
    void stop();

    // An endpoint changed state (from -> its state now); its document and the status are
    // queued and sent at once when connected.
    void on_state_change(uint32_t e, HealthState from, const char* cause, uint64_t now_ms);

    bool connected() const { return phase_ == Phase::connected; }
    const TelemetryQueue& queue() const { return queue_; }

    // Pollable
    pal::Socket poll_socket() const override;
    uint16_t poll_events() const override;
    uint64_t deadline_ms() const override;
    bool has_pending() const override;
    void on_ready(uint16_t revents, uint64_t now_ms) override;
    void on_deadline(uint64_t now_ms) override;

private:
    enum class Phase : uint8_t { off, waiting, resolving, connecting, handshake, connected };

    void start_attempt(uint64_t now_ms);
    void connect_to(const pal::Addr& addr, uint64_t now_ms);
    void drive_connect(uint64_t now_ms);
    void send_connect(uint64_t now_ms);
    void lost(const char* why, uint64_t now_ms);
    void flush(uint64_t now_ms);
    void read_input(uint64_t now_ms);
    void take_packet(const MqttIn& in, uint64_t now_ms);
    void queue_all(uint64_t now_ms);
    void queue_endpoint(uint32_t e, const TelemetryChange& change, uint64_t now_ms);
    void queue_status(uint64_t now_ms);
    void update_stats();
    bool topic(char* out, size_t cap, const char* tail) const;

    NetContext* ctx_ = nullptr;
    TlsCaCache* ca_cache_ = nullptr;
    uint64_t started_ms_ = 0;
    TelemetryConfig cfg_;  // the settings in use
    char device_[EW_CAP_DEVICE_ID] = "";
    Phase phase_ = Phase::off;
    PlainTransport plain_;
    TlsTransport tls_transport_;
    Transport* transport_ = nullptr;
    TlsClientConfig tls_;
    bool tls_ready_ = false;
    TelemetryQueue queue_;
    uint8_t tx_[EW_CAP_MQTT_PACKET];
    size_t tx_len_ = 0, tx_off_ = 0;
    uint8_t rx_[EW_CAP_MQTT_RX];
    size_t rx_len_ = 0;
    uint64_t deadline_ = 0;        // connect/CONNACK timeout, or the next retry / name check
    uint64_t next_periodic_ms_ = 0;
    uint64_t last_tx_ms_ = 0;
    uint64_t ping_sent_ms_ = 0;    // 0: no PINGREQ outstanding
    uint32_t backoff_ms_ = 0;
    char last_error_[EW_CAP_ERROR_TEXT] = "";
};

}  // namespace ew
