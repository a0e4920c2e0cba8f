// The local HTTP surface: routing of each complete request. POST /v1/* goes to the
// client's exchange; GET /v1/models, /healthz, /readyz, /status, /metrics and / are
// answered here from the shared context.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/caps.h"
#include "core/strbuf.h"
#include "net/context.h"

namespace ew {

class ClientConn;

class LocalApi {
public:
    void init(const NetContext* ctx, uint64_t started_ms) {
        ctx_ = ctx;
        started_ms_ = started_ms;
    }
    void serve(ClientConn* c, uint64_t now_ms);
    // Endpoints that can take a request now (readiness).
    size_t endpoints_serving(uint64_t now_ms) const;

private:
    bool authorized(const ClientConn* c) const;
    void serve_models(ClientConn* c);
    void serve_model(ClientConn* c);
    void serve_admin(ClientConn* c, uint64_t now_ms);
    bool render_free(ClientConn* c);
    void send_render(ClientConn* c, uint16_t status, const char* content_type, const StrBuf& out);

    const NetContext* ctx_ = nullptr;
    uint64_t started_ms_ = 0;
    char render_[EW_CAP_RENDER];  // one thread: one rendering buffer serves every client
    ClientConn* render_owner_ = nullptr;  // a client still sending a page from render_
};

}  // namespace ew
