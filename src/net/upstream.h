// One upstream connection as an explicit state machine, and the fixed pool of them.
//   connecting -> (TLS handshake) -> idle -> sending -> receiving -> idle (parked) ...
// A connection serves one exchange at a time for its user (a probe or a proxy attempt)
// and never waits: it reacts to readiness and its deadline. It talks to its user only
// from the loop (readiness, deadlines): open() and send() report failure by return value
// and never call back, so a user never re-enters itself.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/health.h"
#include "net/http.h"
#include "net/loop.h"
#include "net/slots.h"
#include "net/tls.h"
#include "net/transport.h"
#include "pal.h"

namespace ew {

class UpstreamConn;
class UpstreamPool;
class Resolver;

class UpstreamUser {
public:
    // Connected (and TLS done): the user may now call send(), or release the connection.
    virtual void on_upstream_ready(UpstreamConn* c, uint64_t now_ms) = 0;
    // The final response head (1xx heads are skipped).
    virtual void on_upstream_head(UpstreamConn* c, uint64_t now_ms) = 0;
    virtual void on_upstream_body(UpstreamConn* c, const char* data, size_t len, uint64_t now_ms) = 0;
    // The response was read to its end (framing complete).
    virtual void on_upstream_done(UpstreamConn* c, uint64_t now_ms) = 0;
    // The exchange failed; the connection is already closed and back in the pool.
    virtual void on_upstream_error(UpstreamConn* c, ResultKind kind, const char* message, uint64_t now_ms) = 0;
    // Flow control: body bytes the user can take right now.
    virtual size_t upstream_body_room() const { return EW_CAP_RELAY_BYTES; }

protected:
    ~UpstreamUser() = default;
};

enum class ConnState : uint8_t { unused, connecting, idle, sending, receiving };
const char* to_string(ConnState s);

// Per-endpoint runtime: where its addresses come from, TLS configuration, counters.
struct EndpointRuntime {
    Resolver* names = nullptr;  // the agent's resolver: the address to connect to, connect outcomes
    TlsClientConfig tls;
    bool tls_ready = false;
    char tls_error[EW_CAP_ERROR_TEXT] = "";
    uint32_t connections_opened = 0;
    uint32_t tls_resumed = 0;
};

// Where connections get their transport: the agent uses each connection's own plain or
// TLS transport; a test hands out in-memory ones.
class TransportSource {
public:
    virtual Transport* transport_for(const UpstreamConn& c, const EndpointConfig& ec) = 0;

protected:
    ~TransportSource() = default;
};

class UpstreamConn final : public Pollable, public ResponseSink {
public:
    // Opens a connection for `user` (connect, then TLS for https). ok, or the failure kind
    // with `err` set; nothing is called back either way.
    ResultKind open(const EndpointConfig* ec, EndpointRuntime* rt, uint8_t endpoint, UpstreamUser* user,
                    uint64_t deadline_ms, uint64_t now_ms, char* err, size_t err_cap);
    // Sends a request: `head` is copied; the body segments must stay valid until done/error.
    // Writes what it can at once; ok, or the failure kind with `err` set and the connection
    // closed (nothing is called back).
    ResultKind send(const char* head, size_t head_len, const char* const* body, const size_t* body_len,
                    size_t segments, bool head_request, uint64_t deadline_ms, uint64_t now_ms, char* err,
                    size_t err_cap);
    void set_deadline(uint64_t deadline_ms) { deadline_ = deadline_ms; }
    // Ends the user's use: parked for reuse when `keep` and the response was read to its
    // end with nothing left over, else closed.
    void release(bool keep);
    // Ends the user's use and closes, but a TLS 1.3 connection whose server has not sent a
    // session ticket yet first waits for it (until deadline_ms), so that the next connection
    // resumes. For a user that only needed the handshake (a `tls` probe).
    void release_after_ticket(uint64_t deadline_ms);
    void close_now();
    // Parked in the pool: idle, with no user.
    bool parked() const { return state_ == ConnState::idle && user_ == nullptr && !awaiting_ticket_; }
    bool awaiting_ticket() const { return awaiting_ticket_; }
    uint64_t bytes_in() const { return bytes_in_; }

