// Cooldown length: grows only while an endpoint flaps, decays after minutes of clean
// serving, never exceeds cooldown_max_ms. Fake clock throughout.
#include "ew_catch.h"

#include "core/health.h"

using namespace ew;

namespace {

Outcome good() {
    Outcome o;
    o.kind = ResultKind::ok;
    o.http_status = 200;
    o.latency_ms = 100;
    return o;
}

Outcome bad() {
    Outcome o;
    o.kind = ResultKind::connect;
    return o;
}

// `fall` failed requests at `now`: the endpoint is DOWN afterwards. Returns its cooldown.
uint32_t eject(Health* h, const HealthParams& p, uint64_t now) {
    for (uint32_t i = 0; i < p.fall; i++) health_record(h, p, bad(), now, false);
    REQUIRE(h->state == HealthState::down);
    CHECK(h->down_until_ms == now + h->cooldown_ms);
    return h->cooldown_ms;
}

// `rise` good probes at the cooldown's end: back. Returns that time.
uint64_t back_at_cooldown_end(Health* h, const HealthParams& p) {
    const uint64_t t = h->down_until_ms;
    for (uint32_t i = 0; i < p.rise; i++) health_record(h, p, good(), t, true);
    REQUIRE(h->state != HealthState::down);
    return t;
}

}  // namespace

TEST_CASE("cooldown: an endpoint ejected again soon after returning gets a doubled one, up to the cap",
          "[health][cooldown]") {
    HealthParams p;  // 5 s, cap 60 s, flap window 4 x the last cooldown
    REQUIRE(p.cooldown_max_ms == 60000);
    Health h;
    health_init(&h);
    const uint32_t expected[] = {5000, 10000, 20000, 40000, 60000, 60000, 60000};
    uint64_t now = 1000;
    for (uint32_t want : expected) {
        INFO("ejection at " << now);
        CHECK(eject(&h, p, now) == want);
        now = back_at_cooldown_end(&h, p) + 1000;  // fails again a second after returning
    }
    CHECK(h.ejections == 7);
}

TEST_CASE("cooldown: the flap window is flap_factor x the last cooldown", "[health][cooldown]") {
    HealthParams p;
    Health h;
    health_init(&h);
    CHECK(eject(&h, p, 0) == 5000);
    uint64_t back = back_at_cooldown_end(&h, p);
    CHECK(eject(&h, p, back + p.flap_factor * 5000 - 1) == 10000);  // just inside: flapping
    back = back_at_cooldown_end(&h, p);
    CHECK(eject(&h, p, back + p.flap_factor * 10000) == 10000);  // just outside: no growth
    back = back_at_cooldown_end(&h, p);
    CHECK(eject(&h, p, back + 1) == 20000);  // growth resumes from where it was
}

TEST_CASE("cooldown: the first ejection, and one long after the last, last the base", "[health][cooldown]") {
    HealthParams p;
    Health h;
    health_init(&h);
    // Never DOWN before: nothing to flap from.
    for (uint64_t t = 0; t < 3600000; t += 30000) health_record(&h, p, good(), t, true);
    CHECK(eject(&h, p, 3600000) == p.cooldown_base_ms);
    const uint64_t back = back_at_cooldown_end(&h, p);
    CHECK(eject(&h, p, back + 3600000) == p.cooldown_base_ms);
    CHECK(h.cooldown_level == 0);
}

TEST_CASE("cooldown: one doubling undone per cooldown_decay_ms of serving without an ejection",
          "[health][cooldown]") {
    HealthParams p;  // decay 2 min
    REQUIRE(p.cooldown_decay_ms == 120000);
    Health h;
    health_init(&h);
    uint64_t now = 0;
    for (int i = 0; i < 4; i++) {
        eject(&h, p, now);
        now = back_at_cooldown_end(&h, p) + 1;
    }
    // Four flapping ejections: 5, 10, 20, 40 s; the next would be 60 s.
    REQUIRE(h.cooldown_ms == 40000);
    REQUIRE(h.cooldown_level == 3);
    const uint64_t back = now - 1;

    SECTION("two minutes: one level down; outside the 160 s flap window no growth") {
        health_tick(&h, p, back + 120000);
        CHECK(h.cooldown_level == 2);
        CHECK(eject(&h, p, back + 4 * 40000 + 1) == 20000);
    }
    SECTION("six minutes without any tick in between: three levels, back to the base") {
        CHECK(eject(&h, p, back + 3 * 120000) == p.cooldown_base_ms);
    }
    SECTION("one minute: no decay yet, and inside the flap window it grows to the cap") {
        CHECK(eject(&h, p, back + 60000) == 60000);
    }
    SECTION("failures below `fall` do not stop the clean spell from counting") {
        for (uint64_t t = back; t < back + 240000; t += 10000)
            health_record(&h, p, t % 30000 == 0 ? bad() : good(), t, false);
        health_tick(&h, p, back + 240000);
        CHECK(h.cooldown_level == 1);
    }
    SECTION("time spent DOWN does not count as clean serving") {
        CHECK(eject(&h, p, back + 1000) == 60000);  // level 4 now
        health_tick(&h, p, back + 1000 + 10 * 120000);  // ten minutes DOWN, no good probe
        CHECK(h.state == HealthState::down);
        CHECK(h.cooldown_level == 4);
    }
}

TEST_CASE("cooldown: cooldown_max_ms caps it, whatever its value", "[health][cooldown]") {
    HealthParams p;
    p.cooldown_base_ms = 5000;
    p.cooldown_max_ms = 12000;
    Health h;
    health_init(&h);
    const uint32_t expected[] = {5000, 10000, 12000, 12000};
    uint64_t now = 0;
    for (uint32_t want : expected) {
        CHECK(eject(&h, p, now) == want);
        now = back_at_cooldown_end(&h, p) + 1;
    }
    // Capped: the level stops growing, so one decay step brings it below the cap at once.
    CHECK(h.cooldown_level == 2);
    health_tick(&h, p, now + p.cooldown_decay_ms);
    CHECK(eject(&h, p, now + p.cooldown_decay_ms) == 10000);

    SECTION("a cap equal to the base: every ejection lasts the base") {
        HealthParams q;
        q.cooldown_max_ms = q.cooldown_base_ms;
        Health g;
        health_init(&g);
        uint64_t t = 0;
        for (int i = 0; i < 5; i++) {
            CHECK(eject(&g, q, t) == q.cooldown_base_ms);
            t = back_at_cooldown_end(&g, q) + 1;
        }
    }
}

TEST_CASE("cooldown: good probes end even the longest cooldown early", "[health][cooldown]") {
    HealthParams p;
    Health h;
    health_init(&h);
    uint64_t now = 0;
    for (int i = 0; i < 6; i++) {
        eject(&h, p, now);
        now = back_at_cooldown_end(&h, p) + 1;
    }
    const uint64_t down_at = now;
    REQUIRE(eject(&h, p, down_at) == 60000);
    CHECK(health_serve_after_ms(h, -1, down_at) == down_at + p.cooldown_base_ms);  // the next probe
    health_record(&h, p, good(), down_at + 5000, true);
    CHECK(h.state == HealthState::down);
    health_record(&h, p, good(), down_at + 10000, true);
    CHECK(h.state != HealthState::down);
    CHECK(health_can_serve(h, -1, down_at + 10000));
    CHECK(h.down_until_ms == down_at + 10000);  // the cooldown ended there
}
