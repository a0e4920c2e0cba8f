// A scanner for multipart/form-data request bodies (RFC 7578), the one other body shape
// edgeway forwards (/v1/audio/transcriptions, /v1/audio/translations): it checks the
// framing and finds a text field (the "model") by name, so that the exchange can rewrite
// that field per attempt as three segments around it, never copying the audio.
// Pure: no allocation, no OS; linear in the body (each byte is compared against the
// delimiter at most once per candidate position). Hostile input is refused, not repaired.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace ew {

enum class MultipartStatus : uint8_t {
    ok,
    no_boundary,        // the Content-Type is not multipart/form-data with a usable boundary
    bad_framing,        // no opening delimiter, a part without its header end, no closing delimiter
    bad_part_header,    // a part header line that is not printable, or too long
    too_many_parts,     // more than EW_MULTIPART_MAX_PARTS
};
const char* to_string(MultipartStatus s);

#ifndef EW_MULTIPART_MAX_PARTS
#define EW_MULTIPART_MAX_PARTS 64
#endif

// The boundary of a Content-Type value such as `multipart/form-data; boundary=----abc`
// (optionally quoted). 1..70 bytes of the RFC 2046 alphabet. False when absent or invalid.
bool multipart_boundary(const char* content_type, size_t n, const char** boundary, size_t* boundary_len);

// A field's value: body[begin, end).
struct MultipartSpan {
    size_t begin = 0;
    size_t end = 0;
    size_t size() const { return end - begin; }
};

// Checks the whole body and finds the parts whose Content-Disposition is form-data with
// name="<field>" (exact, case-sensitive). *count is how many such parts there are; *span
// is the first one's value. Only the first EW_MULTIPART_MAX_PARTS parts are allowed.
MultipartStatus multipart_find_field(const char* body, size_t n, const char* boundary, size_t boundary_len,
                                     const char* field, MultipartSpan* span, int* count);

}  // namespace ew
