// The Linux port's asynchronous resolver: c-ares driven by edgeway's poll loop.
// c-ares tells us which sockets it wants watched through its socket-state callback
// (ARES_OPT_SOCK_STATE_CB; ares_getsock/ares_fds are deprecated in c-ares 1.34), the loop
// polls them, and dns_process hands readiness back through ares_process_fd. No thread
// (ARES_OPT_EVENT_THREAD is never set), nothing blocks.
//
// Builds against c-ares 1.18 (Debian 12) and 1.34 (Debian 13): only calls present and not
// deprecated in both are used.
//
// Memory: c-ares allocates per channel and per query. ares_library_init_mem routes all of
// it through a counting allocator bounded at EW_PAL_DNS_HEAP_BYTES: at the bound an
// allocation fails (c-ares then reports ARES_ENOMEM for that lookup) instead of growing.
// Peak use is visible through dns_heap() and /metrics. Measured with one lookup in flight:
// ~75 KB with c-ares 1.18 (Debian 12), ~138 KB with 1.34 (Debian 13; its channel holds more
// tables); the bound leaves room for every endpoint's lookup at once.
#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "pal.h"
#include "pal_poll_linux.h"

#ifndef EW_PAL_DNS_HEAP_BYTES
#define EW_PAL_DNS_HEAP_BYTES (512 * 1024)
#endif

