#include "ew_catch.h"

#include <string.h>

#include <string>

#include "core/json_scan.h"
#include "core/openai.h"

using namespace ew;

namespace {

bool valid_json(const StrBuf& b) { return json_validate(b.data, b.len, nullptr) == JsonStatus::ok; }

SseEvent event_of(const char* data, const char* type = "") {
    SseEvent e;
    e.data = data;
    e.data_len = strlen(data);
    e.event = type;
    e.event_len = strlen(type);
    return e;
}

}  // namespace

TEST_CASE("openai_error_body has the exact OpenAI shape", "[openai]") {
    char buf[512];
    StrBuf b(buf, sizeof buf);
    openai_error_body(&b, "No endpoint can serve model \"gpt-4.1\"\n", "server_error", nullptr, "no_healthy_endpoint");
    REQUIRE_FALSE(b.overflow);
    CHECK(std::string(b.data, b.len) ==
          "{\"error\":{\"message\":\"No endpoint can serve model \\\"gpt-4.1\\\"\\n\",\"type\":\"server_error\","
          "\"param\":null,\"code\":\"no_healthy_endpoint\"}}");
    CHECK(valid_json(b));

    b.clear();
    openai_error_body(&b, "bad", "invalid_request_error", "model", nullptr);
    CHECK(std::string(b.data) ==
          "{\"error\":{\"message\":\"bad\",\"type\":\"invalid_request_error\",\"param\":\"model\",\"code\":null}}");

    char small[16];
    StrBuf s(small, sizeof small);
    openai_error_body(&s, "a long message that does not fit", "server_error", nullptr, nullptr);
    CHECK(s.overflow);
    CHECK(s.len < sizeof small);
}

TEST_CASE("openai_stream_error_event is one SSE event", "[openai]") {
    char buf[512];
    StrBuf b(buf, sizeof buf);
    openai_stream_error_event(&b, "upstream reset");
    CHECK(std::string(b.data) ==
          "data: {\"error\":{\"message\":\"upstream reset\",\"type\":\"server_error\",\"param\":null,"
          "\"code\":\"upstream_stream_error\"}}\n\n");
    // It parses back as one error event.
    SseParser* p = new SseParser;
    sse_init(p);
    struct Got {
        int n = 0;
        bool err = false;
    } got;
    auto cb = [](const SseEvent& e, void* u) {
        Got* g = static_cast<Got*>(u);
        g->n++;
        g->err = openai_event_is_error(e);
    };
    REQUIRE(sse_feed(p, b.data, b.len, cb, &got) == SseStatus::ok);
    CHECK(got.n == 1);
    CHECK(got.err);
    delete p;

    b.clear();
    openai_stream_error_event(&b, "stalled", "upstream_timeout");
    CHECK(std::string(b.data).find("\"code\":\"upstream_timeout\"}}\n\n") != std::string::npos);
}

TEST_CASE("openai_chat_probe_body escapes the model", "[openai]") {
    char buf[256];
    StrBuf b(buf, sizeof buf);
    openai_chat_probe_body(&b, "gpt-4o-mini");
    CHECK(std::string(b.data) ==
          "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"ping\"}],\"max_tokens\":1}");
    b.clear();
    openai_chat_probe_body(&b, "we\"ird\\");
    REQUIRE(valid_json(b));
    JsonSpan sp;
    REQUIRE(json_find_key(b.data, b.len, "model", &sp) == 1);
    CHECK(json_span_string_equals(b.data, sp, "we\"ird\\"));
}

TEST_CASE("openai_models_body lists each model once", "[openai]") {
    char buf[1024];
    StrBuf b(buf, sizeof buf);
    const char* models[] = {"gpt-4.1", "gpt-4o-mini", "gpt-4.1", "", "deepseek-v3.2", "gpt-4o-mini"};
    openai_models_body(&b, models, 6);
    CHECK(std::string(b.data) ==
          "{\"object\":\"list\",\"data\":["
          "{\"id\":\"gpt-4.1\",\"object\":\"model\",\"created\":0,\"owned_by\":\"edgeway\"},"
          "{\"id\":\"gpt-4o-mini\",\"object\":\"model\",\"created\":0,\"owned_by\":\"edgeway\"},"
          "{\"id\":\"deepseek-v3.2\",\"object\":\"model\",\"created\":0,\"owned_by\":\"edgeway\"}]}");
    CHECK(valid_json(b));
    b.clear();
    openai_models_body(&b, nullptr, 0);
    CHECK(std::string(b.data) == "{\"object\":\"list\",\"data\":[]}");
}

TEST_CASE("openai_error_type maps HTTP statuses", "[openai]") {
    CHECK(std::string(openai_error_type(400)) == "invalid_request_error");
    CHECK(std::string(openai_error_type(401)) == "authentication_error");
    CHECK(std::string(openai_error_type(403)) == "permission_error");
    CHECK(std::string(openai_error_type(404)) == "not_found_error");
    CHECK(std::string(openai_error_type(409)) == "conflict_error");
    CHECK(std::string(openai_error_type(413)) == "invalid_request_error");
    CHECK(std::string(openai_error_type(422)) == "invalid_request_error");
    CHECK(std::string(openai_error_type(429)) == "rate_limit_error");
    CHECK(std::string(openai_error_type(500)) == "server_error");
    CHECK(std::string(openai_error_type(503)) == "server_error");
    CHECK(std::string(openai_error_type(0)) == "server_error");
}

TEST_CASE("openai_event_is_error", "[openai]") {
    CHECK(openai_event_is_error(event_of("{\"error\":{\"message\":\"overloaded\"}}")));
    CHECK(openai_event_is_error(event_of("{\"message\":\"x\"}", "error")));
    CHECK_FALSE(openai_event_is_error(event_of("{\"choices\":[{\"delta\":{\"content\":\"error\"}}]}")));
    CHECK_FALSE(openai_event_is_error(event_of("{\"choices\":[],\"error\":null}")));
    CHECK_FALSE(openai_event_is_error(event_of("[DONE]")));
    CHECK_FALSE(openai_event_is_error(event_of("not json")));
}

TEST_CASE("openai_find_usage", "[openai]") {
    OpenAIUsage u;
    const char* last = "{\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7,"
                       "\"total_tokens\":18}}";
    REQUIRE(openai_find_usage(last, strlen(last), &u));
    CHECK(u.prompt_tokens == 11);
    CHECK(u.completion_tokens == 7);
    CHECK(u.total_tokens == 18);
    const char* partial = "{\"usage\":{\"prompt_tokens\":3}}";
    REQUIRE(openai_find_usage(partial, strlen(partial), &u));
    CHECK(u.prompt_tokens == 3);
    CHECK(u.completion_tokens == 0);
    const char* none = "{\"choices\":[],\"usage\":null}";
    CHECK_FALSE(openai_find_usage(none, strlen(none), &u));
    CHECK_FALSE(openai_find_usage("[DONE]", 6, &u));
}
