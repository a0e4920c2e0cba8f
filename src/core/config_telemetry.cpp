// [telemetry]: where the fleet telemetry goes (net/telemetry.h does the MQTT).
#include "core/config_telemetry.h"

#include <string.h>

#include "core/strbuf.h"

namespace ew {

bool telemetry_device_id_ok(const char* s, size_t n) {
    if (n == 0 || n >= EW_CAP_DEVICE_ID) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                  ch == '-' || ch == '.';
        if (!ok) return false;
    }
    return true;
}

namespace ini {

const char* const kTelemetryKeys[T_COUNT] = {"mqtt_url", "device_id", "username", "password_file", "ca_file",
                                             "topic_prefix", "interval_ms", "queue_max", "password_credential"};

#if EW_CAP_TELEMETRY
namespace {

constexpr uint32_t kMaxMs = 86400000;

// mqtt://host[:port] or mqtts://host[:port], with the host rules of endpoint urls (host
// names, IPv6 in brackets) and no credentials, path, query or fragment.
bool parse_mqtt_url(Ctx& c, Span v, TelemetryConfig* t) {
    if (v.n >= sizeof t->mqtt_url) return fail(c, "longer than %d characters", static_cast<int>(sizeof t->mqtt_url) - 1);
    for (size_t i = 0; i < v.n; i++) {
        unsigned char ch = static_cast<unsigned char>(v.p[i]);
        if (ch <= ' ' || ch >= 0x7f) return fail(c, "must not contain spaces or non-ASCII characters");
        if (ch == '?' || ch == '#') return fail(c, "must not have a query (?) or fragment (#)");
    }
    bool tls = starts_with(v, "mqtts://");
    if (!tls && !starts_with(v, "mqtt://")) return fail(c, "must start with mqtt:// or mqtts://");
    size_t skip = tls ? 8 : 7;
    Span rest{v.p + skip, v.n - skip};
    size_t end = 0;
    while (end < rest.n && rest.p[end] != '/') end++;
    Span auth{rest.p, end};
    for (size_t i = 0; i < auth.n; i++)
        if (auth.p[i] == '@') return fail(c, "must not contain credentials (user@host); use username and password_file");
    for (size_t i = end; i < rest.n; i++)
        if (rest.p[i] != '/') return fail(c, "must not have a path (mqtt://host:port)");
    Span host = auth, port;
    bool has_port = false;
    if (auth.n && auth.p[0] == '[') {
        size_t close = 0;
        while (close < auth.n && auth.p[close] != ']') close++;
        if (close == auth.n) return fail(c, "missing ']' after the IPv6 host");
        host = Span{auth.p + 1, close - 1};
        if (close + 1 < auth.n) {
            if (auth.p[close + 1] != ':') return fail(c, "unexpected text after the IPv6 host");
            port = Span{auth.p + close + 2, auth.n - close - 2};
            has_port = true;
        }
        if (!ipv6_literal_ok(host)) return fail(c, "not an IPv6 address: \"%s\"", show(host).s);
    } else {
        size_t colon = 0;
        while (colon < auth.n && auth.p[colon] != ':') colon++;
        host = Span{auth.p, colon};
        if (colon < auth.n) {
            port = Span{auth.p + colon + 1, auth.n - colon - 1};
            has_port = true;
        }
        if (host.n == 0) return fail(c, "has no host");
        if (!host_name_ok(host)) return fail(c, "not a valid host name: \"%s\"", show(host).s);
    }
    if (host.n >= sizeof t->host) return fail(c, "host longer than %d characters", static_cast<int>(sizeof t->host) - 1);
    t->port = tls ? 8883 : 1883;
    if (has_port && !parse_port_value(c, port, &t->port)) return false;
    t->tls = tls;
    copy_str(t->host, sizeof t->host, host.p, host.n);
    copy_str(t->mqtt_url, sizeof t->mqtt_url, v.p, v.n);
    return true;
}

bool printable_no_space(Span v) {
    for (size_t i = 0; i < v.n; i++)
        if (v.p[i] <= ' ' || v.p[i] >= 0x7f) return false;
    return true;
}

// Levels of A-Z a-z 0-9 _ - . separated by single '/': no wildcards, no empty level.
bool parse_prefix(Ctx& c, Span v, TelemetryConfig* t) {
    if (v.n >= sizeof t->topic_prefix)
        return fail(c, "longer than %d characters", static_cast<int>(sizeof t->topic_prefix) - 1);
    bool ok = v.p[0] != '/' && v.p[v.n - 1] != '/';
    for (size_t i = 0; ok && i < v.n; i++) {
        char ch = v.p[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
             ch == '-' || ch == '.' || (ch == '/' && v.p[i + 1] != '/');
    }
    if (!ok)
        return fail(c, "must be topic levels of A-Z a-z 0-9 _ - . joined by '/' (no wildcards, no leading, "
                       "trailing or double '/')");
    copy_str(t->topic_prefix, sizeof t->topic_prefix, v.p, v.n);
    return true;
}

}  // namespace
#endif

bool telemetry_empty_ok(int k) {
    return k == T_DEVICE_ID || k == T_USERNAME || k == T_PASSWORD_FILE || k == T_PASSWORD_CREDENTIAL || k == T_CA_FILE;
}

bool telemetry_key(Ctx& c, TelemetryConfig& t, int k, Span v) {
#if !EW_CAP_TELEMETRY
    (void)t;
    (void)k;
    (void)v;
    return fail(c, "this edgeway is built without telemetry");  // not reached: the section is refused
#else
    switch (k) {
    case T_MQTT_URL: return parse_mqtt_url(c, v, &t);
    case T_DEVICE_ID:
        if (v.n == 0) return true;  // the host name
        if (!telemetry_device_id_ok(v.p, v.n))
            return fail(c, "must be 1 to %d characters of A-Z a-z 0-9 _ - .", EW_CAP_DEVICE_ID - 1);
        copy_str(t.device_id, sizeof t.device_id, v.p, v.n);
        return true;
    case T_USERNAME:
        if (v.n >= sizeof t.username) return fail(c, "longer than %d characters", EW_CAP_MQTT_USER - 1);
        if (!printable_no_space(v)) return fail(c, "must be printable ASCII without spaces");
        copy_str(t.username, sizeof t.username, v.p, v.n);
        return true;
    case T_PASSWORD_FILE:
        t.password[0] = '\0';
        if (!copy_path(c, v, t.password_file, sizeof t.password_file)) return false;
        return v.n == 0 || load_key_file(c, t.password_file, t.password, sizeof t.password);
    case T_PASSWORD_CREDENTIAL:  // systemd LoadCredential=NAME:FILE, as api_key_credential
        t.password[0] = '\0';
        return v.n == 0 || load_key_credential(c, v, t.password, sizeof t.password);
    case T_CA_FILE: return copy_path(c, v, t.ca_file, sizeof t.ca_file);
    case T_TOPIC_PREFIX: return parse_prefix(c, v, &t);
    case T_INTERVAL: return parse_u32(c, v, 1000, kMaxMs, true, &t.interval_ms);
    case T_QUEUE_MAX: return parse_u32(c, v, 1, EW_CAP_TELEMETRY_QUEUE, false, &t.queue_max);
    }
    return false;
#endif
}

void telemetry_finish(Ctx& c, TelemetryConfig& t, const uint32_t* seen, uint32_t header) {
    if (!header) return;
    t.on = true;
    if (!seen[T_TOPIC_PREFIX]) copy_str(t.topic_prefix, sizeof t.topic_prefix, "edgeway");
    if (!seen[T_MQTT_URL]) {
        c.line = header;
        copy_str(c.key, sizeof c.key, "telemetry.mqtt_url");
        fail(c, "missing; the broker, e.g. mqtts://broker.example.net:8883");
        return;
    }
    bool by_credential = seen[T_PASSWORD_CREDENTIAL] > seen[T_PASSWORD_FILE];
    const char* password_key = by_credential ? "telemetry.password_credential" : "telemetry.password_file";
    if (seen[T_PASSWORD_FILE] && seen[T_PASSWORD_CREDENTIAL]) {
        c.line = by_credential ? seen[T_PASSWORD_CREDENTIAL] : seen[T_PASSWORD_FILE];
        copy_str(c.key, sizeof c.key, password_key);
        fail(c, "set one of password_file and password_credential, not both");
    }
    if (t.password[0] && !t.username[0]) {
        c.line = by_credential ? seen[T_PASSWORD_CREDENTIAL] : seen[T_PASSWORD_FILE];
        copy_str(c.key, sizeof c.key, password_key);
        fail(c, "a password needs telemetry.username (MQTT sends no password without a user name)");
    }
    if (!t.tls && t.password[0] && !is_loopback(t.host)) {
        c.line = seen[T_MQTT_URL];
        copy_str(c.key, sizeof c.key, "telemetry.mqtt_url");
        warnf(c, "mqtt:// sends the password unencrypted to %s; use mqtts://", t.host);
    }
    if (!t.tls && t.ca_file[0]) {
        c.line = seen[T_CA_FILE];
        copy_str(c.key, sizeof c.key, "telemetry.ca_file");
        warnf(c, "ignored: mqtt_url is mqtt:// (plain); use mqtts:// for TLS");
    }
}

}  // namespace ini
}  // namespace ew
