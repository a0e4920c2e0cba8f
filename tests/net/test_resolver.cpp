// The Resolver: its timing rules against a fake clock (answers fed in directly), and the
// whole path — c-ares through the PAL, driven by the loop — against the tests' own DNS
// server (tests/integration/lib/dns_server.js, spawned as a child on 127.0.0.1).
#include "ew_catch.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "net/loop.h"
#include "net/resolver.h"
#include "pal.h"

namespace {

pal::DnsAnswer v4(const char* ip, uint32_t ttl_s) {
    pal::DnsAnswer a;
    memset(&a, 0, sizeof a);
    REQUIRE(pal::parse_addr(ip, 0, &a.addr));
    a.ttl_s = ttl_s;
    return a;
}

std::string addr_text(const pal::Addr& a) {
    char buf[64];
    pal::format_addr(a, buf, sizeof buf);
    return buf;
}

std::string current(const ew::Resolver& r, uint8_t i) {
    pal::Addr a;
    if (!r.address(i, &a)) return "none";
    return addr_text(a);
}

// ---- the tests' DNS server as a child process ------------------------------------------------

struct DnsServer {
    pid_t pid = -1;
    FILE* to = nullptr;
    FILE* from = nullptr;
    int port = 0;

    DnsServer() {
        int in[2], out[2];
        REQUIRE(pipe(in) == 0);
        REQUIRE(pipe(out) == 0);
        pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            dup2(in[0], 0);
            dup2(out[1], 1);
            close(in[1]);
            close(out[0]);
            std::string script = std::string(EW_SOURCE_DIR) + "/tests/integration/lib/dns_server.js";
            execlp(EW_NODE_EXE, EW_NODE_EXE, script.c_str(), static_cast<char*>(nullptr));
            _exit(127);
        }
        close(in[0]);
        close(out[1]);
        to = fdopen(in[1], "w");
        from = fdopen(out[0], "r");
        // The server says its port at once. A child that never speaks (seen when the test
        // runs under qemu-user, whose children do not start node) leaves ok() false.
        struct pollfd pfd = {out[0], POLLIN, 0};
        if (::poll(&pfd, 1, 15000) <= 0) return;
        // EOF instead of a line: the child could not run node (under qemu-user, the exec of
        // the host's node fails) -- not started, as above.
        char buf[256];
        if (fgets(buf, sizeof buf, from) == nullptr) return;
        if (sscanf(buf, "port %d", &port) != 1) port = 0;
    }
    bool ok() const { return port != 0; }
    ~DnsServer() {
        if (to) fclose(to);  // the server exits when its stdin closes
        if (from) fclose(from);
        if (pid > 0) {
            int st = 0;
            for (int i = 0; i < 50 && waitpid(pid, &st, WNOHANG) == 0; i++) usleep(20000);
            if (waitpid(pid, &st, WNOHANG) == 0) {
                kill(pid, SIGKILL);
                waitpid(pid, &st, 0);
            }
        }
    }
    std::string read_line() {
        char buf[256];
        REQUIRE(fgets(buf, sizeof buf, from) != nullptr);
        std::string s(buf);
        while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
        return s;
    }
    std::string command(const std::string& json) {
        fprintf(to, "%s\n", json.c_str());
        fflush(to);
        std::string r = read_line();
        REQUIRE(r.rfind("ok", 0) == 0);
        return r;
    }
    int count(const std::string& name) { return std::stoi(command("{\"count\":\"" + name + "\"}").substr(3)); }
    std::string servers() const { return "127.0.0.1:" + std::to_string(port); }
};

// Runs the loop until pred() holds or timeout_ms passes (an event wait, not a sleep).
template <class Pred>
bool run_until(ew::Loop& loop, Pred pred, int timeout_ms) {
    uint64_t end = pal::now_ms() + static_cast<uint64_t>(timeout_ms);
    while (!pred()) {
        if (pal::now_ms() >= end) return false;
        loop.run_once(50);
    }
    return true;
}

ew::ResolverParams fast_params() {
    ew::ResolverParams p;
    p.min_ttl_ms = 1000;
    p.max_ttl_ms = 600000;
    return p;
}

}  // namespace

// ---- timing rules, fake clock ---------------------------------------------------------------------

