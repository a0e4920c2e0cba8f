// The platform abstraction layer: the only interface between edgeway and an OS or
// network stack. One implementation per port is linked (platform/linux, platform/lwip).
// Everything here is non-blocking except pal_resolve (used only at start-up and reload),
// dns_open (reads /etc/resolv.conf) and the file functions (start-up and reload only; but
// write_file_atomic: the state file, one small write at most once per state_write_interval_ms).
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace pal {

using Socket = int;
constexpr Socket kNoSocket = -1;

enum class Io : uint8_t { ok, would_block, closed, error };

struct IoResult {
    Io status;
    size_t n;   // bytes moved when ok
    int err;    // errno-style code when error
};

struct Addr {
    uint8_t family;      // 4 or 6
    uint8_t bytes[16];
    uint16_t port;
};

// Poll interest and readiness bits.
enum : uint16_t { kIn = 1, kOut = 2, kErr = 4, kHup = 8 };

struct PollItem {
    Socket sock;
    uint16_t events;
    uint16_t revents;
};

// Start-up of the port (e.g. lwIP's tcpip thread and netif). 0 = ok.
int init();

// Time.
uint64_t now_ms();      // monotonic
uint64_t wall_ms();     // Unix epoch, for display only; 0 if the device has no clock

// The process, for /metrics (scrape time only; may read files). Unknown values are -1.
struct ProcessStats {
    int64_t resident_bytes = -1;    // resident set size
    int64_t start_wall_ms = -1;     // Unix epoch ms when the process started (0 clock: -1)
    int64_t open_fds = -1;          // descriptors (Linux) or sockets (lwIP) open now
    int64_t max_fds = -1;           // the limit on them
};
void process_stats(ProcessStats* out);
// The port's part of process_stats: open descriptors/sockets and their limit.
void port_fd_stats(int64_t* open_now, int64_t* limit);

// Entropy for jitter and TLS seeding. Returns 0 when filled.
int entropy(void* buf, size_t len);

// The device's host name (the default telemetry device_id), NUL-terminated. False when the
// device has none (an RTOS port without one returns false; edgeway then uses "edgeway").
bool host_name(char* buf, size_t cap);

// Log sink: one complete line without newline, with its syslog(3) priority. A sink with
// levels uses it: on Linux, when stderr is the journal ($JOURNAL_STREAM names it), the line
// goes out as "<N>line" (sd-daemon(3)), otherwise unchanged; on an RTOS, ESP_LOGx and the like.
enum class LogPriority : uint8_t { err = 3, warning = 4, notice = 5, info = 6, debug = 7 };
void log_line(LogPriority priority, const char* line, size_t len);

// Names and addresses: a host is a name or a numeric address, IPv6 without brackets.
// parse_addr never blocks; resolve may (start-up/reload only).
bool parse_addr(const char* host, uint16_t port, Addr* out);
int resolve(const char* host, uint16_t port, Addr* out);  // 0 = ok, else errno-style
void format_addr(const Addr& a, char* buf, size_t cap);

// Sockets. All returned sockets are non-blocking.
Socket tcp_listen(const Addr& a, int backlog, int* err);
Socket tcp_accept(Socket listener, int* err);            // kNoSocket + EAGAIN when none
Socket tcp_connect(const Addr& a, int* err);             // in progress: wait for kOut
int tcp_connect_result(Socket s);                        // 0 = connected, else errno-style
IoResult send(Socket s, const void* buf, size_t len);
IoResult recv(Socket s, void* buf, size_t len);
void close(Socket s);
uint16_t local_port(Socket s);

// True when the port's poll keeps each socket's interest in the kernel between calls (Linux
// epoll, EW_LINUX_POLL=epoll): a watched socket that is not ready then costs nothing per
// wake-up, so the agent also watches its parked plain connections. False: poll(2), lwIP.
#if defined(EW_PAL_POLL_KEEPS_INTEREST) && EW_PAL_POLL_KEEPS_INTEREST
constexpr bool kPollKeepsInterest = true;
#else
constexpr bool kPollKeepsInterest = false;
#endif

// Waits up to timeout_ms (-1 = forever) for readiness. Returns the number ready, 0 on
// timeout, -1 on error (EINTR is reported as 0).
int poll(PollItem* items, size_t count, int timeout_ms);

// Files (start-up and reload only).
// Reads a whole file. 0 = ok, else errno-style. *private_ok = false when group/other may read it.
int read_file(const char* path, char* buf, size_t cap, size_t* len, bool* private_ok);
// Replaces `path` with `len` bytes, atomically: a reader (or the next boot, after a power
// cut) sees the old content or the new, never a mix. POSIX: write PATH.tmp (mode 0600),
// fsync it, rename it over PATH, fsync the folder. 0 = ok, else errno-style; ENOTSUP where
// the port has no file system for it. The one file function used while running (the state
// file, at most once per state_write_interval_ms): it blocks for the write and the fsyncs,
// milliseconds on eMMC or SD for a few KB. An RTOS port maps it onto its flash file system
// (platform/rtos/pal_files_rtos.cpp: board hooks, "not supported" by default).
int write_file_atomic(const char* path, const void* data, size_t len);
const char* getenv(const char* name);
const char* strerror(int err);

// ---- asynchronous name resolution, driven by the loop -------------------------------------
// Linux: c-ares (platform/linux/pal_dns_cares.cpp): A and AAAA lookups over UDP/TCP sockets
// the loop polls; no thread, nothing blocks. lwIP: numeric hosts only (dns_open returns
// kDnsUnsupported; callers parse numeric hosts with parse_addr and never ask).
// One resolver per process. Its memory comes from a bounded allocator (dns_heap()).

// Sockets the resolver may wait on at once (more are refused: their queries time out).
#ifndef EW_PAL_DNS_SOCKETS
#define EW_PAL_DNS_SOCKETS 4
#endif
// Addresses kept from one answer (A and AAAA together).
#ifndef EW_PAL_DNS_ANSWERS
#define EW_PAL_DNS_ANSWERS 8
#endif

enum DnsError : int {
    kDnsOk = 0,
    kDnsNotFound,     // NXDOMAIN
    kDnsNoData,       // the name exists but has no A/AAAA record
    kDnsServFail,     // SERVFAIL
    kDnsRefused,      // REFUSED
    kDnsTimeout,      // no answer from any server in time
    kDnsUnreachable,  // the servers refused the connection / no server configured
    kDnsBadName,
    kDnsNoMemory,     // the resolver's heap cap was reached
    kDnsUnsupported,  // this port has no resolver
    kDnsCancelled,    // dns_close while the lookup was in flight
    kDnsBadServers,   // dns_open: the server list was not accepted
    kDnsOther,
};

struct DnsAnswer {
    Addr addr;       // port as asked
    uint32_t ttl_s;  // the record's TTL
};

// Called once per lookup, from dns_process or dns_close — or from within dns_lookup when
// the answer is known at once (a hosts-file hit, a malformed name). answers are valid
// only during the call; count <= EW_PAL_DNS_ANSWERS.
using DnsDone = void (*)(void* ctx, int err, const DnsAnswer* answers, size_t count);

// servers: "" for the system's (/etc/resolv.conf), else "IP:PORT,[IPV6]:PORT,...".
// Re-opening closes the previous resolver first. Returns kDnsOk or a DnsError.
int dns_open(const char* servers);
void dns_close();
// Starts an A+AAAA lookup. Returns kDnsOk (done will be called), or an error (it will not).
int dns_lookup(const char* host, uint16_t port, DnsDone done, void* ctx);
// Socket `slot` (0..EW_PAL_DNS_SOCKETS-1) the resolver waits on, and for what (kIn/kOut);
// false when the slot is unused.
bool dns_socket(size_t slot, Socket* s, uint16_t* events);
// Milliseconds until dns_process must run for timeouts (0 = now), -1 when nothing pending.
int dns_timeout_ms();
// Readiness of a resolver socket (kNoSocket for none): reads answers, sends retries,
// handles timeouts, calls DnsDone. dns_process(kNoSocket, kNoSocket) handles timeouts only.
void dns_process(Socket readable, Socket writable);
const char* dns_strerror(int err);  // "NXDOMAIN", "SERVFAIL", "timeout", ...

struct DnsHeap {
    size_t in_use;    // bytes the resolver holds now
    size_t peak;      // most it ever held
    size_t cap;       // the bound (EW_PAL_DNS_HEAP_BYTES)
    uint32_t refused; // allocations refused at the cap
};
DnsHeap dns_heap();

}  // namespace pal

