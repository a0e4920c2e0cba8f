// StrBuf's own formatter against the C library's snprintf for the conversions edgeway uses.
#include "ew_catch.h"

#include <stdio.h>

#include <string>

#include "core/strbuf.h"

namespace {

template <typename... A>
std::string ours(const char* fmt, A... a) {
    char buf[256];
    ew::StrBuf b(buf, sizeof buf);
    b.appendf(fmt, a...);
    return std::string(b.data, b.len);
}

template <typename... A>
std::string libc(const char* fmt, A... a) {
    char buf[256];
    snprintf(buf, sizeof buf, fmt, a...);
    return buf;
}

}  // namespace

#define SAME(...) CHECK(ours(__VA_ARGS__) == libc(__VA_ARGS__))

TEST_CASE("strbuf: integers match snprintf", "[strbuf]") {
    SAME("%d|%d|%d", 0, -42, 2147483647);
    SAME("%u|%u", 0u, 4294967295u);
    SAME("%llu|%llu", 0ULL, 18446744073709551615ULL);
    SAME("%zu|%zx", static_cast<size_t>(12345), static_cast<size_t>(0xbeef));
    SAME("%x|%X|%02x|%04x", 255u, 255u, 7u, 0xabu);
    SAME("%10u|%-6d|%05d", 42u, -3, -17);
    SAME("%c%c", 'o', 'k');
    SAME("100%% sure");
}

TEST_CASE("strbuf: strings and floats match snprintf", "[strbuf]") {
    SAME("[%s] [%-8s] [%8s] [%.3s]", "abc", "left", "right", "truncate");
    SAME("%.1f|%.1f|%.0f|%.4f|%.6f", 99.95, 0.04, 2.5000001, 0.3333333, 1234.5678901);
    SAME("%.1f|%.1f", -12.34, 0.0);
    CHECK(ours("%g %g %g %g", 0.005, 0.25, 15.0, 2.5) == "0.005 0.25 15 2.5");
}

TEST_CASE("strbuf: overflow is reported, never written past the buffer", "[strbuf]") {
    char buf[8];
    ew::StrBuf b(buf, sizeof buf);
    b.appendf("%s-%llu", "abcdef", 1234567ULL);
    CHECK(b.overflow);
    CHECK(b.len == 7);
    CHECK(std::string(buf) == "abcdef-");
}
