// Hedged first tokens: a second attempt beside one that is slow to its first data event
// (streaming) or head (JSON); the first to deliver commits, the other is closed unread.
// Upstream bytes arrive when a test appends them; the manual clock jumps to deadlines.
#include "ew_catch.h"

#include "harness.h"

using namespace ew_test;

namespace {
constexpr uint8_t A = 0, B = 1;

const char* const kSseHead = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";

std::string chunk(const std::string& data) {
    char size[32];
    snprintf(size, sizeof size, "%zx\r\n", data.size());
    return size + data + "\r\n";
}

// The two-endpoint world's configuration with more [agent] lines.
std::string agent_with(const char* lines) {
    std::string base = kTwoEndpoints;
    return "[agent]\n" + std::string(lines) + base.substr(strlen("[agent]\n"));
}

struct Hedged {
    explicit Hedged(const char* lines = "hedge_after_ms = 500\n") : ini(agent_with(lines)), w(ini.c_str()) {}
    std::string ini;
    World w;
    // Runs turns until `pred` or the exchange ends.
    template <class P>
    void until(P pred, int max_turns = 200) {
        for (int i = 0; i < max_turns && w.ex->active() && !pred(); i++) w.turn();
    }
    const HedgeStats& hs() const { return w.metrics.hedge; }
};

uint64_t failures(const World& w, uint8_t e) {
    uint64_t n = 0;
    for (size_t k = 0; k < static_cast<size_t>(AttemptOutcome::count); k++)
        if (k != static_cast<size_t>(AttemptOutcome::ok)) n += w.metrics.attempts[e][k];
    return n;
}

}  // namespace

TEST_CASE("hedging is off by default: a slow first token is waited for, not hedged") {
    World w;
    w.ups.add(A, Script{});
    w.ups.add(B, Script{0, false, sse_200({"{\"b\":1}"})});
    w.request(chat_body(true));
    w.turn();
    uint64_t t0 = w.clock.now;
    w.clock.now += 3000;  // 3 s without a byte
    w.ups.last(A)->script.answer = sse_200({"{\"a\":1}"});
    w.run();
    CHECK(w.clock.now == t0 + 3000);
    CHECK(w.ups.opened(B) == 0);
    CHECK(w.out.body.find("{\"a\":1}") != std::string::npos);
    CHECK(w.metrics.hedge.started == 0);
}

TEST_CASE("the hedge starts at hedge_after_ms, not before, on the next candidate beside the first") {
    Hedged h;
    World& w = h.w;
    w.ups.add(A, Script{});
    w.ups.add(B, Script{});
    uint64_t t0 = w.clock.now;
    w.request(chat_body(true));
    h.until([&] { return w.ups.opened(B) > 0; });
    CHECK(w.clock.now == t0 + 500);
    CHECK(w.ups.opened(B) == 1);
    CHECK(w.ex->state() == ExchangeState::hedged);
    CHECK(w.ex->attempts() == 2);
    CHECK(h.hs().started == 1);
    CHECK_FALSE(w.ups.last(A)->closed);  // the first attempt goes on
}

TEST_CASE("streaming: the hedge delivers first; the primary is closed unread, not parked, not a failure") {
    Hedged h;
    World& w = h.w;
    w.ups.add(A, Script{});
    w.ups.add(B, Script{});
    w.request(chat_body(true));
    h.until([&] { return w.ups.opened(B) > 0; });
    REQUIRE(w.ups.last(B) != nullptr);
    w.clock.now += 80;
    w.ups.last(B)->script.answer = sse_200({"{\"from\":\"b\"}"});
    w.run();
    CHECK(w.out.status == 200);
    CHECK(w.out.body.find("\"from\":\"b\"") != std::string::npos);
    CHECK(w.out.headers.find("x-edgeway-endpoint: b\r\n") != std::string::npos);
    CHECK(w.ups.last(A)->closed);
    CHECK(w.pool->idle_count(A) == 0);
    CHECK(failures(w, A) == 0);
    CHECK(w.health[A].consecutive_failures == 0);
    CHECK(h.hs().won_hedge == 1);
    CHECK(h.hs().won_primary == 0);
    CHECK(h.hs().losers_cancelled == 1);
    CHECK(h.hs().in_flight == 0);
    // Bytes the primary sends later go nowhere.
    w.ups.last(A)->script.answer = sse_200({"{\"from\":\"a\"}"});
    w.turn();
    CHECK(w.out.body.find("\"from\":\"a\"") == std::string::npos);
}

