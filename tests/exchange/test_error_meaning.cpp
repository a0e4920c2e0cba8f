// Upstream error answers read for their meaning: insufficient_quota, context_length_exceeded,
// model_not_found; unknown shapes, oversize bodies and bodies split over reads keep the
// status-code rules. Scripted upstreams, manual clock.
#include "ew_catch.h"

#include "harness.h"

using namespace ew_test;

namespace {
constexpr uint8_t A = 0, B = 1;

bool has_header(const std::string& headers, const std::string& line) {
    return headers.find(line + "\r\n") != std::string::npos;
}

std::string openai_error(const char* message, const char* type, const char* code, const char* param = "null") {
    return std::string("{\"error\":{\"message\":\"") + message + "\",\"type\":\"" + type + "\",\"param\":" + param +
           ",\"code\":\"" + code + "\"}}";
}

// An error answer with a Content-Length body; `extra` are more header lines.
std::string answer(int status, const std::string& body, const char* extra = "",
                   const char* content_type = "application/json; charset=utf-8") {
    return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: " + content_type + "\r\n" + extra +
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// The same body sent chunked, in pieces of `piece` bytes.
std::string chunked_answer(int status, const std::string& body, size_t piece) {
    std::string s = "HTTP/1.1 " + std::to_string(status) +
                    " X\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (size_t i = 0; i < body.size(); i += piece) {
        std::string part = body.substr(i, piece);
        char size[16];
        snprintf(size, sizeof size, "%zx\r\n", part.size());
        s += size + part + "\r\n";
    }
    return s + "0\r\n\r\n";
}

const std::string kQuota = openai_error(
    "You exceeded your current quota, please check your plan and billing details.", "insufficient_quota",
    "insufficient_quota");
const std::string kContext = openai_error(
    "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
    "invalid_request_error", "context_length_exceeded", "\"messages\"");
const std::string kNotFound = openai_error("The model `test-model` does not exist or you do not have access to it.",
                                           "invalid_request_error", "model_not_found");

// "small" has a short context; "big" a long one. a serves both (priority 10), b only big.
const char* const kContextIni =
    "[agent]\nmax_attempts = 4\n"
    "[endpoint.a]\nurl = http://127.0.0.1:9001/v1\nmodels = small, big\npriority = 10\n"
    "[endpoint.b]\nurl = http://127.0.0.1:9002/v1\nmodels = big\npriority = 5\n"
    "[context_fallback]\nsmall = big\n";

// The model the n-th connection to `ep` was asked for.
std::string model_sent(World& w, uint8_t ep, size_t nth) {
    size_t seen = 0;
    for (size_t i = 0; i < w.ups.made.size(); i++) {
        if (w.ups.made_for[i] != ep) continue;
        if (seen++ != nth) continue;
        const std::string& s = w.ups.made[i]->written;
        size_t p = s.find("\"model\":\"");
        if (p == std::string::npos) return "";
        p += 9;
        return s.substr(p, s.find('"', p) - p);
    }
    return "";
}

}  // namespace

TEST_CASE("429 insufficient_quota: the key is exhausted for an hour (not a rate limit) and the request fails over") {
    World w;
    w.ups.add(A, Script{0, false, answer(429, kQuota, "Retry-After: 2\r\n")});
    w.ups.add(B, Script{0, false, json_200()});
    w.request(chat_body());
    w.run();
    CHECK(w.out.status == 200);
    CHECK(has_header(w.out.headers, "x-edgeway-endpoint: b"));
    CHECK(w.ex->attempts() == 2);
    const Health& a = w.health[A];
    CHECK(a.key_exhausted_until_ms == w.clock.now + EW_KEY_EXHAUSTED_MS);
    CHECK(a.model_limited_until_ms[0] == 0);  // not the 2 s the Retry-After said
    CHECK(a.rate_limited_until_ms == 0);
    CHECK(a.consecutive_failures == 0);       // not a health failure either
    CHECK(std::string(a.last_error).find("insufficient_quota") != std::string::npos);
    CHECK(w.metrics.failovers[static_cast<size_t>(FailoverReason::quota)] == 1);
    CHECK_FALSE(health_can_serve(a, 0, w.clock.now + EW_KEY_EXHAUSTED_MS - 1));
    CHECK(std::string(health_status_class(a, w.params)) == "unhealthy");
    // The body was read to its end: the connection is parked, not closed.
    CHECK_FALSE(w.ups.last(A)->closed);

    // An hour minus a moment later, the next request does not try a at all.
    w.clock.now += EW_KEY_EXHAUSTED_MS - 1000;
    w.ups.add(B, Script{0, false, json_200()});
    w.ups.last(B)->next_answer(json_200());
    w.request(chat_body());
    w.run();
    CHECK(w.out.status == 200);
    CHECK(has_header(w.out.headers, "x-edgeway-endpoint: b"));
    CHECK(w.ex->attempts() == 1);
    CHECK(w.ups.last(A)->requests == 1);

    // After the hour, a serves again.
    w.clock.now += 2000;
    health_tick(&w.health[A], w.params, w.clock.now);
    CHECK(w.health[A].key_exhausted_until_ms == 0);
    CHECK(health_can_serve(w.health[A], 0, w.clock.now));
}

