// Parsers of single INI values for config.cpp. No allocation; every read is bounded by
// the span it was given.
#include "core/config_values.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "core/strbuf.h"

namespace ew {
namespace ini {

namespace {

bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }
char lower(char ch) { return (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch - 'A' + 'a') : ch; }
bool is_alnum(char ch) { return is_digit(ch) || (lower(ch) >= 'a' && lower(ch) <= 'z'); }
bool is_hex(char ch) { return is_digit(ch) || (lower(ch) >= 'a' && lower(ch) <= 'f'); }
constexpr size_t kMaxCredentialName = 64;

#if EW_ERRNO_TEXT
const char* errno_text(int rc) { return strerror(rc); }
#else
// The errors a key file meets, worded as the C library words them (caps.h: EW_ERRNO_TEXT).
const char* errno_text(int rc) {
    switch (rc) {
        case ENOENT: return "No such file or directory";
        case EACCES: return "Permission denied";
        case EIO: return "I/O error";
        case EISDIR: return "Is a directory";
        case ENOSYS: return "Function not implemented";
#ifdef ENOTSUP
        case ENOTSUP: return "Not supported";
#endif
        default: return nullptr;
    }
}
#endif

size_t find(Span s, char ch, size_t from = 0) {
    for (size_t i = from; i < s.n; i++)
        if (s.p[i] == ch) return i;
    return s.n;
}

Span sub(Span s, size_t from, size_t to) { return Span{s.p + from, to - from}; }

void vdiag(Ctx& c, char* dst, size_t cap, const char* fmt, va_list ap) {
    StrBuf b(dst, cap);
    b.appendf("%s:%u: %s: ", c.file, static_cast<unsigned>(c.line), c.key);
    b.vappendf(fmt, ap);
}

// Overwrites a buffer that held a secret.
void wipe(char* p, size_t n) {
    volatile char* v = p;
    while (n--) *v++ = 0;
}

// API keys and tokens go into an HTTP header: printable ASCII, no spaces.
bool key_chars_ok(const char* p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (static_cast<unsigned char>(p[i]) <= ' ' || static_cast<unsigned char>(p[i]) >= 0x7f) return false;
    return true;
}

bool is_ipv4(Span s) {
    int parts = 0;
    size_t i = 0;
    while (parts < 4) {
        size_t start = i;
        unsigned v = 0;
        while (i < s.n && is_digit(s.p[i]) && i - start < 3) v = v * 10 + static_cast<unsigned>(s.p[i++] - '0');
        if (i == start || v > 255) return false;
        parts++;
        if (parts < 4) {
            if (i >= s.n || s.p[i] != '.') return false;
            i++;
        }
    }
    return i == s.n;
}

// Bracket contents of an IPv6 literal. A loose check: the socket layer parses it.
bool is_ipv6(Span s) {
    if (s.n < 2 || s.n > 45 || find(s, ':') == s.n) return false;
    for (size_t i = 0; i < s.n; i++)
        if (!is_hex(s.p[i]) && s.p[i] != ':' && s.p[i] != '.') return false;
    return true;
}

bool is_hostname(Span s) {
    for (size_t i = 0; i < s.n; i++)
        if (!is_alnum(s.p[i]) && s.p[i] != '.' && s.p[i] != '-' && s.p[i] != '_') return false;
    return s.n > 0;
}

bool parse_port(Ctx& c, Span v, uint16_t* out) {
    uint32_t port = 0;
    bool ok = v.n > 0 && v.n <= 5;
    for (size_t i = 0; ok && i < v.n; i++) {
        ok = is_digit(v.p[i]);
        port = port * 10 + static_cast<uint32_t>(v.p[i] - '0');
    }
    if (!ok || port < 1 || port > 65535) return fail(c, "port must be a number from 1 to 65535: \"%s\"", show(v).s);
    *out = static_cast<uint16_t>(port);
    return true;
}

// Magnitude and sign of a decimal integer.
bool decimal(Ctx& c, Span v, bool* neg, uint64_t* mag) {
    size_t i = 0;
    *neg = v.n > 0 && v.p[0] == '-';
    if (*neg) i = 1;
    if (i == v.n) return fail(c, "not a decimal integer: \"%s\"", show(v).s);
    uint64_t m = 0;
    for (; i < v.n; i++) {
        if (!is_digit(v.p[i])) return fail(c, "not a decimal integer: \"%s\"", show(v).s);
        m = m * 10 + static_cast<uint64_t>(v.p[i] - '0');
        if (m > 0xFFFFFFFFu) return fail(c, "number too large: \"%s\"", show(v).s);
    }
    *mag = m;
    return true;
}

}  // namespace

bool is_blank(char ch) { return ch == ' ' || ch == '\t'; }

Span trim(Span s) {
    while (s.n && is_blank(s.p[0])) {
        s.p++;
        s.n--;
    }
    while (s.n && is_blank(s.p[s.n - 1])) s.n--;
    return s;
}

bool span_eq(Span s, const char* lit) {
    size_t n = strlen(lit);
    return s.n == n && (n == 0 || memcmp(s.p, lit, n) == 0);
}

bool span_ieq(Span s, const char* lit) {
    size_t n = strlen(lit);
    if (s.n != n) return false;
    for (size_t i = 0; i < n; i++)
        if (lower(s.p[i]) != lower(lit[i])) return false;
    return true;
}

bool starts_with(Span s, const char* lit) {
    size_t n = strlen(lit);
    return s.n >= n && span_ieq(Span{s.p, n}, lit);
}

bool fail(Ctx& c, const char* fmt, ...) {
    char line[sizeof(ConfigDiag::text)];
    va_list ap;
    va_start(ap, fmt);
    vdiag(c, line, sizeof line, fmt, ap);
    va_end(ap);
    if (c.err && c.errors == 0) copy_str(c.err->text, sizeof c.err->text, line);
    c.errors++;
    if (c.error) c.error(line, c.error_user);
    return false;
}

void warnf(Ctx& c, const char* fmt, ...) {
    if (!c.warn) return;
    char line[sizeof(ConfigDiag::text)];
    va_list ap;
    va_start(ap, fmt);
    vdiag(c, line, sizeof line, fmt, ap);
    va_end(ap);
    c.warn(line, c.warn_user);
}

Shown show(Span v) {
    Shown o;
    const size_t max = 64;
    size_t n = v.n > max ? max - 3 : v.n;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = static_cast<unsigned char>(v.p[i]);
        o.s[i] = (ch >= 0x20 && ch < 0x7f) ? static_cast<char>(ch) : '?';
    }
    if (v.n > max) {
        memcpy(o.s + n, "...", 3);
        n += 3;
    }
    o.s[n] = '\0';
    return o;
}

