// Checks of client values that reach a response or upstream head: the requested model name
// (echoed in x-edgeway-model, written into the upstream body) and the request path (appended
// to an endpoint's base path). Hostile until these say otherwise; nothing is repaired or
// truncated here, a bad value is refused (the exchange answers 400).
// Pure: no allocation, no OS.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "core/caps.h"

namespace ew {

enum class ModelNameCheck : uint8_t { ok, empty, too_long, bad_byte };

// A model name may be put in a header: 1 .. EW_CAP_MODEL_NAME - 1 bytes, each printable
// ASCII 0x20..0x7E (no CR, LF, TAB or other control byte, no DEL, no non-ASCII byte).
// `s` need not be terminated; a NUL inside the n bytes is a bad byte.
ModelNameCheck model_name_check(const char* s, size_t n);
const char* to_string(ModelNameCheck c);  // "ok", "empty", "too_long", "bad_byte"

// A path that may be forwarded upstream: "/v1/" then one or more non-empty segments, and
// optionally "?" and a query. Refused (false, *why = a short reason, if why is non-null):
//   - anything not starting with "/v1/";
//   - an empty segment ("//", a trailing "/");
//   - a dot-segment "." or "..", also percent-encoded (%2e / %2E, in any mix with '.');
//   - a backslash, plain or %5c / %5C; an encoded slash %2f / %2F;
//   - a control byte, DEL or non-ASCII byte, plain, or %00 / %0d / %0a (any case);
//   - a '%' not followed by two hex digits; a space; '#';
//   - in the query: anything but printable ASCII without spaces, a '#', a bad or a
//     control-byte percent escape.
// `path` need not be terminated.
bool upstream_path_check(const char* path, size_t n, const char** why);

}  // namespace ew