TEST_CASE("every key out of quota: 429 insufficient_quota with x-should-retry false, then without an attempt") {
    World w;
    w.ups.add(A, Script{0, false, answer(429, kQuota)});
    w.ups.add(B, Script{0, false, answer(429, kQuota)});
    w.request(chat_body());
    w.run();
    CHECK(w.out.status == 429);
    CHECK(w.out.body.find("\"code\":\"insufficient_quota\"") != std::string::npos);
    CHECK(has_header(w.out.headers, "x-should-retry: false"));
    CHECK(has_header(w.out.headers, "Retry-After: 3600"));
    CHECK(w.ex->attempts() == 2);

    w.request(chat_body());
    w.run();
    CHECK(w.out.status == 429);
    CHECK(w.out.body.find("\"code\":\"insufficient_quota\"") != std::string::npos);
    CHECK(w.ex->attempts() == 0);
}

TEST_CASE("400 context_length_exceeded fails over to the [context_fallback] model, on the best endpoint for it") {
    World w(kContextIni);
    w.ups.add(A, Script{0, false, answer(400, kContext, "Connection: close\r\n")});
    w.ups.add(A, Script{0, false, json_200("{\"id\":\"big-answer\",\"choices\":[]}")});
    w.request(chat_body(false, "small"));
    w.run();
    CHECK(w.out.status == 200);
    CHECK(w.out.body.find("big-answer") != std::string::npos);
    CHECK(has_header(w.out.headers, "x-edgeway-endpoint: a"));
    CHECK(has_header(w.out.headers, "x-edgeway-model: big"));
    CHECK(w.ex->attempts() == 2);
    CHECK(model_sent(w, A, 0) == "small");
    CHECK(model_sent(w, A, 1) == "big");
    CHECK(w.health[A].consecutive_failures == 0);  // the service answered properly
    CHECK(w.metrics.failovers[static_cast<size_t>(FailoverReason::context_length)] == 1);
    CHECK(w.metrics.fallback_triggered == 1);
}

TEST_CASE("400 context_length_exceeded without a [context_fallback] rule: the 400 as the upstream sent it") {
    World w;  // no [context_fallback]
    w.ups.add(A, Script{0, false, answer(400, kContext, "x-request-id: req_up_1\r\n")});
    w.request(chat_body());
    w.run();
    CHECK(w.out.status == 400);
    CHECK(w.out.body == kContext);
    CHECK(w.out.content_type == "application/json; charset=utf-8");
    CHECK(w.out.headers.find("req_up_1") != std::string::npos);  // the relayed upstream headers too
    CHECK(has_header(w.out.headers, "x-edgeway-endpoint: a"));
    CHECK(w.ex->attempts() == 1);
    CHECK(w.ups.opened(B) == 0);
    CHECK(w.out.end == AnswerEnd::complete);
}

TEST_CASE("context fallback models that all fail: the client gets the kept 400, byte for byte") {
    World w(kContextIni);
    w.ups.add(A, Script{0, false, answer(400, kContext, "Connection: close\r\n")});
    w.ups.add(A, Script{0, false, status_answer(503)});
    w.ups.add(B, Script{0, false, status_answer(503)});
    // Later passes (after back-off) find nothing scripted: connect refused.
    w.request(chat_body(false, "small"));
    w.run();
    CHECK(w.out.status == 400);
    CHECK(w.out.body == kContext);
    CHECK(has_header(w.out.headers, "x-edgeway-endpoint: a"));
    CHECK(has_header(w.out.headers, "x-edgeway-model: small"));
    CHECK(w.ex->attempts() == 4);  // max_attempts spent on big
    CHECK(model_sent(w, B, 0) == "big");
}

