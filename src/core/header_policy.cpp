#include "core/header_policy.h"

#include <string.h>

#include "core/config.h"

namespace ew {
namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

bool eq_ci(const char* s, size_t n, const char* lit) {
    if (strlen(lit) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (lower(s[i]) != lit[i]) return false;
    return true;
}

const char* const kForwarded[] = {"openai-organization", "openai-project", "openai-beta", "idempotency-key",
                                  "x-request-id"};

const char* const kReserved[] = {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "te",
                                 "trailer", "upgrade", "expect", "proxy-authorization", "proxy-connection",
                                 "content-type", "accept", "user-agent", "authorization", "api-key", "x-api-key",
                                 "cookie"};

// Response headers a page may read: edgeway's own, request ids and the retry hints the SDKs use.
const char kExpose[] =
    "x-edgeway-endpoint, x-edgeway-model, x-edgeway-attempts, x-request-id, retry-after, retry-after-ms, "
    "x-should-retry, openai-processing-ms";

}  // namespace

const char* to_string(AuthHeader a) {
    switch (a) {
        case AuthHeader::bearer: return "bearer";
        case AuthHeader::api_key: return "api-key";
        case AuthHeader::x_api_key: return "x-api-key";
        case AuthHeader::none: return "none";
    }
    return "?";
}

bool client_header_forwarded(const char* name, size_t n) {
    for (const char* f : kForwarded)
        if (eq_ci(name, n, f)) return true;
    return false;
}

bool header_name_ok(const char* name, size_t n) {
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!alnum && strchr("!#$%&'*+-.^_`|~", c) == nullptr) return false;
        if (c == '\0') return false;
    }
    return true;
}

bool header_value_ok(const char* value, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = static_cast<unsigned char>(value[i]);
        if ((c < 0x20 && c != '\t') || c > 0x7e) return false;
    }
    return true;
}

bool header_name_reserved(const char* name, size_t n) {
    for (const char* r : kReserved)
        if (eq_ci(name, n, r)) return true;
    return n >= 6 && eq_ci(name, 6, "proxy-");
}

void append_auth_header(StrBuf* out, AuthHeader how, const char* key) {
    if (key == nullptr || key[0] == '\0') return;
    switch (how) {
        case AuthHeader::bearer: out->appendf("Authorization: Bearer %s\r\n", key); break;
        case AuthHeader::api_key: out->appendf("api-key: %s\r\n", key); break;
        case AuthHeader::x_api_key: out->appendf("x-api-key: %s\r\n", key); break;
        case AuthHeader::none: break;
    }
}

bool cors_origin_ok(const char* o, size_t n) {
    size_t i;
    if (n > 8 && memcmp(o, "https://", 8) == 0)
        i = 8;
    else if (n > 7 && memcmp(o, "http://", 7) == 0)
        i = 7;
    else
        return false;
    size_t host = i;
    bool bracket = i < n && o[i] == '[';
    if (bracket) i++;
    for (; i < n; i++) {
        char c = o[i];
        if (bracket) {
            if (c == ']') {
                i++;
                break;
            }
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == ':' || c == '.')) return false;
            continue;
        }
        if (c == ':') break;
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-' || c == '.')) return false;
    }
    if (i == host || (bracket && (i < host + 3 || o[i - 1] != ']'))) return false;
    if (i == n) return true;
    if (o[i] != ':' || i + 1 == n || n - i - 1 > 5) return false;
    for (size_t k = i + 1; k < n; k++)
        if (o[k] < '0' || o[k] > '9') return false;
    return true;
}

bool cors_allows(const AgentConfig& a, const char* origin, size_t n) {
    if (a.cors_any) return true;
    for (uint32_t i = 0; i < a.cors_origin_count; i++)
        if (strlen(a.cors_origins[i]) == n && memcmp(a.cors_origins[i], origin, n) == 0) return true;
    return false;
}

void cors_answer_headers(StrBuf* out, const AgentConfig& a, const char* origin, size_t n) {
    if (a.cors_any) {
        out->append("Access-Control-Allow-Origin: *\r\n");
    } else {
        out->append("Access-Control-Allow-Origin: ");
        out->append(origin, n);
        out->append("\r\nVary: Origin\r\n");
    }
    out->appendf("Access-Control-Expose-Headers: %s\r\n", kExpose);
}

void cors_preflight_headers(StrBuf* out, bool private_network) {
    // Authorization must be named (a `*` does not cover it); `*` takes the SDKs' own headers
    // (x-stainless-*, ...) without a list that goes stale. Requests carry no cookies.
    out->append("Access-Control-Allow-Methods: GET, POST, HEAD, OPTIONS\r\n"
                "Access-Control-Allow-Headers: Authorization, Content-Type, Accept, OpenAI-Organization, "
                "OpenAI-Project, OpenAI-Beta, Idempotency-Key, X-Request-Id, *\r\n"
                "Access-Control-Max-Age: 600\r\n");
    if (private_network) out->append("Access-Control-Allow-Private-Network: true\r\n");
}

}  // namespace ew
