// Half-open recovery, confirmed by what failed: an endpoint taken DOWN by live chat failures
// is not brought back by a /models probe; it gets trial requests (exactly trial_requests at
// a time) once its cooldown is over; probes are skipped after a fresh live success; chat
// probes are bounded by a daily token budget. Fake clock throughout.
#include "ew_catch.h"

#include <string.h>
#include <memory>
#include <string>

#include "core/config.h"
#include "core/health.h"
#include "core/health_recovery.h"
#include "core/probe_budget.h"
#include "core/router.h"

using namespace ew;

namespace {

Observation live(uint16_t status, bool trial = false) {
    Observation o;
    o.kind = status >= 200 && status < 300 ? ResultKind::ok : ResultKind::http_status;
    o.http_status = status;
    o.latency_ms = 80;
    o.trial = trial;
    return o;
}

Observation probe(CheckLevel level, bool ok, ResultKind failure = ResultKind::connect) {
    Observation o;
    o.kind = ok ? ResultKind::ok : failure;
    o.http_status = ok && level >= CheckLevel::models ? 200 : 0;
    o.latency_ms = 20;
    o.from_probe = true;
    o.level = level;
    return o;
}

// An endpoint probed by /models (the default kind), taken DOWN by three live chat 503s at t=1000.
struct Flapping {
    HealthParams p;
    Health h;
    explicit Flapping(uint32_t trials = 1) {
        health_init(&h);
        p.trial_requests = trials;
        h.probe_level = probe_level_of(ProbeKind::models);
        for (int i = 0; i < 3; i++) health_observe(&h, p, live(503), 1000);
        REQUIRE(h.state == HealthState::down);
    }
    ObservationEffect see(const Observation& o, uint64_t now) { return health_observe(&h, p, o, now); }
};

std::string explain(const Health& h, const HealthParams& p, uint64_t now, std::string* back) {
    char w[256], b[256];
    StrBuf ws(w, sizeof w), bs(b, sizeof b);
    health_explain(h, p, now, &ws, &bs);
    *back = b;
    return w;
}

}  // namespace

TEST_CASE("recovery: a models probe does not revive an endpoint that live chat 503s took DOWN", "[health][recovery]") {
    Flapping f;
    CHECK(f.h.down_level == CheckLevel::chat);
    CHECK(f.h.down_by_traffic);
    CHECK(health_needs_trial(f.h));
    // Ten good /models probes over a minute: still DOWN, each counted as unconfirmed.
    for (uint64_t t = 2000; t <= 60000; t += 6000) {
        f.see(probe(CheckLevel::models, true), t);
        health_tick(&f.h, f.p, t);
        CHECK(f.h.state == HealthState::down);
    }
    CHECK(f.h.unconfirmed_probes == 10);
    CHECK(f.h.probes_ok == 10);
    CHECK_FALSE(health_can_serve(f.h, -1, 60000));
}

TEST_CASE("recovery: a probe as deep as the failure (a chat probe) does revive it", "[health][recovery]") {
    Flapping f;
    f.see(probe(CheckLevel::chat, true), 2000);
    f.see(probe(CheckLevel::chat, true), 7000);  // rise = 2: the rise-th good probe ends the cooldown
    CHECK(f.h.state != HealthState::down);
    CHECK(f.h.unconfirmed_probes == 0);
}

TEST_CASE("recovery: an outage its models probe failed in too (everything 500) is confirmed by that probe",
          "[health][recovery]") {
    HealthParams p;
    Health h;
    health_init(&h);
    h.probe_level = CheckLevel::models;
    health_observe(&h, p, live(500), 1000);
    Observation pf = probe(CheckLevel::models, false, ResultKind::http_status);
    pf.http_status = 500;
    health_observe(&h, p, pf, 1100);
    health_observe(&h, p, live(500), 1200);
    REQUIRE(h.state == HealthState::down);
    CHECK(h.down_level == CheckLevel::chat);
    CHECK(health_confirm_level(h) == CheckLevel::models);
    CHECK_FALSE(health_needs_trial(h));
    std::string back;
    explain(h, p, 2200, &back);
    CHECK(back == "back after 2 good models probes in a row (its probe failed in this outage too); cooldown ends in 4 s");
    health_observe(&h, p, probe(CheckLevel::models, true), 3000);
    health_observe(&h, p, probe(CheckLevel::models, true), 8000);
    CHECK(h.state != HealthState::down);
    CHECK(h.unconfirmed_probes == 0);
    // The next outage starts clean: chat 503s only, its probe fine -> a trial again.
    for (int i = 0; i < 3; i++) health_observe(&h, p, live(503), 200000);
    REQUIRE(h.state == HealthState::down);
    CHECK(health_needs_trial(h));
}