TEST_CASE("resolver: numeric hosts never touch DNS", "[resolver]") {
    ew::Resolver r;  // not opened: any lookup would fail at once
    r.set_host(0, "10.0.0.7", 443, 1000);
    r.set_host(1, "fd00::2", 8443, 1000);
    r.set_host(2, "localhost", 80, 1000);
    for (uint8_t i = 0; i < 3; i++) {
        CHECK(r.entry(i).state == ew::NameState::numeric);
        CHECK(r.entry(i).next_lookup_ms == 0);
    }
    CHECK(current(r, 0) == "10.0.0.7:443");
    CHECK(current(r, 1) == "[fd00::2]:8443");
    CHECK(current(r, 2) == "127.0.0.1:80");
    CHECK(r.next_due_ms() == 0);
    r.run_due(1000000);
    CHECK(r.entry(0).lookups == 0);
}

TEST_CASE("resolver: an unresolvable name is retried after 1 s doubling to 30 s", "[resolver]") {
    ew::Resolver r;
    uint64_t now = 5000;
    r.set_host(0, "api.example.com", 443, now);
    CHECK(r.entry(0).state == ew::NameState::unresolved);
    CHECK_FALSE(r.has_address(0));
    CHECK(r.next_due_ms() == now);
    uint32_t expect[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000};
    for (uint32_t want : expect) {
        r.on_answer(0, r.entry(0).gen, pal::kDnsNotFound, nullptr, 0, now);
        CHECK(r.entry(0).next_lookup_ms == now + want);
        now += want;
    }
    CHECK(std::string(r.unresolved_reason(0)) == "dns: NXDOMAIN for api.example.com");
    CHECK(r.entry(0).failures == 7);
    // It answers: resolved, and the back-off starts over.
    pal::DnsAnswer a = v4("192.0.2.10", 300);
    r.on_answer(0, r.entry(0).gen, pal::kDnsOk, &a, 1, now);
    CHECK(r.entry(0).state == ew::NameState::resolved);
    CHECK(current(r, 0) == "192.0.2.10:443");
    CHECK(std::string(r.unresolved_reason(0)).empty());
    CHECK(r.entry(0).retry_ms == 0);
}

TEST_CASE("resolver: refresh follows the smallest TTL, clamped to [min, max]", "[resolver]") {
    ew::Resolver r;
    ew::ResolverParams p;
    p.min_ttl_ms = 30000;
    p.max_ttl_ms = 600000;
    r.set_params(p);
    r.set_host(0, "api.example.com", 443, 0);
    pal::DnsAnswer two[] = {v4("192.0.2.1", 120), v4("192.0.2.2", 90)};
    r.on_answer(0, r.entry(0).gen, pal::kDnsOk, two, 2, 1000);
    CHECK(r.entry(0).ttl_ms == 90000);
    CHECK(r.entry(0).next_lookup_ms == 91000);
    pal::DnsAnswer low = v4("192.0.2.1", 5);
    r.on_answer(0, r.entry(0).gen, pal::kDnsOk, &low, 1, 2000);
    CHECK(r.entry(0).next_lookup_ms == 2000 + 30000);  // floor
    pal::DnsAnswer high = v4("192.0.2.1", 86400);
    r.on_answer(0, r.entry(0).gen, pal::kDnsOk, &high, 1, 3000);
    CHECK(r.entry(0).next_lookup_ms == 3000 + 600000);  // ceiling
    pal::DnsAnswer zero = v4("192.0.2.1", 0);
    r.on_answer(0, r.entry(0).gen, pal::kDnsOk, &zero, 1, 4000);
    CHECK(r.entry(0).next_lookup_ms == 4000 + 30000);
}

TEST_CASE("resolver: a failing refresh keeps the cached addresses serving", "[resolver]") {
    ew::Resolver r;
    r.set_params(fast_params());
    r.set_host(0, "api.example.com", 443, 0);
    pal::DnsAnswer a = v4("192.0.2.1", 2);
    r.on_answer(0, r.entry(0).gen, pal::kDnsOk, &a, 1, 0);
    int errs[] = {pal::kDnsTimeout, pal::kDnsServFail, pal::kDnsNotFound, pal::kDnsRefused};
    uint64_t now = 2000;
    for (int e : errs) {
        r.on_answer(0, r.entry(0).gen, e, nullptr, 0, now);
        CHECK(r.entry(0).state == ew::NameState::resolved);
        CHECK(current(r, 0) == "192.0.2.1:443");
        CHECK(std::string(r.unresolved_reason(0)).empty());  // not "unresolvable"
        CHECK_FALSE(std::string(r.entry(0).error).empty());  // but the failure is shown
        now = r.entry(0).next_lookup_ms;
    }
    CHECK(r.entry(0).retry_ms == 8000);
}

