// Heap per live TLS connection, measured with edgeway's own TLS layer (ew::TlsSession).
// Not a test: bench/tls_footprint.sh runs it against a local TLS server for each build
// (Debian 2.28 dynamic, 3.6 dynamic, the lean static one).
//
//   tls_heap HOST PORT CA_FILE N
//
// Opens N connections at once, completes each handshake (and takes the TLS 1.3 ticket, as
// a parked connection would), then reports glibc's heap in use (mallinfo2) before and after,
// divided by N, and again after the N sessions are freed (nothing must stay behind).
// Output, one line: version=TLSv1.3 n=16 per_conn_bytes=... config_bytes=... leaked_bytes=...
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "net/tls.h"
#include "pal.h"

namespace {

size_t heap_in_use() { return mallinfo2().uordblks; }

constexpr int kMax = 64;
ew::TlsSession g_sessions[kMax];
pal::Socket g_socks[kMax];

}  // namespace

int main(int argc, char** argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: tls_heap HOST PORT CA_FILE N\n");
        return 2;
    }
    int n = atoi(argv[4]);
    if (n < 1 || n > kMax) {
        fprintf(stderr, "N must be 1..%d\n", kMax);
        return 2;
    }
    pal::Addr addr;
    if (!pal::parse_addr("127.0.0.1", static_cast<uint16_t>(atoi(argv[2])), &addr)) return 2;
    size_t h0 = heap_in_use();
    static ew::TlsClientConfig cfg;
    ew::TlsClientOptions o;
    o.ca_file = argv[3];
    if (cfg.setup(o) != 0) {
        fprintf(stderr, "setup: %s\n", cfg.error_text());
        return 1;
    }
    size_t h1 = heap_in_use();
    // Drive every handshake (then its ticket) to the end, bounded in time.
    uint64_t end = pal::now_ms() + 20000;
    int done = 0;
    bool finished[kMax] = {};
    size_t per_conn = 0, after_first = 0, after_second = 0;
    char ver[16] = "";
    int resumed = 0;
    // Two rounds: the first leaves the saved sessions (tickets) and Mbed TLS's lazily made
    // state behind; the second must then leave nothing more (no growth = no leak).
    for (int round = 0; round < 2; round++) {
    for (int i = 0; i < n; i++) {
        int err = 0;
        g_socks[i] = pal::tcp_connect(addr, &err);
        if (g_socks[i] == pal::kNoSocket || g_sessions[i].init(&cfg, g_socks[i], argv[1]) != ew::TlsStatus::ok) {
            fprintf(stderr, "connect %d failed\n", i);
            return 1;
        }
    }
    while (done < n && pal::now_ms() < end) {
        pal::PollItem items[kMax];
        size_t k = 0;
        for (int i = 0; i < n; i++) {
            if (finished[i]) continue;
            ew::TlsSession& s = g_sessions[i];
            ew::TlsStatus st = s.handshake_done() ? s.poll_post_handshake() : s.handshake();
            if (st == ew::TlsStatus::error || st == ew::TlsStatus::closed) {
                fprintf(stderr, "connection %d: %s\n", i, s.error_text());
                return 1;
            }
            // A server may send no ticket after a resumed handshake (Node does not).
            if (s.handshake_done() && (!s.ticket_expected() || s.resumed())) {
                finished[i] = true;
                done++;
                continue;
            }
            items[k++] = pal::PollItem{g_socks[i], st == ew::TlsStatus::want_write ? pal::kOut : pal::kIn, 0};
        }
        if (k) pal::poll(items, k, 100);
    }
    if (done < n) {
        fprintf(stderr, "only %d of %d handshakes finished\n", done, n);
        return 1;
    }
    size_t h2 = heap_in_use();
    if (round == 0) {
        snprintf(ver, sizeof ver, "%s", g_sessions[0].version());
        per_conn = (h2 - h1) / static_cast<size_t>(n);
    } else {
        for (int i = 0; i < n; i++) resumed += g_sessions[i].resumed() ? 1 : 0;
    }
    for (int i = 0; i < n; i++) {
        g_sessions[i].free();
        pal::close(g_socks[i]);
        finished[i] = false;
    }
    (round == 0 ? after_first : after_second) = heap_in_use();
    done = 0;
    end = pal::now_ms() + 20000;
    }
    printf("version=%s n=%d per_conn_bytes=%zu config_bytes=%zu kept_after_round1=%zd growth_round2=%zd "
           "resumed_round2=%d\n",
           ver, n, per_conn, h1 - h0, static_cast<ssize_t>(after_first) - static_cast<ssize_t>(h1),
           static_cast<ssize_t>(after_second) - static_cast<ssize_t>(after_first), resumed);
    return 0;
}
