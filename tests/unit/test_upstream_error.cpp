// Upstream error bodies read for their meaning (core/upstream_error.h), what health does
// with the meaning, and how the router leaves an exhausted key or a missing model out.
#include "ew_catch.h"

#include <string.h>
#include <string>

#include "core/health.h"
#include "core/router.h"
#include "core/upstream_error.h"

using namespace ew;

namespace {

ErrorMeaning meaning(uint16_t status, const std::string& body) {
    return upstream_error_meaning(status, body.data(), body.size());
}

}  // namespace

TEST_CASE("upstream errors: the OpenAI shape, code first, then type", "[upstream_error]") {
    CHECK(meaning(429, R"({"error":{"message":"You exceeded your current quota","type":"insufficient_quota",)"
                       R"("param":null,"code":"insufficient_quota"}})") == ErrorMeaning::insufficient_quota);
    CHECK(meaning(400, R"({"error":{"message":"maximum context length is 8192 tokens","type":"invalid_request_error",)"
                       R"("param":"messages","code":"context_length_exceeded"}})") ==
          ErrorMeaning::context_length_exceeded);
    CHECK(meaning(404, R"({"error":{"message":"The model `x` does not exist","type":"invalid_request_error",)"
                       R"("param":null,"code":"model_not_found"}})") == ErrorMeaning::model_not_found);
    // Only the type, or an escaped spelling of the code, or members in another order.
    CHECK(meaning(429, R"({"error":{"type":"insufficient_quota"}})") == ErrorMeaning::insufficient_quota);
    CHECK(meaning(404, R"({"error":{"code":"model_not_f\u006fund"}})") == ErrorMeaning::model_not_found);
    CHECK(meaning(400, " {\"error\" : {\"param\":null, \"code\" : \"context_length_exceeded\"}} \n") ==
          ErrorMeaning::context_length_exceeded);
    // Without an "error" object: a top-level code (some compatible servers).
    CHECK(meaning(404, R"({"code":"model_not_found","message":"no such model"})") == ErrorMeaning::model_not_found);
}

TEST_CASE("upstream errors: anything else means nothing (the status rules apply)", "[upstream_error]") {
    // A code that does not go with the status.
    CHECK(meaning(400, R"({"error":{"code":"insufficient_quota"}})") == ErrorMeaning::none);
    CHECK(meaning(429, R"({"error":{"code":"model_not_found"}})") == ErrorMeaning::none);
    CHECK(meaning(500, R"({"error":{"code":"insufficient_quota"}})") == ErrorMeaning::none);
    // A string code that says something else wins over a matching type.
    CHECK(meaning(429, R"({"error":{"code":"rate_limit_exceeded","type":"insufficient_quota"}})") == ErrorMeaning::none);
    // Shapes: a number code, an error string, an array, not JSON, truncated, empty.
    CHECK(meaning(404, R"({"object":"error","type":"NotFoundError","code":404})") == ErrorMeaning::none);
    CHECK(meaning(400, R"({"error":"context_length_exceeded"})") == ErrorMeaning::none);
    CHECK(meaning(404, R"(["model_not_found"])") == ErrorMeaning::none);
    CHECK(meaning(404, "model_not_found") == ErrorMeaning::none);
    CHECK(meaning(429, R"({"error":{"code":"insufficient_quota")") == ErrorMeaning::none);
    CHECK(meaning(429, "") == ErrorMeaning::none);
    CHECK(upstream_error_meaning(429, nullptr, 0) == ErrorMeaning::none);
    // A prefix is not the code.
    CHECK(meaning(429, R"({"error":{"code":"insufficient_quota_soon"}})") == ErrorMeaning::none);
    CHECK(error_body_wanted(400));
    CHECK(error_body_wanted(404));
    CHECK(error_body_wanted(429));
    CHECK_FALSE(error_body_wanted(401));
    CHECK_FALSE(error_body_wanted(503));
    CHECK(std::string(to_string(ErrorMeaning::context_length_exceeded)) == "context_length_exceeded");
}

