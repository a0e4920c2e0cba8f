// An upstream's error answer (400, 404, 429 with a JSON body) read whole before the exchange
// decides what it means (core/upstream_error.h): its status, content type, relayed headers
// and body, in fixed buffers. When the meaning moves the request elsewhere, the answer is
// kept: if nothing else serves, the client gets it as the upstream sent it.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/caps.h"
#include "core/router.h"
#include "net/http.h"

namespace ew {

struct ErrorAnswer {
    uint16_t status = 0;
    Candidate from = {255, 255, nullptr, false};  // the attempt that got it
    char content_type[EW_CAP_NAME * 4];           // printable, as relayed
    char passthrough[EW_CAP_PASSTHROUGH];          // the upstream headers relayed ("Name: value\r\n"...)
    size_t passthrough_len = 0;
    char body[EW_CAP_ERROR_BODY];
    size_t len = 0;

    // Starts reading the answer whose head `r` is. False (nothing kept) when its body is
    // not declared JSON: such an answer is handled by the status-code rules as it comes.
    bool begin(const ResponseParser& r, const Candidate& attempt);
    // Appends body bytes; false (nothing appended) when they would pass EW_CAP_ERROR_BODY.
    bool append(const char* data, size_t n);
};

}  // namespace ew
