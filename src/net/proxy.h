// One client request on its way upstream: candidates, attempts, failover, commit, relay.
// Before the first byte reaches the client any failure may fail over; after it, nothing
// does, and a broken stream ends with an OpenAI-style error event, never a silent cut.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/json_scan.h"
#include "core/metrics.h"
#include "core/openai.h"
#include "core/router.h"
#include "core/sse.h"
#include "net/loop.h"
#include "net/upstream.h"

namespace ew {

class Agent;
class ClientConn;

enum class ExchangeState : uint8_t { idle, waiting_backoff, attempting, relaying, finished };

class ProxyExchange final : public UpstreamUser, public Pollable {
public:
    // The request has been read whole. Validates it, then runs attempts.
    void start(Agent* agent, ClientConn* client, uint64_t now_ms);
    // The client went away: cancel the upstream attempt and free everything.
    void cancel();
    bool active() const { return state_ != ExchangeState::idle && state_ != ExchangeState::finished; }
    // The client drained output: resume reading the upstream.
    void on_client_drained(uint64_t now_ms);

    // UpstreamUser
    void on_upstream_ready(UpstreamConn* c, uint64_t now_ms) override;
    void on_upstream_head(UpstreamConn* c, uint64_t now_ms) override;
    void on_upstream_body(UpstreamConn* c, const char* data, size_t len) override;
    void on_upstream_done(UpstreamConn* c, uint64_t now_ms) override;
    void on_upstream_error(UpstreamConn* c, ResultKind kind, const char* message, uint64_t now_ms) override;
    size_t upstream_body_room() const override;

    // Pollable: no socket, only the back-off timer and the request deadline.
    pal::Socket poll_socket() const override { return pal::kNoSocket; }
    uint16_t poll_events() const override { return 0; }
    uint64_t deadline_ms() const override;
    void on_ready(uint16_t, uint64_t) override {}
    void on_deadline(uint64_t now_ms) override;

private:
    static constexpr size_t kNoCommit = SIZE_MAX;
    void reject(uint16_t status, const char* message, const char* type, const char* param, uint64_t now_ms,
                const char* code = nullptr);
    void next_attempt(uint64_t now_ms);
    void send_request(uint64_t now_ms);
    void record_outcome(ResultKind kind, uint16_t status, uint64_t now_ms);
    void note_failure(ResultKind kind, uint16_t status, const char* message);
    void commit(uint16_t status, const char* content_type, uint64_t now_ms);
    void fail_committed(const char* message, uint64_t now_ms);
    void answer_unavailable(uint64_t now_ms);
    // The answer is complete in the client's buffer: count it, let go of everything.
    void end(uint64_t now_ms, uint16_t status);
    void finish_metrics(uint16_t status, uint64_t now_ms);
    void detach();
    void health_tick_all(uint64_t now_ms);
    static void on_sse_event(const SseEvent& ev, void* user);
    void add_usage(const OpenAIUsage& u);
    void keep_tail(const char* data, size_t len);
    bool find_tail_usage(OpenAIUsage* u) const;
    void extra_headers(char* buf, size_t cap, bool served) const;

    Agent* agent_ = nullptr;
    ClientConn* client_ = nullptr;
    ExchangeState state_ = ExchangeState::idle;
    Candidate cands_[EW_ROUTER_CANDIDATES_CAP];
    size_t cand_count_ = 0;
    size_t cand_next_ = 0;
    uint32_t attempts_ = 0;
    uint32_t retries_same_ = 0;
    UpstreamConn* conn_ = nullptr;
    Candidate cur_ = {255, 255, nullptr};
    bool stream_ = false;
    bool committed_ = false;
    bool saw_done_ = false;
    bool fallback_used_ = false;
    bool stale_retry_ = false;
    bool early_end_ = false;
    bool failover_pending_ = false;  // the last attempt failed; counted if another follows
    FailoverReason failover_reason_ = FailoverReason::connect;
    uint16_t commit_status_ = 0;
    JsonSpan model_span_ = {};
    char requested_model_[EW_CAP_MODEL_NAME] = "";
    char model_json_[2 * EW_CAP_MODEL_NAME + 8] = "";
    BodySegments body_ = {};
    uint64_t started_ms_ = 0;
    uint64_t deadline_ms_ = 0;
    uint64_t attempt_started_ms_ = 0;
    uint64_t backoff_until_ms_ = 0;
    uint64_t head_ms_ = 0;
    uint16_t last_status_ = 0;
    ResultKind last_kind_ = ResultKind::ok;
    char last_error_[EW_CAP_ERROR_TEXT] = "";
    SseParser sse_;
    size_t commit_offset_ = kNoCommit;
    SseEvent first_event_;
    uint64_t prompt_tokens_ = 0;
    uint64_t completion_tokens_ = 0;
    char tail_[512];
    size_t tail_len_ = 0;
};

}  // namespace ew
