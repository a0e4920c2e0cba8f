// One local client connection: reads HTTP requests (llhttp, size-limited), hands each to
// its host (the agent's routing), and writes the answer from a fixed output buffer. It is
// the ClientWriter of its exchange. Keep-alive and pipelining safe: one request at a time,
// unconsumed bytes wait in the input buffer.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "net/client_writer.h"
#include "net/context.h"
#include "net/http.h"
#include "net/loop.h"
#include "net/proxy.h"
#include "pal.h"

namespace ew {

class ClientConn;

// Who a client connection reports to.
class ClientHost {
public:
    virtual void on_request(ClientConn* c, uint64_t now_ms) = 0;
    virtual void on_client_closed(ClientConn* c) = 0;

protected:
    ~ClientHost() = default;
};

enum class ClientState : uint8_t { unused, reading, proxying, writing, closing };
const char* to_string(ClientState s);

class ClientConn final : public Pollable, public ClientWriter {
public:
    void open(ClientHost* host, const NetContext* ctx, pal::Socket s, char* body_storage, size_t body_limit,
              uint64_t now_ms);
    void close_now();
    ClientState state() const { return state_; }
    bool busy() const { return state_ == ClientState::proxying || out_len_ > out_off_ || ext_ != nullptr; }
    // Idle on a keep-alive connection: nothing of a next request has arrived.
    bool between_requests() const;
    // Some of a request head has arrived, not all of it (a slow or hostile client).
    bool head_incomplete() const;
    // Draining input after an error answer: the connection is done.
    bool lingering() const { return state_ == ClientState::closing; }
    uint32_t requests_served() const { return requests_; }
    // Reads what the client has sent, now (the table is full and a slot must be chosen).
    void take_input(uint64_t now_ms) {
        if (state_ == ClientState::reading) read_some(now_ms);
    }
    uint64_t opened_ms() const { return t_.opened; }
    uint64_t last_activity_ms() const { return t_.last_activity; }
    // CORS: the request came from a browser page on an origin cors_origins does not allow.
    bool origin_refused() const { return req_.origin.present && !cors_allowed_; }

    const RequestParser& request() const { return req_; }
    RequestView request_view() const;
    // Hands the request to the exchange (POST /v1/...).
    void start_exchange(uint64_t now_ms) { exchange_.start(ctx_, this, request_view(), now_ms); }
    const ProxyExchange& exchange() const { return exchange_; }
    // An answer written with respond*() is complete: keep-alive or close after flushing.
    void finish_response();
    void close_after_response() { close_after_ = true; }
    void respond_error(uint16_t status, const char* message, const char* type, const char* code,
                       const char* extra_headers = "");

    // ClientWriter
    void respond(uint16_t status, const char* content_type, const char* body, size_t len,
                 const char* extra_headers) override;
    void respond_bodiless(uint16_t status, const char* extra_headers) override;
    // A whole answer whose body may be larger than this connection's buffer: what does not
    // fit is copied in from `body` as the client reads, so `body` must stay unchanged until
    // sending_from(body) turns false. True when it is used so (false: copied at once).
    bool respond_from(uint16_t status, const char* content_type, const char* body, size_t len,
                      const char* extra_headers);
    bool sending_from(const char* buf) const { return ext_ != nullptr && ext_ == buf; }
    bool stage(const char* data, size_t len) override;
    void drop_staged() override;
    bool begin_chunked(uint16_t status, const char* content_type, const char* extra_headers) override;
    bool write_chunk(const char* data, size_t len, bool use_reserve) override;
    size_t chunk_room() const override;
    void flush() override;
    void end_answer(AnswerEnd how, bool chunked) override;

    // Pollable
    pal::Socket poll_socket() const override { return sock_; }
    uint16_t poll_events() const override;
    uint64_t deadline_ms() const override;
    void on_ready(uint16_t revents, uint64_t now_ms) override;
    void on_deadline(uint64_t now_ms) override;

private:
    void read_some(uint64_t now_ms);
    void parse_buffered(uint64_t now_ms);
    void after_flush(uint64_t now_ms);
    void answer_parse_error(HttpParse r);
    bool write_raw(const char* data, size_t len);
    size_t free_space() const { return sizeof out_ - out_len_ + out_off_; }
    size_t sendable_end() const { return staging_ ? stage_start_ : out_len_; }
    void compact();
    size_t format_head(char* head, size_t cap, uint16_t status, const char* content_type, const char* framing,
                       const char* extra_headers) const;

    ClientHost* host_ = nullptr;
    const NetContext* ctx_ = nullptr;
    pal::Socket sock_ = pal::kNoSocket;
    ClientState state_ = ClientState::unused;
    RequestParser req_;
    bool keep_alive_ = true;
    bool close_after_ = false;
    bool linger_ = false;  // drain unread input before closing (error answers mid-request)
    bool short_linger_ = false;  // the linger after a 408 is short: the client is slow on purpose
    bool peer_closed_ = false;
    bool cors_allowed_ = false;  // this request's Origin is allowed: its answer carries CORS headers
    bool chunked_ok_ = true;     // false for HTTP/1.0: a stream is close-delimited
    bool staging_ = false;
    size_t stage_start_ = 0;
    // When things happened and are due (monotonic ms; 0 = not set).
    struct Times {
        uint64_t opened = 0;         // accepted
        uint64_t started = 0;        // the current request's first byte
        uint64_t last_activity = 0;  // the client last sent something
        uint64_t idle_deadline = 0;  // keep-alive idle, head or body timeout, linger end
        uint64_t write_stalled = 0;  // output waiting since (0: none waiting)
    } t_;
    uint32_t requests_ = 0;
    char in_[EW_CAP_CLIENT_IN];
    size_t in_len_ = 0;
    char out_[EW_CAP_CLIENT_OUT];
    size_t out_len_ = 0;
    size_t out_off_ = 0;
    const char* ext_ = nullptr;  // respond_from(): the rest of the body, outside out_
    size_t ext_len_ = 0;
    size_t ext_off_ = 0;
    ProxyExchange exchange_;
};

}  // namespace ew
