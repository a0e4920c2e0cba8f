// A caller-owned text buffer: {pointer, capacity, used}. Appends never overflow; once
// something did not fit, `overflow` stays set and the caller reports it.
#pragma once
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

namespace ew {

struct StrBuf {
    char* data;
    size_t cap;
    size_t len = 0;
    bool overflow = false;

    StrBuf(char* buf, size_t capacity) : data(buf), cap(capacity) {
        if (cap) data[0] = '\0';
    }
    void clear() {
        len = 0;
        overflow = false;
        if (cap) data[0] = '\0';
    }
    void append(const char* s, size_t n);
    void append(const char* s);
    void appendf(const char* fmt, ...) __attribute__((format(printf, 2, 3)));
    void vappendf(const char* fmt, va_list ap);
    // JSON string contents (no quotes) with escapes.
    void append_json_escaped(const char* s, size_t n);
    void append_json_escaped(const char* s);
    size_t room() const { return cap > len + 1 ? cap - len - 1 : 0; }
};

// Bounded copy that always terminates; returns false when truncated.
bool copy_str(char* dst, size_t cap, const char* src, size_t n);
bool copy_str(char* dst, size_t cap, const char* src);

}  // namespace ew
