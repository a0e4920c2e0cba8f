// The header policy: which client headers go upstream, what a config header may be, where
// the key goes, and which origins CORS admits.
#include "ew_catch.h"
#include <cstring>
#include <string>

#include "core/config.h"
#include "core/header_policy.h"

namespace {
bool fwd(const char* n) { return ew::client_header_forwarded(n, strlen(n)); }
bool origin_ok(const char* o) { return ew::cors_origin_ok(o, strlen(o)); }
}  // namespace

TEST_CASE("header policy: only the OpenAI headers that change meaning are forwarded", "[headers]") {
    for (const char* yes : {"OpenAI-Organization", "openai-project", "OPENAI-BETA", "Idempotency-Key", "X-Request-Id"})
        CHECK(fwd(yes));
    for (const char* no : {"Authorization", "Cookie", "Host", "X-Stainless-Lang", "OpenAI-Project-X", "User-Agent",
                           "Content-Type", "api-key", "x-api-key", "OpenAI"})
        CHECK_FALSE(fwd(no));
}

TEST_CASE("header policy: config header names and values", "[headers]") {
    CHECK(ew::header_name_ok("HTTP-Referer", 12));
    CHECK_FALSE(ew::header_name_ok("X Title", 7));
    CHECK_FALSE(ew::header_name_ok("X:T", 3));
    CHECK_FALSE(ew::header_name_ok("", 0));
    CHECK(ew::header_value_ok("Kiosk One\t(v2)", 14));
    CHECK_FALSE(ew::header_value_ok("a\r\nX-Evil: 1", 12));
    CHECK_FALSE(ew::header_value_ok("caf\xc3\xa9", 5));
    for (const char* r : {"Authorization", "cookie", "Host", "Content-Length", "Transfer-Encoding", "api-key",
                          "X-API-Key", "Proxy-Anything", "Connection"})
        CHECK(ew::header_name_reserved(r, strlen(r)));
    CHECK_FALSE(ew::header_name_reserved("X-Title", 7));
}

TEST_CASE("header policy: the key goes where auth_header says, and nowhere for none", "[headers]") {
    char buf[128];
    struct Case {
        ew::AuthHeader how;
        const char* want;
    } cases[] = {{ew::AuthHeader::bearer, "Authorization: Bearer sk-1\r\n"},
                 {ew::AuthHeader::api_key, "api-key: sk-1\r\n"},
                 {ew::AuthHeader::x_api_key, "x-api-key: sk-1\r\n"},
                 {ew::AuthHeader::none, ""}};
    for (const Case& c : cases) {
        ew::StrBuf b(buf, sizeof buf);
        ew::append_auth_header(&b, c.how, "sk-1");
        CHECK(std::string(b.data, b.len) == c.want);
    }
    ew::StrBuf b(buf, sizeof buf);
    ew::append_auth_header(&b, ew::AuthHeader::bearer, "");
    CHECK(b.len == 0);
}

TEST_CASE("cors: origins are exact; '*' admits any; nothing when off", "[cors]") {
    CHECK(origin_ok("https://kiosk.local"));
    CHECK(origin_ok("http://localhost:3000"));
    CHECK(origin_ok("http://[::1]:8080"));
    for (const char* bad : {"https://kiosk.local/", "https://Kiosk.local", "ftp://x", "https://", "http://a:",
                            "http://a:123456", "https://a b", "null", "http://[zz]", "http://[]"})
        CHECK_FALSE(origin_ok(bad));
    ew::AgentConfig a;
    CHECK_FALSE(ew::cors_allows(a, "https://kiosk.local", 19));
    strcpy(a.cors_origins[0], "https://kiosk.local");
    a.cors_origin_count = 1;
    CHECK(ew::cors_allows(a, "https://kiosk.local", 19));
    CHECK_FALSE(ew::cors_allows(a, "https://kiosk.local.evil.example", 32));
    CHECK_FALSE(ew::cors_allows(a, "https://kiosk.loca", 18));
    char buf[512];
    ew::StrBuf h(buf, sizeof buf);
    ew::cors_answer_headers(&h, a, "https://kiosk.local", 19);
    std::string s(h.data, h.len);
    CHECK(s.find("Access-Control-Allow-Origin: https://kiosk.local\r\n") != std::string::npos);
    CHECK(s.find("Vary: Origin\r\n") != std::string::npos);
    a.cors_origin_count = 0;
    a.cors_any = true;
    CHECK(ew::cors_allows(a, "http://anything:1", 17));
}
