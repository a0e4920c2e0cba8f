// Health: EWMA, ring, score, HEALTHY/DEGRADED/DOWN/RATE_LIMITED, driven by a fake clock.
#include "ew_catch.h"

#include <string.h>

#include "core/health.h"

using namespace ew;

namespace {

Outcome ok_after(uint32_t latency_ms) {
    Outcome o;
    o.kind = ResultKind::ok;
    o.latency_ms = latency_ms;
    o.http_status = 200;
    return o;
}

Outcome failed(ResultKind kind = ResultKind::timeout, uint16_t status = 0, const char* error = "") {
    Outcome o;
    o.kind = kind;
    o.http_status = status;
    o.error = error;
    return o;
}

// Drives one endpoint into DOWN with `fall` failures at `now`.
void eject(Health* h, const HealthParams& p, uint64_t now) {
    for (uint32_t i = 0; i < p.fall; i++) health_record(h, p, failed(), now, true);
    REQUIRE(h->state == HealthState::down);
}

}  // namespace

TEST_CASE("health: six hours of probes every 30 s with one outage", "[health]") {
    HealthParams p;  // fall 3, rise 2, cooldown 5 s (up to 60 s while flapping)
    Health h;
    health_init(&h);
    const uint64_t six_hours = 6ull * 3600 * 1000;
    const uint64_t outage_from = 2ull * 3600 * 1000, outage_to = outage_from + 10 * 60 * 1000;
    uint64_t now = 0, probes = 0, failing_probes_before_down = 0, down_at = 0, back_at = 0;
    while (now < six_hours) {
        health_tick(&h, p, now);
        bool outage = now >= outage_from && now < outage_to;
        bool was_down = h.state == HealthState::down;
        health_record(&h, p, outage ? failed(ResultKind::connect) : ok_after(120), now, true);
        probes++;
        if (outage && !was_down && down_at == 0) failing_probes_before_down++;
        if (!was_down && h.state == HealthState::down) down_at = now;
        if (was_down && h.state != HealthState::down) back_at = now;
        // Outside the outage window (and its recovery) the endpoint always serves.
        if (now < outage_from) REQUIRE(health_can_serve(h, -1, now));
        now += h.state == HealthState::down ? p.cooldown_base_ms : 30000;  // probes faster while DOWN
    }
    CHECK(failing_probes_before_down == 3);
    CHECK(down_at == outage_from + 2 * 30000);  // the third failing probe
    CHECK(h.ejections == 1);
    CHECK(back_at >= outage_to);
    // Back at the second good probe after the outage (5 s apart while DOWN).
    CHECK(back_at - outage_to < 2 * p.cooldown_base_ms);
    CHECK(h.probes_ok + h.probes_failed == probes);
    CHECK(h.requests == 0);
    CHECK(h.state == HealthState::healthy);
    CHECK(h.ring_count == EW_CAP_HISTORY);
    CHECK(health_success_ratio(h) == 1.0f);
    CHECK(h.latency_ewma_ms == Approx(120.0f));
    CHECK(strcmp(h.last_error, "connect error") == 0);
}

TEST_CASE("health: fall and rise happen exactly at the right result", "[health]") {
    HealthParams p;
    p.fall = 3;
    p.rise = 2;
    Health h;
    health_init(&h);
    health_record(&h, p, ok_after(100), 1000, true);
    health_record(&h, p, failed(), 2000, true);
    health_record(&h, p, failed(), 3000, true);
    CHECK(h.state != HealthState::down);
    CHECK(health_can_serve(h, -1, 3000));
    health_record(&h, p, failed(), 4000, true);
    CHECK(h.state == HealthState::down);
    CHECK(h.ejections == 1);
    CHECK(h.down_until_ms == 4000 + p.cooldown_base_ms);
    CHECK_FALSE(health_can_serve(h, -1, 4000));

    SECTION("traffic successes inside the cooldown wait for its end") {
        health_record(&h, p, ok_after(100), 5000, false);
        health_record(&h, p, ok_after(100), 6000, false);
        CHECK(h.consecutive_successes == 2);
        CHECK(h.state == HealthState::down);
        health_tick(&h, p, 8999);
        CHECK(h.state == HealthState::down);
        health_tick(&h, p, 9000);
        CHECK(h.state != HealthState::down);
        CHECK(health_can_serve(h, -1, 9000));
    }
    SECTION("a probe bringing the rise-th success ends the cooldown early") {
        health_record(&h, p, ok_after(100), 5000, true);
        CHECK(h.state == HealthState::down);  // one is not rise
        health_record(&h, p, ok_after(100), 6000, true);
        CHECK(h.state != HealthState::down);
        CHECK(health_can_serve(h, -1, 6000));
        CHECK(h.returned_ms == 6000);
    }
    SECTION("a traffic success after a probe success: the cooldown still holds") {
        health_record(&h, p, ok_after(100), 5000, true);
        health_record(&h, p, ok_after(100), 6000, false);
        CHECK(h.state == HealthState::down);
        health_record(&h, p, ok_after(100), 7000, true);  // the third success, a probe's
        CHECK(h.state != HealthState::down);
    }
    SECTION("after the cooldown it returns at the rise-th success, not before") {
        health_tick(&h, p, 20000);
        CHECK(h.state == HealthState::down);
        health_record(&h, p, ok_after(100), 20000, true);
        CHECK(h.state == HealthState::down);
        health_record(&h, p, ok_after(100), 25000, true);
        CHECK(h.state != HealthState::down);
    }
    SECTION("a failure while DOWN resets the success streak and not the cooldown") {
        health_record(&h, p, ok_after(100), 5000, true);
        health_record(&h, p, failed(), 6000, true);
        CHECK(h.consecutive_successes == 0);
        CHECK(h.down_until_ms == 9000);
        CHECK(h.ejections == 1);
        health_record(&h, p, ok_after(100), 9000, true);
        CHECK(h.state == HealthState::down);
        health_record(&h, p, ok_after(100), 10000, true);
        CHECK(h.state != HealthState::down);
    }
}