TEST_CASE("recovery: failures a models probe would see (connect errors) are confirmed by it", "[health][recovery]") {
    HealthParams p;
    Health h;
    health_init(&h);
    h.probe_level = CheckLevel::models;
    Observation c;
    c.kind = ResultKind::connect;  // live traffic: the server is gone
    for (int i = 0; i < 3; i++) health_observe(&h, p, c, 1000);
    REQUIRE(h.state == HealthState::down);
    CHECK(h.down_level == CheckLevel::tcp);
    CHECK_FALSE(health_needs_trial(h));
    health_observe(&h, p, probe(CheckLevel::models, true), 3000);
    health_observe(&h, p, probe(CheckLevel::models, true), 8000);
    CHECK(h.state != HealthState::down);  // the clean restart: back by its probes, no trial
}

TEST_CASE("recovery: a trial opens when the cooldown ends, for exactly trial_requests requests", "[health][recovery]") {
    for (uint32_t n : {1u, 3u}) {
        INFO("trial_requests " << n);
        Flapping f(n);
        const uint64_t end = f.h.down_until_ms;
        CHECK(end == 1000 + f.p.cooldown_base_ms);
        CHECK_FALSE(health_trial_open(f.h, n, -1, end - 1));
        CHECK(health_trial_open(f.h, n, -1, end));
        for (uint32_t i = 0; i < n; i++) {
            REQUIRE(health_trial_open(f.h, n, -1, end));
            health_trial_begin(&f.h, end + 30000, end);
        }
        CHECK(health_trials_in_flight(f.h, end) == n);
        CHECK_FALSE(health_trial_open(f.h, n, -1, end));  // the next request goes elsewhere
        CHECK_FALSE(health_trial_open(f.h, n, -1, end + 29999));
        // A trial whose client left without an outcome frees its slot at its deadline...
        CHECK(health_trial_open(f.h, n, -1, end + 30000));
        // ... or at once when the exchange says so.
        health_trial_abandon(&f.h);
        CHECK(health_trials_in_flight(f.h, end + 1) == n - 1);
        CHECK(health_trial_open(f.h, n, -1, end + 1));
    }
}

TEST_CASE("recovery: a failed trial keeps it DOWN one more down interval; a good one brings it back",
          "[health][recovery]") {
    Flapping f;
    uint64_t t = f.h.down_until_ms;
    health_trial_begin(&f.h, t + 30000, t);
    CHECK(f.see(live(503, true), t + 80) == ObservationEffect::failure);
    CHECK(f.h.state == HealthState::down);
    CHECK(f.h.trials_failed == 1);
    CHECK(f.h.trial_at_ms == t + 80 + f.p.cooldown_base_ms);
    CHECK(health_trials_in_flight(f.h, t + 100) == 0);
    CHECK_FALSE(health_trial_open(f.h, 1, -1, t + 100));
    CHECK(f.h.ejections == 1);  // a failed trial is not a new ejection: the cooldown does not grow
    t = f.h.trial_at_ms;
    CHECK(health_trial_open(f.h, 1, -1, t));
    health_trial_begin(&f.h, t + 30000, t);
    CHECK(f.see(live(200, true), t + 80) == ObservationEffect::success);
    CHECK(f.h.state != HealthState::down);
    CHECK(health_can_serve(f.h, -1, t + 80));
    CHECK(f.h.trials_passed == 1);
    CHECK(f.h.returned_ms == t + 80);
    CHECK_FALSE(health_trial_open(f.h, 1, -1, t + 80));
}

TEST_CASE("recovery: with trial_requests = 2 both trials must pass", "[health][recovery]") {
    Flapping f(2);
    const uint64_t t = f.h.down_until_ms;
    health_trial_begin(&f.h, t + 30000, t);
    health_trial_begin(&f.h, t + 30000, t);
    f.see(live(200, true), t + 50);
    CHECK(f.h.state == HealthState::down);  // one of two
    f.see(live(200, true), t + 60);
    CHECK(f.h.state != HealthState::down);
}

