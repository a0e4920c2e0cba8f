// The core's self-test for a bare-metal target (tests/target): fixed inputs with known
// answers, its own main, no Catch2, no heap, no stdio. One line per check,
//   PASS health: three failures take it DOWN
//   FAIL router: ... (got "...", want "...")
// and a closing line "N passed, N failed". main's return value is the verdict: under
// qemu-system-arm -semihosting it becomes qemu's exit status.
//
// The same file builds for the host (any hosted C++17 compiler) so the expected answers
// can be checked against the host build of the core:
//   g++ -std=c++17 -I src -I . tests/target/core_selftest.cpp src/core/*.cpp
// (the target build adds platform/rtos/pal_files_rtos.cpp and EW_SELFTEST_RTOS_FILES=1: the
// PAL's file functions of an RTOS port, without a board's hooks).
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/config.h"
#include "core/health.h"
#include "core/health_recovery.h"
#include "core/health_state.h"
#include "core/metrics.h"
#include "core/request_check.h"
#include "core/router.h"
#include "core/sse.h"
#include "core/status_page.h"
#include "core/strbuf.h"
#if EW_SELFTEST_RTOS_FILES
#include <errno.h>

#include "pal.h"
#endif

// ---- output: semihosting on the target, stdout on a host ---------------------------------
#if defined(__arm__) && !defined(__linux__)
namespace {
// ARM semihosting SYS_WRITE0: writes a NUL-terminated string to the debug console.
// Called directly so that no stdio (and no stdio buffer from the heap) is linked.
void write_str(const char* s) {
    register int op asm("r0") = 0x04;
    register const char* arg asm("r1") = s;
    asm volatile("bkpt 0xab" : "+r"(op) : "r"(arg) : "memory");
}
}  // namespace
#else
#include <unistd.h>
namespace {
void write_str(const char* s) {
    size_t n = strlen(s);
    while (n) {
        ssize_t w = write(1, s, n);
        if (w <= 0) return;
        s += w;
        n -= static_cast<size_t>(w);
    }
}
}  // namespace
#endif

using namespace ew;

