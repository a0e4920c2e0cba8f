#include "net/client.h"

#include <string.h>

#include "core/openai.h"
#include "core/strbuf.h"
#include "net/agent.h"
#include "net/log.h"

namespace ew {
namespace {

const char* reason_phrase(uint16_t status) {
    switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 413: return "Payload Too Large";
        case 415: return "Unsupported Media Type";
        case 422: return "Unprocessable Entity";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        default: return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
    }
}

constexpr uint32_t kIdleTimeoutMs = 60000;     // keep-alive connection with no request
constexpr uint32_t kRequestReadTimeoutMs = 30000;  // a request must arrive whole by then
constexpr uint32_t kLingerMs = 5000;  // after an error answer, unread input is drained this long

}  // namespace

void ClientConn::open(Agent* agent, pal::Socket s, char* body_storage, size_t body_limit, uint64_t now_ms) {
    agent_ = agent;
    sock_ = s;
    state_ = ClientState::reading;
    req_.init(body_storage, body_limit);
    keep_alive_ = true;
    close_after_ = false;
    linger_ = false;
    peer_closed_ = false;
    in_len_ = 0;
    out_len_ = 0;
    out_off_ = 0;
    started_ms_ = now_ms;
    idle_deadline_ = now_ms + kIdleTimeoutMs;
    agent_->loop().add(this);
}

void ClientConn::close_now() {
    if (state_ == ClientState::unused) return;
    if (exchange_.active()) exchange_.cancel();
    agent_->loop().remove(this);
    if (sock_ != pal::kNoSocket) pal::close(sock_);
    sock_ = pal::kNoSocket;
    state_ = ClientState::unused;
    agent_->client_closed(this);
}

uint16_t ClientConn::poll_events() const {
    uint16_t ev = 0;
    if (out_len_ > out_off_) ev |= pal::kOut;
    // Read while waiting for a request, and while proxying (to notice a client that leaves).
    if ((state_ == ClientState::reading || state_ == ClientState::proxying || state_ == ClientState::closing) &&
        !peer_closed_ && in_len_ < sizeof in_)
        ev |= pal::kIn;
    return ev;
}

uint64_t ClientConn::deadline_ms() const {
    if (state_ == ClientState::reading || state_ == ClientState::closing) return idle_deadline_;
    return 0;
}

void ClientConn::on_deadline(uint64_t) {
    if (state_ == ClientState::closing) {
        close_now();
        return;
    }
    if (state_ == ClientState::reading) {
        if (in_len_ > 0 || req_.head_bytes > 0) {
            close_after_ = true;
            linger_ = true;
            respond_error(408, "The request did not arrive in time.", "invalid_request_error", "request_timeout");
            finish_response();
            return;
        }
        close_now();
    }
}

void ClientConn::on_ready(uint16_t revents, uint64_t now_ms) {
    if (revents & pal::kOut) {
        flush();
        if (state_ == ClientState::unused) return;
        after_flush(now_ms);
        if (state_ == ClientState::unused) return;
    }
    if (revents & (pal::kIn | pal::kErr | pal::kHup)) read_some(now_ms);
}

void ClientConn::read_some(uint64_t now_ms) {
    if (state_ == ClientState::closing) {
        // Lingering close: discard what the client still sends, so that closing does not
        // reset the connection and destroy the error answer before the client reads it.
        pal::IoResult r = pal::recv(sock_, in_, sizeof in_);
        if (r.status == pal::Io::ok || r.status == pal::Io::would_block) return;
        close_now();
        return;
    }
    if (in_len_ == sizeof in_) return;
    pal::IoResult r = pal::recv(sock_, in_ + in_len_, sizeof in_ - in_len_);
    if (r.status == pal::Io::would_block) return;
    if (r.status != pal::Io::ok) {
        peer_closed_ = true;
        // A client that leaves cancels its upstream attempt and frees its slots.
        close_now();
        return;
    }
    in_len_ += r.n;
    if (state_ == ClientState::reading) parse_buffered(now_ms);
    // While proxying, extra bytes (a pipelined request) wait in in_.
}

