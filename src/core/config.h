// The validated configuration: SPEC section 5, in fixed tables.
// config_parse() turns INI text into a Config or the first error as FILE:LINE: key: message.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "core/caps.h"
#include "core/header_policy.h"

namespace ew {

struct StrBuf;

enum class LogLevel : uint8_t { error, warn, info, debug };
enum class LogFormat : uint8_t { text, json };
enum class Strategy : uint8_t { priority, latency, weighted };
enum class HedgeMode : uint8_t { off, fixed, automatic };  // hedge_after_ms = off | N | auto
enum class ProbeKind : uint8_t { models, chat, tcp, tls };
enum class Scheme : uint8_t { http, https };

struct AgentConfig {
    char listen_host[EW_CAP_HOST] = "127.0.0.1";
    uint16_t listen_port = 8088;
    char local_token_file[EW_CAP_PATH] = "";
    char local_token[EW_CAP_SECRET] = "";  // loaded from local_token_file; empty = no auth
    LogLevel log_level = LogLevel::info;
    LogFormat log_format = LogFormat::text;
    Strategy strategy = Strategy::priority;
    uint32_t max_clients = 16;
    uint32_t max_request_bytes = 262144;
    uint32_t request_timeout_ms = 60000;
    uint32_t max_attempts = 4;
    uint32_t retry_backoff_ms = 200;
    uint32_t retry_backoff_max_ms = 2000;
    uint32_t first_token_timeout_ms = 15000;
    uint32_t client_header_timeout_ms = 5000;   // a request head must arrive whole by then
    uint32_t client_write_timeout_ms = 30000;   // a client that reads nothing this long is dropped
    // The resolver's servers as "IP:PORT,[IPV6]:PORT" (ports filled in); empty = /etc/resolv.conf.
    char dns_servers[EW_CAP_DNS_SERVERS * 48] = "";
    uint32_t dns_min_ttl_ms = 30000;   // resolved addresses are refreshed within [min, max] of the TTL
    uint32_t dns_max_ttl_ms = 600000;
    // Browser callers (CORS): exact origins, or any (`*`, refused with a local token).
    char cors_origins[EW_CAP_CORS_ORIGINS][EW_CAP_ORIGIN] = {};
    uint32_t cors_origin_count = 0;
    bool cors_any = false;
    // Health kept across restarts (core/health_state.h); empty = none. Written at most once
    // per state_write_interval_ms, only when something in it changed (flash wear).
    char state_file[EW_CAP_PATH] = "";
    uint32_t state_write_interval_ms = 60000;
    bool cors_on() const { return cors_any || cors_origin_count > 0; }
    // Half-open recovery: live requests let through at a time to confirm a DOWN endpoint its
    // probe cannot confirm (1..16), and the tokens chat probes may spend per 24 h (0 = no cap).
    uint32_t trial_requests = 1;
    uint32_t probe_budget_tokens_per_day = 0;
    // Hedged first tokens (core/hedge.h): off by default, since a hedge costs tokens.
    HedgeMode hedge_mode = HedgeMode::off;
    uint32_t hedge_after_ms = 0;    // HedgeMode::fixed
    uint32_t hedge_budget_pct = 10; // share of recent requests that may start a hedge
};

struct ProbeConfig {
    ProbeKind kind = ProbeKind::models;
    uint32_t interval_ms = 30000;
    uint32_t down_interval_ms = 5000;
    uint32_t timeout_ms = 5000;
    uint32_t fall = 3;
    uint32_t rise = 2;
    uint32_t jitter_pct = 10;
    // Longest ejection (the cooldown grows from down_interval_ms while an endpoint flaps).
    // When the file does not set it and down_interval_ms is longer, it is down_interval_ms.
    uint32_t cooldown_max_ms = 60000;
};

struct EndpointConfig {
    char name[EW_CAP_NAME] = "";
    char url[EW_CAP_URL] = "";        // as written, e.g. https://api.example.com/v1
    Scheme scheme = Scheme::https;
    char host[EW_CAP_HOST] = "";      // from url, no brackets for IPv6
    uint16_t port = 443;              // from url, or 80/443 by scheme
    char base_path[EW_CAP_PATH] = ""; // from url, e.g. "/v1" (no trailing slash)
    char api_key[EW_CAP_SECRET] = ""; // never logged or shown
    bool api_key_inline = false;      // came from `api_key =` (warned)
    char models[EW_CAP_MODELS_PER_ENDPOINT][EW_CAP_MODEL_NAME] = {};
    uint32_t model_count = 0;
    int32_t priority = 0;
    uint32_t timeout_ms = 30000;
    bool tls_verify = true;
    char ca_file[EW_CAP_PATH] = "";   // empty: system bundle
    // `headers =`, validated and written as "Name: value\r\n"... (sent with every request)
    char extra_headers[EW_CAP_ENDPOINT_HEADERS] = "";
    AuthHeader auth_header = AuthHeader::bearer;
    uint32_t line = 0;                // line of the section header, for messages