bool parse_u32(Ctx& c, Span v, uint32_t min, uint32_t max, bool is_time, uint32_t* out) {
    bool neg = false;
    uint64_t m = 0;
    if (!decimal(c, v, &neg, &m)) return false;
    if (neg && is_time) return fail(c, "must not be negative");
    if ((neg && m != 0) || m < min || m > max)
        return fail(c, "must be from %u to %u", static_cast<unsigned>(min), static_cast<unsigned>(max));
    *out = static_cast<uint32_t>(m);
    return true;
}

bool parse_i32(Ctx& c, Span v, int32_t min, int32_t max, int32_t* out) {
    bool neg = false;
    uint64_t m = 0;
    if (!decimal(c, v, &neg, &m)) return false;
    int64_t x = neg ? -static_cast<int64_t>(m) : static_cast<int64_t>(m);
    if (x < min || x > max) return fail(c, "must be from %d to %d", static_cast<int>(min), static_cast<int>(max));
    *out = static_cast<int32_t>(x);
    return true;
}

bool parse_bool(Ctx& c, Span v, bool* out) {
    static const char* const yes[] = {"true", "yes", "on", "1"};
    static const char* const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (span_ieq(v, yes[i])) return *out = true, true;
        if (span_ieq(v, no[i])) return *out = false, true;
    }
    return fail(c, "not a boolean: \"%s\" (allowed: true, false, yes, no, on, off, 1, 0)", show(v).s);
}

bool parse_enum(Ctx& c, Span v, const char* const* names, size_t count, uint8_t* out) {
    for (size_t i = 0; i < count; i++) {
        if (span_ieq(v, names[i])) {
            *out = static_cast<uint8_t>(i);
            return true;
        }
    }
    char list[96];
    StrBuf b(list, sizeof list);
    for (size_t i = 0; i < count; i++) {
        if (i) b.append(", ");
        b.append(names[i]);
    }
    return fail(c, "unknown value \"%s\" (allowed: %s)", show(v).s, list);
}

bool is_loopback(const char* host) {
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 || strcmp(host, "0:0:0:0:0:0:0:1") == 0 ||
           span_ieq(Span{host, strlen(host)}, "localhost");
}