TEST_CASE("recovery: a 429 on a trial frees the slot and is neither pass nor fail", "[health][recovery]") {
    Flapping f;
    const uint64_t t = f.h.down_until_ms;
    health_trial_begin(&f.h, t + 30000, t);
    Observation o = live(429, true);
    o.has_retry_after = true;
    o.retry_after_ms = 2000;
    CHECK(f.see(o, t + 10) == ObservationEffect::rate_limited);
    CHECK(f.h.state == HealthState::down);
    CHECK(health_trials_in_flight(f.h, t + 10) == 0);
    CHECK(f.h.trials_failed == 0);
    CHECK_FALSE(health_trial_open(f.h, 1, -1, t + 10));  // rate limited: no trial until it ends
    CHECK(health_trial_open(f.h, 1, -1, t + 2010));
}

TEST_CASE("recovery: the flapping upstream over ten minutes costs one failed request per down interval",
          "[health][recovery]") {
    // Live traffic every 100 ms; /models probes every 5 s answer 200; chat answers 503 until
    // t = 300 s, then 200. A request goes to the endpoint only when it can serve or a trial
    // is open (the router's rule); it always succeeds through the backup otherwise.
    Flapping f;
    const uint64_t works_at = 300000;
    uint64_t failed = 0, trials = 0, back_at = 0;
    uint64_t next_probe = 6000;
    for (uint64_t t = 1100; t <= 600000; t += 100) {
        if (t >= next_probe) {
            f.see(probe(CheckLevel::models, true), t);
            next_probe = t + (f.h.state == HealthState::down ? 5000 : 30000);
        }
        health_tick(&f.h, f.p, t);
        const bool trial = health_trial_open(f.h, 1, -1, t);
        if (!trial && !health_can_serve(f.h, -1, t)) continue;
        if (trial) {
            health_trial_begin(&f.h, t + 30000, t);
            trials++;
        }
        const bool ok = t >= works_at;
        f.see(live(ok ? 200 : 503, trial), t + 50);
        if (!ok) failed++;
        if (ok && back_at == 0) back_at = t;
    }
    // One failed trial per 5 s down interval while chat fails: (300 - 6) / 5 = 58.8.
    CHECK(failed <= 60);
    CHECK(failed >= 55);
    CHECK(f.h.ejections == 1);
    CHECK(back_at >= works_at);
    CHECK(back_at - works_at <= f.p.cooldown_base_ms);  // back within one down interval
    CHECK(f.h.state != HealthState::down);
    CHECK(trials == f.h.trials_started);
}

TEST_CASE("recovery: /status words say why and what brings it back", "[health][recovery]") {
    Flapping f;
    std::string back;
    std::string why = explain(f.h, f.p, 2000, &back);
    CHECK(why == "DOWN: 3 failures of live traffic at chat level (last: HTTP 503)");
    CHECK(back == "back after a successful trial request (next trial in 4 s) or a chat probe; its models probe "
                  "cannot confirm a chat failure");
    health_trial_begin(&f.h, 40000, 6000);
    explain(f.h, f.p, 6000, &back);
    CHECK(back.find("trial in flight") != std::string::npos);
    char json[1024];
    StrBuf j(json, sizeof json);
    health_recovery_json(f.h, f.p, 6000, &j);
    std::string s = json;
    CHECK(s.find("\"down_level\":\"chat\",\"confirm_level\":\"chat\",\"seen_by\":\"traffic\",\"probe_level\":\"models\"") != std::string::npos);
    CHECK(s.find("\"needed\":true,\"open\":false,\"in_ms\":0,\"in_flight\":1") != std::string::npos);

    HealthParams p;
    Health h;
    health_init(&h);
    h.probe_level = CheckLevel::models;
    for (int i = 0; i < 3; i++) health_observe(&h, p, probe(CheckLevel::models, false), 1000);
    explain(h, p, 2000, &back);
    CHECK(back == "back after 2 good models probes in a row; cooldown ends in 4 s");
}

