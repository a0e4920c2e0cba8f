// The relay half of a proxied request: the response head's verdict, what a 2xx must look
// like, the commit (JSON at its first body bytes, SSE at its first data event, both relayed
// as the bytes the upstream sent), the relay, usage, and the honest end of an answer that
// breaks after commit.
#include <string.h>

#include "core/openai.h"
#include "core/retry.h"
#include "core/strbuf.h"
#include "net/log.h"
#include "net/state_log.h"
#include "net/proxy.h"

namespace ew {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// The media type of a Content-Type value, printable and short: it goes into messages.
void media_type(const HeaderValue& ct, char* out, size_t cap) {
    size_t n = 0;
    for (size_t i = 0; ct.present && i < ct.len && n + 1 < cap && n < 48; i++) {
        char c = ct.text[i];
        if (c == ';' || c == ' ') break;
        out[n++] = (c > 0x20 && c < 0x7f && c != '"' && c != '\\') ? c : '?';
    }
    out[n] = '\0';
    if (n == 0) copy_str(out, cap, "no content type");
}

// A relayed header value: printable ASCII only (nothing from upstream may break our head).
void safe_value(const HeaderValue& h, char* out, size_t cap, const char* fallback) {
    size_t n = 0;
    for (size_t i = 0; h.present && i < h.len && n + 1 < cap; i++) {
        char c = h.text[i];
        if (c < 0x20 || c > 0x7e) {
            copy_str(out, cap, fallback);
            return;
        }
        out[n++] = c;
    }
    out[n] = '\0';
    if (n == 0) copy_str(out, cap, fallback);
}

bool contains_ci(const HeaderValue& h, const char* word) {
    if (!h.present) return false;
    size_t w = strlen(word);
    for (size_t i = 0; i + w <= h.len; i++) {
        size_t k = 0;
        while (k < w && (h.text[i + k] | 0x20) == word[k]) k++;
        if (k == w) return true;
    }
    return false;
}

}  // namespace

// ---- the response head --------------------------------------------------------------------------

bool ProxyExchange::check_head(const ResponseParser& r, AttemptFailure* f, char* msg, size_t cap) const {
    // A 200 that is not what was asked for (a hotel Wi-Fi login page, a proxy's error page)
    // is a bad response: it fails over and counts against the endpoint.
    char mt[56];
    media_type(r.content_type, mt, sizeof mt);
    bool html = contains_ci(r.content_type, "text/html");
    bool ok;
    if (stream_)
        ok = header_starts_with(r.content_type, "text/event-stream");
    else if (speech_)  // audio bytes (or their SSE form, stream_format=sse)
        ok = !r.content_type.present || header_starts_with(r.content_type, "audio/") ||
             header_starts_with(r.content_type, "application/octet-stream") ||
             header_starts_with(r.content_type, "text/event-stream");
    else if (multipart_)  // a transcript: JSON, or text / srt / vtt
        ok = !r.content_type.present || contains_ci(r.content_type, "json") ||
             (header_starts_with(r.content_type, "text/") && !html);
    else
        ok = !r.content_type.present || contains_ci(r.content_type, "json");
    if (ok) return true;
    StrBuf m(msg, cap);
    if (html)
        m.appendf("%s answer: captive portal?", mt);
    else
        m.appendf("%s answer where %s was expected", mt, stream_ ? "text/event-stream" : "JSON");
    f->kind = ResultKind::bad_response;
    f->message = msg;
    f->reason = FailoverReason::bad_response;
    return false;
}

