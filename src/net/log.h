// One line per event: "<time> <level> <event words> key=value key="text" ...". Secrets are
// never passed here. With log_format = json the same line goes out as one JSON object:
// {"time":..,"level":..,"msg":"<the words>","key":"value",...}, numbers as numbers.
// Each level has its syslog priority (error err, warn warning, info info, debug debug), which
// the PAL's sink uses where it has levels (the journal's "<N>" prefix, an RTOS's log).
#pragma once
#include <stddef.h>

#include "core/config.h"
#include "core/health.h"

namespace ew {

struct StrBuf;

void log_set_level(LogLevel level);
void log_set_format(LogFormat format);
bool log_enabled(LogLevel level);
void logf(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
// A line as it is, without time or level, at the priority of `level` (--check-config's
// bare "FILE:LINE: key: message" lines, which scripts and editors parse).
void log_bare(LogLevel level, const char* line);

// An endpoint's health changed. The level follows what it means to an operator: getting worse
// (DOWN, or HEALTHY to DEGRADED) is a warning; a recovery (DOWN to DEGRADED, to HEALTHY) or a
// rate limit is info. `via` says what caused it ("" for a probe, "traffic" for a forwarded request).
void log_state_change(const char* endpoint, HealthState from, HealthState to, double score, const char* via);
// The JSON form of one event's text (after time and level), for log_format = json.
void log_json_line(const char* time, const char* level, const char* text, size_t len, StrBuf* out);

#define EW_LOG_ERROR(...) ::ew::logf(::ew::LogLevel::error, __VA_ARGS__)
#define EW_LOG_WARN(...) ::ew::logf(::ew::LogLevel::warn, __VA_ARGS__)
#define EW_LOG_INFO(...) \
    do { if (::ew::log_enabled(::ew::LogLevel::info)) ::ew::logf(::ew::LogLevel::info, __VA_ARGS__); } while (0)
#define EW_LOG_DEBUG(...) \
    do { if (::ew::log_enabled(::ew::LogLevel::debug)) ::ew::logf(::ew::LogLevel::debug, __VA_ARGS__); } while (0)

}  // namespace ew