namespace pal {

// Process signals, as flags the loop polls (no work in signal context).
enum : uint32_t { kSignalTerminate = 1, kSignalReload = 2 };
void signals_install();       // SIGTERM/SIGINT -> terminate, SIGHUP -> reload, SIGPIPE ignored
uint32_t signals_take();      // returns and clears the pending kSignal* bits

}  // namespace pal

namespace pal {

// The service manager (on Linux, systemd's notify protocol: one datagram to $NOTIFY_SOCKET,
// as sd_notify(3) describes; elsewhere a no-op). Never blocks; a lost message is not an error
// the agent can act on, so nothing is returned. `status` (may be null) is a free-form line
// for `systemctl status`.
enum class ServiceState : uint8_t {
    ready,      // READY=1: listening; also ends a reload
    reloading,  // RELOADING=1 with MONOTONIC_USEC (systemd 253+ wants it)
    stopping,   // STOPPING=1: draining before exit
    watchdog,   // WATCHDOG=1: the loop is alive
};
void service_notify(ServiceState state, const char* status);
// How often the loop must send ServiceState::watchdog: half of $WATCHDOG_USEC when the manager
// set one for this process ($WATCHDOG_PID, when set, is ours), else 0 (no watchdog).
uint64_t service_watchdog_interval_ms();

}  // namespace pal
