// Name lookup in the hosts file, for the fully static build (cmake -DEW_STATIC=ON).
// glibc's getaddrinfo goes through NSS, which a static binary can only do by loading the
// build machine's libnss_*.so at run time; pal::resolve (the listen address, at start-up
// and reload only) reads /etc/hosts itself instead. Upstream names go through c-ares,
// which reads /etc/hosts and /etc/resolv.conf on its own in every build.
#include "linux/pal_hosts_file.h"

#include <netdb.h>
#include <stdio.h>
#include <string.h>

namespace pal {

int resolve_from_hosts_file(const char* path, const char* host, uint16_t port, Addr* out) {
    if (strcmp(host, "localhost") == 0) {  // always there, as glibc's files module does
        return parse_addr("127.0.0.1", port, out) ? 0 : EAI_NONAME;
    }
    FILE* f = fopen(path, "re");
    if (!f) return EAI_NONAME;
    // IPv4 first, as the getaddrinfo path does: pass 0 takes IPv4, pass 1 anything.
    char line[512];
    Addr found[2] = {};
    bool have[2] = {false, false};
    while (fgets(line, sizeof line, f)) {
        char* hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char* save = nullptr;
        char* addr = strtok_r(line, " \t\r\n", &save);
        if (!addr) continue;
        Addr a;
        if (!parse_addr(addr, port, &a)) continue;
        for (char* name = strtok_r(nullptr, " \t\r\n", &save); name; name = strtok_r(nullptr, " \t\r\n", &save)) {
            if (strcasecmp(name, host) != 0) continue;
            int k = a.family == 4 ? 0 : 1;
            if (!have[k]) {
                found[k] = a;
                have[k] = true;
            }
            break;
        }
        if (have[0]) break;
    }
    fclose(f);
    for (int k = 0; k < 2; k++) {
        if (have[k]) {
            *out = found[k];
            return 0;
        }
    }
    return EAI_NONAME;
}

}  // namespace pal
