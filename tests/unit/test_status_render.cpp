// /metrics and GET / rendered from a hand-built configuration and health table over a fake
// clock: the verdict, the labels a Prometheus user queries by, and that the largest
// configuration the caps allow still fits the one rendering buffer (EW_CAP_RENDER).
#include <string.h>

#include "ew_catch.h"
#include <memory>
#include <string>

#include "core/metrics.h"
#include "core/status_page.h"

using namespace ew;

namespace {

struct World {
    std::unique_ptr<Config> cfg{new Config()};
    std::unique_ptr<Health[]> health{new Health[EW_CAP_ENDPOINTS]};
    std::unique_ptr<Metrics> m{new Metrics()};
    HealthParams params;
    uint64_t now = 3600000;

    int add(const char* name, int32_t priority, std::initializer_list<const char*> models) {
        EndpointConfig& e = cfg->endpoints[cfg->endpoint_count];
        snprintf(e.name, sizeof e.name, "%s", name);
        snprintf(e.url, sizeof e.url, "https://%s.example.com/v1", name);
        snprintf(e.api_key, sizeof e.api_key, "sk-SECRET-%s", name);
        e.priority = priority;
        for (const char* mdl : models) snprintf(e.models[e.model_count++], EW_CAP_MODEL_NAME, "%s", mdl);
        return static_cast<int>(cfg->endpoint_count++);
    }
    void fail(int e, int times) {
        for (int i = 0; i < times; i++) {
            Observation o;
            o.kind = ResultKind::connect;
            o.error = "connect: Connection refused";
            o.from_probe = true;
            health_observe(&health[e], params, o, now);
        }
    }
    MetricsView view() const { return MetricsView{cfg.get(), health.get(), &params, m.get(), now, 1000}; }
    std::string page() const {
        static char buf[EW_CAP_RENDER];
        StrBuf out(buf, sizeof buf);
        status_page_render(view(), &out);
        REQUIRE_FALSE(out.overflow);
        return std::string(out.data, out.len);
    }
    std::string metrics() const {
        static char buf[EW_CAP_RENDER];
        static char big[8 * EW_CAP_RENDER];
        StrBuf all(big, sizeof big);
        metrics_render_prometheus(view(), &all);
        INFO("/metrics is " << all.len << " bytes; EW_CAP_RENDER " << EW_CAP_RENDER);
        StrBuf out(buf, sizeof buf);
        metrics_render_prometheus(view(), &out);
        REQUIRE_FALSE(out.overflow);
        return std::string(out.data, out.len);
    }
};

std::string verdict(const std::string& page) {
    size_t a = page.find("<h1 id=\"verdict\"");
    REQUIRE(a != std::string::npos);
    a = page.find('>', a) + 1;
    return page.substr(a, page.find("</h1>", a) - a);
}

}  // namespace

TEST_CASE("status page: the verdict names who serves, or why nothing does", "[status]") {
    World w;
    w.add("primary", 10, {"m1"});
    w.add("backup", 0, {"m1"});
    CHECK(verdict(w.page()) == "SERVING via primary");
    w.fail(0, 3);
    REQUIRE(w.health[0].state == HealthState::down);
    CHECK(verdict(w.page()) == "SERVING on fallback backup");
    w.fail(1, 3);
    CHECK(verdict(w.page()) ==
          "NOT SERVING &mdash; every endpoint is DOWN (primary: connect: Connection refused)");
    std::string p = w.page();
    CHECK(p.find("SECRET") == std::string::npos);
    CHECK(p.find("<script") == std::string::npos);
    CHECK(p.find("class=\"main st-down\"") != std::string::npos);  // the whole row in the state's colour
    CHECK(p.find("<span class=\"tag\">backup</span>") != std::string::npos);
}

TEST_CASE("status page: no latency before any answer is a dash, not 0 ms", "[status]") {
    World w;
    w.add("a", 0, {"m1"});
    std::string p = w.page();
    CHECK(p.find("<td>0 ms</td>") == std::string::npos);
    CHECK(p.find("<td>&mdash;</td>") != std::string::npos);
    CHECK(p.find("none yet") != std::string::npos);
}

TEST_CASE("metrics: requests by requested and served model; edgeway's own answers and broken streams", "[metrics]") {
    World w;
    w.add("primary", 10, {"big"});
    w.add("backup", 0, {"small"});
    w.cfg->fallback_count = 1;
    snprintf(w.cfg->fallback[0].model, EW_CAP_MODEL_NAME, "big");
    snprintf(w.cfg->fallback[0].next[0], EW_CAP_MODEL_NAME, "small");
    w.cfg->fallback[0].next_count = 1;
    RequestRecord r;
    r.endpoint = 1;
    r.model_slot = 0;
    r.requested = model_ref(*w.cfg, "big");
    r.status = 200;
    r.duration_ms = 200000;  // a long stream: lands below the 300 s bucket, not in +Inf only
    r.now_ms = w.now;
    w.m->count_request(r);
    r.broken = true;
    w.m->count_request(r);
    RequestRecord e;
    e.requested = model_ref(*w.cfg, "big");
    e.status = 503;
    e.now_ms = w.now;
    w.m->count_request(e);
    w.m->failovers_from[0][static_cast<size_t>(FailoverReason::connect)] = 1;
    std::string t = w.metrics();
    CHECK(t.find("edgeway_requests_total{endpoint=\"backup\",model=\"small\",requested_model=\"big\",source=\"upstream\","
                 "status=\"200\"} 2\n") != std::string::npos);
    CHECK(t.find("edgeway_requests_total{endpoint=\"none\",model=\"none\",requested_model=\"big\",source=\"edgeway\","
                 "status=\"503\"} 1\n") != std::string::npos);
    CHECK(t.find("edgeway_streams_broken_total{endpoint=\"backup\"} 1\n") != std::string::npos);
    CHECK(t.find("edgeway_failovers_total{endpoint=\"primary\",reason=\"connect\"} 1\n") != std::string::npos);
    CHECK(t.find("edgeway_request_duration_seconds_bucket{endpoint=\"backup\",model=\"small\",le=\"300\"} 2\n") !=
          std::string::npos);
    CHECK(t.find("edgeway_request_duration_seconds_count{endpoint=\"none\",model=\"none\"} 1\n") != std::string::npos);
    CHECK(t.find("_ms") == std::string::npos);  // base units only
    CHECK(t.find("SECRET") == std::string::npos);
}

