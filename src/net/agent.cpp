#include "net/agent.h"

#include "net/state_log.h"

#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "net/log.h"

namespace ew {

void Listener::on_ready(uint16_t, uint64_t now_ms) { agent->accept_clients(now_ms); }

static HealthParams params_from(const Config& cfg) {
    HealthParams p;
    p.fall = cfg.probe.fall;
    p.rise = cfg.probe.rise;
    p.cooldown_base_ms = cfg.probe.down_interval_ms;
    p.cooldown_max_ms = cfg.probe.cooldown_max_ms;
    p.trial_requests = cfg.agent.trial_requests;
    return p;
}

static ResolverParams resolver_params_from(const Config& cfg) {
    ResolverParams p;
    p.min_ttl_ms = cfg.agent.dns_min_ttl_ms;
    p.max_ttl_ms = cfg.agent.dns_max_ttl_ms;
    return p;
}

void Agent::open_resolver() {
    char err[EW_CAP_ERROR_TEXT];
    // Not fatal: numeric hosts work without it; names stay unresolved, with this reason.
    if (!resolver_.open(cfg_.agent.dns_servers, resolver_params_from(cfg_), &loop_, err, sizeof err))
        EW_LOG_INFO("resolver unavailable: %s", err);
    resolver_.set_on_change(on_name_change, this);
}

void Agent::on_name_change(void* self, uint8_t endpoint) {
    // A name gained an address (or its addresses changed): probe it now rather than at its
    // next interval, so a device that booted before its network serves within seconds.
    auto* a = static_cast<Agent*>(self);
    if (endpoint >= a->cfg_.endpoint_count) return;
    a->health_[endpoint].name_unresolved = false;
    a->pool_.close_idle(endpoint);  // parked connections may point at an address no longer listed
    if (!a->probes_[endpoint].running()) a->probes_[endpoint].schedule(a->loop_.now_ms());
}

void Agent::setup_endpoints() {
    uint64_t now = loop_.now_ms();
    for (uint32_t i = cfg_.endpoint_count; i < EW_CAP_ENDPOINTS; i++) resolver_.clear(static_cast<uint8_t>(i));
    for (uint32_t i = 0; i < cfg_.endpoint_count; i++) {
        const EndpointConfig& ec = cfg_.endpoints[i];
        EndpointRuntime& rt = runtime_[i];
        // Numeric hosts have their address now; names are looked up on the loop, in the
        // background (an unchanged host keeps its addresses across a reload).
        rt.names = &resolver_;
        resolver_.set_host(static_cast<uint8_t>(i), ec.host, ec.port, now);
        health_[i].name_unresolved = !resolver_.has_address(static_cast<uint8_t>(i));
        rt.tls_ready = false;
        rt.tls_error[0] = '\0';
        if (ec.scheme == Scheme::https) {
            TlsClientOptions o;
            o.verify = ec.tls_verify;
            if (ec.tls_verify) {
                o.ca_chain = ca_cache_.get(ec.ca_file, rt.tls_error, sizeof rt.tls_error);
                if (o.ca_chain == nullptr) {
                    EW_LOG_ERROR("endpoint=%s %s", ec.name, rt.tls_error);
                    continue;
                }
            }
            if (rt.tls.setup(o) == 0) {
                rt.tls_ready = true;
            } else {
                copy_str(rt.tls_error, sizeof rt.tls_error, rt.tls.error_text());
                EW_LOG_ERROR("endpoint=%s tls setup failed: %s", ec.name, rt.tls_error);
            }
        }
    }
}

void Agent::wire_context() {
    ctx_.cfg = &cfg_;
    ctx_.health = health_;
    ctx_.params = &params_;
    ctx_.metrics = &metrics_;
    ctx_.pool = &pool_;
    ctx_.loop = &loop_;
    ctx_.runtime = runtime_;
    ctx_.rng = &rng_;
    ctx_.names = &resolver_;
    ctx_.probe_budget = &probe_budget_;
    ctx_.telemetry = &telemetry_;
}

bool Agent::init(const Config& cfg, char* err, size_t err_cap) {
    cfg_ = cfg;
    params_ = params_from(cfg_);
    probe_budget_.limit = cfg_.agent.probe_budget_tokens_per_day;
    metrics_.probe_budget_limit = probe_budget_.limit;
    log_set_level(cfg_.agent.log_level);
    log_set_format(cfg_.agent.log_format);
    started_ms_ = pal::now_ms();
    uint64_t seed = 0;
    if (pal::entropy(&seed, sizeof seed) != 0 || seed == 0) seed = started_ms_ | 1;
    rng_.seed(seed);
    wire_context();
    api_.init(&ctx_, started_ms_);
    for (uint32_t i = 0; i < EW_CAP_ENDPOINTS; i++) health_init(&health_[i]);
    pool_.init(&loop_);
    open_resolver();
    setup_endpoints();
    telemetry_.init(&ctx_, &ca_cache_, started_ms_);
    max_clients_ = cfg_.agent.max_clients;
    body_limit_ = cfg_.agent.max_request_bytes;
    // One allocation at start-up; untouched pages cost no memory until a large body arrives.
    body_storage_ = static_cast<char*>(calloc(max_clients_, body_limit_));
    if (body_storage_ == nullptr) {
        StrBuf m(err, err_cap);
        m.appendf("cannot reserve %u x %u bytes for request bodies", max_clients_, body_limit_);
        return false;
    }
    for (uint32_t i = 0; i < cfg_.endpoint_count; i++) probes_[i].init(&ctx_, static_cast<uint8_t>(i));
    state_.configure(cfg_);
    return true;
}

void Agent::restore_state() { state_.load(ctx_, pal::now_ms()); }

bool Agent::listen(char* err, size_t err_cap) {
    pal::Addr a;
    if (!pal::parse_addr(cfg_.agent.listen_host, cfg_.agent.listen_port, &a) &&
        pal::resolve(cfg_.agent.listen_host, cfg_.agent.listen_port, &a) != 0) {
        StrBuf m(err, err_cap);
        m.appendf("listen: cannot resolve %s", cfg_.agent.listen_host);
        return false;
    }
    int e = 0;
    pal::Socket s = pal::tcp_listen(a, 128, &e);
    if (s == pal::kNoSocket) {
        StrBuf m(err, err_cap);
        m.appendf("listen %s:%u: %s", cfg_.agent.listen_host, cfg_.agent.listen_port, pal::strerror(e));
        return false;
    }
    listener_.agent = this;
    listener_.sock = s;
    loop_.add(&listener_);
    EW_LOG_INFO("listening on %s:%u endpoints=%u strategy=%s", cfg_.agent.listen_host, cfg_.agent.listen_port,
                cfg_.endpoint_count, to_string(cfg_.agent.strategy));
    return true;
}

void Agent::run_once(int max_wait_ms) {
    loop_.run_once(max_wait_ms);
    const uint64_t now = pal::now_ms();
    note_states(ctx_, now);
    state_.tick(ctx_, now);
}

void Agent::start_probes(uint64_t now_ms) {
    // All endpoints are probed at once at start, then each on its own jittered timer.
    for (uint32_t i = 0; i < cfg_.endpoint_count; i++) {
        probes_[i].schedule(now_ms);
        loop_.add(&probes_[i]);
    }
}

void Agent::start_telemetry(uint64_t now_ms) {
    if (!loop_.contains(&telemetry_)) loop_.add(&telemetry_);
    telemetry_started_ = true;
    telemetry_.configure(now_ms);
}

void Agent::probe_all_once(uint64_t deadline_ms) {
    // Names first: until each has an address or its first lookup failed.
    for (;;) {
        bool waiting = false;
        for (uint32_t i = 0; i < cfg_.endpoint_count; i++) {
            const NameEntry& e = resolver_.entry(static_cast<uint8_t>(i));
            waiting = waiting || (e.state == NameState::unresolved && e.failures == 0);
        }
        if (!waiting || pal::now_ms() >= deadline_ms) break;
        loop_.run_once(100);
    }
    uint64_t now = pal::now_ms();
    for (uint32_t i = 0; i < cfg_.endpoint_count; i++) probes_[i].start(now);
    for (;;) {
        bool any = false;
        for (uint32_t i = 0; i < cfg_.endpoint_count; i++) any = any || probes_[i].running();
        if (!any || pal::now_ms() >= deadline_ms) break;
        loop_.run_once(100);
    }
}

// A slot for a new client. When the table is full, what every waiting connection has sent
// is read first (a client whose request just arrived is then busy, not idle), and the
// connections that use a slot least make room, in this order: one lingering after an error
// answer; one that has not sent a whole request head (slowloris: the longest open first);
// the longest-idle keep-alive connection between requests; a connection that has sent
// nothing yet (the newest first).
ClientConn* Agent::free_client_slot(uint32_t* index) {
    for (uint32_t i = 0; i < max_clients_; i++) {
        ClientConn* c = clients_.get(i);
        if (c == nullptr || c->state() == ClientState::unused) {
            *index = i;
            return &clients_.make(i);
        }
    }
    uint64_t now = loop_.now_ms();
    for (uint32_t i = 0; i < max_clients_; i++) clients_.get(i)->take_input(now);
    for (uint32_t i = 0; i < max_clients_; i++) {
        ClientConn* c = clients_.get(i);
        if (c->state() == ClientState::unused) {  // closed while reading (the peer left)
            *index = i;
            return c;
        }
    }
    for (int pass = 0; pass < 4; pass++) {
        ClientConn* victim = nullptr;
        uint32_t vi = 0;
        uint64_t victim_key = 0;
        for (uint32_t i = 0; i < max_clients_; i++) {
            ClientConn* c = clients_.get(i);
            bool candidate = false;
            uint64_t key = c->last_activity_ms();
            switch (pass) {
                case 0: candidate = c->lingering(); break;
                case 1:
                    candidate = c->head_incomplete();
                    key = c->opened_ms();
                    break;
                case 2: candidate = c->between_requests() && c->requests_served() > 0; break;
                default:
                    // A connection that has sent nothing yet: the newest first. A client
                    // writes its request at once, so the one whose bytes are still on their
                    // way is spared while a crowd of silent connections cycles; the older
                    // silent ones meet client_header_timeout_ms.
                    candidate = c->between_requests();
                    key = UINT64_MAX - c->opened_ms();
                    break;
            }
            if (candidate && (victim == nullptr || key < victim_key)) {
                victim = c;
                vi = i;
                victim_key = key;
            }
        }
        if (victim) {
            metrics_.clients_evicted++;
            EW_LOG_DEBUG("client closed to admit a new one (%s)",
                         pass == 0 ? "lingering" : pass == 1 ? "incomplete head" : "idle");
            victim->close_now();
            *index = vi;
            return victim;
        }
    }
    return nullptr;
}

void Agent::accept_clients(uint64_t now_ms) {
    for (;;) {
        int e = 0;
        pal::Socket s = pal::tcp_accept(listener_.sock, &e);
        if (s == pal::kNoSocket) return;
        uint32_t index = 0;
        ClientConn* slot = draining_ ? nullptr : free_client_slot(&index);
        if (slot == nullptr) {
            // Every slot is busy with a request: answer 503 at once rather than let the client hang.
            static const char kBody[] =
                "{\"error\":{\"message\":\"edgeway: too many client connections (max_clients)\","
                "\"type\":\"server_error\",\"param\":null,\"code\":\"overloaded\"}}";
            char reply[384];
            StrBuf r(reply, sizeof reply);
            r.appendf("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
                      "Connection: close\r\nContent-Length: %zu\r\n\r\n%s",
                      sizeof kBody - 1, kBody);
            pal::send(s, r.data, r.len);
            pal::close(s);
            metrics_.rejected_full++;
            EW_LOG_WARN("client rejected: connection table full (max_clients=%u)", max_clients_);
            continue;
        }
        metrics_.clients_active++;
        slot->open(this, &ctx_, s, body_storage_ + static_cast<size_t>(index) * body_limit_, body_limit_, now_ms);
    }
}

void Agent::on_client_closed(ClientConn*) {
    if (metrics_.clients_active) metrics_.clients_active--;
}

// Same endpoints and models at the same indexes, and the same fallback rules.
bool Agent::same_labels(const Config& a, const Config& b) {
    if (a.endpoint_count != b.endpoint_count || a.fallback_count != b.fallback_count) return false;
    for (uint32_t i = 0; i < a.endpoint_count; i++) {
        const EndpointConfig& x = a.endpoints[i];
        const EndpointConfig& y = b.endpoints[i];
        if (strcmp(x.name, y.name) != 0 || x.model_count != y.model_count) return false;
        for (uint32_t m = 0; m < x.model_count; m++)
            if (strcmp(x.models[m], y.models[m]) != 0) return false;
    }
    for (uint32_t r = 0; r < a.fallback_count; r++)
        if (strcmp(a.fallback[r].model, b.fallback[r].model) != 0) return false;
    return true;
}

bool Agent::reload(const Config& cfg, char* err, size_t err_cap) {
    if (strcmp(cfg.agent.listen_host, cfg_.agent.listen_host) != 0 || cfg.agent.listen_port != cfg_.agent.listen_port ||
        cfg.agent.max_clients != cfg_.agent.max_clients || cfg.agent.max_request_bytes != cfg_.agent.max_request_bytes) {
        StrBuf m(err, err_cap);
        m.append("listen, max_clients and max_request_bytes change only with a restart");
        return false;
    }
    // Applied only while no request is in flight (main waits for idle()); parked connections
    // are closed so new requests use the new endpoints. Health is kept for endpoints whose
    // name and url are unchanged.
    Health old_health[EW_CAP_ENDPOINTS];
    Config old = cfg_;
    memcpy(static_cast<void*>(old_health), health_, sizeof health_);
    for (uint32_t i = 0; i < old.endpoint_count; i++) {
        probes_[i].stop();
        pool_.close_idle(static_cast<uint8_t>(i));
    }
    bool servers_changed = strcmp(old.agent.dns_servers, cfg.agent.dns_servers) != 0;
    cfg_ = cfg;
    params_ = params_from(cfg_);
    probe_budget_.limit = cfg_.agent.probe_budget_tokens_per_day;  // the day's spend is kept
    log_set_level(cfg_.agent.log_level);
    if (servers_changed) open_resolver();  // cached addresses are kept; lookups in flight are asked again
    resolver_.set_params(resolver_params_from(cfg_));
    log_set_format(cfg_.agent.log_format);
    for (uint32_t i = 0; i < cfg_.endpoint_count; i++) {
        health_init(&health_[i]);
        for (uint32_t j = 0; j < old.endpoint_count; j++)
            if (strcmp(old.endpoints[j].name, cfg_.endpoints[i].name) == 0 &&
                strcmp(old.endpoints[j].url, cfg_.endpoints[i].url) == 0)
                health_[i] = old_health[j];
        runtime_[i].tls.reset();
    }
    setup_endpoints();
    state_.configure(cfg_);
    uint64_t now = pal::now_ms();
    // Metrics are kept by endpoint and model index: when those (or the fallback rules the
    // requested-model label refers to) change, the counters start again (Prometheus reads a
    // reset counter as such), so that no series changes its meaning under its labels.
    if (!same_labels(old, cfg_)) {
        uint64_t active = metrics_.clients_active;
        TelemetryStats telemetry = metrics_.telemetry;
        metrics_ = Metrics();
        metrics_.clients_active = active;
        metrics_.telemetry = telemetry;
        EW_LOG_INFO("reload: endpoints or models changed; metrics start again");
    }
    for (uint32_t i = 0; i < cfg_.endpoint_count; i++) {
        metrics_.seen_state[i] = static_cast<uint8_t>(health_[i].state);
        if (health_[i].state == HealthState::healthy && health_[i].probes_ok + health_[i].probes_failed == 0)
            metrics_.state_since_ms[i] = now;  // a new endpoint
    }
    for (uint32_t i = 0; i < cfg_.endpoint_count; i++) probes_[i].init(&ctx_, static_cast<uint8_t>(i));
    start_probes(now);
    if (telemetry_started_) telemetry_.configure(now);
    EW_LOG_INFO("configuration reloaded endpoints=%u", cfg_.endpoint_count);
    return true;
}

bool Agent::drain() {
    if (!draining_) {
        draining_ = true;
        if (listener_.sock != pal::kNoSocket) {
            loop_.remove(&listener_);
            pal::close(listener_.sock);
            listener_.sock = pal::kNoSocket;
        }
        for (uint32_t i = 0; i < cfg_.endpoint_count; i++) probes_[i].stop();
    }
    for (uint32_t i = 0; i < max_clients_; i++) {
        ClientConn* c = clients_.get(i);
        if (c == nullptr || c->state() == ClientState::unused) continue;
        if (c->state() == ClientState::reading && !c->busy()) {
            c->close_now();  // idle keep-alive connection
            continue;
        }
        return false;
    }
    return true;
}

bool Agent::idle() const {
    for (const ClientConn& c : clients_)
        if (c.state() == ClientState::proxying) return false;
    return true;
}

void Agent::shutdown() {
    state_.flush(ctx_, pal::now_ms());
    for (ClientConn& c : clients_) c.close_now();
    for (uint32_t i = 0; i < cfg_.endpoint_count; i++) probes_[i].stop();
    pool_.close_all();
    telemetry_.stop();  // no DISCONNECT: the broker publishes the offline will
    if (loop_.contains(&telemetry_)) loop_.remove(&telemetry_);
    resolver_.close();
    if (listener_.sock != pal::kNoSocket) {
        loop_.remove(&listener_);
        pal::close(listener_.sock);
        listener_.sock = pal::kNoSocket;
    }
    free(body_storage_);
    body_storage_ = nullptr;
}

}  // namespace ew
