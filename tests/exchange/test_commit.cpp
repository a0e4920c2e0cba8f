// Commit and relay rules: what a 2xx must look like, when it commits, and how every answer
// that does not end properly ends.
#include "ew_catch.h"

#include "harness.h"

using namespace ew_test;

namespace {
constexpr uint8_t A = 0, B = 1;

std::string chunked(const std::string& head, const std::string& body, bool terminate) {
    char size[32];
    snprintf(size, sizeof size, "%zx\r\n", body.size());
    return head + "Transfer-Encoding: chunked\r\n\r\n" + size + body + "\r\n" + (terminate ? "0\r\n\r\n" : "");
}
const char* const kSseHead = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n";
}  // namespace

TEST_CASE("JSON commits at its first body bytes and is relayed as sent") {
    World w;
    w.ups.add(A, Script{0, false, json_200("  {\"id\":\"r1\"}", "x-request-id: req-7\r\n")});
    w.request(chat_body());
    w.run();
    CHECK(w.out.status == 200);
    CHECK(w.out.chunked);
    CHECK(w.out.body == "  {\"id\":\"r1\"}");
    CHECK(w.out.headers.find("x-upstream-request-id: req-7\r\n") != std::string::npos);
    CHECK(w.out.end == AnswerEnd::complete);
}

TEST_CASE("SSE commits at the first data event; an error event or [DONE] before it fails over") {
    World w;
    w.ups.add(A, Script{0, false, sse_200({"{\"error\":{\"message\":\"overloaded\"}}"}, false)});
    w.ups.add(B, Script{0, false, sse_200({"{\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}"})});
    w.request(chat_body(true));
    w.run();
    CHECK(w.out.status == 200);
    CHECK(w.out.body.find("overloaded") == std::string::npos);
    CHECK(w.out.body.find("\"hi\"") != std::string::npos);
    CHECK(w.out.body.find("data: [DONE]") != std::string::npos);
    CHECK(w.out.end == AnswerEnd::complete);
    CHECK(w.ex->attempts() == 2);
}

TEST_CASE("the first event goes out byte for byte, even split over reads and 5000 lines long") {
    std::string ev = ": keep-alive\n\ndata: {\"a\":1}\n\n";
    std::string lines;
    for (int i = 0; i < 5000; i++) lines += "data:\n";
    lines += "\n";
    // Longer than the staging room (about 40 KB): committed once data has begun, still as sent.
    std::string big;
    for (int i = 0; i < 5000; i++) big += "data: x\n";
    big += "\n";
    for (const std::string& first : {ev, lines, big}) {
        World w;
        Script s{0, false, chunked(kSseHead, first + "data: [DONE]\n\n", true)};
        s.max_read = 7;
        w.ups.add(A, s);
        w.request(chat_body(true));
        w.run(100000);
        CHECK(w.out.status == 200);
        CHECK(w.out.body == first + "data: [DONE]\n\n");
        CHECK(w.out.end == AnswerEnd::complete);
    }
}

TEST_CASE("a first-token timeout fails over a stalled stream") {
    World w;
    w.ups.add(A, Script{0, false, std::string(kSseHead) + "Transfer-Encoding: chunked\r\n\r\n"});
    w.ups.add(B, Script{0, false, sse_200({"{\"x\":1}"})});
    uint64_t t0 = w.clock.now;
    w.request(chat_body(true));
    w.run();
    CHECK(w.out.status == 200);
    CHECK(w.clock.now - t0 == 15000);
    CHECK(w.metrics.failovers[static_cast<size_t>(FailoverReason::first_token)] == 1);
}

TEST_CASE("after commit a broken stream ends with an error event on a fresh boundary and no [DONE]") {
    World w;
    Script s{0, false, chunked(kSseHead, "data: {\"a\":1}\n\ndata: {\"partial", false)};
    s.reset_after = true;
    w.ups.add(A, s);
    w.request(chat_body(true));
    w.run();
    CHECK(w.out.status == 200);
    size_t err = w.out.body.find("upstream_stream_error");
    REQUIRE(err != std::string::npos);
    CHECK(w.out.body.find("[DONE]") == std::string::npos);
    // The cut line was closed before the error event began.
    size_t ev = w.out.body.rfind("data: ", err);
    CHECK(w.out.body.compare(ev - 2, 2, "\n\n") == 0);
    CHECK(w.out.end == AnswerEnd::unfinished);
    CHECK(w.ex->attempts() == 1);  // never two models spliced into one answer
}

