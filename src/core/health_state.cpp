// The state file's text: writing, checking, applying. See health_state.h for the format.
// No allocation, no libc formatting (StrBuf), every read bounded by the text's length.
#include "core/health_state.h"

#include <string.h>

#include "core/strbuf.h"

namespace ew {

#if EW_STATE_FILE

namespace {

constexpr char kMagic[] = "edgeway-state ";
constexpr size_t kMagicLen = sizeof kMagic - 1;
constexpr char kCrcKey[] = "crc=";
constexpr size_t kCrcLineLen = 4 + 8 + 1;  // "crc=" + 8 hex + '\n'

struct Tok {
    const char* p = nullptr;
    size_t n = 0;
};

bool eq(Tok t, const char* s) { return strlen(s) == t.n && memcmp(t.p, s, t.n) == 0; }

// Next space-separated token of [*p, end); false at the end.
bool next_tok(const char** p, const char* end, Tok* t) {
    while (*p < end && **p == ' ') (*p)++;
    if (*p >= end) return false;
    t->p = *p;
    while (*p < end && **p != ' ') (*p)++;
    t->n = static_cast<size_t>(*p - t->p);
    return true;
}

bool parse_dec(Tok t, uint64_t* out) {
    if (t.n == 0 || t.n > 19) return false;  // 19 digits fit in 64 bits
    uint64_t v = 0;
    for (size_t i = 0; i < t.n; i++) {
        if (t.p[i] < '0' || t.p[i] > '9') return false;
        v = v * 10 + static_cast<uint64_t>(t.p[i] - '0');
    }
    *out = v;
    return true;
}

bool parse_hex8(Tok t, uint32_t* out) {
    if (t.n != 8) return false;
    uint32_t v = 0;
    for (size_t i = 0; i < 8; i++) {
        char c = t.p[i];
        uint32_t d;
        if (c >= '0' && c <= '9') d = static_cast<uint32_t>(c - '0');
        else if (c >= 'a' && c <= 'f') d = static_cast<uint32_t>(c - 'a' + 10);
        else return false;
        v = v << 4 | d;
    }
    *out = v;
    return true;
}

// key=value -> key, value; false without '='.
bool split_kv(Tok t, Tok* k, Tok* v) {
    const char* eqs = static_cast<const char*>(memchr(t.p, '=', t.n));
    if (eqs == nullptr) return false;
    k->p = t.p;
    k->n = static_cast<size_t>(eqs - t.p);
    v->p = eqs + 1;
    v->n = t.n - k->n - 1;
    return k->n > 0;
}

uint64_t remaining(uint64_t until_ms, uint64_t now_ms) {
    if (until_ms <= now_ms) return 0;
    uint64_t r = until_ms - now_ms;
    return r > kStateMaxRemainingMs ? kStateMaxRemainingMs : r;
}

// A remaining time read from the file, less the time that has passed since it was written.
uint64_t adjusted(uint64_t stored, uint64_t elapsed) {
    if (stored > kStateMaxRemainingMs) stored = kStateMaxRemainingMs;
    return stored > elapsed ? stored - elapsed : 0;
}

// One E line's fields, as read.
struct EndpointFields {
    uint32_t url_hash = 0;
    bool has_url = false;
    uint64_t rl = 0, dn = 0, ej = 0, cl = 0, lat = 0, kx = 0;
    bool has_dn = false, has_lat = false, kb = false;
    uint32_t key = 0;
    // While DOWN: how deep a check must be to confirm a recovery (half-open recovery).
    CheckLevel dl = CheckLevel::none, dp = CheckLevel::none;
    bool dt = false;
};

bool parse_level(Tok v, CheckLevel* out) {
    uint64_t n = 0;
    if (!parse_dec(v, &n) || n > static_cast<uint64_t>(CheckLevel::chat)) return false;
    *out = static_cast<CheckLevel>(n);
    return true;
}

// false: a known key with a malformed value (the file is refused).
bool read_endpoint_field(Tok k, Tok v, EndpointFields* f) {
    uint64_t n = 0;
    if (eq(k, "url")) return f->has_url = parse_hex8(v, &f->url_hash);
    if (eq(k, "key")) return parse_hex8(v, &f->key);
    if (eq(k, "rl")) return parse_dec(v, &f->rl);
    if (eq(k, "kx")) return parse_dec(v, &f->kx);
    if (eq(k, "dn")) return f->has_dn = parse_dec(v, &f->dn);
    if (eq(k, "ej")) return parse_dec(v, &f->ej);
    if (eq(k, "cl")) return parse_dec(v, &f->cl);
    if (eq(k, "lat")) return f->has_lat = parse_dec(v, &f->lat);
    if (eq(k, "kb")) {
        if (!parse_dec(v, &n) || n > 1) return false;
        f->kb = n == 1;
        return true;
    }
    if (eq(k, "dl")) return parse_level(v, &f->dl);
    if (eq(k, "dp")) return parse_level(v, &f->dp);
    if (eq(k, "dt")) {
        if (!parse_dec(v, &n) || n > 1) return false;
        f->dt = n == 1;
        return true;
    }
    return true;  // a field of a later writer: skipped
}

void apply_endpoint(const EndpointConfig& ec, Health* h, const HealthParams& p, const EndpointFields& f,
                    uint64_t now, uint64_t elapsed) {
    const uint64_t ej = f.ej > 0xffffffffu ? 0xffffffffu : f.ej;
    h->ejections = static_cast<uint32_t>(ej);
    h->cooldown_level = static_cast<uint32_t>(f.cl > 32 ? 32 : f.cl);
    h->decay_from_ms = now;
    if (f.has_lat) {
        h->latency_ewma_ms = static_cast<float>(f.lat > 3600000 ? 3600000 : f.lat);
        h->has_latency = true;
        h->score = health_compute_score(*h, p);
    }
    const bool same_key = f.key == key_fingerprint(ec.api_key);
    if (f.kb && same_key) {
        h->key_bad = true;
        copy_str(h->last_error, sizeof h->last_error, "API key rejected (state file)");
    }
    const uint64_t kx = adjusted(f.kx, elapsed);
    if (kx > 0 && same_key) {
        h->key_exhausted_until_ms = now + kx;
        copy_str(h->last_error, sizeof h->last_error, "API key quota exhausted (state file)");
    }
    const uint64_t rl = adjusted(f.rl, elapsed);
    if (rl > 0) {
        h->rate_limited_until_ms = now + rl;
        StrBuf e(h->last_error, sizeof h->last_error);
        e.appendf("HTTP 429: rate limited for %llu ms more (state file)",
                  static_cast<unsigned long long>(rl));
    }
    if (f.has_dn) {
        const uint64_t dn = adjusted(f.dn, elapsed);
        h->state = HealthState::down;
        h->down_until_ms = now + dn;
        h->cooldown_ms = static_cast<uint32_t>(dn > p.cooldown_max_ms ? p.cooldown_max_ms : dn);
        h->down_probe_ms = p.cooldown_base_ms;
        h->consecutive_failures = p.fall;
        h->consecutive_successes = 0;
        // What took it down, so that only a check as deep (or live trials) brings it back,
        // as before the restart. A file of an earlier writer has none: any check confirms.
        h->down_level = f.dl;
        h->down_probe_level = f.dp;
        h->down_by_traffic = f.dt;
        if (rl == 0 && !h->key_bad) copy_str(h->last_error, sizeof h->last_error, "DOWN (state file)");
    } else if (rl > 0 && h->state != HealthState::down) {
        h->state = HealthState::rate_limited;
    }
}

// Walks the lines between the header and the crc line. With apply false it only checks
// them; with apply true (after a check) it changes health.
StateLoad walk(const char* text, const char* body_end, bool apply, const Config& cfg, Health* health,
               const HealthParams& p, uint64_t now, uint64_t wall_now, StateLoadResult* r) {
    const char* line = text;
    uint32_t line_no = 0;
    int cur = -1;  // the endpoint index the last E line matched; -1: none
    bool after_e = false;
    uint64_t elapsed = 0;
    while (line < body_end) {
        const char* nl = static_cast<const char*>(memchr(line, '\n', static_cast<size_t>(body_end - line)));
        if (nl == nullptr) nl = body_end;  // cannot happen: body_end follows a '\n'
        line_no++;
        const char* q = line;
        Tok kind;
        const bool has = next_tok(&q, nl, &kind);
        line = nl + 1;
        if (!has) continue;
        const auto bad = [&]() {
            r->line = line_no;
            StrBuf w(r->why, sizeof r->why);
            w.appendf("bad line %u", static_cast<unsigned>(line_no));
            return StateLoad::bad_line;
        };
        Tok t, k, v;
        if (line_no == 1) {  // the header: magic and version were checked by the caller
            next_tok(&q, nl, &t);
            uint64_t wall = 0;
            while (next_tok(&q, nl, &t)) {
                if (!split_kv(t, &k, &v)) return bad();
                if (eq(k, "wall") && !parse_dec(v, &wall)) return bad();
            }
            if (wall_plausible(wall) && wall_plausible(wall_now) && wall_now >= wall) {
                elapsed = wall_now - wall;
                r->wall_trusted = true;
            }
            r->elapsed_ms = elapsed;
            continue;
        }
        if (eq(kind, "E")) {
            Tok name;
            if (!next_tok(&q, nl, &name)) return bad();
            EndpointFields f;
            while (next_tok(&q, nl, &t))
                if (!split_kv(t, &k, &v) || !read_endpoint_field(k, v, &f)) return bad();
            if (!f.has_url) return bad();
            after_e = true;
            cur = -1;
            if (!apply) continue;
            for (uint32_t i = 0; i < cfg.endpoint_count; i++) {
                const EndpointConfig& ec = cfg.endpoints[i];
                if (eq(name, ec.name) && f.url_hash == crc32(ec.url, strlen(ec.url))) cur = static_cast<int>(i);
            }
            if (cur < 0) continue;  // not configured (any more), or its url changed
            apply_endpoint(cfg.endpoints[cur], &health[cur], p, f, now, elapsed);
            r->restored++;
        } else if (eq(kind, "M")) {
            Tok model;
            if (!after_e || !next_tok(&q, nl, &model)) return bad();
            uint64_t rl = 0, na = 0;
            while (next_tok(&q, nl, &t)) {
                if (!split_kv(t, &k, &v)) return bad();
                if (eq(k, "rl") && !parse_dec(v, &rl)) return bad();
                if (eq(k, "na") && !parse_dec(v, &na)) return bad();
            }
            if (!apply || cur < 0) continue;
            const EndpointConfig& ec = cfg.endpoints[cur];
            for (uint32_t m = 0; m < ec.model_count && m < EW_CAP_MODELS_PER_ENDPOINT; m++) {
                if (!eq(model, ec.models[m])) continue;
                const uint64_t left = adjusted(rl, elapsed), gone = adjusted(na, elapsed);
                if (left > 0) health[cur].model_limited_until_ms[m] = now + left;
                if (gone > 0) health[cur].model_unavailable_until_ms[m] = now + gone;
            }
        }
        // Any other line: a record type of a later writer, skipped.
    }
    return StateLoad::ok;
}

}  // namespace

uint32_t crc32(const void* data, size_t len, uint32_t crc) {
    const uint8_t* b = static_cast<const uint8_t*>(data);
    crc = ~crc;
    for (size_t i = 0; i < len; i++) {
        crc ^= b[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

uint32_t key_fingerprint(const char* key) {
    uint32_t h = 2166136261u;
    for (const char* c = key; c && *c; c++) {
        h ^= static_cast<uint8_t>(*c);
        h *= 16777619u;
    }
    return h;
}

bool wall_plausible(uint64_t wall_ms) { return wall_ms >= kWallPlausibleMinMs && wall_ms < kWallPlausibleMaxMs; }

bool state_encode(const Config& cfg, const Health* health, uint64_t now_ms, uint64_t wall_ms, StrBuf* out) {
    out->clear();
    out->appendf("%s%u wall=%llu\n", kMagic, static_cast<unsigned>(kStateVersion),
                 static_cast<unsigned long long>(wall_ms));
    for (uint32_t i = 0; i < cfg.endpoint_count && i < EW_CAP_ENDPOINTS; i++) {
        const EndpointConfig& ec = cfg.endpoints[i];
        const Health& h = health[i];
        out->appendf("E %s url=%08x ej=%u cl=%u", ec.name, static_cast<unsigned>(crc32(ec.url, strlen(ec.url))),
                     static_cast<unsigned>(h.ejections), static_cast<unsigned>(h.cooldown_level));
        const uint64_t rl = remaining(h.rate_limited_until_ms, now_ms);
        if (rl) out->appendf(" rl=%llu", static_cast<unsigned long long>(rl));
        if (h.state == HealthState::down) {
            out->appendf(" dn=%llu", static_cast<unsigned long long>(remaining(h.down_until_ms, now_ms)));
            if (h.down_level != CheckLevel::none) out->appendf(" dl=%u", static_cast<unsigned>(h.down_level));
            if (h.down_probe_level != CheckLevel::none)
                out->appendf(" dp=%u", static_cast<unsigned>(h.down_probe_level));
            if (h.down_by_traffic) out->append(" dt=1");
        }
        if (h.has_latency && h.latency_ewma_ms >= 0.0f)
            out->appendf(" lat=%u", static_cast<unsigned>(h.latency_ewma_ms + 0.5f));
        const uint64_t kx = remaining(h.key_exhausted_until_ms, now_ms);
        if (h.key_bad) out->append(" kb=1");
        if (kx) out->appendf(" kx=%llu", static_cast<unsigned long long>(kx));
        if (h.key_bad || kx) out->appendf(" key=%08x", static_cast<unsigned>(key_fingerprint(ec.api_key)));
        out->append("\n");
        for (uint32_t m = 0; m < ec.model_count && m < EW_CAP_MODELS_PER_ENDPOINT; m++) {
            const uint64_t left = remaining(h.model_limited_until_ms[m], now_ms);
            const uint64_t gone = remaining(h.model_unavailable_until_ms[m], now_ms);
            if (!left && !gone) continue;
            out->appendf("M %s", ec.models[m]);
            if (left) out->appendf(" rl=%llu", static_cast<unsigned long long>(left));
            if (gone) out->appendf(" na=%llu", static_cast<unsigned long long>(gone));
            out->append("\n");
        }
    }
    if (out->overflow) return false;
    const uint32_t crc = crc32(out->data, out->len);
    out->appendf("%s%08x\n", kCrcKey, static_cast<unsigned>(crc));
    return !out->overflow;
}

StateLoad state_decode(const char* text, size_t len, const Config& cfg, Health* health, const HealthParams& p,
                       uint64_t now_ms, uint64_t wall_now_ms, StateLoadResult* r) {
    *r = StateLoadResult();
    const auto fail = [r](StateLoad s, const char* why) {
        r->status = s;
        copy_str(r->why, sizeof r->why, why);
        return s;
    };
    if (len == 0) return fail(StateLoad::empty, "empty file");
    if (len < kMagicLen || memcmp(text, kMagic, kMagicLen) != 0) return fail(StateLoad::not_state, "not an edgeway state file");
    const char* end = text + len;
    const char* q = text + kMagicLen;
    const char* nl = static_cast<const char*>(memchr(q, '\n', len - kMagicLen));
    Tok ver;
    uint64_t version = 0;
    if (!next_tok(&q, nl ? nl : end, &ver) || !parse_dec(ver, &version))
        return fail(StateLoad::truncated, "truncated (no whole header line)");
    r->version = static_cast<uint32_t>(version > 0xffffffffu ? 0xffffffffu : version);
    if (version != kStateVersion) {
        fail(StateLoad::bad_version, "");
        StrBuf w(r->why, sizeof r->why);
        w.appendf("version %llu (this edgeway reads version %u)", static_cast<unsigned long long>(version),
                  static_cast<unsigned>(kStateVersion));
        return StateLoad::bad_version;
    }
    // The last line is the checksum of everything before it.
    if (nl == nullptr || len <= kCrcLineLen || text[len - 1] != '\n' || memcmp(end - kCrcLineLen, kCrcKey, 4) != 0 ||
        *(end - kCrcLineLen - 1) != '\n')
        return fail(StateLoad::truncated, "truncated (no checksum line at the end)");
    Tok crc_tok;
    crc_tok.p = end - kCrcLineLen + 4;
    crc_tok.n = 8;
    uint32_t want = 0;
    if (!parse_hex8(crc_tok, &want)) return fail(StateLoad::truncated, "truncated (no checksum line at the end)");
    const char* body_end = end - kCrcLineLen;
    if (crc32(text, static_cast<size_t>(body_end - text)) != want) return fail(StateLoad::bad_checksum, "checksum mismatch");
    for (const char* c = text; c < body_end; c++)
        if (*c == '\0') return fail(StateLoad::bad_line, "a NUL byte in the text");
    StateLoad s = walk(text, body_end, false, cfg, health, p, now_ms, wall_now_ms, r);
    if (s != StateLoad::ok) {
        r->status = s;
        return s;
    }
    r->restored = 0;
    walk(text, body_end, true, cfg, health, p, now_ms, wall_now_ms, r);
    for (uint32_t i = 0; i < cfg.endpoint_count; i++) {
        const Health& h = health[i];
        bool limited = h.state == HealthState::down || h.rate_limited_until_ms > now_ms ||
                       h.key_exhausted_until_ms > now_ms;
        for (uint64_t m : h.model_limited_until_ms) limited = limited || m > now_ms;
        for (uint64_t m : h.model_unavailable_until_ms) limited = limited || m > now_ms;
        if (limited) r->limited++;
    }
    r->status = StateLoad::ok;
    return StateLoad::ok;
}

void state_facts_of(const Health& h, uint64_t now_ms, StateFacts* out) {
    *out = StateFacts();
    out->rate_limited_until_ms = h.rate_limited_until_ms > now_ms ? h.rate_limited_until_ms : 0;
    out->down = h.state == HealthState::down;
    out->down_until_ms = out->down && h.down_until_ms > now_ms ? h.down_until_ms : 0;
    out->key_exhausted_until_ms = h.key_exhausted_until_ms > now_ms ? h.key_exhausted_until_ms : 0;
    for (size_t m = 0; m < EW_CAP_MODELS_PER_ENDPOINT; m++) {
        out->model_limited_until_ms[m] = h.model_limited_until_ms[m] > now_ms ? h.model_limited_until_ms[m] : 0;
        out->model_unavailable_until_ms[m] =
            h.model_unavailable_until_ms[m] > now_ms ? h.model_unavailable_until_ms[m] : 0;
    }
    out->ejections = h.ejections;
    out->cooldown_level = h.cooldown_level;
    out->has_latency = h.has_latency;
    out->latency_ms = h.has_latency && h.latency_ewma_ms > 0.0f ? static_cast<uint32_t>(h.latency_ewma_ms + 0.5f) : 0;
    out->key_bad = h.key_bad;
}

bool state_facts_changed(const StateFacts& a, const StateFacts& b) {
    if (a.rate_limited_until_ms != b.rate_limited_until_ms || a.down != b.down || a.down_until_ms != b.down_until_ms ||
        a.ejections != b.ejections || a.cooldown_level != b.cooldown_level || a.key_bad != b.key_bad ||
        a.has_latency != b.has_latency || a.key_exhausted_until_ms != b.key_exhausted_until_ms)
        return true;
    for (size_t m = 0; m < EW_CAP_MODELS_PER_ENDPOINT; m++)
        if (a.model_limited_until_ms[m] != b.model_limited_until_ms[m] ||
            a.model_unavailable_until_ms[m] != b.model_unavailable_until_ms[m])
            return true;
    const uint32_t hi = a.latency_ms > b.latency_ms ? a.latency_ms : b.latency_ms;
    const uint32_t lo = a.latency_ms > b.latency_ms ? b.latency_ms : a.latency_ms;
    return hi - lo >= 20 && hi - lo >= hi / 4;
}

#else  // EW_STATE_FILE == 0: a build without the state file (a board without a file system)

uint32_t crc32(const void*, size_t, uint32_t) { return 0; }
uint32_t key_fingerprint(const char*) { return 0; }
bool wall_plausible(uint64_t) { return false; }
bool state_encode(const Config&, const Health*, uint64_t, uint64_t, StrBuf* out) {
    out->clear();
    return false;
}
StateLoad state_decode(const char*, size_t, const Config&, Health*, const HealthParams&, uint64_t, uint64_t,
                       StateLoadResult* r) {
    *r = StateLoadResult();
    r->status = StateLoad::not_state;
    copy_str(r->why, sizeof r->why, "this build has no state file (EW_STATE_FILE=0)");
    return r->status;
}
void state_facts_of(const Health&, uint64_t, StateFacts* out) { *out = StateFacts(); }
bool state_facts_changed(const StateFacts&, const StateFacts&) { return false; }

#endif  // EW_STATE_FILE

const char* to_string(StateLoad s) {
    switch (s) {
        case StateLoad::ok: return "ok";
        case StateLoad::empty: return "empty file";
        case StateLoad::not_state: return "not an edgeway state file";
        case StateLoad::bad_version: return "another version";
        case StateLoad::truncated: return "truncated";
        case StateLoad::bad_checksum: return "checksum mismatch";
        case StateLoad::bad_line: return "bad line";
    }
    return "?";
}

}  // namespace ew