namespace {

unsigned g_passed = 0;
unsigned g_failed = 0;

// A line is built in a fixed buffer: StrBuf::append only (no printf family here).
char g_line[512];

void put_u64(StrBuf& b, uint64_t v) {
    char rev[21];
    size_t n = 0;
    do {
        rev[n++] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) b.append(&rev[--n], 1);
}

void report(bool ok, const char* group, const char* what, const char* got = nullptr, const char* want = nullptr) {
    StrBuf b(g_line, sizeof g_line);
    b.append(ok ? "PASS " : "FAIL ");
    b.append(group);
    b.append(": ");
    b.append(what);
    if (!ok && got && want) {
        b.append(" (got \"");
        b.append(got);
        b.append("\", want \"");
        b.append(want);
        b.append("\")");
    }
    b.append("\n");
    write_str(g_line);
    if (ok) g_passed++;
    else g_failed++;
}

void check(const char* group, const char* what, bool ok) { report(ok, group, what); }

void check_str(const char* group, const char* what, const char* got, const char* want) {
    report(strcmp(got, want) == 0, group, what, got, want);
}

void check_u64(const char* group, const char* what, uint64_t got, uint64_t want) {
    char g[24], w[24];
    StrBuf gb(g, sizeof g), wb(w, sizeof w);
    put_u64(gb, got);
    put_u64(wb, want);
    report(got == want, group, what, g, w);
}

// Floats are compared to 0.01 (the values checked are exact in binary anyway).
void check_f(const char* group, const char* what, float got, float want) {
    float d = got - want;
    char g[24], w[24];
    StrBuf gb(g, sizeof g), wb(w, sizeof w);
    put_u64(gb, static_cast<uint64_t>(got * 100.0f + 0.5f));
    gb.append("/100");
    put_u64(wb, static_cast<uint64_t>(want * 100.0f + 0.5f));
    wb.append("/100");
    report(d < 0.01f && d > -0.01f, group, what, g, w);
}

// ---- INI reader ---------------------------------------------------------------------------

// Secrets without an OS: a fake environment and a fake file system.
const char* fake_getenv(const char* name, void*) {
    if (strcmp(name, "PRIMARY_API_KEY") == 0) return "sk-test-primary";
    return nullptr;
}

int fake_read_file(const char* path, char* buf, size_t cap, size_t* len, bool* private_ok, void*) {
    *len = 0;
    if (strcmp(path, "/keys/backup.key") != 0) return 2;  // ENOENT (newlib and Linux agree)
    const char key[] = "sk-test-backup\n";
    if (sizeof key - 1 > cap) return 27;  // EFBIG
    memcpy(buf, key, sizeof key - 1);
    *len = sizeof key - 1;
    *private_ok = true;
    return 0;
}

const ConfigSources kSources = {fake_getenv, fake_read_file, nullptr};

struct Warnings {
    unsigned count = 0;
    char last[256] = "";
};

void collect_warning(const char* line, void* user) {
    Warnings* w = static_cast<Warnings*>(user);
    w->count++;
    copy_str(w->last, sizeof w->last, line);
}

// The configuration the router checks below also use.
const char kGoodIni[] =
    "; a small edgeway.ini\n"
    "[agent]\n"
    "listen = 127.0.0.1:8088\n"
    "strategy = priority   ; the default, said explicitly\n"
    "max_attempts = 3\n"
    "\n"
    "[probe]\r\n"  // CRLF lines are fine too
    "kind = tcp\r\n"
    "fall = 3\r\n"
    "rise = 2\r\n"
    "down_interval_ms = 5000\r\n"
    "\n"
    "[endpoint.a]\n"
    "url = https://a.example.com/v1\n"
    "api_key_env = PRIMARY_API_KEY\n"
    "models = gpt-4.1, mini\n"
    "priority = 10\n"
    "\n"
    "[endpoint.b]\n"
    "url = http://127.0.0.1:9001\n"
    "models = mini\n"
    "priority = 10\n"
    "\n"
    "[endpoint.c]\n"
    "url = https://c.example.com:8443/api/\n"
    "api_key_file = /keys/backup.key\n"
    "models = deep, mini\n"
    "priority = 5\n"
    "tls_verify = no\n"
    "\n"
    "[endpoint.low]\n"
    "url = https://low.example.com\n"
    "models = other\n"
    "priority = 1\n"
    "\n"
    "[fallback]\n"
    "gpt-4.1 = mini, deep\n"
    "mini = gpt-4.1   # a cycle: the chain still ends\n";

Config g_cfg;      // ~17 KB with the default caps: static, not on the stack
Config g_scratch;  // for the files that must fail

void test_ini() {
    const char* G = "ini";
    ConfigDiag err;
    Warnings w;
    ConfigStatus st = config_parse("edgeway.ini", kGoodIni, sizeof kGoodIni - 1, kSources, &g_cfg, &err,
                                   collect_warning, &w);
    check(G, "a small config parses", st == ConfigStatus::ok);
    if (st != ConfigStatus::ok) check_str(G, "error text of the good config", err.text, "");
    check_u64(G, "4 endpoints", g_cfg.endpoint_count, 4);
    check_str(G, "listen host", g_cfg.agent.listen_host, "127.0.0.1");
    check_u64(G, "listen port", g_cfg.agent.listen_port, 8088);
    check(G, "strategy priority", g_cfg.agent.strategy == Strategy::priority);
    check_u64(G, "max_attempts", g_cfg.agent.max_attempts, 3);
    check(G, "probe kind tcp", g_cfg.probe.kind == ProbeKind::tcp);
    check_u64(G, "probe.fall", g_cfg.probe.fall, 3);
    check_u64(G, "probe.rise", g_cfg.probe.rise, 2);
    check_str(G, "endpoint c: host", g_cfg.endpoints[2].host, "c.example.com");
    check_u64(G, "endpoint c: port", g_cfg.endpoints[2].port, 8443);
    check_str(G, "endpoint c: base path without the trailing slash", g_cfg.endpoints[2].base_path, "/api");
    check_u64(G, "endpoint b: http port", g_cfg.endpoints[1].port, 9001);
    check(G, "endpoint b: scheme http", g_cfg.endpoints[1].scheme == Scheme::http);
    check_str(G, "endpoint a: key from the environment", g_cfg.endpoints[0].api_key, "sk-test-primary");
    check_str(G, "endpoint c: key from a file, newline trimmed", g_cfg.endpoints[2].api_key, "sk-test-backup");
    check(G, "endpoint c: tls_verify = no", !g_cfg.endpoints[2].tls_verify);
    check_u64(G, "endpoint c: 2 models", g_cfg.endpoints[2].model_count, 2);
    check_str(G, "endpoint c: second model", g_cfg.endpoints[2].models[1], "mini");
    check_u64(G, "endpoint a: priority", static_cast<uint64_t>(g_cfg.endpoints[0].priority), 10);
    check_u64(G, "2 fallback rules", g_cfg.fallback_count, 2);
    check_u64(G, "one warning", w.count, 1);
    check_str(G, "the warning", w.last, "edgeway.ini:29: endpoint.c.tls_verify: TLS verification is off");

    // Files that must fail, with the exact message (the same texts as the unit tests').
    struct Bad {
        const char* text;
        const char* want;
    };
    static const Bad bad[] = {
        {"[agent]\nstrategy = random\n",
         "bad.ini:2: agent.strategy: unknown value \"random\" (allowed: priority, latency, weighted)"},
        {"[probe]\nfall = 3\n\nfall = 4\n", "bad.ini:4: probe.fall: duplicate key (first at line 2)"},
        {"[probe]\nfall = 0\n", "bad.ini:2: probe.fall: must be from 1 to 100"},
        {"[agent]\nlisten = 127.0.0.1:70000\n",
         "bad.ini:2: agent.listen: port must be a number from 1 to 65535: \"70000\""},
        {"[agent]\nlog_level = in\x01" "fo\n",
         "bad.ini:2: agent.log_level: line contains a control character (byte 0x01)"},
        {"[endpoint.primary]\nurl = https://api.example.com/v1\nmodels = gpt-4.1\n\n[fallback]\n"
         "gpt-4.1 = gpt-4o-mini\n",
         "bad.ini:6: fallback.gpt-4.1: no endpoint serves \"gpt-4o-mini\""},
        {"[endpoint.primary]\nurl = https://api.example.com/v1\nmodels = m\napi_key_file = /keys/nope.key\n",
         "bad.ini:4: endpoint.primary.api_key_file: /keys/nope.key: No such file or directory"},
        {"; nothing\n", "bad.ini:0: endpoint: no [endpoint.NAME] section; at least one upstream is required"},
    };
    for (const Bad& b : bad) {
        ConfigDiag e;
        st = config_parse("bad.ini", b.text, strlen(b.text), kSources, &g_scratch, &e, nullptr, nullptr);
        char what[96];
        StrBuf wb(what, sizeof what);
        wb.append("a bad file fails: ");
        wb.append(b.want + 8, 24);  // after "bad.ini:", enough to tell them apart
        wb.append("...");
        if (st != ConfigStatus::error) {
            check(G, what, false);
            continue;
        }
        check_str(G, what, e.text, b.want);
    }
    check_u64(G, "a failed parse leaves no endpoints behind", g_scratch.endpoint_count, 0);
}

// ---- health state machine -----------------------------------------------------------------

Outcome fail_outcome(uint16_t status = 0) {
    Outcome o;
    o.kind = status ? ResultKind::http_status : ResultKind::connect;
    o.http_status = status;
    return o;
}

Outcome ok_outcome(uint32_t latency_ms) {
    Outcome o;
    o.kind = ResultKind::ok;
    o.latency_ms = latency_ms;
    return o;
}

Health g_h;

void test_health() {
    const char* G = "health";
    HealthParams p;  // fall 3, rise 2, cooldown 5 s (up to 60 s while flapping)
    health_init(&g_h);
    check(G, "starts HEALTHY", g_h.state == HealthState::healthy);
    check_f(G, "starts with score 100", g_h.score, 100.0f);

    health_record(&g_h, p, fail_outcome(), 1000, true);
    // ring: 0 successes of 1; no latency yet -> 0.7*0 + 0.3*100
    check_f(G, "one failure: score 30", g_h.score, 30.0f);
    check(G, "one failure: DEGRADED, not DOWN", g_h.state == HealthState::degraded);
    check_str(G, "last error text", g_h.last_error, "connect error");
    health_record(&g_h, p, fail_outcome(503), 2000, true);
    check_str(G, "last error text of an HTTP status", g_h.last_error, "HTTP 503");
    check(G, "two failures: still serving", health_can_serve(g_h, -1, 2000));
    health_record(&g_h, p, fail_outcome(), 3000, true);
    check(G, "three failures (fall): DOWN", g_h.state == HealthState::down);
    check_u64(G, "first ejection", g_h.ejections, 1);
    check_u64(G, "first cooldown 5000 ms", g_h.cooldown_ms, 5000);
    check_u64(G, "DOWN until 8000", g_h.down_until_ms, 8000);
    check(G, "DOWN: cannot serve", !health_can_serve(g_h, -1, 3000));
    check_u64(G, "DOWN: serve after the cooldown end", health_serve_after_ms(g_h, -1, 3000), 8000);
    check_str(G, "DOWN: status class", health_status_class(g_h, p), "unhealthy");

    health_record(&g_h, p, ok_outcome(100), 4000, false);
    health_record(&g_h, p, ok_outcome(300), 5000, false);
    check_u64(G, "two successes counted (rise)", g_h.consecutive_successes, 2);
    check(G, "rise reached by traffic, cooldown not over: still DOWN", g_h.state == HealthState::down);
    health_tick(&g_h, p, 7999);
    check(G, "tick before the cooldown end: still DOWN", g_h.state == HealthState::down);
    health_tick(&g_h, p, 8000);
    // ring F F F S S: 0.4*100*0.7 = 28; EWMA 0.2*300 + 0.8*100 = 140 ms <= 1000 -> 30
    check(G, "cooldown over with rise successes: back, DEGRADED by score", g_h.state == HealthState::degraded);
    check_f(G, "score 58", g_h.score, 58.0f);
    check_f(G, "latency EWMA 140 ms", g_h.latency_ewma_ms, 140.0f);
    check_str(G, "status class degraded", health_status_class(g_h, p), "degraded");
    check(G, "serves again", health_can_serve(g_h, -1, 8000));

    for (uint64_t t = 9000; t <= 11000; t += 1000) health_record(&g_h, p, fail_outcome(), t, false);
    check(G, "second ejection: DOWN", g_h.state == HealthState::down);
    check_u64(G, "second cooldown doubled to 10000 ms", g_h.cooldown_ms, 10000);
    check_u64(G, "DOWN until 21000", g_h.down_until_ms, 21000);
    health_record(&g_h, p, fail_outcome(), 12000, true);
    check_u64(G, "a failure while DOWN keeps the cooldown end", g_h.down_until_ms, 21000);
    health_record(&g_h, p, ok_outcome(100), 22000, true);
    check(G, "one success after the cooldown: still DOWN (rise 2)", g_h.state == HealthState::down);
    health_record(&g_h, p, ok_outcome(100), 23000, true);
    check(G, "second success after the cooldown: back", g_h.state != HealthState::down);
    check_u64(G, "lifetime ejections 2", g_h.ejections, 2);
    for (uint64_t t = 24000; t <= 26000; t += 1000) health_record(&g_h, p, fail_outcome(), t, false);
    check_u64(G, "flapping again: cooldown 20000 ms", g_h.cooldown_ms, 20000);
    health_record(&g_h, p, ok_outcome(100), 27000, true);
    health_record(&g_h, p, ok_outcome(100), 28000, true);
    check(G, "rise good probes end the cooldown early", g_h.state != HealthState::down);

    // One rule for outcomes: a 404 is a success for traffic, a failure for a probe.
    health_init(&g_h);
    Observation ob;
    ob.kind = ResultKind::http_status;
    ob.http_status = 404;
    check(G, "observe: traffic 404 is a success", health_observe(&g_h, p, ob, 1000) == ObservationEffect::success);
    ob.from_probe = true;
    check(G, "observe: probe 404 is a failure", health_observe(&g_h, p, ob, 2000) == ObservationEffect::failure);
    ob.http_status = 429;
    ob.has_retry_after = true;
    ob.retry_after_ms = 3000;
    check(G, "observe: 429 rate limits", health_observe(&g_h, p, ob, 3000) == ObservationEffect::rate_limited);
    check_str(G, "observe: 429 text", g_h.last_error, "HTTP 429: rate limited for 3000 ms");
    check(G, "observe: 429 is not a failure", g_h.consecutive_failures == 1);

    // Rate limits: endpoint-wide shows RATE_LIMITED; a model limit only blocks that model.
    health_init(&g_h);
    health_rate_limit(&g_h, -1, 5000, 1000);
    check(G, "429: RATE_LIMITED", g_h.state == HealthState::rate_limited);
    check_u64(G, "rate limited: serve after its end", health_serve_after_ms(g_h, 0, 1000), 5000);
    health_tick(&g_h, p, 5000);
    check(G, "rate limit over: HEALTHY", g_h.state == HealthState::healthy);
    health_rate_limit(&g_h, 1, 9000, 6000);
    check(G, "model limit: other model serves", health_can_serve(g_h, 0, 6000));
    check(G, "model limit: that model does not", !health_can_serve(g_h, 1, 6000));
    health_key_bad(&g_h, 401, 6000);
    check(G, "bad key: cannot serve", !health_can_serve(g_h, 0, 6000));
    check_str(G, "bad key: error text", g_h.last_error, "HTTP 401: API key rejected");
}

// ---- router: candidate order -------------------------------------------------------------

Health g_table[EW_CAP_ENDPOINTS];
Candidate g_out[EW_ROUTER_CANDIDATES_CAP];
char g_route[256];

const char* route(const char* model, uint64_t now) {
    size_t n = router_candidates(g_cfg, g_table, model, now, g_out, EW_ROUTER_CANDIDATES_CAP);
    StrBuf b(g_route, sizeof g_route);
    for (size_t i = 0; i < n; i++) {
        if (i) b.append(" ");
        b.append(g_cfg.endpoints[g_out[i].endpoint].name);
        b.append(":");
        b.append(g_out[i].model);
    }
    return g_route;
}

void test_router() {
    const char* G = "router";
    if (g_cfg.endpoint_count != 4) {  // the INI checks above failed; say so once
        check(G, "needs the parsed config", false);
        return;
    }
    HealthParams p;
    for (Health& h : g_table) health_init(&h);

    const char* chain[EW_ROUTER_CHAIN_CAP];
    size_t n = router_model_chain(g_cfg, "gpt-4.1", chain, EW_ROUTER_CHAIN_CAP);
    char joined[128];
    StrBuf jb(joined, sizeof joined);
    for (size_t i = 0; i < n; i++) {
        if (i) jb.append(" ");
        jb.append(chain[i]);
    }
    check_str(G, "fallback chain, breadth first, cycle cut", joined, "gpt-4.1 mini deep");

    // a=0 (10: gpt-4.1, mini)  b=1 (10: mini)  c=2 (5: deep, mini)  low=3 (1: other)
    check_str(G, "priority order, ties in config order", route("gpt-4.1", 1000),
              "a:gpt-4.1 a:mini b:mini c:mini c:deep");
    health_record(&g_table[0], p, ok_outcome(900), 1000, true);
    health_record(&g_table[1], p, ok_outcome(100), 1000, true);
    check_str(G, "same priority: lower latency first", route("gpt-4.1", 1000),
              "a:gpt-4.1 b:mini a:mini c:mini c:deep");
    health_record(&g_table[2], p, ok_outcome(1), 1000, true);
    // mini's chain is mini, gpt-4.1 (its rule), deep (gpt-4.1's rule); c is fastest but lowest
    check_str(G, "priority beats latency; chain order beats both", route("mini", 1000),
              "b:mini a:mini c:mini a:gpt-4.1 c:deep");
    for (int i = 0; i < 3; i++) health_record(&g_table[0], p, fail_outcome(), 2000 + i, true);
    check_str(G, "a DOWN endpoint is skipped", route("gpt-4.1", 3000), "b:mini c:mini c:deep");
    health_rate_limit(&g_table[2], 1, 60000, 3000);  // c's "mini" (its model slot 1)
    check_str(G, "a rate-limited model is skipped on that endpoint only", route("gpt-4.1", 3000),
              "b:mini c:deep");
    check_u64(G, "soonest serve now while one can serve", router_soonest_serve_ms(g_cfg, g_table, "gpt-4.1", 3000),
              3000);
    check(G, "unknown model", !router_model_known(g_cfg, "nope"));
    check(G, "model known through a fallback rule", router_model_known(g_cfg, "gpt-4.1"));
    check_str(G, "model nobody lists: no candidates", route("nope", 3000), "");
    for (int i = 0; i < 3; i++) health_record(&g_table[3], p, fail_outcome(), 4000 + i, false);
    check_str(G, "every endpoint of the chain DOWN: tried anyway (panic)", route("other", 5000), "low:other");
    check(G, "panic candidate marked", g_out[0].panic);
    check(G, "panic candidate usable while DOWN", router_candidate_usable(g_table[3], g_out[0], 5000));
}

// ---- SSE splitter -------------------------------------------------------------------------

struct Events {
    unsigned n = 0;
    char log[512] = "";  // "event|data|id;" per event, '\n' in data shown as '/'
    unsigned done = 0;
};

void on_event(const SseEvent& ev, void* user) {
    Events* e = static_cast<Events*>(user);
    StrBuf b(e->log + strlen(e->log), sizeof e->log - strlen(e->log));
    b.append(ev.event, ev.event_len);
    b.append("|");
    for (size_t i = 0; i < ev.data_len; i++) b.append(ev.data[i] == '\n' ? "/" : &ev.data[i], 1);
    b.append("|");
    b.append(ev.id, ev.id_len);
    b.append(";");
    e->n++;
    if (ev.is_done) e->done++;
}

const char kStream[] =
    "\xEF\xBB\xBF"                         // BOM, skipped
    "data: {\"a\":1}\n\n"                  // 1
    ": ping\r\n"                           // comment
    "event: delta\r\ndata: x\r\ndata:y\r\n\r\n"  // 2: two data lines, no space after ':'
    "id: 7\rretry: 1500\rdata: [DONE]\r\r"  // 3: CR-only line ends
    "event: lonely\n\n"                    // no data: not dispatched
    "data: cut";                           // unfinished at the end
const char kWant[] = "|{\"a\":1}|;delta|x/y|;|[DONE]|7;";

SseParser g_sse;

void feed_split(const size_t* cuts, size_t ncuts, Events* ev) {
    sse_init(&g_sse);
    size_t len = sizeof kStream - 1;
    size_t from = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        sse_feed(&g_sse, kStream + from, to - from, on_event, ev);
        from = to;
    }
}

