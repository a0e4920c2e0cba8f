// Retry policy: verdicts, back-off bounds, Retry-After and HTTP-date parsing.
#include "ew_catch.h"

#include <string.h>
#include <time.h>

#include "core/retry.h"

using namespace ew;

namespace {

bool retry_after(const char* v, const char* date, uint64_t* out) {
    return parse_retry_after(v, strlen(v), date, date ? strlen(date) : 0, out);
}

bool to_unix(const char* s, int64_t* out) { return http_date_to_unix(s, strlen(s), out); }

uint32_t xorshift(uint32_t* s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

}  // namespace

TEST_CASE("retry: classify_attempt table", "[retry]") {
    using K = ResultKind;
    using V = AttemptVerdict;
    struct Row {
        K kind;
        uint16_t status;
        V want;
    } rows[] = {
        {K::ok, 0, V::success},
        {K::ok, 200, V::success},
        {K::http_status, 201, V::success},
        {K::connect, 0, V::retry_next},
        {K::tls, 0, V::retry_next},
        {K::timeout, 0, V::retry_next},
        {K::bad_response, 0, V::retry_next},
        {K::http_status, 0, V::retry_next},
        {K::http_status, 408, V::retry_next},
        {K::http_status, 429, V::retry_next},
        {K::http_status, 500, V::retry_next},
        {K::http_status, 502, V::retry_next},
        {K::http_status, 503, V::retry_next},
        {K::http_status, 504, V::retry_next},
        {K::http_status, 599, V::retry_next},
        {K::http_status, 401, V::key_bad_failover},
        {K::http_status, 403, V::key_bad_failover},
        {K::ok, 401, V::key_bad_failover},
        {K::http_status, 400, V::return_to_client},
        {K::http_status, 404, V::return_to_client},
        {K::http_status, 422, V::return_to_client},
        {K::http_status, 413, V::return_to_client},
        {K::http_status, 409, V::return_to_client},
        {K::http_status, 302, V::return_to_client},
    };
    for (const Row& r : rows) {
        INFO(to_string(r.kind) << " " << r.status);
        CHECK(classify_attempt(r.kind, r.status) == r.want);
    }
    CHECK(strcmp(to_string(AttemptVerdict::key_bad_failover), "key_bad_failover") == 0);
}

TEST_CASE("retry: jittered exponential back-off stays in bounds", "[retry]") {
    uint32_t seed = 2463534242u;
    for (uint32_t idx = 0; idx < 40; idx++) {
        uint64_t cap = 200ull << (idx < 20 ? idx : 20);
        if (cap > 2000) cap = 2000;
        uint32_t lo = UINT32_MAX, hi = 0;
        for (int i = 0; i < 5000; i++) {
            uint32_t d = backoff_ms(idx, 200, 2000, xorshift(&seed));
            REQUIRE(d <= 2000);
            REQUIRE(d <= cap);
            REQUIRE(d >= cap / 2);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        CHECK(hi - lo > cap / 4);  // actually jittered
    }
    CHECK(backoff_ms(0, 200, 2000, 0) == 100);
    CHECK(backoff_ms(0, 200, 2000, 100) == 200);
    CHECK(backoff_ms(3, 0, 2000, 12345) == 0);
    CHECK(backoff_ms(0, 5000, 2000, UINT32_MAX) <= 2000);  // base above max
    CHECK(backoff_ms(UINT32_MAX, 200, UINT32_MAX, UINT32_MAX) <= UINT32_MAX);

    SECTION("Retry-After wins when longer; the deadline caps both") {
        CHECK(backoff_with_retry_after(0, 200, 2000, 0, 0, 60000) == 100);
        CHECK(backoff_with_retry_after(0, 200, 2000, 0, 5000, 60000) == 5000);
        CHECK(backoff_with_retry_after(0, 200, 2000, 0, 5000, 3000) == 3000);
        CHECK(backoff_with_retry_after(3, 200, 2000, 0, 0, 50) == 50);
        CHECK(backoff_with_retry_after(0, 200, 2000, 0, 0, 0) == 0);
    }
    CHECK(attempt_allowed(0, 4, 0, 1));
    CHECK(attempt_allowed(3, 4, 999, 1000));
    CHECK_FALSE(attempt_allowed(4, 4, 0, 1000));
    CHECK_FALSE(attempt_allowed(1, 4, 1000, 1000));
}

TEST_CASE("retry: Retry-After delta-seconds", "[retry]") {
    uint64_t ms = 0;
    CHECK(retry_after("120", nullptr, &ms));
    CHECK(ms == 120000);
    CHECK(retry_after("  0\t", nullptr, &ms));
    CHECK(ms == 0);
    CHECK(retry_after("99999999999999999999999", nullptr, &ms));
    CHECK(ms == EW_RETRY_AFTER_MAX_MS);
    CHECK(retry_after("86401", nullptr, &ms));
    CHECK(ms == EW_RETRY_AFTER_MAX_MS);
    const char* garbage[] = {"", "   ", "-5", "1.5", "12abc", "abc", "0x10", "1 2",
                             "Sun, 06 Nov 1994 08:49:37 XYZ", "Sun, 32 Nov 1994 08:49:37 GMT"};
    for (const char* g : garbage) {
        INFO(g);
        CHECK_FALSE(retry_after(g, "Sun, 06 Nov 1994 08:49:37 GMT", &ms));
    }
    CHECK_FALSE(parse_retry_after(nullptr, 0, nullptr, 0, &ms));
    // Not NUL-terminated: only len bytes count.
    CHECK(parse_retry_after("30xyz", 2, nullptr, 0, &ms));
    CHECK(ms == 30000);
}

TEST_CASE("retry: Retry-After as an HTTP-date is read against the Date header", "[retry]") {
    const char* date = "Sun, 06 Nov 1994 08:49:37 GMT";
    uint64_t ms = 0;
    CHECK(retry_after("Sun, 06 Nov 1994 08:50:07 GMT", date, &ms));  // IMF-fixdate
    CHECK(ms == 30000);
    CHECK(retry_after("Sunday, 06-Nov-94 08:51:37 GMT", date, &ms));  // RFC 850
    CHECK(ms == 120000);
    CHECK(retry_after("Sun Nov  6 09:49:37 1994", date, &ms));  // asctime
    CHECK(ms == 3600000);
    CHECK(retry_after("Sun, 06 Nov 1994 08:49:00 GMT", date, &ms));  // in the past
    CHECK(ms == 0);
    CHECK(retry_after("Mon, 06 Nov 1995 08:49:37 GMT", date, &ms));  // a year: capped
    CHECK(ms == EW_RETRY_AFTER_MAX_MS);
    // The Date header may itself be in any of the formats.
    CHECK(retry_after("Sun, 06 Nov 1994 08:50:07 GMT", "Sun Nov  6 08:49:37 1994", &ms));
    CHECK(ms == 30000);
    // No Date header, or a bad one: refuse rather than trust the local clock.
    CHECK_FALSE(retry_after("Sun, 06 Nov 1994 08:50:07 GMT", nullptr, &ms));
    CHECK_FALSE(retry_after("Sun, 06 Nov 1994 08:50:07 GMT", "", &ms));
    CHECK_FALSE(retry_after("Sun, 06 Nov 1994 08:50:07 GMT", "yesterday", &ms));
}

TEST_CASE("retry: retry-after-ms", "[retry]") {
    uint64_t ms = 0;
    CHECK(parse_retry_after_ms("1500", 4, &ms));
    CHECK(ms == 1500);
    CHECK(parse_retry_after_ms(" 20.0 ", 6, &ms));
    CHECK(ms == 20);
    CHECK(parse_retry_after_ms("20.001", 6, &ms));
    CHECK(ms == 21);  // rounded up
    CHECK(parse_retry_after_ms("999999999999999999999", 21, &ms));
    CHECK(ms == EW_RETRY_AFTER_MAX_MS);
    const char* garbage[] = {"", ".5", "5.", "-1", "1e3", "abc", "1.2.3"};
    for (const char* g : garbage) {
        INFO(g);
        CHECK_FALSE(parse_retry_after_ms(g, strlen(g), &ms));
    }
}

TEST_CASE("retry: http_date_to_unix", "[retry]") {
    int64_t t = 0;
    CHECK(to_unix("Sun, 06 Nov 1994 08:49:37 GMT", &t));
    CHECK(t == 784111777);
    CHECK(to_unix("Sunday, 06-Nov-94 08:49:37 GMT", &t));
    CHECK(t == 784111777);
    CHECK(to_unix("Sun Nov  6 08:49:37 1994", &t));
    CHECK(t == 784111777);
    CHECK(to_unix("Thu, 01 Jan 1970 00:00:00 GMT", &t));
    CHECK(t == 0);
    CHECK(to_unix("Tue, 29 Feb 2000 12:00:00 GMT", &t));
    CHECK(t == 951825600);
    CHECK(to_unix("Tue, 19 Jan 2038 03:14:08 GMT", &t));
    CHECK(t == 2147483648ll);  // past 32-bit time_t
    CHECK(to_unix("Wed, 31-Dec-69 23:59:59 GMT", &t));  // 2-digit 69 -> 2069
    CHECK(t == 3155759999ll);
    CHECK(to_unix("thu, 01 jan 1970 00:00:00 utc", &t));  // lenient on case and UTC
    CHECK(t == 0);

    const char* bad[] = {
        "Tue, 29 Feb 2100 12:00:00 GMT",  // not a leap year
        "Mon, 31 Apr 2024 00:00:00 GMT",  // April has 30 days
        "Mon, 00 Apr 2024 00:00:00 GMT",
        "Mon, 01 Apr 2024 24:00:00 GMT",
        "Mon, 01 Apr 2024 00:60:00 GMT",
        "Mon, 01 Foo 2024 00:00:00 GMT",
        "Xyz, 01 Apr 2024 00:00:00 GMT",
        "Mon, 01 Apr 24 00:00:00 GMT",    // IMF needs 4 digits
        "Mon, 01 Apr 2024 00:00:00",      // no zone
        "Mon, 01 Apr 2024 00:00:00 GMT x",
        "Mon, 01 Apr 20245 00:00:00 GMT",
        "Mon Apr  1 00:00:00",            // asctime without year
        "Monday, 01-Apr-124 00:00:00 GMT",
        "",
        "Mon,",
    };
    for (const char* b : bad) {
        INFO(b);
        CHECK_FALSE(to_unix(b, &t));
    }
}

TEST_CASE("retry: http_date_to_unix agrees with the C library on many dates", "[retry]") {
    uint32_t seed = 88172645u;
    for (int i = 0; i < 3000; i++) {
        // 1970 .. 2069 so the RFC 850 2-digit year round-trips too.
        uint64_t span = sizeof(time_t) == 4 ? 2147483647u : 3155760000u;  // 32-bit time_t ends in 2038
        time_t when = static_cast<time_t>(xorshift(&seed) % span);
        struct tm tm;
        REQUIRE(gmtime_r(&when, &tm) != nullptr);
        char buf[64];
        const char* formats[] = {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"};
        for (const char* f : formats) {
            size_t n = strftime(buf, sizeof buf, f, &tm);
            REQUIRE(n > 0);
            int64_t t = 0;
            INFO(buf);
            REQUIRE(http_date_to_unix(buf, n, &t));
            REQUIRE(t == static_cast<int64_t>(when));
        }
    }
}
