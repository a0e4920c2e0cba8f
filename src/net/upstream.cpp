#include "net/upstream.h"

#include <string.h>

#include "core/strbuf.h"
#include "net/log.h"
#include "net/resolver.h"

namespace ew {
namespace {

constexpr uint32_t kIdleKeepMs = 20000;  // parked connections are closed after this
constexpr size_t kMinRoom = 64;          // below this much user room, reading pauses

}  // namespace

const char* to_string(ConnState s) {
    switch (s) {
        case ConnState::unused: return "unused";
        case ConnState::connecting: return "connecting";
        case ConnState::idle: return "idle";
        case ConnState::sending: return "sending";
        case ConnState::receiving: return "receiving";
    }
    return "?";
}

void UpstreamConn::begin_use(UpstreamUser* user, uint64_t deadline_ms, bool reused) {
    user_ = user;
    deadline_ = deadline_ms;
    reused_ = reused;
    bytes_in_ = 0;
    leftover_ = false;
    drained_ = false;
    pending_release_ = Release::none;
}

ResultKind UpstreamConn::open(const EndpointConfig* ec, EndpointRuntime* rt, uint8_t endpoint, UpstreamUser* user,
                              uint64_t deadline_ms, uint64_t now_ms, char* err, size_t err_cap) {
    ec_ = ec;
    rt_ = rt;
    endpoint_ = endpoint;
    now_ms_ = now_ms;
    tls_resumed_ = false;
    awaiting_ticket_ = false;
    resp_.init(this);
    begin_use(user, deadline_ms, false);
    if (rt->names == nullptr || !rt->names->address(endpoint, &addr_)) {
        // Not reached from the router or the probes (an endpoint without an address is not a
        // candidate and is not probed); kept for any other caller.
        const char* why = rt->names ? rt->names->unresolved_reason(endpoint) : "";
        copy_str(err, err_cap, why[0] ? why : "host not resolved");
        user_ = nullptr;
        return ResultKind::connect;
    }
    bool https = ec->scheme == Scheme::https;
    if (https && !rt->tls_ready) {
        copy_str(err, err_cap, rt->tls_error[0] ? rt->tls_error : rt->tls.error_text());
        user_ = nullptr;
        return ResultKind::tls;
    }
    t_ = pool_->source_ ? pool_->source_->transport_for(*this, *ec) : nullptr;
    if (t_ == nullptr) t_ = https ? static_cast<Transport*>(&tls_) : static_cast<Transport*>(&plain_);
    TransportStep s = t_->start(addr_, ec->host, https ? &rt->tls : nullptr);
    if (s == TransportStep::error) {
        if (strncmp(t_->error_text(), "connect", 7) == 0) note_connect(false, now_ms);
        copy_str(err, err_cap, t_->error_text());
        t_->close();
        user_ = nullptr;
        return https && strncmp(t_->error_text(), "connect", 7) != 0 ? ResultKind::tls : ResultKind::connect;
    }
    rt->connections_opened++;
    state_ = ConnState::connecting;
    pool_->loop_->add(this);
    return ResultKind::ok;
}

ResultKind UpstreamConn::send(const char* head, size_t head_len, const char* const* body, const size_t* body_len,
                              size_t segments, bool head_request, uint64_t deadline_ms, uint64_t now_ms, char* err,
                              size_t err_cap) {
    if (head_len > sizeof head_ || segments > 3 || state_ != ConnState::idle) {
        copy_str(err, err_cap, "request head too large");
        return ResultKind::bad_response;
    }
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
    now_ms_ = now_ms;
    state_ = ConnState::sending;
    // Write now (one loop iteration saved per request); a failure is returned, not called back.
    pal::IoResult r = write_pending();
    if (r.status == pal::Io::error) {
        StrBuf m(err, err_cap);
        const char* text = t_->error_text();
        m.appendf("send: %s", text && text[0] ? text : pal::strerror(r.err));
        ResultKind k = ResultKind::connect;  // nothing was read: the connection itself failed
        user_ = nullptr;
        close_now();
        return k;
    }
    return ResultKind::ok;
}

pal::IoResult UpstreamConn::write_pending() {
    size_t cap = t_->write_chunk();
    if (cap > sizeof pool_->stage_) cap = sizeof pool_->stage_;
    while (seg_index_ < seg_count_) {
        size_t n = gather(pool_->stage_, cap);
        pal::IoResult r = t_->send(pool_->stage_, n);
        if (r.status != pal::Io::ok) return r;
        advance(r.n);
    }
    state_ = ConnState::receiving;
    return pal::IoResult{pal::Io::ok, 0, 0};
}

bool UpstreamConn::back_pressured() const {
    return state_ == ConnState::receiving && user_ && resp_.head_done && user_->upstream_body_room() < kMinRoom;
}

uint16_t UpstreamConn::poll_events() const {
    switch (state_) {
        case ConnState::connecting: return t_->wants_write() ? pal::kOut : pal::kIn;
        // Parked TLS connections are watched (a close_notify must be read); parked plain ones
        // only where watching is free (epoll), so that with poll(2) many of them cost nothing
        // per wake-up: take_idle() then checks them with a read.
        case ConnState::idle: return (user_ == nullptr && (t_->is_tls() || pal::kPollKeepsInterest)) ? pal::kIn : 0;
        case ConnState::sending: return static_cast<uint16_t>(pal::kOut | pal::kIn);
        case ConnState::receiving:
            if (t_->wants_write()) return pal::kOut;
            return back_pressured() ? 0 : pal::kIn;
        default: return 0;
    }
}

uint64_t UpstreamConn::deadline_ms() const {
    // While the client is the slow side, upstream silence is not being measured: the user
    // re-arms the deadline when the client drains.
    if (back_pressured()) return 0;
    return deadline_;
}

bool UpstreamConn::has_pending() const {
    if (state_ == ConnState::unused || t_ == nullptr) return false;
    // A connection waiting for its TLS 1.3 ticket takes it from the TLS read-ahead too
    // (it may have come in one read with the response: the socket then shows nothing).
    if (state_ == ConnState::idle) return awaiting_ticket_ && user_ == nullptr && t_->pending();
    if (back_pressured()) return false;
    return t_->pending();
}

void UpstreamConn::on_ready(uint16_t revents, uint64_t now_ms) {
    now_ms_ = now_ms;
    switch (state_) {
        case ConnState::connecting: step_connect(now_ms); break;
        case ConnState::idle:
            if (user_ == nullptr) step_idle();
            break;
        case ConnState::sending:
            step_send(now_ms);
            if (state_ == ConnState::sending && (revents & (pal::kIn | pal::kErr | pal::kHup))) step_receive(now_ms);
            break;
        case ConnState::receiving: step_receive(now_ms); break;
        default: break;
    }
}

void UpstreamConn::on_deadline(uint64_t now_ms) {
    if (parked() || awaiting_ticket_) {
        close_now();  // parked too long: the server may drop it any moment
        return;
    }
    if (state_ == ConnState::connecting) note_connect(false, now_ms);
    const char* what = state_ == ConnState::connecting ? (uses_tls() ? "timeout connecting or in the TLS handshake"
                                                                     : "timeout while connecting")
                       : resp_.head_done             ? "timeout while reading the response body"
                                                     : "timeout waiting for the response";
    fail(ResultKind::timeout, what, now_ms);
}

void UpstreamConn::note_connect(bool ok, uint64_t now_ms) {
    if (rt_ == nullptr || rt_->names == nullptr) return;
    if (ok)
        rt_->names->connect_ok(endpoint_, addr_);
    else
        rt_->names->connect_failed(endpoint_, addr_, now_ms);  // next address; early re-query
}

void UpstreamConn::step_connect(uint64_t now_ms) {
    TransportStep s = t_->advance();
    if (s == TransportStep::in_progress) return;
    // A TLS failure means the address itself answered.
    note_connect(s != TransportStep::error || strncmp(t_->error_text(), "connect", 7) != 0, now_ms);
    if (s == TransportStep::error) {
        const char* e = t_->error_text();
        fail(strncmp(e, "connect", 7) == 0 ? ResultKind::connect : ResultKind::tls, e, now_ms);
        return;
    }
    tls_resumed_ = t_->resumed();
    if (tls_resumed_) rt_->tls_resumed++;
    state_ = ConnState::idle;
    if (user_) user_->on_upstream_ready(this, now_ms);
}

// The request goes out as one write per step: head and body pieces gathered into the
// pool's staging buffer, so the upstream gets one segment for a small request and TLS one
// record. After a TLS WANT_*, the next step gathers the very same bytes again (same
// offsets), as Mbed TLS requires.
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

void UpstreamConn::io_failure(const char* what, pal::IoResult r, uint64_t now_ms) {
    char msg[EW_CAP_ERROR_TEXT];
    StrBuf m(msg, sizeof msg);
    const char* text = t_->error_text();
    m.appendf("%s: %s", what, text && text[0] ? text : pal::strerror(r.err));
    // Nothing read yet: the connection itself failed (a stale parked one, typically).
    fail(bytes_in_ == 0 ? ResultKind::connect : ResultKind::bad_response, msg, now_ms);
}

void UpstreamConn::step_send(uint64_t now_ms) {
    pal::IoResult r = write_pending();
    if (r.status == pal::Io::error) io_failure("send", r, now_ms);
}

void UpstreamConn::step_receive(uint64_t now_ms) {
    // Bounded work per readiness: a fast upstream must not starve other connections.
    for (int round = 0; round < 8; round++) {
        size_t want = sizeof rx_;
        if (user_ && resp_.head_done) {
            size_t room = user_->upstream_body_room();
            if (room < kMinRoom) return;  // resumes when the client drains
            // Our chunk framing may exceed the upstream's for tiny chunks: keep half spare.
            if (room < 2 * sizeof rx_ + kMinRoom) want = (room - kMinRoom) / 2;
            if (want == 0) return;
        }
        pal::IoResult r = t_->recv(rx_, want);
        if (r.status == pal::Io::would_block) return;
        if (r.status == pal::Io::closed) {
            HttpParse f = resp_.finish();
            if (f == HttpParse::complete) {
                resp_.keep_alive = false;
                complete(now_ms);
            } else if (bytes_in_ == 0) {
                fail(ResultKind::connect,
                     reused_ ? "reused connection closed by upstream" : "upstream closed the connection without answering",
                     now_ms);
            } else {
                fail(ResultKind::bad_response, resp_.error_reason, now_ms);
            }
            return;
        }
        if (r.status == pal::Io::error) {
            io_failure("recv", r, now_ms);
            return;
        }
        bytes_in_ += r.n;
        // A short read of plain TCP took all the socket had (TLS reads one record at a time:
        // short says nothing there).
        drained_ = r.n < want && !t_->is_tls();
        drained_wait_ = pool_->loop_->waits();
        size_t used = 0;
        in_callback_ = true;
        HttpParse p = resp_.feed(rx_, r.n, &used);
        in_callback_ = false;
        if (p == HttpParse::complete && used != r.n) leftover_ = true;  // bytes after the response
        if (pending_release_ != Release::none) {
            bool keep = pending_release_ == Release::keep && p == HttpParse::complete;
            pending_release_ = Release::none;
            if (p == HttpParse::complete) state_ = ConnState::idle;
            release_now(keep);
            return;
        }
        if (p == HttpParse::complete) {
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
        // Drained: asking again would only learn EAGAIN (one system call per chunk). Whatever
        // arrives meanwhile makes the socket readable again.
        if (drained_) return;
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
    if (user_ && pending_release_ == Release::none) user_->on_upstream_head(this, now_ms_);
}

void UpstreamConn::on_response_body(const char* data, size_t len) {
    if (user_ && pending_release_ == Release::none) user_->on_upstream_body(this, data, len, now_ms_);
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

void UpstreamConn::step_idle() {
    // Readable with no user: TLS takes post-handshake messages (TLS 1.3 session tickets) and
    // a parked connection stays parked; anything else (a close, data) means the server is done.
    TransportStep s = t_->idle_read();
    if (s == TransportStep::in_progress) return;
    if (s == TransportStep::done && !awaiting_ticket_) return;
    close_now();  // also: the awaited ticket arrived
}

void UpstreamConn::release_after_ticket(uint64_t deadline_ms) {
    if (state_ == ConnState::idle && !in_callback_ && t_ && t_->ticket_expected()) {
        user_ = nullptr;
        awaiting_ticket_ = true;  // not parked(): never handed out; closed by step_idle or the deadline
        deadline_ = deadline_ms;
        return;
    }
    release(false);
}

void UpstreamConn::release_now(bool keep) {
    user_ = nullptr;
    // Reused only when the last response was read to its end with nothing left over.
    // Not parked when its address left the endpoint's DNS answer: new requests go to the new one.
    bool listed = rt_ == nullptr || rt_->names == nullptr || rt_->names->lists(endpoint_, addr_);
    if (keep && listed && state_ == ConnState::idle && resp_.done && resp_.keep_alive && !leftover_ &&
        !t_->pending()) {
        deadline_ = now_ms_ + kIdleKeepMs;
        parked_wait_ = pool_->loop_->waits();
        return;  // parked: take_idle() hands it out again
    }
    close_now();
}

bool UpstreamConn::known_empty() const {
    // What the loop learnt last about this socket: its last wait watched it, parked, and
    // reported nothing (epoll keeps parked sockets registered; TLS ones are always watched),
    // or, since that wait, the read that completed its response found it empty. Either
    // way, a read now would say EAGAIN, as nginx's keepalive cache also assumes; the
    // stale-connection retry (a reused connection that fails before answering is retried
    // once on a fresh one) covers what arrives in between.
    Loop* loop = pool_->loop_;
    return loop->watched_quiet(this, parked_wait_) || (drained_ && drained_wait_ == loop->waits());
}

void UpstreamConn::close_now() {
    if (state_ == ConnState::unused) return;
    if (t_) t_->close();
    pool_->loop_->remove(this);
    state_ = ConnState::unused;
    user_ = nullptr;
    deadline_ = 0;
    awaiting_ticket_ = false;
}

// ---- pool -----------------------------------------------------------------------------------

void UpstreamPool::init(Loop* loop, TransportSource* source) {
    loop_ = loop;
    source_ = source;
}

UpstreamConn* UpstreamPool::take_idle(uint8_t endpoint, UpstreamUser* user, uint64_t deadline_ms) {
    for (UpstreamConn& c : conns_) {
        if (!c.parked() || c.endpoint() != endpoint) continue;
        if (!c.known_empty() && !c.t_->idle_usable()) {
            c.close_now();  // the server closed it, or wrote to it, while parked
            continue;
        }
        c.begin_use(user, deadline_ms, true);
        c.resp_.reset();
        return &c;
    }
    return nullptr;
}

UpstreamConn* UpstreamPool::take_free() {
    UpstreamConn* found = nullptr;
    for (UpstreamConn& c : conns_)
        if (c.state() == ConnState::unused) {
            found = &c;
            break;
        }
    for (size_t i = 0; found == nullptr && i < conns_.capacity(); i++)
        if (!conns_.made(i)) found = &conns_.make(i);
    if (found == nullptr) {
        // Full: the parked connection closest to its idle timeout makes room.
        for (UpstreamConn& c : conns_)
            if (c.parked() && (found == nullptr || c.deadline_ < found->deadline_)) found = &c;
        if (found) found->close_now();
    }
    if (found) found->pool_ = this;
    return found;
}

size_t UpstreamPool::idle_count(uint8_t endpoint) const {
    size_t n = 0;
    for (const UpstreamConn& c : conns_)
        if (c.parked() && c.endpoint() == endpoint) n++;
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
        if ((c.parked() || c.awaiting_ticket()) && c.endpoint() == endpoint) c.close_now();
}

bool UpstreamPool::ticket_pending(uint8_t endpoint) const {
    for (const UpstreamConn& c : conns_)
        if (c.awaiting_ticket() && c.endpoint() == endpoint) return true;
    return false;
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