namespace pal {
namespace {

// ---- the bounded allocator ------------------------------------------------------------------

union BlockHead {
    size_t size;
    max_align_t align;  // keeps the payload aligned as malloc's is
};

DnsHeap g_heap = {0, 0, EW_PAL_DNS_HEAP_BYTES, 0};

bool heap_admit(size_t old_size, size_t new_size) {
    size_t next = g_heap.in_use - old_size + new_size;
    if (new_size > g_heap.cap || next > g_heap.cap) {
        g_heap.refused++;
        return false;
    }
    return true;
}

void heap_account(size_t old_size, size_t new_size) {
    g_heap.in_use = g_heap.in_use - old_size + new_size;
    if (g_heap.in_use > g_heap.peak) g_heap.peak = g_heap.in_use;
}

void* dns_malloc(size_t n) {
    if (!heap_admit(0, n)) return nullptr;
    auto* h = static_cast<BlockHead*>(::malloc(sizeof(BlockHead) + n));
    if (h == nullptr) return nullptr;
    h->size = n;
    heap_account(0, n);
    return h + 1;
}

void dns_free(void* p) {
    if (p == nullptr) return;
    BlockHead* h = static_cast<BlockHead*>(p) - 1;
    heap_account(h->size, 0);
    ::free(h);
}

void* dns_realloc(void* p, size_t n) {
    if (p == nullptr) return dns_malloc(n);
    BlockHead* h = static_cast<BlockHead*>(p) - 1;
    size_t old = h->size;
    if (!heap_admit(old, n)) return nullptr;
    auto* nh = static_cast<BlockHead*>(::realloc(h, sizeof(BlockHead) + n));
    if (nh == nullptr) return nullptr;
    nh->size = n;
    heap_account(old, n);
    return nh + 1;
}

// ---- the channel and the sockets it watches -----------------------------------------------

struct Watched {
    ares_socket_t sock;
    bool readable;
    bool writable;
};

ares_channel g_channel = nullptr;
bool g_lib_ready = false;
Watched g_socks[EW_PAL_DNS_SOCKETS];

void clear_socks() {
    for (Watched& w : g_socks) w = Watched{ARES_SOCKET_BAD, false, false};
}

void on_sock_state(void*, ares_socket_t s, int readable, int writable) {
    Watched* free_slot = nullptr;
    for (Watched& w : g_socks) {
        if (w.sock == s) {
            if (!readable && !writable) {
                // c-ares closes it next, itself: pal::poll must not keep it registered.
                poll_forget(s, false);
                w = Watched{ARES_SOCKET_BAD, false, false};
            } else {
                w.readable = readable != 0;
                w.writable = writable != 0;
            }
            return;
        }
        if (w.sock == ARES_SOCKET_BAD && free_slot == nullptr) free_slot = &w;
    }
    // A socket beyond the table is not watched: its query ends by timeout (bounded).
    if ((readable || writable) && free_slot) *free_slot = Watched{s, readable != 0, writable != 0};
}

int map_status(int st) {
    switch (st) {
    case ARES_SUCCESS: return kDnsOk;
    case ARES_ENOTFOUND:
    case ARES_ENONAME: return kDnsNotFound;
    case ARES_ENODATA: return kDnsNoData;
    case ARES_ESERVFAIL: return kDnsServFail;
    case ARES_EREFUSED: return kDnsRefused;
    case ARES_ETIMEOUT: return kDnsTimeout;
    case ARES_ECONNREFUSED: return kDnsUnreachable;
    case ARES_EBADNAME: return kDnsBadName;
    case ARES_ENOMEM: return kDnsNoMemory;
    case ARES_EDESTRUCTION:
    case ARES_ECANCELLED: return kDnsCancelled;
    default: return kDnsOther;
    }
}

struct Query {
    DnsDone done;
    void* ctx;
    uint16_t port;
};

void on_addrinfo(void* arg, int status, int, struct ares_addrinfo* res) {
    Query q = *static_cast<Query*>(arg);
    dns_free(arg);
    DnsAnswer answers[EW_PAL_DNS_ANSWERS];
    size_t n = 0;
    if (status == ARES_SUCCESS && res) {
        for (ares_addrinfo_node* ai = res->nodes; ai && n < EW_PAL_DNS_ANSWERS; ai = ai->ai_next) {
            DnsAnswer& a = answers[n];
            memset(&a, 0, sizeof a);
            a.addr.port = q.port;
            a.ttl_s = ai->ai_ttl > 0 ? static_cast<uint32_t>(ai->ai_ttl) : 0;
            if (ai->ai_family == AF_INET && ai->ai_addrlen >= sizeof(sockaddr_in)) {
                const auto* sin = reinterpret_cast<const sockaddr_in*>(ai->ai_addr);
                a.addr.family = 4;
                memcpy(a.addr.bytes, &sin->sin_addr, 4);
            } else if (ai->ai_family == AF_INET6 && ai->ai_addrlen >= sizeof(sockaddr_in6)) {
                const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(ai->ai_addr);
                a.addr.family = 6;
                memcpy(a.addr.bytes, &sin6->sin6_addr, 16);
            } else {
                continue;
            }
            bool dup = false;  // c-ares lists one node per socktype/protocol on some versions
            for (size_t j = 0; j < n && !dup; j++)
                dup = answers[j].addr.family == a.addr.family && memcmp(answers[j].addr.bytes, a.addr.bytes, 16) == 0;
            if (!dup) n++;
        }
    }
    if (res) ares_freeaddrinfo(res);
    int err = map_status(status);
    if (err == kDnsOk && n == 0) err = kDnsNoData;
    q.done(q.ctx, err, answers, err == kDnsOk ? n : 0);
}

}  // namespace

int dns_open(const char* servers) {
    dns_close();
    if (!g_lib_ready) {
        if (ares_library_init_mem(ARES_LIB_INIT_ALL, dns_malloc, dns_free, dns_realloc) != ARES_SUCCESS)
            return kDnsNoMemory;
        g_lib_ready = true;
    }
    clear_socks();
    struct ares_options o;
    memset(&o, 0, sizeof o);
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    o.sock_state_cb = on_sock_state;
    o.sock_state_cb_data = nullptr;
    o.timeout = 2000;  // per try; two tries per server bound a silent server to a few seconds
    o.tries = 2;
#ifdef ARES_OPT_QUERY_CACHE
    // c-ares >= 1.23 caches answers itself; edgeway keeps its own TTL-bounded cache and a
    // refresh or an early re-query must reach the server.
    mask |= ARES_OPT_QUERY_CACHE;
    o.qcache_max_ttl = 0;
#endif
    int rc = ares_init_options(&g_channel, &o, mask);
    if (rc != ARES_SUCCESS) {
        g_channel = nullptr;
        return map_status(rc) == kDnsNoMemory ? kDnsNoMemory : kDnsOther;
    }
    if (servers && servers[0]) {
        rc = ares_set_servers_ports_csv(g_channel, servers);
        if (rc != ARES_SUCCESS) {
            dns_close();
            return kDnsBadServers;
        }
    }
    return kDnsOk;
}

void dns_close() {
    if (g_channel == nullptr) return;
    ares_channel ch = g_channel;
    ares_destroy(ch);  // pending lookups complete with ARES_EDESTRUCTION -> kDnsCancelled
    g_channel = nullptr;
    clear_socks();
}

int dns_lookup(const char* host, uint16_t port, DnsDone done, void* ctx) {
    if (g_channel == nullptr) return kDnsUnsupported;
    if (host == nullptr || host[0] == '\0' || done == nullptr) return kDnsBadName;
    auto* q = static_cast<Query*>(dns_malloc(sizeof(Query)));
    if (q == nullptr) return kDnsNoMemory;
    *q = Query{done, ctx, port};
    struct ares_addrinfo_hints hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;     // A and AAAA
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = ARES_AI_NOSORT;  // keep the server's order; no RFC 6724 probing sockets
    ares_getaddrinfo(g_channel, host, nullptr, &hints, on_addrinfo, q);
    return kDnsOk;
}

bool dns_socket(size_t slot, Socket* s, uint16_t* events) {
    if (slot >= EW_PAL_DNS_SOCKETS || g_socks[slot].sock == ARES_SOCKET_BAD) return false;
    if (s) *s = g_socks[slot].sock;
    if (events) *events = static_cast<uint16_t>((g_socks[slot].readable ? kIn : 0) | (g_socks[slot].writable ? kOut : 0));
    return true;
}

int dns_timeout_ms() {
    if (g_channel == nullptr) return -1;
    struct timeval tv;
    struct timeval* t = ares_timeout(g_channel, nullptr, &tv);
    if (t == nullptr) return -1;
    long ms = t->tv_sec * 1000L + (t->tv_usec + 999) / 1000;
    if (ms < 0) ms = 0;
    if (ms > 3600000L) ms = 3600000L;
    return static_cast<int>(ms);
}

void dns_process(Socket readable, Socket writable) {
    if (g_channel == nullptr) return;
    ares_process_fd(g_channel, readable == kNoSocket ? ARES_SOCKET_BAD : readable,
                    writable == kNoSocket ? ARES_SOCKET_BAD : writable);
}

const char* dns_strerror(int err) {
    switch (err) {
    case kDnsOk: return "ok";
    case kDnsNotFound: return "NXDOMAIN";
    case kDnsNoData: return "no A/AAAA record";
    case kDnsServFail: return "SERVFAIL";
    case kDnsRefused: return "REFUSED";
    case kDnsTimeout: return "timeout (no answer from the DNS server)";
    case kDnsUnreachable: return "no usable DNS server (SERVFAIL, REFUSED or unreachable)";
    case kDnsBadName: return "not a valid host name";
    case kDnsNoMemory: return "resolver memory cap reached";
    case kDnsUnsupported: return "no resolver on this port";
    case kDnsCancelled: return "lookup cancelled";
    case kDnsBadServers: return "dns_servers not accepted";
    default: return "resolver error";
    }
}

DnsHeap dns_heap() { return g_heap; }

}  // namespace pal