void test_sse() {
    const char* G = "sse";
    size_t len = sizeof kStream - 1;
    {
        Events ev;
        feed_split(nullptr, 0, &ev);
        check_str(G, "whole stream in one chunk", ev.log, kWant);
        check_u64(G, "one comment", g_sse.comments, 1);
        check(G, "retry field", g_sse.has_retry && g_sse.retry_ms == 1500);
        check(G, "[DONE] recognised", ev.done == 1);
        check(G, "a cut event is pending, not dispatched", sse_has_partial(&g_sse));
    }
    {
        // Cuts inside the BOM, inside "data", between \r and \n, inside a value, after a \r.
        const size_t cuts[] = {1, 5, 11, 20, 31, 33, 47, 48, 60, 61, 75, 80};
        Events ev;
        feed_split(cuts, sizeof cuts / sizeof cuts[0], &ev);
        check_str(G, "split at odd places", ev.log, kWant);
    }
    {
        Events ev;
        sse_init(&g_sse);
        for (size_t i = 0; i < len; i++) sse_feed(&g_sse, kStream + i, 1, on_event, &ev);
        check_str(G, "one byte at a time", ev.log, kWant);
        check_u64(G, "events counted", g_sse.events, 3);
    }
    {
        // Where in the chunk each event ended (the relay forwards bytes up to there).
        struct Ends {
            size_t at[4];
            unsigned n;
        } ends = {{0, 0, 0, 0}, 0};
        const char two[] = "data: a\n\ndata: b\r\n\r\nda";
        sse_init(&g_sse);
        sse_feed(&g_sse, two, sizeof two - 1,
                 [](const SseEvent& e, void* u) {
                     Ends* x = static_cast<Ends*>(u);
                     if (x->n < 4) x->at[x->n++] = e.end_offset;
                 },
                 &ends);
        check(G, "end offsets of two events in one chunk", ends.n == 2 && ends.at[0] == 9 && ends.at[1] == 20);
    }
    {
        // An event larger than its fixed buffer is an error, never an overflow.
        static char big[EW_CAP_SSE_EVENT + 16];
        memcpy(big, "data: ", 6);
        memset(big + 6, 'x', sizeof big - 6);
        Events ev;
        sse_init(&g_sse);
        SseStatus st = sse_feed(&g_sse, big, sizeof big, on_event, &ev);
        check(G, "oversized event: too_large", st == SseStatus::too_large && ev.n == 0);
        st = sse_feed(&g_sse, "\n\n", 2, on_event, &ev);
        check(G, "and it stays failed", st == SseStatus::too_large && ev.n == 0);
    }
}

