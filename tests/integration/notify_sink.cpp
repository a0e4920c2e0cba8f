// Test helper: plays systemd's end of the notify protocol (sd_notify(3)). Binds an AF_UNIX
// datagram socket (a path, or "@name" in the abstract namespace), prints "BOUND" once, then
// one line per datagram received:
//
//   MSG <CLOCK_MONOTONIC at receipt, µs> <sender pid> <payload, "\n" written as the two chars \n>
//
// The sender pid comes from SCM_CREDENTIALS, as systemd checks it (NotifyAccess=main).
// Exits after max_seconds (default 120) or when stdout goes away. Node has no unix datagram
// sockets; this is the smallest thing that has them.
//
//   notify_sink SOCKET [max_seconds]
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static unsigned long long monotonic_us() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<unsigned long long>(ts.tv_sec) * 1000000ull + static_cast<unsigned long long>(ts.tv_nsec) / 1000;
}

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: notify_sink SOCKET [max_seconds]\n");
        return 2;
    }
    const char* name = argv[1];
    long max_s = argc > 2 ? strtol(argv[2], nullptr, 10) : 120;
    size_t len = strlen(name);
    sockaddr_un addr{};
    if (len < 2 || len >= sizeof addr.sun_path) {
        fprintf(stderr, "notify_sink: bad socket name\n");
        return 2;
    }
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, name, len);
    socklen_t alen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
    if (name[0] == '@') {
        addr.sun_path[0] = '\0';
    } else {
        unlink(name);
        alen++;
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0 ||
        bind(fd, reinterpret_cast<sockaddr*>(&addr), alen) != 0) {
        fprintf(stderr, "notify_sink: %s: %s\n", name, strerror(errno));
        return 1;
    }
    printf("BOUND\n");
    fflush(stdout);
    unsigned long long end = monotonic_us() + static_cast<unsigned long long>(max_s) * 1000000ull;
    for (;;) {
        unsigned long long now = monotonic_us();
        if (now >= end) break;
        pollfd p{fd, POLLIN, 0};
        int r = poll(&p, 1, static_cast<int>((end - now) / 1000 + 1));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;
        char buf[4096];
        union {
            cmsghdr h;
            char space[CMSG_SPACE(sizeof(ucred))];
        } ctl;
        iovec iov{buf, sizeof buf - 1};
        msghdr m{};
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = &ctl;
        m.msg_controllen = sizeof ctl;
        ssize_t n = recvmsg(fd, &m, 0);
        if (n < 0) continue;
        long pid = -1;
        for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
                ucred cr;
                memcpy(&cr, CMSG_DATA(c), sizeof cr);
                pid = cr.pid;
            }
        }
        printf("MSG %llu %ld ", monotonic_us(), pid);
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n')
                fputs("\\n", stdout);
            else if (buf[i] == '\\')
                fputs("\\\\", stdout);
            else
                putchar(static_cast<unsigned char>(buf[i]) < 0x20 ? '?' : buf[i]);
        }
        putchar('\n');
        if (fflush(stdout) != 0) break;
    }
    if (name[0] != '@') unlink(name);
    return 0;
}
