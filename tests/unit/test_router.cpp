// Router: strategy x fallback chain x health state. Configs are built directly (no INI).
#include "ew_catch.h"

#include <initializer_list>
#include <memory>
#include <string.h>
#include <string>

#include "core/router.h"

using namespace ew;

namespace {

int add_endpoint(Config& c, const char* name, int32_t priority, std::initializer_list<const char*> models) {
    EndpointConfig& e = c.endpoints[c.endpoint_count];
    strncpy(e.name, name, sizeof e.name - 1);
    e.priority = priority;
    for (const char* m : models) strncpy(e.models[e.model_count++], m, EW_CAP_MODEL_NAME - 1);
    return static_cast<int>(c.endpoint_count++);
}

void add_rule(Config& c, const char* model, std::initializer_list<const char*> next) {
    FallbackRule& r = c.fallback[c.fallback_count++];
    strncpy(r.model, model, sizeof r.model - 1);
    for (const char* m : next) strncpy(r.next[r.next_count++], m, EW_CAP_MODEL_NAME - 1);
}

struct Fixture {
    std::unique_ptr<Config> cfg{new Config()};
    Health health[EW_CAP_ENDPOINTS];
    HealthParams params;
    Candidate out[EW_ROUTER_CANDIDATES_CAP];

    Fixture() {
        for (Health& h : health) health_init(&h);
    }
    // "endpoint:model endpoint:model ..." for compact assertions.
    std::string route(const char* model, uint64_t now = 1000, size_t cap = EW_ROUTER_CANDIDATES_CAP) {
        size_t n = router_candidates(*cfg, health, model, now, out, cap);
        std::string s;
        for (size_t i = 0; i < n; i++) {
            if (i) s += ' ';
            s += cfg->endpoints[out[i].endpoint].name;
            s += ':';
            s += out[i].model;
            REQUIRE(strcmp(cfg->endpoints[out[i].endpoint].models[out[i].model_slot], out[i].model) == 0);
        }
        return s;
    }
    void latency(int e, uint32_t ms) {
        Outcome o;
        o.latency_ms = ms;
        health_record(&health[e], params, o, 0, true);
    }
};

}  // namespace

TEST_CASE("router: priority strategy", "[router]") {
    Fixture f;
    f.cfg->agent.strategy = Strategy::priority;
    int low = add_endpoint(*f.cfg, "low", 1, {"m"});
    int a = add_endpoint(*f.cfg, "a", 10, {"m"});
    int b = add_endpoint(*f.cfg, "b", 10, {"m"});
    int c = add_endpoint(*f.cfg, "c", 10, {"m"});
    (void)low;
    SECTION("equal everything keeps config order") { CHECK(f.route("m") == "a:m b:m c:m low:m"); }
    SECTION("inside a tier: healthy first, then lower latency, unknown latency last") {
        f.latency(a, 900);
        f.latency(b, 300);
        f.health[a].state = HealthState::healthy;
        CHECK(f.route("m") == "b:m a:m c:m low:m");
        f.health[b].state = HealthState::degraded;
        CHECK(f.route("m") == "a:m c:m b:m low:m");
        f.latency(c, 100);
        f.latency(low, 1);
        CHECK(f.route("m") == "c:m a:m b:m low:m");  // priority still beats latency
    }
}

TEST_CASE("router: latency strategy", "[router]") {
    Fixture f;
    f.cfg->agent.strategy = Strategy::latency;
    int a = add_endpoint(*f.cfg, "a", 10, {"m"});
    int b = add_endpoint(*f.cfg, "b", 1, {"m"});
    add_endpoint(*f.cfg, "none", 99, {"m"});
    int d = add_endpoint(*f.cfg, "d", 1, {"m"});
    int e = add_endpoint(*f.cfg, "e", 5, {"m"});
    f.latency(a, 300);
    f.latency(b, 100);
    f.latency(d, 200);
    f.latency(e, 200);
    CHECK(f.route("m") == "b:m e:m d:m a:m none:m");  // equal EWMA: higher priority first
}

