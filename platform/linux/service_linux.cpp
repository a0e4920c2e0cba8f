// The service manager's notify protocol, spoken directly (sd_notify(3), "for daemons that do
// not link libsystemd"): each state is one datagram of "KEY=VALUE\n" lines on the AF_UNIX
// socket named by $NOTIFY_SOCKET. A name starting with '@' is in the abstract namespace.
// The socket is non-blocking: a full queue drops the message (the next watchdog ping
// follows), the loop never waits for systemd. Without $NOTIFY_SOCKET every call is a no-op.
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <stdio.h>

#include "pal.h"

namespace pal {
namespace {

struct Notifier {
    bool tried = false;  // $NOTIFY_SOCKET looked at (once: the manager does not change it)
    int fd = -1;
    sockaddr_un addr{};
    socklen_t addr_len = 0;
};
Notifier g_notify;

// Parses $NOTIFY_SOCKET and opens the sending socket. False: no manager, or one we cannot
// reach (a vsock: address, a name too long); either way, nothing to send to.
bool open_notifier(Notifier* n) {
    const char* name = ::getenv("NOTIFY_SOCKET");
    if (!name || (name[0] != '/' && name[0] != '@')) return false;
    size_t len = strlen(name);
    if (len < 2 || len > sizeof n->addr.sun_path) return false;
    if (name[0] == '/' && len == sizeof n->addr.sun_path) return false;  // no room for the NUL
    n->addr.sun_family = AF_UNIX;
    memcpy(n->addr.sun_path, name, len);
    if (name[0] == '@') n->addr.sun_path[0] = '\0';  // abstract: no terminating NUL either
    n->addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len + (name[0] == '/' ? 1 : 0));
    n->fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    return n->fd >= 0;
}

uint64_t monotonic_usec() {
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0;
    return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

// A decimal environment value, all digits; 0 when absent or malformed.
uint64_t env_u64(const char* name) {
    const char* v = ::getenv(name);
    if (!v || !*v) return 0;
    uint64_t x = 0;
    for (const char* p = v; *p; p++) {
        if (*p < '0' || *p > '9') return 0;
        uint64_t d = static_cast<uint64_t>(*p - '0');
        if (x > (UINT64_MAX - d) / 10) return 0;
        x = x * 10 + d;
    }
    return x;
}

}  // namespace

void service_notify(ServiceState state, const char* status) {
    Notifier& n = g_notify;
    if (!n.tried) {
        n.tried = true;
        open_notifier(&n);
    }
    if (n.fd < 0) return;
    char msg[256];
    int n_head = 0;
    switch (state) {
    case ServiceState::ready: n_head = snprintf(msg, sizeof msg, "READY=1\n"); break;
    case ServiceState::reloading:
        n_head = snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%llu\n",
                          static_cast<unsigned long long>(monotonic_usec()));
        break;
    case ServiceState::stopping: n_head = snprintf(msg, sizeof msg, "STOPPING=1\n"); break;
    case ServiceState::watchdog: n_head = snprintf(msg, sizeof msg, "WATCHDOG=1\n"); break;
    }
    size_t len = n_head > 0 ? static_cast<size_t>(n_head) : 0;
    if (status && status[0] && len + 9 < sizeof msg) {
        memcpy(msg + len, "STATUS=", 7);
        len += 7;
        // One line: a newline in the text would start another KEY=VALUE assignment.
        for (const char* p = status; *p && len + 1 < sizeof msg; p++) msg[len++] = *p == '\n' ? ' ' : *p;
        msg[len++] = '\n';
    }
    ssize_t r;
    do {
        r = ::sendto(n.fd, msg, len, MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&n.addr), n.addr_len);
    } while (r < 0 && errno == EINTR);
}

uint64_t service_watchdog_interval_ms() {
    uint64_t usec = env_u64("WATCHDOG_USEC");
    if (usec == 0) return 0;
    // sd_watchdog_enabled(3): WATCHDOG_PID, when set, names the process the watchdog is for.
    if (::getenv("WATCHDOG_PID")) {
        uint64_t pid = env_u64("WATCHDOG_PID");
        if (pid != static_cast<uint64_t>(::getpid())) return 0;
    }
    // sd_watchdog_enabled(3) recommends pinging at half the interval.
    uint64_t half_ms = usec / 2000;
    return half_ms ? half_ms : 1;
}

}  // namespace pal
