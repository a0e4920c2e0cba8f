// The Linux port of the PAL, network half: POSIX sockets (non-blocking, close-on-exec),
// name resolution; poll in pal_poll_linux.cpp. The host half is platform/posix/pal_host.cpp.
// Errors are errno values; pal::resolve may also return a negative getaddrinfo code
// (EAI_*), which pal::strerror understands too.
#include "pal.h"
#include "pal_poll_linux.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <sys/resource.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

// Largest number of sockets one pal::poll call may carry (a static pollfd table).
#include "core/caps.h"  // EW_PAL_MAX_POLL, tied to the loop's pollables there
#include "linux/pal_hosts_file.h"

namespace pal {
namespace {


// Fills a sockaddr from an Addr; returns its length, 0 for a bad family.
socklen_t to_sockaddr(const Addr& a, struct sockaddr_storage* ss) {
    memset(ss, 0, sizeof(*ss));
    if (a.family == 4) {
        auto* sin = reinterpret_cast<struct sockaddr_in*>(ss);
        sin->sin_family = AF_INET;
        sin->sin_port = htons(a.port);
        memcpy(&sin->sin_addr, a.bytes, 4);
        return sizeof(*sin);
    }
    if (a.family == 6) {
        auto* sin6 = reinterpret_cast<struct sockaddr_in6*>(ss);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(a.port);
        memcpy(&sin6->sin6_addr, a.bytes, 16);
        return sizeof(*sin6);
    }
    return 0;
}

bool from_sockaddr(const struct sockaddr* sa, Addr* out) {
    memset(out, 0, sizeof(*out));
    if (sa->sa_family == AF_INET) {
        const auto* sin = reinterpret_cast<const struct sockaddr_in*>(sa);
        out->family = 4;
        out->port = ntohs(sin->sin_port);
        memcpy(out->bytes, &sin->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const auto* sin6 = reinterpret_cast<const struct sockaddr_in6*>(sa);
        out->family = 6;
        out->port = ntohs(sin6->sin6_port);
        memcpy(out->bytes, &sin6->sin6_addr, 16);
        return true;
    }
    return false;
}

void set_err(int* err, int value) {
    if (err) *err = value;
}

void set_nodelay(int fd) {
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}


}  // namespace

// Open descriptors: the entries of /proc/self/fd (scrape time only), and RLIMIT_NOFILE.
void port_fd_stats(int64_t* open_now, int64_t* limit) {
    *open_now = -1;
    *limit = -1;
    DIR* d = opendir("/proc/self/fd");
    if (d) {
        int64_t n = 0;
        while (struct dirent* e = readdir(d))
            if (e->d_name[0] != '.') n++;
        closedir(d);
        *open_now = n - 1;  // not the directory's own descriptor
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) *limit = static_cast<int64_t>(rl.rlim_cur);
}

int init() { return 0; }

bool parse_addr(const char* host, uint16_t port, Addr* out) {
    if (!host || !out) return false;
    memset(out, 0, sizeof(*out));
    out->port = port;
    if (strcmp(host, "localhost") == 0) {
        out->family = 4;
        out->bytes[0] = 127;
        out->bytes[3] = 1;
        return true;
    }
    if (inet_pton(AF_INET, host, out->bytes) == 1) {
        out->family = 4;
        return true;
    }
    // IPv6: the configuration hands hosts over without a URL's brackets.
    if (inet_pton(AF_INET6, host, out->bytes) == 1) {
        out->family = 6;
        return true;
    }
    return false;
}

int resolve(const char* host, uint16_t port, Addr* out) {
    if (!host || !out) return EINVAL;
    if (parse_addr(host, port, out)) return 0;
#if defined(EW_STATIC)
    // No NSS in a fully static binary (pal_hosts_file.cpp). EAI_* codes are negative.
    int hr = resolve_from_hosts_file("/etc/hosts", host, port, out);
    return hr < 0 ? hr : -hr;
#else
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    struct addrinfo* res = nullptr;
    int rc = getaddrinfo(host, nullptr, &hints, &res);
    if (rc != 0) return rc == EAI_SYSTEM ? (errno ? errno : EIO) : (rc < 0 ? rc : -rc);
    int result = EAI_NONAME;
    // Prefer IPv4: the common case on gateways whose IPv6 route may be missing.
    for (int pass = 0; pass < 2 && result != 0; ++pass) {
        for (struct addrinfo* ai = res; ai; ai = ai->ai_next) {
            if ((pass == 0) != (ai->ai_family == AF_INET)) continue;
            if (from_sockaddr(ai->ai_addr, out)) {
                out->port = port;
                result = 0;
                break;
            }
        }
    }
    freeaddrinfo(res);
    return result;
#endif
}

void format_addr(const Addr& a, char* buf, size_t cap) {
    if (!buf || cap == 0) return;
    char ip[INET6_ADDRSTRLEN];
    if (a.family == 4 && inet_ntop(AF_INET, a.bytes, ip, sizeof(ip))) {
        snprintf(buf, cap, "%s:%u", ip, static_cast<unsigned>(a.port));
    } else if (a.family == 6 && inet_ntop(AF_INET6, a.bytes, ip, sizeof(ip))) {
        snprintf(buf, cap, "[%s]:%u", ip, static_cast<unsigned>(a.port));
    } else {
        snprintf(buf, cap, "?");
    }
}

// Closes a socket that failed to set up; errno becomes *err.
Socket close_failed(int fd, int* err) {
    int e = errno;
    ::close(fd);
    set_err(err, e);
    return kNoSocket;
}

// A non-blocking stream socket for `a`'s family, and `a` as a sockaddr; -1 with *err set.
int stream_socket(const Addr& a, struct sockaddr_storage* ss, socklen_t* sl, int* err) {
    *sl = to_sockaddr(a, ss);
    if (*sl == 0) {
        set_err(err, EAFNOSUPPORT);
        return -1;
    }
    int fd = ::socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) set_err(err, errno);
    return fd;
}

Socket tcp_listen(const Addr& a, int backlog, int* err) {
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    int fd = stream_socket(a, &ss, &sl, err);
    if (fd < 0) return kNoSocket;
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, reinterpret_cast<struct sockaddr*>(&ss), sl) != 0 || ::listen(fd, backlog) != 0) {
        return close_failed(fd, err);
    }
    set_err(err, 0);
    return fd;
}