TEST_CASE("health: insufficient_quota exhausts the key for key_exhausted_ms; a good probe does not end it",
          "[upstream_error]") {
    HealthParams p;
    Health h;
    const uint64_t t0 = 1000000;
    Observation o;
    o.kind = ResultKind::http_status;
    o.http_status = 429;
    o.meaning = ErrorMeaning::insufficient_quota;
    o.has_retry_after = true;
    o.retry_after_ms = 1000;
    CHECK(health_observe(&h, p, o, t0) == ObservationEffect::key_exhausted);
    CHECK(h.key_exhausted_until_ms == t0 + EW_KEY_EXHAUSTED_MS);
    CHECK(h.rate_limited_until_ms == 0);
    CHECK(h.consecutive_failures == 0);
    CHECK_FALSE(health_can_serve(h, -1, t0 + 1000));
    CHECK(health_serve_after_ms(h, 0, t0) == t0 + EW_KEY_EXHAUSTED_MS);
    // A /models probe answers 200 with a spent quota: the key stays exhausted.
    Observation probe;
    probe.kind = ResultKind::ok;
    probe.http_status = 200;
    probe.from_probe = true;
    health_observe(&h, p, probe, t0 + 2000);
    health_tick(&h, p, t0 + 2000);
    CHECK_FALSE(health_can_serve(h, 0, t0 + 2000));
    health_tick(&h, p, t0 + EW_KEY_EXHAUSTED_MS);
    CHECK(health_can_serve(h, 0, t0 + EW_KEY_EXHAUSTED_MS));
}

TEST_CASE("health and router: model_not_found leaves that (endpoint, model) out for model_unavailable_ms",
          "[upstream_error]") {
    HealthParams p;
    Health h[2];
    const uint64_t t0 = 1000000;
    Observation o;
    o.kind = ResultKind::http_status;
    o.http_status = 404;
    o.meaning = ErrorMeaning::model_not_found;
    o.model_index = 1;
    CHECK(health_observe(&h[0], p, o, t0) == ObservationEffect::model_unavailable);
    CHECK(h[0].model_unavailable_until_ms[1] == t0 + EW_MODEL_UNAVAILABLE_MS);
    CHECK(health_can_serve(h[0], 0, t0));   // its other model is served
    CHECK_FALSE(health_can_serve(h[0], 1, t0));
    CHECK(h[0].state == HealthState::healthy);

    Config cfg;
    cfg.endpoint_count = 2;
    strcpy(cfg.endpoints[0].name, "a");
    strcpy(cfg.endpoints[0].models[0], "m0");
    strcpy(cfg.endpoints[0].models[1], "m1");
    cfg.endpoints[0].model_count = 2;
    cfg.endpoints[0].priority = 10;
    strcpy(cfg.endpoints[1].name, "b");
    strcpy(cfg.endpoints[1].models[0], "m1");
    cfg.endpoints[1].model_count = 1;
    Candidate c[8];
    size_t n = router_candidates(cfg, h, "m1", t0, c, 8);
    REQUIRE(n == 1);
    CHECK(c[0].endpoint == 1);
    // Not by panic routing either, even with b DOWN.
    h[1].state = HealthState::down;
    h[1].down_until_ms = t0 + 60000;
    n = router_candidates(cfg, h, "m1", t0, c, 8);
    REQUIRE(n == 1);
    CHECK(c[0].endpoint == 1);
    CHECK(c[0].panic);

    // [context_fallback] models as an explicit list, without their [fallback] chains.
    h[1] = Health{};
    const char* models[] = {"m1"};
    n = router_candidates_among(cfg, h, models, 1, t0 + EW_MODEL_UNAVAILABLE_MS, c, 8);
    REQUIRE(n == 2);
    CHECK(c[0].endpoint == 0);
    CHECK(c[1].endpoint == 1);
    strcpy(cfg.context_fallback[0].model, "m0");
    strcpy(cfg.context_fallback[0].next[0], "m1");
    cfg.context_fallback[0].next_count = 1;
    cfg.context_fallback_count = 1;
    REQUIRE(router_context_rule(cfg, "m0") != nullptr);
    CHECK(router_context_rule(cfg, "m1") == nullptr);
}
