#include "core/strbuf.h"

#include <stdio.h>
#include <string.h>

namespace ew {

void StrBuf::append(const char* s, size_t n) {
    if (n > room()) {
        n = room();
        overflow = true;
    }
    memcpy(data + len, s, n);
    len += n;
    if (cap) data[len] = '\0';
}

void StrBuf::append(const char* s) { append(s, strlen(s)); }

void StrBuf::vappendf(const char* fmt, va_list ap) {
    if (cap == 0) {
        overflow = true;
        return;
    }
    int n = vsnprintf(data + len, cap - len, fmt, ap);
    if (n < 0) {
        overflow = true;
        data[len] = '\0';
        return;
    }
    if (static_cast<size_t>(n) >= cap - len) {
        overflow = true;
        len = cap - 1;
    } else {
        len += static_cast<size_t>(n);
    }
}

void StrBuf::appendf(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vappendf(fmt, ap);
    va_end(ap);
}

void StrBuf::append_json_escaped(const char* s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', static_cast<char>(c)};
            append(e, 2);
        } else if (c == '\n') {
            append("\\n", 2);
        } else if (c == '\r') {
            append("\\r", 2);
        } else if (c == '\t') {
            append("\\t", 2);
        } else if (c < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            append(e, 6);
        } else {
            append(reinterpret_cast<const char*>(&c), 1);
        }
    }
}

void StrBuf::append_json_escaped(const char* s) { append_json_escaped(s, strlen(s)); }

bool copy_str(char* dst, size_t cap, const char* src, size_t n) {
    if (cap == 0) return false;
    bool fits = n < cap;
    if (!fits) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return fits;
}

bool copy_str(char* dst, size_t cap, const char* src) { return copy_str(dst, cap, src, strlen(src)); }

}  // namespace ew
