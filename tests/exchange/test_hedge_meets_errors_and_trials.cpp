// A hedged pair meeting the other two exchange features: upstream error bodies read for their
// meaning (proxy_error.cpp) and half-open trial requests (health_trial_begin). The rules:
//   - an error answer read while the other attempt is in flight ends only its own attempt
//     (insufficient_quota, model_not_found: a failure, the other carries on); a 400 of no
//     meaning commits; context_length_exceeded moves the request and closes the other attempt;
//   - a hedge never goes to a trial candidate; a primary on trial that loses to its hedge
//     abandons its trial (no outcome: the slot is free, the endpoint stays DOWN).
// Scripted upstreams, manual clock.
#include "ew_catch.h"

#include "core/probe_budget.h"
#include "harness.h"

using namespace ew_test;

namespace {
constexpr uint8_t A = 0, B = 1;

std::string agent_with(const char* base, const char* lines) {
    std::string b = base;
    return "[agent]\n" + std::string(lines) + b.substr(strlen("[agent]\n"));
}

std::string openai_error(const char* type, const char* code) {
    return std::string("{\"error\":{\"message\":\"m\",\"type\":\"") + type + "\",\"param\":null,\"code\":\"" + code +
           "\"}}";
}

std::string answer(int status, const std::string& body) {
    return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
}

struct Hedged {
    explicit Hedged(const char* base = kTwoEndpoints) : ini(agent_with(base, "hedge_after_ms = 500\n")), w(ini.c_str()) {}
    std::string ini;
    World w;
    template <class P>
    void until(P pred, int max_turns = 200) {
        for (int i = 0; i < max_turns && w.ex->active() && !pred(); i++) w.turn();
    }
    const HedgeStats& hs() const { return w.metrics.hedge; }
};

// Takes endpoint `e` DOWN by three live chat 503s under a /models probe, then lets its
// cooldown pass: a trial is open (health_trial_open).
void down_with_trial_open(World& w, uint8_t e) {
    Health& h = w.health[e];
    h.probe_level = probe_level_of(ProbeKind::models);
    for (int i = 0; i < 3; i++) {
        Observation o;
        o.kind = ResultKind::http_status;
        o.http_status = 503;
        o.latency_ms = 50;
        health_observe(&h, w.params, o, w.clock.now);
    }
    REQUIRE(h.state == HealthState::down);
    REQUIRE(health_needs_trial(h));
    w.clock.now = h.trial_at_ms > w.clock.now ? h.trial_at_ms : w.clock.now;
    REQUIRE(health_trial_open(h, 1, 0, w.clock.now));
}

}  // namespace

TEST_CASE("hedge x error body: the hedge's 404 model_not_found fails only the hedge; the primary delivers") {
    Hedged h;
    World& w = h.w;
    w.ups.add(A, Script{});
    w.ups.add(B, Script{0, false, answer(404, openai_error("invalid_request_error", "model_not_found"))});
    w.request(chat_body(true));
    h.until([&] { return w.ups.opened(B) > 0 && w.ex->state() != ExchangeState::hedged; });
    CHECK(w.health[B].model_unavailable_until_ms[0] > w.clock.now);  // read for its meaning
    CHECK_FALSE(w.ups.last(A)->closed);                             // the primary carries on
    w.ups.last(A)->script.answer = sse_200({"{\"from\":\"a\"}"});
    w.run();
    CHECK(w.out.status == 200);
    CHECK(w.out.body.find("\"from\":\"a\"") != std::string::npos);
    CHECK(w.out.headers.find("x-edgeway-endpoint: a\r\n") != std::string::npos);
    CHECK(h.hs().started == 1);
    CHECK(h.hs().in_flight == 0);
}

TEST_CASE("hedge x error body: the primary's 429 insufficient_quota exhausts its key; the hedge serves") {
    Hedged h;
    World& w = h.w;
    w.ups.add(A, Script{});
    w.ups.add(B, Script{});
    w.request(chat_body(true));
    h.until([&] { return w.ups.opened(B) > 0; });
    REQUIRE(w.ex->state() == ExchangeState::hedged);
    w.ups.last(A)->script.answer = answer(429, openai_error("insufficient_quota", "insufficient_quota"));
    h.until([&] { return w.health[A].key_exhausted_until_ms > 0; });
    CHECK(health_key_exhausted_now(w.health[A], w.clock.now));
    CHECK_FALSE(w.ups.last(B)->closed);
    w.ups.last(B)->script.answer = sse_200({"{\"from\":\"b\"}"});
    w.run();
    CHECK(w.out.status == 200);
    CHECK(w.out.body.find("\"from\":\"b\"") != std::string::npos);
    CHECK(w.ex->attempts() == 2);  // no third attempt: the hedge was already in flight
}

