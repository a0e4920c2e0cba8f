// The net tests' main (the Linux PAL and the TLS layer on loopback sockets), Catch2 v2 or v3.
#define CATCH_CONFIG_MAIN
#include "ew_catch.h"