    bool serves(const char* model) const;
};

struct FallbackRule {
    char model[EW_CAP_MODEL_NAME] = "";
    char next[EW_CAP_FALLBACK_CHAIN][EW_CAP_MODEL_NAME] = {};
    uint32_t next_count = 0;
};

// [telemetry]: fleet telemetry over MQTT 3.1.1 (net/telemetry.h). Absent section = off.
// With EW_CAP_TELEMETRY 0 the section is refused and its strings shrink to nothing.
#if EW_CAP_TELEMETRY
#define EW_TELEMETRY_CHARS(cap) (cap)
#else
#define EW_TELEMETRY_CHARS(cap) 1
#endif
struct TelemetryConfig {
    bool on = false;                      // the section is present
    char mqtt_url[EW_TELEMETRY_CHARS(EW_CAP_URL)] = "";  // as written: mqtt://host[:port] or mqtts://host[:port]
    bool tls = false;                     // mqtts://
    char host[EW_TELEMETRY_CHARS(EW_CAP_HOST)] = "";     // from mqtt_url, no brackets for IPv6
    uint16_t port = 1883;                 // from mqtt_url, or 1883 / 8883 by scheme
    char device_id[EW_TELEMETRY_CHARS(EW_CAP_DEVICE_ID)] = "";  // empty after parsing = the host name (the caller fills it in)
    char username[EW_TELEMETRY_CHARS(EW_CAP_MQTT_USER)] = "";
    char password_file[EW_TELEMETRY_CHARS(EW_CAP_PATH)] = "";
    char password[EW_TELEMETRY_CHARS(EW_CAP_SECRET)] = "";  // from password_file or password_credential; never logged or shown
    char ca_file[EW_TELEMETRY_CHARS(EW_CAP_PATH)] = "";  // mqtts: empty = system bundle
    char topic_prefix[EW_TELEMETRY_CHARS(EW_CAP_MQTT_PREFIX)] = "";  // "edgeway" unless set (the reader fills it in)
    uint32_t interval_ms = 60000;
    uint32_t queue_max = 64;
};

// A device id usable in a topic and as the MQTT client id: 1..EW_CAP_DEVICE_ID-1 of
// A-Z a-z 0-9 _ - . (so never '/', '+' or '#').
bool telemetry_device_id_ok(const char* s, size_t n);

struct Config {
    AgentConfig agent;
    ProbeConfig probe;
    EndpointConfig endpoints[EW_CAP_ENDPOINTS];
    uint32_t endpoint_count = 0;
    FallbackRule fallback[EW_CAP_FALLBACK_RULES];
    uint32_t fallback_count = 0;
    // [context_fallback]: model = larger-context models to try on context_length_exceeded.
    FallbackRule context_fallback[EW_CAP_CONTEXT_FALLBACK_RULES];
    uint32_t context_fallback_count = 0;
    TelemetryConfig telemetry;

    const FallbackRule* fallback_for(const char* model) const;  // nullptr when none
    int endpoint_index(const char* name) const;                  // -1 when none
};

// One diagnostic: "FILE:LINE: key: message". line 0 = whole file.
struct ConfigDiag {
    char text[256] = "";
};

// Where secrets come from, so tests can supply them without the process environment
// or the file system. The default (config_default_sources) uses the PAL.
struct ConfigSources {
    // Returns the value or nullptr.
    const char* (*getenv)(const char* name, void* user);
    // Reads a whole small file into buf. Returns 0, or an errno-style code. Sets *len.
    // *private_ok = false when the file is readable by group or others.
    int (*read_file)(const char* path, char* buf, size_t cap, size_t* len, bool* private_ok, void* user);
    void* user;
};

enum class ConfigStatus : uint8_t { ok, error };

// Parses INI text. On error fills `err` and returns ConfigStatus::error.
// Warnings (e.g. inline api_key) go to `warn` via the callback, one line each.
ConfigStatus config_parse(const char* file_name, const char* text, size_t len, const ConfigSources& src,
                          Config* out, ConfigDiag* err, void (*warn)(const char* line, void* user),
                          void* warn_user);

// Every diagnostic of one parse: warnings and errors, each "FILE:LINE: key: message", in
// file order (then the whole-file checks). The parse goes on after an error, so that one
// run reports them all; a line after an unusable section header is skipped.
struct ConfigReport {
    void (*warn)(const char* line, void* user) = nullptr;
    void (*error)(const char* line, void* user) = nullptr;
    void* user = nullptr;
    uint32_t errors = 0;  // out
};
ConfigStatus config_parse_report(const char* file_name, const char* text, size_t len, const ConfigSources& src,
                                 Config* out, ConfigDiag* err, ConfigReport* report);

// The effective configuration as INI: every key with its value, defaults included, secrets
// masked (an API key or token shows only whether it is set). `file_name` goes in a comment.
void config_print(const Config& cfg, const char* file_name, StrBuf* out);

const char* to_string(LogLevel v);
const char* to_string(LogFormat v);
const char* to_string(Strategy v);
const char* to_string(ProbeKind v);

}  // namespace ew
