// The documents fleet telemetry publishes: the status page's verdict (not a second opinion),
// each endpoint's state and why, valid JSON on one line, and within one queue slot even for
// the largest configuration the caps allow.
#include <stdio.h>
#include <string.h>

#include "ew_catch.h"
#include <memory>
#include <string>

#include "core/json_scan.h"
#include "core/metrics.h"
#include "core/status_page.h"
#include "net/telemetry_doc.h"

using namespace ew;

namespace {

struct World {
    std::unique_ptr<Config> cfg{new Config()};
    std::unique_ptr<Health[]> health{new Health[EW_CAP_ENDPOINTS]};
    std::unique_ptr<Metrics> m{new Metrics()};
    HealthParams params;
    uint64_t now = 3600000;

    int add(const char* name, int32_t priority) {
        EndpointConfig& e = cfg->endpoints[cfg->endpoint_count];
        snprintf(e.name, sizeof e.name, "%s", name);
        snprintf(e.url, sizeof e.url, "https://%s.example.com/v1", name);
        e.priority = priority;
        return static_cast<int>(cfg->endpoint_count++);
    }
    void fail(int e, int times, const char* error = "connect: Connection refused") {
        for (int i = 0; i < times; i++) {
            Observation o;
            o.kind = ResultKind::connect;
            o.error = error;
            o.from_probe = true;
            health_observe(&health[e], params, o, now);
        }
    }
    MetricsView view() const {
        MetricsView v{cfg.get(), health.get(), &params, m.get(), now, 1000};
        v.process.wall_ms = 1796185868123ull;
        return v;
    }
    std::string status() const {
        static char buf[EW_CAP_MQTT_PAYLOAD + 1];
        StrBuf out(buf, sizeof buf);
        telemetry_status_doc(view(), "kiosk-1", &out);
        REQUIRE_FALSE(out.overflow);
        return std::string(out.data, out.len);
    }
    std::string endpoint(int e, const TelemetryChange& ch = TelemetryChange{}) const {
        static char buf[EW_CAP_MQTT_PAYLOAD + 1];
        StrBuf out(buf, sizeof buf);
        telemetry_endpoint_doc(view(), "kiosk-1", static_cast<uint32_t>(e), ch, &out);
        REQUIRE_FALSE(out.overflow);
        return std::string(out.data, out.len);
    }
};

void require_json(const std::string& doc) {
    INFO(doc);
    JsonError err;
    REQUIRE(json_validate(doc.data(), doc.size(), &err) == JsonStatus::ok);
    REQUIRE(doc.find('\n') == std::string::npos);
}

bool has(const std::string& doc, const std::string& part) { return doc.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("telemetry: the status document says what the status page headline says", "[telemetry]") {
    World w;
    int primary = w.add("primary", 10);
    int backup = w.add("backup", 0);
    std::string s = w.status();
    require_json(s);
    int ep = -1;
    CHECK(status_verdict(w.view(), &ep) == Verdict::serving);
    CHECK(has(s, "\"online\":true,\"verdict\":\"serving\",\"via\":\"primary\",\"why\":\"\""));
    CHECK(has(s, "\"endpoints\":2,\"healthy\":2"));
    CHECK(has(s, "\"time\":1796185868"));

    w.fail(primary, 3);
    s = w.status();
    CHECK(status_verdict(w.view(), &ep) == Verdict::fallback);
    CHECK(has(s, "\"verdict\":\"fallback\",\"via\":\"backup\""));
    CHECK(has(s, "\"healthy\":1,\"degraded\":0,\"down\":1"));

    w.fail(backup, 3);
    s = w.status();
    require_json(s);
    CHECK(has(s, "\"verdict\":\"not_serving\",\"via\":null,\"why\":\"every endpoint is DOWN\""));
    CHECK(std::string(status_not_serving_why(w.view())) == "every endpoint is DOWN");
}

TEST_CASE("telemetry: an endpoint document carries its state, why, and the change that made it", "[telemetry]") {
    World w;
    int a = w.add("primary", 0);
    std::string d = w.endpoint(a);
    require_json(d);
    CHECK(has(d, "\"endpoint\":\"primary\",\"state\":\"HEALTHY\",\"why\":\"\""));
    CHECK(has(d, "\"latency_ewma_ms\":null,\"last_result\":null"));
    CHECK(has(d, "\"change\":null"));

    w.fail(a, 3, "connect: \"refused\"\\");
    TelemetryChange ch;
    ch.changed = true;
    ch.from = HealthState::healthy;
    ch.cause = "";  // note_state's word for a probe
    d = w.endpoint(a, ch);
    require_json(d);
    CHECK(has(d, "\"state\":\"DOWN\",\"why\":\"connect: \\\"refused\\\"\\\\\""));
    CHECK(has(d, "\"last_result\":\"connect\""));
    CHECK(has(d, "\"change\":{\"from\":\"HEALTHY\",\"to\":\"DOWN\",\"cause\":\"probe\"}"));

    w.health[a].name_unresolved = true;
    d = w.endpoint(a);
    CHECK(has(d, "\"state\":\"UNRESOLVED\",\"why\":\"host name not resolved\""));
}

TEST_CASE("telemetry: the offline will is a JSON document too", "[telemetry]") {
    char buf[128];
    StrBuf out(buf, sizeof buf);
    telemetry_offline_doc("kiosk-1", &out);
    std::string s(out.data, out.len);
    require_json(s);
    CHECK(s == "{\"device\":\"kiosk-1\",\"online\":false,\"verdict\":\"offline\"}");
}

TEST_CASE("telemetry: the largest names and errors still fit one queue slot", "[telemetry]") {
    World w;
    std::string name(EW_CAP_NAME - 1, 'n');
    std::string err(EW_CAP_ERROR_TEXT - 1, '"');  // every byte escaped
    for (int i = 0; i < EW_CAP_ENDPOINTS; i++) {
        name[0] = static_cast<char>('a' + i);
        int e = w.add(name.c_str(), 0);
        w.fail(e, 3, err.c_str());
        w.m->transitions[e] = UINT64_MAX;
        w.health[e].requests = UINT64_MAX;
    }
    w.m->total = w.m->failed = w.m->fallback_triggered = UINT64_MAX;
    std::string device(EW_CAP_DEVICE_ID - 1, 'd');
    char buf[EW_CAP_MQTT_PAYLOAD + 1];
    TelemetryChange ch;
    ch.changed = true;
    ch.cause = "traffic";
    for (uint32_t e = 0; e < w.cfg->endpoint_count; e++) {
        StrBuf out(buf, sizeof buf);
        telemetry_endpoint_doc(w.view(), device.c_str(), e, ch, &out);
        INFO(out.len);
        REQUIRE_FALSE(out.overflow);
        REQUIRE(out.len <= EW_CAP_MQTT_PAYLOAD);
        require_json(std::string(out.data, out.len));
    }
    StrBuf out(buf, sizeof buf);
    telemetry_status_doc(w.view(), device.c_str(), &out);
    REQUIRE_FALSE(out.overflow);
}

TEST_CASE("telemetry: /metrics series only when configured", "[telemetry][metrics]") {
    char buf[4096];
    TelemetryStats t;
    StrBuf off(buf, sizeof buf);
    telemetry_render_metrics(t, &off);
    CHECK(off.len == 0);
    t.on = true;
    t.connected = true;
    t.dropped = 3;
    StrBuf on(buf, sizeof buf);
    telemetry_render_metrics(t, &on);
    std::string s(on.data, on.len);
    CHECK(has(s, "# TYPE edgeway_telemetry_dropped_total counter\nedgeway_telemetry_dropped_total 3\n"));
    CHECK(has(s, "edgeway_telemetry_connected 1\n"));
}