TEST_CASE("router: weighted strategy is the seed's score*0.6 + priority*40", "[router]") {
    Fixture f;
    f.cfg->agent.strategy = Strategy::weighted;
    int a = add_endpoint(*f.cfg, "a", 1, {"m"});  // 100*0.6 + 40 = 100
    int b = add_endpoint(*f.cfg, "b", 2, {"m"});  // 50*0.6 + 80 = 110
    int c = add_endpoint(*f.cfg, "c", 1, {"m"});  // 90*0.6 + 40 = 94
    int d = add_endpoint(*f.cfg, "d", 1, {"m"});  // 100 too: after a (config order)
    f.health[a].score = 100;
    f.health[b].score = 50;
    f.health[c].score = 90;
    f.health[d].score = 100;
    CHECK(f.route("m") == "b:m a:m d:m c:m");
}

TEST_CASE("router: fallback chains are transitive and cycles terminate", "[router]") {
    Fixture f;
    add_endpoint(*f.cfg, "one", 10, {"gpt-4.1", "gpt-4o-mini"});
    add_endpoint(*f.cfg, "two", 5, {"deepseek-v3.2", "gpt-4o-mini", "x"});
    add_rule(*f.cfg, "gpt-4.1", {"gpt-4o-mini", "deepseek-v3.2"});
    add_rule(*f.cfg, "gpt-4o-mini", {"x", "gpt-4.1"});  // cycles back
    add_rule(*f.cfg, "x", {"gpt-4o-mini", "gpt-4.1", "x"});

    const char* chain[EW_ROUTER_CHAIN_CAP];
    size_t n = router_model_chain(*f.cfg, "gpt-4.1", chain, EW_ROUTER_CHAIN_CAP);
    REQUIRE(n == 4);
    CHECK(std::string(chain[0]) == "gpt-4.1");
    CHECK(std::string(chain[1]) == "gpt-4o-mini");
    CHECK(std::string(chain[2]) == "deepseek-v3.2");
    CHECK(std::string(chain[3]) == "x");  // from gpt-4o-mini's own rule, appended after
    CHECK(f.route("gpt-4.1") == "one:gpt-4.1 one:gpt-4o-mini two:gpt-4o-mini two:deepseek-v3.2 two:x");
    CHECK(f.route("x") == "two:x one:gpt-4o-mini two:gpt-4o-mini one:gpt-4.1 two:deepseek-v3.2");

    SECTION("a = b, b = a yields each once") {
        Fixture g;
        add_endpoint(*g.cfg, "e", 1, {"a", "b"});
        add_rule(*g.cfg, "a", {"b"});
        add_rule(*g.cfg, "b", {"a"});
        CHECK(g.route("a") == "e:a e:b");
        CHECK(g.route("b") == "e:b e:a");
    }
    SECTION("the output cap truncates, chain cap too") {
        CHECK(f.route("gpt-4.1", 1000, 2) == "one:gpt-4.1 one:gpt-4o-mini");
        CHECK(router_model_chain(*f.cfg, "gpt-4.1", chain, 2) == 2);
        CHECK(router_model_chain(*f.cfg, "gpt-4.1", chain, 0) == 0);
    }
    SECTION("a model with no endpoint but a rule routes to its fallbacks") {
        add_rule(*f.cfg, "alias", {"deepseek-v3.2"});
        CHECK(router_model_known(*f.cfg, "alias"));
        CHECK(f.route("alias") == "two:deepseek-v3.2");
    }
    CHECK(router_model_known(*f.cfg, "deepseek-v3.2"));
    CHECK_FALSE(router_model_known(*f.cfg, "gpt-5"));
    CHECK_FALSE(router_model_known(*f.cfg, ""));
    CHECK(f.route("gpt-5") == "");
}