// ---- request checks -----------------------------------------------------------------------

void test_request_check() {
    const char* G = "request_check";
    const char* crlf = "evil\r\nSet-Cookie: pwn=1";
    check(G, "model with CR LF refused", model_name_check(crlf, strlen(crlf)) == ModelNameCheck::bad_byte);
    check(G, "plain model accepted", model_name_check("gpt-4.1", 7) == ModelNameCheck::ok);
    char long_name[EW_CAP_MODEL_NAME];
    memset(long_name, 'm', sizeof long_name);
    check(G, "a name filling the cap is too long", model_name_check(long_name, sizeof long_name) ==
                                                        ModelNameCheck::too_long);
    check(G, "one byte less is fine", model_name_check(long_name, sizeof long_name - 1) == ModelNameCheck::ok);
    const char* why = "";
    const char* good = "/v1/chat/completions?x=1";
    check(G, "chat path accepted", upstream_path_check(good, strlen(good), &why));
    const char* bad = "/v1/.%2E/admin";
    check(G, "encoded dot-segment refused", !upstream_path_check(bad, strlen(bad), &why));
    check_str(G, "reason", why, "dot-segment");
}

// ---- the state file ------------------------------------------------------------------------

Config g_state_cfg;
Health g_state_h[2];
char g_state_text[1024];