TEST_CASE("resolver: a connect failure moves to the next address, then re-queries early", "[resolver]") {
    ew::Resolver r;
    r.set_params(fast_params());
    r.set_host(0, "api.example.com", 443, 0);
    pal::DnsAnswer three[] = {v4("192.0.2.1", 300), v4("192.0.2.2", 300), v4("192.0.2.3", 300)};
    r.on_answer(0, r.entry(0).gen, pal::kDnsOk, three, 3, 0);
    REQUIRE(r.entry(0).next_lookup_ms == 300000);
    pal::Addr a1, a2, a3;
    REQUIRE(r.address(0, &a1));
    CHECK(addr_text(a1) == "192.0.2.1:443");
    r.connect_failed(0, a1, 10000);
    CHECK(current(r, 0) == "192.0.2.2:443");
    r.connect_failed(0, a1, 10001);  // a second, concurrent failure of the same address
    CHECK(current(r, 0) == "192.0.2.2:443");
    REQUIRE(r.address(0, &a2));
    r.connect_ok(0, a2);
    CHECK(r.entry(0).next_lookup_ms == 300000);
    r.connect_failed(0, a2, 20000);
    REQUIRE(r.address(0, &a3));
    CHECK(addr_text(a3) == "192.0.2.3:443");
    r.connect_failed(0, a3, 20001);
    r.connect_failed(0, a1, 20002);
    // Every address failed: an early lookup, not waiting for the TTL.
    CHECK(r.entry(0).next_lookup_ms == 20002);
    // An address of an older answer changes nothing.
    pal::Addr stale;
    REQUIRE(pal::parse_addr("198.51.100.9", 443, &stale));
    CHECK(current(r, 0) == "192.0.2.2:443");  // around again
    r.connect_failed(0, stale, 20003);
    CHECK(current(r, 0) == "192.0.2.2:443");
}

TEST_CASE("resolver: a changed answer moves new connections; an unchanged one keeps the current address", "[resolver]") {
    ew::Resolver r;
    r.set_params(fast_params());
    int changes = 0;
    r.set_on_change([](void* u, uint8_t) { ++*static_cast<int*>(u); }, &changes);
    r.set_host(0, "api.example.com", 443, 0);
    pal::DnsAnswer two[] = {v4("192.0.2.1", 60), v4("192.0.2.2", 60)};
    r.on_answer(0, r.entry(0).gen, pal::kDnsOk, two, 2, 0);
    CHECK(changes == 1);
    pal::Addr a;
    REQUIRE(r.address(0, &a));
    r.connect_failed(0, a, 10);
    CHECK(current(r, 0) == "192.0.2.2:443");
    r.on_answer(0, r.entry(0).gen, pal::kDnsOk, two, 2, 60000);
    CHECK(current(r, 0) == "192.0.2.2:443");
    CHECK(changes == 1);
    pal::DnsAnswer moved = v4("203.0.113.5", 60);
    r.on_answer(0, r.entry(0).gen, pal::kDnsOk, &moved, 1, 120000);
    CHECK(current(r, 0) == "203.0.113.5:443");
    CHECK(r.entry(0).count == 1);
    CHECK(r.entry(0).changes == 1);
    CHECK(changes == 2);
}

TEST_CASE("resolver: an answer for a host that has since changed is dropped", "[resolver]") {
    ew::Resolver r;
    r.set_host(0, "old.example.com", 443, 0);
    uint32_t old_gen = r.entry(0).gen;
    r.set_host(0, "new.example.com", 443, 10);
    pal::DnsAnswer a = v4("192.0.2.1", 60);
    r.on_answer(0, old_gen, pal::kDnsOk, &a, 1, 20);
    CHECK(r.entry(0).state == ew::NameState::unresolved);
    CHECK(r.entry(0).next_lookup_ms == 20);
    CHECK(std::string(r.entry(0).host) == "new.example.com");
}

// ---- c-ares through the PAL, against the tests' DNS server -----------------------------------------

