// One endpoint's periodic probe: a small state machine on the loop. Its timer fires at
// the (jittered) interval, or down_interval while the endpoint is DOWN; the exchange runs
// on an UpstreamConn of its own (a fresh connection: a probe checks connect and TLS too).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/health.h"
#include "net/context.h"
#include "net/loop.h"
#include "net/upstream.h"

namespace ew {

class Probe final : public UpstreamUser, public TimerPollable {
public:
    void init(const NetContext* ctx, uint8_t endpoint);
    void schedule(uint64_t at_ms) { next_ms_ = at_ms; }
    void start(uint64_t now_ms);
    void stop();
    bool running() const { return conn_ != nullptr; }
    uint64_t runs() const { return runs_; }
    const Outcome& last() const { return last_; }
    const char* last_error() const { return last_error_; }

    // UpstreamUser
    void on_upstream_ready(UpstreamConn* c, uint64_t now_ms) override;
    void on_upstream_head(UpstreamConn* c, uint64_t now_ms) override;
    void on_upstream_body(UpstreamConn* c, const char* data, size_t len, uint64_t now_ms) override;
    void on_upstream_done(UpstreamConn* c, uint64_t now_ms) override;
    void on_upstream_error(UpstreamConn* c, ResultKind kind, const char* message, uint64_t now_ms) override;

    // Pollable: a timer only.
    uint64_t deadline_ms() const override { return conn_ ? 0 : due_ms(); }
    void on_deadline(uint64_t now_ms) override { start(now_ms); }

private:
    void finish(const Observation& o, uint64_t now_ms);
    void finish(ResultKind kind, uint16_t status, const char* error, uint64_t now_ms);
    void schedule_next(uint64_t now_ms);
    bool plan_run(uint64_t now_ms);  // false: skipped this time (probe_plan), next one scheduled
    // next_ms_, or one down interval after an ejection that live traffic caused since this
    // probe last ran, when that is sooner (a healthy endpoint's next probe may be 30 s away).
    uint64_t due_ms() const;
    void log_result(const Observation& o, HealthState before, uint64_t now_ms);
    static constexpr uint64_t kRepeatLogMs = 60000;

    const NetContext* ctx_ = nullptr;
    uint8_t endpoint_ = 0;
    UpstreamConn* conn_ = nullptr;
    uint64_t next_ms_ = 0;
    uint64_t started_ms_ = 0;
    uint64_t ticket_wait_until_ms_ = 0;  // a TLS 1.3 ticket may still arrive until then
    static constexpr uint64_t kTicketWaitStepMs = 20;
    uint64_t runs_ = 0;
    uint64_t body_bytes_ = 0;
    char body_head_[16] = "";  // first bytes of the body: must look like JSON
    size_t body_head_len_ = 0;
    ProbeKind kind_ = ProbeKind::models;  // this run's kind: [probe] kind, or models when the token budget is spent
    char body_[EW_CAP_PROBE_BODY] = "";   // a chat probe's answer, for its usage
    size_t body_len_ = 0;
    bool body_whole_ = true;
    char request_body_[256] = "";
    Outcome last_;
    char last_error_[EW_CAP_ERROR_TEXT] = "";
    char logged_error_[EW_CAP_ERROR_TEXT] = "";  // the failure last logged at info
    uint64_t logged_ms_ = 0;
    uint32_t quiet_failures_ = 0;                // failures since the last line at info
};

}  // namespace ew
