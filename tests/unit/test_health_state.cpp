// The state file's text (core/health_state.h): what a restart restores, what it refuses,
// how the wall clock shortens the remaining times, and when a write is due. Fake clocks:
// "before" is the process that wrote, "after" the one that starts again (its monotonic
// clock starts anew; the wall clock moves on, or is missing).
#include "ew_catch.h"

#include <memory>
#include <string>
#include <string.h>

#include "core/health_state.h"
#include "core/strbuf.h"

using namespace ew;

#if EW_STATE_FILE
namespace {

constexpr uint64_t kWall = 1764650000000ULL;  // 2025-12-02, a plausible wall clock

void add_endpoint(Config& c, const char* name, const char* url, const char* key,
                  std::initializer_list<const char*> models) {
    EndpointConfig& e = c.endpoints[c.endpoint_count++];
    copy_str(e.name, sizeof e.name, name);
    copy_str(e.url, sizeof e.url, url);
    copy_str(e.api_key, sizeof e.api_key, key);
    for (const char* m : models) copy_str(e.models[e.model_count++], EW_CAP_MODEL_NAME, m);
}

std::unique_ptr<Config> two_endpoints() {
    std::unique_ptr<Config> c{new Config()};
    add_endpoint(*c, "primary", "http://10.0.0.1:8080/v1", "sk-one", {"gpt-4o", "gpt-4o-mini"});
    add_endpoint(*c, "backup", "https://api.example.com/v1", "sk-two", {"gpt-4o"});
    return c;
}

struct Table {
    Health h[EW_CAP_ENDPOINTS];
    Table() {
        for (Health& x : h) health_init(&x);
    }
};

std::string encode(const Config& cfg, const Health* h, uint64_t now, uint64_t wall) {
    static char buf[EW_CAP_STATE_BYTES];
    StrBuf out(buf, sizeof buf);
    REQUIRE(state_encode(cfg, h, now, wall, &out));
    return std::string(out.data, out.len);
}

StateLoad decode(const std::string& text, const Config& cfg, Health* h, uint64_t now, uint64_t wall,
                 StateLoadResult* r) {
    HealthParams p;
    return state_decode(text.data(), text.size(), cfg, h, p, now, wall, r);
}

// Replaces the crc line with the right checksum of what is before it (for hand-made files).
std::string reseal(std::string body) {
    const size_t at = body.rfind("crc=");
    if (at != std::string::npos) body.resize(at);
    char crc[16];
    StrBuf b(crc, sizeof crc);
    b.appendf("crc=%08x\n", crc32(body.data(), body.size()));
    return body + crc;
}

// The primary was told to wait 60 s at monotonic 10 000 ms, wall kWall.
std::string primary_rate_limited(const Config& cfg) {
    Table before;
    HealthParams p;
    Observation o;
    o.kind = ResultKind::http_status;
    o.http_status = 429;
    o.has_retry_after = true;
    o.retry_after_ms = 60000;
    REQUIRE(health_observe(&before.h[0], p, o, 10000) == ObservationEffect::rate_limited);
    REQUIRE(before.h[0].state == HealthState::rate_limited);
    return encode(cfg, before.h, 10000, kWall);
}

}  // namespace

