// Strict JSON (RFC 8259) validation and top-level scanning over a caller's bytes.
// Pure: no allocation, no recursion (nesting is tracked in a fixed bit stack), no cJSON,
// so it runs on the Cortex-M core too. Offsets are byte offsets into the caller's text.
//
// Strict means: UTF-8 is validated (no overlongs, no encoded surrogates, <= U+10FFFF),
// control characters < 0x20 are rejected inside strings, \u escapes must pair surrogates
// correctly, numbers follow the RFC grammar, only whitespace may follow the value,
// and nesting deeper than EW_CAP_JSON_DEPTH is rejected. A byte-order mark is rejected.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "core/caps.h"

namespace ew {

enum class JsonStatus : uint8_t {
    ok,
    empty,       // nothing but whitespace
    syntax,      // unexpected character / truncated document
    bad_string,  // control character, bad escape, lone surrogate
    bad_utf8,    // invalid UTF-8 sequence
    bad_number,  // number outside the RFC grammar
    too_deep,    // nesting deeper than EW_CAP_JSON_DEPTH
    trailing,    // something other than whitespace after the value
};

struct JsonError {
    size_t offset = 0;         // byte offset of the problem
    const char* message = "";  // static text, e.g. "invalid escape in string"
};

// A value's bytes: [begin, end) offsets into the text. A string value's span includes
// its quotes; an object's includes the braces.
struct JsonSpan {
    size_t begin = 0;
    size_t end = 0;
    size_t size() const { return end - begin; }
};

enum class JsonType : uint8_t { invalid, object, array, string, number, boolean, null };

// Whole-document validation. err may be nullptr.
JsonStatus json_validate(const char* p, size_t n, JsonError* err);
const char* to_string(JsonStatus s);

// Looks up `key` among the members of the top-level object (keys are compared after
// unescaping, so "mod\u0065l" is "model"). Returns the number of members with that key
// (so callers can reject a duplicated "model") and the span of the FIRST one's value in
// *value_span (may be nullptr). Returns -1 when the text is not one valid JSON object.
int json_find_key(const char* p, size_t n, const char* key, JsonSpan* value_span);

// Same, inside an object value already found (span from a previous lookup on valid text).
int json_find_member(const char* p, JsonSpan object, const char* key, JsonSpan* value_span);

// Several keys in one pass: for each keys[k], the number of top-level members with that
// name in counts[k] and the first one's value in spans[k] (unset when the count is 0).
// False when the text is not one valid JSON object (counts are then meaningless).
bool json_find_keys(const char* p, size_t n, const char* const* keys, size_t nkeys, int* counts, JsonSpan* spans);
// Same, inside an object value already found (a span from a lookup on valid text).
bool json_find_members(const char* p, JsonSpan object, const char* const* keys, size_t nkeys, int* counts,
                       JsonSpan* spans);

// Follows nested object keys from the top level, e.g. {"usage","prompt_tokens"}; the
// first occurrence of each key is used. True and *out when the final value is a
// non-negative integer (no fraction or exponent) that fits in uint64_t.
bool json_find_path_uint(const char* p, size_t n, const char* const* path, size_t depth, uint64_t* out);

// Span helpers: the span must come from one of the lookups above (valid JSON).
JsonType json_span_type(const char* p, JsonSpan s);
// Decodes a string value into out (NUL-terminated, UTF-8). False if s is not a string,
// the result does not fit in cap (incl. NUL), or it contains U+0000.
bool json_span_string(const char* p, JsonSpan s, char* out, size_t cap, size_t* out_len = nullptr);
// True when s is a string whose decoded value equals the NUL-terminated `text`.
bool json_span_string_equals(const char* p, JsonSpan s, const char* text);
bool json_span_bool(const char* p, JsonSpan s, bool* out);
bool json_span_uint(const char* p, JsonSpan s, uint64_t* out);

// Writes `s` (n bytes of UTF-8) as a quoted, escaped JSON string literal into out
// (NUL-terminated). False when it does not fit. *out_len gets the literal's length.
bool json_string_literal(const char* s, size_t n, char* out, size_t cap, size_t* out_len);

// A body as three pieces to send back to back, without copying it:
// body[0, span.begin) + new value + body[span.end, n).
struct BodySegments {
    const char* part[3] = {nullptr, nullptr, nullptr};
    size_t len[3] = {0, 0, 0};
    size_t total() const { return len[0] + len[1] + len[2]; }
};

// Replaces the value at model_span (from json_find_key(..., "model", ...)) with
// new_model_json, an already quoted and escaped literal (see json_string_literal).
// The body must contain a "model" member; inserting one is not supported.
void json_rewrite_model(const char* body, size_t n, JsonSpan model_span, const char* new_model_json,
                        size_t new_len, BodySegments* out);

// Copies the segments into one buffer (for tests and small bodies). False if cap is short.
bool body_segments_copy(const BodySegments& s, char* out, size_t cap, size_t* out_len);

}  // namespace ew
