// edgeway: the command line. Reads the INI, then runs the agent, checks the
// configuration, or probes every endpoint once.
#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "core/strbuf.h"
#include "net/agent.h"
#include "net/log.h"
#include "pal.h"

namespace {

using namespace ew;

// Exit codes, as a service manager reads them (edgeway(8) documents them).
constexpr int kExitOk = 0;       // a clean stop; --check-config: valid; --probe-once: every endpoint healthy
constexpr int kExitRuntime = 1;  // a runtime failure (the port is in use, ...); --probe-once: some healthy
constexpr int kExitUsage = 2;    // bad usage or configuration; --probe-once: none healthy
constexpr uint32_t kDrainMs = 10000;  // SIGTERM: in-flight requests get this long to finish

const char kUsage[] =
    "usage: edgeway -c FILE [--probe-once]\n"
    "       edgeway --check-config FILE\n"
    "       edgeway --print-config FILE\n"
    "       edgeway --version | --help\n"
    "\n"
    "  -c, --config FILE   run with this INI file (see config/edgeway.ini)\n"
    "  --check-config      validate the configuration, print every error, exit (0 ok, 2 errors)\n"
    "  --print-config      print the effective configuration (defaults filled in, secrets masked)\n"
    "  --probe-once        probe every endpoint once, print a table; exit 0 if all are healthy,\n"
    "                      1 if some are, 2 if none is\n"
    "  --version           print the version\n"
    "\n"
    "Signals: SIGHUP reloads the file, SIGTERM/SIGINT drain in-flight requests and exit.\n"
    "Exit: 0 clean stop, 1 runtime failure (e.g. the port is in use), 2 usage or configuration error.\n";

struct Options {
    const char* config = nullptr;
    bool check = false;
    bool print = false;
    bool probe_once = false;
};

char g_ini[EW_CAP_INI_BYTES];
Config g_config;
Agent g_agent;

const char* env_source(const char* name, void*) { return pal::getenv(name); }

int file_source(const char* path, char* buf, size_t cap, size_t* len, bool* private_ok, void*) {
    return pal::read_file(path, buf, cap, len, private_ok);
}

// --check-config and --print-config print bare FILE:LINE: key: message lines, and so does
// a start that fails; a running agent logs warnings, and a reload's errors, with time and level.
bool g_plain_warnings = false;
bool g_reloading = false;
void print_warning(const char* line, void*) {
    if (g_plain_warnings)
        log_bare(LogLevel::warn, line);
    else
        EW_LOG_WARN("%s", line);
}
void print_error(const char* line, void*) {
    if (!g_reloading)
        log_bare(LogLevel::error, line);
    else
        EW_LOG_ERROR("%s", line);
}

// Reads and validates the file into *out. Prints errors and warnings; false on error.
bool load_config(const char* path, Config* out) {
    size_t len = 0;
    bool private_ok = true;
    int e = pal::read_file(path, g_ini, sizeof g_ini, &len, &private_ok);
    if (e != 0) {
        char line[EW_CAP_PATH + 96];
        StrBuf b(line, sizeof line);
        b.appendf("%s:0: config: cannot read it: %s", path, pal::strerror(e));
        print_error(line, nullptr);
        return false;
    }
    ConfigSources src{env_source, file_source, nullptr};
    ConfigDiag diag;
    ConfigReport rep;
    rep.warn = print_warning;
    rep.error = print_error;
    *out = Config();
    if (config_parse_report(path, g_ini, len, src, out, &diag, &rep) != ConfigStatus::ok) return false;
    // [telemetry] device_id: empty means the host name (so --print-config shows the one in use).
    TelemetryConfig& t = out->telemetry;
    char host[EW_CAP_DEVICE_ID];
    if (t.on && !t.device_id[0] && pal::host_name(host, sizeof host) && telemetry_device_id_ok(host, strlen(host)))
        copy_str(t.device_id, sizeof t.device_id, host);
    return true;
}

int probe_once() {
    char err[256];
    if (!g_agent.init(g_config, err, sizeof err)) {
        fprintf(stderr, "edgeway: %s\n", err);
        return kExitRuntime;
    }
    uint64_t deadline = pal::now_ms() + g_config.probe.timeout_ms + 2000;
    g_agent.probe_all_once(deadline);
    printf("%-16s %-40s %-13s %10s  %s\n", "NAME", "URL", "RESULT", "LATENCY_MS", "ERROR");
    int healthy = 0;
    for (uint32_t i = 0; i < g_config.endpoint_count; i++) {
        const Probe& p = g_agent.probe(i);
        const Outcome& o = p.last();
        const char* result = p.runs() ? to_string(o.kind) : p.last_error()[0] ? "unresolved" : "not_run";
        if (p.runs() && o.kind == ResultKind::ok) healthy++;
        printf("%-16s %-40s %-13s %10u  %s\n", g_config.endpoints[i].name, g_config.endpoints[i].url, result,
               o.latency_ms, p.last_error());
    }
    fflush(stdout);
    g_agent.shutdown();
    if (healthy == static_cast<int>(g_config.endpoint_count)) return kExitOk;
    return healthy > 0 ? kExitRuntime : kExitUsage;
}

// WATCHDOG=1 from the loop itself, so a wedged loop stops the pings and the service manager
// restarts the agent. The loop's poll timeout is cut so that a ping is never late.
struct WatchdogPing {
    uint64_t interval_ms = 0;  // 0: no watchdog
    uint64_t next_ms = 0;