TEST_CASE("recovery: the router hands a trial to the first request only; the rest go to the backup",
          "[router][recovery]") {
    Config cfg;
    strcpy(cfg.endpoints[0].name, "primary");
    cfg.endpoints[0].priority = 10;
    strcpy(cfg.endpoints[0].models[0], "m");
    cfg.endpoints[0].model_count = 1;
    strcpy(cfg.endpoints[1].name, "backup");
    cfg.endpoints[1].priority = 1;
    strcpy(cfg.endpoints[1].models[0], "m");
    cfg.endpoints[1].model_count = 1;
    cfg.endpoint_count = 2;
    cfg.agent.trial_requests = 1;
    Health health[2];
    health_init(&health[0]);
    health_init(&health[1]);
    HealthParams p;
    health[0].probe_level = CheckLevel::models;
    for (int i = 0; i < 3; i++) health_observe(&health[0], p, live(503), 1000);
    Candidate out[EW_ROUTER_CANDIDATES_CAP];

    // In its cooldown: the backup only.
    size_t n = router_candidates(cfg, health, "m", 3000, out, EW_ROUTER_CANDIDATES_CAP);
    REQUIRE(n == 1);
    CHECK(out[0].endpoint == 1);

    // Cooldown over: two requests make their lists at once; both list the trial first.
    const uint64_t t = health[0].down_until_ms;
    Candidate a[EW_ROUTER_CANDIDATES_CAP], b[EW_ROUTER_CANDIDATES_CAP];
    REQUIRE(router_candidates(cfg, health, "m", t, a, EW_ROUTER_CANDIDATES_CAP) == 2);
    REQUIRE(router_candidates(cfg, health, "m", t, b, EW_ROUTER_CANDIDATES_CAP) == 2);
    CHECK(a[0].endpoint == 0);
    CHECK(a[0].trial);
    CHECK_FALSE(a[0].panic);
    CHECK_FALSE(a[1].trial);
    // The first takes the slot; the second finds the trial unusable and goes to the backup.
    REQUIRE(router_candidate_usable(health[0], a[0], t, 1));
    CHECK(router_candidate_is_trial(health[0], a[0], t));
    health_trial_begin(&health[0], t + 30000, t);
    CHECK_FALSE(router_candidate_usable(health[0], b[0], t, 1));
    CHECK(router_candidate_usable(health[1], b[1], t, 1));
    // A third request while the trial is in flight is not offered the primary at all.
    n = router_candidates(cfg, health, "m", t + 10, out, EW_ROUTER_CANDIDATES_CAP);
    REQUIRE(n == 1);
    CHECK(out[0].endpoint == 1);
    // The trial passes: the primary serves everyone again, not as a trial.
    health_observe(&health[0], p, live(200, true), t + 100);
    n = router_candidates(cfg, health, "m", t + 200, out, EW_ROUTER_CANDIDATES_CAP);
    REQUIRE(n == 2);
    CHECK(out[0].endpoint == 0);
    CHECK_FALSE(out[0].trial);
}

TEST_CASE("probe plan: skipped after a live success within the interval, never while DOWN", "[probe][recovery]") {
    HealthParams p;
    Health h;
    health_init(&h);
    CHECK(probe_plan(h, ProbeKind::models, 30000, true, 5000) == ProbePlan::run);  // no traffic yet
    health_observe(&h, p, live(200), 10000);
    CHECK(h.last_traffic_ok_ms == 10000);
    CHECK(probe_plan(h, ProbeKind::models, 30000, true, 39999) == ProbePlan::skip_fresh_traffic);
    CHECK(probe_plan(h, ProbeKind::models, 30000, true, 40000) == ProbePlan::run);
    health_observe(&h, p, probe(CheckLevel::models, true), 20000);  // a probe success is not live traffic
    CHECK(h.last_traffic_ok_ms == 10000);
    for (int i = 0; i < 3; i++) health_observe(&h, p, live(503), 21000);
    REQUIRE(h.state == HealthState::down);
    CHECK(probe_plan(h, ProbeKind::models, 30000, true, 22000) == ProbePlan::run);  // DOWN: always probed
}

TEST_CASE("probe budget: chat probes stop at the day's tokens, run as models probes, reset after 24 h",
          "[probe][recovery]") {
    ProbeBudget b;
    b.limit = 40;
    const uint64_t t0 = 1000;
    CHECK(probe_budget_allows(&b, t0));
    const char answer[] = "{\"id\":\"x\",\"choices\":[{\"message\":{\"content\":\"p\"}}],"
                          "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":1,\"total_tokens\":10}}";
    CHECK(probe_chat_tokens(answer, strlen(answer), true) == 10);
    CHECK(probe_chat_tokens("{\"choices\":[]}", 14, true) == EW_CHAT_PROBE_TOKEN_BOUND);  // no usage: the bound
    CHECK(probe_chat_tokens(answer, strlen(answer), false) == EW_CHAT_PROBE_TOKEN_BOUND);  // not kept whole
    for (int i = 0; i < 4; i++) {
        REQUIRE(probe_budget_allows(&b, t0 + i * 30000));
        probe_budget_spend(&b, 10, t0 + i * 30000);
    }
    CHECK_FALSE(probe_budget_allows(&b, t0 + 200000));
    Health h;
    health_init(&h);
    CHECK(probe_plan(h, ProbeKind::chat, 30000, false, t0 + 200000) == ProbePlan::run_as_models);
    CHECK(probe_plan(h, ProbeKind::models, 30000, false, t0 + 200000) == ProbePlan::run);  // only chat probes cost
    CHECK_FALSE(probe_budget_allows(&b, t0 + kProbeBudgetDayMs - 1));
    CHECK(probe_budget_allows(&b, t0 + kProbeBudgetDayMs));
    CHECK(b.spent == 0);
    CHECK(b.spent_total == 40);
    // Several days later the day still starts on the first day's boundary.
    probe_budget_spend(&b, 5, t0 + 3 * kProbeBudgetDayMs + 77);
    CHECK(b.day_start_ms == t0 + 3 * kProbeBudgetDayMs);
    CHECK(b.spent == 5);
    ProbeBudget none;  // limit 0: no cap
    probe_budget_spend(&none, 1000000, t0);
    CHECK(probe_budget_allows(&none, t0));
}

