// What an upstream's error answer means, read from its small JSON body: the few codes that
// change what edgeway does beyond the status code's rule. Pure: reads the caller's bytes
// with the bounded scanner (json_scan), no allocation.
//
//   429 + insufficient_quota        the key's quota is spent: a long cooldown for the
//                                   endpoint's key (not a short rate limit)
//   400 + context_length_exceeded   the prompt is too long for that model: try the
//                                   [context_fallback] models
//   404 + model_not_found           this endpoint does not serve that model: mark the
//                                   (endpoint, model) unavailable, try another endpoint
//
// The code is read from the OpenAI shape {"error":{"code":..., "type":...}} (code first,
// then type), or, for a body without an "error" object, from a top-level "code" / "type".
// A status with another code, another shape, a non-string code or a body that is not one
// valid JSON object means nothing here: the status-code rules apply (ErrorMeaning::none).
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace ew {

enum class ErrorMeaning : uint8_t { none, insufficient_quota, context_length_exceeded, model_not_found };
const char* to_string(ErrorMeaning m);  // "none", "insufficient_quota", ...

// The statuses whose body is read before deciding (400, 404, 429).
bool error_body_wanted(uint16_t status);

ErrorMeaning upstream_error_meaning(uint16_t status, const char* body, size_t len);

}  // namespace ew
