// Catch2 v2 main for the net tests (the Linux PAL and the TLS layer on loopback sockets).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