bool parse_listen(Ctx& c, Span v, AgentConfig* a) {
    Span host, port;
    if (v.n && v.p[0] == '[') {
        size_t close = find(v, ']');
        if (close == v.n) return fail(c, "missing ']' after the IPv6 address, e.g. [::1]:8088");
        host = sub(v, 1, close);
        if (close + 1 >= v.n || v.p[close + 1] != ':') return fail(c, "expected [IPV6]:PORT, e.g. [::1]:8088");
        port = sub(v, close + 2, v.n);
        if (!is_ipv6(host)) return fail(c, "not an IPv6 address: \"%s\"", show(host).s);
    } else {
        size_t colon = find(v, ':');
        if (colon == v.n) return fail(c, "expected HOST:PORT, e.g. 127.0.0.1:8088");
        host = sub(v, 0, colon);
        port = sub(v, colon + 1, v.n);
        if (find(port, ':') != port.n) return fail(c, "an IPv6 address needs brackets, e.g. [::1]:8088");
        if (span_ieq(host, "localhost")) {
            host = Span{"127.0.0.1", 9};
        } else if (!is_ipv4(host)) {
            return fail(c, "host must be an IPv4 address, [IPv6 address] or localhost: \"%s\"", show(host).s);
        }
    }
    if (!parse_port(c, port, &a->listen_port)) return false;
    copy_str(a->listen_host, sizeof a->listen_host, host.p, host.n);
    if (!is_loopback(a->listen_host))
        warnf(c, "%s is not a loopback address; other hosts can reach the agent", a->listen_host);
    return true;
}

bool parse_dns_servers(Ctx& c, Span v, AgentConfig* a) {
    a->dns_servers[0] = '\0';
    StrBuf out(a->dns_servers, sizeof a->dns_servers);
    size_t at = 0;
    uint32_t count = 0;
    while (v.n && at <= v.n) {
        size_t comma = find(v, ',', at);
        Span item = trim(sub(v, at, comma));
        at = comma + 1;
        if (item.n == 0) return fail(c, "empty entry in the list (expected IP:PORT, comma-separated)");
        if (++count > EW_CAP_DNS_SERVERS) return fail(c, "more than %d servers", EW_CAP_DNS_SERVERS);
        Span host, port;
        bool has_port = false;
        bool v6 = item.p[0] == '[';
        if (v6) {
            size_t close = find(item, ']');
            if (close == item.n) return fail(c, "missing ']' after the IPv6 address, e.g. [::1]:53");
            host = sub(item, 1, close);
            if (close + 1 < item.n && item.p[close + 1] != ':') return fail(c, "expected [IPV6]:PORT, e.g. [::1]:53");
            has_port = close + 1 < item.n;
            if (has_port) port = sub(item, close + 2, item.n);
            if (!is_ipv6(host)) return fail(c, "not an IPv6 address: \"%s\"", show(host).s);
        } else {
            size_t colon = find(item, ':');
            if (colon < item.n && find(item, ':', colon + 1) != item.n)
                return fail(c, "an IPv6 address needs brackets, e.g. [::1]:53");
            host = sub(item, 0, colon);
            has_port = colon < item.n;
            if (has_port) port = sub(item, colon + 1, item.n);
            if (!is_ipv4(host))
                return fail(c, "must be an IP address (the resolver cannot look up its own server): \"%s\"", show(host).s);
        }
        uint16_t p = 53;
        if (has_port && !parse_port(c, port, &p)) return false;
        if (count > 1) out.append(",");
        if (v6) out.append("[");
        out.append(host.p, host.n);
        if (v6) out.append("]");
        out.appendf(":%u", static_cast<unsigned>(p));
        if (comma == v.n) break;
    }
    if (out.overflow) return fail(c, "too long");
    return true;
}

