// What crosses edgeway in request headers, and who may call it from a browser.
//  - From the client, only the OpenAI headers that change a request's meaning go upstream
//    (OpenAI-Organization, OpenAI-Project, OpenAI-Beta, Idempotency-Key, X-Request-Id);
//    never its Authorization or Cookie, nothing else.
//  - Per endpoint, fixed extra headers (`headers = Name: value; ...`) and where the key
//    goes (`auth_header = bearer | api-key | x-api-key | none`).
//  - CORS: `[agent] cors_origins`, exact origins (or `*` without a local token).
// Pure: no allocation, no OS.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/strbuf.h"

namespace ew {

struct AgentConfig;

enum class AuthHeader : uint8_t { bearer, api_key, x_api_key, none };
const char* to_string(AuthHeader a);  // the config spelling

// A client request header that is forwarded upstream (ASCII case-insensitive name).
bool client_header_forwarded(const char* name, size_t n);
// An RFC 9110 token: a header name.
bool header_name_ok(const char* name, size_t n);
// A value that may go into a head: printable ASCII and tabs, no CR, LF or other control byte.
bool header_value_ok(const char* value, size_t n);
// A name `headers =` may not set: framing, the ones edgeway writes itself, and credentials
// (keys come from api_key_env / api_key_file / api_key_credential only).
bool header_name_reserved(const char* name, size_t n);

// The key's header line, "Name: value\r\n" (nothing for none or an empty key).
void append_auth_header(StrBuf* out, AuthHeader how, const char* key);

// An origin as a browser sends it: http:// or https://, a host, an optional :port, nothing
// after (no path, no trailing slash), lower-case.
bool cors_origin_ok(const char* origin, size_t n);
// Is this request's Origin allowed by the configuration? (false when CORS is off)
bool cors_allows(const AgentConfig& a, const char* origin, size_t n);

// The headers every answer to an allowed origin carries (Access-Control-Allow-Origin,
// Access-Control-Expose-Headers, Vary), and the preflight's (methods, headers, max-age,
// and Private Network Access when asked).
void cors_answer_headers(StrBuf* out, const AgentConfig& a, const char* origin, size_t n);
void cors_preflight_headers(StrBuf* out, bool private_network);

}  // namespace ew