TEST_CASE("probe budget spent: a chat-probed endpoint DOWN by chat failures recovers through a trial",
          "[probe][recovery]") {
    HealthParams p;
    Health h;
    health_init(&h);
    h.probe_level = CheckLevel::chat;
    for (int i = 0; i < 3; i++) health_observe(&h, p, live(503), 1000);
    REQUIRE(h.state == HealthState::down);
    CHECK_FALSE(health_needs_trial(h));  // its chat probe can confirm it
    h.probe_level = probe_level_of(ProbeKind::models);  // the probe runs as models: budget spent
    CHECK(health_needs_trial(h));
    CHECK(health_trial_open(h, 1, -1, h.down_until_ms));
}

TEST_CASE("cooldown: a clean restart does not grow it; failing again soon after returning does",
          "[health][recovery]") {
    HealthParams p;  // base 5 s, flap factor 4
    Health h;
    health_init(&h);
    h.probe_level = CheckLevel::models;
    Observation c;
    c.kind = ResultKind::connect;
    uint64_t t = 1000;
    for (int i = 0; i < 3; i++) health_observe(&h, p, c, t);
    CHECK(h.cooldown_ms == 5000);
    health_observe(&h, p, probe(CheckLevel::models, true), t + 5000);
    health_observe(&h, p, probe(CheckLevel::models, true), t + 6000);
    REQUIRE(h.state != HealthState::down);
    // Serves cleanly for an hour, then a planned restart: the same short cooldown.
    t += 3600 * 1000;
    for (int i = 0; i < 3; i++) health_observe(&h, p, c, t);
    CHECK(h.cooldown_ms == 5000);
    health_observe(&h, p, probe(CheckLevel::models, true), t + 5000);
    health_observe(&h, p, probe(CheckLevel::models, true), t + 6000);
    REQUIRE(h.state != HealthState::down);
    // Down again 10 s after returning (< 4 x 5 s): flapping, the cooldown doubles.
    for (int i = 0; i < 3; i++) health_observe(&h, p, c, t + 16000);
    CHECK(h.cooldown_ms == 10000);
}

namespace {
const char* no_env(const char*, void*) { return nullptr; }
int no_file(const char*, char*, size_t, size_t*, bool*, void*) { return 2; }
std::string parse_agent(const std::string& agent_lines, Config* cfg) {
    const std::string text = "[agent]\n" + agent_lines + "\n[endpoint.a]\nurl = http://127.0.0.1:1/v1\nmodels = m\n";
    ConfigSources src{no_env, no_file, nullptr};
    ConfigDiag err;
    ConfigStatus s = config_parse("t.ini", text.data(), text.size(), src, cfg, &err, nullptr, nullptr);
    return s == ConfigStatus::ok ? "" : err.text;
}
}  // namespace

TEST_CASE("config: trial_requests and probe_budget_tokens_per_day", "[config][recovery]") {
    std::unique_ptr<Config> cfg(new Config());
    CHECK(parse_agent("", cfg.get()) == "");
    CHECK(cfg->agent.trial_requests == 1);
    CHECK(cfg->agent.probe_budget_tokens_per_day == 0);
    CHECK(parse_agent("trial_requests = 3\nprobe_budget_tokens_per_day = 5000", cfg.get()) == "");
    CHECK(cfg->agent.trial_requests == 3);
    CHECK(cfg->agent.probe_budget_tokens_per_day == 5000);
    CHECK(parse_agent("trial_requests = 0", cfg.get()) == "t.ini:2: agent.trial_requests: must be from 1 to 16");
    CHECK(parse_agent("trial_requests = 17", cfg.get()).find("must be from 1 to 16") != std::string::npos);
    CHECK(parse_agent("probe_budget_tokens_per_day = -1", cfg.get()).find("probe_budget_tokens_per_day") !=
          std::string::npos);
}
