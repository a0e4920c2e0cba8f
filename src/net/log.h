// One line per event: "<level> <event> key=value ...". Secrets are never passed here.
#pragma once
#include "core/config.h"

namespace ew {

void log_set_level(LogLevel level);
bool log_enabled(LogLevel level);
void logf(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

#define EW_LOG_ERROR(...) ::ew::logf(::ew::LogLevel::error, __VA_ARGS__)
#define EW_LOG_WARN(...) ::ew::logf(::ew::LogLevel::warn, __VA_ARGS__)
#define EW_LOG_INFO(...) \
    do { if (::ew::log_enabled(::ew::LogLevel::info)) ::ew::logf(::ew::LogLevel::info, __VA_ARGS__); } while (0)
#define EW_LOG_DEBUG(...) \
    do { if (::ew::log_enabled(::ew::LogLevel::debug)) ::ew::logf(::ew::LogLevel::debug, __VA_ARGS__); } while (0)

}  // namespace ew
