#include "net/client.h"

#include <string.h>

#include "core/header_policy.h"
#include "core/openai.h"
#include "core/strbuf.h"
#include "net/log.h"

namespace ew {
namespace {

const char* reason_phrase(uint16_t status) {
    switch (status) {
        case 200: return "OK";
        case 201: return "Created";
        case 202: return "Accepted";
        case 204: return "No Content";
        case 304: return "Not Modified";
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

constexpr uint32_t kIdleTimeoutMs = 60000;         // keep-alive connection with no request
constexpr uint32_t kRequestReadTimeoutMs = 30000;  // the body must arrive whole by then
constexpr uint32_t kLingerMs = 5000;  // after an error answer, unread input is drained this long
constexpr uint32_t kSlowLingerMs = 1000;  // ... but not for long after a client too slow to send its request
constexpr size_t kChunkFraming = 12;  // "%zx\r\n" + "\r\n" for one chunk, generously

}  // namespace

const char* to_string(ClientState s) {
    switch (s) {
        case ClientState::unused: return "unused";
        case ClientState::reading: return "reading";
        case ClientState::proxying: return "proxying";
        case ClientState::writing: return "writing";
        case ClientState::closing: return "closing";
    }
    return "?";
}

void ClientConn::open(ClientHost* host, const NetContext* ctx, pal::Socket s, char* body_storage, size_t body_limit,
                      uint64_t now_ms) {
    host_ = host;
    ctx_ = ctx;
    sock_ = s;
    state_ = ClientState::reading;
    req_.init(body_storage, body_limit);
    keep_alive_ = true;
    close_after_ = linger_ = short_linger_ = peer_closed_ = staging_ = cors_allowed_ = false;
    chunked_ok_ = true;
    in_len_ = out_len_ = out_off_ = 0;
    ext_ = nullptr;
    requests_ = 0;
    // A new connection must send its request head within the header timeout.
    t_ = Times{now_ms, now_ms, now_ms, now_ms + ctx_->cfg->agent.client_header_timeout_ms, 0};
    ctx_->loop->add(this);
}

void ClientConn::close_now() {
    if (state_ == ClientState::unused) return;
    if (exchange_.active()) exchange_.cancel(ctx_->loop->now_ms());
    ctx_->loop->remove(this);
    if (sock_ != pal::kNoSocket) pal::close(sock_);
    sock_ = pal::kNoSocket;
    state_ = ClientState::unused;
    ext_ = nullptr;
    host_->on_client_closed(this);
}

bool ClientConn::between_requests() const {
    return state_ == ClientState::reading && in_len_ == 0 && req_.head_bytes == 0 && !req_.in_body &&
           out_len_ == out_off_;
}

bool ClientConn::head_incomplete() const {
    return state_ == ClientState::reading && !req_.in_body && (in_len_ > 0 || req_.head_bytes > 0);
}

RequestView ClientConn::request_view() const {
    RequestView v;
    v.method = req_.method;
    v.path = req_.path;
    v.path_len = req_.path_len;
    v.body = req_.body;
    v.body_len = req_.body_len;
    if (req_.content_type.present && !req_.content_type.truncated) {
        v.content_type = req_.content_type.text;
        v.content_type_len = req_.content_type.len;
    }
    v.forward_headers = req_.forward.text;
    v.forward_len = req_.forward.len;
    v.request_id = req_.request_id.present && !req_.request_id.truncated ? req_.request_id.text : "";
    return v;
}

uint16_t ClientConn::poll_events() const {
    uint16_t ev = 0;
    if (sendable_end() > out_off_ || ext_ != nullptr) ev |= pal::kOut;
    // Read while waiting for a request, and while proxying (to notice a client that leaves).
    if ((state_ == ClientState::reading || state_ == ClientState::proxying || state_ == ClientState::closing) &&
        !peer_closed_ && in_len_ < sizeof in_)
        ev |= pal::kIn;
    return ev;
}

uint64_t ClientConn::deadline_ms() const {
    uint64_t d = 0;
    if (state_ == ClientState::reading || state_ == ClientState::closing) d = t_.idle_deadline;
    if (t_.write_stalled != 0) {
        uint64_t w = t_.write_stalled + ctx_->cfg->agent.client_write_timeout_ms;
        if (d == 0 || w < d) d = w;
    }
    return d;
}

void ClientConn::on_deadline(uint64_t now_ms) {
    if (t_.write_stalled != 0 && now_ms >= t_.write_stalled + ctx_->cfg->agent.client_write_timeout_ms) {
        // The client stopped reading: nothing can reach it any more. Its upstream is cancelled.
        EW_LOG_INFO("client dropped: read nothing for client_write_timeout_ms=%u", ctx_->cfg->agent.client_write_timeout_ms);
        close_now();
        return;
    }
    if (now_ms < t_.idle_deadline) return;
    if (state_ == ClientState::closing) {
        close_now();
        return;
    }
    if (state_ == ClientState::reading) {
        if (in_len_ > 0 || req_.head_bytes > 0 || req_.in_body) {
            close_after_ = true;
            linger_ = true;
            respond_error(408, "The request did not arrive in time.", "invalid_request_error", "request_timeout");
            short_linger_ = true;
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
    t_.last_activity = now_ms;
    if (state_ == ClientState::reading) parse_buffered(now_ms);
    // While proxying, extra bytes (a pipelined request) wait in in_.
}

void ClientConn::parse_buffered(uint64_t now_ms) {
    while (state_ == ClientState::reading && in_len_ > 0) {
        bool head_before = req_.in_body;
        if (req_.head_bytes == 0 && !req_.in_body) {
            t_.started = now_ms;
            t_.idle_deadline = now_ms + ctx_->cfg->agent.client_header_timeout_ms;
        }
        size_t used = 0;
        HttpParse r = req_.feed(in_, in_len_, &used);
        memmove(in_, in_ + used, in_len_ - used);
        in_len_ -= used;
        if (!head_before && req_.in_body) t_.idle_deadline = now_ms + kRequestReadTimeoutMs;  // head complete
        switch (r) {
            case HttpParse::need_more:
                if (req_.wants_continue) {
                    req_.wants_continue = false;
                    write_raw("HTTP/1.1 100 Continue\r\n\r\n", 25);
                    flush();
                }
                return;
            case HttpParse::complete:
                keep_alive_ = req_.keep_alive && !req_.http10;  // HTTP/1.0: one request, then close
                requests_++;
                chunked_ok_ = !req_.http10;
                cors_allowed_ = req_.origin.present && !req_.origin.truncated &&
                                cors_allows(ctx_->cfg->agent, req_.origin.text, req_.origin.len);
                state_ = ClientState::proxying;  // the host answers now or later
                host_->on_request(this, now_ms);
                return;
            default:
                answer_parse_error(r);
                return;
        }
    }
}

void ClientConn::answer_parse_error(HttpParse r) {
    close_after_ = true;
    linger_ = true;
    char msg[160];
    StrBuf m(msg, sizeof msg);
    if (r == HttpParse::head_too_large) {
        respond_error(431, "Request head too large.", "invalid_request_error", "request_header_too_large");
    } else if (r == HttpParse::body_too_large) {
        m.appendf("Request body is larger than max_request_bytes (%zu bytes).", req_.body_cap);
        respond_error(413, msg, "invalid_request_error", "request_too_large");
    } else {
        m.appendf("Malformed HTTP request: %s", req_.error_reason ? req_.error_reason : "parse error");
        respond_error(400, msg, "invalid_request_error", "bad_request");
    }
    finish_response();
}

// ---- the output buffer ------------------------------------------------------------------------

void ClientConn::compact() {
    if (staging_ || out_off_ == 0) return;
    memmove(out_, out_ + out_off_, out_len_ - out_off_);
    out_len_ -= out_off_;
    out_off_ = 0;
}

bool ClientConn::write_raw(const char* data, size_t len) {
    if (out_off_ > 0 && out_off_ == out_len_ && !staging_) out_off_ = out_len_ = 0;
    if (len > sizeof out_ - out_len_) compact();
    if (len > sizeof out_ - out_len_) return false;
    if (out_len_ == out_off_ && t_.write_stalled == 0) t_.write_stalled = ctx_->loop->now_ms();
    memcpy(out_ + out_len_, data, len);
    out_len_ += len;
    return true;
}

size_t ClientConn::format_head(char* head, size_t cap, uint16_t status, const char* content_type,
                               const char* framing, const char* extra_headers) const {
    StrBuf h(head, cap);
    h.appendf("HTTP/1.1 %u %s\r\n", status, reason_phrase(status));
    if (content_type && content_type[0]) h.appendf("Content-Type: %s\r\n", content_type);
    h.append(framing);
    h.append(extra_headers);
    const AgentConfig& a = ctx_->cfg->agent;
    if (cors_allowed_)
        cors_answer_headers(&h, a, req_.origin.text, req_.origin.len);
    else if (a.cors_on() && !a.cors_any)
        h.append("Vary: Origin\r\n");
    h.append((keep_alive_ && !close_after_) ? "\r\n" : "Connection: close\r\n\r\n");
    return h.overflow ? 0 : h.len;
}

void ClientConn::respond(uint16_t status, const char* content_type, const char* body, size_t len,
                         const char* extra_headers) {
    char framing[48];
    StrBuf f(framing, sizeof framing);
    f.appendf("Content-Length: %zu\r\n", len);
    char head[EW_CAP_CLIENT_HEAD];
    size_t n = format_head(head, sizeof head, status, content_type, framing, extra_headers);
    // HEAD: the head GET would have, no body.
    bool head_only = strcmp(req_.method, "HEAD") == 0;
    if (n == 0 || !write_raw(head, n) || (!head_only && !write_raw(body, len))) {
        EW_LOG_WARN("client response_too_large status=%u bytes=%zu", status, len);
        close_after_ = true;
    }
}

bool ClientConn::respond_from(uint16_t status, const char* content_type, const char* body, size_t len,
                              const char* extra_headers) {
    // HEAD (no body) or a body that fits: copied now, as respond() does.
    if (strcmp(req_.method, "HEAD") == 0 || len + EW_CAP_CLIENT_HEAD <= sizeof out_ - out_len_) {
        respond(status, content_type, body, len, extra_headers);
        return false;
    }
    char framing[48];
    StrBuf f(framing, sizeof framing);
    f.appendf("Content-Length: %zu\r\n", len);
    char head[EW_CAP_CLIENT_HEAD];
    size_t n = format_head(head, sizeof head, status, content_type, framing, extra_headers);
    if (n == 0 || !write_raw(head, n)) {
        close_after_ = true;
        return false;
    }
    ext_ = body;
    ext_len_ = len;
    ext_off_ = 0;
    return true;
}

void ClientConn::respond_bodiless(uint16_t status, const char* extra_headers) {
    char head[EW_CAP_CLIENT_HEAD];
    size_t n = format_head(head, sizeof head, status, "", "", extra_headers);
    if (n == 0 || !write_raw(head, n)) close_after_ = true;
}

void ClientConn::respond_error(uint16_t status, const char* message, const char* type, const char* code,
                               const char* extra_headers) {
    char body[512];
    StrBuf b(body, sizeof body);
    openai_error_body(&b, message, type, nullptr, code);
    respond(status, "application/json", b.data, b.len, extra_headers);
}

bool ClientConn::stage(const char* data, size_t len) {
    if (!staging_) {
        compact();
        staging_ = true;
        stage_start_ = out_len_;
    }
    // Room stays for the head, the error reserve, and one more upstream read (with framing)
    // should the exchange commit early when this fills up.
    size_t limit = sizeof out_ - EW_CAP_CLIENT_HEAD - EW_CAP_STREAM_ERROR_RESERVE - 2 * EW_CAP_UPSTREAM_RX;
    if (out_len_ + len > limit) return false;
    memcpy(out_ + out_len_, data, len);
    out_len_ += len;
    return true;
}

void ClientConn::drop_staged() {
    if (!staging_) return;
    out_len_ = stage_start_;
    staging_ = false;
}

bool ClientConn::begin_chunked(uint16_t status, const char* content_type, const char* extra_headers) {
    char head[EW_CAP_CLIENT_HEAD];
    // HTTP/1.0 has no chunked coding: the body then ends when the connection closes.
    if (!chunked_ok_) close_after_ = true;
    size_t n = format_head(head, sizeof head, status, content_type,
                           chunked_ok_ ? "Transfer-Encoding: chunked\r\n" : "", extra_headers);
    if (n == 0) return false;
    if (!staging_) return write_raw(head, n);
    if (!chunked_ok_) {
        // The staged bytes follow the head as they are.
        size_t staged = out_len_ - stage_start_;
        staging_ = false;
        if (out_len_ + n > sizeof out_) {
            out_len_ = stage_start_;
            return false;
        }
        if (t_.write_stalled == 0) t_.write_stalled = ctx_->loop->now_ms();
        memmove(out_ + stage_start_ + n, out_ + stage_start_, staged);
        memcpy(out_ + stage_start_, head, n);
        out_len_ += n;
        return true;
    }
    // The staged bytes become the first chunk: move them up behind the head and size line.
    size_t staged = out_len_ - stage_start_;
    staging_ = false;
    if (staged == 0) {
        out_len_ = stage_start_;
        return write_raw(head, n);
    }
    char size_line[24];
    StrBuf s(size_line, sizeof size_line);
    s.appendf("%zx\r\n", staged);
    size_t shift = n + s.len;
    if (out_len_ + shift + 2 > sizeof out_) {
        out_len_ = stage_start_;
        return false;
    }
    if (out_len_ == out_off_ || stage_start_ == out_off_) {
        if (t_.write_stalled == 0) t_.write_stalled = ctx_->loop->now_ms();
    }
    memmove(out_ + stage_start_ + shift, out_ + stage_start_, staged);
    memcpy(out_ + stage_start_, head, n);
    memcpy(out_ + stage_start_ + n, s.data, s.len);
    out_len_ += shift;
    memcpy(out_ + out_len_, "\r\n", 2);
    out_len_ += 2;
    return true;
}

size_t ClientConn::chunk_room() const {
    size_t free = free_space();
    size_t keep = EW_CAP_STREAM_ERROR_RESERVE + kChunkFraming;
    return free > keep ? free - keep : 0;
}

bool ClientConn::write_chunk(const char* data, size_t len, bool use_reserve) {
    if (len == 0) return true;
    if (!chunked_ok_) {
        size_t keep = use_reserve ? 0 : EW_CAP_STREAM_ERROR_RESERVE;
        if (free_space() < len + keep) return false;
        return write_raw(data, len);
    }
    char size_line[24];
    StrBuf s(size_line, sizeof size_line);
    s.appendf("%zx\r\n", len);
    size_t need = s.len + len + 2;
    size_t keep = use_reserve ? 0 : EW_CAP_STREAM_ERROR_RESERVE;
    if (free_space() < need + keep) return false;
    write_raw(s.data, s.len);
    write_raw(data, len);
    write_raw("\r\n", 2);
    return true;
}

void ClientConn::flush() {
    for (;;) {
        size_t end = sendable_end();
        while (end > out_off_) {
            pal::IoResult r = pal::send(sock_, out_ + out_off_, end - out_off_);
            if (r.status == pal::Io::would_block) return;
            if (r.status != pal::Io::ok) {
                close_now();
                return;
            }
            out_off_ += r.n;
            if (r.n > 0) t_.write_stalled = ctx_->loop->now_ms();  // progress: the clock restarts
        }
        if (ext_ == nullptr || staging_) break;
        // respond_from(): the buffer went out whole; refill it from the body.
        size_t n = ext_len_ - ext_off_;
        if (n > sizeof out_) n = sizeof out_;
        memcpy(out_, ext_ + ext_off_, n);
        out_off_ = 0;
        out_len_ = n;
        ext_off_ += n;
        if (ext_off_ == ext_len_) ext_ = nullptr;
    }
    if (!staging_) {
        out_off_ = 0;
        out_len_ = 0;
    }
    t_.write_stalled = 0;
}

void ClientConn::end_answer(AnswerEnd how, bool chunked) {
    if (how == AnswerEnd::complete && chunked && chunked_ok_) write_raw("0\r\n\r\n", 5);
    // An unfinished body: no terminating chunk, and the connection closes after what was
    // written, so the client sees the cut (never a clean end).
    if (how == AnswerEnd::unfinished) close_after_ = true;
    finish_response();
}

void ClientConn::finish_response() {
    state_ = ClientState::writing;
    flush();
    if (state_ == ClientState::unused) return;
    after_flush(ctx_->loop->now_ms());
}

void ClientConn::after_flush(uint64_t now_ms) {
    if (out_len_ > out_off_ || ext_ != nullptr) return;
    if (state_ == ClientState::proxying) {
        exchange_.on_client_drained(now_ms);
        return;
    }
    if (state_ != ClientState::writing) return;
    if (linger_) {
        state_ = ClientState::closing;
        t_.idle_deadline = now_ms + (short_linger_ ? kSlowLingerMs : kLingerMs);
        in_len_ = 0;
        return;
    }
    if (close_after_ || !keep_alive_) {
        close_now();
        return;
    }
    // Next request on this keep-alive connection.
    state_ = ClientState::reading;
    cors_allowed_ = false;
    req_.reset();
    t_.last_activity = now_ms;
    t_.idle_deadline = now_ms + kIdleTimeoutMs;
    if (in_len_ > 0) parse_buffered(now_ms);
}

}  // namespace ew
