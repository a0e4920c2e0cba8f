#include "core/multipart.h"

#include <string.h>

namespace ew {
namespace {

constexpr size_t kMaxBoundary = 70;     // RFC 2046
constexpr size_t kMaxHeaderLine = 1024;  // one part header line

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

bool starts_with_ci(const char* s, size_t n, const char* lit) {
    size_t k = strlen(lit);
    if (n < k) return false;
    for (size_t i = 0; i < k; i++)
        if (lower(s[i]) != lit[i]) return false;
    return true;
}

bool boundary_char(char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return strchr("'()+_,-./:=? ", c) != nullptr && c != '\0';
}

// The first "\r\n--<boundary>" at or after `from`; n when none.
size_t find_delimiter(const char* body, size_t n, size_t from, const char* b, size_t bl) {
    size_t need = 4 + bl;
    size_t i = from;
    while (i + need <= n) {
        const void* cr = memchr(body + i, '\r', n - i - need + 1);
        if (cr == nullptr) return n;
        i = static_cast<size_t>(static_cast<const char*>(cr) - body);
        if (body[i + 1] == '\n' && body[i + 2] == '-' && body[i + 3] == '-' && memcmp(body + i + 4, b, bl) == 0)
            return i;
        i++;
    }
    return n;
}

bool is_ows(char c) { return c == ' ' || c == '\t'; }

// The value of the parameter `key` (e.g. "name=") among the ";"-separated parameters of a
// header value, from byte `i` on. False when it is absent, escaped (a backslash inside the
// quotes: no value we look for) or an unterminated quote.
bool header_param(const char* v, size_t n, size_t i, const char* key, const char** out, size_t* out_len) {
    size_t klen = strlen(key);
    while (i < n) {
        if (v[i] != ';') {
            i++;
            continue;
        }
        i++;
        while (i < n && is_ows(v[i])) i++;
        if (!starts_with_ci(v + i, n - i, key)) continue;
        i += klen;
        const char* val = v + i;
        size_t len = 0;
        if (i < n && v[i] == '"') {
            val++;
            i++;
            while (i < n && v[i] != '"') {
                if (v[i] == '\\') return false;
                i++;
                len++;
            }
            if (i >= n) return false;
        } else {
            while (i < n && v[i] != ';' && !is_ows(v[i])) {
                i++;
                len++;
            }
        }
        *out = val;
        *out_len = len;
        return true;
    }
    return false;
}

// Does this Content-Disposition value (after the colon) name the field?
bool disposition_names(const char* v, size_t n, const char* field) {
    size_t i = 0;
    while (i < n && is_ows(v[i])) i++;
    if (!starts_with_ci(v + i, n - i, "form-data")) return false;
    const char* val = nullptr;
    size_t len = 0;
    if (!header_param(v, n, i + 9, "name=", &val, &len)) return false;
    size_t flen = strlen(field);
    return len == flen && memcmp(val, field, flen) == 0;
}

}  // namespace

const char* to_string(MultipartStatus s) {
    switch (s) {
        case MultipartStatus::ok: return "ok";
        case MultipartStatus::no_boundary: return "no multipart/form-data boundary";
        case MultipartStatus::bad_framing: return "malformed multipart framing";
        case MultipartStatus::bad_part_header: return "malformed multipart part header";
        case MultipartStatus::too_many_parts: return "too many multipart parts";
    }
    return "?";
}

bool multipart_boundary(const char* ct, size_t n, const char** boundary, size_t* boundary_len) {
    size_t i = 0;
    while (i < n && is_ows(ct[i])) i++;
    if (!starts_with_ci(ct + i, n - i, "multipart/form-data")) return false;
    i += 19;
    if (i < n && ct[i] != ';' && !is_ows(ct[i])) return false;  // multipart/form-dataX
    const char* b = nullptr;
    size_t len = 0;
    if (!header_param(ct, n, i, "boundary=", &b, &len)) return false;
    if (len == 0 || len > kMaxBoundary || b[len - 1] == ' ') return false;
    for (size_t k = 0; k < len; k++)
        if (!boundary_char(b[k])) return false;
    *boundary = b;
    *boundary_len = len;
    return true;
}

MultipartStatus multipart_find_field(const char* body, size_t n, const char* b, size_t bl, const char* field,
                                     MultipartSpan* span, int* count) {
    *count = 0;
    if (bl == 0 || bl > kMaxBoundary) return MultipartStatus::no_boundary;
    size_t pos;  // just after a delimiter
    if (n >= 2 + bl && body[0] == '-' && body[1] == '-' && memcmp(body + 2, b, bl) == 0) {
        pos = 2 + bl;
    } else {
        size_t d = find_delimiter(body, n, 0, b, bl);  // after a preamble
        if (d == n) return MultipartStatus::bad_framing;
        pos = d + 4 + bl;
    }
    int parts = 0;
    for (;;) {
        if (pos + 2 <= n && body[pos] == '-' && body[pos + 1] == '-') return MultipartStatus::ok;  // the close
        while (pos < n && is_ows(body[pos])) pos++;  // transport padding
        if (pos + 2 > n || body[pos] != '\r' || body[pos + 1] != '\n') return MultipartStatus::bad_framing;
        pos += 2;
        if (++parts > EW_MULTIPART_MAX_PARTS) return MultipartStatus::too_many_parts;
        // The part's header lines, up to an empty line.
        bool named = false;
        for (;;) {
            size_t line = pos;
            while (pos < n && body[pos] != '\r') {
                unsigned char c = static_cast<unsigned char>(body[pos]);
                if ((c < 0x20 && c != '\t') || c > 0x7e) return MultipartStatus::bad_part_header;
                if (pos - line >= kMaxHeaderLine) return MultipartStatus::bad_part_header;
                pos++;
            }
            if (pos + 2 > n || body[pos + 1] != '\n') return MultipartStatus::bad_framing;
            size_t len = pos - line;
            pos += 2;
            if (len == 0) break;
            if (starts_with_ci(body + line, len, "content-disposition:") &&
                disposition_names(body + line + 20, len - 20, field))
                named = true;
        }
        size_t end = find_delimiter(body, n, pos, b, bl);
        if (end == n) return MultipartStatus::bad_framing;
        if (named) {
            if (*count == 0) {
                span->begin = pos;
                span->end = end;
            }
            (*count)++;
        }
        pos = end + 4 + bl;
    }
}

}  // namespace ew