    void start(uint64_t now_ms) {
        interval_ms = pal::service_watchdog_interval_ms();
        next_ms = now_ms + interval_ms;
    }
    int wait_ms(uint64_t now_ms, int cap_ms) const {
        if (interval_ms == 0) return cap_ms;
        uint64_t left = next_ms > now_ms ? next_ms - now_ms : 0;
        return left < static_cast<uint64_t>(cap_ms) ? static_cast<int>(left) : cap_ms;
    }
    void tick(uint64_t now_ms) {
        if (interval_ms == 0 || now_ms < next_ms) return;
        pal::service_notify(pal::ServiceState::watchdog, nullptr);
        next_ms = now_ms + interval_ms;
    }
};

int run(const char* path) {
    char err[256];
    if (!g_agent.init(g_config, err, sizeof err)) {
        EW_LOG_ERROR("start failed: %s", err);
        return kExitRuntime;
    }
    g_agent.restore_state();
    if (!g_agent.listen(err, sizeof err)) {
        EW_LOG_ERROR("%s", err);
        return kExitRuntime;
    }
    pal::signals_install();
    uint64_t now = pal::now_ms();
    g_agent.start_probes(now);
    g_agent.start_telemetry(now);
    WatchdogPing watchdog;
    watchdog.start(now);
    pal::service_notify(pal::ServiceState::ready, "listening");
    static Config next;
    bool reload_pending = false;
    for (;;) {
        g_agent.run_once(watchdog.wait_ms(pal::now_ms(), 1000));
        watchdog.tick(pal::now_ms());
        uint32_t sig = pal::signals_take();
        if (sig & pal::kSignalTerminate) break;
        if (sig & pal::kSignalReload) {
            pal::service_notify(pal::ServiceState::reloading, "reloading the configuration");
            // Validate now; apply between requests so nothing in flight changes under it.
            g_reloading = true;
            bool valid = load_config(path, &next);
            g_reloading = false;
            if (valid) {
                reload_pending = true;
                EW_LOG_INFO("reload: %s is valid; applying when no request is in flight", path);
            } else {
                EW_LOG_ERROR("reload: %s has errors; keeping the running configuration", path);
                pal::service_notify(pal::ServiceState::ready, "reload refused: the file has errors; running as before");
            }
        }
        if (reload_pending && g_agent.idle()) {
            reload_pending = false;
            if (g_agent.reload(next, err, sizeof err)) {
                pal::service_notify(pal::ServiceState::ready, "listening; configuration reloaded");
            } else {
                EW_LOG_ERROR("reload refused: %s", err);
                pal::service_notify(pal::ServiceState::ready, "reload refused; running as before");
            }
        }
    }
    pal::service_notify(pal::ServiceState::stopping, "draining in-flight requests");
    EW_LOG_INFO("terminating: draining in-flight requests (up to %u ms)", kDrainMs);
    uint64_t until = pal::now_ms() + kDrainMs;
    while (!g_agent.drain() && pal::now_ms() < until) {
        g_agent.run_once(watchdog.wait_ms(pal::now_ms(), 100));
        watchdog.tick(pal::now_ms());
    }
    g_agent.shutdown();
    EW_LOG_INFO("stopped");
    return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    for (int i = 1; i < argc; i++) {
        const char* a = argv[i];
        if (strcmp(a, "--version") == 0) {
            printf("edgeway %s\n", EW_VERSION);
            return kExitOk;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(kUsage, stdout);
            return kExitOk;
        }
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "edgeway: %s needs a file\n%s", a, kUsage);
                return kExitUsage;
            }
            opt.config = argv[++i];
        } else if (strcmp(a, "--check-config") == 0) {
            opt.check = true;
            if (i + 1 < argc && argv[i + 1][0] != '-') opt.config = argv[++i];
        } else if (strcmp(a, "--print-config") == 0) {
            opt.print = true;
            if (i + 1 < argc && argv[i + 1][0] != '-') opt.config = argv[++i];
        } else if (strcmp(a, "--probe-once") == 0) {
            opt.probe_once = true;
        } else {
            fprintf(stderr, "edgeway: unknown argument '%s'\n%s", a, kUsage);
            return kExitUsage;
        }
    }
    if (opt.config == nullptr) {
        fprintf(stderr, "edgeway: no configuration file given\n%s", kUsage);
        return kExitUsage;
    }
    g_plain_warnings = opt.check || opt.print;
    if (!load_config(opt.config, &g_config)) return kExitUsage;
    if (opt.check) return kExitOk;
    if (opt.print) {
        static char text[EW_CAP_INI_BYTES];
        StrBuf out(text, sizeof text);
        config_print(g_config, opt.config, &out);
        fwrite(out.data, 1, out.len, stdout);
        return out.overflow ? kExitRuntime : kExitOk;
    }
    // The network stack starts only when it is needed (on lwIP this brings up the netif).
    if (pal::init() != 0) {
        fprintf(stderr, "edgeway: platform start-up failed\n");
        return kExitRuntime;
    }
    log_set_level(g_config.agent.log_level);
    log_set_format(g_config.agent.log_format);
    if (opt.probe_once) return probe_once();
    return run(opt.config);
}