TEST_CASE("resolver: NXDOMAIN at start, then answering: resolved without a restart", "[resolver][dns]") {
    DnsServer dns;
    if (!dns.ok()) {
        WARN("the tests' DNS server (node) did not start from this process: case not run");
        return;
    }
    ew::Loop loop;
    ew::Resolver r;
    char err[128] = "";
    REQUIRE(r.open(dns.servers().c_str(), fast_params(), &loop, err, sizeof err));
    const char* name = "late.edgeway.test";
    r.set_host(0, name, 8080, pal::now_ms());
    REQUIRE(run_until(loop, [&] { return r.entry(0).failures >= 1; }, 10000));
    CHECK(std::string(r.unresolved_reason(0)) == "dns: NXDOMAIN for late.edgeway.test");
    CHECK_FALSE(r.has_address(0));
    dns.command(R"({"set":"late.edgeway.test","entry":{"a":["127.0.0.5","127.0.0.6"],"aaaa":["::1"],"ttl":1}})");
    uint64_t t0 = pal::now_ms();
    REQUIRE(run_until(loop, [&] { return r.has_address(0); }, 10000));
    uint64_t took = pal::now_ms() - t0;
    INFO("resolved " << took << " ms after the server started answering");
    CHECK(took < 5000);
    CHECK(r.entry(0).count == 3);  // every A and AAAA answer
    CHECK(current(r, 0) == "127.0.0.5:8080");
    CHECK(r.entry(0).ttl_ms == 1000);
    r.close();
}

TEST_CASE("resolver: a changed record is followed within its TTL; a silent server keeps the cache", "[resolver][dns]") {
    DnsServer dns;
    if (!dns.ok()) {
        WARN("the tests' DNS server (node) did not start from this process: case not run");
        return;
    }
    ew::Loop loop;
    ew::Resolver r;
    char err[128] = "";
    REQUIRE(r.open(dns.servers().c_str(), fast_params(), &loop, err, sizeof err));
    dns.command(R"({"set":"moving.edgeway.test","entry":{"a":["127.0.0.7"],"ttl":2}})");
    r.set_host(0, "moving.edgeway.test", 443, pal::now_ms());
    REQUIRE(run_until(loop, [&] { return r.has_address(0); }, 10000));
    CHECK(current(r, 0) == "127.0.0.7:443");
    dns.command(R"({"set":"moving.edgeway.test","entry":{"a":["127.0.0.8"],"ttl":2}})");
    uint64_t t0 = pal::now_ms();
    REQUIRE(run_until(loop, [&] { return current(r, 0) == "127.0.0.8:443"; }, 10000));
    uint64_t took = pal::now_ms() - t0;
    INFO("followed after " << took << " ms (TTL 2 s)");
    CHECK(took <= 2000 + 1000);

    dns.command(R"({"silent":true})");
    int before = dns.count("moving.edgeway.test");
    uint32_t failures = r.entry(0).failures;
    // Refreshes go unanswered (c-ares gives up after its two tries), the cache keeps serving.
    REQUIRE(run_until(loop, [&] { return r.entry(0).failures >= failures + 1; }, 20000));
    CHECK(dns.count("moving.edgeway.test") > before);
    CHECK(r.entry(0).state == ew::NameState::resolved);
    CHECK(current(r, 0) == "127.0.0.8:443");
    CHECK(std::string(r.entry(0).error).find("timeout") != std::string::npos);
    dns.command(R"({"silent":false})");
    REQUIRE(run_until(loop, [&] { return r.entry(0).error[0] == '\0'; }, 20000));
    pal::DnsHeap h = pal::dns_heap();
    INFO("c-ares heap: peak " << h.peak << " of " << h.cap << " bytes");
    CHECK(h.refused == 0);
    CHECK(h.peak > 0);
    CHECK(h.peak <= h.cap);
    r.close();
}

TEST_CASE("resolver: SERVFAIL and a server that is not there are reported as such", "[resolver][dns]") {
    DnsServer dns;
    if (!dns.ok()) {
        WARN("the tests' DNS server (node) did not start from this process: case not run");
        return;
    }
    ew::Loop loop;
    ew::Resolver r;
    char err[128] = "";
    REQUIRE(r.open(dns.servers().c_str(), fast_params(), &loop, err, sizeof err));
    dns.command(R"({"set":"broken.edgeway.test","entry":{"rcode":"servfail"}})");
    r.set_host(0, "broken.edgeway.test", 443, pal::now_ms());
    REQUIRE(run_until(loop, [&] { return r.entry(0).failures >= 1; }, 15000));
    // c-ares 1.18 reports a server that only answers SERVFAIL as "no usable server"
    // (ARES_ECONNREFUSED, after trying every server); later versions say SERVFAIL.
    std::string why = r.unresolved_reason(0);
    CHECK((why == "dns: SERVFAIL for broken.edgeway.test" ||
           why == "dns: no usable DNS server (SERVFAIL, REFUSED or unreachable) for broken.edgeway.test"));
    r.close();
    CHECK_FALSE(r.open("not-an-address", fast_params(), &loop, err, sizeof err));
    CHECK(std::string(err) == "dns: dns_servers not accepted");
}
