// The seam between a local client connection and the exchange that answers it: the
// request as the exchange sees it, and the few ways it may write the answer. ClientConn
// implements ClientWriter; the exchange tests implement it over a string.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace ew {

// One complete local request, valid until the exchange ends.
struct RequestView {
    const char* method = "";
    const char* path = "";  // as sent, e.g. "/v1/chat/completions"
    size_t path_len = 0;
    const char* body = "";
    size_t body_len = 0;
    const char* content_type = "";  // as sent ("" when none); printable (llhttp refuses line breaks)
    size_t content_type_len = 0;
    const char* forward_headers = "";  // "Name: value\r\n"... for upstream (header_policy.h)
    size_t forward_len = 0;
    const char* request_id = "";  // the client's X-Request-Id, unvalidated; "" when none or too long
};

// How an answer ends.
enum class AnswerEnd : uint8_t {
    complete,    // framed to its end: the connection may serve the next request
    unfinished,  // a body cut on purpose (a broken stream): close after flushing
};

class ClientWriter {
public:
    // A whole answer with a Content-Length body. `extra_headers` is "Name: value\r\n"... or "".
    virtual void respond(uint16_t status, const char* content_type, const char* body, size_t len,
                         const char* extra_headers) = 0;
    // A head with no body and no body framing (204, 304).
    virtual void respond_bodiless(uint16_t status, const char* extra_headers) = 0;

    // Before commit, a stream's first bytes are staged in the client's own buffer, so that
    // they go out exactly as the upstream sent them. False when they do not fit.
    virtual bool stage(const char* data, size_t len) = 0;
    virtual void drop_staged() = 0;
    // Commit: the head of a chunked answer, then what was staged as its first chunk.
    // False when the head does not fit (nothing was written then).
    virtual bool begin_chunked(uint16_t status, const char* content_type, const char* extra_headers) = 0;
    // One chunk. False (nothing written) when it would not leave the error reserve free,
    // unless `use_reserve`: the last words of a broken stream may use it.
    virtual bool write_chunk(const char* data, size_t len, bool use_reserve) = 0;
    // Payload bytes one write_chunk can take now without touching the reserve.
    virtual size_t chunk_room() const = 0;
    virtual void flush() = 0;
    // The exchange is over: the terminating chunk (complete) or none (unfinished) and,
    // after flushing, keep-alive or close. The exchange must not touch the writer after.
    virtual void end_answer(AnswerEnd how, bool chunked) = 0;

protected:
    ~ClientWriter() = default;
};

}  // namespace ew
