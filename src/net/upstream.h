// One upstream connection as an explicit state machine, and the fixed pool of them.
// CONNECTING -> TLS_HANDSHAKE -> IDLE (parked, keep-alive) -> SENDING -> RECEIVING -> IDLE
// A connection serves one exchange at a time for its user (a probe or a proxy attempt),
// reports through UpstreamUser, and never waits: it reacts to readiness and its deadline.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/health.h"
#include "net/http.h"
#include "net/loop.h"
#include "net/slots.h"
#include "net/tls.h"
#include "pal.h"

namespace ew {

class UpstreamConn;

class UpstreamUser {
public:
    // Connected (and TLS done): the user may now call send(), or release the connection.
    virtual void on_upstream_ready(UpstreamConn* c, uint64_t now_ms) = 0;
    virtual void on_upstream_head(UpstreamConn* c, uint64_t now_ms) = 0;
    virtual void on_upstream_body(UpstreamConn* c, const char* data, size_t len) = 0;
    virtual void on_upstream_done(UpstreamConn* c, uint64_t now_ms) = 0;
    // The exchange failed; the connection is already closed and returned to the pool.
    virtual void on_upstream_error(UpstreamConn* c, ResultKind kind, const char* message, uint64_t now_ms) = 0;
    // Flow control: body bytes the user can take right now.
    virtual size_t upstream_body_room() const { return EW_CAP_RELAY_BYTES; }

protected:
    ~UpstreamUser() = default;
};

enum class ConnState : uint8_t { unused, connecting, tls_handshake, idle, sending, receiving };

// Per-endpoint runtime: resolved address, TLS configuration, names for the wire.
struct EndpointRuntime {
    pal::Addr addr = {};
    bool resolved = false;
    char resolve_error[EW_CAP_ERROR_TEXT] = "";
    TlsClientConfig tls;
    bool tls_ready = false;
    char tls_error[EW_CAP_ERROR_TEXT] = "";
    uint32_t connections_opened = 0;
    uint32_t tls_resumed = 0;
};

#ifndef EW_CAP_UPSTREAM_HEAD
#define EW_CAP_UPSTREAM_HEAD 1536  // request head we send upstream (path + key included)
#endif
#ifndef EW_CAP_UPSTREAM_RX
#define EW_CAP_UPSTREAM_RX 4096    // raw bytes read per step
#endif

class UpstreamConn final : public Pollable, public ResponseSink {
public:
    // Opens a connection for `user` (connect, then TLS for https).
    bool open(const EndpointConfig* ec, EndpointRuntime* rt, uint8_t endpoint, UpstreamUser* user, Loop* loop,
              uint64_t deadline_ms, uint64_t now_ms);
    // Hands a parked connection to a new user; on_upstream_ready is not called: send() now.
    void adopt(UpstreamUser* user, uint64_t deadline_ms);
    // Sends a request: `head` is copied; the body segments must stay valid until done/error.
    bool send(const char* head, size_t head_len, const char* const* body, const size_t* body_len, size_t segments,
              bool head_request, uint64_t deadline_ms);
    void set_deadline(uint64_t deadline_ms) { deadline_ = deadline_ms; }
    // Ends the user's use: park it for reuse when `keep` and the exchange ended cleanly.
    void release(bool keep);
    void close_now();
    // Parked in the pool: idle, with no user.
    bool parked() const { return state_ == ConnState::idle && user_ == nullptr; }
    // A parked connection the server has not closed (plain: checked now; TLS: watched).
    bool still_open();
    uint64_t bytes_in() const { return bytes_in_; }

    ConnState state() const { return state_; }
    uint8_t endpoint() const { return endpoint_; }
    bool reused() const { return reused_; }
    bool uses_tls() const { return use_tls_; }
    bool tls_resumed() const { return tls_resumed_; }
    uint64_t opened_ms() const { return opened_ms_; }
    const ResponseParser& response() const { return resp_; }

    // Pollable
    pal::Socket poll_socket() const override { return sock_; }
    uint16_t poll_events() const override;
    uint64_t deadline_ms() const override { return deadline_; }
    bool has_pending() const override;
    void on_ready(uint16_t revents, uint64_t now_ms) override;
    void on_deadline(uint64_t now_ms) override;

    // ResponseSink
    void on_response_head() override;
    void on_response_body(const char* data, size_t len) override;

private:
    void fail(ResultKind kind, const char* message, uint64_t now_ms);
    void step_connect(uint64_t now_ms);
    void step_handshake(uint64_t now_ms);
    void step_send(uint64_t now_ms);
    size_t gather(char* out, size_t cap) const;  // pending request bytes, from the current offset
    void advance(size_t sent);
    void step_receive(uint64_t now_ms);
    void step_idle();
    void complete(uint64_t now_ms);
    void release_now(bool keep);
    pal::IoResult io_send(const char* p, size_t n);
    pal::IoResult io_recv(char* p, size_t n);

    ConnState state_ = ConnState::unused;
    pal::Socket sock_ = pal::kNoSocket;
    bool use_tls_ = false;
    bool tls_live_ = false;
    TlsSession tls_;
    bool tls_want_write_ = false;  // TLS asked for writability while reading (renegotiation)
    const EndpointConfig* ec_ = nullptr;
    EndpointRuntime* rt_ = nullptr;
    uint8_t endpoint_ = 0;
    UpstreamUser* user_ = nullptr;
    Loop* loop_ = nullptr;
    uint64_t deadline_ = 0;
    uint64_t opened_ms_ = 0;
    bool reused_ = false;
    bool tls_resumed_ = false;
    bool in_callback_ = false;
    enum class Release : uint8_t { none, keep, close };
    Release pending_release_ = Release::none;
    uint64_t bytes_in_ = 0;

    char head_[EW_CAP_UPSTREAM_HEAD];
    size_t head_len_ = 0;
    const char* seg_[4] = {};
    size_t seg_len_[4] = {};
    size_t seg_count_ = 0;
    size_t seg_index_ = 0;   // 0 = head, 1.. = body segments
    size_t seg_off_ = 0;

    ResponseParser resp_;
    char rx_[EW_CAP_UPSTREAM_RX];
};

// The fixed table of upstream connections and the keep-alive parking lot.
class UpstreamPool {
public:
    void init(Loop* loop);
    // A parked connection to `endpoint`, adopted by `user`, or nullptr.
    UpstreamConn* take_idle(uint8_t endpoint, UpstreamUser* user, uint64_t deadline_ms);
    // A free slot to open a new connection, or nullptr when the table is full.
    UpstreamConn* take_free();
    size_t idle_count(uint8_t endpoint) const;
    size_t in_use() const;
    void close_idle(uint8_t endpoint);  // e.g. on reload
    void park_limit(uint8_t endpoint);  // closes parked connections beyond the per-endpoint cap
    void close_all();

private:
    Slots<UpstreamConn, EW_CAP_UPSTREAM_CONNS> conns_;
    Loop* loop_ = nullptr;
};

}  // namespace ew
