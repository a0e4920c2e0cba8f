// The relay half of a proxied request: commit, body relay (JSON or SSE), usage, and the
// honest end of a stream that breaks after commit.
#include <string.h>

#include "core/openai.h"
#include "core/strbuf.h"
#include "net/agent.h"
#include "net/client.h"
#include "net/log.h"
#include "net/proxy.h"

namespace ew {

// ---- commit and relay -------------------------------------------------------------------------

void ProxyExchange::commit(uint16_t status, const char* content_type, uint64_t now_ms) {
    committed_ = true;
    char hdr[256 + sizeof(conn_->response().passthrough)];
    StrBuf h(hdr, sizeof hdr);
    extra_headers(hdr, sizeof hdr, true);
    h.len = strlen(hdr);
    if (conn_) h.append(conn_->response().passthrough, conn_->response().passthrough_len);
    // Not flushed here: a JSON answer goes out with its body in as few writes as possible
    // (the loop flushes on writability); a stream flushes each event as it relays it.
    client_->begin_chunked(status, content_type, hdr);
    commit_status_ = status;
    if (stream_) agent_->metrics().first_token.observe_ms(now_ms - started_ms_);
    const EndpointConfig& ec = agent_->config().endpoints[cur_.endpoint];
    // After commit, the stream may run long: the limit is inactivity, not the total.
    if (conn_) conn_->set_deadline(now_ms + ec.timeout_ms);
}

size_t ProxyExchange::upstream_body_room() const {
    if (client_ == nullptr) return 0;
    size_t room = client_->out_room();
    return room > 32 ? room - 32 : 0;
}

void ProxyExchange::on_sse_event(const SseEvent& ev, void* user) {
    ProxyExchange* self = static_cast<ProxyExchange*>(user);
    if (ev.is_done) self->saw_done_ = true;
    if (!self->committed_ && self->commit_offset_ == kNoCommit) {
        if (ev.is_done || openai_event_is_error(ev)) {
            self->early_end_ = true;  // an error or an empty stream before any token: fail over
            return;
        }
        self->commit_offset_ = ev.end_offset;
        // Stop here: the event's pointers stay valid until the next feed.
        self->first_event_ = ev;
        sse_stop(&self->sse_);
        return;
    }
    OpenAIUsage u;
    if (!ev.is_done && openai_find_usage(ev.data, ev.data_len, &u)) self->add_usage(u);
}

void ProxyExchange::on_upstream_body(UpstreamConn* c, const char* data, size_t len) {
    uint64_t now_ms = pal::now_ms();
    if (!stream_ || committed_) {
        if (stream_) sse_feed(&sse_, data, len, on_sse_event, this);
        else keep_tail(data, len);
        client_->write_chunk(data, len);
        if (stream_) client_->flush();  // tokens go out as they come
        if (committed_ && conn_) c->set_deadline(now_ms + agent_->config().endpoints[cur_.endpoint].timeout_ms);
        return;
    }
    // Streaming, not committed yet: look for the first data event.
    commit_offset_ = kNoCommit;
    early_end_ = false;
    SseStatus s = sse_feed(&sse_, data, len, on_sse_event, this);
    if (s != SseStatus::ok || early_end_) {
        conn_ = nullptr;
        c->release(false);
        record_outcome(ResultKind::bad_response, 0, now_ms);
        note_failure(ResultKind::bad_response, 0,
                     s != SseStatus::ok ? "stream event too large" : "stream ended or failed before the first token");
        state_ = ExchangeState::attempting;
        next_attempt(now_ms);
        return;
    }
    if (commit_offset_ == kNoCommit) return;  // comments or partial event so far
    commit(200, "text/event-stream", now_ms);
    // The first event is written whole from the parser; the rest of this chunk raw.
    // Each data line gains a "data: " prefix: worst case one per byte.
    static char ev_buf[EW_CAP_SSE_EVENT * 7 + EW_CAP_SSE_EVENT_NAME + 16];
    StrBuf out(ev_buf, sizeof ev_buf);
    if (first_event_.event_len) {
        out.append("event: ");
        out.append(first_event_.event, first_event_.event_len);
        out.append("\n");
    }
    const char* d = first_event_.data;
    size_t left = first_event_.data_len;
    for (;;) {
        const char* nl = static_cast<const char*>(memchr(d, '\n', left));
        size_t line = nl ? static_cast<size_t>(nl - d) : left;
        out.append("data: ");
        out.append(d, line);
        out.append("\n");
        if (!nl) break;
        d = nl + 1;
        left -= line + 1;
    }
    out.append("\n");
    if (out.overflow) {
        // Cannot happen within caps (the buffer holds the largest event); never send half.
        fail_committed("first event too large to relay", now_ms);
        return;
    }
    client_->write_chunk(out.data, out.len);
    if (commit_offset_ < len) {
        // The rest of the chunk goes out raw; the parser still sees it ([DONE], usage, errors).
        sse_feed(&sse_, data + commit_offset_, len - commit_offset_, on_sse_event, this);
        client_->write_chunk(data + commit_offset_, len - commit_offset_);
    }
    client_->flush();
}

void ProxyExchange::on_upstream_done(UpstreamConn* c, uint64_t now_ms) {
    conn_ = nullptr;
    if (!committed_) {
        // A stream that ended before its first event: nothing was sent; fail over.
        c->release(false);
        record_outcome(ResultKind::bad_response, 0, now_ms);
        note_failure(ResultKind::bad_response, 0, "stream ended before the first token");
        state_ = ExchangeState::attempting;
        next_attempt(now_ms);
        return;
    }
    c->release(true);
    agent_->pool().park_limit(cur_.endpoint);
    if (!stream_) {
        OpenAIUsage u;
        if (tail_len_ && find_tail_usage(&u)) add_usage(u);
    }
    client_->end_chunked();
    end(now_ms, commit_status_);
}

void ProxyExchange::fail_committed(const char* message, uint64_t now_ms) {
    char why[EW_CAP_ERROR_TEXT + 64];
    StrBuf w(why, sizeof why);
    w.appendf("upstream %s failed mid-response: %s", agent_->config().endpoints[cur_.endpoint].name, message);
    EW_LOG_WARN("stream broken endpoint=%s model=%s error=\"%s\"", agent_->config().endpoints[cur_.endpoint].name,
                cur_.model, message);
    Outcome o;
    o.kind = ResultKind::bad_response;
    o.error = why;
    health_record(&agent_->health()[cur_.endpoint], agent_->health_params(), o, now_ms, false);
    if (stream_) {
        // The official SDKs raise on an error event; a silent cut would look like a finished answer.
        char ev[EW_CAP_ERROR_TEXT + 256];
        StrBuf e(ev, sizeof ev);
        openai_stream_error_event(&e, why);
        client_->write_chunk(e.data, e.len);
        client_->end_chunked();
        client_->close_after_response();
        end(now_ms, 502);
        return;
    }
    // A JSON body cut in the middle: close without the final chunk so the client sees it.
    ClientConn* cl = client_;
    finish_metrics(502, now_ms);
    detach();
    cl->abort();
}

// ---- usage

void ProxyExchange::add_usage(const OpenAIUsage& u) {
    prompt_tokens_ += u.prompt_tokens;
    completion_tokens_ += u.completion_tokens;
}

void ProxyExchange::keep_tail(const char* data, size_t len) {
    // The last bytes of a JSON answer: OpenAI puts "usage" at the end.
    if (len >= sizeof tail_) {
        memcpy(tail_, data + len - sizeof tail_, sizeof tail_);
        tail_len_ = sizeof tail_;
        return;
    }
    if (tail_len_ + len > sizeof tail_) {
        size_t drop = tail_len_ + len - sizeof tail_;
        memmove(tail_, tail_ + drop, tail_len_ - drop);
        tail_len_ -= drop;
    }
    memcpy(tail_ + tail_len_, data, len);
    tail_len_ += len;
}

bool ProxyExchange::find_tail_usage(OpenAIUsage* u) const {
    // Find "usage" in the tail and parse the object that follows as JSON on its own.
    static const char kKey[] = "\"usage\"";
    for (size_t i = tail_len_; i-- > 0;) {
        if (i + sizeof kKey - 1 > tail_len_ || memcmp(tail_ + i, kKey, sizeof kKey - 1) != 0) continue;
        size_t p = i + sizeof kKey - 1;
        while (p < tail_len_ && (tail_[p] == ' ' || tail_[p] == ':' || tail_[p] == '\n' || tail_[p] == '\r' ||
                                 tail_[p] == '\t'))
            p++;
        if (p >= tail_len_ || tail_[p] != '{') return false;
        size_t depth = 0, q = p;
        for (; q < tail_len_; q++) {
            if (tail_[q] == '{') depth++;
            if (tail_[q] == '}' && --depth == 0) break;
        }
        if (q >= tail_len_) return false;
        // Wrap as {"usage":{...}} for the shared reader.
        char doc[sizeof tail_ + 16];
        StrBuf d(doc, sizeof doc);
        d.append("{\"usage\":");
        d.append(tail_ + p, q - p + 1);
        d.append("}");
        return !d.overflow && openai_find_usage(d.data, d.len, u);
    }
    return false;
}

}  // namespace ew