TEST_CASE("404 model_not_found: that (endpoint, model) is unavailable for five minutes; the request fails over") {
    World w;
    w.ups.add(A, Script{0, false, answer(404, kNotFound)});
    w.ups.add(B, Script{0, false, json_200()});
    w.request(chat_body());
    w.run();
    CHECK(w.out.status == 200);
    CHECK(has_header(w.out.headers, "x-edgeway-endpoint: b"));
    CHECK(w.ex->attempts() == 2);
    const Health& a = w.health[A];
    CHECK(a.model_unavailable_until_ms[0] == w.clock.now + EW_MODEL_UNAVAILABLE_MS);
    CHECK(a.consecutive_failures == 0);
    CHECK(a.state == HealthState::healthy);  // the endpoint itself is fine
    CHECK(w.metrics.failovers[static_cast<size_t>(FailoverReason::model_not_found)] == 1);

    // The next request goes to b directly.
    w.ups.last(B)->next_answer(json_200());
    w.request(chat_body());
    w.run();
    CHECK(has_header(w.out.headers, "x-edgeway-endpoint: b"));
    CHECK(w.ex->attempts() == 1);
    CHECK(w.ups.last(A)->requests == 1);

    w.clock.now += EW_MODEL_UNAVAILABLE_MS;
    health_tick(&w.health[A], w.params, w.clock.now);
    CHECK(health_can_serve(w.health[A], 0, w.clock.now));
}

TEST_CASE("404 model_not_found where no other endpoint can serve: the upstream's 404 as sent") {
    World w;
    std::string other = openai_error("b has no such model either", "invalid_request_error", "model_not_found");
    w.ups.add(A, Script{0, false, answer(404, kNotFound)});
    w.ups.add(B, Script{0, false, answer(404, other, "x-request-id: req_b\r\n")});
    w.request(chat_body());
    w.run();
    CHECK(w.out.status == 404);
    CHECK(w.out.body == other);  // the newest kept answer
    CHECK(has_header(w.out.headers, "x-edgeway-endpoint: b"));
    CHECK(w.out.headers.find("req_b") != std::string::npos);
    CHECK(w.ex->attempts() == 2);

    // Both now unavailable for the model: the next request is answered 503 without an attempt.
    w.request(chat_body());
    w.run();
    CHECK(w.ex->attempts() == 0);
    CHECK(w.out.status == 503);
}

TEST_CASE("404 model_not_found, the other endpoint failing: the 404, not a 503") {
    World w;
    w.ups.add(A, Script{0, false, answer(404, kNotFound)});
    w.ups.add(B, Script{0, false, status_answer(503)});
    w.request(chat_body());
    w.run();
    CHECK(w.out.status == 404);
    CHECK(w.out.body == kNotFound);
    CHECK(has_header(w.out.headers, "x-edgeway-endpoint: a"));
}