TEST_CASE("streaming: the primary delivers first after all; the hedge is closed unread") {
    Hedged h;
    World& w = h.w;
    w.ups.add(A, Script{});
    w.ups.add(B, Script{});
    w.request(chat_body(true));
    h.until([&] { return w.ups.opened(B) > 0; });
    w.clock.now += 20;
    w.ups.last(A)->script.answer = sse_200({"{\"from\":\"a\"}"});
    w.run();
    CHECK(w.out.body.find("\"from\":\"a\"") != std::string::npos);
    CHECK(w.out.headers.find("x-edgeway-endpoint: a\r\n") != std::string::npos);
    CHECK(w.ups.last(B)->closed);
    CHECK(w.pool->idle_count(B) == 0);
    CHECK(failures(w, B) == 0);
    CHECK(h.hs().won_primary == 1);
    CHECK(h.hs().won_hedge == 0);
}

TEST_CASE("streaming: a head in time does not stop the hedge, only a first data event does") {
    Hedged h;
    World& w = h.w;
    w.ups.add(A, Script{0, false, std::string(kSseHead) + chunk(": keep-alive\n\n")});
    w.ups.add(B, Script{});
    w.request(chat_body(true));
    h.until([&] { return w.ups.opened(B) > 0; });
    CHECK(w.ups.opened(B) == 1);
    uint64_t t0 = w.clock.now;
    // The primary's comment was staged and let go: the hedge's reads are not held back.
    w.ups.last(B)->script.answer = kSseHead;
    w.turn();
    w.turn();
    w.ups.last(B)->script.answer += chunk("data: {\"from\":\"b\"}\n\n") + "0\r\n\r\n";
    w.run();
    CHECK(w.clock.now < t0 + 1000);
    CHECK(w.out.body.find("\"from\":\"b\"") != std::string::npos);
    CHECK(w.out.body.find("keep-alive") == std::string::npos);
    CHECK(w.ups.last(A)->closed);
}

TEST_CASE("JSON: no head within hedge_after_ms is hedged; a head in time is not") {
    {
        Hedged h;
        World& w = h.w;
        w.ups.add(A, Script{});
        w.ups.add(B, Script{0, false, json_200("{\"from\":\"b\"}")});
        w.request(chat_body(false));
        w.run();
        CHECK(w.out.body == "{\"from\":\"b\"}");
        CHECK(w.ups.last(A)->closed);
        CHECK(h.hs().won_hedge == 1);
    }
    {
        Hedged h;
        World& w = h.w;
        std::string body = "{\"from\":\"a\"}";
        w.ups.add(A, Script{});
        w.ups.add(B, Script{});
        w.request(chat_body(false));
        w.turn();
        w.clock.now += 300;
        // The head at 300 ms, the body at 2 s: no hedge, the body is waited for.
        w.ups.last(A)->script.answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                                       std::to_string(body.size()) + "\r\n\r\n";
        w.turn();
        CHECK(w.ex->state() == ExchangeState::awaiting_body);
        w.clock.now += 1700;
        w.ups.last(A)->script.answer += body;
        w.run();
        CHECK(w.out.body == body);
        CHECK(w.ups.opened(B) == 0);
        CHECK(h.hs().started == 0);
    }
}

TEST_CASE("an exhausted budget starts no hedge; the budget refills per request at hedge_budget_pct") {
    Hedged h("hedge_after_ms = 500\nhedge_budget_pct = 50\n");
    World& w = h.w;
    w.metrics.hedge.budget_centi = 0;
    w.ups.add(A, Script{0, false, sse_200({"{\"n\":1}"})});
    w.request(chat_body(true));  // earns half a hedge
    w.run();
    w.ups.add(A, Script{});
    w.request(chat_body(true));  // the second half: one hedge
    h.until([&] { return w.ups.opened(B) > 0; });
    CHECK(h.hs().started == 1);
    w.ups.last(B)->script.answer = sse_200({"{\"n\":2}"});
    w.run();
    // The third request has half a hedge again: its slow first token is not hedged.
    w.ups.add(A, Script{});
    w.request(chat_body(true));
    w.turn();
    uint64_t t0 = w.clock.now;
    w.turn();  // the hedge time passes
    CHECK(w.clock.now > t0);
    CHECK(w.ups.opened(B) == 1);
    CHECK(h.hs().skipped[static_cast<size_t>(HedgeSkip::budget)] == 1);
    w.ex->cancel(w.clock.now);
}

