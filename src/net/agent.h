// The running agent: configuration, health, metrics, the loop and every fixed table.
// Wires the listener, clients, probes, the upstream pool and the proxy together.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/health.h"
#include "core/metrics.h"
#include "net/client.h"
#include "net/loop.h"
#include "net/probe.h"
#include "net/slots.h"
#include "net/upstream.h"

namespace ew {

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

class Agent {
public:
    // Takes a validated configuration. Resolves names, loads TLS material, allocates the
    // request-body storage once. Returns false with a message on failure.
    bool init(const Config& cfg, char* err, size_t err_cap);
    bool listen(char* err, size_t err_cap);
    void start_probes(uint64_t now_ms);
    void run_once(int max_wait_ms) { loop_.run_once(max_wait_ms); }
    // Applies a new configuration without dropping in-flight requests.
    bool reload(const Config& cfg, char* err, size_t err_cap);
    // Stops accepting; true once no request is in flight.
    bool drain();
    // No proxied request is in flight (a reload may be applied).
    bool idle() const;
    void shutdown();

    // Probe every endpoint once (the --probe-once table); returns when all finished.
    void probe_all_once(uint64_t deadline_ms);

    // Used by the modules it owns.
    Loop& loop() { return loop_; }
    const Config& config() const { return cfg_; }
    Health* health() { return health_; }
    const HealthParams& health_params() const { return params_; }
    Metrics& metrics() { return metrics_; }
    UpstreamPool& pool() { return pool_; }
    EndpointRuntime& runtime(size_t i) { return runtime_[i]; }
    const Probe& probe(size_t i) const { return probes_[i]; }
    uint64_t started_ms() const { return started_ms_; }
    uint32_t random();
    void handle_request(ClientConn* c, uint64_t now_ms);
    void client_closed(ClientConn* c);
    void accept_clients(uint64_t now_ms);
    size_t endpoints_serving(uint64_t now_ms);
    void tick_health(uint64_t now_ms);

private:
    void route_admin(ClientConn* c, uint64_t now_ms);
    bool authorized(const ClientConn* c) const;
    void setup_endpoints();

    Config cfg_;
    HealthParams params_;
    Health health_[EW_CAP_ENDPOINTS];
    Metrics metrics_;
    TlsCaCache ca_cache_;
    EndpointRuntime runtime_[EW_CAP_ENDPOINTS];
    Probe probes_[EW_CAP_ENDPOINTS];
    UpstreamPool pool_;
    Loop loop_;
    Listener listener_;
    Slots<ClientConn, EW_CAP_CLIENTS> clients_;  // constructed on first use
    char* body_storage_ = nullptr;  // max_clients * max_request_bytes, allocated once
    uint32_t max_clients_ = 0;
    uint32_t body_limit_ = 0;
    uint64_t started_ms_ = 0;
    uint64_t rng_state_ = 0;
    bool draining_ = false;
};

}  // namespace ew
