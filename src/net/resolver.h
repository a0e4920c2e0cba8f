// Names of the upstream endpoints, resolved without blocking and without giving up.
//
// Per endpoint: NUMERIC (an IP address or localhost: never asks DNS), UNRESOLVED (no
// address yet; `error` says why, e.g. "dns: NXDOMAIN for api.example.com"; retried after
// 1 s, doubling to 30 s) or RESOLVED (every A/AAAA address of the last answer; refreshed when
// the answer's TTL, clamped to [dns_min_ttl_ms, dns_max_ttl_ms], runs out — a lookup in
// flight then is "refreshing"). A failed refresh keeps the cached addresses serving (a
// silent or failing DNS server never takes a working upstream away) and is retried with
// the same back-off. A connect failure moves new connections to the next address; once
// every address failed, the name is re-queried early (at most every 2 s).
//
// The lookups go through the PAL's asynchronous resolver (pal::dns_*), driven by the loop:
// the Resolver is a Pollable for its timers, and DnsSocketWatch pollables watch the
// resolver's sockets. No call here blocks; nothing is allocated by edgeway's own code.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/caps.h"
#include "core/metrics.h"
#include "net/loop.h"
#include "pal.h"

namespace ew {

// Names held: one per endpoint (index = endpoint), and one more for the telemetry broker.
constexpr uint32_t kResolverNames = EW_CAP_ENDPOINTS + 1;
constexpr uint8_t kTelemetryNameSlot = EW_CAP_ENDPOINTS;
static_assert(kResolverNames <= 255, "resolver slots are uint8_t");

enum class NameState : uint8_t { unused, numeric, unresolved, resolved };
const char* to_string(NameState s);

struct NameEntry {
    char host[EW_CAP_HOST] = "";
    uint16_t port = 0;
    NameState state = NameState::unused;
    bool querying = false;        // a lookup is in flight ("refreshing" when resolved)
    bool early = false;           // an early re-query is scheduled (connects failed)
    pal::Addr addrs[EW_PAL_DNS_ANSWERS] = {};
    uint8_t count = 0;
    uint8_t current = 0;          // the address new connections use
    uint8_t failed_connects = 0;  // since the last answer
    uint32_t retry_ms = 0;        // back-off of failing lookups; 0 after a good answer
    uint32_t ttl_ms = 0;          // refresh interval of the last answer (clamped)
    uint64_t next_lookup_ms = 0;  // 0 = none scheduled
    uint64_t lookup_started_ms = 0;
    uint64_t resolved_ms = 0;     // time of the last good answer
    uint32_t lookups = 0;         // answers received (good or bad)
    uint32_t failures = 0;        // bad answers
    uint32_t changes = 0;         // good answers whose address set differed from the cached one
    uint32_t gen = 0;             // bumped when the host changes: older answers are dropped
    uint32_t query_gen = 0;
    char error[EW_CAP_ERROR_TEXT] = "";  // unresolved: why; resolved: the last refresh failure
};

struct ResolverParams {
    uint32_t min_ttl_ms = 30000;   // [agent] dns_min_ttl_ms
    uint32_t max_ttl_ms = 600000;  // [agent] dns_max_ttl_ms
    uint32_t retry_first_ms = 1000;
    uint32_t retry_max_ms = 30000;
    uint32_t early_min_ms = 2000;  // an early re-query no sooner than this after the last lookup
};

class Resolver;

// One of the resolver's sockets, as the loop sees it.
class DnsSocketWatch final : public Pollable {
public:
    uint8_t slot = 0;
    pal::Socket poll_socket() const override;
    uint16_t poll_events() const override;
    uint64_t deadline_ms() const override { return 0; }
    void on_ready(uint16_t revents, uint64_t now_ms) override;
    void on_deadline(uint64_t) override {}
};

// The loop's table counts the resolver's pollables (its timer and its socket watches).
static_assert(1 + EW_PAL_DNS_SOCKETS <= EW_CAP_RESOLVER_POLLABLES, "EW_CAP_RESOLVER_POLLABLES too small");

class Resolver final : public TimerPollable {
public:
    // Opens the PAL resolver (servers: "" = the system's) and registers with the loop.
    // False with a reason when it cannot: numeric hosts still work, names stay unresolved
    // with that reason and are retried.
    bool open(const char* servers, const ResolverParams& p, Loop* loop, char* err, size_t err_cap);
    // Unregisters; lookups in flight are dropped. Entries are kept.
    void close();
    void set_params(const ResolverParams& p) { params_ = p; }
    const ResolverParams& params() const { return params_; }

    // Endpoint i resolves `host`: a numeric host at once, a name looked up now (an unchanged
    // host and port keep their state and addresses).
    void set_host(uint8_t i, const char* host, uint16_t port, uint64_t now_ms);
    void clear(uint8_t i);

    // The address new connections to endpoint i use; false while it has none.
    bool address(uint8_t i, pal::Addr* out) const;
    bool has_address(uint8_t i) const;
    // a is one of endpoint i's current addresses (a parked connection to it may be reused).
    bool lists(uint8_t i, const pal::Addr& a) const;
    const NameEntry& entry(uint8_t i) const { return entries_[i]; }
    // "dns: NXDOMAIN for api.example.com" while unresolved, else "".
    const char* unresolved_reason(uint8_t i) const;

    // What /status and /metrics show of endpoints [0, count).
    void describe(uint32_t count, NameView* out) const;

    // Connect outcomes for address a of endpoint i (rotation and early refresh).
    void connect_failed(uint8_t i, const pal::Addr& a, uint64_t now_ms);
    void connect_ok(uint8_t i, const pal::Addr& a);

    // Called when an endpoint gains an address (was unresolved) or its addresses change.
    void set_on_change(void (*fn)(void* user, uint8_t i), void* user) {
        on_change_ = fn;
        on_change_user_ = user;
    }

    // The answer to a lookup of endpoint i made at generation gen. The PAL's callback calls
    // it; tests call it to drive the state with their own clock.
    void on_answer(uint8_t i, uint32_t gen, int err, const pal::DnsAnswer* answers, size_t count, uint64_t now_ms);
    // Starts the lookups that are due at now_ms.
    void run_due(uint64_t now_ms);
    // Earliest scheduled lookup (0 = none).
    uint64_t next_due_ms() const;

    // Pollable: the timer of due lookups and of the PAL resolver's own timeouts.
    uint64_t deadline_ms() const override;
    void on_deadline(uint64_t now_ms) override;

private:
    struct LookupCtx {
        Resolver* r;
        uint8_t i;
        uint32_t gen;
    };
    static void lookup_done(void* ctx, int err, const pal::DnsAnswer* answers, size_t count);
    void start_lookup(uint8_t i, uint64_t now_ms);
    void take_answer(NameEntry& e, uint8_t i, const pal::DnsAnswer* answers, size_t count, uint64_t now_ms);
    void take_failure(NameEntry& e, int err, uint64_t now_ms);

    NameEntry entries_[kResolverNames];
    LookupCtx ctx_[kResolverNames] = {};
    DnsSocketWatch watches_[EW_PAL_DNS_SOCKETS];
    ResolverParams params_;
    Loop* loop_ = nullptr;
    bool open_ = false;
    int open_error_ = pal::kDnsUnsupported;  // why lookups cannot start while !open_
    void (*on_change_)(void*, uint8_t) = nullptr;
    void* on_change_user_ = nullptr;
};

bool same_addr(const pal::Addr& a, const pal::Addr& b);  // family, bytes and port

}  // namespace ew
