// Start-up of the lwIP port: lwIP's tcpip thread, then one network interface.
//
//   tap (default)        lwIP's unix tap driver on an existing tap device:
//                        PRECONFIGURED_TAPIF=<name> (read by tapif itself), and
//                        EW_LWIP_ADDR / EW_LWIP_NETMASK / EW_LWIP_GW for lwIP's own address
//                        (defaults 10.77.0.2 / 255.255.255.0 / 10.77.0.1).
//   EW_LWIP_MTU          the netif's MTU, default 576 (see kSafeMtu).
//   EW_LWIP_LOOPBACK=1   no device: a dummy netif whose own address (EW_LWIP_ADDR) and
//                        127.0.0.0/8 loop back inside lwIP (LWIP_NETIF_LOOPBACK); all else
//                        is unreachable.
//
// On an RTOS the netif would be the board's Ethernet/Wi-Fi driver (e.g. ESP-IDF's esp_netif)
// and the addresses would come from DHCP or the device's settings; only this file changes.
//
// lwIP's headers are C: the library's own lwipopts.h (it fixes struct layouts and socket
// numbering) must come first, and it and netif/tapif.h have no extern "C".
extern "C" {
#include "lwipopts.h"
#include "netif/tapif.h"
}
#include "lwip/ip4_addr.h"
#include "lwip/netif.h"
#include "lwip/sys.h"
#include "lwip/tcpip.h"

#include <net/if.h>  // if_nametoindex: host-only check that the tap exists (see below)
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pal.h"

namespace pal {
namespace {

struct netif g_netif;
bool g_started = false;

// Debian's liblwip0 2.1.3 is built inconsistently: its pool pbufs are allocated with 592
// bytes of payload (memp_PBUF_POOL = 616 bytes with the header), while pbuf_alloc fills
// one with up to 1536. tapif receives every frame into such a pbuf, so a frame over ~590
// bytes overruns the heap block (valgrind: invalid write in pbuf_take from the tapif
// thread; glibc aborts "malloc(): unaligned fastbin chunk"). With the netif MTU at 576,
// lwIP advertises (and uses) a TCP MSS of 536, so TCP peers send frames of at most 590
// bytes. A build of lwIP from source with one lwipopts.h (any RTOS build) does not need it.
constexpr unsigned kSafeMtu = 576;

void on_tcpip_ready(void* arg) { sys_sem_signal(static_cast<sys_sem_t*>(arg)); }

__attribute__((format(printf, 2, 3))) void say(LogPriority priority, const char* fmt, ...) {
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0)
        log_line(priority, line, static_cast<size_t>(n) < sizeof line ? static_cast<size_t>(n) : sizeof line - 1);
}

bool env_addr(const char* name, const char* fallback, ip4_addr_t* out) {
    const char* v = getenv(name);
    if (v == nullptr || v[0] == '\0') v = fallback;
    if (ip4addr_aton(v, out)) return true;
    say(LogPriority::err, "lwip: %s=%s is not an IPv4 address", name, v);
    return false;
}

// The loopback-only netif: lwIP loops packets for its own address (and 127/8) before
// calling output, so output only sees packets for other hosts, which go nowhere.
err_t drop_output(struct netif*, struct pbuf*, const ip4_addr_t*) { return ERR_RTE; }
err_t drop_output6(struct netif*, struct pbuf*, const ip6_addr_t*) { return ERR_RTE; }

err_t loop_netif_init(struct netif* n) {
    n->name[0] = 'l';
    n->name[1] = 'p';
    n->mtu = 1500;
    n->output = drop_output;
    n->output_ip6 = drop_output6;
    return ERR_OK;
}

}  // namespace

int init() {
    if (g_started) return 0;
    const char* lb = getenv("EW_LWIP_LOOPBACK");
    bool loopback = lb != nullptr && strcmp(lb, "1") == 0;
    const char* tap = getenv("PRECONFIGURED_TAPIF");
    if (!loopback) {
        // tapif would otherwise create tap0 and run /sbin/ifconfig, and it calls exit(1) when
        // it cannot open the device: check first so the error is ours and readable.
        if (tap == nullptr || tap[0] == '\0') {
            say(LogPriority::err, "lwip: set PRECONFIGURED_TAPIF=<tap device> (or EW_LWIP_LOOPBACK=1)");
            return -1;
        }
        if (if_nametoindex(tap) == 0) {
            say(LogPriority::err, "lwip: no network device %s here (PRECONFIGURED_TAPIF)", tap);
            return -1;
        }
    }
    ip4_addr_t ip, mask, gw;
    if (!env_addr("EW_LWIP_ADDR", "10.77.0.2", &ip) || !env_addr("EW_LWIP_NETMASK", "255.255.255.0", &mask) ||
        !env_addr("EW_LWIP_GW", loopback ? "0.0.0.0" : "10.77.0.1", &gw))
        return -1;

    unsigned mtu = kSafeMtu;
    if (const char* v = getenv("EW_LWIP_MTU")) {
        mtu = static_cast<unsigned>(strtoul(v, nullptr, 10));
        if (mtu < 296 || mtu > 1500) {
            say(LogPriority::err, "lwip: EW_LWIP_MTU=%s is outside 296..1500", v);
            return -1;
        }
    }

    sys_sem_t ready;
    if (sys_sem_new(&ready, 0) != ERR_OK) return -1;
    tcpip_init(on_tcpip_ready, &ready);
    sys_sem_wait(&ready);
    sys_sem_free(&ready);

    // Everything that touches lwIP's core from outside the tcpip thread holds the core lock.
    LOCK_TCPIP_CORE();
    struct netif* n = loopback ? netif_add(&g_netif, &ip, &mask, &gw, nullptr, loop_netif_init, tcpip_input)
                               : netif_add(&g_netif, &ip, &mask, &gw, nullptr, tapif_init, tcpip_input);
    if (n != nullptr) {
        n->mtu = static_cast<u16_t>(mtu);
        netif_set_default(n);
        netif_set_up(n);
        netif_set_link_up(n);
    }
    UNLOCK_TCPIP_CORE();
    if (n == nullptr) {
        say(LogPriority::err, "lwip: netif_add failed");
        return -1;
    }
    char a[16], m[16], g[16];
    ip4addr_ntoa_r(&ip, a, sizeof a);
    ip4addr_ntoa_r(&mask, m, sizeof m);
    ip4addr_ntoa_r(&gw, g, sizeof g);
    say(LogPriority::info, "lwip: stack up on %s: addr %s netmask %s gw %s mtu %u", loopback ? "loopback netif" : tap, a,
        m, g, mtu);
    g_started = true;
    return 0;
}

}  // namespace pal