TEST_CASE("state file: round trip of deadlines, ejections, cooldown level, latency and a rejected key") {
    auto cfg = two_endpoints();
    Table before;
    HealthParams p;
    const uint64_t t = 50000;
    before.h[0].rate_limited_until_ms = t + 30000;
    before.h[0].state = HealthState::rate_limited;
    before.h[0].model_limited_until_ms[1] = t + 12000;
    before.h[0].has_latency = true;
    before.h[0].latency_ewma_ms = 412.4f;
    before.h[0].ejections = 2;
    before.h[1].state = HealthState::down;
    before.h[1].down_until_ms = t + 4100;
    before.h[1].ejections = 3;
    before.h[1].cooldown_level = 1;
    before.h[1].key_bad = true;
    before.h[1].key_exhausted_until_ms = t + 3600000;          // a 429 insufficient_quota
    before.h[1].model_unavailable_until_ms[0] = t + 300000;    // a 404 model_not_found
    const std::string text = encode(*cfg, before.h, t, kWall);
    INFO(text);
    CHECK(text.rfind("edgeway-state 1 wall=1764650000000\n", 0) == 0);
    CHECK(text.find("sk-") == std::string::npos);  // never the key itself

    // Started again 2 s (wall) later; its monotonic clock is at 300 ms.
    Table after;
    StateLoadResult r;
    REQUIRE(decode(text, *cfg, after.h, 300, kWall + 2000, &r) == StateLoad::ok);
    CHECK(r.restored == 2);
    CHECK(r.limited == 2);
    CHECK(r.wall_trusted);
    CHECK(r.elapsed_ms == 2000);
    const Health& a = after.h[0];
    CHECK(a.state == HealthState::rate_limited);
    CHECK(a.rate_limited_until_ms == 300 + 28000);
    CHECK(a.model_limited_until_ms[0] == 0);
    CHECK(a.model_limited_until_ms[1] == 300 + 10000);
    CHECK(a.has_latency);
    CHECK(a.latency_ewma_ms == 412.0f);
    CHECK(a.ejections == 2);
    CHECK_FALSE(a.key_bad);
    CHECK_FALSE(health_can_serve(a, -1, 300 + 27999));
    CHECK(health_can_serve(a, 0, 300 + 28000));

    const Health& b = after.h[1];
    CHECK(b.state == HealthState::down);
    CHECK(b.down_until_ms == 300 + 2100);
    CHECK(b.ejections == 3);
    CHECK(b.cooldown_level == 1);
    CHECK(b.key_bad);
    CHECK(b.key_exhausted_until_ms == 300 + 3598000);
    CHECK(b.model_unavailable_until_ms[0] == 300 + 298000);
    CHECK_FALSE(health_can_serve(b, -1, 300));

    // The same facts written again read the same.
    CHECK(encode(*cfg, after.h, 300, kWall + 2000).find("E backup") != std::string::npos);
    (void)p;
}

TEST_CASE("state file: a DOWN taken by chat failures needs a chat-deep check after a restart too") {
    auto cfg = two_endpoints();
    HealthParams p;
    Table before;
    before.h[0].probe_level = CheckLevel::models;  // its probe lists models, which still works
    Observation fail500;
    fail500.kind = ResultKind::http_status;
    fail500.http_status = 500;
    fail500.level = CheckLevel::chat;  // live traffic
    for (uint32_t i = 0; i < p.fall; i++) health_observe(&before.h[0], p, fail500, 1000 + i);
    REQUIRE(before.h[0].state == HealthState::down);
    REQUIRE(before.h[0].down_level == CheckLevel::chat);
    const std::string text = encode(*cfg, before.h, 2000, kWall);
    INFO(text);
    CHECK(text.find(" dl=4 dt=1") != std::string::npos);

    // Restarted after the cooldown has run out: good /v1/models probes alone do not bring it
    // back (the failure was in chat, which they do not check); a trial request does.
    Observation probe_ok;
    probe_ok.http_status = 200;
    probe_ok.from_probe = true;
    probe_ok.level = CheckLevel::models;
    const auto restart = [&](const std::string& file, Health* h) {
        StateLoadResult r;
        REQUIRE(decode(file, *cfg, h, 300, kWall + 120000, &r) == StateLoad::ok);
        h[0].probe_level = CheckLevel::models;
        for (uint32_t i = 0; i < p.rise + 1; i++) health_observe(&h[0], p, probe_ok, 400 + i);
        health_tick(&h[0], p, 500);
    };
    Table after;
    restart(text, after.h);
    CHECK(after.h[0].state == HealthState::down);
    CHECK(health_needs_trial(after.h[0]));
    CHECK(after.h[0].down_by_traffic);

    // A file of an earlier writer (no dl): any check confirms, as it did then.
    std::string old = text;
    old.erase(old.find(" dl=4 dt=1"), 10);
    Table older;
    restart(reseal(old), older.h);
    CHECK(older.h[0].state == HealthState::healthy);
}

