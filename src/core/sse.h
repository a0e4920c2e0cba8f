// Incremental Server-Sent Events splitter (WHATWG HTML, "event stream interpretation").
// Bytes in, in any chunking (even one byte at a time); complete events out through a
// callback. The parser only observes: the relay forwards the original bytes itself, and
// SseEvent::end_offset tells it where in the current chunk an event ended.
//
// Lines end in \n, \r\n or \r; a \r at the end of one chunk followed by \n at the start
// of the next is one line end. Fields: data (joined with \n), event, id, retry; lines
// starting with ':' are comments (counted); unknown fields are ignored. An event is
// dispatched at a blank line if it had at least one data field. A leading UTF-8 BOM is
// skipped. Memory is fixed: one EW_CAP_SSE_EVENT data buffer per parser; an event whose
// data does not fit (or an over-long event type) is an error, never an overflow, and the
// parser stays in the error state until sse_init().
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "core/caps.h"

namespace ew {

enum class SseStatus : uint8_t {
    ok,
    too_large,  // an event's data or event type exceeded its buffer; the stream must fail
};

struct SseEvent {
    const char* data = "";   // data lines joined with '\n' (no trailing '\n'); NUL-terminated
    size_t data_len = 0;
    const char* event = "";  // `event:` type as sent; "" means the default "message"
    size_t event_len = 0;
    const char* id = "";     // last event ID (persists across events, per the spec)
    size_t id_len = 0;
    bool is_done = false;    // data is exactly "[DONE]" (OpenAI end of stream)
    size_t end_offset = 0;   // bytes of the current sse_feed() chunk consumed up to and
                             // including this event's terminating blank line
};

// The event's pointers are valid only during the callback, because the next event in the
// same chunk reuses the buffer -- unless the callback calls sse_stop(): then sse_feed()
// returns right after this event and they stay valid until the next sse_feed()/sse_init().
using SseCallback = void (*)(const SseEvent& ev, void* user);

struct SseParser {
    // Results a caller may read.
    uint32_t events = 0;        // events dispatched so far
    uint32_t comments = 0;      // comment lines seen (e.g. keep-alive ": ping")
    bool has_retry = false;     // a valid `retry:` field was seen
    uint32_t retry_ms = 0;
    size_t consumed = 0;        // bytes of the last sse_feed() chunk processed (n unless stopped)
    // Internal state (treat as private).
    uint8_t state = 0;
    uint8_t field = 0;
    uint8_t bom_matched = 0;
    bool bom_done = false;
    bool skip_lf = false;
    bool error = false;
    bool stop = false;
    bool line_started = false;  // bytes of an unfinished line are pending
    uint8_t name_len = 0;
    char name[8] = {};
    uint32_t data_fields = 0;
    size_t data_len = 0;
    size_t event_len = 0;
    size_t id_len = 0;
    size_t id_pending_len = 0;
    bool id_bad = false;
    bool retry_bad = false;
    bool retry_any = false;
    uint32_t retry_acc = 0;
    // Buffers: no initialisers on purpose (sse_init() sets what is read), so that a table
    // of parsers costs no memory until a stream uses one.
    char event[EW_CAP_SSE_EVENT_NAME + 1];
    char id[EW_CAP_SSE_EVENT_NAME + 1];
    char id_pending[EW_CAP_SSE_EVENT_NAME + 1];
    char data[EW_CAP_SSE_EVENT + 1];
};

void sse_init(SseParser* p);

// Feeds n bytes; calls on_event for each complete event, in order, and sets p->consumed.
// Returns too_large (now and on every later call) once an event did not fit.
SseStatus sse_feed(SseParser* p, const char* data, size_t n, SseCallback on_event, void* user);

// Called from inside the callback: sse_feed() returns after the current event, with
// p->consumed == that event's end_offset. Feed the rest of the chunk (from p->consumed)
// in a later call to continue; the parser state carries over as if never paused.
void sse_stop(SseParser* p);

// True when an unfinished event or line is pending: a stream that ends here was cut
// (per the spec the partial event is discarded, never dispatched).
bool sse_has_partial(const SseParser* p);

const char* to_string(SseStatus s);

}  // namespace ew
