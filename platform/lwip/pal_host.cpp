// The non-network half of the lwIP port: clock, entropy, log, files, environment, signals.
// lwIP has none of these, so on this Linux host they are POSIX calls. On an RTOS each one
// is the vendor's instead, as noted per function; the socket half (pal_lwip.cpp) stays.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
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

}  // namespace

// RTOS: a 64-bit tick count (FreeRTOS xTaskGetTickCount, ESP-IDF esp_timer_get_time()).
uint64_t now_ms() { return clock_ms(CLOCK_MONOTONIC); }
// RTOS: the RTC or SNTP time, 0 while unknown.
uint64_t wall_ms() { return clock_ms(CLOCK_REALTIME); }

// RTOS: the hardware RNG (ESP-IDF esp_fill_random, an STM32 RNG peripheral, ...).
int entropy(void* buf, size_t len) {
    auto* p = static_cast<unsigned char*>(buf);
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        p += n;
        len -= static_cast<size_t>(n);
    }
    return 0;
}

// RTOS: the console UART or the vendor's log (ESP_LOGx).
void log_line(const char* line, size_t len) {
    char buf[1024];
    if (len > sizeof buf - 1) len = sizeof buf - 1;
    memcpy(buf, line, len);
    buf[len] = '\n';
    size_t off = 0;
    while (off < len + 1) {
        ssize_t n = ::write(STDERR_FILENO, buf + off, len + 1 - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        off += static_cast<size_t>(n);
    }
}

// RTOS: the vendor's file system (SPIFFS/LittleFS/FatFS), or a config blob in flash.
int read_file(const char* path, char* buf, size_t cap, size_t* len, bool* private_ok) {
    if (len) *len = 0;
    if (private_ok) *private_ok = false;
    if (!path || !buf || cap == 0) return EINVAL;
    buf[0] = '\0';
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = errno;
    } else if (S_ISDIR(st.st_mode)) {
        rc = EISDIR;
    } else if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > cap - 1) {
        rc = EFBIG;  // the content must leave room for the terminating NUL
    }
    if (private_ok && rc == 0) *private_ok = (st.st_mode & 077) == 0;
    size_t used = 0;
    while (rc == 0) {
        if (used == cap - 1) {
            char probe;  // a file that grew, or a non-regular file: is there more?
            ssize_t n = ::read(fd, &probe, 1);
            if (n < 0 && errno == EINTR) continue;
            if (n != 0) rc = n < 0 ? errno : EFBIG;
            break;
        }
        ssize_t n = ::read(fd, buf + used, cap - 1 - used);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) rc = errno;
        if (n <= 0) break;
        used += static_cast<size_t>(n);
    }
    ::close(fd);  // a kernel fd: the kernel's close, never lwip_close
    if (rc != 0) {
        buf[0] = '\0';
        if (private_ok) *private_ok = false;
        return rc;
    }
    buf[used] = '\0';
    if (len) *len = used;
    return 0;
}

// RTOS: settings in NVS or compiled in (this port also reads EW_LWIP_* from here).
const char* getenv(const char* name) { return name ? ::getenv(name) : nullptr; }

// RTOS: no signals; a task or a button would set these bits.
void signals_install() {
    set_handler(SIGTERM, on_terminate);
    set_handler(SIGINT, on_terminate);
    set_handler(SIGHUP, on_reload);
    set_handler(SIGPIPE, SIG_IGN);  // lwIP raises none; kept for parity with the Linux port
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