TEST_CASE("health: 429 rate limit is not a failure and expires exactly", "[health]") {
    HealthParams p;
    Health h;
    health_init(&h);
    health_record(&h, p, ok_after(100), 1000, false);
    health_record(&h, p, failed(), 1500, false);
    const uint32_t ring_before = h.ring_count;
    const uint32_t fails_before = h.consecutive_failures;
    health_rate_limit(&h, -1, 61000, 2000);
    CHECK(h.state == HealthState::rate_limited);
    CHECK(h.ring_count == ring_before);
    CHECK(h.consecutive_failures == fails_before);
    CHECK(h.ejections == 0);
    CHECK_FALSE(health_can_serve(h, -1, 60999));
    CHECK_FALSE(health_can_serve(h, 3, 60999));
    CHECK(health_serve_after_ms(h, -1, 2000) == 61000);
    health_tick(&h, p, 60999);
    CHECK(h.state == HealthState::rate_limited);
    CHECK(health_can_serve(h, -1, 61000));
    health_tick(&h, p, 61000);
    CHECK(h.state != HealthState::rate_limited);
    CHECK(health_serve_after_ms(h, -1, 61000) == 61000);

    SECTION("a shorter later limit does not lift a longer one") {
        health_rate_limit(&h, -1, 100000, 61000);
        health_rate_limit(&h, -1, 70000, 62000);
        CHECK_FALSE(health_can_serve(h, -1, 80000));
    }
    SECTION("DOWN takes precedence over RATE_LIMITED") {
        eject(&h, p, 62000);
        health_rate_limit(&h, -1, 100000, 62000);
        CHECK(h.state == HealthState::down);
    }
}

TEST_CASE("health: a model-level rate limit affects only that model", "[health]") {
    HealthParams p;
    Health h;
    health_init(&h);
    health_rate_limit(&h, 1, 10000, 0);
    CHECK(h.state == HealthState::healthy);
    CHECK(health_can_serve(h, -1, 5000));
    CHECK(health_can_serve(h, 0, 5000));
    CHECK_FALSE(health_can_serve(h, 1, 5000));
    CHECK(health_serve_after_ms(h, 1, 5000) == 10000);
    CHECK(health_serve_after_ms(h, 0, 5000) == 5000);
    CHECK(health_can_serve(h, 1, 10000));
    health_rate_limit(&h, EW_CAP_MODELS_PER_ENDPOINT, 20000, 0);  // out of range: ignored
    CHECK(health_can_serve(h, 0, 10000));
}

TEST_CASE("health: passive results from requests feed the same state", "[health]") {
    HealthParams p;
    Health h;
    health_init(&h);
    health_record(&h, p, ok_after(300), 100, false);
    health_record(&h, p, failed(ResultKind::http_status, 502), 200, false);
    health_record(&h, p, failed(ResultKind::http_status, 503), 300, false);
    health_record(&h, p, failed(ResultKind::connect), 400, false);
    CHECK(h.requests == 4);
    CHECK(h.probes_ok + h.probes_failed == 0);
    CHECK(h.state == HealthState::down);
    CHECK(h.last_success_ms == 100);
    CHECK(h.last_failure_ms == 400);
    CHECK(h.last_kind == ResultKind::connect);
}

