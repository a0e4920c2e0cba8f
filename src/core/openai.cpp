#include "core/openai.h"

#include <string.h>

#include "core/json_scan.h"

namespace ew {

namespace {

void append_string(StrBuf* out, const char* s) {
    out->append("\"", 1);
    out->append_json_escaped(s ? s : "");
    out->append("\"", 1);
}

void append_string_or_null(StrBuf* out, const char* s) {
    if (s)
        append_string(out, s);
    else
        out->append("null", 4);
}

void error_object(StrBuf* out, const char* message, const char* type, const char* param, const char* code) {
    out->append("{\"error\":{\"message\":");
    append_string(out, message);
    out->append(",\"type\":");
    append_string(out, type);
    out->append(",\"param\":");
    append_string_or_null(out, param);
    out->append(",\"code\":");
    append_string_or_null(out, code);
    out->append("}}");
}

}  // namespace

const char* openai_error_type(int http_status) {
    switch (http_status) {
        case 401: return "authentication_error";
        case 403: return "permission_error";
        case 404: return "not_found_error";
        case 409: return "conflict_error";
        case 429: return "rate_limit_error";
        default: break;
    }
    if (http_status >= 400 && http_status < 500) return "invalid_request_error";
    return "server_error";
}

void openai_error_body(StrBuf* out, const char* message, const char* type, const char* param, const char* code) {
    error_object(out, message, type, param, code);
}

void openai_stream_error_event(StrBuf* out, const char* message, const char* code) {
    out->append("data: ");
    error_object(out, message, "server_error", nullptr, code);
    out->append("\n\n");
}

void openai_responses_error_event(StrBuf* out, const char* message, const char* code) {
    out->append("event: error\ndata: {\"type\":\"error\",\"code\":");
    append_string(out, code);
    out->append(",\"message\":");
    append_string(out, message);
    out->append(",\"param\":null}\n\n");
}

bool openai_event_ends_response(const SseEvent& ev) {
    static const char* const kEnds[] = {"response.completed", "response.incomplete", "response.failed"};
    for (const char* e : kEnds)
        if (ev.event_len == strlen(e) && memcmp(ev.event, e, ev.event_len) == 0) return true;
    return false;
}

bool openai_event_ends_transcript(const SseEvent& ev) {
    JsonSpan t;
    if (json_find_key(ev.data, ev.data_len, "type", &t) != 1) return false;
    static const char kDone[] = "\"transcript.text.done\"";
    return t.size() == sizeof kDone - 1 && memcmp(ev.data + t.begin, kDone, t.size()) == 0;
}

void openai_chat_probe_body(StrBuf* out, const char* model) {
    out->append("{\"model\":");
    append_string(out, model);
    out->append(",\"messages\":[{\"role\":\"user\",\"content\":\"ping\"}],\"max_tokens\":1}");
}

void openai_models_body(StrBuf* out, const char* const* models, size_t count) {
    out->append("{\"object\":\"list\",\"data\":[");
    bool first = true;
    for (size_t i = 0; i < count; i++) {
        const char* m = models[i];
        if (!m || !m[0]) continue;
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++) dup = models[j] && strcmp(models[j], m) == 0;
        if (dup) continue;
        if (!first) out->append(",", 1);
        first = false;
        out->append("{\"id\":");
        append_string(out, m);
        out->append(",\"object\":\"model\",\"created\":0,\"owned_by\":\"edgeway\"}");
    }
    out->append("]}");
}

bool openai_event_is_error(const SseEvent& ev) {
    if (ev.event_len == 5 && memcmp(ev.event, "error", 5) == 0) return true;
    JsonSpan e;
    return json_find_key(ev.data, ev.data_len, "error", &e) > 0 && json_span_type(ev.data, e) != JsonType::null;
}

namespace {
// True when `text` occurs in [p, p + n).
bool contains(const char* p, size_t n, const char* text, size_t len) {
    for (const char* q = p; n >= len;) {
        const void* f = memchr(q, text[0], n - len + 1);
        if (f == nullptr) return false;
        q = static_cast<const char*>(f);
        if (memcmp(q, text, len) == 0) return true;
        n -= static_cast<size_t>(q + 1 - p);
        p = ++q;
    }
    return false;
}
}  // namespace

bool openai_find_usage(const char* json, size_t n, OpenAIUsage* out) {
    // Most streamed chunks carry no usage: a key can only decode to "usage" when the bytes
    // `usage` are there, or a \u escape is (the other escapes make none of its letters).
    // Without either there is nothing to find, valid JSON or not: the scan is skipped.
    if (!contains(json, n, "usage", 5) && !contains(json, n, "\\u", 2)) return false;
    JsonSpan u;
    if (json_find_key(json, n, "usage", &u) <= 0 || json_span_type(json, u) != JsonType::object) return false;
    *out = OpenAIUsage();
    static const char* const kKeys[] = {"prompt_tokens", "completion_tokens", "total_tokens"};
    uint64_t* const dst[] = {&out->prompt_tokens, &out->completion_tokens, &out->total_tokens};
    int counts[3];
    JsonSpan v[3];
    if (!json_find_members(json, u, kKeys, 3, counts, v)) return true;  // one pass for the three
    for (size_t k = 0; k < 3; k++)
        if (counts[k] > 0) json_span_uint(json, v[k], dst[k]);
    return true;
}

}  // namespace ew
