#include "core/strbuf.h"

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

// Our own formatter: the core must not depend on the C library's printf, which on
// newlib-nano lacks %llu and floats and pulls in malloc. Supports what edgeway uses:
// flags '-' and '0', width, precision, length hh h l ll z, conversions d i u x X c s f g %.
namespace {

void pad(StrBuf* out, char c, size_t n) {
    static const char kZeros[] = "0000000000000000";
    static const char kSpaces[] = "                ";
    const char* run = c == '0' ? kZeros : kSpaces;
    while (n > 0) {
        size_t k = n < 16 ? n : 16;
        out->append(run, k);
        n -= k;
    }
}

// Writes `digits` (len bytes) with sign, width and flags applied.
void emit(StrBuf* out, const char* sign, size_t sl, const char* digits, size_t len, size_t width, bool left,
          bool zero) {
    size_t total = sl + len;
    if (width <= total) {  // the common case: no padding
        if (sl) out->append(sign, sl);
        out->append(digits, len);
        return;
    }
    if (!left && !zero) pad(out, ' ', width - total);
    out->append(sign, sl);
    if (!left && zero) pad(out, '0', width - total);
    out->append(digits, len);
    if (left) pad(out, ' ', width - total);
}

size_t utoa(unsigned long long v, unsigned base, bool upper, char* buf /* >= 24 */) {
    const char* d = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char tmp[24];
    size_t n = sizeof tmp;
    if (base == 10) {
        do {
            tmp[--n] = static_cast<char>('0' + v % 10);
            v /= 10;
        } while (v);
    } else {
        do {
            tmp[--n] = d[v % base];
            v /= base;
        } while (v);
    }
    memcpy(buf, tmp + n, sizeof tmp - n);
    return sizeof tmp - n;
}

// Fixed-point text of |v| with `prec` decimals (prec <= 9); values beyond 1.8e19 saturate.
size_t ftoa(double v, unsigned prec, char* buf /* >= 40 */) {
    static const double kPow[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
    if (prec > 9) prec = 9;
    double scaled = v * kPow[prec] + 0.5;
    unsigned long long whole;
    unsigned long long frac;
    if (scaled >= 1.8e19) {
        whole = 18446744073709551615ULL;
        frac = 0;
    } else {
        unsigned long long all = static_cast<unsigned long long>(scaled);
        unsigned long long p = static_cast<unsigned long long>(kPow[prec]);
        whole = all / p;
        frac = all % p;
    }
    size_t n = utoa(whole, 10, false, buf);
    if (prec > 0) {
        buf[n++] = '.';
        char f[24];
        size_t fl = utoa(frac, 10, false, f);
        for (size_t i = fl; i < prec; i++) buf[n++] = '0';
        for (size_t i = 0; i < fl; i++) buf[n++] = f[i];
    }
    return n;
}

}  // namespace

void StrBuf::vappendf(const char* fmt, va_list ap) {
    for (const char* p = fmt; *p; p++) {
        if (*p != '%') {
            size_t run = strcspn(p, "%");  // literal text up to the next conversion, in one piece
            append(p, run);
            p += run - 1;
            continue;
        }
        p++;
        bool left = false, zero = false;
        for (;; p++) {
            if (*p == '-') left = true;
            else if (*p == '0') zero = true;
            else break;
        }
        size_t width = 0;
        while (*p >= '0' && *p <= '9') width = width * 10 + static_cast<size_t>(*p++ - '0');
        int prec = -1;
        if (*p == '.') {
            prec = 0;
            p++;
            while (*p >= '0' && *p <= '9') prec = prec * 10 + (*p++ - '0');
        }
        int length = 0;  // 0 int, 1 long, 2 long long, 3 size_t
        if (*p == 'h') {
            p++;
            if (*p == 'h') p++;
        } else if (*p == 'l') {
            p++;
            length = 1;
            if (*p == 'l') {
                p++;
                length = 2;
            }
        } else if (*p == 'z') {
            p++;
            length = 3;
        }
        char buf[48];
        size_t n = 0;
        switch (*p) {
            case 'd':
            case 'i': {
                long long v = length == 2 ? va_arg(ap, long long)
                              : length == 1 ? va_arg(ap, long)
                              : length == 3 ? static_cast<long long>(va_arg(ap, size_t))
                                            : va_arg(ap, int);
                unsigned long long mag = v < 0 ? 0ULL - static_cast<unsigned long long>(v)
                                               : static_cast<unsigned long long>(v);
                n = utoa(mag, 10, false, buf);
                emit(this, "-", v < 0 ? 1 : 0, buf, n, width, left, zero);
                break;
            }
            case 'u':
            case 'x':
            case 'X': {
                unsigned long long v = length == 2 ? va_arg(ap, unsigned long long)
                                       : length == 1 ? va_arg(ap, unsigned long)
                                       : length == 3 ? va_arg(ap, size_t)
                                                     : va_arg(ap, unsigned);
                n = utoa(v, *p == 'u' ? 10 : 16, *p == 'X', buf);
                emit(this, "", 0, buf, n, width, left, zero);
                break;
            }
            case 'c': {
                buf[0] = static_cast<char>(va_arg(ap, int));
                emit(this, "", 0, buf, 1, width, left, false);
                break;
            }
            case 's': {
                const char* str = va_arg(ap, const char*);
                if (str == nullptr) str = "(null)";
                size_t slen = strlen(str);
                if (prec >= 0 && static_cast<size_t>(prec) < slen) slen = static_cast<size_t>(prec);
                emit(this, "", 0, str, slen, width, left, false);
                break;
            }
            case 'f':
            case 'g': {
                double v = va_arg(ap, double);
                if (v != v) {
                    emit(this, "", 0, "nan", 3, width, left, false);
                    break;
                }
                bool neg = v < 0;
                if (neg) v = -v;
                if (*p == 'f') {
                    n = ftoa(v, prec < 0 ? 6 : static_cast<unsigned>(prec), buf);
                } else {
                    // %g as used here: shortest fixed text up to 6 decimals.
                    n = ftoa(v, 6, buf);
                    while (n > 0 && buf[n - 1] == '0') n--;
                    if (n > 0 && buf[n - 1] == '.') n--;
                }
                emit(this, "-", neg ? 1 : 0, buf, n, width, left, zero);
                break;
            }
            case '%':
                append("%", 1);
                break;
            default:
                // Unknown conversion: show it as written (a bug to see, never undefined behaviour).
                append("%", 1);
                if (*p) append(p, 1);
                else p--;
                break;
        }
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
    size_t run = 0;  // start of the bytes that need no escape, appended as one piece
    for (size_t i = 0; i < n; i++) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        if (i > run) append(s + run, i - run);
        run = i + 1;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', static_cast<char>(c)};
            append(e, 2);
        } else if (c == '\n') {
            append("\\n", 2);
        } else if (c == '\r') {
            append("\\r", 2);
        } else if (c == '\t') {
            append("\\t", 2);
        } else {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            append(e, 6);
        }
    }
    if (n > run) append(s + run, n - run);
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