TEST_CASE("unknown shapes keep the status-code rules") {
    SECTION("429 with another code is a rate limit") {
        World w;
        w.ups.add(A, Script{0, false,
                            answer(429, openai_error("slow down", "requests", "rate_limit_exceeded"),
                                   "Retry-After: 7\r\n")});
        w.ups.add(B, Script{0, false, json_200()});
        w.request(chat_body());
        w.run();
        CHECK(w.out.status == 200);
        CHECK(w.health[A].model_limited_until_ms[0] == w.clock.now + 7000);
        CHECK(w.health[A].key_exhausted_until_ms == 0);
    }
    SECTION("400 / 404 with other codes, numbers or other shapes are relayed, no failover") {
        const std::string bodies[] = {
            openai_error("bad temperature", "invalid_request_error", "invalid_value"),
            "{\"object\":\"error\",\"message\":\"The model `x` does not exist.\",\"type\":\"NotFoundError\","
            "\"param\":null,\"code\":404}",
            "{\"error\":\"context_length_exceeded\"}",
            "{\"error\":{\"code\":404,\"type\":\"model_not_found\"}",  // not valid JSON
            "[\"model_not_found\"]",
        };
        for (int status : {400, 404}) {
            for (const std::string& b : bodies) {
                World w;
                w.ups.add(A, Script{0, false, answer(status, b)});
                w.request(chat_body());
                w.run();
                INFO(status << " " << b);
                CHECK(w.out.status == status);
                CHECK(w.out.body == b);
                CHECK(w.ex->attempts() == 1);
                CHECK(w.ups.opened(B) == 0);
            }
        }
    }
    SECTION("the code only counts with its status: 400 insufficient_quota, 429 model_not_found") {
        World w;
        w.ups.add(A, Script{0, false, answer(400, kQuota)});
        w.request(chat_body());
        w.run();
        CHECK(w.out.status == 400);
        CHECK(w.out.body == kQuota);
        CHECK(w.health[A].key_exhausted_until_ms == 0);

        World v;
        v.ups.add(A, Script{0, false, answer(429, kNotFound)});
        v.ups.add(B, Script{0, false, json_200()});
        v.request(chat_body());
        v.run();
        CHECK(v.out.status == 200);
        CHECK(v.health[A].model_limited_until_ms[0] > 0);  // a rate limit
        CHECK(v.health[A].model_unavailable_until_ms[0] == 0);
    }
    SECTION("a body not declared JSON is not read: relayed as it comes") {
        World w;
        w.ups.add(A, Script{0, false, answer(404, kNotFound, "", "text/plain")});
        w.request(chat_body());
        w.run();
        CHECK(w.out.status == 404);
        CHECK(w.out.body == kNotFound);
        CHECK(w.ups.opened(B) == 0);
    }
    SECTION("a type without a code is read (some compatible servers send only the type)") {
        World w;
        w.ups.add(A, Script{0, false, answer(429, "{\"error\":{\"message\":\"quota\",\"type\":\"insufficient_quota\"}}")});
        w.ups.add(B, Script{0, false, json_200()});
        w.request(chat_body());
        w.run();
        CHECK(w.out.status == 200);
        CHECK(w.health[A].key_exhausted_until_ms > 0);
    }
}

TEST_CASE("a body larger than EW_CAP_ERROR_BODY is handled as it comes, by the status rules") {
    std::string pad(EW_CAP_ERROR_BODY, 'x');
    SECTION("a 400 context_length_exceeded is relayed byte for byte, no context fallback") {
        World w(kContextIni);
        std::string big = openai_error(pad.c_str(), "invalid_request_error", "context_length_exceeded");
        Script s{0, false, answer(400, big)};
        s.max_read = 1000;
        w.ups.add(A, s);
        w.request(chat_body(false, "small"));
        w.run();
        CHECK(w.out.status == 400);
        CHECK(w.out.body == big);
        CHECK(w.ex->attempts() == 1);
        CHECK(w.ups.made.size() == 1);
    }
    SECTION("a 429 insufficient_quota is a rate limit") {
        World w;
        w.ups.add(A, Script{0, false, answer(429, openai_error(pad.c_str(), "insufficient_quota", "insufficient_quota"))});
        w.ups.add(B, Script{0, false, json_200()});
        w.request(chat_body());
        w.run();
        CHECK(w.out.status == 200);
        CHECK(w.health[A].key_exhausted_until_ms == 0);
        CHECK(w.health[A].model_limited_until_ms[0] > 0);
    }
}

TEST_CASE("a body split over many reads, or sent chunked, is read whole before deciding") {
    SECTION("3 bytes per read") {
        World w;
        Script s{0, false, answer(429, kQuota)};
        s.max_read = 3;
        w.ups.add(A, s);
        w.ups.add(B, Script{0, false, json_200()});
        w.request(chat_body());
        w.run();
        CHECK(w.out.status == 200);
        CHECK(w.health[A].key_exhausted_until_ms > 0);
    }
    SECTION("chunked in 10-byte chunks, 7 bytes per read; then relayed as sent when nothing else can serve") {
        World w;
        Script s{0, false, chunked_answer(404, kNotFound, 10)};
        s.max_read = 7;
        w.ups.add(A, s);
        w.ups.add(B, Script{0, false, status_answer(500)});
        w.request(chat_body());
        w.run();
        CHECK(w.out.status == 404);
        CHECK(w.out.body == kNotFound);
        CHECK(w.health[A].model_unavailable_until_ms[0] > 0);
    }
}