TEST_CASE("a stream that ends cleanly without [DONE] ends with the error event, unfinished") {
    World w;
    w.ups.add(A, Script{0, false, sse_200({"{\"a\":1}"}, false)});
    w.request(chat_body(true));
    w.run();
    CHECK(w.out.body.find("upstream_stream_error") != std::string::npos);
    CHECK(w.out.end == AnswerEnd::unfinished);
}

TEST_CASE("1xx heads are skipped and the final answer relayed") {
    World w;
    w.ups.add(A, Script{0, false, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" +
                                      json_200("{\"final\":true}")});
    w.request(chat_body());
    w.run();
    CHECK(w.out.status == 200);
    CHECK(w.out.body == "{\"final\":true}");
    CHECK_FALSE(w.ups.last(A)->closed);  // read to its end: reusable

    World u;
    u.ups.add(A, Script{0, false, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n"});
    u.ups.add(B, Script{0, false, json_200()});
    u.request(chat_body());
    u.run();
    CHECK(u.out.status == 200);
    CHECK(u.out.headers.find("x-edgeway-endpoint: b") != std::string::npos);
}

TEST_CASE("204 is relayed without body framing") {
    World w;
    w.ups.add(A, Script{0, false, "HTTP/1.1 204 No Content\r\n\r\n"});
    w.request(chat_body());
    w.run();
    CHECK(w.out.status == 204);
    CHECK(w.out.bodiless);
    CHECK_FALSE(w.out.chunked);
    CHECK(w.out.end == AnswerEnd::complete);
}

TEST_CASE("a 200 that is not what was asked for fails over, with the reason in last_error") {
    const std::string portal = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 14\r\n\r\n<html>hi</html";
    for (bool stream : {false, true}) {
        World w;
        w.ups.add(A, Script{0, false, portal});
        w.ups.add(B, Script{0, false, stream ? sse_200({"{\"x\":1}"}) : json_200()});
        w.request(chat_body(stream));
        w.run();
        CHECK(w.out.status == 200);
        CHECK(w.out.headers.find("x-edgeway-endpoint: b") != std::string::npos);
        CHECK(std::string(w.health[A].last_error).find("text/html") != std::string::npos);
        CHECK(w.health[A].consecutive_failures == 1);
    }
    World j;
    j.ups.add(A, Script{0, false, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"});
    j.ups.add(B, Script{0, false, json_200()});
    j.request(chat_body());
    j.run();
    CHECK(j.out.headers.find("x-edgeway-endpoint: b") != std::string::npos);
    World r;
    r.ups.add(A, Script{0, false, "HTTP/1.1 302 Found\r\nLocation: http://login/\r\nContent-Length: 0\r\n\r\n"});
    r.ups.add(B, Script{0, false, json_200()});
    r.request(chat_body());
    r.run();
    CHECK(r.out.status == 200);
}

TEST_CASE("a slow client pauses upstream reads without the inactivity timeout firing") {
    World w;
    Script s{0, false, chunked(kSseHead, "data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n", true)};
    s.max_read = 16;
    w.ups.add(A, s);
    w.request(chat_body(true));
    for (int i = 0; i < 50 && w.ex->state() != ExchangeState::committed; i++) w.turn();
    REQUIRE(w.ex->state() == ExchangeState::committed);
    w.out.room = 0;  // the client stops reading
    uint64_t t0 = w.clock.now;
    for (int i = 0; i < 5; i++) w.loop.run_once(60000);
    CHECK(w.ex->active());  // no timeout while we are the ones not reading
    CHECK(w.clock.now - t0 >= 5 * 60000);
    w.out.room = 1 << 20;
    w.ex->on_client_drained(w.clock.now);
    w.run();
    CHECK(w.out.body.find("data: [DONE]") != std::string::npos);
    CHECK(w.out.end == AnswerEnd::complete);
}

TEST_CASE("client values that would reach a head are validated: 400, nothing sent upstream") {
    World w;
    w.request("{\"model\":\"evil\\r\\nSet-Cookie: pwn=1\",\"messages\":[]}");
    CHECK(w.out.status == 400);
    CHECK(w.out.headers.find("Set-Cookie") == std::string::npos);
    CHECK(w.ups.made.empty());
    World l;
    l.request(chat_body(false, std::string(100, 'm').c_str()));
    CHECK(l.out.status == 400);
    CHECK(l.out.body.find("longer than") != std::string::npos);
    for (const char* path : {"/v1/../x", "/v1/%2e%2e/admin", "/v1/chat\\..\\x", "/v1/a/./b"}) {
        World p;
        p.request(chat_body(), path);
        INFO(path);
        CHECK(p.out.status == 400);
        CHECK(p.ups.made.empty());
    }
}