    ConnState state() const { return state_; }
    uint8_t endpoint() const { return endpoint_; }
    bool reused() const { return reused_; }
    bool uses_tls() const { return t_ != nullptr && t_->is_tls(); }
    bool tls_resumed() const { return tls_resumed_; }
    const ResponseParser& response() const { return resp_; }

    // Pollable
    pal::Socket poll_socket() const override { return t_ ? t_->socket() : pal::kNoSocket; }
    uint16_t poll_events() const override;
    uint64_t deadline_ms() const override;
    bool has_pending() const override;
    void on_ready(uint16_t revents, uint64_t now_ms) override;
    void on_deadline(uint64_t now_ms) override;

    // ResponseSink
    void on_response_head() override;
    void on_response_body(const char* data, size_t len) override;

private:
    friend class UpstreamPool;
    bool back_pressured() const;
    void begin_use(UpstreamUser* user, uint64_t deadline_ms, bool reused);  // one exchange's fields
    void fail(ResultKind kind, const char* message, uint64_t now_ms);
    void note_connect(bool ok, uint64_t now_ms);  // tells the resolver how addr_ fared
    void step_connect(uint64_t now_ms);
    void step_send(uint64_t now_ms);
    pal::IoResult write_pending();
    size_t gather(char* out, size_t cap) const;  // pending request bytes, from the current offset
    void advance(size_t sent);
    void step_receive(uint64_t now_ms);
    void complete(uint64_t now_ms);
    void release_now(bool keep);
    void step_idle();
    bool known_empty() const;  // nothing to read, as far as the loop knows: no read needed
    void io_failure(const char* what, pal::IoResult r, uint64_t now_ms);

    UpstreamPool* pool_ = nullptr;
    Transport* t_ = nullptr;
    PlainTransport plain_;
    TlsTransport tls_;
    ConnState state_ = ConnState::unused;
    const EndpointConfig* ec_ = nullptr;
    EndpointRuntime* rt_ = nullptr;
    pal::Addr addr_ = {};  // the address this connection uses
    uint8_t endpoint_ = 0;
    UpstreamUser* user_ = nullptr;
    uint64_t deadline_ = 0;
    uint64_t now_ms_ = 0;       // time of the event being handled (for parser callbacks)
    bool reused_ = false;
    bool tls_resumed_ = false;
    bool in_callback_ = false;
    bool leftover_ = false;     // bytes arrived after the response: never reuse
    bool awaiting_ticket_ = false;  // released; closes once the TLS 1.3 ticket is read
    uint32_t parked_wait_ = 0;      // the loop's waits() when it was last parked
    bool drained_ = false;          // a short plain read found the socket empty, at waits() == drained_wait_
    uint32_t drained_wait_ = 0;
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
    void init(Loop* loop, TransportSource* source = nullptr);
    Loop* loop() const { return loop_; }
    // A parked connection to `endpoint` that is still usable, adopted by `user`, or nullptr.
    UpstreamConn* take_idle(uint8_t endpoint, UpstreamUser* user, uint64_t deadline_ms);
    // A free slot to open a new connection, or nullptr when the table is full.
    UpstreamConn* take_free();
    size_t idle_count(uint8_t endpoint) const;
    size_t in_use() const;
    void close_idle(uint8_t endpoint);  // e.g. on reload
    // A released TLS 1.3 connection of the endpoint still waits for its session ticket.
    bool ticket_pending(uint8_t endpoint) const;
    void park_limit(uint8_t endpoint);  // closes parked connections beyond the per-endpoint cap
    void close_all();
    // One request write is gathered here (one thread: one buffer serves every connection).
    char* stage() { return stage_; }

private:
    friend class UpstreamConn;
    Slots<UpstreamConn, EW_CAP_UPSTREAM_CONNS> conns_;
    Loop* loop_ = nullptr;
    TransportSource* source_ = nullptr;
    char stage_[EW_CAP_UPSTREAM_WRITE];
};

}  // namespace ew