TEST_CASE("state file: a RATE_LIMITED endpoint stays limited for the rest of its Retry-After after a restart") {
    auto cfg = two_endpoints();
    const std::string text = primary_rate_limited(*cfg);
    SECTION("wall clock on both sides: the time between is subtracted") {
        Table after;
        StateLoadResult r;
        REQUIRE(decode(text, *cfg, after.h, 1000, kWall + 15000, &r) == StateLoad::ok);
        CHECK(after.h[0].state == HealthState::rate_limited);
        CHECK(after.h[0].rate_limited_until_ms == 1000 + 45000);
        CHECK(health_serve_after_ms(after.h[0], -1, 1000) == 46000);
        HealthParams p;
        health_tick(&after.h[0], p, 1000 + 44999);
        CHECK(after.h[0].state == HealthState::rate_limited);
        health_tick(&after.h[0], p, 1000 + 45000);
        CHECK(after.h[0].state == HealthState::healthy);
        CHECK(after.h[1].state == HealthState::healthy);  // the backup had nothing to keep
    }
    SECTION("the limit has passed by the wall clock: nothing is limited") {
        Table after;
        StateLoadResult r;
        REQUIRE(decode(text, *cfg, after.h, 1000, kWall + 61000, &r) == StateLoad::ok);
        CHECK(after.h[0].state == HealthState::healthy);
        CHECK(after.h[0].rate_limited_until_ms == 0);
        CHECK(r.limited == 0);
        CHECK(r.restored == 2);
    }
    SECTION("no wall clock now (a board without RTC): the whole remaining time again") {
        Table after;
        StateLoadResult r;
        REQUIRE(decode(text, *cfg, after.h, 1000, 0, &r) == StateLoad::ok);
        CHECK_FALSE(r.wall_trusted);
        CHECK(after.h[0].rate_limited_until_ms == 1000 + 60000);
    }
    SECTION("the wall clock went back: conservative, the whole remaining time") {
        Table after;
        StateLoadResult r;
        REQUIRE(decode(text, *cfg, after.h, 1000, kWall - 3600000, &r) == StateLoad::ok);
        CHECK_FALSE(r.wall_trusted);
        CHECK(after.h[0].rate_limited_until_ms == 1000 + 60000);
    }
    SECTION("the wall clock is implausible (1970 after a cold boot): the whole remaining time") {
        Table after;
        StateLoadResult r;
        REQUIRE(decode(text, *cfg, after.h, 1000, 86400000, &r) == StateLoad::ok);
        CHECK_FALSE(r.wall_trusted);
        CHECK(after.h[0].rate_limited_until_ms == 1000 + 60000);
    }
    SECTION("written without a wall clock: the whole remaining time, whatever the clock says now") {
        Table before;
        before.h[0].rate_limited_until_ms = 70000;
        before.h[0].state = HealthState::rate_limited;
        const std::string no_wall = encode(*cfg, before.h, 10000, 0);
        Table after;
        StateLoadResult r;
        REQUIRE(decode(no_wall, *cfg, after.h, 1000, kWall, &r) == StateLoad::ok);
        CHECK(after.h[0].rate_limited_until_ms == 1000 + 60000);
    }
}

