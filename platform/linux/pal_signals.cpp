// Linux signals for the PAL: handlers only set bits; the loop takes them.
#include <signal.h>
#include <string.h>

#include "pal.h"

namespace pal {
namespace {

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