TEST_CASE("router: DOWN, RATE_LIMITED and bad keys are skipped", "[router]") {
    Fixture f;
    int a = add_endpoint(*f.cfg, "a", 30, {"m", "n"});
    int b = add_endpoint(*f.cfg, "b", 20, {"n", "m"});
    int c = add_endpoint(*f.cfg, "c", 10, {"m"});
    add_rule(*f.cfg, "m", {"n"});
    CHECK(f.route("m") == "a:m b:m c:m a:n b:n");
    CHECK(router_soonest_serve_ms(*f.cfg, f.health, "m", 1000) == 1000);
    CHECK(router_soonest_serve_ms(*f.cfg, f.health, "nope", 1000) == UINT64_MAX);

    SECTION("DOWN") {
        Outcome fail;
        fail.kind = ResultKind::connect;
        for (int i = 0; i < 3; i++) health_record(&f.health[a], f.params, fail, 1000, false);
        CHECK(f.route("m") == "b:m c:m b:n");
    }
    SECTION("endpoint-wide rate limit, until it expires") {
        health_rate_limit(&f.health[b], -1, 5000, 1000);
        CHECK(f.route("m", 4999) == "a:m c:m a:n");
        CHECK(f.route("m", 5000) == "a:m b:m c:m a:n b:n");
    }
    SECTION("model-level rate limit skips only that model on that endpoint") {
        health_rate_limit(&f.health[a], 0, 5000, 1000);  // a's "m"
        CHECK(f.route("m", 2000) == "b:m c:m a:n b:n");
        health_rate_limit(&f.health[b], 0, 5000, 1000);  // b's "n"
        CHECK(f.route("m", 2000) == "b:m c:m a:n");
    }
    SECTION("bad key") {
        health_key_bad(&f.health[c], 401, 1000);
        CHECK(f.route("m") == "a:m b:m a:n b:n");
    }
    SECTION("nothing can serve: soonest time for Retry-After") {
        health_rate_limit(&f.health[a], -1, 9000, 1000);
        health_rate_limit(&f.health[b], 1, 7000, 1000);  // b's "m"
        health_rate_limit(&f.health[b], 0, 8000, 1000);  // b's "n"
        health_key_bad(&f.health[c], 403, 1000);
        CHECK(f.route("m", 2000) == "");
        CHECK(router_soonest_serve_ms(*f.cfg, f.health, "m", 2000) == 7000);
        CHECK(router_soonest_serve_ms(*f.cfg, f.health, "n", 2000) == 8000);
        health_key_bad(&f.health[a], 401, 1000);
        health_key_bad(&f.health[b], 401, 1000);
        CHECK(router_soonest_serve_ms(*f.cfg, f.health, "m", 2000) == UINT64_MAX);
    }
}

TEST_CASE("router: no health table means every endpoint serves, config order", "[router]") {
    Fixture f;
    add_endpoint(*f.cfg, "a", 1, {"m"});
    add_endpoint(*f.cfg, "b", 2, {"m"});
    Candidate out[4];
    size_t n = router_candidates(*f.cfg, nullptr, "m", 0, out, 4);
    REQUIRE(n == 2);
    CHECK(out[0].endpoint == 1);
    CHECK(out[1].endpoint == 0);
}

namespace {

void take_down(Fixture& f, int e, uint64_t now) {
    Outcome fail;
    fail.kind = ResultKind::connect;
    for (uint32_t i = 0; i < f.params.fall; i++) health_record(&f.health[e], f.params, fail, now, false);
    REQUIRE(f.health[e].state == HealthState::down);
}

// "name:model!" for panic candidates.
std::string route_marked(Fixture& f, const char* model, uint64_t now) {
    size_t n = router_candidates(*f.cfg, f.health, model, now, f.out, EW_ROUTER_CANDIDATES_CAP);
    std::string s;
    for (size_t i = 0; i < n; i++) {
        if (i) s += ' ';
        s += f.cfg->endpoints[f.out[i].endpoint].name;
        s += ':';
        s += f.out[i].model;
        if (f.out[i].panic) s += '!';
    }
    return s;
}

}  // namespace

