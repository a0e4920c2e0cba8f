// The local HTTP surface: routing, /healthz /readyz /status /metrics / and /v1/models.
// POST /v1/* goes to the proxy.
#include <string.h>

#include "net/admin.h"

#include "core/header_policy.h"
#include "core/openai.h"
#include "core/request_check.h"
#include "core/router.h"
#include "core/status_page.h"
#include "core/strbuf.h"
#include "net/client.h"
#include "net/log.h"
#include "net/resolver.h"
#include "net/state_log.h"
#include "net/telemetry_doc.h"
#include "pal.h"

namespace ew {
namespace {

bool path_is(const char* path, const char* want) {
    size_t n = strlen(want);
    if (strncmp(path, want, n) != 0) return false;
    return path[n] == '\0' || path[n] == '?';
}

bool constant_time_equals(const char* a, size_t alen, const char* b, size_t blen) {
    unsigned diff = static_cast<unsigned>(alen ^ blen);
    for (size_t i = 0; i < alen; i++) diff |= static_cast<unsigned>(a[i] ^ b[i % (blen ? blen : 1)]);
    return diff == 0;
}

}  // namespace

size_t LocalApi::endpoints_serving(uint64_t now_ms) const {
    size_t n = 0;
    for (uint32_t i = 0; i < ctx_->cfg->endpoint_count; i++)
        if (health_can_serve(ctx_->health[i], -1, now_ms)) n++;
    return n;
}

bool LocalApi::authorized(const ClientConn* c) const {
    const char* token = ctx_->cfg->agent.local_token;
    if (token[0] == '\0') return true;
    const HeaderValue& h = c->request().authorization;
    if (!h.present || h.truncated || strncmp(h.text, "Bearer ", 7) != 0) return false;
    const char* given = h.text + 7;
    return constant_time_equals(given, strlen(given), token, strlen(token));
}

void LocalApi::serve(ClientConn* c, uint64_t now_ms) {
    const RequestParser& r = c->request();
    note_states(*ctx_, now_ms);
    if (c->origin_refused()) {
        // A page on an origin cors_origins does not list: refused before anything runs (a
        // "simple" cross-site POST needs no preflight), and without CORS headers, so the
        // browser shows the page nothing.
        ctx_->metrics->cors_rejected++;
        EW_LOG_INFO("cors: origin not allowed (%s %s)", r.method, r.path);
        c->respond_error(403, "This origin may not call this edgeway agent (see [agent] cors_origins).",
                         "permission_error", "origin_not_allowed");
        c->finish_response();
        return;
    }
    bool head = strcmp(r.method, "HEAD") == 0;
    bool get = head || strcmp(r.method, "GET") == 0;
    if (strcmp(r.method, "OPTIONS") == 0) {
        // A CORS preflight (no credentials): what a page on an allowed origin may send.
        char more[512];
        StrBuf h(more, sizeof more);
        if (r.origin.present) cors_preflight_headers(&h, header_equals(r.acr_private_network, "true"));
        h.append("Allow: GET, POST, HEAD, OPTIONS\r\n");
        c->respond_bodiless(204, more);
        c->finish_response();
        return;
    }
    if (strncmp(r.path, "/v1/", 4) == 0) {
        if (!authorized(c)) {
            c->respond_error(401, "Missing or wrong bearer token for this edgeway agent.", "authentication_error",
                             "invalid_api_key", "WWW-Authenticate: Bearer\r\n");
            c->finish_response();
            return;
        }
        if (strcmp(r.method, "POST") == 0) {
            c->start_exchange(now_ms);
            return;
        }
        if (get && path_is(r.path, "/v1/models")) {
            serve_models(c);
            return;
        }
        if (get && strncmp(r.path, "/v1/models/", 11) == 0) {
            serve_model(c);
            return;
        }
        c->respond_error(405, "Only POST (and GET /v1/models, /v1/models/{id}) is served under /v1/.",
                         "invalid_request_error", "method_not_allowed", "Allow: POST\r\n");
        c->finish_response();
        return;
    }
    serve_admin(c, now_ms);
}

// The rendering buffer is one for all clients, and a page larger than a client's own
// buffer is sent from it as that client reads (ClientConn::respond_from): while one is,
// another page waits (503, Retry-After: 1; a scraper's next turn).
bool LocalApi::render_free(ClientConn* c) {
    if (render_owner_ && render_owner_->sending_from(render_)) {
        EW_LOG_WARN("page answered 503: another client is still reading a page from the render buffer");
        c->respond_error(503, "edgeway: another client is still reading a page; retry shortly.", "server_error",
                         "overloaded", "Retry-After: 1\r\n");
        c->finish_response();
        return false;
    }
    render_owner_ = nullptr;
    return true;
}

void LocalApi::send_render(ClientConn* c, uint16_t status, const char* content_type, const StrBuf& out) {
    if (out.overflow) {
        EW_LOG_WARN("page larger than EW_CAP_RENDER (%u bytes): answered 500", static_cast<unsigned>(sizeof render_));
        c->respond_error(500, "edgeway: this page is larger than its rendering buffer (EW_CAP_RENDER).", "server_error",
                         "page_too_large");
        return;
    }
    if (c->respond_from(status, content_type, out.data, out.len, "")) render_owner_ = c;
}

void LocalApi::serve_models(ClientConn* c) {
    if (!render_free(c)) return;
    const Config& cfg = *ctx_->cfg;
    const char* names[EW_CAP_ENDPOINTS * EW_CAP_MODELS_PER_ENDPOINT + EW_CAP_FALLBACK_RULES];
    size_t n = 0;
    for (uint32_t e = 0; e < cfg.endpoint_count; e++)
        for (uint32_t m = 0; m < cfg.endpoints[e].model_count; m++) {
            const char* name = cfg.endpoints[e].models[m];
            bool dup = false;
            for (size_t k = 0; k < n && !dup; k++) dup = strcmp(names[k], name) == 0;
            if (!dup) names[n++] = name;
        }
    StrBuf out(render_, sizeof render_);
    openai_models_body(&out, names, n);
    send_render(c, 200, "application/json", out);
    c->finish_response();
}

// GET /v1/models/{id}: the id is the rest of the path, percent-decoded (the SDKs encode a
// '/' in a name as %2F), checked like a requested model name.
void LocalApi::serve_model(ClientConn* c) {
    const RequestParser& r = c->request();
    const char* p = r.path + 11;
    char id[EW_CAP_MODEL_NAME + 1];
    size_t n = 0;
    bool bad = false;
    for (; *p && *p != '?' && !bad; p++) {
        char ch = *p;
        if (ch == '%') {
            int v = 0;
            for (int k = 1; k <= 2; k++) {
                char x = p[k];
                int d = (x >= '0' && x <= '9') ? x - '0' : (x >= 'a' && x <= 'f') ? x - 'a' + 10
                        : (x >= 'A' && x <= 'F') ? x - 'A' + 10 : -1;
                if (d < 0) bad = true;
                v = v * 16 + (d < 0 ? 0 : d);
            }
            if (bad) break;
            ch = static_cast<char>(v);
            p += 2;
        }
        if (n == sizeof id) {
            bad = true;
            break;
        }
        id[n++] = ch;
    }
    StrBuf out(render_, sizeof render_);
    if (bad || model_name_check(id, n) != ModelNameCheck::ok) {
        c->respond_error(400, "The model id in the path is not a valid model name.", "invalid_request_error",
                         "invalid_model_id");
        c->finish_response();
        return;
    }
    id[n] = '\0';
    if (!router_model_known(*ctx_->cfg, id)) {
        char msg[EW_CAP_MODEL_NAME + 96];
        StrBuf m(msg, sizeof msg);
        m.appendf("The model `%s` does not exist or is not served by this edgeway agent.", id);
        c->respond_error(404, msg, "invalid_request_error", "model_not_found");
        c->finish_response();
        return;
    }
    out.append("{\"id\":\"");
    out.append_json_escaped(id);
    out.append("\",\"object\":\"model\",\"created\":0,\"owned_by\":\"edgeway\"}");
    c->respond(200, "application/json", out.data, out.len, "");
    c->finish_response();
}

void LocalApi::serve_admin(ClientConn* c, uint64_t now_ms) {
    const RequestParser& r = c->request();
    const Config& cfg = *ctx_->cfg;
    bool get = strcmp(r.method, "GET") == 0 || strcmp(r.method, "HEAD") == 0;
    char small[160];
    StrBuf brief(small, sizeof small);
    bool page = path_is(r.path, "/status") || path_is(r.path, "/metrics") || path_is(r.path, "/");
    if (get && page && !render_free(c)) return;
    StrBuf out(render_, sizeof render_);
    MetricsView view{&cfg, ctx_->health, ctx_->params, ctx_->metrics, now_ms, started_ms_};
    NameView names[EW_CAP_ENDPOINTS];
    if (ctx_->names) {
        ctx_->names->describe(cfg.endpoint_count, names);
        pal::DnsHeap h = pal::dns_heap();
        view.names = names;
        view.dns_heap_bytes = h.in_use;
        view.dns_heap_peak_bytes = h.peak;
    }
    if (get && path_is(r.path, "/metrics")) {
        pal::ProcessStats ps;
        pal::process_stats(&ps);
        view.process.resident_bytes = ps.resident_bytes;
        view.process.start_wall_ms = ps.start_wall_ms;
        view.process.open_fds = ps.open_fds;
        view.process.max_fds = ps.max_fds;
        view.process.wall_ms = pal::wall_ms();
    }
    if (!get) {
        c->respond_error(405, "Use GET on this path.", "invalid_request_error", "method_not_allowed",
                         "Allow: GET, HEAD\r\n");
    } else if (path_is(r.path, "/healthz")) {
        brief.append("{\"status\":\"ok\"}");
        c->respond(200, "application/json", brief.data, brief.len, "");
    } else if (path_is(r.path, "/readyz")) {
        size_t n = endpoints_serving(now_ms);
        brief.appendf("{\"ready\":%s,\"endpoints_serving\":%zu,\"endpoints\":%u}", n ? "true" : "false", n,
                      cfg.endpoint_count);
        c->respond(n ? 200 : 503, "application/json", brief.data, brief.len, n ? "" : "Retry-After: 1\r\n");
    } else if (path_is(r.path, "/status")) {
        metrics_render_status(view, &out);
        send_render(c, 200, "application/json", out);
    } else if (path_is(r.path, "/metrics")) {
        metrics_render_prometheus(view, &out);
        telemetry_render_metrics(ctx_->metrics->telemetry, &out);  // nothing without [telemetry]
        send_render(c, 200, "text/plain; version=0.0.4; charset=utf-8", out);
    } else if (path_is(r.path, "/")) {
        status_page_render(view, &out);
        send_render(c, 200, "text/html; charset=utf-8", out);
    } else {
        c->respond_error(404, "No such path on this edgeway agent.", "invalid_request_error", "not_found");
    }
    c->finish_response();
}

}  // namespace ew
