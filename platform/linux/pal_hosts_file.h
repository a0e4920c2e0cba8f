// Hosts-file lookup for the static build (see pal_hosts_file.cpp).
#pragma once
#include <stdint.h>

#include "pal.h"

namespace pal {

// `host` from `path` (the first IPv4 address that names it, else the first IPv6 one);
// "localhost" is 127.0.0.1 without reading the file. 0, or EAI_NONAME (a getaddrinfo code,
// as pal::resolve returns).
int resolve_from_hosts_file(const char* path, const char* host, uint16_t port, Addr* out);

}  // namespace pal