TEST_CASE("router: panic routing tries DOWN endpoints when nothing else of the chain can serve", "[router]") {
    Fixture f;
    int a = add_endpoint(*f.cfg, "a", 30, {"m", "n"});
    int b = add_endpoint(*f.cfg, "b", 20, {"n", "m"});
    int c = add_endpoint(*f.cfg, "c", 10, {"m"});
    add_rule(*f.cfg, "m", {"n"});

    SECTION("one endpoint serving: no panic, the DOWN ones are skipped") {
        take_down(f, a, 1000);
        take_down(f, b, 1000);
        CHECK(route_marked(f, "m", 1000) == "c:m");
    }
    SECTION("a fallback model serving: no panic either") {
        take_down(f, a, 1000);
        take_down(f, c, 1000);
        health_rate_limit(&f.health[b], 1, 9000, 1000);  // b's "m"
        CHECK(route_marked(f, "m", 2000) == "b:n");
    }
    SECTION("all DOWN: all of them, in the strategy's order, marked panic") {
        take_down(f, a, 1000);
        take_down(f, b, 1000);
        take_down(f, c, 1000);
        CHECK(route_marked(f, "m", 1000) == "a:m! b:m! c:m! a:n! b:n!");
        for (size_t i = 0; i < 5; i++) CHECK(router_candidate_usable(f.health[f.out[i].endpoint], f.out[i], 1000));
        SECTION("the latency strategy orders them by latency") {
            f.cfg->agent.strategy = Strategy::latency;
            f.latency(c, 50);
            f.latency(b, 80);
            f.latency(a, 900);
            REQUIRE(f.health[a].state == HealthState::down);  // latency samples do not bring them back
            CHECK(route_marked(f, "m", 1000) == "c:m! b:m! a:m! b:n! a:n!");
        }
    }
    SECTION("DOWN and bad-keyed or rate limited are never tried, even in panic") {
        take_down(f, a, 1000);
        take_down(f, b, 1000);
        take_down(f, c, 1000);
        health_key_bad(&f.health[a], 401, 1000);
        health_rate_limit(&f.health[b], -1, 9000, 1000);
        health_rate_limit(&f.health[c], 0, 9000, 1000);  // c's "m"
        CHECK(route_marked(f, "m", 2000) == "");
        CHECK(route_marked(f, "m", 9000) == "b:m! c:m! b:n!");  // the limits are over
    }
    SECTION("a mix of rate limited and DOWN: the DOWN ones, so a 429 does not starve the chain") {
        take_down(f, a, 1000);
        health_rate_limit(&f.health[b], -1, 9000, 1000);
        health_rate_limit(&f.health[c], -1, 9000, 1000);
        CHECK(route_marked(f, "m", 2000) == "a:m! a:n!");
    }
    SECTION("a panic candidate stays usable while DOWN, not once its key is rejected or it is limited") {
        take_down(f, a, 1000);
        take_down(f, b, 1000);
        take_down(f, c, 1000);
        REQUIRE(route_marked(f, "m", 1000) == "a:m! b:m! c:m! a:n! b:n!");
        Candidate pa = f.out[0], pb = f.out[1], pc = f.out[2];
        health_key_bad(&f.health[a], 403, 1100);
        health_rate_limit(&f.health[b], 1, 5000, 1100);  // b's "m"
        CHECK_FALSE(router_candidate_usable(f.health[a], pa, 1200));
        CHECK_FALSE(router_candidate_usable(f.health[b], pb, 1200));
        CHECK(router_candidate_usable(f.health[c], pc, 1200));
        CHECK(router_candidate_usable(f.health[b], pb, 5000));
        Candidate not_panic = pc;
        not_panic.panic = false;  // a normal candidate whose endpoint went DOWN since: skipped
        CHECK_FALSE(router_candidate_usable(f.health[c], not_panic, 1200));
    }
    SECTION("a normal candidate is usable exactly while health_can_serve") {
        REQUIRE(route_marked(f, "m", 1000) == "a:m b:m c:m a:n b:n");
        Candidate ca = f.out[0];
        CHECK(router_candidate_usable(f.health[a], ca, 1000));
        take_down(f, a, 1100);
        CHECK_FALSE(router_candidate_usable(f.health[a], ca, 1100));
    }
}