void test_state() {
    const char* G = "state";
#if EW_STATE_FILE
    Config& c = g_state_cfg;
    c.endpoint_count = 2;
    copy_str(c.endpoints[0].name, sizeof c.endpoints[0].name, "primary");
    copy_str(c.endpoints[0].url, sizeof c.endpoints[0].url, "http://10.0.0.1/v1");
    copy_str(c.endpoints[1].name, sizeof c.endpoints[1].name, "backup");
    copy_str(c.endpoints[1].url, sizeof c.endpoints[1].url, "http://10.0.0.2/v1");
    HealthParams p;
    health_init(&g_state_h[0]);
    health_init(&g_state_h[1]);
    health_rate_limit(&g_state_h[0], -1, 1000 + 60000, 1000);
    StrBuf out(g_state_text, sizeof g_state_text);
    check(G, "encodes", state_encode(c, g_state_h, 1000, 1764650000000ULL, &out));
    check(G, "checksum of the check value", crc32("123456789", 9) == 0xCBF43926u);
    health_init(&g_state_h[0]);
    StateLoadResult r;
    // Started again 20 s later by the wall clock; the monotonic clock starts at 5.
    StateLoad st = state_decode(out.data, out.len, c, g_state_h, p, 5, 1764650020000ULL, &r);
    check(G, "decodes", st == StateLoad::ok);
    check(G, "still RATE_LIMITED after the restart", g_state_h[0].state == HealthState::rate_limited);
    check_u64(G, "for the rest of the 60 s", g_state_h[0].rate_limited_until_ms, 5 + 40000);
    health_init(&g_state_h[0]);
    st = state_decode(out.data, out.len - 3, c, g_state_h, p, 5, 0, &r);
    check(G, "a truncated file is refused", st == StateLoad::truncated && g_state_h[0].state == HealthState::healthy);
    g_state_text[20] ^= 1;
    st = state_decode(out.data, out.len, c, g_state_h, p, 5, 0, &r);
    check(G, "a corrupted file is refused", st == StateLoad::bad_checksum);
#else
    StateLoadResult r;
    check(G, "without EW_STATE_FILE every file is refused",
          state_decode("x", 1, g_state_cfg, g_state_h, HealthParams(), 5, 0, &r) == StateLoad::not_state);
#endif
    char data[4] = "abc";
#if EW_SELFTEST_RTOS_FILES
    check(G, "RTOS port without board hooks: write not supported",
          pal::write_file_atomic("/state", data, 3) == ENOTSUP);
    size_t len = 1;
    bool private_ok = false;
    check(G, "RTOS port without board hooks: read not supported",
          pal::read_file("/state", g_state_text, sizeof g_state_text, &len, &private_ok) == ENOTSUP && len == 0);
#else
    (void)data;
#endif
}