TEST_CASE("hedge x error body: a 400 of no meaning here is the upstream's answer: it commits, the other loses") {
    Hedged h;
    World& w = h.w;
    w.ups.add(A, Script{});
    w.ups.add(B, Script{});
    w.request(chat_body(true));
    h.until([&] { return w.ups.opened(B) > 0; });
    const std::string bad = openai_error("invalid_request_error", "invalid_value");
    w.ups.last(B)->script.answer = answer(400, bad);
    w.run();
    CHECK(w.out.status == 400);
    CHECK(w.out.body.find("invalid_value") != std::string::npos);
    CHECK(w.ups.last(A)->closed);
    CHECK(h.hs().won_hedge == 1);
    CHECK(h.hs().losers_cancelled == 1);
}

TEST_CASE("hedge x error body: context_length_exceeded moves the request; the other attempt is closed as a loser") {
    const char* ini =
        "[agent]\nmax_attempts = 4\n"
        "[endpoint.a]\nurl = http://127.0.0.1:9001/v1\nmodels = small, big\npriority = 10\n"
        "[endpoint.b]\nurl = http://127.0.0.1:9002/v1\nmodels = small\npriority = 5\n"
        "[context_fallback]\nsmall = big\n";
    Hedged h(ini);
    World& w = h.w;
    w.ups.add(A, Script{});
    w.ups.add(B, Script{});
    w.ups.add(A, Script{0, false, sse_200({"{\"from\":\"big\"}"})});
    w.request(chat_body(true, "small"));
    h.until([&] { return w.ups.opened(B) > 0; });
    REQUIRE(w.ex->state() == ExchangeState::hedged);
    w.ups.last(B)->script.answer =
        answer(400, openai_error("invalid_request_error", "context_length_exceeded"));
    w.run();
    CHECK(w.out.status == 200);
    CHECK(w.out.body.find("\"from\":\"big\"") != std::string::npos);
    CHECK(w.ups.opened(A) == 2);
    CHECK(w.ups.made.size() == 3);
    CHECK(h.hs().losers_cancelled == 1);
    CHECK(w.metrics.failovers[static_cast<size_t>(FailoverReason::context_length)] == 1);
    CHECK(w.health[A].consecutive_failures == 0);  // closed as a loser, not failed
}

TEST_CASE("hedge x trial: a hedge never goes to a DOWN endpoint's trial") {
    Hedged h;
    World& w = h.w;
    down_with_trial_open(w, B);
    w.ups.add(A, Script{});
    w.ups.add(B, Script{0, false, sse_200({"{\"from\":\"b\"}"})});
    w.request(chat_body(true));
    uint64_t t0 = w.clock.now;
    h.until([&] { return w.clock.now >= t0 + 500; });
    CHECK(w.ups.opened(B) == 0);
    CHECK(h.hs().started == 0);
    CHECK(h.hs().skipped[static_cast<size_t>(HedgeSkip::no_candidate)] == 1);
    CHECK(w.health[B].trials_started == 0);
    CHECK(health_trial_open(w.health[B], 1, 0, w.clock.now));  // still there for a request of its own
    w.ups.last(A)->script.answer = sse_200({"{\"from\":\"a\"}"});
    w.run();
    CHECK(w.out.body.find("\"from\":\"a\"") != std::string::npos);
}

TEST_CASE("hedge x trial: a primary on trial that loses to its hedge abandons its trial (no outcome)") {
    Hedged h;
    World& w = h.w;
    down_with_trial_open(w, A);
    w.ups.add(A, Script{});
    w.ups.add(B, Script{});
    w.request(chat_body(true));
    w.turn();
    REQUIRE(w.ups.opened(A) == 1);  // the trial: A ranks first
    CHECK(health_trials_in_flight(w.health[A], w.clock.now) == 1);
    h.until([&] { return w.ups.opened(B) > 0; });
    REQUIRE(w.ex->state() == ExchangeState::hedged);
    w.ups.last(B)->script.answer = sse_200({"{\"from\":\"b\"}"});
    w.run();
    CHECK(w.out.body.find("\"from\":\"b\"") != std::string::npos);
    CHECK(w.ups.last(A)->closed);
    const Health& a = w.health[A];
    CHECK(health_trials_in_flight(a, w.clock.now) == 0);  // the slot is free again
    CHECK(a.trials_failed == 0);
    CHECK(a.trials_passed == 0);
    CHECK(a.state == HealthState::down);
    CHECK(health_trial_open(a, 1, 0, w.clock.now));
}

TEST_CASE("hedge x trial: a primary on trial that delivers first passes its trial") {
    Hedged h;
    World& w = h.w;
    down_with_trial_open(w, A);
    w.ups.add(A, Script{});
    w.ups.add(B, Script{});
    w.request(chat_body(true));
    h.until([&] { return w.ups.opened(B) > 0; });
    REQUIRE(w.ex->state() == ExchangeState::hedged);
    w.ups.last(A)->script.answer = sse_200({"{\"from\":\"a\"}"});
    w.run();
    CHECK(w.out.body.find("\"from\":\"a\"") != std::string::npos);
    CHECK(w.ups.last(B)->closed);
    CHECK(w.health[A].trials_passed == 1);
    CHECK(w.health[A].state != HealthState::down);
    CHECK(health_trials_in_flight(w.health[A], w.clock.now) == 0);
}
