// Attempt policy and Retry-After / HTTP-date parsing. Own date arithmetic (no timegm,
// strptime or locale): days-from-civil after H. Hinnant's public-domain algorithm.
#include "core/retry.h"

namespace ew {

// ---- verdicts ------------------------------------------------------------------------------

AttemptVerdict classify_attempt(ResultKind kind, uint16_t http_status) {
    switch (kind) {
        case ResultKind::timeout:
        case ResultKind::connect:
        case ResultKind::tls:
        case ResultKind::bad_response: return AttemptVerdict::retry_next;
        case ResultKind::ok:
            if (http_status == 0) return AttemptVerdict::success;
            break;
        case ResultKind::http_status:
            if (http_status == 0) return AttemptVerdict::retry_next;
            break;
    }
    if (http_status >= 200 && http_status <= 299) return AttemptVerdict::success;
    if (http_status == 408 || http_status == 429 || (http_status >= 500 && http_status <= 599)) {
        return AttemptVerdict::retry_next;
    }
    if (http_status == 401 || http_status == 403) return AttemptVerdict::key_bad_failover;
    if (http_status >= 600) return AttemptVerdict::retry_next;  // not HTTP: a bad response
    return AttemptVerdict::return_to_client;
}

const char* to_string(AttemptVerdict v) {
    switch (v) {
        case AttemptVerdict::success: return "success";
        case AttemptVerdict::retry_next: return "retry_next";
        case AttemptVerdict::key_bad_failover: return "key_bad_failover";
        case AttemptVerdict::return_to_client: return "return_to_client";
    }
    return "?";
}

// ---- back-off ------------------------------------------------------------------------------

uint32_t backoff_ms(uint32_t retry_index, uint32_t base_ms, uint32_t max_ms, uint32_t rng) {
    uint64_t cap = base_ms;
    for (uint32_t i = 0; i < retry_index && cap < max_ms; i++) cap *= 2;
    if (cap > max_ms) cap = max_ms;
    uint64_t half = cap / 2;
    uint64_t span = cap - half + 1;  // [half, cap] inclusive
    return static_cast<uint32_t>(half + rng % span);
}

uint32_t backoff_with_retry_after(uint32_t retry_index, uint32_t base_ms, uint32_t max_ms, uint32_t rng,
                                  uint64_t retry_after_ms, uint64_t remaining_ms) {
    uint64_t d = backoff_ms(retry_index, base_ms, max_ms, rng);
    if (retry_after_ms > d) d = retry_after_ms;
    if (d > remaining_ms) d = remaining_ms;
    if (d > UINT32_MAX) d = UINT32_MAX;
    return static_cast<uint32_t>(d);
}

bool attempt_allowed(uint32_t attempts_made, uint32_t max_attempts, uint64_t now_ms, uint64_t deadline_ms) {
    return attempts_made < max_attempts && now_ms < deadline_ms;
}

// ---- parsing helpers -------------------------------------------------------------------------

namespace {

struct Cursor {
    const char* p;
    const char* end;
    bool at_end() const { return p >= end; }
    char peek() const { return p < end ? *p : '\0'; }
};

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
bool is_ows(char c) { return c == ' ' || c == '\t'; }

void trim(const char** s, size_t* len) {
    while (*len && is_ows((*s)[0])) {
        (*s)++;
        (*len)--;
    }
    while (*len && is_ows((*s)[*len - 1])) (*len)--;
}

bool eat(Cursor& c, char ch) {
    if (c.peek() != ch || c.at_end()) return false;
    c.p++;
    return true;
}

// One or more spaces (asctime pads a 1-digit day with a space).
bool spaces(Cursor& c) {
    if (!eat(c, ' ')) return false;
    while (eat(c, ' ')) {
    }
    return true;
}

// Between min_n and max_n digits.
bool number(Cursor& c, int min_n, int max_n, int* out) {
    int v = 0;
    int n = 0;
    while (n < max_n && !c.at_end() && is_digit(c.peek())) {
        v = v * 10 + (*c.p++ - '0');
        n++;
    }
    if (n < min_n || (!c.at_end() && is_digit(c.peek()))) return false;
    *out = v;
    return true;
}

// An alphabetic word matched case-insensitively against a table; returns its index or -1.
int word(Cursor& c, const char* const* table, int count) {
    const char* start = c.p;
    while (!c.at_end() && is_alpha(c.peek())) c.p++;
    size_t n = static_cast<size_t>(c.p - start);
    for (int i = 0; i < count; i++) {
        const char* w = table[i];
        size_t k = 0;
        while (k < n && w[k] && lower(w[k]) == lower(start[k])) k++;
        if (k == n && w[k] == '\0') return i;
    }
    return -1;
}

const char* const kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun",
                               "jul", "aug", "sep", "oct", "nov", "dec"};
const char* const kDays[] = {"mon",    "tue",     "wed",       "thu",      "fri",    "sat",      "sun",
                             "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"};

bool time_of_day(Cursor& c, int* h, int* m, int* s) {
    return number(c, 2, 2, h) && eat(c, ':') && number(c, 2, 2, m) && eat(c, ':') && number(c, 2, 2, s) &&
           *h <= 23 && *m <= 59 && *s <= 60;  // 60: a leap second
}

bool gmt(Cursor& c) {
    static const char* const zones[] = {"gmt", "utc"};
    return word(c, zones, 2) >= 0;
}

bool leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int days_in_month(int64_t y, int m) {
    static const int8_t d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : d[m - 1];
}

// Days since 1970-01-01 of a proleptic Gregorian date.
int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2 ? 1 : 0;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

// Accumulated numbers stop growing past this (far above any cap; no overflow after * 1000).
constexpr uint64_t kBigSeconds = 1000000000000ull;

uint64_t cap_delay(uint64_t ms) { return ms > EW_RETRY_AFTER_MAX_MS ? EW_RETRY_AFTER_MAX_MS : ms; }

}  // namespace