// ---- the parts a device profile may leave out (core/caps.h) --------------------------------
// The same checks pass with them on (default caps) and off (the small caps).

Metrics g_metrics;
char g_page[8192];

void test_profile() {
    const char* G = "profile";
    if (g_cfg.endpoint_count < 2) {
        check(G, "needs the parsed config", false);
        return;
    }
    static Health h[EW_CAP_ENDPOINTS];
    for (Health& x : h) health_init(&x);
    HealthParams p;
    MetricsView v = {&g_cfg, h, &p, &g_metrics, 10000, 0};
    StrBuf page(g_page, sizeof g_page);
    status_page_render(v, &page);
    check(G, "GET / names the serving endpoint", strstr(g_page, "SERVING via a") != nullptr);
    check(G, "GET / links to /status", strstr(g_page, "<a href=\"/status\">/status</a>") != nullptr);
#if !EW_STATUS_PAGE
    check(G, "without EW_STATUS_PAGE the page is a few lines", page.len < 400 && !page.overflow);
#endif

    for (int i = 0; i < 3; i++) health_record(&h[1], p, fail_outcome(503), 1000 + i, false);
    char why[EW_CAP_ERROR_TEXT + 96], back[192];
    StrBuf w(why, sizeof why), b(back, sizeof back);
    health_explain(h[1], p, 2000, &w, &b);
    check(G, "a DOWN endpoint's reason starts with DOWN", strncmp(why, "DOWN", 4) == 0);
    check(G, "and says what brings it back", b.len > 0);

    Histogram hist;
    hist.observe_ms(10);
    hist.observe_ms(10);
    hist.observe_ms(400000);
    check(G, "histogram: 10 ms twice in the first bucket", hist.buckets[0] == 2);
    check(G, "histogram: 400 s in +Inf", hist.buckets[kHistogramBuckets - 1] == 1 && hist.count == 3);
}

}  // namespace

int main() {
    write_str("edgeway core self-test\n");
    test_ini();
    test_health();
    test_router();
    test_sse();
    test_request_check();
    test_state();
    test_profile();
    StrBuf b(g_line, sizeof g_line);
    put_u64(b, g_passed);
    b.append(" passed, ");
    put_u64(b, g_failed);
    b.append(" failed\n");
    write_str(g_line);
    return g_failed == 0 && g_passed > 0 ? 0 : 1;
}