Socket tcp_accept(Socket listener, int* err) {
    for (;;) {
        int fd = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            set_nodelay(fd);
            set_err(err, 0);
            return fd;
        }
        if (errno == EINTR) continue;
        set_err(err, (errno == EWOULDBLOCK) ? EAGAIN : errno);
        return kNoSocket;
    }
}

Socket tcp_connect(const Addr& a, int* err) {
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    int fd = stream_socket(a, &ss, &sl, err);
    if (fd < 0) return kNoSocket;
    set_nodelay(fd);
    int rc;
    do {
        rc = ::connect(fd, reinterpret_cast<struct sockaddr*>(&ss), sl);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0 && errno != EINPROGRESS) {
        return close_failed(fd, err);
    }
    set_err(err, 0);
    return fd;
}

int tcp_connect_result(Socket s) {
    int so_error = 0;
    socklen_t len = sizeof(so_error);
    if (getsockopt(s, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) return errno;
    if (so_error != 0) return so_error;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getpeername(s, reinterpret_cast<struct sockaddr*>(&ss), &sl) != 0) {
        return errno == ENOTCONN ? EINPROGRESS : errno;
    }
    return 0;
}

IoResult send(Socket s, const void* buf, size_t len) {
    if (len == 0) return IoResult{Io::ok, 0, 0};
    for (;;) {
        ssize_t n = ::send(s, buf, len, MSG_NOSIGNAL);
        if (n >= 0) return IoResult{Io::ok, static_cast<size_t>(n), 0};
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return IoResult{Io::would_block, 0, 0};
        return IoResult{Io::error, 0, errno};
    }
}

IoResult recv(Socket s, void* buf, size_t len) {
    if (len == 0) return IoResult{Io::ok, 0, 0};
    for (;;) {
        ssize_t n = ::recv(s, buf, len, 0);
        if (n > 0) return IoResult{Io::ok, static_cast<size_t>(n), 0};
        if (n == 0) return IoResult{Io::closed, 0, 0};
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return IoResult{Io::would_block, 0, 0};
        return IoResult{Io::error, 0, errno};
    }
}

void close(Socket s) {
    if (s < 0) return;
    poll_forget(s, true);  // before the number can be reused
    ::close(s);
}

uint16_t local_port(Socket s) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(s, reinterpret_cast<struct sockaddr*>(&ss), &sl) != 0) return 0;
    Addr a;
    return from_sockaddr(reinterpret_cast<struct sockaddr*>(&ss), &a) ? a.port : 0;
}

// pal::poll: platform/linux/pal_poll_linux.cpp (epoll or poll(2)).

const char* strerror(int err) {
    if (err < 0) return gai_strerror(err);  // negative: a resolver (EAI_*) code
    return ::strerror(err);
}

}  // namespace pal
