#include "core/json_scan.h"

#include <string.h>

#include "core/strbuf.h"

namespace ew {

namespace {

static_assert(EW_CAP_JSON_DEPTH > 0, "EW_CAP_JSON_DEPTH must be positive");

// A cursor over the text plus the first error met.
struct Scan {
    const char* p;
    size_t n;
    size_t i;
    JsonStatus st;
    size_t err_at;
    const char* msg;

    bool fail(JsonStatus s, size_t at, const char* m) {
        st = s;
        err_at = at;
        msg = m;
        return false;
    }
    bool at_end() const { return i >= n; }
    char cur() const { return p[i]; }
};

Scan make_scan(const char* p, size_t n, size_t i) { return Scan{p, n, i, JsonStatus::ok, 0, ""}; }

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

void skip_ws(Scan& s) {
    while (s.i < s.n && is_ws(s.p[s.i])) s.i++;
}

int hex_val(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Four hex digits at p[i..i+4) (bounds checked by the caller). -1 if not hex.
long hex4(const char* p, size_t i) {
    long v = 0;
    for (size_t k = 0; k < 4; k++) {
        int h = hex_val(p[i + k]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

// Length of the valid UTF-8 sequence at q (q[0] >= 0x80), or 0 when invalid.
size_t utf8_len(const unsigned char* q, size_t avail) {
    unsigned c = q[0];
    size_t need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0xC2) return 0;  // continuation byte or overlong 2-byte lead
    if (c < 0xE0) {
        need = 1;
    } else if (c < 0xF0) {
        need = 2;
        if (c == 0xE0) lo = 0xA0;  // overlong
        if (c == 0xED) hi = 0x9F;  // UTF-16 surrogates
    } else if (c < 0xF5) {
        need = 3;
        if (c == 0xF0) lo = 0x90;  // overlong
        if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
        return 0;
    }
    if (avail < need + 1) return 0;
    if (q[1] < lo || q[1] > hi) return 0;
    for (size_t k = 2; k <= need; k++)
        if (q[k] < 0x80 || q[k] > 0xBF) return 0;
    return need + 1;
}

// Bytes that end a run of plain string content: '"', '\\', controls and every non-ASCII
// byte (checked one by one below). The common case, ASCII text, costs one load per byte.
struct StringStops {
    bool stop[256];
    constexpr StringStops() : stop() {
        for (int c = 0; c < 256; c++) stop[c] = c == '"' || c == '\\' || c < 0x20 || c >= 0x80;
    }
};
constexpr StringStops kStops;

// s.i at '"'. Leaves s.i after the closing quote.
bool scan_string(Scan& s) {
    const char* p = s.p;
    const size_t n = s.n;
    const size_t start = s.i;
    size_t i = start + 1;
    for (;;) {
        while (i < n && !kStops.stop[static_cast<unsigned char>(p[i])]) i++;
        if (i >= n) break;
        unsigned char c = static_cast<unsigned char>(p[i]);
        if (c == '"') {
            s.i = i + 1;
            return true;
        }
        if (c == '\\') {
            if (i + 1 >= n) break;
            char e = p[i + 1];
            if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
                i += 2;
                continue;
            }
            if (e != 'u') return s.fail(JsonStatus::bad_string, i, "invalid escape in string");
            long cp = n - i < 6 ? -1 : hex4(p, i + 2);
            if (cp < 0) return s.fail(JsonStatus::bad_string, i, "invalid \\u escape in string");
            if (cp >= 0xDC00 && cp <= 0xDFFF) return s.fail(JsonStatus::bad_string, i, "unpaired surrogate in string");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (n - i < 12 || p[i + 6] != '\\' || p[i + 7] != 'u')
                    return s.fail(JsonStatus::bad_string, i, "unpaired surrogate in string");
                long lo = hex4(p, i + 8);
                if (lo < 0xDC00 || lo > 0xDFFF) return s.fail(JsonStatus::bad_string, i, "unpaired surrogate in string");
                i += 12;
            } else {
                i += 6;
            }
            continue;
        }
        if (c < 0x20) return s.fail(JsonStatus::bad_string, i, "control character in string");
        size_t k = utf8_len(reinterpret_cast<const unsigned char*>(p + i), n - i);
        if (k == 0) return s.fail(JsonStatus::bad_utf8, i, "invalid UTF-8 in string");
        i += k;
    }
    s.i = i;
    return s.fail(JsonStatus::syntax, start, "unterminated string");
}

bool scan_digits(Scan& s) {
    size_t b = s.i;
    while (s.i < s.n && is_digit(s.p[s.i])) s.i++;
    return s.i > b;
}

bool scan_number(Scan& s) {
    size_t start = s.i;
    if (s.p[s.i] == '-') s.i++;
    if (s.at_end() || !is_digit(s.cur())) return s.fail(JsonStatus::bad_number, start, "invalid number");
    if (s.cur() == '0') {
        s.i++;
    } else {
        scan_digits(s);
    }
    if (!s.at_end() && s.cur() == '.') {
        s.i++;
        if (!scan_digits(s)) return s.fail(JsonStatus::bad_number, start, "invalid number: digits expected after '.'");
    }
    if (!s.at_end() && (s.cur() == 'e' || s.cur() == 'E')) {
        s.i++;
        if (!s.at_end() && (s.cur() == '+' || s.cur() == '-')) s.i++;
        if (!scan_digits(s)) return s.fail(JsonStatus::bad_number, start, "invalid number: digits expected in exponent");
    }
    if (!s.at_end()) {
        char c = s.cur();
        if (is_digit(c) || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')
            return s.fail(JsonStatus::bad_number, start, "invalid number");
    }
    return true;
}

bool scan_literal(Scan& s, const char* lit) {
    size_t len = strlen(lit);
    if (s.n - s.i < len || memcmp(s.p + s.i, lit, len) != 0)
        return s.fail(JsonStatus::syntax, s.i, "invalid literal");
    s.i += len;
    return true;
}

// A member key and its ':'; s.i at the first byte after '{' or ',' (whitespace allowed).
// The key's span (with quotes) goes to *key when not nullptr.
bool scan_key(Scan& s, JsonSpan* key = nullptr) {
    skip_ws(s);
    if (s.at_end()) return s.fail(JsonStatus::syntax, s.n, "unexpected end of document");
    if (s.cur() != '"') return s.fail(JsonStatus::syntax, s.i, "expected a string key");
    size_t kb = s.i;
    if (!scan_string(s)) return false;
    if (key) {
        key->begin = kb;
        key->end = s.i;
    }
    skip_ws(s);
    if (s.at_end()) return s.fail(JsonStatus::syntax, s.n, "unexpected end of document");
    if (s.cur() != ':') return s.fail(JsonStatus::syntax, s.i, "expected ':' after key");
    s.i++;
    return true;
}

// One complete value starting at s.i (leading whitespace allowed); iterative, the
// container kinds live in a bit stack. Leaves s.i just after the value.
bool scan_value(Scan& s) {
    uint32_t is_obj[(EW_CAP_JSON_DEPTH + 31) / 32] = {};
    size_t depth = 0;
    bool want_value = true;
    for (;;) {
        if (!want_value && depth == 0) return true;
        skip_ws(s);
        if (s.at_end()) return s.fail(JsonStatus::syntax, s.n, "unexpected end of document");
        char c = s.cur();
        if (want_value) {
            if (c == '{' || c == '[') {
                if (depth >= EW_CAP_JSON_DEPTH) return s.fail(JsonStatus::too_deep, s.i, "nesting too deep");
                uint32_t bit = 1u << (depth % 32);
                if (c == '{')
                    is_obj[depth / 32] |= bit;
                else
                    is_obj[depth / 32] &= ~bit;
                depth++;
                s.i++;
                skip_ws(s);
                if (s.at_end()) return s.fail(JsonStatus::syntax, s.n, "unexpected end of document");
                if (s.cur() == (c == '{' ? '}' : ']')) {
                    s.i++;
                    depth--;
                    want_value = false;
                } else if (c == '{' && !scan_key(s)) {
                    return false;
                }
                continue;
            }
            bool ok;
            if (c == '"')
                ok = scan_string(s);
            else if (c == '-' || is_digit(c))
                ok = scan_number(s);
            else if (c == 't')
                ok = scan_literal(s, "true");
            else if (c == 'f')
                ok = scan_literal(s, "false");
            else if (c == 'n')
                ok = scan_literal(s, "null");
            else
                ok = s.fail(JsonStatus::syntax, s.i, "expected a value");
            if (!ok) return false;
            want_value = false;
            continue;
        }
        bool obj = (is_obj[(depth - 1) / 32] >> ((depth - 1) % 32)) & 1u;
        if (c == ',') {
            s.i++;
            if (obj && !scan_key(s)) return false;
            want_value = true;
        } else if (c == (obj ? '}' : ']')) {
            s.i++;
            depth--;
        } else {
            return s.fail(JsonStatus::syntax, s.i, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
}

// Decodes the next code point of a VALID string body at *i into b; returns its byte count.
size_t next_decoded(const char* p, size_t* i, char b[4]) {
    char c = p[*i];
    if (c != '\\') {
        b[0] = c;
        (*i)++;
        return 1;
    }
    char e = p[*i + 1];
    *i += 2;
    switch (e) {
        case 'b': b[0] = '\b'; return 1;
        case 'f': b[0] = '\f'; return 1;
        case 'n': b[0] = '\n'; return 1;
        case 'r': b[0] = '\r'; return 1;
        case 't': b[0] = '\t'; return 1;
        case 'u': break;
        default: b[0] = e; return 1;  // " \ /
    }
    unsigned long cp = static_cast<unsigned long>(hex4(p, *i));
    *i += 4;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        unsigned long lo = static_cast<unsigned long>(hex4(p, *i + 2));
        *i += 6;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    if (cp < 0x80) {
        b[0] = static_cast<char>(cp);
        return 1;
    }
    if (cp < 0x800) {
        b[0] = static_cast<char>(0xC0 | (cp >> 6));
        b[1] = static_cast<char>(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        b[0] = static_cast<char>(0xE0 | (cp >> 12));
        b[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        b[2] = static_cast<char>(0x80 | (cp & 0x3F));
        return 3;
    }
    b[0] = static_cast<char>(0xF0 | (cp >> 18));
    b[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    b[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    b[3] = static_cast<char>(0x80 | (cp & 0x3F));
    return 4;
}

bool is_string_span(const char* p, JsonSpan s) {
    return s.end >= s.begin + 2 && p[s.begin] == '"' && p[s.end - 1] == '"';
}

// Decoded string [begin+1, end-1) equals text.
bool string_equals(const char* p, size_t begin, size_t end, const char* text) {
    size_t raw = end - begin - 2;
    if (memchr(p + begin + 1, '\\', raw) == nullptr)  // no escapes: the bytes are the value
        return strncmp(p + begin + 1, text, raw) == 0 && text[raw] == '\0';
    size_t i = begin + 1, k = 0;
    char b[4];
    while (i < end - 1) {
        size_t m = next_decoded(p, &i, b);
        for (size_t j = 0; j < m; j++, k++)
            if (text[k] == '\0' || text[k] != b[j]) return false;
    }
    return text[k] == '\0';
}

// Walks the members of the object at s.i ('{'), validating as it goes. For each of the
// nkeys keys, counts the members with that name (counts[k]) and records the first one's
// value span (first[k]). Leaves s.i after the '}'. False when not a valid object.
bool scan_members(Scan& s, const char* const* keys, size_t nkeys, int* counts, JsonSpan* first) {
    for (size_t k = 0; k < nkeys; k++) {
        counts[k] = 0;
        first[k] = JsonSpan();
    }
    if (s.at_end() || s.cur() != '{') return s.fail(JsonStatus::syntax, s.i, "expected an object");
    s.i++;
    skip_ws(s);
    if (!s.at_end() && s.cur() == '}') {
        s.i++;
        return true;
    }
    for (;;) {
        JsonSpan key;
        if (!scan_key(s, &key)) return false;
        skip_ws(s);
        size_t vb = s.i;
        if (!scan_value(s)) return false;
        for (size_t k = 0; k < nkeys; k++) {
            if (!string_equals(s.p, key.begin, key.end, keys[k])) continue;
            if (counts[k]++ == 0) {
                first[k].begin = vb;
                first[k].end = s.i;
            }
        }
        skip_ws(s);
        if (s.at_end()) return s.fail(JsonStatus::syntax, s.n, "unexpected end of document");
        if (s.cur() == '}') {
            s.i++;
            return true;
        }
        if (s.cur() != ',') return s.fail(JsonStatus::syntax, s.i, "expected ',' or '}'");
        s.i++;
    }
}

}  // namespace

JsonStatus json_validate(const char* p, size_t n, JsonError* err) {
    Scan s = make_scan(p, n, 0);
    skip_ws(s);
    if (s.at_end()) {
        s.fail(JsonStatus::empty, 0, "empty document");
    } else if (scan_value(s)) {
        skip_ws(s);
        if (!s.at_end()) s.fail(JsonStatus::trailing, s.i, "unexpected data after the JSON value");
    }
    if (err) {
        err->offset = s.st == JsonStatus::ok ? 0 : s.err_at;
        err->message = s.st == JsonStatus::ok ? "" : s.msg;
    }
    return s.st;
}

const char* to_string(JsonStatus s) {
    switch (s) {
        case JsonStatus::ok: return "ok";
        case JsonStatus::empty: return "empty";
        case JsonStatus::syntax: return "syntax";
        case JsonStatus::bad_string: return "bad_string";
        case JsonStatus::bad_utf8: return "bad_utf8";
        case JsonStatus::bad_number: return "bad_number";
        case JsonStatus::too_deep: return "too_deep";
        case JsonStatus::trailing: return "trailing";
    }
    return "?";
}

bool json_find_keys(const char* p, size_t n, const char* const* keys, size_t nkeys, int* counts, JsonSpan* spans) {
    Scan s = make_scan(p, n, 0);
    skip_ws(s);
    if (!scan_members(s, keys, nkeys, counts, spans)) return false;
    skip_ws(s);
    return s.at_end();
}

bool json_find_members(const char* p, JsonSpan object, const char* const* keys, size_t nkeys, int* counts,
                       JsonSpan* spans) {
    Scan s = make_scan(p, object.end, object.begin);
    return scan_members(s, keys, nkeys, counts, spans);
}

int json_find_key(const char* p, size_t n, const char* key, JsonSpan* value_span) {
    int count = 0;
    JsonSpan first;
    if (!json_find_keys(p, n, &key, 1, &count, &first)) return -1;
    if (value_span && count > 0) *value_span = first;
    return count;
}

int json_find_member(const char* p, JsonSpan object, const char* key, JsonSpan* value_span) {
    int count = 0;
    JsonSpan first;
    if (!json_find_members(p, object, &key, 1, &count, &first)) return -1;
    if (value_span && count > 0) *value_span = first;
    return count;
}

bool json_find_path_uint(const char* p, size_t n, const char* const* path, size_t depth, uint64_t* out) {
    if (depth == 0) return false;
    JsonSpan v;
    if (json_find_key(p, n, path[0], &v) <= 0) return false;
    for (size_t k = 1; k < depth; k++) {
        if (json_span_type(p, v) != JsonType::object) return false;
        if (json_find_member(p, v, path[k], &v) <= 0) return false;
    }
    return json_span_uint(p, v, out);
}

JsonType json_span_type(const char* p, JsonSpan s) {
    if (s.end <= s.begin) return JsonType::invalid;
    switch (p[s.begin]) {
        case '{': return JsonType::object;
        case '[': return JsonType::array;
        case '"': return JsonType::string;
        case 't':
        case 'f': return JsonType::boolean;
        case 'n': return JsonType::null;
        default: return (p[s.begin] == '-' || is_digit(p[s.begin])) ? JsonType::number : JsonType::invalid;
    }
}

bool json_span_string(const char* p, JsonSpan s, char* out, size_t cap, size_t* out_len) {
    if (cap == 0) return false;
    out[0] = '\0';
    if (!is_string_span(p, s)) return false;
    size_t i = s.begin + 1, k = 0;
    char b[4];
    while (i < s.end - 1) {
        size_t m = next_decoded(p, &i, b);
        if (k + m >= cap) {
            out[k] = '\0';
            return false;
        }
        for (size_t j = 0; j < m; j++) {
            if (b[j] == '\0') {
                out[k] = '\0';
                return false;
            }
            out[k++] = b[j];
        }
    }
    out[k] = '\0';
    if (out_len) *out_len = k;
    return true;
}

bool json_span_string_equals(const char* p, JsonSpan s, const char* text) {
    return is_string_span(p, s) && string_equals(p, s.begin, s.end, text);
}

bool json_span_bool(const char* p, JsonSpan s, bool* out) {
    if (s.size() == 4 && memcmp(p + s.begin, "true", 4) == 0) {
        *out = true;
        return true;
    }
    if (s.size() == 5 && memcmp(p + s.begin, "false", 5) == 0) {
        *out = false;
        return true;
    }
    return false;
}

bool json_span_uint(const char* p, JsonSpan s, uint64_t* out) {
    if (s.end <= s.begin) return false;
    uint64_t v = 0;
    for (size_t i = s.begin; i < s.end; i++) {
        if (!is_digit(p[i])) return false;
        uint64_t d = static_cast<uint64_t>(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool json_string_literal(const char* s, size_t n, char* out, size_t cap, size_t* out_len) {
    StrBuf b(out, cap);
    b.append("\"", 1);
    b.append_json_escaped(s, n);
    b.append("\"", 1);
    if (b.overflow || cap == 0) return false;
    if (out_len) *out_len = b.len;
    return true;
}

void json_rewrite_model(const char* body, size_t n, JsonSpan model_span, const char* new_model_json, size_t new_len,
                        BodySegments* out) {
    *out = BodySegments();
    if (model_span.begin > model_span.end || model_span.end > n) {  // not a span of this body
        out->part[0] = body;
        out->len[0] = n;
        return;
    }
    out->part[0] = body;
    out->len[0] = model_span.begin;
    out->part[1] = new_model_json;
    out->len[1] = new_len;
    out->part[2] = body + model_span.end;
    out->len[2] = n - model_span.end;
}

bool body_segments_copy(const BodySegments& s, char* out, size_t cap, size_t* out_len) {
    size_t total = s.total();
    if (total + 1 > cap) return false;
    size_t k = 0;
    for (int i = 0; i < 3; i++) {
        if (s.len[i]) memcpy(out + k, s.part[i], s.len[i]);
        k += s.len[i];
    }
    out[k] = '\0';
    if (out_len) *out_len = k;
    return true;
}

}  // namespace ew
