// OpenAI-shaped bodies edgeway writes itself (errors, probes, the /v1/models listing)
// and the few facts it reads from upstream JSON (error chunks, usage). Pure, no heap.
// All writers append to a caller's StrBuf; check out->overflow afterwards.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "core/sse.h"
#include "core/strbuf.h"

namespace ew {

// OpenAI error `type` for an HTTP status: 400/413/422 and other 4xx invalid_request_error,
// 401 authentication_error, 403 permission_error, 404 not_found_error, 409 conflict_error,
// 429 rate_limit_error, anything else (5xx) server_error.
const char* openai_error_type(int http_status);

// {"error":{"message":"...","type":"...","param":null,"code":"..."}}; a nullptr param or
// code is written as null. Strings are JSON-escaped.
void openai_error_body(StrBuf* out, const char* message, const char* type, const char* param, const char* code);

// The event that ends a committed stream after an upstream failure:
// data: {"error":{"message":"...","type":"server_error","param":null,"code":"<code>"}}\n\n
void openai_stream_error_event(StrBuf* out, const char* message, const char* code = "upstream_stream_error");

// The same for a Responses-API stream (/v1/responses), in that API's own shape:
// event: error
// data: {"type":"error","code":"<code>","message":"...","param":null}\n\n
void openai_responses_error_event(StrBuf* out, const char* message, const char* code = "upstream_stream_error");

// A Responses-API stream's last event (response.completed / .incomplete / .failed): that
// API sends no [DONE].
bool openai_event_ends_response(const SseEvent& ev);
// A streamed transcription's last event: data whose "type" is "transcript.text.done".
bool openai_event_ends_transcript(const SseEvent& ev);

// The chat probe: {"model":"<m>","messages":[{"role":"user","content":"ping"}],"max_tokens":1}
void openai_chat_probe_body(StrBuf* out, const char* model);

// GET /v1/models: {"object":"list","data":[{"id":"m","object":"model","created":0,
// "owned_by":"edgeway"},...]}. Duplicate and empty names are listed once / skipped.
void openai_models_body(StrBuf* out, const char* const* models, size_t count);

// True when an upstream SSE event reports an error instead of a chunk: `event: error`,
// or data that is a JSON object with a non-null top-level "error" member.
bool openai_event_is_error(const SseEvent& ev);

struct OpenAIUsage {
    uint64_t prompt_tokens = 0;
    uint64_t completion_tokens = 0;
    uint64_t total_tokens = 0;
};

// Reads the top-level "usage" object of a response body or a streaming chunk
// (the last chunk with stream_options.include_usage). False when absent, null or invalid;
// missing counters read as 0.
bool openai_find_usage(const char* json, size_t n, OpenAIUsage* out);

}  // namespace ew
