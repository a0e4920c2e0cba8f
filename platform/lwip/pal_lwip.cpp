// The lwIP port of the PAL: every socket is an lwIP socket (lwip_socket, lwip_connect,
// lwip_poll, ...), the API an RTOS build with FreeRTOS or ESP-IDF has. Built on Linux
// against Debian's liblwip (lwIP's unix port), whose options are: LWIP_COMPAT_SOCKETS 0
// (only lwip_* names; the libc ones stay the kernel's), LWIP_SOCKET_OFFSET 1,
// LWIP_SOCKET_POLL 1, errno values and struct sockaddr/pollfd from the C library.
//
// lwIP socket numbers overlap kernel fds, so nothing here may reach the kernel's
// close/poll/recv, and lwip_poll cannot wait on kernel fds: the whole agent, the local
// listener included, runs on lwIP sockets.
//
// Errors are errno values. pal::resolve returns kErrNoResolver when a name is not numeric
// and this lwIP has no DNS (LWIP_DNS 0, as in Debian's build).
extern "C" {
#include "lwipopts.h"  // first, and as C: see lwip_start.cpp
}
#include "lwip/def.h"  // PP_HTONS: this build leaves htons to the C library
#include "lwip/inet.h"
#include "lwip/sockets.h"
#if LWIP_DNS
#include "lwip/dns.h"
#include "lwip/netdb.h"
#endif

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "pal.h"

#include "core/caps.h"  // EW_PAL_MAX_POLL, tied to the loop's pollables there

