#include "net/log.h"

#include <stdarg.h>
#include <string.h>

#include "core/strbuf.h"
#include "pal.h"

namespace ew {

static LogLevel g_level = LogLevel::info;
static LogFormat g_format = LogFormat::text;

// "2026-11-27T05:17:00.123Z " from Unix milliseconds (days-from-civil inverted; no libc
// time functions, which an RTOS may lack). A device without a clock (0) gets "+<uptime>s".
static void append_time(StrBuf* out) {
    uint64_t ms = pal::wall_ms();
    if (ms == 0) {
        uint64_t up = pal::now_ms();
        out->appendf("+%llu.%03llus", static_cast<unsigned long long>(up / 1000),
                     static_cast<unsigned long long>(up % 1000));
        return;
    }
    int64_t days = static_cast<int64_t>(ms / 86400000);
    uint64_t in_day = ms % 86400000;
    int64_t z = days + 719468;
    int64_t era = z / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = yoe + era * 400 + (m <= 2 ? 1 : 0);
    out->appendf("%04d-%02d-%02dT%02u:%02u:%02u.%03uZ", static_cast<int>(y), static_cast<int>(m),
                 static_cast<int>(d), static_cast<unsigned>(in_day / 3600000),
                 static_cast<unsigned>(in_day / 60000 % 60), static_cast<unsigned>(in_day / 1000 % 60),
                 static_cast<unsigned>(in_day % 1000));
}

static pal::LogPriority priority_of(LogLevel level) {
    switch (level) {
    case LogLevel::error: return pal::LogPriority::err;
    case LogLevel::warn: return pal::LogPriority::warning;
    case LogLevel::info: return pal::LogPriority::info;
    case LogLevel::debug: return pal::LogPriority::debug;
    }
    return pal::LogPriority::info;
}

void log_set_level(LogLevel level) { g_level = level; }
void log_set_format(LogFormat format) { g_format = format; }

bool log_enabled(LogLevel level) { return static_cast<int>(level) <= static_cast<int>(g_level); }

namespace {

bool is_key_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }

bool is_number(const char* p, size_t n) {
    size_t i = 0, digits = 0;
    bool dot = false;
    if (i < n && p[i] == '-') i++;
    for (; i < n; i++) {
        if (p[i] >= '0' && p[i] <= '9') digits++;
        else if (p[i] == '.' && !dot && digits) dot = true;
        else return false;
    }
    return digits > 0 && p[n - 1] != '.' && !(n > 1 && p[0] == '0' && p[1] != '.') &&
           !(n > 2 && p[0] == '-' && p[1] == '0' && p[2] != '.');
}

// Where a `key=` token starts at p (a run of key characters, then '='), or 0.
size_t key_len(const char* p, size_t n) {
    size_t i = 0;
    while (i < n && is_key_char(p[i])) i++;
    return (i > 0 && i < n && p[i] == '=') ? i : 0;
}

}  // namespace

// Words go into "msg"; key=value and key="text" pairs become members. A quoted value ends
// at the last quote before the next ` key=` (error texts may hold quotes themselves).
void log_json_line(const char* time, const char* level, const char* text, size_t len, StrBuf* out) {
    out->append("{\"time\":\"");
    out->append_json_escaped(time);
    out->append("\",\"level\":\"");
    out->append_json_escaped(level);
    out->append("\",\"msg\":\"");
    // First pass: the words.
    bool first_word = true;
    size_t i = 0;
    while (i < len) {
        while (i < len && text[i] == ' ') i++;
        if (i >= len) break;
        size_t k = key_len(text + i, len - i);
        size_t end = i;
        if (k && i + k + 1 < len && text[i + k + 1] == '"') {
            // Skip a quoted value: to the quote followed by " key=" or the end.
            size_t j = i + k + 2;
            size_t close = len;
            for (size_t q = j; q < len; q++) {
                if (text[q] != '"') continue;
                size_t after = q + 1;
                if (after == len || (text[after] == ' ' && key_len(text + after + 1, len - after - 1))) {
                    close = q;
                    break;
                }
            }
            end = close < len ? close + 1 : len;
        } else {
            while (end < len && text[end] != ' ') end++;
        }
        if (!k) {
            if (!first_word) out->append(" ");
            out->append_json_escaped(text + i, end - i);
            first_word = false;
        }
        i = end;
    }
    out->append("\"");
    // Second pass: the pairs.
    i = 0;
    while (i < len) {
        while (i < len && text[i] == ' ') i++;
        if (i >= len) break;
        size_t k = key_len(text + i, len - i);
        size_t vstart = i + k + 1, vend = vstart, end = i;
        bool quoted = k && vstart < len && text[vstart] == '"';
        if (quoted) {
            vstart++;
            vend = len;
            for (size_t q = vstart; q < len; q++) {
                if (text[q] != '"') continue;
                size_t after = q + 1;
                if (after == len || (text[after] == ' ' && key_len(text + after + 1, len - after - 1))) {
                    vend = q;
                    break;
                }
            }
            end = vend < len ? vend + 1 : len;
        } else {
            while (end < len && text[end] != ' ') end++;
            vend = end;
        }
        if (k) {
            out->append(",\"");
            out->append_json_escaped(text + i, k);
            out->append("\":");
            if (!quoted && is_number(text + vstart, vend - vstart)) {
                out->append(text + vstart, vend - vstart);
            } else {
                out->append("\"");
                out->append_json_escaped(text + vstart, vend - vstart);
                out->append("\"");
            }
        }
        i = end;
    }
    out->append("}");
}

void logf(LogLevel level, const char* fmt, ...) {
    if (!log_enabled(level)) return;
    char line[512];
    StrBuf out(line, sizeof line);
    char when[40];
    StrBuf t(when, sizeof when);
    append_time(&t);
    if (g_format == LogFormat::json) {
        va_list ap;
        va_start(ap, fmt);
        out.vappendf(fmt, ap);
        va_end(ap);
        char json[1200];
        StrBuf j(json, sizeof json);
        log_json_line(when, to_string(level), out.data, out.len, &j);
        pal::log_line(priority_of(level), j.data, j.len);
        return;
    }
    out.append(when);
    out.append(" ");
    out.append(to_string(level));
    out.append(" ");
    va_list ap;
    va_start(ap, fmt);
    out.vappendf(fmt, ap);
    va_end(ap);
    pal::log_line(priority_of(level), out.data, out.len);
}

void log_bare(LogLevel level, const char* line) { pal::log_line(priority_of(level), line, strlen(line)); }

void log_state_change(const char* endpoint, HealthState from, HealthState to, double score, const char* via) {
    // Worse is a warning (to DOWN; HEALTHY to DEGRADED); better (DOWN to DEGRADED, to HEALTHY) and
    // rate limits (the upstream asked to wait, nothing is broken) are info.
    bool worse = to == HealthState::down || (to == HealthState::degraded && from == HealthState::healthy);
    LogLevel level = worse ? LogLevel::warn : LogLevel::info;
    logf(level, "endpoint=%s state %s -> %s%s%s%s score=%.1f", endpoint, to_string(from), to_string(to),
         via[0] ? " (" : "", via, via[0] ? ")" : "", score);
}

}  // namespace ew
