// The host half of a PAL port on a POSIX system: clock, entropy, log sink, files,
// environment, signals. Both the Linux port and the lwIP port (on a Linux host) use it.
// On an RTOS each function is the vendor's instead, as noted; the socket half stays.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "pal.h"

namespace pal {
namespace {

uint64_t clock_ms(clockid_t id) {
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0) return 0;
    return static_cast<uint64_t>(ts.tv_sec) * 1000u + static_cast<uint64_t>(ts.tv_nsec) / 1000000u;
}

int read_urandom(void* buf, size_t len) {
    int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    auto* p = static_cast<unsigned char*>(buf);
    int rc = 0;
    while (len > 0) {
        ssize_t n = ::read(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            rc = n < 0 ? errno : EIO;
            break;
        }
        p += n;
        len -= static_cast<size_t>(n);
    }
    ::close(fd);
    return rc;
}

volatile sig_atomic_t g_terminate = 0;
volatile sig_atomic_t g_reload = 0;

void on_terminate(int) { g_terminate = 1; }
void on_reload(int) { g_reload = 1; }

void set_handler(int sig, void (*fn)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, nullptr);
}

// sd-daemon(3): stderr is connected to the journal when $JOURNAL_STREAM is "DEVICE:INODE" of
// file descriptor 2 (a child that inherited the variable but not the stream must not match).
bool parse_u64(const char* s, const char** end, uint64_t* out) {
    uint64_t v = 0;
    const char* p = s;
    while (*p >= '0' && *p <= '9') {
        uint64_t d = static_cast<uint64_t>(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
        p++;
    }
    *end = p;
    *out = v;
    return p != s;
}

bool journal_matches_stderr() {
    const char* js = ::getenv("JOURNAL_STREAM");
    if (!js) return false;
    uint64_t dev = 0, ino = 0;
    const char* p = js;
    if (!parse_u64(p, &p, &dev) || *p++ != ':' || !parse_u64(p, &p, &ino) || *p != '\0') return false;
    struct stat st;
    if (fstat(STDERR_FILENO, &st) != 0) return false;
    return static_cast<uint64_t>(st.st_dev) == dev && static_cast<uint64_t>(st.st_ino) == ino;
}

int g_stderr_is_journal = -1;  // decided at the first line: -1 unknown, 0 no, 1 yes

}  // namespace

// RTOS: a 64-bit tick count (FreeRTOS xTaskGetTickCount, ESP-IDF esp_timer_get_time()).
uint64_t now_ms() { return clock_ms(CLOCK_MONOTONIC); }
// RTOS: the RTC or SNTP time, 0 while unknown.
uint64_t wall_ms() { return clock_ms(CLOCK_REALTIME); }

// RTOS: the hardware RNG (ESP-IDF esp_fill_random, an STM32 RNG peripheral, ...).
bool host_name(char* buf, size_t cap) {
    // RTOS: the vendor's network interface name, or false.
    if (cap == 0) return false;
    if (gethostname(buf, cap) != 0) return false;
    buf[cap - 1] = '\0';
    return buf[0] != '\0';
}

int entropy(void* buf, size_t len) {
    auto* p = static_cast<unsigned char*>(buf);
    while (len > 0) {
        // GRND_NONBLOCK: never wait for the pool at early boot; /dev/urandom then.
        ssize_t n = getrandom(p, len, GRND_NONBLOCK);
        if (n < 0) {
            if (errno == EINTR) continue;
            return read_urandom(p, len);  // ENOSYS (old kernel), EAGAIN (pool not ready)
        }
        p += n;
        len -= static_cast<size_t>(n);
    }
    return 0;
}

// RTOS: the UART or the vendor's log (ESP_LOGx by priority), one line per call.
void log_line(LogPriority priority, const char* line, size_t len) {
    if (g_stderr_is_journal < 0) g_stderr_is_journal = journal_matches_stderr() ? 1 : 0;
    char prefix[4] = {'<', static_cast<char>('0' + (static_cast<int>(priority) & 7)), '>', 0};
    // One writev(2) call: the prefix, the line and its newline reach stderr together.
    struct iovec iov[3];
    iov[0].iov_base = prefix;
    iov[0].iov_len = g_stderr_is_journal ? 3 : 0;
    iov[1].iov_base = const_cast<char*>(line);
    iov[1].iov_len = len;
    iov[2].iov_base = const_cast<char*>("\n");
    iov[2].iov_len = 1;
    while (writev(STDERR_FILENO, iov, 3) < 0 && errno == EINTR) {
    }
}

