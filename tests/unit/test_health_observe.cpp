// health_observe: the one rule for what an outcome does to health, for probes and for
// proxied attempts alike. Fake clock throughout.
#include "ew_catch.h"

#include <string.h>
#include <string>

#include "core/health.h"

using namespace ew;

namespace {

Observation http(uint16_t status, bool from_probe, uint32_t latency_ms = 100) {
    Observation o;
    o.kind = ResultKind::http_status;
    o.http_status = status;
    o.latency_ms = latency_ms;
    o.from_probe = from_probe;
    return o;
}

Observation transport(ResultKind kind, bool from_probe, const char* error = "") {
    Observation o;
    o.kind = kind;
    o.from_probe = from_probe;
    o.error = error;
    return o;
}

Observation limited(bool from_probe, int model_index, bool has_retry_after, uint64_t retry_after_ms) {
    Observation o = http(429, from_probe);
    o.model_index = model_index;
    o.has_retry_after = has_retry_after;
    o.retry_after_ms = retry_after_ms;
    return o;
}

struct Fresh {
    HealthParams p;
    Health h;
    Fresh() { health_init(&h); }
    ObservationEffect see(const Observation& o, uint64_t now) { return health_observe(&h, p, o, now); }
};

}  // namespace

TEST_CASE("observe: 429 rate limits until Retry-After and is not a health failure", "[health][observe]") {
    for (bool from_probe : {false, true}) {
        INFO("from_probe " << from_probe);
        Fresh f;
        f.see(transport(ResultKind::timeout, from_probe), 1000);  // one failure before
        CHECK(f.see(limited(from_probe, -1, true, 30000), 2000) == ObservationEffect::rate_limited);
        CHECK(f.h.state == HealthState::rate_limited);
        CHECK_FALSE(health_can_serve(f.h, -1, 31999));
        CHECK(health_can_serve(f.h, -1, 32000));
        CHECK(f.h.rate_limited_until_ms == 32000);
        CHECK(f.h.consecutive_failures == 1);  // unchanged
        CHECK(f.h.ring_count == 1);            // not in the success ring
        CHECK(f.h.last_failure_ms == 1000);
        CHECK(f.h.ejections == 0);
        CHECK(f.h.last_kind == ResultKind::http_status);
        CHECK(f.h.last_http_status == 429);
        CHECK(std::string(f.h.last_error) == "HTTP 429: rate limited for 30000 ms");
        if (from_probe) {
            CHECK(f.h.probes_failed == 2);
            CHECK(f.h.requests == 0);
        } else {
            CHECK(f.h.requests == 2);
            CHECK(f.h.probes_ok + f.h.probes_failed == 0);
        }
        // Many 429s never take it DOWN.
        for (int i = 0; i < 20; i++) f.see(limited(from_probe, -1, true, 1000), 3000 + i);
        CHECK(f.h.state != HealthState::down);
    }
}

TEST_CASE("observe: a 429 without Retry-After limits for rate_limit_default_ms", "[health][observe]") {
    Fresh f;
    REQUIRE(f.p.rate_limit_default_ms == 1000);
    f.see(limited(false, -1, false, 99999), 5000);  // retry_after_ms ignored without has_retry_after
    CHECK(f.h.rate_limited_until_ms == 6000);
    CHECK(std::string(f.h.last_error) == "HTTP 429: rate limited for 1000 ms");
    f.p.rate_limit_default_ms = 250;
    f.see(limited(false, -1, false, 0), 7000);
    CHECK(f.h.rate_limited_until_ms == 7250);
    f.see(limited(false, -1, true, 0), 8000);  // "Retry-After: 0": limited for 0 ms
    CHECK(health_can_serve(f.h, -1, 8000));
}

TEST_CASE("observe: a 429 for one model limits that model only", "[health][observe]") {
    Fresh f;
    f.see(limited(false, 2, true, 4000), 1000);
    CHECK(f.h.state == HealthState::healthy);
    CHECK_FALSE(health_can_serve(f.h, 2, 4999));
    CHECK(health_can_serve(f.h, 1, 4999));
    CHECK(health_can_serve(f.h, -1, 4999));
    CHECK(health_can_serve(f.h, 2, 5000));
    CHECK(f.h.last_http_status == 429);
}

TEST_CASE("observe: 401 and 403 mark the key bad, not the service", "[health][observe]") {
    for (bool from_probe : {false, true}) {
        for (uint16_t status : {uint16_t(401), uint16_t(403)}) {
            INFO("from_probe " << from_probe << " status " << status);
            Fresh f;
            for (int i = 0; i < 5; i++) CHECK(f.see(http(status, from_probe), 1000 + i) == ObservationEffect::key_bad);
            CHECK(f.h.key_bad);
            CHECK(f.h.state != HealthState::down);
            CHECK(f.h.consecutive_failures == 0);
            CHECK(f.h.ring_count == 0);
            CHECK(f.h.last_failure_ms == 0);
            CHECK_FALSE(health_can_serve(f.h, -1, 2000));
            CHECK(f.h.last_kind == ResultKind::http_status);
            CHECK(f.h.last_http_status == status);
            CHECK(std::string(f.h.last_error) == "HTTP " + std::to_string(status) + ": API key rejected");
            CHECK((from_probe ? f.h.probes_failed : f.h.requests) == 5);
        }
    }
}

