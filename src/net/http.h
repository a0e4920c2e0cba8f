// llhttp wrappers for both directions. Each parser lives in a fixed struct, finds its
// owner through parser.data, keeps only the header values edgeway acts on, and enforces
// size limits (head bytes, body bytes) so a peer can never grow our memory.
#pragma once
#include <llhttp.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/caps.h"

namespace ew {

enum class HttpParse : uint8_t {
    need_more,      // all bytes consumed, message not complete
    complete,       // one whole message parsed (bytes after it are left unconsumed)
    bad_request,    // malformed: 400
    head_too_large, // 431
    body_too_large, // 413
};

// A short header value we keep.
struct HeaderValue {
    char text[160];  // valid when present (no initialiser: parsers live in large tables)
    uint16_t len = 0;
    bool present = false;
    bool truncated = false;
    void clear() {
        text[0] = '\0';
        len = 0;
        present = false;
        truncated = false;
    }
};

// Whole header lines copied from a peer's head, "Name: value\r\n" each, to be written into
// another head (the headers a client may forward upstream, the upstream's request ids and
// rate-limit headers relayed to the client). Bounded: a line that does not fit, or whose
// value carries a control byte or non-ASCII, is dropped whole; the earlier ones stay.
template <size_t N>
struct HeaderLines {
    char text[N];  // NUL-terminated
    uint16_t len = 0;
    uint16_t start = 0;  // where the line being copied began
    bool active = false;
    bool bad = false;
    void clear() {
        text[0] = '\0';
        len = start = 0;
        active = bad = false;
    }
    void begin(const char* name, size_t n) {
        start = len;
        bad = false;
        active = true;
        append(name, n);
        append(": ", 2);
    }
    void value(const char* s, size_t n) {
        for (size_t i = 0; i < n; i++) {
            unsigned char c = static_cast<unsigned char>(s[i]);
            if ((c < 0x20 && c != '\t') || c > 0x7e) bad = true;
        }
        append(s, n);
    }
    void end() {
        append("\r\n", 2);
        if (bad) {
            len = start;
            text[len] = '\0';
        }
        active = bad = false;
    }

private:
    void append(const char* s, size_t n) {
        if (bad) return;
        if (len + n >= N) {
            bad = true;
            return;
        }
        memcpy(text + len, s, n);
        len = static_cast<uint16_t>(len + n);
        text[len] = '\0';
    }
};

// The local side: requests from apps on the device.
struct RequestParser {
    llhttp_t parser;
    llhttp_settings_t settings;
    // Results
    char method[16];  // set by init()/reset(), like every buffer here
    char path[512];
    uint16_t path_len = 0;
    HeaderValue authorization;
    HeaderValue content_type;
    HeaderValue expect;
    HeaderValue origin;                   // CORS
    HeaderValue acr_private_network;      // Access-Control-Request-Private-Network (Chromium PNA)
    // The client headers that go upstream (header_policy: OpenAI-Project, ...), "Name: value\r\n"
    // each, validated; one that does not fit or carries a control byte is dropped whole.
    HeaderLines<EW_CAP_FORWARD_HEADERS> forward;
    bool http10 = false;                  // an HTTP/1.0 request: no chunked answers
    HeaderValue request_id;  // X-Request-Id as sent (validated by the exchange)
    bool wants_continue = false;  // "Expect: 100-continue" with a body to come (curl sends it)
    char* body = nullptr;       // caller-owned storage
    size_t body_cap = 0;        // limit (max_request_bytes)
    size_t body_len = 0;
    bool keep_alive = true;
    bool done = false;
    HttpParse error = HttpParse::need_more;
    const char* error_reason = "";
    // Internal
    size_t head_bytes = 0;
    bool in_body = false;
    char field[48];  // "access-control-request-private-network" fits
    uint8_t field_len = 0;
    bool field_truncated = false;
    HeaderValue* current = nullptr;
    const char* feed_start = nullptr;  // the bytes llhttp_execute is parsing
    const char* feed_end = nullptr;
    bool value_open = false;           // a header value has begun and not ended
    bool value_at_buffer_end = false;  // its last piece ended with the buffer
    uint8_t chunk_crlf_left = 0;     // bytes of the CRLF after chunk data still to check

    void init(char* body_storage, size_t body_limit);
    void reset();  // next message on a keep-alive connection
    // Feeds bytes. *used is how many were consumed (all of them unless complete/error).
    HttpParse feed(const char* data, size_t len, size_t* used);
};

// The upstream side: responses from an OpenAI-compatible service.
struct ResponseSink {
    virtual void on_response_head() = 0;
    virtual void on_response_body(const char* data, size_t len) = 0;

protected:
    ~ResponseSink() = default;
};

struct ResponseParser {
    llhttp_t parser;
    llhttp_settings_t settings;
    ResponseSink* sink = nullptr;
    uint16_t status = 0;
    HeaderValue content_type;
    HeaderValue retry_after;
    HeaderValue retry_after_ms;
    HeaderValue date;
    // Upstream headers relayed to the client as they are: request ids and rate-limit state
    // (x-request-id, openai-*, x-ratelimit-*), "Name: value\r\n" each, bounded.
    HeaderLines<EW_CAP_PASSTHROUGH> passthrough;
    bool keep_alive = false;
    bool head_done = false;
    bool done = false;
    bool head_request = false;  // response to HEAD: no body
    bool informational = false; // a 1xx head is being skipped
    uint8_t informational_seen = 0;
    const char* error_reason = "";
    size_t head_bytes = 0;
    char field[32];
    uint8_t field_len = 0;
    bool field_truncated = false;
    HeaderValue* current = nullptr;

    void init(ResponseSink* s);
    void reset();
    void reset_head();  // the captured head only (after a skipped 1xx)
    // bad_request here means a malformed response; head_too_large when the head is over
    // EW_CAP_HEAD_BYTES.
    HttpParse feed(const char* data, size_t len, size_t* used);
    // The peer closed: completes a read-until-close body, else an error.
    HttpParse finish();
};

bool header_equals(const HeaderValue& h, const char* s);
bool header_starts_with(const HeaderValue& h, const char* prefix);

}  // namespace ew

namespace ew {
// The delay a response asks for: retry-after-ms, else Retry-After (seconds or an HTTP-date
// read against the response's own Date). False when it names none (or garbage).
bool response_retry_after_ms(const ResponseParser& r, uint64_t* out_ms);
}  // namespace ew
