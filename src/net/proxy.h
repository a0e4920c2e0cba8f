// One client request on its way upstream: candidates, attempts, failover, commit, relay.
// Before the first byte reaches the client any failure may fail over; after it, nothing
// does, and an answer that does not end properly ends with an OpenAI-style error event and
// an unfinished body, never a clean end.
//
// The exchange is a state machine with one printable state (ExchangeState). It gets what it
// uses passed in (NetContext, RequestView, ClientWriter) and hears of failures one way: as
// an event from its upstream connection, or a return value of open()/send(). After a failed
// attempt the next one starts from the loop (a zero back-off), never by recursion.
//
// Each attempt is a ProxyAttempt (its connection, candidate, state, SSE parser, start time).
// An exchange holds two: one is in flight normally; with hedge_after_ms set, a second one
// (the hedge, on the next candidate) may start beside an attempt that has produced no first
// data event (streaming) or no response head (JSON) in time. The first to commit wins; the
// other is closed at once, unread. Before commit, one attempt at a time stages its first
// bytes in the client's buffer (the stager); the other's reads wait (proxy_hedge.cpp).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/json_scan.h"
#include "core/metrics.h"
#include "core/multipart.h"
#include "core/openai.h"
#include "core/router.h"
#include "core/sse.h"
#include "core/upstream_error.h"
#include "net/client_writer.h"
#include "net/context.h"
#include "net/error_answer.h"
#include "net/loop.h"
#include "net/upstream.h"

namespace ew {

enum class ExchangeState : uint8_t {
    idle,                  // no request
    backoff,               // waiting to start the next attempt (a zero wait: the next loop turn)
    connecting,            // opening a connection (TCP, TLS)
    awaiting_head,         // request sent; waiting for the final response head
    awaiting_body,         // a JSON 2xx head: waiting for the first body bytes (must be JSON)
    awaiting_first_event,  // an SSE head: waiting for the first data event
    awaiting_error_body,   // a 400/404/429 JSON head: reading its small body for its meaning
    hedged,                // two attempts in flight (each in one of the states above)
    committed,             // the answer's head went to the client; relaying
    done,                  // answered; the client connection carries on
};
const char* to_string(ExchangeState s);

// What the exchange decided about one attempt's failure.
struct AttemptFailure {
    ResultKind kind = ResultKind::bad_response;
    uint16_t status = 0;
    const char* message = "";
    FailoverReason reason = FailoverReason::bad_response;
    ErrorMeaning meaning = ErrorMeaning::none;  // what its error body said
};

class ProxyExchange;

enum class AttemptRole : uint8_t {
    single,   // no hedge beside it
    primary,  // a hedge was started beside it
    hedge,    // the hedge
};

// One attempt on one candidate, and the upstream user its connection reports to.
struct ProxyAttempt final : public UpstreamUser {
    ProxyExchange* ex = nullptr;
    uint8_t slot = 0;
    UpstreamConn* conn = nullptr;
    Candidate cand = {255, 255, nullptr, false};
    // idle: the slot is free; else connecting .. awaiting_error_body, or committed (the winner).
    ExchangeState state = ExchangeState::idle;
    AttemptRole role = AttemptRole::single;
    // A trial of a DOWN endpoint (health_trial_begin): reported with Observation::trial, or
    // abandoned. Only a single or primary attempt can be one: a hedge never goes to a
    // candidate that cannot serve (hedge_target).
    bool trial = false;
    bool sse_first = false;          // the first data event arrived (set by on_sse_event)
    bool sse_early_end = false;      // [DONE] or an error event before any data event
    bool retry_after_known = false;  // this attempt's Retry-After (429)
    uint64_t retry_after_ms = 0;
    uint64_t started_ms = 0;
    uint64_t head_ms = 0;
    SseParser sse;
    char model_json[2 * EW_CAP_MODEL_NAME + 8] = "";  // the body's model literal: stays valid while sent
    bool live() const { return state != ExchangeState::idle; }

    // UpstreamUser: to the exchange, naming this attempt.
    void on_upstream_ready(UpstreamConn* c, uint64_t now_ms) override;
    void on_upstream_head(UpstreamConn* c, uint64_t now_ms) override;
    void on_upstream_body(UpstreamConn* c, const char* data, size_t len, uint64_t now_ms) override;
    void on_upstream_done(UpstreamConn* c, uint64_t now_ms) override;
    void on_upstream_error(UpstreamConn* c, ResultKind kind, const char* message, uint64_t now_ms) override;
    size_t upstream_body_room() const override;
};

class ProxyExchange final : public TimerPollable {
public:
    // The request has been read whole. Validates it, then runs attempts.
    void start(const NetContext* ctx, ClientWriter* out, const RequestView& req, uint64_t now_ms);
    // The client went away: cancel the upstream attempt and free everything.
    void cancel(uint64_t now_ms);
    ExchangeState state() const { return state_; }
    bool active() const { return state_ != ExchangeState::idle && state_ != ExchangeState::done; }
    uint32_t attempts() const { return attempts_; }
    // The request's id: the client's X-Request-Id when valid, else one made here.
    const char* request_id() const { return request_id_; }
    // The client drained its output: upstream silence is measured again from now.
    void on_client_drained(uint64_t now_ms);

