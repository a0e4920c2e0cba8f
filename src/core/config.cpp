// The INI reader (SPEC section 5): one pass over the text, line by line, into the fixed
// tables of Config, then the checks that need the whole file. No allocation; printf-style
// formatting only where an error or warning is reported.
//
// Format: `[section]` headers, `key = value` lines, comments from ';' or '#' at the start
// of a line or after a blank. Errors and warnings read "FILE:LINE: key: message".
#include "core/config.h"

#include <string.h>

#include "core/config_telemetry.h"
#include "core/config_values.h"
#include "core/strbuf.h"

namespace ew {

namespace {

using ini::Ctx;
using ini::fail;
using ini::show;
using ini::Span;

constexpr uint32_t kMaxMs = 86400000;  // one day: the ceiling of every *_ms key
constexpr int32_t kMaxPriority = 1000000;
constexpr uint32_t kMinDnsTtlMs = 1000;  // a floor below a second would let TTL 0 answers flood the server

const char* const kLogLevels[] = {"error", "warn", "info", "debug"};
const char* const kLogFormats[] = {"text", "json"};
const char* const kStrategies[] = {"priority", "latency", "weighted"};
const char* const kProbeKinds[] = {"models", "chat", "tcp", "tls"};

enum AgentKey { A_LISTEN, A_TOKEN_FILE, A_LOG_LEVEL, A_STRATEGY, A_MAX_CLIENTS, A_MAX_REQUEST_BYTES,
                A_REQUEST_TIMEOUT, A_MAX_ATTEMPTS, A_BACKOFF, A_BACKOFF_MAX, A_FIRST_TOKEN,
                A_CLIENT_HEADER_TIMEOUT, A_CLIENT_WRITE_TIMEOUT, A_DNS_SERVERS, A_DNS_MIN_TTL, A_DNS_MAX_TTL,
                A_CORS_ORIGINS, A_LOG_FORMAT, A_TRIAL_REQUESTS, A_PROBE_BUDGET, A_STATE_FILE,
                A_STATE_WRITE_INTERVAL, A_HEDGE_AFTER, A_HEDGE_BUDGET, A_COUNT };
const char* const kAgentKeys[] = {"listen", "local_token_file", "log_level", "strategy", "max_clients",
                                  "max_request_bytes", "request_timeout_ms", "max_attempts", "retry_backoff_ms",
                                  "retry_backoff_max_ms", "first_token_timeout_ms",
                                  "client_header_timeout_ms", "client_write_timeout_ms", "dns_servers",
                                  "dns_min_ttl_ms", "dns_max_ttl_ms", "cors_origins", "log_format",
                                  "trial_requests", "probe_budget_tokens_per_day", "state_file",
                                  "state_write_interval_ms", "hedge_after_ms", "hedge_budget_pct"};
static_assert(sizeof kAgentKeys / sizeof kAgentKeys[0] == A_COUNT, "agent key table");

enum ProbeKey { P_KIND, P_INTERVAL, P_DOWN_INTERVAL, P_TIMEOUT, P_FALL, P_RISE, P_JITTER, P_COOLDOWN_MAX,
                P_COUNT };
const char* const kProbeKeys[] = {"kind", "interval_ms", "down_interval_ms", "timeout_ms", "fall", "rise",
                                  "jitter_pct", "cooldown_max_ms"};
static_assert(sizeof kProbeKeys / sizeof kProbeKeys[0] == P_COUNT, "probe key table");

enum EndpointKey { E_URL, E_API_KEY, E_API_KEY_ENV, E_API_KEY_FILE, E_API_KEY_CREDENTIAL, E_MODELS, E_PRIORITY,
                   E_TIMEOUT, E_TLS_VERIFY, E_CA_FILE, E_HEADERS, E_AUTH_HEADER, E_COUNT };
const char* const kEndpointKeys[] = {"url", "api_key", "api_key_env", "api_key_file", "api_key_credential",
                                     "models", "priority", "timeout_ms", "tls_verify", "ca_file", "headers",
                                     "auth_header"};
const char* const kAuthHeaders[] = {"bearer", "api-key", "x-api-key", "none"};
static_assert(sizeof kEndpointKeys / sizeof kEndpointKeys[0] == E_COUNT, "endpoint key table");

// skipped: after a section header that was refused; its keys are not read (no cascade).
enum class Section : uint8_t { none, agent, probe, endpoint, fallback, context_fallback, skipped, telemetry };

// What the single pass remembers besides the Config itself: where things were seen
// (line numbers, 0 = not yet), for duplicate checks and for messages.
struct Reader {
    Config* cfg = nullptr;
    Section section = Section::none;
    uint32_t ep = 0;          // current endpoint index while section == endpoint
    char label[48] = "";      // "agent", "endpoint.primary", ...: prefix of key labels
    uint32_t agent_header = 0, probe_header = 0, fallback_header = 0;
    uint32_t agent_seen[A_COUNT] = {};
    uint32_t probe_seen[P_COUNT] = {};
    uint32_t ep_seen[EW_CAP_ENDPOINTS][E_COUNT] = {};
    uint32_t fallback_line[EW_CAP_FALLBACK_RULES] = {};
    uint32_t context_header = 0;
    uint32_t context_line[EW_CAP_CONTEXT_FALLBACK_RULES] = {};
    uint32_t telemetry_header = 0;
    uint32_t telemetry_seen[ini::T_COUNT] = {};
};

template <size_t N>
int key_index(const char* const (&keys)[N], Span k) {
    for (size_t i = 0; i < N; i++)
        if (ini::span_eq(k, keys[i])) return static_cast<int>(i);
    return -1;
}

template <typename E, size_t N>
bool enum_value(Ctx& c, Span v, const char* const (&names)[N], E* out) {
    uint8_t i = 0;
    if (!ini::parse_enum(c, v, names, N, &i)) return false;
    *out = static_cast<E>(i);
    return true;
}

template <size_t N>
const char* enum_name(const char* const (&names)[N], uint8_t v) {
    return v < N ? names[v] : "?";
}

// Edit distance (insert, delete, substitute, swap of neighbours) between a span and a name,
// both short; larger than 9 counts as 9.
size_t distance(Span a, const char* b) {
    size_t bn = strlen(b);
    if (a.n > 40 || bn > 40) return 9;
    size_t d[41][41];
    for (size_t i = 0; i <= a.n; i++) d[i][0] = i;
    for (size_t j = 0; j <= bn; j++) d[0][j] = j;
    for (size_t i = 1; i <= a.n; i++)
        for (size_t j = 1; j <= bn; j++) {
            size_t cost = a.p[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a.p[i - 1] == b[j - 2] && a.p[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[a.n][bn] > 9 ? 9 : d[a.n][bn];
}

// The known name closest to a misspelt one, or nullptr when none is close (at most 1 edit
// for short names, 2 for longer ones, 3 past 12 characters).
const char* closest(Span k, const char* const* names, size_t count) {
    const char* best = nullptr;
    size_t best_d = k.n <= 4 ? 1 : k.n <= 12 ? 2 : 3;
    for (size_t i = 0; i < count; i++) {
        size_t d = distance(k, names[i]);
        if (d <= best_d && (best == nullptr || d < best_d)) {
            best = names[i];
            best_d = d;
        }
    }
    return best;
}

// c.key = "prefix.rest" (either part may be empty).
void set_key(Ctx& c, const char* prefix, Span rest) {
    StrBuf b(c.key, sizeof c.key);
    b.append(prefix);
    if (prefix[0] && rest.n) b.append(".");
    if (rest.n) b.append(show(rest).s);
}

void set_key(Ctx& c, const char* prefix, const char* rest) { set_key(c, prefix, Span{rest, strlen(rest)}); }

bool first_use(Ctx& c, uint32_t* seen) {
    if (*seen) return fail(c, "duplicate key (first at line %u)", static_cast<unsigned>(*seen));
    *seen = c.line;
    return true;
}

void reset(Config* cfg) {
    cfg->agent = AgentConfig{};
    cfg->probe = ProbeConfig{};
    for (EndpointConfig& e : cfg->endpoints) e = EndpointConfig{};
    cfg->endpoint_count = 0;
    for (FallbackRule& r : cfg->fallback) r = FallbackRule{};
    cfg->fallback_count = 0;
    for (FallbackRule& r : cfg->context_fallback) r = FallbackRule{};
    cfg->context_fallback_count = 0;
    cfg->telemetry = TelemetryConfig{};
}

// ---- sections -------------------------------------------------------------------------------

bool open_section(Ctx& c, Reader& r, Section s, uint32_t* header, const char* label) {
    if (*header) return fail(c, "duplicate section (first at line %u)", static_cast<unsigned>(*header));
    *header = c.line;
    r.section = s;
    copy_str(r.label, sizeof r.label, label);
    return true;
}

bool endpoint_section(Ctx& c, Reader& r, Span name) {
    Config& cfg = *r.cfg;
    bool ok = name.n > 0 && name.n < EW_CAP_NAME;
    for (size_t i = 0; ok && i < name.n; i++) {
        char ch = name.p[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
             ch == '-';
    }
    if (!ok) return fail(c, "endpoint name must be 1 to %d characters of A-Z a-z 0-9 _ -", EW_CAP_NAME - 1);
    for (uint32_t i = 0; i < cfg.endpoint_count; i++)
        if (ini::span_eq(name, cfg.endpoints[i].name))
            return fail(c, "duplicate section (first at line %u)", static_cast<unsigned>(cfg.endpoints[i].line));
    if (cfg.endpoint_count == EW_CAP_ENDPOINTS) return fail(c, "too many endpoints (at most %d)", EW_CAP_ENDPOINTS);
    r.ep = cfg.endpoint_count++;
    EndpointConfig& e = cfg.endpoints[r.ep];
    copy_str(e.name, sizeof e.name, name.p, name.n);
    e.line = c.line;
    r.section = Section::endpoint;
    StrBuf label(r.label, sizeof r.label);
    label.append("endpoint.");
    label.append(e.name);
    return true;
}

// t: the trimmed line, starting with '['. c.key already names it.
bool section_header(Ctx& c, Reader& r, Span t) {
    size_t close = 0;
    while (close < t.n && t.p[close] != ']') close++;
    if (close == t.n) return fail(c, "unterminated section header (missing ']')");
    if (ini::trim(Span{t.p + close + 1, t.n - close - 1}).n) return fail(c, "unexpected text after ']'");
    Span name = ini::trim(Span{t.p + 1, close - 1});
    if (ini::span_eq(name, "agent")) return open_section(c, r, Section::agent, &r.agent_header, "agent");
    if (ini::span_eq(name, "probe")) return open_section(c, r, Section::probe, &r.probe_header, "probe");
    if (ini::span_eq(name, "fallback")) return open_section(c, r, Section::fallback, &r.fallback_header, "fallback");
    if (ini::span_eq(name, "context_fallback"))
        return open_section(c, r, Section::context_fallback, &r.context_header, "context_fallback");
    if (ini::span_eq(name, "telemetry")) {
        if (!EW_CAP_TELEMETRY) return fail(c, "this edgeway is built without telemetry (EW_CAP_TELEMETRY 0)");
        return open_section(c, r, Section::telemetry, &r.telemetry_header, "telemetry");
    }
    if (name.n >= 9 && memcmp(name.p, "endpoint.", 9) == 0)
        return endpoint_section(c, r, Span{name.p + 9, name.n - 9});
    static const char* const kSections[] = {"agent", "probe", "fallback", "endpoint", "context_fallback", "telemetry"};
    size_t dot = 0;
    while (dot < name.n && name.p[dot] != '.') dot++;
    const char* hint = closest(Span{name.p, dot}, kSections, 6);
    if (hint && strcmp(hint, "endpoint") == 0 && dot < name.n)
        return fail(c, "unknown section (did you mean [endpoint.%s]?)", show(Span{name.p + dot + 1, name.n - dot - 1}).s);
    if (hint && strcmp(hint, "endpoint") != 0 && dot == name.n)
        return fail(c, "unknown section (did you mean [%s]?)", hint);
    return fail(c, "unknown section (expected [agent], [probe], [endpoint.NAME], [fallback], [context_fallback] or [telemetry])");
}

// ---- keys -----------------------------------------------------------------------------------

// The next `sep`-separated item of `v` from *i, trimmed; false at the end.
bool next_item(Span v, size_t* i, char sep, Span* out) {
    if (*i >= v.n) return false;
    size_t j = *i;
    while (j < v.n && v.p[j] != sep) j++;
    *out = ini::trim(Span{v.p + *i, j - *i});
    *i = j + 1;
    return true;
}

// `cors_origins = https://kiosk.local, http://localhost:3000` or `*`; empty: CORS off.
bool parse_cors_origins(Ctx& c, Span v, AgentConfig* a) {
    a->cors_origin_count = 0;
    a->cors_any = false;
    size_t i = 0;
    Span o;
    while (next_item(v, &i, ',', &o)) {
        if (o.n == 0) return fail(c, "empty entry in the origin list");
        if (o.n == 1 && o.p[0] == '*') {
            a->cors_any = true;
            continue;
        }
        if (o.n >= EW_CAP_ORIGIN || !cors_origin_ok(o.p, o.n))
            return fail(c, "'%s' is not an origin (scheme://host[:port], lower-case, no path)", show(o).s);
        if (a->cors_origin_count == EW_CAP_CORS_ORIGINS)
            return fail(c, "more than %u origins", static_cast<unsigned>(EW_CAP_CORS_ORIGINS));
        for (uint32_t k = 0; k < a->cors_origin_count; k++)
            if (ini::span_eq(o, a->cors_origins[k])) return fail(c, "duplicate origin '%s'", show(o).s);
        memcpy(a->cors_origins[a->cors_origin_count], o.p, o.n);
        a->cors_origins[a->cors_origin_count][o.n] = '\0';
        a->cors_origin_count++;
    }
    if (a->cors_any && a->cors_origin_count > 0) return fail(c, "'*' stands alone; list origins or '*'");
    return true;
}

// `headers = HTTP-Referer: https://kiosk.example; X-Title: Kiosk` into "Name: value\r\n"...
bool parse_extra_headers(Ctx& c, Span v, EndpointConfig* e) {
    StrBuf out(e->extra_headers, sizeof e->extra_headers);
    size_t i = 0;
    Span h;
    while (next_item(v, &i, ';', &h)) {
        if (h.n == 0) continue;
        size_t colon = 0;
        while (colon < h.n && h.p[colon] != ':') colon++;
        if (colon == h.n) return fail(c, "'%s' is not 'Name: value'", show(h).s);
        Span name = ini::trim(Span{h.p, colon});
        Span value = ini::trim(Span{h.p + colon + 1, h.n - colon - 1});
        if (!header_name_ok(name.p, name.n)) return fail(c, "'%s' is not a header name", show(name).s);
        if (header_name_reserved(name.p, name.n))
            return fail(c, "'%s' cannot be set here (framing, edgeway's own, or a credential: use auth_header "
                           "and api_key_env/api_key_file)", show(name).s);
        if (value.n == 0 || !header_value_ok(value.p, value.n))
            return fail(c, "the value of '%s' must be printable ASCII and not empty", show(name).s);
        out.append(name.p, name.n);
        out.append(": ");
        out.append(value.p, value.n);
        out.append("\r\n");
        if (out.overflow) return fail(c, "longer than %u bytes", static_cast<unsigned>(EW_CAP_ENDPOINT_HEADERS - 1));
    }
    return true;
}

// hedge_after_ms = off | auto | milliseconds (at least 1; a time like the other *_ms keys).
bool parse_hedge_after(Ctx& c, Span v, AgentConfig* a) {
    if (ini::span_ieq(v, "off")) {
        a->hedge_mode = HedgeMode::off;
        a->hedge_after_ms = 0;
        return true;
    }
    if (ini::span_ieq(v, "auto")) {
        a->hedge_mode = HedgeMode::automatic;
        a->hedge_after_ms = 0;
        return true;
    }
    if (v.n == 0 || v.p[0] < '0' || v.p[0] > '9')
        return fail(c, "expected off, auto or a number of milliseconds, got \"%s\"", show(v).s);
    if (ini::span_eq(v, "0")) return fail(c, "0 would hedge every request at once; use off, auto or at least 1");
    if (!ini::parse_u32(c, v, 1, kMaxMs, true, &a->hedge_after_ms)) return false;
    a->hedge_mode = HedgeMode::fixed;
    return true;
}

bool agent_key(Ctx& c, AgentConfig& a, int k, Span v) {
    switch (k) {
    case A_LISTEN: return ini::parse_listen(c, v, &a);
    case A_TOKEN_FILE:
        a.local_token[0] = '\0';
        if (!ini::copy_path(c, v, a.local_token_file, sizeof a.local_token_file)) return false;
        return v.n == 0 || ini::load_key_file(c, a.local_token_file, a.local_token, sizeof a.local_token);
    case A_LOG_LEVEL: return enum_value(c, v, kLogLevels, &a.log_level);
    case A_LOG_FORMAT: return enum_value(c, v, kLogFormats, &a.log_format);
    case A_STRATEGY: return enum_value(c, v, kStrategies, &a.strategy);
    case A_MAX_CLIENTS: return ini::parse_u32(c, v, 1, EW_CAP_CLIENTS, false, &a.max_clients);
    case A_MAX_REQUEST_BYTES: return ini::parse_u32(c, v, 1024, EW_CAP_REQUEST_BYTES, false, &a.max_request_bytes);
    case A_REQUEST_TIMEOUT: return ini::parse_u32(c, v, 1, kMaxMs, true, &a.request_timeout_ms);
    case A_MAX_ATTEMPTS: return ini::parse_u32(c, v, 1, 16, false, &a.max_attempts);
    case A_BACKOFF: return ini::parse_u32(c, v, 0, kMaxMs, true, &a.retry_backoff_ms);
    case A_BACKOFF_MAX: return ini::parse_u32(c, v, 0, kMaxMs, true, &a.retry_backoff_max_ms);
    case A_FIRST_TOKEN: return ini::parse_u32(c, v, 1, kMaxMs, true, &a.first_token_timeout_ms);
    case A_CLIENT_HEADER_TIMEOUT: return ini::parse_u32(c, v, 100, kMaxMs, true, &a.client_header_timeout_ms);
    case A_CLIENT_WRITE_TIMEOUT: return ini::parse_u32(c, v, 100, kMaxMs, true, &a.client_write_timeout_ms);
    case A_DNS_SERVERS: return ini::parse_dns_servers(c, v, &a);
    case A_DNS_MIN_TTL: return ini::parse_u32(c, v, kMinDnsTtlMs, kMaxMs, true, &a.dns_min_ttl_ms);
    case A_DNS_MAX_TTL: return ini::parse_u32(c, v, kMinDnsTtlMs, kMaxMs, true, &a.dns_max_ttl_ms);
    case A_CORS_ORIGINS: return parse_cors_origins(c, v, &a);
    case A_TRIAL_REQUESTS: return ini::parse_u32(c, v, 1, 16, false, &a.trial_requests);
    case A_PROBE_BUDGET: return ini::parse_u32(c, v, 0, 1000000000u, false, &a.probe_budget_tokens_per_day);
    case A_STATE_FILE: return ini::copy_path(c, v, a.state_file, sizeof a.state_file);
    case A_STATE_WRITE_INTERVAL: return ini::parse_u32(c, v, 100, kMaxMs, true, &a.state_write_interval_ms);
    case A_HEDGE_AFTER: return parse_hedge_after(c, v, &a);
    case A_HEDGE_BUDGET: return ini::parse_u32(c, v, 0, 100, false, &a.hedge_budget_pct);
    }
    return false;
}

bool probe_key(Ctx& c, ProbeConfig& p, int k, Span v) {
    switch (k) {
    case P_KIND: return enum_value(c, v, kProbeKinds, &p.kind);
    case P_INTERVAL: return ini::parse_u32(c, v, 100, kMaxMs, true, &p.interval_ms);
    case P_DOWN_INTERVAL: return ini::parse_u32(c, v, 100, kMaxMs, true, &p.down_interval_ms);
    case P_TIMEOUT: return ini::parse_u32(c, v, 1, kMaxMs, true, &p.timeout_ms);
    case P_FALL: return ini::parse_u32(c, v, 1, 100, false, &p.fall);
    case P_RISE: return ini::parse_u32(c, v, 1, 100, false, &p.rise);
    case P_JITTER: return ini::parse_u32(c, v, 0, 50, false, &p.jitter_pct);
    case P_COOLDOWN_MAX: return ini::parse_u32(c, v, 100, kMaxMs, true, &p.cooldown_max_ms);
    }
    return false;
}

bool endpoint_key(Ctx& c, Reader& r, int k, Span v) {
    EndpointConfig& e = r.cfg->endpoints[r.ep];
    const uint32_t* seen = r.ep_seen[r.ep];
    if (k >= E_API_KEY && k <= E_API_KEY_CREDENTIAL) {
        for (int o = E_API_KEY; o <= E_API_KEY_CREDENTIAL; o++)
            if (o != k && seen[o])
                return fail(c,
                            "conflicts with %s at line %u; use only one of api_key, api_key_env, api_key_file, "
                            "api_key_credential",
                            kEndpointKeys[o], static_cast<unsigned>(seen[o]));
    }
    switch (k) {
    case E_URL: return ini::parse_url(c, v, &e);
    case E_API_KEY:
        if (!ini::set_inline_key(c, v, e.api_key, sizeof e.api_key)) return false;
        e.api_key_inline = true;
        ini::warnf(c, "inline API key; prefer api_key_env or api_key_file");
        return true;
    case E_API_KEY_ENV: return ini::load_key_env(c, v, e.api_key, sizeof e.api_key);
    case E_API_KEY_FILE: {
        char path[EW_CAP_PATH];
        return ini::copy_path(c, v, path, sizeof path) && ini::load_key_file(c, path, e.api_key, sizeof e.api_key);
    }
    case E_API_KEY_CREDENTIAL: return ini::load_key_credential(c, v, e.api_key, sizeof e.api_key);
    case E_MODELS: return ini::parse_models(c, v, e.models, EW_CAP_MODELS_PER_ENDPOINT, &e.model_count);
    case E_PRIORITY: return ini::parse_i32(c, v, -kMaxPriority, kMaxPriority, &e.priority);
    case E_TIMEOUT: return ini::parse_u32(c, v, 1, kMaxMs, true, &e.timeout_ms);
    case E_TLS_VERIFY:
        if (!ini::parse_bool(c, v, &e.tls_verify)) return false;
        if (!e.tls_verify) ini::warnf(c, "TLS verification is off");
        return true;
    case E_CA_FILE: return ini::copy_path(c, v, e.ca_file, sizeof e.ca_file);
    case E_HEADERS: return parse_extra_headers(c, v, &e);
    case E_AUTH_HEADER: return enum_value(c, v, kAuthHeaders, &e.auth_header);
    }
    return false;
}

// One table of `MODEL = NEXT, NEXT...` rules: [fallback] or [context_fallback].
struct RuleTable {
    FallbackRule* rules;
    uint32_t* count;
    uint32_t cap;
    uint32_t* lines;
    const char* what;  // "fallback", "context_fallback"
};

RuleTable rule_table(Reader& r, Section s) {
    Config& cfg = *r.cfg;
    if (s == Section::context_fallback)
        return RuleTable{cfg.context_fallback, &cfg.context_fallback_count, EW_CAP_CONTEXT_FALLBACK_RULES,
                         r.context_line, "context_fallback"};
    return RuleTable{cfg.fallback, &cfg.fallback_count, EW_CAP_FALLBACK_RULES, r.fallback_line, "fallback"};
}

// `MODEL = NEXT, NEXT...`; the models on the right are checked against the endpoints at the end.
bool fallback_rule(Ctx& c, RuleTable t, Span model, Span v) {
    if (!ini::check_model_name(c, model)) return false;
    for (uint32_t i = 0; i < *t.count; i++)
        if (ini::span_eq(model, t.rules[i].model))
            return fail(c, "duplicate key (first at line %u)", static_cast<unsigned>(t.lines[i]));
    if (v.n == 0) return fail(c, "value is required");
    if (*t.count == t.cap) return fail(c, "too many %s rules (at most %u)", t.what, static_cast<unsigned>(t.cap));
    FallbackRule& rule = t.rules[*t.count];
    if (!ini::parse_models(c, v, rule.next, EW_CAP_FALLBACK_CHAIN, &rule.next_count)) return false;
    for (uint32_t j = 0; j < rule.next_count; j++)
        if (ini::span_eq(model, rule.next[j])) return fail(c, "a model cannot fall back to itself");
    copy_str(rule.model, sizeof rule.model, model.p, model.n);
    t.lines[(*t.count)++] = c.line;
    return true;
}

bool key_value(Ctx& c, Reader& r, Span key, Span v) {
    if (key.n == 0) return fail(c, "missing key before '='");
    if (r.section == Section::none)
        return fail(c, "key outside any section (add [agent], [probe], [endpoint.NAME] or [fallback] above it)");
    if (r.section == Section::skipped) return true;  // the header was refused and reported
    if (r.section == Section::fallback || r.section == Section::context_fallback)
        return fallback_rule(c, rule_table(r, r.section), key, v);

    int k = -1;
    uint32_t* seen = nullptr;
    bool empty_ok = false;
    if (r.section == Section::agent) {
        k = key_index(kAgentKeys, key);
        if (k >= 0) seen = &r.agent_seen[k];
        empty_ok = k == A_TOKEN_FILE || k == A_DNS_SERVERS || k == A_CORS_ORIGINS || k == A_STATE_FILE;
    } else if (r.section == Section::probe) {
        k = key_index(kProbeKeys, key);
        if (k >= 0) seen = &r.probe_seen[k];
    } else if (r.section == Section::telemetry) {
        k = key_index(ini::kTelemetryKeys, key);
        if (k >= 0) seen = &r.telemetry_seen[k];
        empty_ok = k >= 0 && ini::telemetry_empty_ok(k);
    } else {
        k = key_index(kEndpointKeys, key);
        if (k >= 0) seen = &r.ep_seen[r.ep][k];
        empty_ok = k == E_CA_FILE || k == E_HEADERS;
    }
    if (k < 0) {
        const char* hint = nullptr;
        if (r.section == Section::agent) hint = closest(key, kAgentKeys, A_COUNT);
        else if (r.section == Section::probe) hint = closest(key, kProbeKeys, P_COUNT);
        else if (r.section == Section::telemetry) hint = closest(key, ini::kTelemetryKeys, ini::T_COUNT);
        else hint = closest(key, kEndpointKeys, E_COUNT);
        if (hint) return fail(c, "unknown key (did you mean %s?)", hint);
        return fail(c, "unknown key");
    }
    if (!first_use(c, seen)) return false;
    if (v.n == 0 && !empty_ok) return fail(c, "value is required");
    if (r.section == Section::agent) return agent_key(c, r.cfg->agent, k, v);
    if (r.section == Section::probe) return probe_key(c, r.cfg->probe, k, v);
    if (r.section == Section::telemetry) return ini::telemetry_key(c, r.cfg->telemetry, k, v);
    return endpoint_key(c, r, k, v);
}

// One physical line, without its '\n' (and '\r').
bool read_line(Ctx& c, Reader& r, Span raw) {
    size_t n = raw.n;
    for (size_t i = 0; i < raw.n; i++) {
        if ((raw.p[i] == ';' || raw.p[i] == '#') && (i == 0 || ini::is_blank(raw.p[i - 1]))) {
            n = i;
            break;
        }
    }
    Span t = ini::trim(Span{raw.p, n});
    Span key, value;
    size_t eq = 0;
    while (eq < t.n && t.p[eq] != '=') eq++;
    bool header = t.n && t.p[0] == '[';
    bool pair = !header && eq < t.n;
    if (header) {
        set_key(c, "", t);
    } else if (pair) {
        key = ini::trim(Span{t.p, eq});
        value = ini::trim(Span{t.p + eq + 1, t.n - eq - 1});
        set_key(c, r.label, key);
    } else {
        set_key(c, r.section == Section::none ? "(no section)" : r.label, Span{});
    }

    if (raw.n > EW_CAP_INI_LINE - 1) return fail(c, "line longer than %d characters", EW_CAP_INI_LINE - 1);
    for (size_t i = 0; i < raw.n; i++) {
        unsigned char ch = static_cast<unsigned char>(raw.p[i]);
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return fail(c, "line contains a control character (byte 0x%02x)", ch);
    }
    if (header) {
        if (section_header(c, r, t)) return true;
        r.section = Section::skipped;
        return false;
    }
    if (pair) return key_value(c, r, key, value);
    if (t.n) return fail(c, "expected `key = value`, `[section]` or a comment");
    return true;
}

// ---- checks that need the whole file --------------------------------------------------------

bool served(const Config& cfg, const char* model) {
    for (uint32_t i = 0; i < cfg.endpoint_count; i++)
        if (cfg.endpoints[i].serves(model)) return true;
    return false;
}

bool finish(Ctx& c, Reader& r) {
    Config& cfg = *r.cfg;
    if (cfg.endpoint_count == 0) {
        c.line = 0;
        set_key(c, "endpoint", "");
        return fail(c, "no [endpoint.NAME] section; at least one upstream is required");
    }
    for (uint32_t i = 0; i < cfg.endpoint_count; i++) {
        const EndpointConfig& e = cfg.endpoints[i];
        const uint32_t* seen = r.ep_seen[i];
        char prefix[48];
        StrBuf label(prefix, sizeof prefix);
        label.append("endpoint.");
        label.append(e.name);
        c.line = e.line;
        if (!seen[E_URL]) {
            set_key(c, prefix, "url");
            fail(c, "missing; every endpoint needs a url");
        }
        if (!seen[E_MODELS]) {
            set_key(c, prefix, "models");
            fail(c, "missing; list the models this endpoint serves");
        }
        if (e.scheme == Scheme::http && e.api_key[0] && !ini::is_loopback(e.host)) {
            c.line = seen[E_URL];
            set_key(c, prefix, "url");
            ini::warnf(c, "http:// sends the API key unencrypted to %s; use https://", e.host);
        }
    }
    const AgentConfig& a = cfg.agent;
    if (a.cors_any && a.local_token[0]) {
        c.line = r.agent_seen[A_CORS_ORIGINS];
        set_key(c, "agent", "cors_origins");
        return fail(c, "'*' is not allowed with local_token_file; list the origins");
    }
    if (a.retry_backoff_max_ms < a.retry_backoff_ms) {
        if (r.agent_seen[A_BACKOFF_MAX]) {
            c.line = r.agent_seen[A_BACKOFF_MAX];
            set_key(c, "agent", "retry_backoff_max_ms");
            fail(c, "must not be less than agent.retry_backoff_ms (%u)", static_cast<unsigned>(a.retry_backoff_ms));
        } else {
            c.line = r.agent_seen[A_BACKOFF];
            set_key(c, "agent", "retry_backoff_ms");
            fail(c, "must not exceed agent.retry_backoff_max_ms (%u)", static_cast<unsigned>(a.retry_backoff_max_ms));
        }
    }
    ProbeConfig& p = cfg.probe;
    if (p.cooldown_max_ms < p.down_interval_ms) {
        if (!r.probe_seen[P_COOLDOWN_MAX]) {
            p.cooldown_max_ms = p.down_interval_ms;  // the default cap yields to a longer interval
        } else {
            c.line = r.probe_seen[P_COOLDOWN_MAX];
            set_key(c, "probe", "cooldown_max_ms");
            fail(c, "must not be less than probe.down_interval_ms (%u)", static_cast<unsigned>(p.down_interval_ms));
        }
    }
    if (a.dns_max_ttl_ms < a.dns_min_ttl_ms) {
        if (r.agent_seen[A_DNS_MAX_TTL]) {
            c.line = r.agent_seen[A_DNS_MAX_TTL];
            set_key(c, "agent", "dns_max_ttl_ms");
            return fail(c, "must not be less than agent.dns_min_ttl_ms (%u)", static_cast<unsigned>(a.dns_min_ttl_ms));
        }
        c.line = r.agent_seen[A_DNS_MIN_TTL];
        set_key(c, "agent", "dns_min_ttl_ms");
        return fail(c, "must not exceed agent.dns_max_ttl_ms (%u)", static_cast<unsigned>(a.dns_max_ttl_ms));
    }
    ini::telemetry_finish(c, cfg.telemetry, r.telemetry_seen, r.telemetry_header);
    const Section kRuleSections[] = {Section::fallback, Section::context_fallback};
    for (Section s : kRuleSections) {
        RuleTable t = rule_table(r, s);
        for (uint32_t i = 0; i < *t.count; i++) {
            const FallbackRule& rule = t.rules[i];
            for (uint32_t j = 0; j < rule.next_count; j++) {
                if (served(cfg, rule.next[j])) continue;
                c.line = t.lines[i];
                set_key(c, t.what, rule.model);
                fail(c, "no endpoint serves \"%s\"", rule.next[j]);
            }
        }
    }
    return c.errors == 0;
}

}  // namespace

// ---- public interface -------------------------------------------------------------------------

ConfigStatus config_parse(const char* file_name, const char* text, size_t len, const ConfigSources& src,
                          Config* out, ConfigDiag* err, void (*warn)(const char* line, void* user),
                          void* warn_user) {
    ConfigReport rep;
    rep.warn = warn;
    rep.user = warn_user;
    return config_parse_report(file_name, text, len, src, out, err, &rep);
}

ConfigStatus config_parse_report(const char* file_name, const char* text, size_t len, const ConfigSources& src,
                                 Config* out, ConfigDiag* err, ConfigReport* report) {
    ConfigDiag scratch;
    ConfigReport none;
    ConfigReport& rep = report ? *report : none;
    rep.errors = 0;
    Ctx c;
    c.file = file_name ? file_name : "-";
    c.src = &src;
    c.err = err ? err : &scratch;
    c.err->text[0] = '\0';
    c.warn = rep.warn;
    c.warn_user = rep.user;
    c.error = rep.error;
    c.error_user = rep.user;
    if (!out) {
        set_key(c, "config", "");
        fail(c, "no output");
        rep.errors = c.errors;
        return ConfigStatus::error;
    }
    reset(out);
    if (!text) len = 0;
    if (len > EW_CAP_INI_BYTES) {
        set_key(c, "file", "");
        fail(c, "larger than %d bytes", EW_CAP_INI_BYTES);
        rep.errors = c.errors;
        return ConfigStatus::error;
    }

    Reader r;
    r.cfg = out;
    size_t pos = 0;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) pos = 3;  // UTF-8 byte order mark
    // Every line is read even after an error, so that one run reports every mistake.
    while (pos < len) {
        size_t start = pos;
        while (pos < len && text[pos] != '\n') pos++;
        size_t end = pos;
        if (pos < len) pos++;
        if (end > start && text[end - 1] == '\r') end--;
        c.line++;
        read_line(c, r, Span{text + start, end - start});
    }
    finish(c, r);
    rep.errors = c.errors;
    if (c.errors) {
        reset(out);  // keys read so far do not outlive a failed parse
        return ConfigStatus::error;
    }
    return ConfigStatus::ok;
}

bool EndpointConfig::serves(const char* model) const {
    if (!model) return false;
    for (uint32_t i = 0; i < model_count && i < EW_CAP_MODELS_PER_ENDPOINT; i++)
        if (strcmp(models[i], model) == 0) return true;
    return false;
}

const FallbackRule* Config::fallback_for(const char* model) const {
    if (!model) return nullptr;
    for (uint32_t i = 0; i < fallback_count && i < EW_CAP_FALLBACK_RULES; i++)
        if (strcmp(fallback[i].model, model) == 0) return &fallback[i];
    return nullptr;
}

int Config::endpoint_index(const char* name) const {
    if (!name) return -1;
    for (uint32_t i = 0; i < endpoint_count && i < EW_CAP_ENDPOINTS; i++)
        if (strcmp(endpoints[i].name, name) == 0) return static_cast<int>(i);
    return -1;
}

const char* to_string(LogLevel v) { return enum_name(kLogLevels, static_cast<uint8_t>(v)); }
const char* to_string(LogFormat v) { return enum_name(kLogFormats, static_cast<uint8_t>(v)); }
const char* to_string(Strategy v) { return enum_name(kStrategies, static_cast<uint8_t>(v)); }
const char* to_string(ProbeKind v) { return enum_name(kProbeKinds, static_cast<uint8_t>(v)); }

}  // namespace ew
