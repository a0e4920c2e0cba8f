// One local client connection: reads HTTP requests (llhttp, size-limited), hands each to
// the agent, writes the answer from a fixed output buffer. Keep-alive and pipelining safe:
// one request at a time, unconsumed bytes wait in the input buffer.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "net/http.h"
#include "net/loop.h"
#include "net/proxy.h"
#include "pal.h"

namespace ew {

class Agent;

#ifndef EW_CAP_CLIENT_OUT
#define EW_CAP_CLIENT_OUT 32768  // response head + body chunk waiting for the client
#endif
#ifndef EW_CAP_CLIENT_IN
#define EW_CAP_CLIENT_IN 4096
#endif

enum class ClientState : uint8_t { unused, reading, proxying, writing, closing };

class ClientConn final : public Pollable {
public:
    void open(Agent* agent, pal::Socket s, char* body_storage, size_t body_limit, uint64_t now_ms);
    void close_now();
    ClientState state() const { return state_; }
    bool busy() const { return state_ == ClientState::proxying || out_len_ > out_off_; }

    // Response writing, used by admin and proxy.
    // A complete response with a body; `extra_headers` is "Name: value\r\n..." or "".
    void respond(uint16_t status, const char* content_type, const char* body, size_t len,
                 const char* extra_headers = "");
    void respond_error(uint16_t status, const char* message, const char* type, const char* code,
                       const char* extra_headers = "");
    // Streaming: head, then chunks, then end (chunked transfer encoding).
    void begin_chunked(uint16_t status, const char* content_type, const char* extra_headers);
    bool write_chunk(const char* data, size_t len);
    void end_chunked();
    // Raw bytes into the output buffer (head or Content-Length body).
    bool write_raw(const char* data, size_t len);
    size_t out_room() const;
    void flush();                     // try to send now
    void finish_response();           // the answer is complete: keep-alive or close after flush
    void abort();                     // close without finishing (e.g. after a broken stream)
    void close_after_response() { close_after_ = true; }

    const RequestParser& request() const { return req_; }
    uint64_t request_started_ms() const { return started_ms_; }
    ProxyExchange& exchange() { return exchange_; }

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

    Agent* agent_ = nullptr;
    pal::Socket sock_ = pal::kNoSocket;
    ClientState state_ = ClientState::unused;
    RequestParser req_;
    bool keep_alive_ = true;
    bool close_after_ = false;
    bool linger_ = false;  // drain unread input before closing (error answers mid-request)
    bool peer_closed_ = false;
    uint64_t started_ms_ = 0;
    uint64_t idle_deadline_ = 0;
    char in_[EW_CAP_CLIENT_IN];
    size_t in_len_ = 0;
    char out_[EW_CAP_CLIENT_OUT];
    size_t out_len_ = 0;
    size_t out_off_ = 0;
    ProxyExchange exchange_;
};

}  // namespace ew