TEST_CASE("observe: for traffic, a 2xx or a 4xx the client is shown is a success of the service",
          "[health][observe]") {
    for (uint16_t status : {uint16_t(200), uint16_t(201), uint16_t(400), uint16_t(404), uint16_t(409),
                            uint16_t(413), uint16_t(422)}) {
        INFO("status " << status);
        Fresh f;
        f.see(transport(ResultKind::connect, false), 1000);
        f.see(transport(ResultKind::connect, false), 1001);
        CHECK(f.see(http(status, false, 300), 1002) == ObservationEffect::success);
        CHECK(f.h.consecutive_failures == 0);
        CHECK(f.h.consecutive_successes == 1);
        CHECK(f.h.last_success_ms == 1002);
        CHECK(f.h.last_kind == ResultKind::ok);
        CHECK(f.h.last_http_status == status);
        CHECK(f.h.latency_ewma_ms == Approx(300.0f));
        CHECK(f.h.requests == 3);
        // Never DOWN however many of them come.
        for (int i = 0; i < 10; i++) f.see(http(status, false), 2000 + i);
        CHECK(f.h.state == HealthState::healthy);
    }
    SECTION("kind ok with a status is read the same way") {
        Fresh f;
        Observation o = http(404, false);
        o.kind = ResultKind::ok;
        CHECK(f.see(o, 1) == ObservationEffect::success);
    }
}

TEST_CASE("observe: for probes only a 2xx (or a tcp/tls ok) is a success", "[health][observe]") {
    for (uint16_t status : {uint16_t(400), uint16_t(404), uint16_t(422), uint16_t(301), uint16_t(500)}) {
        INFO("status " << status);
        Fresh f;
        CHECK(f.see(http(status, true), 1000) == ObservationEffect::failure);
        CHECK(f.h.consecutive_failures == 1);
        CHECK(f.h.probes_failed == 1);
        CHECK(f.h.last_kind == ResultKind::http_status);
        CHECK(f.h.last_http_status == status);
        CHECK(std::string(f.h.last_error) == "HTTP " + std::to_string(status));
        f.see(http(status, true), 2000);
        f.see(http(status, true), 3000);
        CHECK(f.h.state == HealthState::down);
    }
    SECTION("a 404 reported as kind ok is still a failure, with its status as the error") {
        Fresh f;
        Observation o = http(404, true);
        o.kind = ResultKind::ok;
        CHECK(f.see(o, 1) == ObservationEffect::failure);
        CHECK(f.h.last_kind == ResultKind::http_status);
        CHECK(std::string(f.h.last_error) == "HTTP 404");
    }
    SECTION("200 and tcp/tls ok succeed") {
        Fresh f;
        CHECK(f.see(http(200, true, 80), 1) == ObservationEffect::success);
        CHECK(f.see(transport(ResultKind::ok, true), 2) == ObservationEffect::success);
        CHECK(f.h.probes_ok == 2);
    }
    SECTION("a tcp/tls ok does not clear a bad key; an HTTP 2xx does") {
        Fresh f;
        f.see(http(401, true), 1);
        f.see(transport(ResultKind::ok, true), 2);
        CHECK(f.h.key_bad);
        f.see(http(200, true), 3);
        CHECK_FALSE(f.h.key_bad);
    }
}

TEST_CASE("observe: transport errors, 5xx and 408 are failures whoever saw them", "[health][observe]") {
    struct Case {
        Observation o;
        const char* text;
    };
    for (bool from_probe : {false, true}) {
        const Case cases[] = {
            {transport(ResultKind::connect, from_probe), "connect error"},
            {transport(ResultKind::tls, from_probe, "certificate: unknown CA"), "certificate: unknown CA"},
            {transport(ResultKind::timeout, from_probe), "timeout"},
            {transport(ResultKind::bad_response, from_probe, "text/html answer: captive portal?"),
             "text/html answer: captive portal?"},
            {http(500, from_probe), "HTTP 500"},
            {http(503, from_probe), "HTTP 503"},
            {http(408, from_probe), "HTTP 408"},
            {http(0, from_probe), "bad response"},  // an HTTP status without a status
        };
        for (const Case& c : cases) {
            INFO("from_probe " << from_probe << " " << c.text);
            Fresh f;
            for (uint32_t i = 0; i < f.p.fall; i++) CHECK(f.see(c.o, 1000 + i) == ObservationEffect::failure);
            CHECK(f.h.state == HealthState::down);
            CHECK(f.h.last_failure_ms == 1000 + f.p.fall - 1);
            CHECK(std::string(f.h.last_error) == c.text);
            CHECK((from_probe ? f.h.probes_failed : f.h.requests) == f.p.fall);
        }
    }
}

TEST_CASE("observe: probes and traffic leave the same last result for the same outcome", "[health][observe]") {
    const Observation outcomes[] = {http(503, false), limited(false, -1, true, 2000), http(401, false),
                                    transport(ResultKind::timeout, false), http(200, false)};
    for (const Observation& traffic : outcomes) {
        Observation probe = traffic;
        probe.from_probe = true;
        Fresh a, b;
        health_observe(&a.h, a.p, traffic, 500);
        health_observe(&b.h, b.p, probe, 500);
        INFO("status " << traffic.http_status);
        CHECK(a.h.last_kind == b.h.last_kind);
        CHECK(a.h.last_http_status == b.h.last_http_status);
        CHECK(std::string(a.h.last_error) == b.h.last_error);
        CHECK(a.h.state == b.h.state);
        CHECK(a.h.key_bad == b.h.key_bad);
        CHECK(a.h.rate_limited_until_ms == b.h.rate_limited_until_ms);
    }
    CHECK(std::string(to_string(ObservationEffect::rate_limited)) == "rate_limited");
    CHECK(std::string(to_string(ObservationEffect::key_bad)) == "key_bad");
}