void ProxyExchange::on_upstream_head(ProxyAttempt& a, UpstreamConn* c, uint64_t now_ms) {
    const ResponseParser& r = c->response();
    uint16_t status = r.status;
    a.head_ms = now_ms;
    AttemptVerdict v = classify_attempt(ResultKind::http_status, status);
    if (v == AttemptVerdict::success || v == AttemptVerdict::return_to_client) {
        // A head in time: a JSON attempt is not hedged from here on; its time feeds `auto`.
        if (!stream_) {
            hedge_observe(&ctx_->metrics->hedge, a.cand.endpoint, false, now_ms - a.started_ms);
            if (!other(a).live()) hedge_at_ms_ = 0;
        }
    }
    AttemptFailure f;
    char msg[96];
    if (status >= 300 && status < 400) {
        StrBuf m(msg, sizeof msg);
        m.appendf("HTTP %u redirect: captive portal?", status);
        f.kind = ResultKind::bad_response;
        f.message = msg;
        f.reason = FailoverReason::bad_response;
        attempt_failed(a, f, now_ms);
        return;
    }
    // 400, 404, 429 with a JSON body: read it for its meaning first (proxy_error.cpp).
    if (begin_error_body(a, r, now_ms)) return;
    if (v == AttemptVerdict::return_to_client) {
        // The service answered properly (400, 404, 422, ...): relayed as it is.
        char ct[EW_CAP_NAME * 4];
        safe_value(r.content_type, ct, sizeof ct, "application/json");
        commit(a, status, ct, now_ms);
        return;
    }
    if (v == AttemptVerdict::success) {
        if (status == 204 || status == 304) {
            bodiless_ = true;
            commit(a, status, "", now_ms);
            return;
        }
        if (!check_head(r, &f, msg, sizeof msg)) {
            attempt_failed(a, f, now_ms);
            return;
        }
        if (raw_) {
            // Bytes (audio, a transcript): relayed from the head on, as they come.
            char ct[EW_CAP_NAME * 4];
            safe_value(r.content_type, ct, sizeof ct, speech_ ? "application/octet-stream" : "application/json");
            commit(a, status, ct, now_ms);
            return;
        }
        if (stream_) {
            // Commit waits for the first data event, within first_token_timeout_ms.
            sse_init(&a.sse);
            set_state(a, ExchangeState::awaiting_first_event);
            uint64_t d = now_ms + ctx_->cfg->agent.first_token_timeout_ms;
            c->set_deadline(d < deadline_ms_ ? d : deadline_ms_);
        } else {
            set_state(a, ExchangeState::awaiting_body);
        }
        return;
    }
    // A failure: this attempt ends here, the connection is not reused (body unread).
    f.kind = ResultKind::http_status;
    f.status = status;
    f.reason = status == 429 ? FailoverReason::rate_limited
               : (status == 401 || status == 403) ? FailoverReason::auth
                                                  : FailoverReason::server_error;
    if (status == 429) a.retry_after_known = response_retry_after_ms(r, &a.retry_after_ms);
    attempt_failed(a, f, now_ms);
}

// ---- commit -------------------------------------------------------------------------------------

bool ProxyExchange::commit(ProxyAttempt& a, uint16_t status, const char* content_type, uint64_t now_ms) {
    hedge_committed(a, now_ms);  // the other attempt, if any, is closed before a byte goes out
    char hdr[EW_CAP_CLIENT_HEAD - 256];
    StrBuf h(hdr, sizeof hdr);
    edgeway_headers(&h, true);
    if (a.conn) h.append(a.conn->response().passthrough.text, a.conn->response().passthrough.len);
    commit_status_ = status;
    state_ = ExchangeState::committed;
    a.state = ExchangeState::committed;
    head_ms_ = a.head_ms;
    attempt_started_ms_ = a.started_ms;
    record_success(a, status, now_ms);
    if (bodiless_) {
        out_->respond_bodiless(status, hdr);
    } else if (!out_->begin_chunked(status, content_type, hdr)) {
        // Cannot happen within the caps (caps.h ties the head to the buffer).
        stager_ = -1;
        fail_committed("response head too large to relay", now_ms);
        return false;
    }
    stager_ = -1;  // what was staged is the answer's first chunk now
    if (stream_ && !bodiless_) {
        ttft_ms_ = now_ms - started_ms_;
        ctx_->metrics->observe_first_token(cur_.endpoint, cur_.model_slot, ttft_ms_);
        hedge_observe(&ctx_->metrics->hedge, a.cand.endpoint, true, now_ms - a.started_ms);
    }
    // After commit the limit is upstream silence, not the total: a long generation runs on.
    if (a.conn) a.conn->set_deadline(now_ms + inactivity_ms());
    return true;
}

uint32_t ProxyExchange::inactivity_ms() const { return ctx_->cfg->endpoints[cur_.endpoint].timeout_ms; }

void ProxyExchange::on_client_drained(uint64_t now_ms) {
    // Upstream reads resume (upstream_body_room), and silence is measured from now.
    if (state_ == ExchangeState::committed && won().conn) won().conn->set_deadline(now_ms + inactivity_ms());
}

// ---- body -----------------------------------------------------------------------------------------