    // Pollable: no socket, only the back-off timer, the hedge timer and the request deadline.
    uint64_t deadline_ms() const override;
    void on_deadline(uint64_t now_ms) override;

private:
    friend struct ProxyAttempt;
    // ---- upstream events of one attempt (proxy.cpp, proxy_relay.cpp)
    void on_upstream_ready(ProxyAttempt& a, uint64_t now_ms);
    void on_upstream_head(ProxyAttempt& a, UpstreamConn* c, uint64_t now_ms);
    void on_upstream_body(ProxyAttempt& a, const char* data, size_t len, uint64_t now_ms);
    void on_upstream_done(ProxyAttempt& a, UpstreamConn* c, uint64_t now_ms);
    void on_upstream_error(ProxyAttempt& a, UpstreamConn* c, ResultKind kind, const char* message, uint64_t now_ms);
    size_t upstream_body_room(const ProxyAttempt& a) const;
    // ---- validation and attempts (proxy.cpp)
    bool validate(uint64_t now_ms);
    bool one_model(int count, const char* what, uint64_t now_ms);
    bool validate_multipart(uint64_t now_ms);
    bool accept_model(const char* name, size_t len, uint64_t now_ms);
    void next_attempt(uint64_t now_ms);
    ResultKind open_attempt(ProxyAttempt& a, uint64_t now_ms, bool fresh_only, char* err, size_t cap);
    ResultKind send_request(ProxyAttempt& a, uint64_t now_ms, char* err, size_t cap);
    bool retry_fresh(ProxyAttempt& a, uint64_t now_ms, char* err, size_t cap);
    void attempt_failed(ProxyAttempt& a, const AttemptFailure& f, uint64_t now_ms);
    void record(ProxyAttempt& a, const AttemptFailure& f, uint64_t now_ms);
    void record_success(ProxyAttempt& a, uint16_t status, uint64_t now_ms);
    void drop_connection(ProxyAttempt& a);
    void drop_all();
    void abandon_trial(ProxyAttempt& a);  // a's trial ends with no outcome (client left, hedge lost): its slot is freed
    void schedule(uint64_t at_ms);
    // ---- the attempts' slots and the hedge (proxy_hedge.cpp)
    ProxyAttempt* free_slot();
    ProxyAttempt& other(const ProxyAttempt& a) { return att_[a.slot ^ 1]; }
    const ProxyAttempt& other(const ProxyAttempt& a) const { return att_[a.slot ^ 1]; }
    ProxyAttempt& won() { return att_[won_]; }
    const ProxyAttempt& won() const { return att_[won_]; }
    void set_state(ProxyAttempt& a, ExchangeState s);
    void settle();
    void arm_hedge(const ProxyAttempt& a, uint64_t now_ms);
    void start_hedge(uint64_t now_ms);
    bool hedge_target(const Candidate& c, uint64_t now_ms) const;
    void cancel_loser(ProxyAttempt& loser, const char* why, uint64_t now_ms);
    void hedge_committed(ProxyAttempt& a, uint64_t now_ms);
    bool stage_first(ProxyAttempt& a, const char* data, size_t len);
    void release_staging(ProxyAttempt& a, bool droppable);
    bool take_staging(ProxyAttempt& a, const char* data, size_t len, uint64_t now_ms);
    void close_attempts();
    // ---- answers edgeway makes (proxy.cpp)
    void answer_error(uint16_t status, const char* message, const char* type, const char* param, const char* code,
                      const char* more_headers, uint64_t now_ms);
    void answer_unavailable(uint64_t now_ms);
    void untried_cause(uint64_t now_ms, bool* all_limited, bool* all_keys, bool* all_quota) const;
    void edgeway_headers(StrBuf* h, bool served) const;
    void end(AnswerEnd how, uint16_t status, uint64_t now_ms);
    void finish_metrics(AnswerEnd how, uint16_t status, uint64_t now_ms);
    void log_access(uint16_t status, bool broken, uint64_t now_ms) const;
    void take_request_id();
    // ---- commit and relay (proxy_relay.cpp)
    bool check_head(const ResponseParser& r, AttemptFailure* f, char* msg, size_t cap) const;
    bool commit(ProxyAttempt& a, uint16_t status, const char* content_type, uint64_t now_ms);
    void relay(const char* data, size_t len, uint64_t now_ms);
    void feed_first_event(ProxyAttempt& a, const char* data, size_t len, uint64_t now_ms);
    void feed_first_json(ProxyAttempt& a, const char* data, size_t len, uint64_t now_ms);
    void fail_committed(const char* message, uint64_t now_ms);
    static void on_sse_event(const SseEvent& ev, void* user);
    void keep_tail(const char* data, size_t len);
    bool find_tail_usage(OpenAIUsage* u) const;
    uint32_t inactivity_ms() const;
    // ---- error bodies read for their meaning (proxy_error.cpp)
    bool begin_error_body(ProxyAttempt& a, const ResponseParser& r, uint64_t now_ms);
    void feed_error_body(ProxyAttempt& a, const char* data, size_t len, uint64_t now_ms);
    void finish_error_body(ProxyAttempt& a, UpstreamConn* c, uint64_t now_ms);
    void error_body_broken(ProxyAttempt& a, ResultKind kind, const char* message, uint64_t now_ms);
    void context_failover(ProxyAttempt& a, uint64_t now_ms);
    void hold_answer();
    bool relay_held(uint64_t now_ms);
    void relay_error_answer(const ErrorAnswer& a, uint64_t now_ms);
    size_t route_candidates(uint64_t now_ms);