TEST_CASE("never hedged onto a RATE_LIMITED endpoint or one whose key was rejected") {
    for (int rejected_key = 0; rejected_key < 2; rejected_key++) {
        Hedged h;
        World& w = h.w;
        if (rejected_key) {
            health_key_bad(&w.health[B], 401, w.clock.now);
        } else {
            w.health[B].state = HealthState::rate_limited;
            w.health[B].rate_limited_until_ms = w.clock.now + 60000;
        }
        w.ups.add(A, Script{});
        w.request(chat_body(true));
        w.turn();
        w.turn();  // past the hedge time
        CHECK(w.clock.now >= 1000000 + 500);
        CHECK(w.ups.opened(B) == 0);
        CHECK(h.hs().started == 0);
        CHECK(h.hs().skipped[static_cast<size_t>(HedgeSkip::no_candidate)] == 1);
        w.ex->cancel(w.clock.now);
    }
}

TEST_CASE("one side fails while the other delivers: the survivor carries on, no third attempt") {
    SECTION("the hedge fails (503), the primary delivers") {
        Hedged h;
        World& w = h.w;
        w.ups.add(A, Script{});
        w.ups.add(B, Script{});
        w.request(chat_body(true));
        h.until([&] { return w.ups.opened(B) > 0; });
        w.ups.last(B)->script.answer = status_answer(503);
        h.until([&] { return w.ex->state() != ExchangeState::hedged; });
        CHECK(w.ex->state() == ExchangeState::awaiting_head);  // only the primary is left
        CHECK(failures(w, B) == 1);                         // a real failure of b
        w.ups.last(A)->script.answer = sse_200({"{\"from\":\"a\"}"});
        w.run();
        CHECK(w.out.body.find("\"from\":\"a\"") != std::string::npos);
        CHECK(w.ex->attempts() == 2);
        CHECK(w.ups.opened(A) == 1);
        CHECK(w.ups.opened(B) == 1);
        CHECK(h.hs().won_primary == 1);
    }
    SECTION("the primary breaks (reset), the hedge delivers") {
        Hedged h;
        World& w = h.w;
        w.ups.add(A, Script{});
        w.ups.add(B, Script{});
        w.request(chat_body(true));
        h.until([&] { return w.ups.opened(B) > 0; });
        w.ups.last(A)->script.reset_after = true;
        h.until([&] { return w.ex->state() != ExchangeState::hedged; });
        CHECK(w.ex->active());
        CHECK(failures(w, A) == 1);
        CHECK(w.ups.opened(A) == 1);  // not retried while the hedge runs
        w.ups.last(B)->script.answer = sse_200({"{\"from\":\"b\"}"});
        w.run();
        CHECK(w.out.body.find("\"from\":\"b\"") != std::string::npos);
        CHECK(w.ex->attempts() == 2);
        CHECK(h.hs().won_hedge == 1);
    }
    SECTION("both fail: the normal failover goes on (back-off, then a is tried again)") {
        Hedged h;
        World& w = h.w;
        w.ups.add(A, Script{});
        w.ups.add(B, Script{});
        w.ups.add(A, Script{0, false, sse_200({"{\"from\":\"a2\"}"})});
        w.request(chat_body(true));
        h.until([&] { return w.ups.opened(B) > 0; });
        w.ups.last(B)->script.answer = status_answer(500);
        w.ups.last(A)->script.answer = status_answer(502);
        w.run();
        CHECK(w.out.body.find("\"from\":\"a2\"") != std::string::npos);
        CHECK(w.ex->attempts() == 3);
        CHECK(h.hs().started == 1);
        CHECK(h.hs().won_primary == 0);
        CHECK(h.hs().won_hedge == 0);
    }
}