bool http_date_to_unix(const char* s, size_t len, int64_t* out) {
    if (!s) return false;
    trim(&s, &len);
    Cursor c{s, s + len};
    int year = 0, month = 0, day = 0, hh = 0, mm = 0, ss = 0;
    if (word(c, kDays, 14) < 0) return false;
    if (eat(c, ',')) {
        // IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT" or RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT"
        if (!spaces(c) || !number(c, 1, 2, &day)) return false;
        if (eat(c, '-')) {
            if ((month = word(c, kMonths, 12) + 1) == 0 || !eat(c, '-')) return false;
            const char* y0 = c.p;
            if (!number(c, 2, 4, &year)) return false;
            if (c.p - y0 == 2) year += year < 70 ? 2000 : 1900;
            else if (c.p - y0 != 4) return false;
        } else {
            if (!spaces(c) || (month = word(c, kMonths, 12) + 1) == 0) return false;
            if (!spaces(c) || !number(c, 4, 4, &year)) return false;
        }
        if (!spaces(c) || !time_of_day(c, &hh, &mm, &ss) || !spaces(c) || !gmt(c)) return false;
    } else {
        // asctime "Sun Nov  6 08:49:37 1994"
        if (!spaces(c) || (month = word(c, kMonths, 12) + 1) == 0) return false;
        if (!spaces(c) || !number(c, 1, 2, &day)) return false;
        if (!spaces(c) || !time_of_day(c, &hh, &mm, &ss)) return false;
        if (!spaces(c) || !number(c, 4, 4, &year)) return false;
    }
    if (!c.at_end()) return false;
    if (day < 1 || day > days_in_month(year, month)) return false;
    *out = days_from_civil(year, month, day) * 86400 + hh * 3600 + mm * 60 + ss;
    return true;
}

bool parse_retry_after(const char* value, size_t len, const char* date_header, size_t date_len,
                       uint64_t* out_delay_ms) {
    if (!value) return false;
    trim(&value, &len);
    if (len == 0) return false;
    if (is_digit(value[0])) {
        uint64_t secs = 0;
        for (size_t i = 0; i < len; i++) {
            if (!is_digit(value[i])) return false;
            if (secs < kBigSeconds) secs = secs * 10 + static_cast<uint64_t>(value[i] - '0');
        }
        *out_delay_ms = cap_delay(secs * 1000);
        return true;
    }
    int64_t when = 0, ref = 0;
    if (!http_date_to_unix(value, len, &when)) return false;
    if (!date_header || !http_date_to_unix(date_header, date_len, &ref)) return false;
    uint64_t secs = when > ref ? static_cast<uint64_t>(when - ref) : 0;  // < 10^12: 4-digit years
    *out_delay_ms = cap_delay(secs * 1000);
    return true;
}

bool parse_retry_after_ms(const char* value, size_t len, uint64_t* out_delay_ms) {
    if (!value) return false;
    trim(&value, &len);
    size_t i = 0;
    uint64_t ms = 0;
    while (i < len && is_digit(value[i])) {
        if (ms < kBigSeconds) ms = ms * 10 + static_cast<uint64_t>(value[i] - '0');
        i++;
    }
    if (i == 0) return false;
    if (i < len && value[i] == '.') {
        size_t frac_start = ++i;
        bool nonzero = false;
        while (i < len && is_digit(value[i])) nonzero |= value[i++] != '0';
        if (i == frac_start) return false;
        if (nonzero) ms++;  // round up: never retry earlier than asked
    }
    if (i != len) return false;
    *out_delay_ms = cap_delay(ms);
    return true;
}

}  // namespace ew
