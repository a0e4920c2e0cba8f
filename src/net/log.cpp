#include "net/log.h"

#include <stdarg.h>
#include <string.h>

#include "core/strbuf.h"
#include "pal.h"

namespace ew {

static LogLevel g_level = LogLevel::info;

// "2026-11-27T05:17:00.123Z " from Unix milliseconds (days-from-civil inverted; no libc
// time functions, which an RTOS may lack). A device without a clock (0) gets "+<uptime>s".
static void append_time(StrBuf* out) {
    uint64_t ms = pal::wall_ms();
    if (ms == 0) {
        uint64_t up = pal::now_ms();
        out->appendf("+%llu.%03llus ", static_cast<unsigned long long>(up / 1000),
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
    out->appendf("%04d-%02d-%02dT%02u:%02u:%02u.%03uZ ", static_cast<int>(y), static_cast<int>(m),
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

bool log_enabled(LogLevel level) { return static_cast<int>(level) <= static_cast<int>(g_level); }

void logf(LogLevel level, const char* fmt, ...) {
    if (!log_enabled(level)) return;
    char line[512];
    StrBuf out(line, sizeof line);
    append_time(&out);
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
