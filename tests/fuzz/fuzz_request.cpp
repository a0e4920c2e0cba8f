// libFuzzer: the local request parser (llhttp, size limits) as a client connection drives
// it: bytes in arbitrary splits, pipelined messages, reset between requests.
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/http.h"

namespace {
char g_body[4096];
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    size_t step = 1 + data[0] % 64;  // split size chosen by the input
    const char* p = reinterpret_cast<const char*>(data + 1);
    size_t n = size - 1;
    ew::RequestParser req;
    req.init(g_body, sizeof g_body);
    size_t off = 0;
    int messages = 0;
    while (off < n && messages < 64) {
        size_t len = n - off < step ? n - off : step;
        size_t used = 0;
        ew::HttpParse r = req.feed(p + off, len, &used);
        if (used > len) abort();
        if (req.body_len > sizeof g_body) abort();
        if (strlen(req.path) != req.path_len) abort();
        off += used;
        if (r == ew::HttpParse::complete) {
            messages++;
            req.reset();
            continue;
        }
        if (r != ew::HttpParse::need_more) break;  // error answered, connection closed
        if (used == 0 && len > 0) abort();           // need_more must consume everything
    }
    return 0;
}