TEST_CASE("bytes that come with the hedge's head while the primary stages a partial event") {
    Hedged h;
    World& w = h.w;
    w.ups.add(A, Script{0, false, std::string(kSseHead) + chunk("data: {\"from\":")});  // half an event
    w.ups.add(B, Script{});
    w.request(chat_body(true));
    h.until([&] { return w.ups.opened(B) > 0; });
    // The hedge's whole first event comes with its head: it has delivered, it wins.
    w.ups.last(B)->script.answer = sse_200({"{\"from\":\"b\"}"});
    w.run();
    CHECK(w.out.body.find("\"from\":\"b\"") != std::string::npos);
    CHECK(w.out.body.find("data: {\"from\":\n") == std::string::npos);
    CHECK(w.out.body.rfind("data: {\"from\":\"b\"}", 0) == 0);  // nothing of a's staged bytes before it
    CHECK(w.ups.last(A)->closed);
}

TEST_CASE("a cancelled client closes both attempts of a hedged pair") {
    Hedged h;
    World& w = h.w;
    w.ups.add(A, Script{});
    w.ups.add(B, Script{});
    w.request(chat_body(true));
    h.until([&] { return w.ups.opened(B) > 0; });
    w.ex->cancel(w.clock.now);
    CHECK(w.ups.last(A)->closed);
    CHECK(w.ups.last(B)->closed);
    CHECK(w.pool->in_use() == 0);
    CHECK(h.hs().in_flight == 0);
}

TEST_CASE("auto: the endpoint's p90 first-token time, clamped, with a fallback before there are samples") {
    Hedged h("hedge_after_ms = auto\n");
    World& w = h.w;
    HedgeStats& hs = w.metrics.hedge;
    CHECK(hedge_auto_ms(hs, A, true) == EW_HEDGE_AUTO_FALLBACK_MS);
    // A stream whose first token comes after 300 ms adds a sample to a's streaming ring.
    w.ups.add(A, Script{});
    w.request(chat_body(true));
    w.turn();
    w.clock.now += 300;
    w.ups.last(A)->script.answer = sse_200({"{\"n\":1}"});
    w.run();
    REQUIRE(hs.sample_count[A][1] == 1);
    CHECK(hs.samples[A][1][0] == 300);
    CHECK(hs.sample_count[A][0] == 0);  // JSON heads are kept apart
    for (int i = 0; i < EW_HEDGE_AUTO_MIN_SAMPLES - 1; i++) hedge_observe(&hs, A, true, 300);
    // All alike: the p90 is the median, and `auto` keeps 150 % of the median clear of it.
    CHECK(hedge_auto_ms(hs, A, true) == 450);
    // The next slow stream is hedged at exactly that.
    w.ups.add(A, Script{});
    w.ups.add(B, Script{});
    uint64_t t0 = w.clock.now;
    w.request(chat_body(true));
    h.until([&] { return w.ups.opened(B) > 0; });
    CHECK(w.clock.now == t0 + 450);
    w.ex->cancel(w.clock.now);
    // Nearest-rank p90 and the clamps.
    for (int i = 1; i <= 10; i++) hedge_observe(&hs, B, false, 100u * i);
    CHECK(hedge_auto_ms(hs, B, false) == 900);
    // The primary: 90 % at 50 ms, 10 % at 3 s: hedged at 75 ms, not at the 3 s tail.
    for (int i = 0; i < EW_CAP_HEDGE_SAMPLES; i++) hedge_observe(&hs, B, true, i % 10 == 9 ? 3000 : 50);
    CHECK(hedge_auto_ms(hs, B, true) == 75);
    for (int i = 0; i < EW_CAP_HEDGE_SAMPLES; i++) hedge_observe(&hs, B, true, 20);
    CHECK(hedge_auto_ms(hs, B, true) == EW_HEDGE_AUTO_MIN_MS);
    for (int i = 0; i < EW_CAP_HEDGE_SAMPLES; i++) hedge_observe(&hs, B, true, 60000);
    CHECK(hedge_auto_ms(hs, B, true) == EW_HEDGE_AUTO_MAX_MS);
}