bool parse_url(Ctx& c, Span v, EndpointConfig* e) {
    if (v.n >= sizeof e->url) return fail(c, "longer than %d characters", static_cast<int>(sizeof e->url) - 1);
    for (size_t i = 0; i < v.n; i++) {
        unsigned char ch = static_cast<unsigned char>(v.p[i]);
        if (ch <= ' ' || ch >= 0x7f) return fail(c, "must not contain spaces or non-ASCII characters");
        if (ch == '?' || ch == '#') return fail(c, "must not have a query (?) or fragment (#)");
    }
    // No message below echoes the whole url: it might carry credentials.
    size_t at;
    if (starts_with(v, "https://")) {
        e->scheme = Scheme::https;
        e->port = 443;
        at = 8;
    } else if (starts_with(v, "http://")) {
        e->scheme = Scheme::http;
        e->port = 80;
        at = 7;
    } else {
        return fail(c, "must start with http:// or https://");
    }
    size_t slash = find(v, '/', at);
    Span auth = sub(v, at, slash);
    if (find(auth, '@') != auth.n)
        return fail(c, "must not contain credentials (user@host); use api_key_env or api_key_file");
    Span host, port;
    bool has_port = false;
    if (auth.n && auth.p[0] == '[') {
        size_t close = find(auth, ']');
        if (close == auth.n) return fail(c, "missing ']' after the IPv6 host");
        host = sub(auth, 1, close);
        if (close + 1 < auth.n) {
            if (auth.p[close + 1] != ':') return fail(c, "unexpected text after the IPv6 host");
            port = sub(auth, close + 2, auth.n);
            has_port = true;
        }
        if (!is_ipv6(host)) return fail(c, "not an IPv6 address: \"%s\"", show(host).s);
    } else {
        size_t colon = find(auth, ':');
        host = sub(auth, 0, colon);
        if (colon < auth.n) {
            port = sub(auth, colon + 1, auth.n);
            has_port = true;
        }
        if (host.n == 0) return fail(c, "has no host");
        if (!is_hostname(host)) return fail(c, "not a valid host name: \"%s\"", show(host).s);
    }
    if (host.n >= sizeof e->host)
        return fail(c, "host longer than %d characters", static_cast<int>(sizeof e->host) - 1);
    if (has_port && !parse_port(c, port, &e->port)) return false;
    Span path = sub(v, slash, v.n);
    while (path.n && path.p[path.n - 1] == '/') path.n--;
    if (path.n >= sizeof e->base_path)
        return fail(c, "path longer than %d characters", static_cast<int>(sizeof e->base_path) - 1);
    copy_str(e->url, sizeof e->url, v.p, v.n);
    copy_str(e->host, sizeof e->host, host.p, host.n);
    copy_str(e->base_path, sizeof e->base_path, path.p, path.n);
    return true;
}

bool check_model_name(Ctx& c, Span m) {
    if (m.n == 0) return fail(c, "empty model name");
    if (m.n >= EW_CAP_MODEL_NAME)
        return fail(c, "model name longer than %d characters: \"%s\"", EW_CAP_MODEL_NAME - 1, show(m).s);
    for (size_t i = 0; i < m.n; i++) {
        unsigned char ch = static_cast<unsigned char>(m.p[i]);
        if (ch <= ' ' || ch >= 0x7f || ch == ',' || ch == '"' || ch == '\\' || ch == '=')
            return fail(c, "model name \"%s\" has a space, comma, quote, backslash, '=' or non-ASCII character",
                        show(m).s);
    }
    return true;
}

bool parse_models(Ctx& c, Span v, char (*dst)[EW_CAP_MODEL_NAME], uint32_t cap, uint32_t* count) {
    *count = 0;
    size_t start = 0;
    for (size_t i = 0; i <= v.n; i++) {
        if (i < v.n && v.p[i] != ',') continue;
        Span m = trim(sub(v, start, i));
        start = i + 1;
        if (m.n == 0) return fail(c, "empty model name in the list");
        if (!check_model_name(c, m)) return false;
        for (uint32_t j = 0; j < *count; j++)
            if (span_eq(m, dst[j])) return fail(c, "\"%s\" is listed twice", dst[j]);
        if (*count == cap) return fail(c, "too many models (at most %u)", static_cast<unsigned>(cap));
        copy_str(dst[*count], EW_CAP_MODEL_NAME, m.p, m.n);
        ++*count;
    }
    return true;
}

bool copy_path(Ctx& c, Span v, char* dst, size_t cap) {
    if (v.n >= cap) return fail(c, "path longer than %d characters", static_cast<int>(cap) - 1);
    copy_str(dst, cap, v.p, v.n);
    return true;
}

bool set_inline_key(Ctx& c, Span v, char* dst, size_t cap) {
    if (v.n >= cap) return fail(c, "key longer than %d characters", static_cast<int>(cap) - 1);
    if (!key_chars_ok(v.p, v.n)) return fail(c, "a key must be printable ASCII without spaces");
    copy_str(dst, cap, v.p, v.n);
    return true;
}

