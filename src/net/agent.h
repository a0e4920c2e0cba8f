// The running agent: configuration, health, metrics, the loop and every fixed table.
// Wires the listener, clients, probes, the upstream pool and the proxy together.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/health.h"
#include "core/metrics.h"
#include "core/probe_budget.h"
#include "core/rng.h"
#include "net/admin.h"
#include "net/client.h"
#include "net/context.h"
#include "net/loop.h"
#include "net/probe.h"
#include "net/resolver.h"
#include "net/slots.h"
#include "net/state_store.h"
#include "net/telemetry.h"
#include "net/upstream.h"

namespace ew {

class Agent;

class Listener final : public Pollable {
public:
    Agent* agent = nullptr;
    pal::Socket sock = pal::kNoSocket;
    pal::Socket poll_socket() const override { return sock; }
    uint16_t poll_events() const override { return pal::kIn; }
    uint64_t deadline_ms() const override { return 0; }
    void on_ready(uint16_t revents, uint64_t now_ms) override;
    void on_deadline(uint64_t) override {}
};

class Agent final : public ClientHost {
public:
    // Takes a validated configuration. Starts resolving names (in the background, on the
    // loop), loads TLS material, allocates the request-body storage once. Returns false with a message on failure.
    bool init(const Config& cfg, char* err, size_t err_cap);
    bool listen(char* err, size_t err_cap);
    void start_probes(uint64_t now_ms);
    // Reads [agent] state_file into the health table (run mode; --probe-once leaves the
    // file alone). From then on the state is written as state_store.h says.
    void restore_state();
    // Fleet telemetry ([telemetry]; nothing when the section is absent), from the running agent only.
    void start_telemetry(uint64_t now_ms);
    // One loop turn, then endpoint state changes that time made are noted (logged).
    void run_once(int max_wait_ms);
    // Applies a new configuration without dropping in-flight requests.
    bool reload(const Config& cfg, char* err, size_t err_cap);
    // Stops accepting; true once no request is in flight.
    bool drain();
    // No proxied request is in flight (a reload may be applied).
    bool idle() const;
    void shutdown();

    // Probe every endpoint once (the --probe-once table); returns when all finished.
    void probe_all_once(uint64_t deadline_ms);

    const Probe& probe(size_t i) const { return probes_[i]; }
    const Health& health(size_t i) const { return health_[i]; }
    void accept_clients(uint64_t now_ms);

    // ClientHost
    void on_request(ClientConn* c, uint64_t now_ms) override { api_.serve(c, now_ms); }
    void on_client_closed(ClientConn* c) override;

private:
    static bool same_labels(const Config& a, const Config& b);
    void setup_endpoints();
    void open_resolver();
    static void on_name_change(void* self, uint8_t endpoint);
    ClientConn* free_client_slot(uint32_t* index);
    void wire_context();

    Config cfg_;
    HealthParams params_;
    ProbeBudget probe_budget_;  // chat probes' tokens per 24 h ([agent] probe_budget_tokens_per_day)
    Health health_[EW_CAP_ENDPOINTS];
    Metrics metrics_;
    TlsCaCache ca_cache_;
    Resolver resolver_;
    Telemetry telemetry_;
    bool telemetry_started_ = false;
    EndpointRuntime runtime_[EW_CAP_ENDPOINTS];
    Probe probes_[EW_CAP_ENDPOINTS];
    UpstreamPool pool_;
    Loop loop_;
    Rng rng_;
    NetContext ctx_;
    LocalApi api_;
    StateStore state_;
    Listener listener_;
    Slots<ClientConn, EW_CAP_CLIENTS> clients_;  // constructed on first use
    char* body_storage_ = nullptr;  // max_clients * max_request_bytes, allocated once
    uint32_t max_clients_ = 0;
    uint32_t body_limit_ = 0;
    uint64_t started_ms_ = 0;
    bool draining_ = false;
};

}  // namespace ew
