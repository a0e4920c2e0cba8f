// libFuzzer target: the SSE splitter. Differential check: the input fed whole and fed in
// splits chosen by its first bytes must give the same events and the same final status.
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <string>

#include "core/openai.h"
#include "core/sse.h"

using namespace ew;

#define CHECK(c) \
    do {         \
        if (!(c)) abort(); \
    } while (0)

namespace {

struct Log {
    SseParser* stop_parser = nullptr;  // when set, every event pauses the feed (sse_stop)
    std::string text;  // every event serialised with lengths, so any difference shows
    size_t chunk_len = 0;
    size_t last_end = 0;
};

void on_event(const SseEvent& e, void* user) {
    Log* l = static_cast<Log*>(user);
    CHECK(e.end_offset <= l->chunk_len && e.end_offset >= l->last_end);
    l->last_end = e.end_offset;
    CHECK(e.data[e.data_len] == '\0' && e.event[e.event_len] == '\0' && e.id[e.id_len] == '\0');
    CHECK(e.data_len <= EW_CAP_SSE_EVENT && e.event_len <= EW_CAP_SSE_EVENT_NAME && e.id_len <= EW_CAP_SSE_EVENT_NAME);
    CHECK(e.is_done == (e.data_len == 6 && memcmp(e.data, "[DONE]", 6) == 0));
    l->text += std::to_string(e.data_len) + ":" + std::string(e.data, e.data_len) + "|" + std::to_string(e.event_len) +
               ":" + std::string(e.event, e.event_len) + "|" + std::string(e.id, e.id_len) + "\n";
    (void)openai_event_is_error(e);
    OpenAIUsage u;
    (void)openai_find_usage(e.data, e.data_len, &u);
    if (l->stop_parser) sse_stop(l->stop_parser);
}

SseStatus feed(SseParser* p, Log* log, const char* d, size_t n) {
    log->chunk_len = n;
    log->last_end = 0;
    return sse_feed(p, d, n, on_event, log);
}

SseParser g_whole, g_split, g_stop;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    uint8_t a = data[0], b = data[1];
    const char* d = reinterpret_cast<const char*>(data + 2);
    size_t n = size - 2;

    sse_init(&g_whole);
    Log whole;
    SseStatus sw = feed(&g_whole, &whole, d, n);

    sse_init(&g_split);
    Log split;
    SseStatus ss = SseStatus::ok;
    size_t sizes[2] = {static_cast<size_t>(a % 17) + 1, static_cast<size_t>(b) + 1};
    size_t i = 0, k = 0;
    while (i < n) {
        size_t c = sizes[k++ % 2];
        if (c > n - i) c = n - i;
        SseStatus s = feed(&g_split, &split, d + i, c);
        if (s != SseStatus::ok) ss = s;
        i += c;
    }
    // Third run: pause after every event (sse_stop) and resume from p->consumed.
    sse_init(&g_stop);
    Log stopped;
    stopped.stop_parser = &g_stop;
    SseStatus st = SseStatus::ok;
    i = 0;
    while (i < n) {
        SseStatus s = feed(&g_stop, &stopped, d + i, n - i);
        if (s != SseStatus::ok) {
            st = s;
            break;
        }
        CHECK(g_stop.consumed > 0 && g_stop.consumed <= n - i);
        i += g_stop.consumed;
    }
    CHECK(sw == st);
    CHECK(whole.text == stopped.text);
    if (sw == SseStatus::ok) CHECK(g_whole.consumed == n);

    CHECK(sw == ss);
    CHECK(whole.text == split.text);
    CHECK(g_whole.events == g_split.events && g_whole.comments == g_split.comments);
    if (sw == SseStatus::ok) {
        CHECK(sse_has_partial(&g_whole) == sse_has_partial(&g_split));
        CHECK(g_whole.has_retry == g_split.has_retry && g_whole.retry_ms == g_split.retry_ms);
    }
    return 0;
}