bool load_key_env(Ctx& c, Span name, char* dst, size_t cap) {
    char var[64];
    bool ok = name.n > 0 && name.n < sizeof var && !is_digit(name.p[0]);
    for (size_t i = 0; ok && i < name.n; i++) ok = is_alnum(name.p[i]) || name.p[i] == '_';
    if (!ok) return fail(c, "not a valid environment variable name: \"%s\"", show(name).s);
    copy_str(var, sizeof var, name.p, name.n);
    dst[0] = '\0';
    const char* val = (c.src && c.src->getenv) ? c.src->getenv(var, c.src->user) : nullptr;
    if (!val || !val[0]) {
        warnf(c, "%s is %s; requests to this endpoint go without a key", var, val ? "empty" : "not set");
        return true;
    }
    size_t n = 0;
    while (n < cap && val[n]) n++;
    if (n >= cap) return fail(c, "the value of %s is longer than %d characters", var, static_cast<int>(cap) - 1);
    if (!key_chars_ok(val, n)) return fail(c, "the value of %s is not a valid key (printable ASCII, no spaces)", var);
    copy_str(dst, cap, val, n);
    return true;
}

bool load_key_file(Ctx& c, const char* path, char* dst, size_t cap) {
    char buf[EW_CAP_SECRET + 64];
    size_t n = 0;
    bool private_ok = true;
    int rc = ENOSYS;
    if (c.src && c.src->read_file) rc = c.src->read_file(path, buf, sizeof buf, &n, &private_ok, c.src->user);
    if (n > sizeof buf) n = sizeof buf;
    bool ok = false;
    Span k{buf, n};
    while (k.n && (is_blank(k.p[k.n - 1]) || k.p[k.n - 1] == '\n' || k.p[k.n - 1] == '\r')) k.n--;
    while (k.n && (is_blank(k.p[0]) || k.p[0] == '\n' || k.p[0] == '\r')) k.p++, k.n--;
    if (rc != 0) {
        const char* text = errno_text(rc);
        if (text)
            fail(c, "%s: %s", path, text);
        else
            fail(c, "%s: error %d", path, rc);
    } else if (!private_ok) {
        fail(c, "%s is readable by group or others; chmod 600 it", path);
    } else if (n >= sizeof buf) {
        fail(c, "%s is too large to hold a key", path);
    } else if (k.n == 0) {
        fail(c, "%s is empty", path);
    } else if (k.n >= cap) {
        fail(c, "%s: key longer than %d characters", path, static_cast<int>(cap) - 1);
    } else if (!key_chars_ok(k.p, k.n)) {
        fail(c, "%s does not hold a valid key (printable ASCII, no spaces)", path);
    } else {
        copy_str(dst, cap, k.p, k.n);
        ok = true;
    }
    wipe(buf, sizeof buf);
    return ok;
}

// systemd credentials (LoadCredential=NAME:...): the manager puts each in a file of
// $CREDENTIALS_DIRECTORY readable by the service alone. NAME is a file name there, so no '/',
// no leading '.', and the characters systemd's own examples use.
bool load_key_credential(Ctx& c, Span name, char* dst, size_t cap) {
    bool ok = name.n > 0 && name.n <= kMaxCredentialName && name.p[0] != '.';
    for (size_t i = 0; ok && i < name.n; i++)
        ok = is_alnum(name.p[i]) || name.p[i] == '_' || name.p[i] == '-' || name.p[i] == '.' || name.p[i] == '@';
    if (!ok)
        return fail(c, "not a valid credential name: \"%s\" (letters, digits, _ - . @; at most %u)", show(name).s,
                    static_cast<unsigned>(kMaxCredentialName));
    const char* dir = (c.src && c.src->getenv) ? c.src->getenv("CREDENTIALS_DIRECTORY", c.src->user) : nullptr;
    if (!dir || !dir[0])
        return fail(c, "CREDENTIALS_DIRECTORY is not set; run under systemd with LoadCredential=%s:FILE",
                    show(name).s);
    if (dir[0] != '/') return fail(c, "CREDENTIALS_DIRECTORY is not an absolute path");
    char path[EW_CAP_PATH];
    StrBuf p(path, sizeof path);
    p.append(dir);
    if (p.len && path[p.len - 1] != '/') p.append("/");
    p.append(name.p, name.n);
    if (p.overflow)
        return fail(c, "CREDENTIALS_DIRECTORY/%s is longer than %d characters", show(name).s,
                    static_cast<int>(sizeof path) - 1);
    return load_key_file(c, path, dst, cap);
}

// For the readers of other sections (config_telemetry.cpp): the same rules as endpoint urls.
bool host_name_ok(Span s) { return is_hostname(s); }
bool ipv6_literal_ok(Span s) { return is_ipv6(s); }
bool parse_port_value(Ctx& c, Span v, uint16_t* out) { return parse_port(c, v, out); }

}  // namespace ini
}  // namespace ew
