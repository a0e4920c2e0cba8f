// Reading an upstream error answer into fixed buffers. See error_answer.h.
#include "net/error_answer.h"

#include <string.h>

#include "core/strbuf.h"

namespace ew {
namespace {

bool has_json(const HeaderValue& h) {
    if (!h.present) return false;
    for (size_t i = 0; i + 4 <= h.len; i++) {
        size_t k = 0;
        while (k < 4 && (h.text[i + k] | 0x20) == "json"[k]) k++;
        if (k == 4) return true;
    }
    return false;
}

}  // namespace

bool ErrorAnswer::begin(const ResponseParser& r, const Candidate& attempt) {
    if (!has_json(r.content_type) || r.content_type.truncated) return false;
    // A relayed header value: printable ASCII only, as the relay does.
    size_t n = 0;
    for (size_t i = 0; i < r.content_type.len && n + 1 < sizeof content_type; i++) {
        char c = r.content_type.text[i];
        if (c < 0x20 || c > 0x7e) return false;
        content_type[n++] = c;
    }
    content_type[n] = '\0';
    status = r.status;
    from = attempt;
    passthrough_len = r.passthrough.len < sizeof passthrough ? r.passthrough.len : sizeof passthrough - 1;
    memcpy(passthrough, r.passthrough.text, passthrough_len);
    passthrough[passthrough_len] = '\0';
    len = 0;
    return true;
}

bool ErrorAnswer::append(const char* data, size_t n) {
    if (n > sizeof body - len) return false;
    memcpy(body + len, data, n);
    len += n;
    return true;
}

}  // namespace ew
