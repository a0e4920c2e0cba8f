// libFuzzer: the upstream response path as the proxy runs it: llhttp response parsing
// (chunked, content-length, read-until-close), the body into the SSE splitter, and each
// event's data through the OpenAI readers (error detection, usage).
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/openai.h"
#include "core/sse.h"
#include "net/http.h"

namespace {

struct Relay final : ew::ResponseSink {
    ew::SseParser sse;
    uint64_t body_bytes = 0;
    uint32_t events = 0;
    bool sse_failed = false;
    void on_response_head() override {}
    void on_response_body(const char* data, size_t len) override {
        body_bytes += len;
        if (!sse_failed && ew::sse_feed(&sse, data, len, on_event, this) != ew::SseStatus::ok) sse_failed = true;
    }
    static void on_event(const ew::SseEvent& ev, void* user) {
        Relay* self = static_cast<Relay*>(user);
        self->events++;
        if (ev.data_len > EW_CAP_SSE_EVENT) abort();
        (void)ew::openai_event_is_error(ev);
        ew::OpenAIUsage u;
        (void)ew::openai_find_usage(ev.data, ev.data_len, &u);
    }
};

Relay g_relay;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    size_t step = 1 + data[0] % 97;
    const char* p = reinterpret_cast<const char*>(data + 1);
    size_t n = size - 1;
    ew::sse_init(&g_relay.sse);
    g_relay.body_bytes = 0;
    g_relay.sse_failed = false;
    ew::ResponseParser resp;
    resp.init(&g_relay);
    size_t off = 0;
    ew::HttpParse r = ew::HttpParse::need_more;
    while (off < n) {
        size_t len = n - off < step ? n - off : step;
        size_t used = 0;
        r = resp.feed(p + off, len, &used);
        if (used > len) abort();
        off += used;
        if (r != ew::HttpParse::need_more) break;
    }
    if (r == ew::HttpParse::need_more) (void)resp.finish();  // the peer closed here
    if (g_relay.body_bytes > n) abort();  // decoded body never exceeds what arrived
    return 0;
}
