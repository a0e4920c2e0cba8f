#include "net/upstream.h"

#include <string.h>

#include "core/strbuf.h"
#include "net/log.h"

namespace ew {
namespace {

constexpr uint32_t kIdleKeepMs = 20000;  // parked connections are closed after this
constexpr uint32_t kFreshParkMs = 1000;  // parked for less: reused without a liveness check
constexpr size_t kTlsWriteChunk = 16384;

}  // namespace

bool UpstreamConn::open(const EndpointConfig* ec, EndpointRuntime* rt, uint8_t endpoint, UpstreamUser* user,
                        Loop* loop, uint64_t deadline_ms, uint64_t now_ms) {
    ec_ = ec;
    rt_ = rt;
    endpoint_ = endpoint;
    user_ = user;
    loop_ = loop;
    deadline_ = deadline_ms;
    opened_ms_ = now_ms;
    reused_ = false;
    tls_resumed_ = false;
    tls_live_ = false;
    use_tls_ = ec->scheme == Scheme::https;
    bytes_in_ = 0;
    pending_release_ = Release::none;
    resp_.init(this);
    state_ = ConnState::connecting;
    loop_->add(this);
    if (!rt->resolved) {
        fail(ResultKind::connect, rt->resolve_error[0] ? rt->resolve_error : "host not resolved", now_ms);
        return false;
    }
    if (use_tls_ && !rt->tls.ready()) {
        fail(ResultKind::tls, rt->tls_error[0] ? rt->tls_error : rt->tls.error_text(), now_ms);
        return false;
    }
    int err = 0;
    sock_ = pal::tcp_connect(rt->addr, &err);
    if (sock_ == pal::kNoSocket) {
        char msg[EW_CAP_ERROR_TEXT];
        StrBuf m(msg, sizeof msg);
        m.appendf("connect: %s", pal::strerror(err));
        fail(ResultKind::connect, msg, now_ms);
        return false;
    }
    rt->connections_opened++;
    return true;
}

void UpstreamConn::adopt(UpstreamUser* user, uint64_t deadline_ms) {
    user_ = user;
    deadline_ = deadline_ms;
    reused_ = true;
    bytes_in_ = 0;
    pending_release_ = Release::none;
    resp_.reset();
}

bool UpstreamConn::send(const char* head, size_t head_len, const char* const* body, const size_t* body_len,
                        size_t segments, bool head_request, uint64_t deadline_ms) {
    if (head_len > sizeof head_ || segments > 3) return false;
    memcpy(head_, head, head_len);
    head_len_ = head_len;
    seg_[0] = head_;
    seg_len_[0] = head_len;
    seg_count_ = 1;
    for (size_t i = 0; i < segments; i++) {
        if (body_len[i] == 0) continue;
        seg_[seg_count_] = body[i];
        seg_len_[seg_count_] = body_len[i];
        seg_count_++;
    }
    seg_index_ = 0;
    seg_off_ = 0;
    resp_.reset();
    resp_.head_request = head_request;
    deadline_ = deadline_ms;
    state_ = ConnState::sending;
    step_send(pal::now_ms());
    return true;
}

uint16_t UpstreamConn::poll_events() const {
    switch (state_) {
        case ConnState::connecting: return pal::kOut;
        case ConnState::tls_handshake: return tls_want_write_ ? pal::kOut : pal::kIn;
        // Parked TLS connections are watched (a close_notify must be read); parked plain ones
        // are not, so that many of them cost nothing per wake-up: take_idle() checks them.
        case ConnState::idle: return (user_ == nullptr && use_tls_) ? pal::kIn : 0;
        case ConnState::sending: return static_cast<uint16_t>(pal::kOut | pal::kIn);
        case ConnState::receiving: {
            if (tls_want_write_) return pal::kOut;
            if (user_ && user_->upstream_body_room() < 64 && resp_.head_done) return 0;  // back-pressure
            return pal::kIn;
        }
        default: return 0;
    }
}

bool UpstreamConn::has_pending() const {
    if (state_ != ConnState::receiving || !tls_live_) return false;
    if (user_ && resp_.head_done && user_->upstream_body_room() < 64) return false;
    return tls_.pending();
}

void UpstreamConn::on_ready(uint16_t revents, uint64_t now_ms) {
    switch (state_) {
        case ConnState::connecting: step_connect(now_ms); break;
        case ConnState::tls_handshake: step_handshake(now_ms); break;
        case ConnState::idle: step_idle(); break;
        case ConnState::sending:
            if (revents & pal::kOut) step_send(now_ms);
            if (state_ == ConnState::sending && (revents & (pal::kIn | pal::kErr | pal::kHup))) step_receive(now_ms);
            break;
        case ConnState::receiving: step_receive(now_ms); break;
        default: break;
    }
}

void UpstreamConn::on_deadline(uint64_t now_ms) {
    if (state_ == ConnState::idle && user_ == nullptr) {
        close_now();  // parked too long: the server may drop it any moment
        return;
    }
    const char* what = state_ == ConnState::connecting    ? "timeout while connecting"
                       : state_ == ConnState::tls_handshake ? "timeout in the TLS handshake"
                       : resp_.head_done                  ? "timeout while reading the response body"
                                                          : "timeout waiting for the response";
    fail(ResultKind::timeout, what, now_ms);
}

void UpstreamConn::step_connect(uint64_t now_ms) {
    int e = pal::tcp_connect_result(sock_);
    if (e != 0) {
        char msg[EW_CAP_ERROR_TEXT];
        StrBuf m(msg, sizeof msg);
        m.appendf("connect: %s", pal::strerror(e));
        fail(ResultKind::connect, msg, now_ms);
        return;
    }
    if (!use_tls_) {
        state_ = ConnState::idle;
        if (user_) user_->on_upstream_ready(this, now_ms);
        return;
    }
    TlsStatus s = tls_.init(&rt_->tls, sock_, ec_->host);
    if (s == TlsStatus::error) {
        fail(ResultKind::tls, tls_.error_text(), now_ms);
        return;
    }
    tls_live_ = true;
    state_ = ConnState::tls_handshake;
    step_handshake(now_ms);
}

void UpstreamConn::step_handshake(uint64_t now_ms) {
    TlsStatus s = tls_.handshake();
    if (s == TlsStatus::want_read || s == TlsStatus::want_write) {
        tls_want_write_ = s == TlsStatus::want_write;
        return;
    }
    tls_want_write_ = false;
    if (s != TlsStatus::ok) {
        fail(ResultKind::tls, tls_.error_text(), now_ms);
        return;
    }
    tls_resumed_ = tls_.resumed();
    if (tls_resumed_) rt_->tls_resumed++;
    state_ = ConnState::idle;
    if (user_) user_->on_upstream_ready(this, now_ms);
}

pal::IoResult UpstreamConn::io_send(const char* p, size_t n) {
    if (!tls_live_) return pal::send(sock_, p, n);
    size_t done = 0;
    if (n > kTlsWriteChunk) n = kTlsWriteChunk;
    TlsStatus s = tls_.write(p, n, &done);
    if (s == TlsStatus::ok) return pal::IoResult{pal::Io::ok, done, 0};
    if (s == TlsStatus::want_read || s == TlsStatus::want_write) return pal::IoResult{pal::Io::would_block, 0, 0};
    return pal::IoResult{pal::Io::error, 0, tls_.socket_error()};
}

pal::IoResult UpstreamConn::io_recv(char* p, size_t n) {
    if (!tls_live_) return pal::recv(sock_, p, n);
    size_t got = 0;
    TlsStatus s = tls_.read(p, n, &got);
    tls_want_write_ = s == TlsStatus::want_write;
    if (s == TlsStatus::ok) return pal::IoResult{pal::Io::ok, got, 0};
    if (s == TlsStatus::want_read || s == TlsStatus::want_write) return pal::IoResult{pal::Io::would_block, 0, 0};
    if (s == TlsStatus::closed) return pal::IoResult{pal::Io::closed, 0, 0};
    return pal::IoResult{pal::Io::error, 0, tls_.socket_error()};
}

// The request goes out as one write per step: head and body pieces gathered into one
// staging buffer, so the upstream gets one segment for a small request (not four) and TLS
// one record. One thread, so one buffer serves every connection. After a TLS WANT_*, the
// next step gathers the very same bytes again (same offsets), as Mbed TLS requires.
namespace {
char g_stage[kTlsWriteChunk];
}

size_t UpstreamConn::gather(char* out, size_t cap) const {
    size_t n = 0;
    size_t idx = seg_index_;
    size_t off = seg_off_;
    while (idx < seg_count_ && n < cap) {
        size_t take = seg_len_[idx] - off;
        if (take > cap - n) take = cap - n;
        memcpy(out + n, seg_[idx] + off, take);
        n += take;
        idx++;
        off = 0;
    }
    return n;
}

void UpstreamConn::advance(size_t sent) {
    while (sent > 0 && seg_index_ < seg_count_) {
        size_t left = seg_len_[seg_index_] - seg_off_;
        if (sent < left) {
            seg_off_ += sent;
            return;
        }
        sent -= left;
        seg_index_++;
        seg_off_ = 0;
    }
}

void UpstreamConn::step_send(uint64_t now_ms) {
    while (seg_index_ < seg_count_) {
        size_t n = gather(g_stage, sizeof g_stage);
        pal::IoResult r = io_send(g_stage, n);
        if (r.status == pal::Io::would_block) return;
        if (r.status != pal::Io::ok) {
            char msg[EW_CAP_ERROR_TEXT];
            StrBuf m(msg, sizeof msg);
            m.appendf("send: %s", tls_live_ && tls_.error_text()[0] ? tls_.error_text() : pal::strerror(r.err));
            fail(bytes_in_ == 0 ? ResultKind::connect : ResultKind::bad_response, msg, now_ms);
            return;
        }
        advance(r.n);
    }
    state_ = ConnState::receiving;
}

bool UpstreamConn::still_open() {
    if (use_tls_) return true;  // watched by poll while parked
    // Parked for under a second: take it as it is (under load that is every reuse, and the
    // check would cost a system call per request). A close that races the reuse shows as a
    // reused connection closed without an answer, which is retried once without penalty.
    uint64_t parked_at = deadline_ - kIdleKeepMs;
    if (pal::now_ms() - parked_at < kFreshParkMs) return true;
    // A parked connection must have nothing to read: data or EOF means the server is done.
    char probe;
    pal::IoResult r = pal::recv(sock_, &probe, 1);
    return r.status == pal::Io::would_block;
}

void UpstreamConn::step_idle() {
    // A parked connection that becomes readable was closed by the server (or misbehaves).
    close_now();
}

void UpstreamConn::step_receive(uint64_t now_ms) {
    // Bounded work per readiness: a fast upstream must not starve other connections.
    for (int round = 0; round < 8; round++) {
        size_t want = sizeof rx_;
        if (user_ && resp_.head_done) {
            size_t room = user_->upstream_body_room();
            if (room < 64) return;  // resumes when the client drains
            // Our chunk framing may exceed the upstream's for tiny chunks: keep half spare.
            if (room < 2 * sizeof rx_ + 64) want = (room - 64) / 2;
        }
        pal::IoResult r = io_recv(rx_, want);
        if (r.status == pal::Io::would_block) return;
        if (r.status == pal::Io::closed) {
            HttpParse f = resp_.finish();
            if (f == HttpParse::complete) {
                resp_.keep_alive = false;
                complete(now_ms);
            } else if (bytes_in_ == 0) {
                fail(ResultKind::connect, reused_ ? "reused connection closed by upstream" : "upstream closed the connection without answering", now_ms);
            } else {
                fail(ResultKind::bad_response, resp_.error_reason, now_ms);
            }
            return;
        }
        if (r.status == pal::Io::error) {
            char msg[EW_CAP_ERROR_TEXT];
            StrBuf m(msg, sizeof msg);
            m.appendf("recv: %s", tls_live_ && tls_.error_text()[0] ? tls_.error_text() : pal::strerror(r.err));
            fail(bytes_in_ == 0 ? ResultKind::connect : ResultKind::bad_response, msg, now_ms);
            return;
        }
        bytes_in_ += r.n;
        size_t used = 0;
        in_callback_ = true;
        HttpParse p = resp_.feed(rx_, r.n, &used);
        in_callback_ = false;
        if (pending_release_ != Release::none) {
            bool keep = pending_release_ == Release::keep && p == HttpParse::complete && used == r.n;
            pending_release_ = Release::none;
            release_now(keep);
            return;
        }
        if (p == HttpParse::complete) {
            if (used != r.n) resp_.keep_alive = false;  // bytes after the response: do not reuse
            complete(now_ms);
            return;
        }
        if (p != HttpParse::need_more) {
            char msg[EW_CAP_ERROR_TEXT];
            StrBuf m(msg, sizeof msg);
            m.appendf("malformed response: %s", resp_.error_reason ? resp_.error_reason : "parse error");
            fail(ResultKind::bad_response, msg, now_ms);
            return;
        }
    }
}

void UpstreamConn::complete(uint64_t now_ms) {
    state_ = ConnState::idle;
    UpstreamUser* u = user_;
    if (u) {
        u->on_upstream_done(this, now_ms);
    } else {
        close_now();
    }
}

void UpstreamConn::on_response_head() {
    if (user_) user_->on_upstream_head(this, pal::now_ms());
}

void UpstreamConn::on_response_body(const char* data, size_t len) {
    if (user_ && pending_release_ == Release::none) user_->on_upstream_body(this, data, len);
}

void UpstreamConn::fail(ResultKind kind, const char* message, uint64_t now_ms) {
    UpstreamUser* u = user_;
    user_ = nullptr;
    close_now();
    if (u) u->on_upstream_error(this, kind, message, now_ms);
}

void UpstreamConn::release(bool keep) {
    if (in_callback_) {
        pending_release_ = keep ? Release::keep : Release::close;
        user_ = nullptr;
        return;
    }
    release_now(keep);
}

void UpstreamConn::release_now(bool keep) {
    user_ = nullptr;
    if (keep && state_ == ConnState::idle && resp_.done && resp_.keep_alive && !(tls_live_ && tls_.pending())) {
        deadline_ = pal::now_ms() + kIdleKeepMs;
        return;  // parked: take_idle() hands it out again
    }
    close_now();
}

void UpstreamConn::close_now() {
    if (state_ == ConnState::unused) return;
    if (tls_live_) {
        if (tls_.handshake_done()) tls_.close_notify();
        tls_.free();
        tls_live_ = false;
    }
    if (sock_ != pal::kNoSocket) pal::close(sock_);
    sock_ = pal::kNoSocket;
    if (loop_) loop_->remove(this);
    state_ = ConnState::unused;
    user_ = nullptr;
    deadline_ = 0;
    tls_want_write_ = false;
}

// ---- pool -----------------------------------------------------------------------------------

void UpstreamPool::init(Loop* loop) { loop_ = loop; }

UpstreamConn* UpstreamPool::take_idle(uint8_t endpoint, UpstreamUser* user, uint64_t deadline_ms) {
    for (UpstreamConn& c : conns_) {
        if (c.state() == ConnState::idle && c.endpoint() == endpoint && c.parked()) {
            if (!c.still_open()) {
                c.close_now();  // the server closed it while parked
                continue;
            }
            c.adopt(user, deadline_ms);
            return &c;
        }
    }
    return nullptr;
}

UpstreamConn* UpstreamPool::take_free() {
    for (UpstreamConn& c : conns_)
        if (c.state() == ConnState::unused) return &c;
    for (size_t i = 0; i < conns_.capacity(); i++)
        if (!conns_.made(i)) return &conns_.make(i);
    // Full: the oldest parked connection makes room.
    for (UpstreamConn& c : conns_) {
        if (c.state() == ConnState::idle && c.parked()) {
            c.close_now();
            return &c;
        }
    }
    return nullptr;
}

size_t UpstreamPool::idle_count(uint8_t endpoint) const {
    size_t n = 0;
    for (const UpstreamConn& c : conns_)
        if (c.state() == ConnState::idle && c.endpoint() == endpoint && c.parked()) n++;
    return n;
}

size_t UpstreamPool::in_use() const {
    size_t n = 0;
    for (const UpstreamConn& c : conns_)
        if (c.state() != ConnState::unused && !c.parked()) n++;
    return n;
}

void UpstreamPool::close_idle(uint8_t endpoint) {
    for (UpstreamConn& c : conns_)
        if (c.state() == ConnState::idle && c.endpoint() == endpoint && c.parked()) c.close_now();
}

void UpstreamPool::park_limit(uint8_t endpoint) {
    // Parked plain connections cost a socket (their slot exists anyway); TLS ones also hold
    // Mbed TLS's record buffers, so fewer of those are kept.
    size_t n = 0;
    for (UpstreamConn& c : conns_) {
        if (c.parked() && c.endpoint() == endpoint) {
            size_t cap = c.uses_tls() ? EW_CAP_IDLE_TLS_PER_ENDPOINT : EW_CAP_IDLE_PER_ENDPOINT;
            if (++n > cap) c.close_now();
        }
    }
}

void UpstreamPool::close_all() {
    for (UpstreamConn& c : conns_) c.close_now();
}

}  // namespace ew