TEST_CASE("state file: endpoints match by name and url, models by name; unknown ones are skipped") {
    auto cfg = two_endpoints();
    const std::string text = primary_rate_limited(*cfg);
    SECTION("the same name with another url does not inherit the state") {
        auto moved = two_endpoints();
        copy_str(moved->endpoints[0].url, EW_CAP_URL, "http://10.0.0.2:8080/v1");
        Table after;
        StateLoadResult r;
        REQUIRE(decode(text, *moved, after.h, 1000, kWall, &r) == StateLoad::ok);
        CHECK(after.h[0].state == HealthState::healthy);
        CHECK(after.h[0].rate_limited_until_ms == 0);
        CHECK(r.restored == 1);
    }
    SECTION("another order of endpoints: matched by name") {
        std::unique_ptr<Config> swapped{new Config()};
        add_endpoint(*swapped, "backup", "https://api.example.com/v1", "sk-two", {"gpt-4o"});
        add_endpoint(*swapped, "primary", "http://10.0.0.1:8080/v1", "sk-one", {"gpt-4o"});
        Table after;
        StateLoadResult r;
        REQUIRE(decode(text, *swapped, after.h, 1000, kWall, &r) == StateLoad::ok);
        CHECK(after.h[0].state == HealthState::healthy);
        CHECK(after.h[1].state == HealthState::rate_limited);
    }
    SECTION("unknown endpoints, models, fields and line types are skipped") {
        std::string t = text;
        t.resize(t.rfind("crc="));
        t += "E gone url=00000000 ej=9 rl=5000\nM gpt-4o rl=5000\n";
        t += "E backup url=" + text.substr(text.find("E backup url=") + 13, 8) + " ej=4 zz=future\n";
        t += "M no-such-model rl=9000\nX a record type of a later version\n";
        Table after;
        StateLoadResult r;
        REQUIRE(decode(reseal(t), *cfg, after.h, 1000, kWall, &r) == StateLoad::ok);
        CHECK(after.h[1].ejections == 4);
        CHECK(after.h[1].model_limited_until_ms[0] == 0);
        CHECK(after.h[0].state == HealthState::rate_limited);
    }
}

TEST_CASE("state file: a rejected key stays rejected after a restart only while the key is the same") {
    auto cfg = two_endpoints();
    Table before;
    health_key_bad(&before.h[0], 401, 5000);
    const std::string text = encode(*cfg, before.h, 5000, kWall);
    {
        Table after;
        StateLoadResult r;
        REQUIRE(decode(text, *cfg, after.h, 100, kWall + 1000, &r) == StateLoad::ok);
        CHECK(after.h[0].key_bad);
        CHECK_FALSE(health_can_serve(after.h[0], -1, 100));
        // A probe whose HTTP answer is a success proves the key again.
        HealthParams p;
        Observation ok;
        ok.kind = ResultKind::ok;
        ok.http_status = 200;
        ok.from_probe = true;
        health_observe(&after.h[0], p, ok, 200);
        CHECK_FALSE(after.h[0].key_bad);
    }
    {
        auto rotated = two_endpoints();
        copy_str(rotated->endpoints[0].api_key, EW_CAP_SECRET, "sk-new-key");
        Table after;
        StateLoadResult r;
        REQUIRE(decode(text, *rotated, after.h, 100, kWall + 1000, &r) == StateLoad::ok);
        CHECK_FALSE(after.h[0].key_bad);  // a new key gets its chance
    }
    {
        Table exhausted;
        health_key_exhausted(&exhausted.h[0], 5000 + 3600000, 5000);
        const std::string kx = encode(*cfg, exhausted.h, 5000, kWall);
        CHECK(kx.find(" kx=3600000 key=") != std::string::npos);
        Table same, rotated_t;
        StateLoadResult r;
        REQUIRE(decode(kx, *cfg, same.h, 100, kWall + 1000, &r) == StateLoad::ok);
        CHECK(health_key_exhausted_now(same.h[0], 100));
        CHECK(same.h[0].key_exhausted_until_ms == 100 + 3599000);
        auto rotated = two_endpoints();
        copy_str(rotated->endpoints[0].api_key, EW_CAP_SECRET, "sk-new-key");
        REQUIRE(decode(kx, *rotated, rotated_t.h, 100, kWall + 1000, &r) == StateLoad::ok);
        CHECK_FALSE(health_key_exhausted_now(rotated_t.h[0], 100));
    }
}

