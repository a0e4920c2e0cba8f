// Model name and upstream path checks. See request_check.h.
#include "core/request_check.h"

namespace ew {

namespace {

bool printable(unsigned char c) { return c >= 0x20 && c <= 0x7e; }

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool refuse(const char** why, const char* reason) {
    if (why) *why = reason;
    return false;
}

// One path segment [s, s + n): no '/' inside. Decodes percent escapes only to look at them.
bool segment_ok(const char* s, size_t n, const char** why) {
    if (n == 0) return refuse(why, "empty path segment");
    size_t dots = 0;     // decoded '.' count
    size_t decoded = 0;  // decoded length
    for (size_t i = 0; i < n; i++) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c == '%') {
            if (i + 2 >= n) return refuse(why, "bad percent escape");
            int hi = hex_value(s[i + 1]);
            int lo = hex_value(s[i + 2]);
            if (hi < 0 || lo < 0) return refuse(why, "bad percent escape");
            c = static_cast<unsigned char>(hi * 16 + lo);
            i += 2;
            if (c == '/') return refuse(why, "encoded slash");
            if (c == '\\') return refuse(why, "backslash");
            if (c < 0x20 || c == 0x7f) return refuse(why, "control byte");
        } else {
            if (c == '\\') return refuse(why, "backslash");
            if (c < 0x20 || c == 0x7f) return refuse(why, "control byte");
            if (c >= 0x80) return refuse(why, "non-ASCII byte");
            if (c == ' ') return refuse(why, "space");
            if (c == '#') return refuse(why, "fragment");
        }
        decoded++;
        if (c == '.') dots++;
    }
    if (dots == decoded && decoded <= 2) return refuse(why, "dot-segment");
    return true;
}

}  // namespace

ModelNameCheck model_name_check(const char* s, size_t n) {
    if (!s || n == 0) return ModelNameCheck::empty;
    if (n > EW_CAP_MODEL_NAME - 1) return ModelNameCheck::too_long;
    for (size_t i = 0; i < n; i++) {
        if (!printable(static_cast<unsigned char>(s[i]))) return ModelNameCheck::bad_byte;
    }
    return ModelNameCheck::ok;
}

const char* to_string(ModelNameCheck c) {
    switch (c) {
        case ModelNameCheck::ok: return "ok";
        case ModelNameCheck::empty: return "empty";
        case ModelNameCheck::too_long: return "too_long";
        case ModelNameCheck::bad_byte: return "bad_byte";
    }
    return "?";
}

bool upstream_path_check(const char* path, size_t n, const char** why) {
    if (why) *why = "";
    if (!path || n < 4 || path[0] != '/' || path[1] != 'v' || path[2] != '1' || path[3] != '/')
        return refuse(why, "path must start with /v1/");
    size_t end = 4;  // end of the path part: the '?' or n
    while (end < n && path[end] != '?') end++;
    size_t start = 4;
    for (size_t i = 4; i <= end; i++) {
        if (i < end && path[i] != '/') continue;
        if (!segment_ok(path + start, i - start, why)) return false;
        start = i + 1;
    }
    for (size_t i = end + 1; i < n; i++) {
        unsigned char c = static_cast<unsigned char>(path[i]);
        if (c == ' ') return refuse(why, "space in query");
        if (!printable(c)) return refuse(why, c >= 0x80 ? "non-ASCII byte in query" : "control byte in query");
        if (c == '#') return refuse(why, "fragment");
        if (c == '%') {
            int hi = i + 2 < n ? hex_value(path[i + 1]) : -1;
            int lo = i + 2 < n ? hex_value(path[i + 2]) : -1;
            if (hi < 0 || lo < 0) return refuse(why, "bad percent escape in query");
            int v = hi * 16 + lo;
            if (v < 0x20 || v == 0x7f) return refuse(why, "control byte in query");
            i += 2;
        }
    }
    return true;
}

}  // namespace ew