TEST_CASE("health: score falls with latency and with failures", "[health]") {
    HealthParams p;  // good 1000 ms, bad 10000 ms
    Health fast, slow, mid, flaky;
    health_init(&fast);
    health_init(&slow);
    health_init(&mid);
    health_init(&flaky);
    for (int i = 0; i < 10; i++) {
        health_record(&fast, p, ok_after(200), 1000u * i, true);
        health_record(&slow, p, ok_after(8000), 1000u * i, true);
        health_record(&mid, p, ok_after(5500), 1000u * i, true);
        health_record(&flaky, p, i == 5 ? failed() : ok_after(200), 1000u * i, true);
    }
    CHECK(fast.score == Approx(100.0f));
    CHECK(slow.score < fast.score);  // not the seed's bug: slower never scores higher
    CHECK(mid.score == Approx(85.0f));  // 70 + 0.3 * 50
    CHECK(slow.score < mid.score);
    CHECK(flaky.score == Approx(0.7f * 90.0f + 30.0f));
    CHECK(flaky.score < fast.score);
    CHECK(strcmp(health_status_class(fast, p), "healthy") == 0);
    CHECK(fast.state == HealthState::healthy);

    // Every latency step up lowers (or keeps) the score; never raises it.
    float prev = 101.0f;
    for (uint32_t lat = 0; lat <= 12000; lat += 250) {
        Health h;
        health_init(&h);
        health_record(&h, p, ok_after(lat), 0, true);
        CHECK(h.score <= prev);
        prev = h.score;
    }
    CHECK(prev == Approx(70.0f));  // all successes, latency score 0

    SECTION("status classes follow the seed thresholds") {
        Health h;
        health_init(&h);
        h.score = 70.5f;
        CHECK(strcmp(health_status_class(h, p), "healthy") == 0);
        h.score = 70.0f;
        CHECK(strcmp(health_status_class(h, p), "degraded") == 0);
        h.score = 50.0f;
        CHECK(strcmp(health_status_class(h, p), "unhealthy") == 0);
    }
    SECTION("a very slow endpoint is DEGRADED, a failing one too") {
        CHECK(slow.state == HealthState::healthy);  // 70 + 0.3 * 22.2
        Health h;
        health_init(&h);
        health_record(&h, p, ok_after(p.latency_bad_ms), 0, true);
        CHECK(h.state == HealthState::degraded);  // exactly 70: not above
        health_init(&h);
        health_record(&h, p, failed(), 0, true);
        CHECK(h.state == HealthState::degraded);
        CHECK(strcmp(health_status_class(h, p), "unhealthy") == 0);
    }
}

TEST_CASE("health: EWMA and ring", "[health]") {
    HealthParams p;
    Health h;
    health_init(&h);
    CHECK(health_success_ratio(h) == 1.0f);
    CHECK(h.score == 100.0f);
    health_record(&h, p, ok_after(1000), 0, true);
    CHECK(h.latency_ewma_ms == Approx(1000.0f));  // the first sample sets it
    health_record(&h, p, ok_after(2000), 1, true);
    CHECK(h.latency_ewma_ms == Approx(1200.0f));
    health_record(&h, p, failed(), 2, true);
    CHECK(h.latency_ewma_ms == Approx(1200.0f));  // failures carry no latency

    p.fall = 1000;  // keep it serving to watch the ring
    Health r;
    health_init(&r);
    for (int i = 0; i < 100; i++) health_record(&r, p, ok_after(10), i, true);
    for (int i = 0; i < 50; i++) health_record(&r, p, failed(), 100 + i, true);
    CHECK(r.ring_count == EW_CAP_HISTORY);
    CHECK(health_success_ratio(r) == Approx(0.5f));
}

TEST_CASE("health: bad key, error texts and serve-after estimates", "[health]") {
    HealthParams p;
    Health h;
    health_init(&h);
    health_key_bad(&h, 401, 10);
    CHECK(h.key_bad);
    CHECK(strcmp(h.last_error, "HTTP 401: API key rejected") == 0);
    CHECK_FALSE(health_can_serve(h, -1, 10));
    CHECK(health_serve_after_ms(h, -1, 10) == UINT64_MAX);
    CHECK(strcmp(health_status_class(h, p), "unhealthy") == 0);
    CHECK(h.consecutive_failures == 0);
    health_record(&h, p, ok_after(100), 20, true);
    CHECK_FALSE(h.key_bad);
    CHECK(health_can_serve(h, -1, 20));

    health_key_bad(&h, 403, 30);
    CHECK(strcmp(h.last_error, "HTTP 403: API key rejected") == 0);

    Health e;
    health_init(&e);
    health_record(&e, p, failed(ResultKind::http_status, 500), 0, true);
    CHECK(strcmp(e.last_error, "HTTP 500") == 0);
    health_record(&e, p, failed(ResultKind::timeout), 1, true);
    CHECK(strcmp(e.last_error, "timeout") == 0);
    health_record(&e, p, failed(ResultKind::tls, 0, "certificate: unknown CA"), 2, true);
    CHECK(strcmp(e.last_error, "certificate: unknown CA") == 0);
    CHECK(e.state == HealthState::down);
    CHECK(e.last_failure_ms == 2);
    CHECK(health_serve_after_ms(e, -1, 100) == 2 + p.cooldown_base_ms);
    CHECK(health_serve_after_ms(e, -1, 60000) == 60000 + p.cooldown_base_ms);  // past it: next probe

    char longtext[400];
    memset(longtext, 'x', sizeof longtext - 1);
    longtext[sizeof longtext - 1] = '\0';
    health_record(&e, p, failed(ResultKind::bad_response, 0, longtext), 3, true);
    CHECK(strlen(e.last_error) == EW_CAP_ERROR_TEXT - 1);

    CHECK(strcmp(to_string(HealthState::rate_limited), "RATE_LIMITED") == 0);
    CHECK(strcmp(to_string(ResultKind::bad_response), "bad_response") == 0);
}
