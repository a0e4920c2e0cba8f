#include "net/http.h"

#include <string.h>
#include <strings.h>

#include "core/header_policy.h"
#include "core/strbuf.h"

namespace ew {
namespace {

// Shared by both parsers: header field name capture (lower-case compare later).
template <typename P>
int field_cb(llhttp_t* hp, const char* at, size_t len) {
    P* p = static_cast<P*>(hp->data);
    size_t room = sizeof p->field - 1 - p->field_len;
    if (len > room) {
        len = room;
        p->field_truncated = true;
    }
    memcpy(p->field + p->field_len, at, len);
    p->field_len = static_cast<uint8_t>(p->field_len + len);
    p->field[p->field_len] = '\0';
    return 0;
}

template <typename P>
int value_cb(llhttp_t* hp, const char* at, size_t len) {
    P* p = static_cast<P*>(hp->data);
    HeaderValue* h = p->current;
    if (h == nullptr) return 0;
    size_t room = sizeof h->text - 1 - h->len;
    if (len > room) {
        len = room;
        h->truncated = true;
    }
    memcpy(h->text + h->len, at, len);
    h->len = static_cast<uint16_t>(h->len + len);
    h->text[h->len] = '\0';
    return 0;
}

template <typename P>
int value_complete_cb(llhttp_t* hp) {
    P* p = static_cast<P*>(hp->data);
    p->current = nullptr;
    p->field_len = 0;
    p->field[0] = '\0';
    p->field_truncated = false;
    return 0;
}

// The field name just read is `name` (a lower-case literal), case-insensitively. Lengths are
// compared first: most fields are none of the few we look for.
template <typename P, size_t N>
bool field_named(const P* p, const char (&name)[N]) {
    return !p->field_truncated && p->field_len == N - 1 && strncasecmp(p->field, name, N - 1) == 0;
}

// Picks the HeaderValue a field maps to; a repeated header is a fresh value (last wins),
// except Authorization, where a second one is refused by the caller.
HeaderValue* start_value(HeaderValue* h) {
    h->len = 0;
    h->text[0] = '\0';
    h->present = true;
    h->truncated = false;
    return h;
}

// --- request side -------------------------------------------------------------------------

int req_message_begin(llhttp_t* hp) {
    RequestParser* p = static_cast<RequestParser*>(hp->data);
    p->head_bytes = 0;
    return 0;
}

int req_url(llhttp_t* hp, const char* at, size_t len) {
    RequestParser* p = static_cast<RequestParser*>(hp->data);
    if (p->path_len + len >= sizeof p->path) {
        p->error = HttpParse::head_too_large;
        return -1;
    }
    memcpy(p->path + p->path_len, at, len);
    p->path_len = static_cast<uint16_t>(p->path_len + len);
    p->path[p->path_len] = '\0';
    return 0;
}

// RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
// "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA.
bool is_tchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

// A header name that is not a token ("X A", a control byte) is refused whatever llhttp's
// build lets through.
int req_field(llhttp_t* hp, const char* at, size_t len) {
    RequestParser* p = static_cast<RequestParser*>(hp->data);
    for (size_t i = 0; i < len; i++) {
        if (!is_tchar(static_cast<unsigned char>(at[i]))) {
            p->error = HttpParse::bad_request;
            p->error_reason = "header name is not a token";
            return -1;
        }
    }
    return field_cb<RequestParser>(hp, at, len);
}

// A value is one line. llhttp hands an obsolete line folding ("X: a\r\n b") over as a second
// piece of the same value; a piece is only a continuation when the first one ended with a
// buffer and this one starts the next. Folding is refused, as RFC 9112 5.2 allows a server to.
int req_value(llhttp_t* hp, const char* at, size_t len) {
    RequestParser* p = static_cast<RequestParser*>(hp->data);
    bool continues = p->value_at_buffer_end && at == p->feed_start;
    if ((p->value_open && !continues) || memchr(at, '\r', len) != nullptr || memchr(at, '\n', len) != nullptr) {
        p->error = HttpParse::bad_request;
        p->error_reason = "header value folded over lines";
        return -1;
    }
    p->value_open = true;
    p->value_at_buffer_end = at + len == p->feed_end;
    if (p->forward.active) p->forward.value(at, len);
    return value_cb<RequestParser>(hp, at, len);
}

int req_value_complete(llhttp_t* hp) {
    RequestParser* p = static_cast<RequestParser*>(hp->data);
    p->value_open = false;
    p->value_at_buffer_end = false;
    if (p->forward.active) p->forward.end();
    return value_complete_cb<RequestParser>(hp);
}

// Chunk data must be followed by CRLF. The bytes after the data are checked here (and at the
// start of the next feed() when they are not in this buffer), whatever llhttp's build skips.
bool chunk_crlf_ok(RequestParser* p, const char* from) {
    static const char crlf[] = "\r\n";
    while (p->chunk_crlf_left > 0 && from < p->feed_end) {
        if (*from != crlf[2 - p->chunk_crlf_left]) return false;
        from++;
        p->chunk_crlf_left--;
    }
    return true;
}

int req_field_complete(llhttp_t* hp) {
    RequestParser* p = static_cast<RequestParser*>(hp->data);
    if (!p->field_truncated && client_header_forwarded(p->field, p->field_len)) {
        p->forward.begin(p->field, p->field_len);
    }
    if (field_named(p, "authorization")) {
        if (p->authorization.present) {
            p->error = HttpParse::bad_request;
            p->error_reason = "duplicate Authorization header";
            return -1;
        }
        p->current = start_value(&p->authorization);
    } else if (field_named(p, "content-type")) {
        p->current = start_value(&p->content_type);
    } else if (field_named(p, "expect")) {
        p->current = start_value(&p->expect);
    } else if (field_named(p, "origin")) {
        p->current = start_value(&p->origin);
    } else if (field_named(p, "access-control-request-private-network")) {
        p->current = start_value(&p->acr_private_network);
    } else if (field_named(p, "x-request-id")) {
        p->current = start_value(&p->request_id);
    } else {
        p->current = nullptr;
    }
    return 0;
}

int req_headers_complete(llhttp_t* hp) {
    RequestParser* p = static_cast<RequestParser*>(hp->data);
    copy_str(p->method, sizeof p->method, llhttp_method_name(static_cast<llhttp_method_t>(hp->method)));
    p->keep_alive = llhttp_should_keep_alive(hp) != 0;
    p->http10 = hp->http_major == 1 && hp->http_minor == 0;
    p->in_body = true;
    if ((hp->flags & F_CONTENT_LENGTH) && hp->content_length > p->body_cap) {
        p->error = HttpParse::body_too_large;
        return -1;
    }
    p->wants_continue = header_equals(p->expect, "100-continue") && hp->http_minor >= 1 &&
                        ((hp->flags & F_CHUNKED) || ((hp->flags & F_CONTENT_LENGTH) && hp->content_length > 0));
    return 0;
}

int req_body(llhttp_t* hp, const char* at, size_t len) {
    RequestParser* p = static_cast<RequestParser*>(hp->data);
    if (len > p->body_cap - p->body_len) {
        p->error = HttpParse::body_too_large;
        return -1;
    }
    memcpy(p->body + p->body_len, at, len);
    p->body_len += len;
    if ((hp->flags & F_CHUNKED) && hp->content_length == 0) {  // this chunk's data ends here
        p->chunk_crlf_left = 2;
        if (!chunk_crlf_ok(p, at + len)) {
            p->error = HttpParse::bad_request;
            p->error_reason = "chunk data not followed by CRLF";
            return -1;
        }
    }
    return 0;
}

int req_message_complete(llhttp_t* hp) {
    RequestParser* p = static_cast<RequestParser*>(hp->data);
    p->done = true;
    return HPE_PAUSED;  // one message at a time; the rest stays unconsumed
}

// --- response side ------------------------------------------------------------------------

bool relayed_header(const char* field, size_t len, bool truncated) {
    if (truncated) return false;
    return (len == 12 && strncasecmp(field, "x-request-id", 12) == 0) ||
           (len >= 7 && strncasecmp(field, "openai-", 7) == 0) || (len >= 12 && strncasecmp(field, "x-ratelimit-", 12) == 0);
}

int resp_value(llhttp_t* hp, const char* at, size_t len) {
    ResponseParser* p = static_cast<ResponseParser*>(hp->data);
    // A value must not smuggle a line break into our head (llhttp rejects them; be sure).
    if (p->passthrough.active) p->passthrough.value(at, len);
    return value_cb<ResponseParser>(hp, at, len);
}

int resp_value_complete(llhttp_t* hp) {
    ResponseParser* p = static_cast<ResponseParser*>(hp->data);
    if (p->passthrough.active) p->passthrough.end();
    return value_complete_cb<ResponseParser>(hp);
}

int resp_field_complete(llhttp_t* hp) {
    ResponseParser* p = static_cast<ResponseParser*>(hp->data);
    if (!p->head_done && relayed_header(p->field, p->field_len, p->field_truncated)) {
        // edgeway's answer carries the request's own x-request-id (the one in its logs);
        // the upstream's is relayed beside it under another name.
        if (field_named(p, "x-request-id"))
            p->passthrough.begin("x-upstream-request-id", 21);
        else
            p->passthrough.begin(p->field, p->field_len);
    }
    if (field_named(p, "content-type"))
        p->current = start_value(&p->content_type);
    else if (field_named(p, "retry-after"))
        p->current = start_value(&p->retry_after);
    else if (field_named(p, "retry-after-ms"))
        p->current = start_value(&p->retry_after_ms);
    else if (field_named(p, "date"))
        p->current = start_value(&p->date);
    else
        p->current = nullptr;
    return 0;
}

int resp_headers_complete(llhttp_t* hp) {
    ResponseParser* p = static_cast<ResponseParser*>(hp->data);
    p->status = hp->status_code;
    if (p->status == 101) {
        p->error_reason = "unexpected 101 Switching Protocols";
        return -1;
    }
    if (p->status >= 100 && p->status < 200) {
        // 100 Continue, 103 Early Hints, ...: not the answer. Skipped whole; the final
        // response follows on the same connection.
        p->informational = true;
        return 0;
    }
    p->keep_alive = llhttp_should_keep_alive(hp) != 0;
    p->head_done = true;
    if (p->sink) p->sink->on_response_head();
    return p->head_request ? 1 : 0;
}

int resp_body(llhttp_t* hp, const char* at, size_t len) {
    ResponseParser* p = static_cast<ResponseParser*>(hp->data);
    if (p->sink) p->sink->on_response_body(at, len);
    return 0;
}

int resp_message_complete(llhttp_t* hp) {
    ResponseParser* p = static_cast<ResponseParser*>(hp->data);
    if (p->informational) {
        p->informational = false;
        p->informational_seen++;
        if (p->informational_seen > 8) {
            p->error_reason = "too many 1xx responses";
            return -1;
        }
        p->reset_head();
        return 0;
    }
    p->keep_alive = llhttp_should_keep_alive(hp) != 0;
    p->done = true;
    return HPE_PAUSED;
}

// Counts head bytes until the headers are complete; true when over the cap.
bool head_over_cap(size_t* head_bytes, bool head_done, size_t len) {
    if (head_done) return false;
    *head_bytes += len;
    return *head_bytes > EW_CAP_HEAD_BYTES;
}

// Every lenient mode of llhttp off (they are off after llhttp_init; a system library of
// another version must not differ). The 9.x ones exist only there.
void strict_http(llhttp_t* hp) {
    llhttp_set_lenient_headers(hp, 0);
    llhttp_set_lenient_chunked_length(hp, 0);
    llhttp_set_lenient_keep_alive(hp, 0);
    llhttp_set_lenient_transfer_encoding(hp, 0);
#if defined(LLHTTP_VERSION_MAJOR) && LLHTTP_VERSION_MAJOR >= 9
    llhttp_set_lenient_version(hp, 0);
    llhttp_set_lenient_data_after_close(hp, 0);
    llhttp_set_lenient_optional_lf_after_cr(hp, 0);
    llhttp_set_lenient_optional_cr_before_lf(hp, 0);
    llhttp_set_lenient_optional_crlf_after_chunk(hp, 0);
    llhttp_set_lenient_spaces_after_chunk_size(hp, 0);
#endif
}

}  // namespace

// ---- RequestParser -------------------------------------------------------------------------

void RequestParser::init(char* body_storage, size_t body_limit) {
    body = body_storage;
    body_cap = body_limit;
    llhttp_settings_init(&settings);
    settings.on_message_begin = req_message_begin;
    settings.on_url = req_url;
    settings.on_header_field = req_field;
    settings.on_header_field_complete = req_field_complete;
    settings.on_header_value = req_value;
    settings.on_header_value_complete = req_value_complete;
    settings.on_headers_complete = req_headers_complete;
    settings.on_body = req_body;
    settings.on_message_complete = req_message_complete;
    llhttp_init(&parser, HTTP_REQUEST, &settings);
    strict_http(&parser);
    parser.data = this;
    reset();
}

void RequestParser::reset() {
    method[0] = '\0';
    path[0] = '\0';
    path_len = 0;
    authorization.clear();
    content_type.clear();
    expect.clear();
    origin.clear();
    acr_private_network.clear();
    forward.clear();
    http10 = false;
    request_id.clear();
    wants_continue = false;
    body_len = 0;
    keep_alive = true;
    done = false;
    error = HttpParse::need_more;
    error_reason = "";
    head_bytes = 0;
    in_body = false;
    field[0] = '\0';
    field_len = 0;
    field_truncated = false;
    current = nullptr;
    chunk_crlf_left = 0;
    value_open = false;
    value_at_buffer_end = false;
    if (llhttp_get_errno(&parser) == HPE_PAUSED) llhttp_resume(&parser);
}

HttpParse RequestParser::feed(const char* data, size_t len, size_t* used) {
    *used = 0;
    if (done) return HttpParse::complete;
    // Bound the head: only bytes before the body count.
    if (!in_body && head_bytes + len > EW_CAP_HEAD_BYTES) {
        // Parse what fits; if the head is still open past the cap, refuse.
        size_t fits = EW_CAP_HEAD_BYTES - head_bytes;
        size_t used_part = 0;
        HttpParse r = feed(data, fits, &used_part);
        *used = used_part;
        if (r != HttpParse::need_more || in_body) {
            if (r == HttpParse::need_more && used_part < len) {
                size_t more = 0;
                r = feed(data + used_part, len - used_part, &more);
                *used += more;
            }
            return r;
        }
        error = HttpParse::head_too_large;
        return error;
    }
    feed_start = data;
    feed_end = data + len;
    if (chunk_crlf_left > 0 && !chunk_crlf_ok(this, data)) {  // the CRLF after a chunk, split off
        error = HttpParse::bad_request;
        error_reason = "chunk data not followed by CRLF";
        return error;
    }
    llhttp_errno_t e = llhttp_execute(&parser, data, len);
    if (!in_body) head_bytes += len;
    if (e == HPE_OK) {
        *used = len;
        return HttpParse::need_more;
    }
    if (e == HPE_PAUSED && done) {
        *used = static_cast<size_t>(llhttp_get_error_pos(&parser) - data);
        return HttpParse::complete;
    }
    if (error == HttpParse::need_more) {
        error = HttpParse::bad_request;
        error_reason = llhttp_get_error_reason(&parser);
    }
    return error;
}

// ---- ResponseParser ------------------------------------------------------------------------

void ResponseParser::init(ResponseSink* s) {
    sink = s;
    llhttp_settings_init(&settings);
    settings.on_header_field = field_cb<ResponseParser>;
    settings.on_header_field_complete = resp_field_complete;
    settings.on_header_value = resp_value;
    settings.on_header_value_complete = resp_value_complete;
    settings.on_headers_complete = resp_headers_complete;
    settings.on_body = resp_body;
    settings.on_message_complete = resp_message_complete;
    llhttp_init(&parser, HTTP_RESPONSE, &settings);
    parser.data = this;
    reset();
}

void ResponseParser::reset() {
    llhttp_reset(&parser);
    informational_seen = 0;
    reset_head();
    keep_alive = false;
    head_done = false;
    done = false;
    error_reason = "";
}

void ResponseParser::reset_head() {
    status = 0;
    informational = false;
    content_type.clear();
    retry_after.clear();
    retry_after_ms.clear();
    date.clear();
    passthrough.clear();
    head_bytes = 0;
    field[0] = '\0';
    field_len = 0;
    field_truncated = false;
    current = nullptr;
}

HttpParse ResponseParser::feed(const char* data, size_t len, size_t* used) {
    *used = 0;
    if (done) return HttpParse::complete;
    if (head_over_cap(&head_bytes, head_done, len) && !head_done) {
        // The head may still end inside this chunk; let llhttp tell, then check.
        llhttp_errno_t e0 = llhttp_execute(&parser, data, len);
        if (!head_done) {
            error_reason = "response head too large";
            return HttpParse::head_too_large;
        }
        if (e0 == HPE_OK) {
            *used = len;
            return HttpParse::need_more;
        }
        if (e0 == HPE_PAUSED && done) {
            *used = static_cast<size_t>(llhttp_get_error_pos(&parser) - data);
            return HttpParse::complete;
        }
        error_reason = llhttp_get_error_reason(&parser);
        return HttpParse::bad_request;
    }
    llhttp_errno_t e = llhttp_execute(&parser, data, len);
    if (e == HPE_OK) {
        *used = len;
        return HttpParse::need_more;
    }
    if (e == HPE_PAUSED && done) {
        *used = static_cast<size_t>(llhttp_get_error_pos(&parser) - data);
        return HttpParse::complete;
    }
    error_reason = llhttp_get_error_reason(&parser);
    if (error_reason == nullptr) error_reason = "malformed response";
    return HttpParse::bad_request;
}

HttpParse ResponseParser::finish() {
    if (done) return HttpParse::complete;
    llhttp_errno_t e = llhttp_finish(&parser);
    if (e == HPE_OK && done) return HttpParse::complete;
    if (e == HPE_OK && head_done && !done) {
        // llhttp_finish completes read-until-close bodies via on_message_complete.
        return done ? HttpParse::complete : HttpParse::bad_request;
    }
    error_reason = head_done ? "connection closed in the middle of the body" : "connection closed before a response";
    return HttpParse::bad_request;
}

bool header_equals(const HeaderValue& h, const char* s) {
    return h.present && strcasecmp(h.text, s) == 0;
}

bool header_starts_with(const HeaderValue& h, const char* prefix) {
    return h.present && strncasecmp(h.text, prefix, strlen(prefix)) == 0;
}

}  // namespace ew

#include "core/retry.h"

namespace ew {

bool response_retry_after_ms(const ResponseParser& r, uint64_t* out_ms) {
    if (r.retry_after_ms.present && parse_retry_after_ms(r.retry_after_ms.text, r.retry_after_ms.len, out_ms))
        return true;
    return r.retry_after.present && parse_retry_after(r.retry_after.text, r.retry_after.len,
                                                      r.date.present ? r.date.text : nullptr, r.date.len, out_ms);
}

}  // namespace ew