void ClientConn::parse_buffered(uint64_t now_ms) {
    while (state_ == ClientState::reading && in_len_ > 0) {
        if (req_.head_bytes == 0 && !req_.in_body) {
            started_ms_ = now_ms;
            idle_deadline_ = now_ms + kRequestReadTimeoutMs;
        }
        size_t used = 0;
        HttpParse r = req_.feed(in_, in_len_, &used);
        memmove(in_, in_ + used, in_len_ - used);
        in_len_ -= used;
        switch (r) {
            case HttpParse::need_more:
                if (req_.wants_continue) {
                    req_.wants_continue = false;
                    write_raw("HTTP/1.1 100 Continue\r\n\r\n", 25);
                    flush();
                }
                return;
            case HttpParse::complete:
                keep_alive_ = req_.keep_alive;
                state_ = ClientState::proxying;  // the agent answers now or later
                agent_->handle_request(this, now_ms);
                return;
            case HttpParse::head_too_large:
                close_after_ = true;
                linger_ = true;
                respond_error(431, "Request head too large.", "invalid_request_error", "request_header_too_large");
                finish_response();
                return;
            case HttpParse::body_too_large: {
                close_after_ = true;
                linger_ = true;
                char msg[128];
                StrBuf m(msg, sizeof msg);
                m.appendf("Request body is larger than max_request_bytes (%zu bytes).", req_.body_cap);
                respond_error(413, msg, "invalid_request_error", "request_too_large");
                finish_response();
                return;
            }
            case HttpParse::bad_request:
            default: {
                close_after_ = true;
                linger_ = true;
                char msg[160];
                StrBuf m(msg, sizeof msg);
                m.appendf("Malformed HTTP request: %s", req_.error_reason ? req_.error_reason : "parse error");
                respond_error(400, msg, "invalid_request_error", "bad_request");
                finish_response();
                return;
            }
        }
    }
}

size_t ClientConn::out_room() const { return sizeof out_ - out_len_; }

bool ClientConn::write_raw(const char* data, size_t len) {
    if (out_off_ > 0 && out_off_ == out_len_) {
        out_off_ = 0;
        out_len_ = 0;
    }
    if (len > sizeof out_ - out_len_ && out_off_ > 0) {
        memmove(out_, out_ + out_off_, out_len_ - out_off_);
        out_len_ -= out_off_;
        out_off_ = 0;
    }
    if (len > sizeof out_ - out_len_) return false;
    memcpy(out_ + out_len_, data, len);
    out_len_ += len;
    return true;
}

void ClientConn::respond(uint16_t status, const char* content_type, const char* body, size_t len,
                         const char* extra_headers) {
    char head[768];
    StrBuf h(head, sizeof head);
    h.appendf("HTTP/1.1 %u %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n", status,
              reason_phrase(status), content_type, len, extra_headers,
              (keep_alive_ && !close_after_) ? "" : "Connection: close\r\n");
    if (!write_raw(h.data, h.len) || !write_raw(body, len)) {
        EW_LOG_WARN("client response_too_large status=%u bytes=%zu", status, len);
        close_after_ = true;
    }
}

void ClientConn::respond_error(uint16_t status, const char* message, const char* type, const char* code,
                               const char* extra_headers) {
    char body[512];
    StrBuf b(body, sizeof body);
    openai_error_body(&b, message, type, nullptr, code);
    respond(status, "application/json", b.data, b.len, extra_headers);
}

void ClientConn::begin_chunked(uint16_t status, const char* content_type, const char* extra_headers) {
    char head[1024];
    StrBuf h(head, sizeof head);
    h.appendf("HTTP/1.1 %u %s\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n%s%s\r\n", status,
              reason_phrase(status), content_type, extra_headers,
              (keep_alive_ && !close_after_) ? "" : "Connection: close\r\n");
    write_raw(h.data, h.len);
}

bool ClientConn::write_chunk(const char* data, size_t len) {
    if (len == 0) return true;
    char size_line[24];
    StrBuf s(size_line, sizeof size_line);
    s.appendf("%zx\r\n", len);
    if (out_room() + out_off_ < s.len + len + 2) return false;
    write_raw(s.data, s.len);
    write_raw(data, len);
    write_raw("\r\n", 2);
    return true;
}

void ClientConn::end_chunked() { write_raw("0\r\n\r\n", 5); }

void ClientConn::flush() {
    while (out_len_ > out_off_) {
        pal::IoResult r = pal::send(sock_, out_ + out_off_, out_len_ - out_off_);
        if (r.status == pal::Io::would_block) return;
        if (r.status != pal::Io::ok) {
            close_now();
            return;
        }
        out_off_ += r.n;
    }
    out_off_ = 0;
    out_len_ = 0;
}

void ClientConn::finish_response() {
    state_ = ClientState::writing;
    flush();
    if (state_ == ClientState::unused) return;
    after_flush(pal::now_ms());
}

void ClientConn::abort() {
    flush();
    close_now();
}

void ClientConn::after_flush(uint64_t now_ms) {
    if (out_len_ > out_off_) return;
    if (state_ == ClientState::proxying) {
        exchange_.on_client_drained(now_ms);
        return;
    }
    if (state_ != ClientState::writing) return;
    if (linger_) {
        state_ = ClientState::closing;
        idle_deadline_ = now_ms + kLingerMs;
        in_len_ = 0;
        return;
    }
    if (close_after_ || !keep_alive_) {
        close_now();
        return;
    }
    // Next request on this keep-alive connection.
    state_ = ClientState::reading;
    req_.reset();
    idle_deadline_ = now_ms + kIdleTimeoutMs;
    if (in_len_ > 0) parse_buffered(now_ms);
}

}  // namespace ew
