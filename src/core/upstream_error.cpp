// Reading an upstream error body for its meaning. See upstream_error.h.
#include "core/upstream_error.h"

#include "core/json_scan.h"

namespace ew {
namespace {

// The one code a status can carry that means something here.
const char* code_for(uint16_t status) {
    switch (status) {
        case 429: return "insufficient_quota";
        case 400: return "context_length_exceeded";
        case 404: return "model_not_found";
        default: return nullptr;
    }
}

ErrorMeaning meaning_for(uint16_t status) {
    switch (status) {
        case 429: return ErrorMeaning::insufficient_quota;
        case 400: return ErrorMeaning::context_length_exceeded;
        case 404: return ErrorMeaning::model_not_found;
        default: return ErrorMeaning::none;
    }
}

// `key` of the object `obj` (the whole document when top) is the string `want`.
bool member_is(const char* body, size_t len, bool top, JsonSpan obj, const char* key, const char* want) {
    JsonSpan v;
    int n = top ? json_find_key(body, len, key, &v) : json_find_member(body, obj, key, &v);
    return n >= 1 && json_span_string_equals(body, v, want);
}

}  // namespace

const char* to_string(ErrorMeaning m) {
    switch (m) {
        case ErrorMeaning::none: return "none";
        case ErrorMeaning::insufficient_quota: return "insufficient_quota";
        case ErrorMeaning::context_length_exceeded: return "context_length_exceeded";
        case ErrorMeaning::model_not_found: return "model_not_found";
    }
    return "?";
}

bool error_body_wanted(uint16_t status) { return code_for(status) != nullptr; }

ErrorMeaning upstream_error_meaning(uint16_t status, const char* body, size_t len) {
    const char* want = code_for(status);
    if (!want || !body) return ErrorMeaning::none;
    JsonSpan err;
    int n = json_find_key(body, len, "error", &err);  // -1: not one valid JSON object
    if (n < 0) return ErrorMeaning::none;
    bool top = !(n >= 1 && json_span_type(body, err) == JsonType::object);
    // A code names the case; a type is read only when there is no string code (OpenAI sends
    // insufficient_quota as both; some compatible servers send only the type).
    JsonSpan code;
    int c = top ? json_find_key(body, len, "code", &code) : json_find_member(body, err, "code", &code);
    if (c >= 1 && json_span_type(body, code) == JsonType::string)
        return json_span_string_equals(body, code, want) ? meaning_for(status) : ErrorMeaning::none;
    return member_is(body, len, top, err, "type", want) ? meaning_for(status) : ErrorMeaning::none;
}

}  // namespace ew