TEST_CASE("the attempt's timeout applies while an error body is read") {
    SECTION("a 429 whose body stalls: a rate limit after timeout_ms") {
        World w;
        std::string a = answer(429, kQuota);
        w.ups.add(A, Script{0, false, a.substr(0, a.size() - 10)});  // the body never ends
        w.ups.add(B, Script{0, false, json_200()});
        uint64_t t0 = w.clock.now;
        w.request(chat_body());
        for (int i = 0; i < 4 && w.ex->state() != ExchangeState::awaiting_error_body; i++) w.turn();
        CHECK(w.ex->state() == ExchangeState::awaiting_error_body);
        CHECK(std::string(to_string(w.ex->state())) == "awaiting_error_body");
        w.run();
        CHECK(w.out.status == 200);
        CHECK(w.clock.now - t0 == 30000);
        CHECK(w.health[A].key_exhausted_until_ms == 0);
        CHECK(w.health[A].model_limited_until_ms[0] > 0);
    }
    SECTION("a 400 whose body stalls: a timeout, failed over") {
        World w;
        std::string a = answer(400, kContext);
        w.ups.add(A, Script{0, false, a.substr(0, a.size() - 10)});
        w.ups.add(B, Script{0, false, json_200()});
        w.request(chat_body());
        w.run();
        CHECK(w.out.status == 200);
        CHECK(w.health[A].last_kind == ResultKind::timeout);
    }
}

TEST_CASE("the request deadline with a kept answer: the upstream's answer, not a 504") {
    World w("[agent]\nrequest_timeout_ms = 5000\n"
            "[endpoint.a]\nurl = http://127.0.0.1:9001/v1\nmodels = test-model\npriority = 10\n"
            "[endpoint.b]\nurl = http://127.0.0.1:9002/v1\nmodels = test-model\npriority = 5\n");
    w.ups.add(A, Script{0, false, answer(404, kNotFound)});
    w.ups.add(B, Script{});  // never answers
    w.request(chat_body());
    w.run();
    CHECK(w.out.status == 404);
    CHECK(w.out.body == kNotFound);
}

TEST_CASE("a streaming request's context_length_exceeded moves to the larger model, whose stream is relayed") {
    World w(kContextIni);
    w.ups.add(A, Script{0, false, answer(400, kContext, "Connection: close\r\n")});
    w.ups.add(A, Script{0, false, sse_200({"{\"choices\":[{\"delta\":{\"content\":\"long\"}}]}"})});
    w.request(chat_body(true, "small"));
    w.run();
    CHECK(w.out.status == 200);
    CHECK(w.out.content_type == "text/event-stream");
    CHECK(w.out.body.find("long") != std::string::npos);
    CHECK(w.out.body.find("[DONE]") != std::string::npos);
    CHECK(has_header(w.out.headers, "x-edgeway-model: big"));
    CHECK(w.out.end == AnswerEnd::complete);
}

TEST_CASE("a context_length_exceeded from the larger model too: its rule, if any, else the newest 400") {
    World w("[agent]\nmax_attempts = 4\n"
            "[endpoint.a]\nurl = http://127.0.0.1:9001/v1\nmodels = small, big, huge\npriority = 10\n"
            "[context_fallback]\nsmall = big\nbig = huge, small\n");
    std::string big_says = openai_error("big: 200000 tokens at most", "invalid_request_error", "context_length_exceeded");
    w.ups.add(A, Script{0, false, answer(400, kContext, "Connection: close\r\n")});
    w.ups.add(A, Script{0, false, answer(400, big_says, "Connection: close\r\n")});
    w.ups.add(A, Script{0, false, json_200("{\"id\":\"huge-answer\"}")});
    w.request(chat_body(false, "small"));
    w.run();
    CHECK(w.out.status == 200);
    CHECK(has_header(w.out.headers, "x-edgeway-model: huge"));
    CHECK(model_sent(w, A, 2) == "huge");  // small is not asked again (it said so already)
    CHECK(w.ups.made.size() == 3);

    World v("[agent]\nmax_attempts = 4\n"
            "[endpoint.a]\nurl = http://127.0.0.1:9001/v1\nmodels = small, big\npriority = 10\n"
            "[context_fallback]\nsmall = big\nbig = small\n");
    v.ups.add(A, Script{0, false, answer(400, kContext, "Connection: close\r\n")});
    v.ups.add(A, Script{0, false, answer(400, big_says, "Connection: close\r\n")});
    v.request(chat_body(false, "small"));
    v.run();
    CHECK(v.out.status == 400);
    CHECK(v.out.body == big_says);  // the cycle ends: the newest 400, as sent
    CHECK(v.ex->attempts() == 2);
}
