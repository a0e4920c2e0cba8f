// The failover rules of the exchange, driven through scripted upstreams and a manual clock.
#include "ew_catch.h"

#include "harness.h"

using namespace ew_test;

namespace {
constexpr uint8_t A = 0, B = 1;

bool has_header(const std::string& headers, const std::string& line) {
    return headers.find(line + "\r\n") != std::string::npos;
}
}  // namespace

TEST_CASE("a connect error fails over to the next endpoint at once") {
    World w;
    Script refused;
    refused.connect_error = 111;
    w.ups.add(A, refused);
    w.ups.add(B, Script{0, false, json_200()});
    uint64_t t0 = w.clock.now;
    w.request(chat_body());
    w.run();
    CHECK(w.out.status == 200);
    CHECK(w.ex->attempts() == 2);
    CHECK(has_header(w.out.headers, "x-edgeway-endpoint: b"));
    CHECK(w.clock.now == t0);  // no back-off before a different endpoint
    CHECK(w.health[A].consecutive_failures == 1);
    CHECK(w.metrics.failovers[static_cast<size_t>(FailoverReason::connect)] == 1);
}

TEST_CASE("a reset before any answer byte fails over") {
    World w;
    Script reset;
    reset.reset_after = true;
    w.ups.add(A, reset);
    w.ups.add(B, Script{0, false, json_200()});
    w.request(chat_body());
    w.run();
    CHECK(w.out.status == 200);
    CHECK(w.ex->attempts() == 2);
    CHECK(w.health[A].last_kind == ResultKind::connect);
}

TEST_CASE("an upstream that never answers times out after the endpoint's timeout_ms and fails over") {
    World w;
    w.ups.add(A, Script{});  // accepts, reads, never answers
    w.ups.add(B, Script{0, false, json_200()});
    uint64_t t0 = w.clock.now;
    w.request(chat_body());
    w.run();
    CHECK(w.out.status == 200);
    CHECK(w.clock.now - t0 == 30000);
    CHECK(w.health[A].last_kind == ResultKind::timeout);
    CHECK(w.metrics.failovers[static_cast<size_t>(FailoverReason::timeout)] == 1);
}

TEST_CASE("408, 5xx and 429 fail over; 429 rate-limits the model until Retry-After") {
    for (int status : {408, 500, 502, 503, 429}) {
        World w;
        w.ups.add(A, Script{0, false, status_answer(status, status == 429 ? "Retry-After: 7\r\n" : "")});
        w.ups.add(B, Script{0, false, json_200()});
        w.request(chat_body());
        w.run();
        INFO("status " << status);
        CHECK(w.out.status == 200);
        CHECK(w.ex->attempts() == 2);
        if (status == 429) {
            CHECK(w.health[A].model_limited_until_ms[0] == w.clock.now + 7000);
            CHECK_FALSE(health_can_serve(w.health[A], 0, w.clock.now + 6999));
            CHECK(w.health[A].consecutive_failures == 0);  // not a health failure
        } else {
            CHECK(w.health[A].consecutive_failures == 1);
        }
    }
}

TEST_CASE("401 and 403 mark the endpoint's key bad and fail over") {
    for (int status : {401, 403}) {
        World w;
        w.ups.add(A, Script{0, false, status_answer(status)});
        w.ups.add(B, Script{0, false, json_200()});
        w.request(chat_body());
        w.run();
        CHECK(w.out.status == 200);
        CHECK(w.health[A].key_bad);
        CHECK_FALSE(health_can_serve(w.health[A], -1, w.clock.now));
    }
}

TEST_CASE("400, 404 and 422 go back to the client unchanged, with no failover") {
    for (int status : {400, 404, 422}) {
        World w;
        w.ups.add(A, Script{0, false, status_answer(status)});
        w.request(chat_body());
        w.run();
        CHECK(w.out.status == status);
        CHECK(w.out.body.find("upstream says") != std::string::npos);
        CHECK(w.ex->attempts() == 1);
        CHECK(w.ups.opened(B) == 0);
        CHECK(w.health[A].consecutive_failures == 0);
    }
}

TEST_CASE("back-off only before re-trying the same endpoint; max_attempts bounds the request") {
    World w;
    for (int i = 0; i < 4; i++) {
        w.ups.add(A, Script{0, false, status_answer(500)});
        w.ups.add(B, Script{0, false, status_answer(500)});
    }
    uint64_t t0 = w.clock.now;
    w.request(chat_body());
    // Attempts 1 (a) and 2 (b) happen without waiting.
    for (int i = 0; i < 4 && w.ups.opened(B) == 0; i++) w.turn();
    CHECK(w.ups.opened(A) == 1);
    CHECK(w.ups.opened(B) == 1);
    CHECK(w.clock.now == t0);
    w.run();
    CHECK(w.ex->attempts() == 4);
    CHECK(w.out.status == 503);
    CHECK(w.clock.now - t0 >= 100);  // the re-try of a waited at least half the base back-off
    CHECK(has_header(w.out.headers, "x-should-retry: false"));
    CHECK(w.out.body.find("all_endpoints_down") != std::string::npos);
}