TEST_CASE("the largest configuration still renders within EW_CAP_RENDER", "[metrics][status]") {
    World w;
    for (int e = 0; e < EW_CAP_ENDPOINTS; e++) {
        char name[EW_CAP_NAME];
        memset(name, 'a' + e, EW_CAP_NAME - 1);
        name[EW_CAP_NAME - 1] = '\0';
        w.add(name, e, {});
        EndpointConfig& ec = w.cfg->endpoints[e];
        memset(ec.url, 'u', EW_CAP_URL - 1);
        ec.url[EW_CAP_URL - 1] = '\0';
        for (int s = 0; s < EW_CAP_MODELS_PER_ENDPOINT; s++) {
            memset(ec.models[s], 'm', EW_CAP_MODEL_NAME - 1);
            ec.models[s][EW_CAP_MODEL_NAME - 1] = '\0';
            ec.models[s][0] = static_cast<char>('0' + s);
        }
        ec.model_count = EW_CAP_MODELS_PER_ENDPOINT;
        Health& h = w.health[e];
        memset(h.last_error, '<', EW_CAP_ERROR_TEXT - 1);  // escaped: 4 bytes each
        h.last_error[EW_CAP_ERROR_TEXT - 1] = '\0';
        h.last_failure_ms = w.now;
        for (int i = 0; i < EW_CAP_HISTORY; i++) h.ring[i] = static_cast<uint8_t>(i % 2);  // worst strip
        h.ring_count = EW_CAP_HISTORY;
    }
    for (size_t k = 0; k < kMinuteRing; k++) w.m->minute_requests[k] = w.m->minute_failovers[k] = w.m->minute_errors[k] = 7;
    w.m->minute_last = w.now / 60000;
    std::string p = w.page();  // REQUIREs no overflow
    CHECK(p.size() > 10000);
}

TEST_CASE("/metrics of every endpoint, 16-character names, 8 endpoint/model pairs in use, fits", "[metrics]") {
    // Histogram series exist only for the (endpoint, model) pairs that served; at the caps'
    // extreme (8 x 8 pairs of 63-character names) /metrics would not fit and be a 500.
    World w;
    for (int e = 0; e < EW_CAP_ENDPOINTS; e++) {
        char name[17];
        snprintf(name, sizeof name, "endpoint-%07d", e);
        w.add(name, e, {"gpt-4o-mini-2024", "gpt-4.1-nano-xyz"});
        for (size_t k = 0; k < kResultKinds; k++) w.m->probes[e][k] = 123456;
        // Three outcomes and two failover reasons per endpoint seen.
        w.m->attempts[e][0] = w.m->attempts[e][1] = w.m->attempts[e][6] = 1234;
        w.m->failovers_from[e][0] = w.m->failovers_from[e][4] = 12;
    }
    for (int e = 0; e < 4; e++)
        for (int s = 0; s < 2; s++) {
            w.m->observe_first_token(static_cast<uint8_t>(e), static_cast<uint8_t>(s), 321);
            w.m->prompt_tokens[e][s] = w.m->completion_tokens[e][s] = 99999;
            RequestRecord r;
            r.endpoint = static_cast<uint8_t>(e);
            r.model_slot = static_cast<uint8_t>(s);
            r.requested = static_cast<uint16_t>(e * EW_CAP_MODELS_PER_ENDPOINT + s);
            r.status = 200;
            r.duration_ms = 1234;
            r.now_ms = w.now;
            w.m->count_request(r);
        }
    CHECK(w.m->pair_count == 8);
    std::string t = w.metrics();  // REQUIREs no overflow
    CHECK(t.find("edgeway_time_to_first_token_seconds_count") != std::string::npos);
}

TEST_CASE("metrics: histogram pairs are made on first use, and a full table drops and counts", "[metrics]") {
    World w;
    for (int e = 0; e < EW_CAP_ENDPOINTS; e++) {
        char name[16];
        snprintf(name, sizeof name, "e%d", e);
        w.add(name, 0, {});
        EndpointConfig& ec = w.cfg->endpoints[e];
        for (int s = 0; s < EW_CAP_MODELS_PER_ENDPOINT; s++) snprintf(ec.models[s], EW_CAP_MODEL_NAME, "m%d", s);
        ec.model_count = EW_CAP_MODELS_PER_ENDPOINT;
    }
    size_t observed = 0;
    for (int e = 0; e < EW_CAP_ENDPOINTS; e++)
        for (int s = 0; s < EW_CAP_MODELS_PER_ENDPOINT; s++) {
            w.m->observe_first_token(static_cast<uint8_t>(e), static_cast<uint8_t>(s), 100);
            observed++;
        }
    CHECK(w.m->pair_count == EW_CAP_HISTOGRAM_PAIRS);
    CHECK(w.m->pairs_dropped == observed - EW_CAP_HISTOGRAM_PAIRS);
    w.m->observe_first_token(0, 0, 100);  // an existing pair still counts
    CHECK(w.m->pairs[0].first_token.count == 2);
}
