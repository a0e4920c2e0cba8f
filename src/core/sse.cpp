#include "core/sse.h"

#include <string.h>

namespace ew {

namespace {

enum State : uint8_t { LINE_START, NAME, VALUE_START, VALUE, DISCARD };
enum Field : uint8_t { F_IGNORE, F_DATA, F_EVENT, F_ID, F_RETRY };

const unsigned char kBom[3] = {0xEF, 0xBB, 0xBF};
constexpr uint8_t kNameMax = sizeof(SseParser::name);  // longer names are unknown fields

bool name_is(const SseParser* p, const char* s) {
    size_t n = strlen(s);
    return p->name_len == n && memcmp(p->name, s, n) == 0;
}

bool fail(SseParser* p) {
    p->error = true;
    return false;
}

// The field name is complete (at ':' or at the end of a line without one).
bool begin_field(SseParser* p) {
    p->field = F_IGNORE;
    if (name_is(p, "data")) {
        p->field = F_DATA;
        if (p->data_fields > 0) {  // data lines are joined with '\n'
            if (p->data_len + 1 > EW_CAP_SSE_EVENT) return fail(p);
            p->data[p->data_len++] = '\n';
        }
        p->data_fields++;
    } else if (name_is(p, "event")) {
        p->field = F_EVENT;
        p->event_len = 0;
    } else if (name_is(p, "id")) {
        p->field = F_ID;
        p->id_pending_len = 0;
        p->id_bad = false;
    } else if (name_is(p, "retry")) {
        p->field = F_RETRY;
        p->retry_acc = 0;
        p->retry_bad = false;
        p->retry_any = false;
    }
    return true;
}

bool append_value(SseParser* p, const char* s, size_t m) {
    switch (p->field) {
        case F_DATA:
            if (m > EW_CAP_SSE_EVENT - p->data_len) return fail(p);
            memcpy(p->data + p->data_len, s, m);
            p->data_len += m;
            break;
        case F_EVENT:
            if (m > EW_CAP_SSE_EVENT_NAME - p->event_len) return fail(p);
            memcpy(p->event + p->event_len, s, m);
            p->event_len += m;
            break;
        case F_ID:  // an id with U+0000 is ignored (spec); so is one too long to keep
            if (memchr(s, '\0', m) || m > EW_CAP_SSE_EVENT_NAME - p->id_pending_len) {
                p->id_bad = true;
            } else if (!p->id_bad) {
                memcpy(p->id_pending + p->id_pending_len, s, m);
                p->id_pending_len += m;
            }
            break;
        case F_RETRY:
            for (size_t k = 0; k < m; k++) {
                p->retry_any = true;
                if (s[k] < '0' || s[k] > '9') {
                    p->retry_bad = true;
                } else {
                    uint32_t d = static_cast<uint32_t>(s[k] - '0');
                    p->retry_acc = p->retry_acc > (UINT32_MAX - d) / 10 ? UINT32_MAX : p->retry_acc * 10 + d;
                }
            }
            break;
        default:
            break;
    }
    return true;
}

void end_field(SseParser* p) {
    if (p->field == F_ID && !p->id_bad) {
        memcpy(p->id, p->id_pending, p->id_pending_len);
        p->id_len = p->id_pending_len;
        p->id[p->id_len] = '\0';
    } else if (p->field == F_RETRY && !p->retry_bad && p->retry_any) {
        p->has_retry = true;
        p->retry_ms = p->retry_acc;
    }
    p->field = F_IGNORE;
}

void dispatch(SseParser* p, size_t end_offset, SseCallback cb, void* user) {
    if (p->data_fields == 0) {  // no data: nothing to dispatch, the event type is reset
        p->event_len = 0;
        return;
    }
    p->data[p->data_len] = '\0';
    p->event[p->event_len] = '\0';
    SseEvent ev;
    ev.data = p->data;
    ev.data_len = p->data_len;
    ev.event = p->event;
    ev.event_len = p->event_len;
    ev.id = p->id;
    ev.id_len = p->id_len;
    ev.is_done = p->data_len == 6 && memcmp(p->data, "[DONE]", 6) == 0;
    ev.end_offset = end_offset;
    p->events++;
    if (cb) cb(ev, user);
    p->data_len = 0;
    p->data_fields = 0;
    p->event_len = 0;
}

// Consumes a line terminator at d[i] (\r or \n); returns the index after it. A "\r\n"
// pair inside the chunk is consumed whole; a "\r" at the chunk end arms skip_lf.
size_t end_line(SseParser* p, const char* d, size_t n, size_t i) {
    p->state = LINE_START;
    p->line_started = false;
    if (d[i] == '\r') {
        if (i + 1 < n) return d[i + 1] == '\n' ? i + 2 : i + 1;
        p->skip_lf = true;
    }
    return i + 1;
}

size_t find_eol(const char* d, size_t n, size_t i) {
    // The C library's memchr looks at many bytes per step; a line is mostly payload.
    const void* lf = memchr(d + i, '\n', n - i);
    size_t end = lf ? static_cast<size_t>(static_cast<const char*>(lf) - d) : n;
    const void* cr = memchr(d + i, '\r', end - i);
    return cr ? static_cast<size_t>(static_cast<const char*>(cr) - d) : end;
}

// The main state machine over d[0, n); end offsets are relative to d. Returns the bytes
// processed (fewer than n after an error or sse_stop()).
size_t process(SseParser* p, const char* d, size_t n, SseCallback cb, void* user) {
    size_t i = 0;
    while (i < n && !p->error && !p->stop) {
        char c = d[i];
        if (p->skip_lf) {
            p->skip_lf = false;
            if (c == '\n') {
                i++;
                continue;
            }
        }
        switch (p->state) {
            case LINE_START:
                if (c == '\n' || c == '\r') {
                    i = end_line(p, d, n, i);
                    dispatch(p, i, cb, user);
                    break;
                }
                p->line_started = true;
                if (c == ':') {
                    p->comments++;
                    p->state = DISCARD;
                    i++;
                } else {
                    p->name_len = 0;
                    p->state = NAME;
                }
                break;
            case NAME:
                if (c == ':') {
                    if (!begin_field(p)) break;
                    p->state = VALUE_START;
                    i++;
                } else if (c == '\n' || c == '\r') {  // a field name with an empty value
                    if (!begin_field(p)) break;
                    end_field(p);
                    i = end_line(p, d, n, i);
                } else {
                    if (p->name_len < kNameMax) p->name[p->name_len] = c;
                    if (p->name_len <= kNameMax) p->name_len++;
                    i++;
                }
                break;
            case VALUE_START:
                if (c == ' ') i++;  // one leading space is not part of the value
                p->state = VALUE;
                break;
            case VALUE: {
                size_t j = find_eol(d, n, i);
                if (j > i && !append_value(p, d + i, j - i)) break;
                i = j;
                if (i < n) {
                    end_field(p);
                    i = end_line(p, d, n, i);
                }
                break;
            }
            default:  // DISCARD: a comment line
                i = find_eol(d, n, i);
                if (i < n) i = end_line(p, d, n, i);
                break;
        }
    }
    return i;
}

struct Shift {  // adds the chunk offset of a sub-range to reported end offsets
    SseCallback cb;
    void* user;
    size_t base;
};

void shifted(const SseEvent& ev, void* user) {
    Shift* s = static_cast<Shift*>(user);
    SseEvent e = ev;
    e.end_offset += s->base;
    if (s->cb) s->cb(e, s->user);
}

}  // namespace

void sse_init(SseParser* p) {
    p->events = 0;
    p->comments = 0;
    p->has_retry = false;
    p->retry_ms = 0;
    p->state = LINE_START;
    p->field = F_IGNORE;
    p->bom_matched = 0;
    p->bom_done = false;
    p->skip_lf = false;
    p->error = false;
    p->stop = false;
    p->consumed = 0;
    p->line_started = false;
    p->name_len = 0;
    p->data_fields = 0;
    p->data_len = 0;
    p->event_len = 0;
    p->id_len = 0;
    p->id_pending_len = 0;
    p->id_bad = false;
    p->retry_bad = false;
    p->retry_any = false;
    p->retry_acc = 0;
    p->event[0] = '\0';
    p->id[0] = '\0';
    p->data[0] = '\0';
}

SseStatus sse_feed(SseParser* p, const char* data, size_t n, SseCallback on_event, void* user) {
    p->consumed = 0;
    p->stop = false;
    if (p->error) return SseStatus::too_large;
    size_t i = 0;
    while (!p->bom_done && i < n) {  // a leading UTF-8 BOM is skipped, even split across chunks
        if (static_cast<unsigned char>(data[i]) == kBom[p->bom_matched]) {
            i++;
            if (++p->bom_matched == 3) p->bom_done = true;
            continue;
        }
        p->bom_done = true;  // not a BOM: the bytes matched so far are content
        process(p, reinterpret_cast<const char*>(kBom), p->bom_matched, nullptr, nullptr);
    }
    if (i < n) {
        if (i == 0) {
            i = process(p, data, n, on_event, user);
        } else {
            Shift s{on_event, user, i};
            i += process(p, data + i, n - i, shifted, &s);
        }
    }
    p->consumed = i;
    p->stop = false;
    return p->error ? SseStatus::too_large : SseStatus::ok;
}

void sse_stop(SseParser* p) { p->stop = true; }

bool sse_has_partial(const SseParser* p) {
    return p->line_started || p->data_fields > 0 || p->event_len > 0 || (p->bom_matched > 0 && !p->bom_done);
}

const char* to_string(SseStatus s) {
    switch (s) {
        case SseStatus::ok: return "ok";
        case SseStatus::too_large: return "event too large";
    }
    return "?";
}

}  // namespace ew