namespace pal {
namespace {

constexpr int kErrNoResolver = -1;

union SockAddr {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
};

socklen_t to_sockaddr(const Addr& a, SockAddr* ss) {
    memset(ss, 0, sizeof(*ss));
    if (a.family == 4) {
        ss->in4.sin_family = AF_INET;
        ss->in4.sin_port = PP_HTONS(a.port);
        memcpy(&ss->in4.sin_addr, a.bytes, 4);
        return sizeof(ss->in4);
    }
    if (a.family == 6) {
        ss->in6.sin6_family = AF_INET6;
        ss->in6.sin6_port = PP_HTONS(a.port);
        memcpy(&ss->in6.sin6_addr, a.bytes, 16);
        return sizeof(ss->in6);
    }
    return 0;
}

void set_err(int* err, int value) {
    if (err) *err = value;
}

// A new TCP socket, non-blocking, or kNoSocket with *err set.
// Closes a socket that failed to set up; errno becomes *err.
Socket close_failed(int s, int* err) {
    int e = errno;
    lwip_close(s);
    set_err(err, e);
    return kNoSocket;
}

// A non-blocking lwIP stream socket for `a`'s family, and `a` as a sockaddr in *ss.
Socket new_socket(const Addr& a, SockAddr* out, socklen_t* sl, int* err) {
    *sl = to_sockaddr(a, out);
    if (*sl == 0) {
        set_err(err, EAFNOSUPPORT);
        return kNoSocket;
    }
    const SockAddr& ss = *out;
    int s = lwip_socket(ss.sa.sa_family, SOCK_STREAM, 0);  // lwIP takes no SOCK_NONBLOCK flag
    if (s < 0) {
        set_err(err, errno);
        return kNoSocket;
    }
    if (lwip_fcntl(s, F_SETFL, O_NONBLOCK) != 0) {
        return close_failed(s, err);
    }
    return s;
}

void set_nodelay(Socket s) {
    int one = 1;
    (void)lwip_setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

struct pollfd g_pollfds[EW_PAL_MAX_POLL];

}  // namespace

bool parse_addr(const char* host, uint16_t port, Addr* out) {
    if (!host || !out) return false;
    memset(out, 0, sizeof(*out));
    out->port = port;
    if (strcmp(host, "localhost") == 0) {  // lwIP loops 127/8 on its default netif
        out->family = 4;
        out->bytes[0] = 127;
        out->bytes[3] = 1;
        return true;
    }
    if (lwip_inet_pton(AF_INET, host, out->bytes) == 1) {
        out->family = 4;
        return true;
    }
    // IPv6: the configuration hands hosts over without a URL's brackets.
    if (lwip_inet_pton(AF_INET6, host, out->bytes) == 1) {
        out->family = 6;
        return true;
    }
    return false;
}

int resolve(const char* host, uint16_t port, Addr* out) {
    if (!host || !out) return EINVAL;
    if (parse_addr(host, port, out)) return 0;
#if LWIP_DNS
    // lwIP's resolver (DNS server set up by the port's start-up; IPv4 answers preferred).
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    struct addrinfo* res = nullptr;
    if (lwip_getaddrinfo(host, nullptr, &hints, &res) != 0 || res == nullptr) return kErrNoResolver;
    const auto* sin = reinterpret_cast<const struct sockaddr_in*>(res->ai_addr);
    memset(out, 0, sizeof(*out));
    out->family = 4;
    out->port = port;
    memcpy(out->bytes, &sin->sin_addr, 4);
    lwip_freeaddrinfo(res);
    return 0;
#else
    return kErrNoResolver;
#endif
}

void format_addr(const Addr& a, char* buf, size_t cap) {
    if (!buf || cap == 0) return;
    char ip[48];
    if (a.family == 4 && lwip_inet_ntop(AF_INET, a.bytes, ip, sizeof(ip))) {
        snprintf(buf, cap, "%s:%u", ip, static_cast<unsigned>(a.port));
    } else if (a.family == 6 && lwip_inet_ntop(AF_INET6, a.bytes, ip, sizeof(ip))) {
        snprintf(buf, cap, "[%s]:%u", ip, static_cast<unsigned>(a.port));
    } else {
        snprintf(buf, cap, "?");
    }
}

Socket tcp_listen(const Addr& a, int backlog, int* err) {
    SockAddr ss;
    socklen_t sl = 0;
    Socket s = new_socket(a, &ss, &sl, err);
    if (s == kNoSocket) return kNoSocket;
    int one = 1;
    (void)lwip_setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (lwip_bind(s, &ss.sa, sl) != 0 || lwip_listen(s, backlog) != 0) {
        return close_failed(s, err);
    }
    set_err(err, 0);
    return s;
}

Socket tcp_accept(Socket listener, int* err) {
    int s = lwip_accept(listener, nullptr, nullptr);
    if (s < 0) {
        // ENFILE: lwIP's socket table is full; lwIP has already dropped that connection.
        set_err(err, (errno == EWOULDBLOCK) ? EAGAIN : errno);
        return kNoSocket;
    }
    // Accepted lwIP sockets do not inherit O_NONBLOCK.
    if (lwip_fcntl(s, F_SETFL, O_NONBLOCK) != 0) {
        return close_failed(s, err);
    }
    set_nodelay(s);
    set_err(err, 0);
    return s;
}

Socket tcp_connect(const Addr& a, int* err) {
    SockAddr ss;
    socklen_t sl = 0;
    Socket s = new_socket(a, &ss, &sl, err);
    if (s == kNoSocket) return kNoSocket;
    set_nodelay(s);
    if (lwip_connect(s, &ss.sa, sl) != 0 && errno != EINPROGRESS) {
        return close_failed(s, err);
    }
    set_err(err, 0);
    return s;
}

int tcp_connect_result(Socket s) {
    // SO_ERROR holds the failure (a refused connect reads ECONNRESET in lwIP). Without
    // one, the socket is connected once it is writable: lwIP marks a connecting TCP socket
    // writable only when the handshake completes (its getpeername succeeds earlier).
    int so_error = 0;
    socklen_t len = sizeof(so_error);
    if (lwip_getsockopt(s, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) return errno;
    if (so_error != 0) return so_error;
    struct pollfd p = {s, POLLOUT, 0};
    int n = lwip_poll(&p, 1, 0);
    if (n < 0) return EBADF;
    if (p.revents & POLLERR) return ECONNRESET;
    return (p.revents & POLLOUT) ? 0 : EINPROGRESS;
}

IoResult send(Socket s, const void* buf, size_t len) {
    if (len == 0) return IoResult{Io::ok, 0, 0};
    ssize_t n = lwip_send(s, buf, len, MSG_DONTWAIT);  // lwIP raises no SIGPIPE
    if (n >= 0) return IoResult{Io::ok, static_cast<size_t>(n), 0};
    if (errno == EAGAIN || errno == EWOULDBLOCK) return IoResult{Io::would_block, 0, 0};
    return IoResult{Io::error, 0, errno};
}

IoResult recv(Socket s, void* buf, size_t len) {
    if (len == 0) return IoResult{Io::ok, 0, 0};
    ssize_t n = lwip_recv(s, buf, len, MSG_DONTWAIT);
    if (n > 0) return IoResult{Io::ok, static_cast<size_t>(n), 0};
    if (n == 0) return IoResult{Io::closed, 0, 0};
    if (errno == EAGAIN || errno == EWOULDBLOCK) return IoResult{Io::would_block, 0, 0};
    return IoResult{Io::error, 0, errno};
}

// lwIP's sockets in use (it has no descriptor count: each slot of its table is asked), and
// the table's size.
void port_fd_stats(int64_t* open_now, int64_t* limit) {
    int64_t n = 0;
    for (int s = LWIP_SOCKET_OFFSET; s < LWIP_SOCKET_OFFSET + MEMP_NUM_NETCONN; s++)
        if (lwip_fcntl(s, F_GETFL, 0) >= 0) n++;
    *open_now = n;
    *limit = MEMP_NUM_NETCONN;
}

void close(Socket s) {
    if (s >= 0) lwip_close(s);  // never the kernel's close: the numbers overlap
}

uint16_t local_port(Socket s) {
    SockAddr ss;
    socklen_t sl = sizeof(ss);
    if (lwip_getsockname(s, &ss.sa, &sl) != 0) return 0;
    if (ss.sa.sa_family == AF_INET) return PP_NTOHS(ss.in4.sin_port);
    if (ss.sa.sa_family == AF_INET6) return PP_NTOHS(ss.in6.sin6_port);
    return 0;
}

int poll(PollItem* items, size_t count, int timeout_ms) {
    if (count > EW_PAL_MAX_POLL) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < count; ++i) {
        short ev = 0;
        if (items[i].events & kIn) ev |= POLLIN;
        if (items[i].events & kOut) ev |= POLLOUT;
        g_pollfds[i].fd = items[i].sock;  // negative: ignored by lwip_poll
        g_pollfds[i].events = ev;
        g_pollfds[i].revents = 0;
    }
    // lwIP waits on a semaphore: signals do not interrupt it (the agent's loop wakes at least
    // once a second to take them). It never reports POLLHUP: a peer's FIN reads as POLLIN
    // and then recv() == 0, a reset as POLLERR.
    int rc = lwip_poll(g_pollfds, static_cast<nfds_t>(count), timeout_ms);
    if (rc < 0) {
        // lwIP stops at the first socket that is not open and marks it POLLNVAL: report that
        // one as an error so its owner closes it, instead of failing the whole call forever.
        int bad = 0;
        for (size_t i = 0; i < count; ++i) {
            items[i].revents = (g_pollfds[i].revents & POLLNVAL) ? kErr : 0;
            bad += items[i].revents ? 1 : 0;
        }
        return bad > 0 ? bad : -1;
    }
    for (size_t i = 0; i < count; ++i) {
        short re = g_pollfds[i].revents;
        uint16_t out = 0;
        if (re & POLLIN) out |= kIn;
        if (re & POLLOUT) out |= kOut;
        if (re & (POLLERR | POLLNVAL)) out |= kErr;
        if (re & POLLHUP) out |= kHup;
        items[i].revents = out;
    }
    return rc;
}

// No asynchronous resolver on this port: endpoints must use numeric hosts (the agent
// parses them with parse_addr and never asks). A name is reported as unresolvable with
// dns_strerror(kDnsUnsupported), and so shown in /status.
int dns_open(const char*) { return kDnsUnsupported; }
void dns_close() {}
int dns_lookup(const char*, uint16_t, DnsDone, void*) { return kDnsUnsupported; }
bool dns_socket(size_t, Socket*, uint16_t*) { return false; }
int dns_timeout_ms() { return -1; }
void dns_process(Socket, Socket) {}
const char* dns_strerror(int err) {
    if (err == kDnsUnsupported) return "this port resolves numeric hosts only (use an IP address in the url)";
    return err == kDnsOk ? "ok" : "resolver error";
}
DnsHeap dns_heap() { return DnsHeap{0, 0, 0, 0}; }

const char* strerror(int err) {
    if (err == kErrNoResolver)
        return LWIP_DNS ? "name not resolved" : "not a numeric address (this lwIP build has no DNS)";
    return ::strerror(err);  // lwIP reports errno values of the C library
}

}  // namespace pal