TEST_CASE("state file: truncated, corrupt, foreign-version and other files are refused whole") {
    auto cfg = two_endpoints();
    const std::string text = primary_rate_limited(*cfg);
    auto refused = [&](const std::string& t, StateLoad want, const char* why_part) {
        Table after;
        StateLoadResult r;
        CHECK(decode(t, *cfg, after.h, 1000, kWall, &r) == want);
        CHECK(std::string(r.why).find(why_part) != std::string::npos);
        // Nothing of it was applied.
        CHECK(after.h[0].state == HealthState::healthy);
        CHECK(after.h[0].rate_limited_until_ms == 0);
    };
    refused("", StateLoad::empty, "empty");
    refused("[agent]\nlisten = 1\n", StateLoad::not_state, "not an edgeway state file");
    refused("edgeway-state 2 wall=0\ncrc=00000000\n", StateLoad::bad_version, "version 2 (this edgeway reads version 1)");
    refused(reseal("edgeway-state 2 wall=0\nE primary url=00000000\n"), StateLoad::bad_version, "version 2");
    for (size_t cut : {size_t{16}, text.size() / 2, text.size() - 1, text.size() - 5})
        refused(text.substr(0, cut), StateLoad::truncated, "truncated");
    std::string flipped = text;
    flipped[flipped.find("rl=") + 3] ^= 0x01;  // 6 -> 7: one bit
    refused(flipped, StateLoad::bad_checksum, "checksum mismatch");
    std::string bad_crc = text;
    bad_crc[bad_crc.size() - 2] = bad_crc[bad_crc.size() - 2] == '0' ? '1' : '0';
    refused(bad_crc, StateLoad::bad_checksum, "checksum mismatch");
    // Sealed, but a known field is malformed: a writer's bug, refused.
    std::string t = text;
    t.replace(t.find("rl="), 3, "rl=x");
    refused(reseal(t), StateLoad::bad_line, "bad line 2");
    refused(reseal("edgeway-state 1 wall=0\nM gpt-4o rl=5\n"), StateLoad::bad_line, "bad line 2");
    std::string nul = text;
    nul[nul.find("E ") + 1] = '\0';
    refused(reseal(nul), StateLoad::bad_line, "NUL");
}

TEST_CASE("state file: the biggest state of the caps fits EW_CAP_STATE_BYTES") {
    std::unique_ptr<Config> cfg{new Config()};
    Table t;
    for (uint32_t i = 0; i < EW_CAP_ENDPOINTS; i++) {
        EndpointConfig& e = cfg->endpoints[cfg->endpoint_count++];
        memset(e.name, 'n', EW_CAP_NAME - 1);
        e.name[EW_CAP_NAME - 2] = static_cast<char>('a' + i);
        memset(e.url, 'u', EW_CAP_URL - 1);
        for (uint32_t m = 0; m < EW_CAP_MODELS_PER_ENDPOINT; m++) {
            memset(e.models[m], 'm', EW_CAP_MODEL_NAME - 1);
            e.models[m][0] = static_cast<char>('a' + m);
            t.h[i].model_limited_until_ms[m] = kStateMaxRemainingMs * 2;
            t.h[i].model_unavailable_until_ms[m] = kStateMaxRemainingMs * 2;
        }
        e.model_count = EW_CAP_MODELS_PER_ENDPOINT;
        t.h[i].state = HealthState::down;
        t.h[i].down_until_ms = UINT64_MAX;
        t.h[i].rate_limited_until_ms = UINT64_MAX;
        t.h[i].ejections = 0xffffffffu;
        t.h[i].cooldown_level = 0xffffffffu;
        t.h[i].has_latency = true;
        t.h[i].latency_ewma_ms = 4e9f;
        t.h[i].key_bad = true;
        t.h[i].key_exhausted_until_ms = UINT64_MAX;
    }
    const std::string text = encode(*cfg, t.h, 0, kWall);
    Table after;
    StateLoadResult r;
    REQUIRE(decode(text, *cfg, after.h, 0, kWall, &r) == StateLoad::ok);
    CHECK(r.restored == EW_CAP_ENDPOINTS);
    CHECK(after.h[EW_CAP_ENDPOINTS - 1].rate_limited_until_ms == kStateMaxRemainingMs);  // capped at a week
}