void ProxyExchange::on_sse_event(const SseEvent& ev, void* user) {
    ProxyAttempt* a = static_cast<ProxyAttempt*>(user);
    ProxyExchange* self = a->ex;
    if (!a->sse_first) {
        if (ev.is_done || openai_event_is_error(ev)) {
            a->sse_early_end = true;  // an error or an empty stream before any token: fail over
            return;
        }
        a->sse_first = true;
        return;
    }
    if (ev.is_done || (self->responses_api_ && openai_event_ends_response(ev)) ||
        (self->multipart_ && openai_event_ends_transcript(ev))) {
        self->saw_done_ = true;
        return;
    }
    OpenAIUsage u;
    if (openai_find_usage(ev.data, ev.data_len, &u)) {
        self->prompt_tokens_ += u.prompt_tokens;
        self->completion_tokens_ += u.completion_tokens;
    }
}

void ProxyExchange::on_upstream_body(ProxyAttempt& a, const char* data, size_t len, uint64_t now_ms) {
    if (state_ == ExchangeState::committed) {
        if (a.slot == won_) relay(data, len, now_ms);
        return;
    }
    switch (a.state) {
        case ExchangeState::awaiting_first_event: feed_first_event(a, data, len, now_ms); break;
        case ExchangeState::awaiting_body: feed_first_json(a, data, len, now_ms); break;
        case ExchangeState::awaiting_error_body: feed_error_body(a, data, len, now_ms); break;
        default: break;
    }
}

void ProxyExchange::feed_first_event(ProxyAttempt& a, const char* data, size_t len, uint64_t now_ms) {
    AttemptFailure f;
    f.kind = ResultKind::bad_response;
    if (stager_ >= 0 && stager_ != a.slot) {
        // Bytes that came with this attempt's head while the other attempt stages (proxy_hedge.cpp).
        SseStatus s = sse_feed(&a.sse, data, len, on_sse_event, &a);
        if (s != SseStatus::ok || a.sse_early_end) {
            f.message = s != SseStatus::ok ? "stream event too large" : "stream ended or failed before the first token";
            attempt_failed(a, f, now_ms);
            return;
        }
        if (!a.sse_first) {
            if (sse_has_partial(&a.sse)) cancel_loser(a, "both attempts were mid-way through a first event", now_ms);
            return;
        }
        if (!take_staging(a, data, len, now_ms)) {
            f.message = "first event too large to stage";
            attempt_failed(a, f, now_ms);
            return;
        }
        if (commit(a, 200, "text/event-stream", now_ms)) out_->flush();
        return;
    }
    if (!stage_first(a, data, len)) {
        // A first event too long to hold (thousands of data lines): when data has begun, it
        // is committed now and relayed as it comes, as it was sent; the parser still watches
        // it (an error event is then the upstream's own words to the client). Only filler
        // (comments) that fills the buffer before any data fails the attempt.
        if (a.sse.data_fields == 0) {
            f.message = "stream sent no data event within the relay buffer";
            attempt_failed(a, f, now_ms);
            return;
        }
        if (!commit(a, 200, "text/event-stream", now_ms)) return;
        a.sse_first = true;
        relay(data, len, now_ms);
        return;
    }
    SseStatus s = sse_feed(&a.sse, data, len, on_sse_event, &a);
    if (s != SseStatus::ok || a.sse_early_end) {
        f.message = s != SseStatus::ok ? "stream event too large" : "stream ended or failed before the first token";
        attempt_failed(a, f, now_ms);
        return;
    }
    if (!a.sse_first) {  // comments or a partial event so far
        release_staging(a, !sse_has_partial(&a.sse));
        return;
    }
    // What was staged (the first event as sent, and whatever followed it) is the first chunk.
    if (commit(a, 200, "text/event-stream", now_ms)) out_->flush();
}

void ProxyExchange::feed_first_json(ProxyAttempt& a, const char* data, size_t len, uint64_t now_ms) {
    AttemptFailure f;
    f.kind = ResultKind::bad_response;
    size_t i = 0;
    while (i < len && is_space(data[i])) i++;
    bool waiting = stager_ >= 0 && stager_ != a.slot;  // the other attempt stages (proxy_hedge.cpp)
    if (waiting && i == len) return;                    // whitespace: nothing to keep
    if (i < len && data[i] != '{' && data[i] != '[') {
        f.message = "HTTP 200 body is not JSON";
        attempt_failed(a, f, now_ms);
        return;
    }
    if (waiting ? !take_staging(a, data, len, now_ms) : !stage_first(a, data, len)) {
        f.message = "answer starts with more whitespace than the relay buffer holds";
        attempt_failed(a, f, now_ms);
        return;
    }
    if (waiting) tail_len_ = 0;
    keep_tail(data, len);
    if (i == len) {  // whitespace so far
        release_staging(a, true);
        return;
    }
    commit(a, a.conn ? a.conn->response().status : 200, "application/json", now_ms);
}