// RTOS: heap in use (e.g. xPortGetFreeHeapSize) for resident_bytes; the boot time from SNTP.
// Here: /proc/self/statm and /proc/self/stat, read at scrape time only.
void process_stats(ProcessStats* out) {
    *out = ProcessStats{};
    char buf[1024];
    int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = ::read(fd, buf, sizeof buf - 1);
        ::close(fd);
        if (n > 0) {
            buf[n] = '\0';
            unsigned long long size = 0, resident = 0;
            if (sscanf(buf, "%llu %llu", &size, &resident) == 2)
                out->resident_bytes = static_cast<int64_t>(resident) * sysconf(_SC_PAGESIZE);
        }
    }
    // Field 22 of /proc/self/stat: start time in clock ticks after boot; boot time from
    // CLOCK_REALTIME - CLOCK_BOOTTIME.
    fd = ::open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = ::read(fd, buf, sizeof buf - 1);
        ::close(fd);
        const char* p = n > 0 ? (buf[n] = '\0', strrchr(buf, ')')) : nullptr;
        unsigned long long start_ticks = 0;
        if (p) {
            // After ") " come fields 3..; the start time is field 22.
            int field = 2;
            for (const char* q = p + 1; *q && field < 22; q++)
                if (*q == ' ') {
                    field++;
                    if (field == 22) start_ticks = strtoull(q + 1, nullptr, 10);
                }
        }
        long hz = sysconf(_SC_CLK_TCK);
        if (start_ticks && hz > 0) {
            uint64_t real = clock_ms(CLOCK_REALTIME), boot = clock_ms(CLOCK_BOOTTIME);
            out->start_wall_ms = static_cast<int64_t>(real - boot + start_ticks * 1000 / static_cast<uint64_t>(hz));
        }
    }
    port_fd_stats(&out->open_fds, &out->max_fds);
}

// RTOS: a file system (SPIFFS, LittleFS, FatFS) or a configuration partition.
int read_file(const char* path, char* buf, size_t cap, size_t* len, bool* private_ok) {
    if (len) *len = 0;
    if (private_ok) *private_ok = false;
    if (!path || !buf || cap == 0) return EINVAL;
    buf[0] = '\0';
    int fd;
    do {
        fd = ::open(path, O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        ::close(fd);
        return e;
    }
    if (private_ok) *private_ok = (st.st_mode & 077) == 0;
    if (S_ISDIR(st.st_mode)) {
        ::close(fd);
        return EISDIR;
    }
    // The content must leave room for the terminating NUL.
    if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > cap - 1) {
        ::close(fd);
        return EFBIG;
    }
    size_t used = 0;
    int rc = 0;
    for (;;) {
        if (used == cap - 1) {
            char probe;  // a file that grew, or a non-regular file: is there more?
            ssize_t n = ::read(fd, &probe, 1);
            if (n < 0 && errno == EINTR) continue;
            if (n != 0) rc = n < 0 ? errno : EFBIG;
            break;
        }
        ssize_t n = ::read(fd, buf + used, cap - 1 - used);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = errno;
            break;
        }
        if (n == 0) break;
        used += static_cast<size_t>(n);
    }
    ::close(fd);
    if (rc != 0) {
        buf[0] = '\0';
        return rc;
    }
    buf[used] = '\0';
    if (len) *len = used;
    return 0;
}

namespace {

int write_all(int fd, const char* p, size_t len) {
    while (len > 0) {
        ssize_t n = ::write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno;
        if (n == 0) return EIO;
        p += n;
        len -= static_cast<size_t>(n);
    }
    return 0;
}

// fsync of the folder holding `path`, so that the rename itself is on disk.
int sync_folder(const char* path) {
    char dir[4096];
    const char* slash = strrchr(path, '/');
    size_t n = slash == nullptr ? 1 : slash == path ? 1 : static_cast<size_t>(slash - path);
    if (n >= sizeof dir) return ENAMETOOLONG;
    if (slash == nullptr) {
        dir[0] = '.';
    } else {
        memcpy(dir, slash == path ? "/" : path, n);
    }
    dir[n] = '\0';
    int fd;
    do {
        fd = ::open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return errno;
    int rc = ::fsync(fd) == 0 ? 0 : errno;
    ::close(fd);
    return rc == EINVAL ? 0 : rc;  // some file systems cannot sync a folder: the rename stands
}

}  // namespace

// RTOS: platform/rtos/pal_files_rtos.cpp (board hooks onto LittleFS, FatFS, NVS ...).
int write_file_atomic(const char* path, const void* data, size_t len) {
    if (!path || !path[0] || (!data && len)) return EINVAL;
    char tmp[4096];
    size_t pl = strlen(path);
    if (pl + 5 >= sizeof tmp) return ENAMETOOLONG;
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    // A leftover of a write cut short (or anything else at that name) goes first; O_EXCL
    // then never follows a link someone put there.
    if (::unlink(tmp) != 0 && errno != ENOENT) return errno;
    int fd;
    do {
        fd = ::open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return errno;
    int rc = write_all(fd, static_cast<const char*>(data), len);
    if (rc == 0 && ::fsync(fd) != 0) rc = errno;
    if (::close(fd) != 0 && rc == 0 && errno != EINTR) rc = errno;
    if (rc == 0 && ::rename(tmp, path) != 0) rc = errno;
    if (rc != 0) {
        ::unlink(tmp);
        return rc;
    }
    return sync_folder(path);
}

// RTOS: NVS or the build's own settings.
const char* getenv(const char* name) { return name ? ::getenv(name) : nullptr; }

// RTOS: no signals; a task notification or a console command stands in for them.
void signals_install() {
    set_handler(SIGTERM, on_terminate);
    set_handler(SIGINT, on_terminate);
    set_handler(SIGHUP, on_reload);
    set_handler(SIGPIPE, SIG_IGN);
}

uint32_t signals_take() {
    uint32_t bits = 0;
    if (g_terminate) bits |= kSignalTerminate;
    if (g_reload) {
        bits |= kSignalReload;
        g_reload = 0;
    }
    return bits;
}

}  // namespace pal