namespace {

struct StormResult {
    uint64_t requests = 0, served = 0, panics = 0;
    uint64_t none_while_one_usable = 0;  // no candidate though an endpoint was neither limited nor bad-keyed
};

// Three endpoints flip among ok, failing (connect error or 500) and 429 (Retry-After 1 s)
// every 2-5 s (deterministic LCG); at every moment at least one of them is ok. A request
// every 25 ms walks its candidates as the exchange does (up to 4 attempts; when the list is
// used up it routes again), feeding every outcome through health_observe; each endpoint is
// probed every 5 s. Twenty minutes of fake time. Harsher than the real exchange: no time
// passes inside a request, so a Retry-After never expires during one.
StormResult run_storm(bool panic_allowed) {
    Fixture f;
    for (const char* n : {"a", "b", "c"}) add_endpoint(*f.cfg, n, 10, {"m"});
    enum Mode { ok, failing, limited };
    Mode mode[3] = {ok, failing, limited};
    uint64_t next_flip[3] = {2000, 3000, 4000};
    uint64_t next_probe[3] = {0, 1700, 3400};
    uint32_t lcg = 12345;
    auto rnd = [&lcg](uint32_t n) {
        lcg = lcg * 1103515245u + 12345u;
        return (lcg >> 16) % n;
    };
    auto outcome = [&](int e, bool probe) {
        Observation o;
        o.from_probe = probe;
        if (mode[e] == ok) {
            o.kind = ResultKind::ok;
            o.http_status = 200;
            o.latency_ms = 200;
        } else if (mode[e] == failing) {
            o.kind = rnd(2) ? ResultKind::connect : ResultKind::http_status;
            o.http_status = o.kind == ResultKind::http_status ? 500 : 0;
        } else {
            o.kind = ResultKind::http_status;
            o.http_status = 429;
            o.has_retry_after = true;
            o.retry_after_ms = 1000;
        }
        return o;
    };
    StormResult r;
    for (uint64_t now = 0; now < 20ull * 60 * 1000; now += 25) {
        for (int e = 0; e < 3; e++) {
            if (now >= next_flip[e]) {
                mode[e] = static_cast<Mode>(rnd(3));
                next_flip[e] = now + 2000 + rnd(3001);
            }
        }
        if (mode[0] != ok && mode[1] != ok && mode[2] != ok) mode[rnd(3)] = ok;  // one always works
        for (int e = 0; e < 3; e++) {
            health_tick(&f.health[e], f.params, now);
            if (now >= next_probe[e]) {
                health_observe(&f.health[e], f.params, outcome(e, true), now);
                next_probe[e] = now + 5000;
            }
        }
        r.requests++;
        bool served = false;
        uint32_t attempts = 0;
        for (int round = 0; round < 4 && attempts < 4 && !served; round++) {
            size_t n = router_candidates(*f.cfg, f.health, "m", now, f.out, EW_ROUTER_CANDIDATES_CAP);
            if (!panic_allowed) {  // what routing did before: DOWN endpoints are never tried
                size_t k = 0;
                for (size_t i = 0; i < n; i++)
                    if (!f.out[i].panic) f.out[k++] = f.out[i];
                n = k;
            }
            if (n == 0) {
                bool usable = false;
                for (int e = 0; e < 3; e++)
                    usable = usable || (!f.health[e].key_bad && now >= f.health[e].rate_limited_until_ms);
                if (usable) r.none_while_one_usable++;
                break;
            }
            for (size_t i = 0; i < n && attempts < 4 && !served; i++) {
                const Candidate& c = f.out[i];
                if (!router_candidate_usable(f.health[c.endpoint], c, now)) continue;
                attempts++;
                if (c.panic) r.panics++;
                served = health_observe(&f.health[c.endpoint], f.params, outcome(c.endpoint, false), now) ==
                         ObservationEffect::success;
            }
        }
        if (served) r.served++;
    }
    return r;
}

}  // namespace

TEST_CASE("router: in a storm of flapping endpoints, panic routing keeps requests served", "[router][storm]") {
    StormResult with = run_storm(true);
    StormResult without = run_storm(false);
    INFO("with panic: requests " << with.requests << " served " << with.served << " panics " << with.panics
                                 << " stranded " << with.none_while_one_usable);
    INFO("without: served " << without.served << " stranded " << without.none_while_one_usable);
    REQUIRE(with.requests == 48000);
    // Never "no candidate" while some endpoint is neither rate limited nor bad-keyed.
    CHECK(with.none_while_one_usable == 0);
    CHECK(without.none_while_one_usable > 1000);  // the failure mode of issue 7
    // What is lost is a 429's Retry-After not yet over on the endpoint that is ok again.
    CHECK(static_cast<double>(with.served) / static_cast<double>(with.requests) >= 0.98);
    CHECK(with.served > without.served + with.requests / 10);
}