void ProxyExchange::relay(const char* data, size_t len, uint64_t now_ms) {
    if (bodiless_) return;
    if (stream_) {
        // The parser only watches ([DONE], usage, event boundaries); an event larger than it
        // holds is relayed as sent all the same, and the parser starts over after it.
        size_t off = 0;
        SseParser& sse = won().sse;
        while (off < len && sse_feed(&sse, data + off, len - off, on_sse_event, &won()) != SseStatus::ok) {
            size_t used = sse.consumed;
            sse_init(&sse);
            if (used == 0) break;
            off += used;
        }
    } else if (!raw_) {
        keep_tail(data, len);
    }
    if (!out_->write_chunk(data, len, false)) {
        // Flow control keeps this from happening; if it does, the client must know.
        fail_committed("client buffer full", now_ms);
        return;
    }
    if (stream_ || raw_) out_->flush();  // tokens (and audio) go out as they come
    if (won().conn) won().conn->set_deadline(now_ms + inactivity_ms());
}

void ProxyExchange::on_upstream_done(ProxyAttempt& a, UpstreamConn* c, uint64_t now_ms) {
    if (state_ != ExchangeState::committed && a.state == ExchangeState::awaiting_error_body) {
        finish_error_body(a, c, now_ms);
        return;
    }
    AttemptFailure f;
    f.kind = ResultKind::bad_response;
    if (state_ != ExchangeState::committed && a.state == ExchangeState::awaiting_first_event) {
        f.message = "stream ended before the first token";
        attempt_failed(a, f, now_ms);
        return;
    }
    if (state_ != ExchangeState::committed && a.state == ExchangeState::awaiting_body) {
        f.message = "HTTP 200 with an empty body";
        attempt_failed(a, f, now_ms);
        return;
    }
    if (state_ != ExchangeState::committed || a.slot != won_) return;
    // Read to its end: the connection may serve the next request.
    a.conn = nullptr;
    c->release(true);
    ctx_->pool->park_limit(cur_.endpoint);
    if (stream_ && !bodiless_ && commit_status_ >= 200 && commit_status_ < 300 && !saw_done_) {
        fail_committed(responses_api_ ? "stream ended without response.completed" : "stream ended without [DONE]",
                       now_ms);
        return;
    }
    if (!stream_) {
        OpenAIUsage u;
        if (tail_len_ && find_tail_usage(&u)) {
            prompt_tokens_ += u.prompt_tokens;
            completion_tokens_ += u.completion_tokens;
        }
    }
    end(AnswerEnd::complete, commit_status_, now_ms);
}

// ---- the honest end of a broken answer -------------------------------------------------------------

void ProxyExchange::fail_committed(const char* message, uint64_t now_ms) {
    const char* name = ctx_->cfg->endpoints[cur_.endpoint].name;
    char why[EW_CAP_ERROR_TEXT + 64];
    StrBuf w(why, sizeof why);
    w.appendf("upstream %s failed mid-response: %s", name, message);
    EW_LOG_WARN("stream broken endpoint=%s model=%s error=\"%s\"", name, cur_.model, message);
    Observation o;
    o.kind = ResultKind::bad_response;
    o.error = why;
    health_observe(&ctx_->health[cur_.endpoint], *ctx_->params, o, now_ms);
    note_state(*ctx_, cur_.endpoint, now_ms, "traffic");
    if (won().conn) {
        won().conn->release(false);
        won().conn = nullptr;
    }
    if (stream_ && !bodiless_) {
        // The SDKs raise on an error event; it starts on a fresh event boundary (an event
        // cut in the middle is closed first) and may use the reserve kept for it.
        if (sse_has_partial(&won().sse)) out_->write_chunk("\n\n", 2, true);
        char ev[EW_CAP_STREAM_ERROR_RESERVE];
        StrBuf e(ev, sizeof ev);
        if (responses_api_)
            openai_responses_error_event(&e, why);
        else
            openai_stream_error_event(&e, why);
        out_->write_chunk(e.data, e.len, true);
    }
    // No terminating chunk: the client sees an unfinished body, never a clean end.
    end(AnswerEnd::unfinished, 502, now_ms);
}

// ---- usage -------------------------------------------------------------------------------------------

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
        if (tail_[i] != '"' || i + sizeof kKey - 1 > tail_len_ || memcmp(tail_ + i, kKey, sizeof kKey - 1) != 0) continue;
        size_t p = i + sizeof kKey - 1;
        while (p < tail_len_ && (is_space(tail_[p]) || tail_[p] == ':')) p++;
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
