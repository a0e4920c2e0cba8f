// pal::poll for Linux. Two back-ends, chosen at build time (CMake EW_LINUX_POLL):
//   epoll (default)  the kernel keeps each socket's interest between calls: a call passes
//                    only the changes (epoll_ctl) and waits in O(ready), so parked or quiet
//                    sockets cost nothing per wake-up;
//   poll             poll(2) with the whole set every call, O(sockets) in the kernel.
// Both take the loop's full list each call (the PAL interface is the same as lwIP's): the
// epoll one compares it with what it registered last time, in user space.
#include "pal.h"
#include "pal_poll_linux.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#if EW_PAL_POLL_KEEPS_INTEREST
#include <sys/epoll.h>
#endif

#include "core/caps.h"  // EW_PAL_MAX_POLL, tied to the loop's pollables there

namespace pal {
namespace {

uint16_t from_poll(short re) {
    uint16_t out = 0;
    if (re & (POLLIN | POLLPRI)) out |= kIn;
    if (re & POLLOUT) out |= kOut;
    if (re & (POLLERR | POLLNVAL)) out |= kErr;
    if (re & POLLHUP) out |= kHup;
    return out;
}

struct pollfd g_pollfds[EW_PAL_MAX_POLL];

int poll_all(PollItem* items, size_t count, int timeout_ms) {
    for (size_t i = 0; i < count; ++i) {
        short ev = 0;
        if (items[i].events & kIn) ev |= POLLIN;
        if (items[i].events & kOut) ev |= POLLOUT;
        g_pollfds[i].fd = items[i].sock;  // negative: ignored by poll(2)
        g_pollfds[i].events = ev;
        g_pollfds[i].revents = 0;
    }
    int rc = ::poll(g_pollfds, count, timeout_ms);
    if (rc < 0) {
        for (size_t i = 0; i < count; ++i) items[i].revents = 0;
        return errno == EINTR ? 0 : -1;
    }
    for (size_t i = 0; i < count; ++i) items[i].revents = from_poll(g_pollfds[i].revents);
    return rc;
}

#if EW_PAL_POLL_KEEPS_INTEREST

// What is registered for each descriptor number (below EW_PAL_EPOLL_FDS; a larger one makes
// that call use poll(2) instead, correct and slower), and where it sits in this call's list.
struct Reg {
    uint16_t events;  // registered interest (kIn/kOut); 0 = not registered
    uint32_t seen;    // the call that listed it last
    uint32_t index;   // its position in that call's items
};
Reg g_reg[EW_PAL_EPOLL_FDS];
int g_registered[EW_PAL_MAX_POLL + EW_PAL_DNS_SOCKETS];  // descriptors with events != 0
size_t g_registered_n = 0;
uint32_t g_call = 0;
int g_epfd = -1;
struct epoll_event g_ready[EW_PAL_MAX_POLL];

uint32_t to_epoll(uint16_t ev) {
    uint32_t e = 0;
    if (ev & kIn) e |= EPOLLIN;
    if (ev & kOut) e |= EPOLLOUT;
    return e;
}

// closing: the descriptor is about to be closed, which ends its registration by itself.
void unregister(size_t pos, bool closing) {
    int fd = g_registered[pos];
    if (!closing) (void)epoll_ctl(g_epfd, EPOLL_CTL_DEL, fd, nullptr);  // ENOENT/EBADF: already gone
    g_reg[fd].events = 0;
    g_registered[pos] = g_registered[--g_registered_n];
}

// Brings the kernel's registration of fd to `ev`. False when the kernel refused.
bool register_fd(int fd, uint16_t ev) {
    Reg& r = g_reg[fd];
    if (r.events == ev) return true;
    struct epoll_event e;
    memset(&e, 0, sizeof e);
    e.events = to_epoll(ev);
    e.data.fd = fd;
    if (r.events != 0) {
        if (epoll_ctl(g_epfd, EPOLL_CTL_MOD, fd, &e) == 0 || (errno == ENOENT && epoll_ctl(g_epfd, EPOLL_CTL_ADD, fd, &e) == 0)) {
            r.events = ev;
            return true;
        }
        return false;
    }
    if (g_registered_n == sizeof g_registered / sizeof g_registered[0]) return false;
    if (epoll_ctl(g_epfd, EPOLL_CTL_ADD, fd, &e) != 0 && !(errno == EEXIST && epoll_ctl(g_epfd, EPOLL_CTL_MOD, fd, &e) == 0))
        return false;
    r.events = ev;
    g_registered[g_registered_n++] = fd;
    return true;
}

#endif  // EW_PAL_POLL_KEEPS_INTEREST

}  // namespace

#if EW_PAL_POLL_KEEPS_INTEREST

void poll_forget(Socket s, bool closing) {
    if (s < 0 || s >= EW_PAL_EPOLL_FDS) return;
    g_reg[s].seen = 0;  // an event still queued for it is not delivered
    if (g_reg[s].events == 0) return;
    for (size_t i = 0; i < g_registered_n; i++)
        if (g_registered[i] == s) {
            unregister(i, closing);
            return;
        }
}

int poll(PollItem* items, size_t count, int timeout_ms) {
    if (count > EW_PAL_MAX_POLL) {
        errno = EINVAL;
        return -1;
    }
    if (g_epfd < 0) g_epfd = epoll_create1(EPOLL_CLOEXEC);
    if (g_epfd < 0) return poll_all(items, count, timeout_ms);
    if (++g_call == 0) g_call = 1;  // 0 means "never listed"
    // This call's list: register what changed, remember where each descriptor is.
    for (size_t i = 0; i < count; i++) {
        items[i].revents = 0;
        int fd = items[i].sock;
        uint16_t ev = static_cast<uint16_t>(items[i].events & (kIn | kOut));
        if (fd < 0 || ev == 0) continue;
        if (fd >= EW_PAL_EPOLL_FDS || g_reg[fd].seen == g_call) return poll_all(items, count, timeout_ms);
        if (!register_fd(fd, ev)) return poll_all(items, count, timeout_ms);
        g_reg[fd].seen = g_call;
        g_reg[fd].index = static_cast<uint32_t>(i);
    }
    // Registered before and not listed now: nobody waits on it any more.
    for (size_t pos = 0; pos < g_registered_n;) {
        if (g_reg[g_registered[pos]].seen != g_call)
            unregister(pos, false);
        else
            pos++;
    }
    int n = epoll_wait(g_epfd, g_ready, EW_PAL_MAX_POLL, timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -1;
    int ready = 0;
    for (int k = 0; k < n; k++) {
        int fd = g_ready[k].data.fd;
        if (fd < 0 || fd >= EW_PAL_EPOLL_FDS || g_reg[fd].seen != g_call) continue;
        uint32_t e = g_ready[k].events;
        uint16_t out = 0;
        if (e & (EPOLLIN | EPOLLPRI)) out |= kIn;
        if (e & EPOLLOUT) out |= kOut;
        if (e & EPOLLERR) out |= kErr;
        if (e & (EPOLLHUP | EPOLLRDHUP)) out |= kHup;
        PollItem& it = items[g_reg[fd].index];
        if (it.revents == 0 && out != 0) ready++;
        it.revents |= out;
    }
    return ready;
}

#else

void poll_forget(Socket, bool) {}

int poll(PollItem* items, size_t count, int timeout_ms) {
    if (count > EW_PAL_MAX_POLL) {
        errno = EINVAL;
        return -1;
    }
    return poll_all(items, count, timeout_ms);
}

#endif

}  // namespace pal
