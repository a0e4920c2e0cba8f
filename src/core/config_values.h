// Internal to the INI reader (config.cpp): the diagnostics context and the parsers of
// single values (numbers, enums, listen address, url, model lists, secrets).
// Every parser either stores the value or reports "FILE:LINE: key: message" and returns false.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "core/config.h"

namespace ew {
namespace ini {

// A slice of the INI text; never NUL-terminated.
struct Span {
    const char* p = nullptr;
    size_t n = 0;
};

bool is_blank(char ch);  // space or tab
Span trim(Span s);
bool span_eq(Span s, const char* lit);
bool span_ieq(Span s, const char* lit);  // ASCII case-insensitive
bool starts_with(Span s, const char* lit);

// Where diagnostics go, and the file, line and key label of the line being read.
struct Ctx {
    const char* file = "-";
    const ConfigSources* src = nullptr;
    ConfigDiag* err = nullptr;
    void (*warn)(const char* line, void* user) = nullptr;
    void* warn_user = nullptr;
    void (*error)(const char* line, void* user) = nullptr;  // every error, when set
    void* error_user = nullptr;
    uint32_t errors = 0;
    uint32_t line = 0;
    char key[128] = "";
};

// Writes "FILE:LINE: KEY: message" into c.err (the first error only) and to the error
// callback (every one), counts it and returns false.
bool fail(Ctx& c, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
// Sends "FILE:LINE: KEY: message" to the warning callback.
void warnf(Ctx& c, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// A span made printable for a message: clipped to 64 characters, bytes outside
// printable ASCII shown as '?'. Use `show(x).s` inside one expression.
struct Shown {
    char s[72];
};
Shown show(Span v);

// Numbers: decimal digits with an optional leading '-'. `is_time` keys refuse any '-'.
bool parse_u32(Ctx& c, Span v, uint32_t min, uint32_t max, bool is_time, uint32_t* out);
bool parse_i32(Ctx& c, Span v, int32_t min, int32_t max, int32_t* out);
bool parse_bool(Ctx& c, Span v, bool* out);
// Index of v in names (ASCII case-insensitive).
bool parse_enum(Ctx& c, Span v, const char* const* names, size_t count, uint8_t* out);

bool parse_listen(Ctx& c, Span v, AgentConfig* a);
// "IP[:PORT], [IPV6][:PORT], ..." (port 53 when left out) into a->dns_servers as the
// resolver takes it; empty = the system's resolvers.
bool parse_dns_servers(Ctx& c, Span v, AgentConfig* a);
bool parse_url(Ctx& c, Span v, EndpointConfig* e);
bool is_loopback(const char* host);
bool host_name_ok(Span s);     // a host name as endpoint urls take it
bool ipv6_literal_ok(Span s);  // the bracket contents of an IPv6 literal
bool parse_port_value(Ctx& c, Span v, uint16_t* out);  // 1..65535

// A model id: 1..EW_CAP_MODEL_NAME-1 printable ASCII, no spaces, commas, quotes or backslashes.
bool check_model_name(Ctx& c, Span m);
// "a, b, c" into dst[0..cap): trimmed, no empties, no duplicates.
bool parse_models(Ctx& c, Span v, char (*dst)[EW_CAP_MODEL_NAME], uint32_t cap, uint32_t* count);

bool copy_path(Ctx& c, Span v, char* dst, size_t cap);
// Secrets. Messages never contain the secret itself.
bool set_inline_key(Ctx& c, Span v, char* dst, size_t cap);
bool load_key_env(Ctx& c, Span name, char* dst, size_t cap);
bool load_key_file(Ctx& c, const char* path, char* dst, size_t cap);
// api_key_credential: NAME in $CREDENTIALS_DIRECTORY (systemd LoadCredential=), with the rules of load_key_file.
bool load_key_credential(Ctx& c, Span name, char* dst, size_t cap);

}  // namespace ini
}  // namespace ew