TEST_CASE("the request deadline ends a request that cannot be answered in time with 504") {
    World w("[agent]\nrequest_timeout_ms = 5000\n"
            "[endpoint.a]\nurl = http://127.0.0.1:9001/v1\nmodels = test-model\ntimeout_ms = 30000\n");
    w.ups.add(A, Script{});  // never answers
    uint64_t t0 = w.clock.now;
    w.request(chat_body());
    w.run();
    CHECK(w.out.status == 504);
    CHECK(w.clock.now - t0 == 5000);
}

TEST_CASE("every candidate rate limited: 429 with Retry-After; every key rejected: 503 upstream_auth_failed") {
    World w;
    w.ups.add(A, Script{0, false, status_answer(429, "Retry-After: 3\r\n")});
    w.ups.add(B, Script{0, false, status_answer(429, "Retry-After: 3\r\n")});
    w.request(chat_body());
    w.run();
    CHECK(w.out.status == 429);
    CHECK(w.out.body.find("rate_limit_exceeded") != std::string::npos);
    CHECK(has_header(w.out.headers, "Retry-After: 3"));

    World k;
    k.ups.add(A, Script{0, false, status_answer(401)});
    k.ups.add(B, Script{0, false, status_answer(403)});
    k.request(chat_body());
    k.run();
    CHECK(k.out.status == 503);
    CHECK(k.out.body.find("upstream_auth_failed") != std::string::npos);
}

TEST_CASE("every endpoint DOWN: tried anyway, best first (panic routing), not 503 without an attempt") {
    World w;
    for (auto* h : {&w.health[A], &w.health[B]}) {
        Outcome o;
        o.kind = ResultKind::connect;
        for (int i = 0; i < 3; i++) health_record(h, w.params, o, w.clock.now, true);
        REQUIRE(h->state == HealthState::down);
    }
    w.ups.add(A, Script{0, false, json_200()});
    w.request(chat_body());
    w.run();
    CHECK(w.out.status == 200);
    CHECK(has_header(w.out.headers, "x-edgeway-endpoint: a"));
}

TEST_CASE("keep-alive: the next request reuses the parked connection") {
    World w;
    w.ups.add(A, Script{0, false, json_200()});
    w.request(chat_body());
    w.run();
    REQUIRE(w.out.status == 200);
    FakeTransport* t = w.ups.last(A);
    REQUIRE(t != nullptr);
    CHECK_FALSE(t->closed);
    t->next_answer(json_200("{\"second\":true}"));
    w.request(chat_body());
    w.run();
    CHECK(w.out.status == 200);
    CHECK(w.out.body.find("second") != std::string::npos);
    CHECK(w.ups.opened(A) == 1);
}

TEST_CASE("a stale parked connection is retried once on a fresh one, without penalty or a new attempt") {
    World w;
    w.ups.add(A, Script{0, false, json_200()});
    w.request(chat_body());
    w.run();
    FakeTransport* t = w.ups.last(A);
    // The server closed it while parked, which the reuse check cannot see: the request
    // reaches a dead connection.
    t->next_answer("");
    t->script.close_after = true;
    w.ups.add(A, Script{0, false, json_200("{\"fresh\":true}")});
    w.request(chat_body());
    w.run();
    CHECK(w.out.status == 200);
    CHECK(w.out.body.find("fresh") != std::string::npos);
    CHECK(w.ex->attempts() == 1);
    CHECK(w.health[A].consecutive_failures == 0);
    CHECK(w.ups.opened(A) == 2);
}

TEST_CASE("a connection with bytes after its response, or one the server wrote to while parked, is not reused") {
    World w;
    w.ups.add(A, Script{0, false, json_200() + "HTTP/1.1 200 OK\r\n"});
    w.request(chat_body());
    w.run();
    CHECK(w.out.status == 200);
    CHECK(w.ups.last(A)->closed);

    World p;
    p.ups.add(A, Script{0, false, json_200()});
    p.request(chat_body());
    p.run();
    p.ups.last(A)->server_closed_idle = true;
    p.ups.add(A, Script{0, false, json_200("{\"new\":1}")});
    p.request(chat_body());
    p.run();
    CHECK(p.out.body.find("new") != std::string::npos);
    CHECK(p.ups.opened(A) == 2);
}

TEST_CASE("a client that leaves cancels the attempt and closes its connection") {
    World w;
    w.ups.add(A, Script{});  // never answers
    w.request(chat_body());
    w.turn();  // connected and sent; the next turn would reach the timeout
    REQUIRE(w.ex->state() == ExchangeState::awaiting_head);
    w.ex->cancel(w.clock.now);
    CHECK_FALSE(w.ex->active());
    CHECK(w.ups.last(A)->closed);
    CHECK(w.pool->in_use() == 0);
}

TEST_CASE("the exchange's states are printable and follow the attempt") {
    World w;
    Script slow;
    slow.connect_hangs = true;
    w.ups.add(A, slow);
    w.request(chat_body());
    CHECK(std::string(to_string(w.ex->state())) == "connecting");
    w.run();
    CHECK(w.ex->state() == ExchangeState::done);
}
