#include "net/log.h"

#include <stdarg.h>

#include "core/strbuf.h"
#include "pal.h"

namespace ew {

static LogLevel g_level = LogLevel::info;

void log_set_level(LogLevel level) { g_level = level; }

bool log_enabled(LogLevel level) { return static_cast<int>(level) <= static_cast<int>(g_level); }

void logf(LogLevel level, const char* fmt, ...) {
    if (!log_enabled(level)) return;
    char line[512];
    StrBuf out(line, sizeof line);
    out.append(to_string(level));
    out.append(" ");
    va_list ap;
    va_start(ap, fmt);
    out.vappendf(fmt, ap);
    va_end(ap);
    pal::log_line(out.data, out.len);
}

}  // namespace ew
