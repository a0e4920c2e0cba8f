// log_format = json: one event's text line as a JSON object a log shipper can index.
#include "ew_catch.h"
#include <string.h>

#include <string>

#include "core/strbuf.h"
#include "net/log.h"

namespace {

std::string json_of(const char* text) {
    char buf[2048];
    ew::StrBuf out(buf, sizeof buf);
    ew::log_json_line("2026-12-02T02:00:00.000Z", "info", text, strlen(text), &out);
    REQUIRE_FALSE(out.overflow);
    return std::string(out.data, out.len);
}

}  // namespace

TEST_CASE("log json: words become msg, pairs members, numbers numbers", "[log]") {
    CHECK(json_of("access id=abc-1 method=POST status=200 duration_ms=12 ttft_ms=-") ==
          "{\"time\":\"2026-12-02T02:00:00.000Z\",\"level\":\"info\",\"msg\":\"access\",\"id\":\"abc-1\","
          "\"method\":\"POST\",\"status\":200,\"duration_ms\":12,\"ttft_ms\":\"-\"}");
    CHECK(json_of("endpoint=dead state DEGRADED -> DOWN (traffic) score=30.0") ==
          "{\"time\":\"2026-12-02T02:00:00.000Z\",\"level\":\"info\",\"msg\":\"state DEGRADED -> DOWN (traffic)\","
          "\"endpoint\":\"dead\",\"score\":30.0}");
}

TEST_CASE("log json: a quoted value keeps its spaces, quotes and backslashes, escaped", "[log]") {
    CHECK(json_of("request failed model=m1 error=\"dead: said \"no\" \\ twice\" status=503") ==
          "{\"time\":\"2026-12-02T02:00:00.000Z\",\"level\":\"info\",\"msg\":\"request failed\",\"model\":\"m1\","
          "\"error\":\"dead: said \\\"no\\\" \\\\ twice\",\"status\":503}");
    // Not numbers: leading zeros, a lone minus, version strings.
    CHECK(json_of("x a=007 b=- c=1.2.3 d=-4") ==
          "{\"time\":\"2026-12-02T02:00:00.000Z\",\"level\":\"info\",\"msg\":\"x\",\"a\":\"007\",\"b\":\"-\","
          "\"c\":\"1.2.3\",\"d\":-4}");
    // A control character from an upstream's error text cannot break the line.
    std::string j = json_of("probe error=\"bad\x01byte\"");
    CHECK(j.find('\x01') == std::string::npos);
}
