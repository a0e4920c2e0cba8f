#include "net/resolver.h"

#include <string.h>

#include "core/strbuf.h"
#include "net/log.h"

namespace ew {

const char* to_string(NameState s) {
    switch (s) {
    case NameState::unused: return "unused";
    case NameState::numeric: return "numeric";
    case NameState::unresolved: return "unresolved";
    case NameState::resolved: return "resolved";
    }
    return "?";
}

bool same_addr(const pal::Addr& a, const pal::Addr& b) {
    if (a.family != b.family || a.port != b.port) return false;
    return memcmp(a.bytes, b.bytes, a.family == 4 ? 4 : 16) == 0;
}

// ---- socket watches -----------------------------------------------------------------------------

pal::Socket DnsSocketWatch::poll_socket() const {
    pal::Socket s = pal::kNoSocket;
    return pal::dns_socket(slot, &s, nullptr) ? s : pal::kNoSocket;
}

uint16_t DnsSocketWatch::poll_events() const {
    uint16_t ev = 0;
    return pal::dns_socket(slot, nullptr, &ev) ? ev : 0;
}

void DnsSocketWatch::on_ready(uint16_t revents, uint64_t) {
    pal::Socket s = pal::kNoSocket;
    if (!pal::dns_socket(slot, &s, nullptr)) return;
    // Errors and hang-ups are read as readability: c-ares then sees the failure and moves on.
    bool rd = (revents & (pal::kIn | pal::kErr | pal::kHup)) != 0;
    bool wr = (revents & pal::kOut) != 0;
    pal::dns_process(rd ? s : pal::kNoSocket, wr ? s : pal::kNoSocket);
}

// ---- the resolver -------------------------------------------------------------------------------

bool Resolver::open(const char* servers, const ResolverParams& p, Loop* loop, char* err, size_t err_cap) {
    close();
    params_ = p;
    loop_ = loop;
    int rc = pal::dns_open(servers ? servers : "");
    open_ = rc == pal::kDnsOk;
    open_error_ = rc;
    if (loop_) {
        loop_->add(this);
        for (uint8_t s = 0; s < EW_PAL_DNS_SOCKETS; s++) {
            watches_[s].slot = s;
            if (open_) loop_->add(&watches_[s]);
        }
    }
    if (!open_ && err && err_cap) {
        StrBuf m(err, err_cap);
        m.appendf("dns: %s", pal::dns_strerror(rc));
    }
    return open_;
}

void Resolver::close() {
    if (loop_) {
        loop_->remove(this);
        for (DnsSocketWatch& w : watches_) loop_->remove(&w);
    }
    if (open_) pal::dns_close();  // in-flight lookups end as kDnsCancelled: rescheduled
    open_ = false;
    open_error_ = pal::kDnsUnsupported;
    loop_ = nullptr;
}

void Resolver::set_host(uint8_t i, const char* host, uint16_t port, uint64_t now_ms) {
    if (i >= kResolverNames || host == nullptr) return;
    NameEntry& e = entries_[i];
    if (e.state != NameState::unused && e.port == port && strcmp(e.host, host) == 0) return;
    uint32_t gen = e.gen + 1;
    bool querying = e.querying;
    e = NameEntry();
    e.gen = gen;
    e.querying = querying;  // its answer will be dropped (older generation)
    copy_str(e.host, sizeof e.host, host);
    e.port = port;
    if (pal::parse_addr(host, port, &e.addrs[0])) {
        e.state = NameState::numeric;
        e.count = 1;
        return;
    }
    e.state = NameState::unresolved;
    StrBuf m(e.error, sizeof e.error);
    m.appendf("dns: resolving %s", host);
    e.next_lookup_ms = now_ms;
}

void Resolver::clear(uint8_t i) {
    if (i >= kResolverNames) return;
    uint32_t gen = entries_[i].gen + 1;
    bool querying = entries_[i].querying;
    entries_[i] = NameEntry();
    entries_[i].gen = gen;
    entries_[i].querying = querying;
}

bool Resolver::address(uint8_t i, pal::Addr* out) const {
    if (!has_address(i)) return false;
    const NameEntry& e = entries_[i];
    if (out) *out = e.addrs[e.current < e.count ? e.current : 0];
    return true;
}

bool Resolver::has_address(uint8_t i) const {
    if (i >= kResolverNames) return false;
    const NameEntry& e = entries_[i];
    return (e.state == NameState::numeric || e.state == NameState::resolved) && e.count > 0;
}

bool Resolver::lists(uint8_t i, const pal::Addr& a) const {
    if (!has_address(i)) return false;
    const NameEntry& e = entries_[i];
    for (uint8_t k = 0; k < e.count; k++)
        if (same_addr(e.addrs[k], a)) return true;
    return false;
}

const char* Resolver::unresolved_reason(uint8_t i) const {
    if (i >= kResolverNames || entries_[i].state != NameState::unresolved) return "";
    return entries_[i].error;
}

void Resolver::describe(uint32_t count, NameView* out) const {
    for (uint32_t i = 0; i < count && i < kResolverNames; i++) {
        const NameEntry& e = entries_[i];
        NameView& n = out[i];
        n = NameView();
        n.state = e.state == NameState::resolved && e.querying ? "refreshing" : to_string(e.state);
        n.error = e.error;
        pal::Addr a;
        if (address(static_cast<uint8_t>(i), &a)) pal::format_addr(a, n.address, sizeof n.address);
        n.addresses = e.count;
        n.ttl_ms = e.ttl_ms;
        n.lookups = e.lookups;
        n.failures = e.failures;
        n.changes = e.changes;
    }
}

void Resolver::connect_failed(uint8_t i, const pal::Addr& a, uint64_t now_ms) {
    if (i >= kResolverNames) return;
    NameEntry& e = entries_[i];
    if (e.state != NameState::resolved || e.count == 0) return;
    bool known = false;
    for (uint8_t k = 0; k < e.count; k++) known = known || same_addr(e.addrs[k], a);
    if (!known) return;  // an address of an older answer
    // Only a failure of the current address moves on: concurrent failures of one address
    // must not skip the next one.
    if (same_addr(e.addrs[e.current], a)) {
        e.current = static_cast<uint8_t>((e.current + 1) % e.count);
        if (e.count > 1) {
            char from[64], to[64];
            pal::format_addr(a, from, sizeof from);
            pal::format_addr(e.addrs[e.current], to, sizeof to);
            EW_LOG_INFO("dns host=%s connect to %s failed; next address %s", e.host, from, to);
        }
    }
    if (e.failed_connects < 255) e.failed_connects++;
    if (e.failed_connects >= e.count && !e.querying && !e.early) {
        // Every cached address failed: the name may have moved before its TTL ran out.
        uint64_t at = e.lookup_started_ms + params_.early_min_ms;
        if (at < now_ms) at = now_ms;
        if (e.next_lookup_ms == 0 || at < e.next_lookup_ms) e.next_lookup_ms = at;
        e.early = true;
    }
}

void Resolver::connect_ok(uint8_t i, const pal::Addr& a) {
    if (i >= kResolverNames) return;
    NameEntry& e = entries_[i];
    if (e.state == NameState::resolved && same_addr(e.addrs[e.current], a)) e.failed_connects = 0;
}

void Resolver::lookup_done(void* ctx, int err, const pal::DnsAnswer* answers, size_t count) {
    auto* c = static_cast<LookupCtx*>(ctx);
    c->r->on_answer(c->i, c->gen, err, answers, count, pal::now_ms());
}

void Resolver::start_lookup(uint8_t i, uint64_t now_ms) {
    NameEntry& e = entries_[i];
    e.next_lookup_ms = 0;
    e.lookup_started_ms = now_ms;
    if (!open_) {
        on_answer(i, e.gen, open_error_, nullptr, 0, now_ms);
        return;
    }
    ctx_[i] = LookupCtx{this, i, e.gen};
    e.query_gen = e.gen;
    e.querying = true;  // before the call: the answer may come from within it
    int rc = pal::dns_lookup(e.host, e.port, lookup_done, &ctx_[i]);
    if (rc != pal::kDnsOk) on_answer(i, e.gen, rc, nullptr, 0, now_ms);
}

void Resolver::on_answer(uint8_t i, uint32_t gen, int err, const pal::DnsAnswer* answers, size_t count,
                         uint64_t now_ms) {
    if (i >= kResolverNames) return;
    NameEntry& e = entries_[i];
    e.querying = false;
    if (gen != e.gen || (e.state != NameState::unresolved && e.state != NameState::resolved)) {
        // The host changed while this lookup was in flight: look the new one up now.
        if (e.state == NameState::unresolved || e.state == NameState::resolved) e.next_lookup_ms = now_ms;
        return;
    }
    if (err == pal::kDnsCancelled) {  // the resolver was closed or re-opened: ask again
        e.next_lookup_ms = now_ms + params_.retry_first_ms;
        return;
    }
    e.lookups++;
    e.early = false;
    if (err == pal::kDnsOk && count > 0 && answers != nullptr) {
        take_answer(e, i, answers, count, now_ms);
    } else {
        take_failure(e, err == pal::kDnsOk ? pal::kDnsNoData : err, now_ms);
    }
}

void Resolver::take_answer(NameEntry& e, uint8_t i, const pal::DnsAnswer* answers, size_t count, uint64_t now_ms) {
    if (count > EW_PAL_DNS_ANSWERS) count = EW_PAL_DNS_ANSWERS;
    uint64_t ttl_ms = UINT64_MAX;
    for (size_t k = 0; k < count; k++) {
        uint64_t t = static_cast<uint64_t>(answers[k].ttl_s) * 1000u;
        if (t < ttl_ms) ttl_ms = t;
    }
    if (ttl_ms < params_.min_ttl_ms) ttl_ms = params_.min_ttl_ms;
    if (ttl_ms > params_.max_ttl_ms) ttl_ms = params_.max_ttl_ms;

    bool was_resolved = e.state == NameState::resolved;
    bool changed = !was_resolved || count != e.count;
    for (size_t k = 0; k < count && !changed; k++) {
        pal::Addr a = answers[k].addr;
        a.port = e.port;
        changed = !same_addr(a, e.addrs[k]);
    }
    // New connections stay on the current address while the answer still lists it.
    pal::Addr cur = e.addrs[e.current];
    uint8_t next_current = 0;
    for (size_t k = 0; k < count; k++) {
        e.addrs[k] = answers[k].addr;
        e.addrs[k].port = e.port;
        if (was_resolved && same_addr(e.addrs[k], cur)) next_current = static_cast<uint8_t>(k);
    }
    e.count = static_cast<uint8_t>(count);
    e.current = next_current;
    e.state = NameState::resolved;
    e.failed_connects = 0;
    e.retry_ms = 0;
    e.ttl_ms = static_cast<uint32_t>(ttl_ms);
    e.resolved_ms = now_ms;
    e.next_lookup_ms = now_ms + ttl_ms;
    bool had_error = e.error[0] != '\0';
    e.error[0] = '\0';
    if (changed) {
        if (was_resolved) e.changes++;
        char first[64];
        pal::format_addr(e.addrs[e.current], first, sizeof first);
        EW_LOG_INFO("dns host=%s resolved addresses=%u first=%s ttl_ms=%u", e.host, static_cast<unsigned>(e.count),
                    first, e.ttl_ms);
        if (on_change_) on_change_(on_change_user_, i);
    } else if (had_error) {
        EW_LOG_INFO("dns host=%s answers again (addresses unchanged)", e.host);
    }
}

void Resolver::take_failure(NameEntry& e, int err, uint64_t now_ms) {
    e.failures++;
    uint32_t next = e.retry_ms == 0 ? params_.retry_first_ms : e.retry_ms * 2;
    if (next > params_.retry_max_ms) next = params_.retry_max_ms;
    e.retry_ms = next;
    e.next_lookup_ms = now_ms + next;
    char text[EW_CAP_ERROR_TEXT];
    StrBuf m(text, sizeof text);
    m.appendf("dns: %s for %s", pal::dns_strerror(err), e.host);
    bool same = strcmp(text, e.error) == 0;
    copy_str(e.error, sizeof e.error, text);
    if (same) return;  // logged once per distinct failure, not once per retry
    if (e.state == NameState::resolved) {
        EW_LOG_WARN("%s; keeping %u cached address(es), retry in %u ms", text, static_cast<unsigned>(e.count), next);
    } else {
        EW_LOG_WARN("%s; retry in %u ms", text, next);
    }
}

void Resolver::run_due(uint64_t now_ms) {
    for (uint8_t i = 0; i < kResolverNames; i++) {
        NameEntry& e = entries_[i];
        if (e.state != NameState::unresolved && e.state != NameState::resolved) continue;
        if (e.querying || e.next_lookup_ms == 0 || e.next_lookup_ms > now_ms) continue;
        start_lookup(i, now_ms);
    }
}

uint64_t Resolver::next_due_ms() const {
    uint64_t best = 0;
    for (const NameEntry& e : entries_) {
        if (e.state != NameState::unresolved && e.state != NameState::resolved) continue;
        if (e.querying || e.next_lookup_ms == 0) continue;
        if (best == 0 || e.next_lookup_ms < best) best = e.next_lookup_ms;
    }
    return best;
}

uint64_t Resolver::deadline_ms() const {
    uint64_t best = next_due_ms();
    if (open_) {
        int t = pal::dns_timeout_ms();
        if (t >= 0) {
            uint64_t at = pal::now_ms() + static_cast<uint64_t>(t);
            if (best == 0 || at < best) best = at;
        }
    }
    return best;
}

void Resolver::on_deadline(uint64_t now_ms) {
    if (open_) pal::dns_process(pal::kNoSocket, pal::kNoSocket);  // c-ares: retries and timeouts due
    run_due(now_ms);
}

}  // namespace ew