TEST_CASE("state file: a write is due only after a persistent change, at most once per interval") {
    Health h;
    health_init(&h);
    StateFacts written, now_facts;
    state_facts_of(h, 0, &written);
    StateWriteSchedule s;
    s.interval_ms = 60000;

    state_facts_of(h, 1000, &now_facts);
    CHECK_FALSE(state_facts_changed(written, now_facts));
    CHECK_FALSE(s.due(false, 1000));

    HealthParams p;
    health_rate_limit(&h, -1, 1000 + 60000, 1000);
    state_facts_of(h, 1000, &now_facts);
    REQUIRE(state_facts_changed(written, now_facts));
    CHECK(s.due(true, 1000));  // the first write after a start: at once
    s.wrote(1000);
    written = now_facts;

    // Another 429 extends the limit: a change, but the interval holds it back.
    health_rate_limit(&h, -1, 5000 + 60000, 5000);
    state_facts_of(h, 5000, &now_facts);
    REQUIRE(state_facts_changed(written, now_facts));
    CHECK_FALSE(s.due(true, 5000));
    CHECK_FALSE(s.due(true, 60999));
    CHECK(s.due(true, 61000));
    s.wrote(61000);
    state_facts_of(h, 61000, &written);

    // The limit running out is a change (a board without a clock must not wait again).
    state_facts_of(h, 65000, &now_facts);
    CHECK(state_facts_changed(written, now_facts));

    // Traffic moves the latency EWMA a little with every request: no write for that.
    Health l;
    health_init(&l);
    l.has_latency = true;
    l.latency_ewma_ms = 400.0f;
    state_facts_of(l, 0, &written);
    l.latency_ewma_ms = 480.0f;
    state_facts_of(l, 0, &now_facts);
    CHECK_FALSE(state_facts_changed(written, now_facts));
    l.latency_ewma_ms = 560.0f;  // +40 %
    state_facts_of(l, 0, &now_facts);
    CHECK(state_facts_changed(written, now_facts));

    // An ejection and a rejected key are changes.
    Health d;
    health_init(&d);
    state_facts_of(d, 0, &written);
    Outcome bad;
    bad.kind = ResultKind::connect;
    for (uint32_t i = 0; i < p.fall; i++) health_record(&d, p, bad, 100, false);
    state_facts_of(d, 100, &now_facts);
    CHECK(state_facts_changed(written, now_facts));
    Health k;
    health_init(&k);
    state_facts_of(k, 0, &written);
    health_key_bad(&k, 403, 0);
    state_facts_of(k, 0, &now_facts);
    CHECK(state_facts_changed(written, now_facts));
    Health x;
    health_init(&x);
    state_facts_of(x, 0, &written);
    health_key_exhausted(&x, 3600000, 0);
    state_facts_of(x, 0, &now_facts);
    CHECK(state_facts_changed(written, now_facts));
    x.model_unavailable_until_ms[2] = 1000;
    written = now_facts;
    state_facts_of(x, 0, &now_facts);
    CHECK(state_facts_changed(written, now_facts));
}

TEST_CASE("crc32 is the IEEE CRC-32") {
    CHECK(crc32("123456789", 9) == 0xCBF43926u);
    CHECK(crc32("", 0) == 0u);
    CHECK(crc32("56789", 5, crc32("1234", 4)) == 0xCBF43926u);
}
#endif  // EW_STATE_FILE