    const NetContext* ctx_ = nullptr;
    ClientWriter* out_ = nullptr;
    RequestView req_;
    ExchangeState state_ = ExchangeState::idle;
    Candidate cands_[EW_ROUTER_CANDIDATES_CAP];
    size_t cand_count_ = 0;
    size_t cand_next_ = 0;
    uint32_t attempts_ = 0;
    uint32_t rounds_ = 0;            // passes over the candidate list (back-off index)
    ProxyAttempt att_[2];            // the attempts in flight (two while hedged)
    uint8_t won_ = 0;                // the slot that committed (valid once committed)
    int8_t stager_ = -1;             // the slot whose first bytes are staged in the client buffer
    // The candidate the answer names: the last attempt started or failed, the winner once committed.
    Candidate cur_ = {255, 255, nullptr, false};
    uint64_t hedge_at_ms_ = 0;       // when the attempt in flight is hedged (0 = not armed)
    bool hedge_used_ = false;        // one hedge per request
    bool paired_ = false;            // two attempts in flight (counted in HedgeStats::in_flight)
    bool loser_sent_ = false;        // a cancelled loser had its request sent (its prompt was billed)
    bool stream_ = false;
    // What the request and its answer are (set by validate from the path):
    bool multipart_ = false;     // audio in: multipart/form-data, the "model" field rewritten
    bool raw_ = false;           // a 2xx relayed as bytes from its head (audio out, transcript text)
    bool speech_ = false;        // /v1/audio/speech: audio/* answers
    bool responses_api_ = false; // /v1/responses: its own stream end and error event
    MultipartSpan mp_model_ = {};
    bool fresh_retry_ = false;       // the next attempt re-tries cur_ on a fresh connection
    bool fresh_retry_used_ = false;  // once per request
    bool fallback_used_ = false;
    bool failover_pending_ = false;  // the last attempt failed; counted as a failover if another follows
    bool saw_done_ = false;
    bool bodiless_ = false;          // a 204/304: relayed without body framing
    FailoverReason failover_reason_ = FailoverReason::connect;
    uint8_t failover_from_ = kNoEndpoint;  // the endpoint of the failed attempt behind failover_pending_
    bool failed_over_ = false;            // another candidate was tried after a failure
    bool fresh_trial_ = false;            // the trial flag of an attempt re-tried on a fresh connection from the loop
    bool in_flight_ = false;              // counted in Metrics::in_flight
    uint16_t requested_ref_ = kNoModelRef;
    uint64_t ttft_ms_ = UINT64_MAX;       // streaming: start to the first data event relayed
    char request_id_[EW_CAP_REQUEST_ID] = "";
    uint32_t fail_rate_limited_ = 0;  // attempts that failed on 429
    uint32_t fail_key_bad_ = 0;       // on 401/403
    uint32_t fail_other_ = 0;
    uint32_t fail_quota_ = 0;         // on 429 insufficient_quota
    // Error answers (proxy_error.cpp): err_[reading_] takes the one being read; with held_,
    // the other slot keeps the answer the client gets if nothing else serves.
    // One attempt at a time reads into err_[reading_] (err_owner_, like stager_ for the
    // client buffer).
    ErrorAnswer err_[2];
    uint8_t reading_ = 0;
    int8_t err_owner_ = -1;
    bool held_ = false;
    // After a context_length_exceeded: the [context_fallback] models the request moved to
    // (candidates come from these instead of the requested model's chain), and the models
    // that said the context was too long.
    const char* context_models_[EW_CAP_FALLBACK_CHAIN] = {};
    size_t context_n_ = 0;
    const char* context_tried_[EW_ROUTER_CHAIN_CAP] = {};
    size_t context_tried_n_ = 0;
    uint16_t commit_status_ = 0;
    JsonSpan model_span_ = {};
    char requested_model_[EW_CAP_MODEL_NAME] = "";
    BodySegments body_ = {};
    uint64_t started_ms_ = 0;
    uint64_t deadline_ms_ = 0;
    uint64_t attempt_started_ms_ = 0;  // of the winner, once committed
    uint64_t wake_ms_ = 0;
    uint64_t head_ms_ = 0;
    char last_error_[EW_CAP_ERROR_TEXT] = "";
    uint64_t prompt_tokens_ = 0;
    uint64_t completion_tokens_ = 0;
    char tail_[512];
    size_t tail_len_ = 0;
};

}  // namespace ew
