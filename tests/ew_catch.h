// The one Catch2 include for every test source: Catch2 v2 (Debian 12, header only) or v3
// (Debian 13, a library), chosen by the build (tests/CMakeLists.txt sets EW_CATCH2_MAJOR).
// A main.cpp defines CATCH_CONFIG_MAIN before including this, with either version.
#pragma once

#if defined(EW_CATCH2_MAJOR) && EW_CATCH2_MAJOR >= 3
#include <catch2/catch_all.hpp>
#define EW_CATCH2_V3 1
#elif defined(EW_CATCH2_MAJOR) && EW_CATCH2_MAJOR == 2
#include <catch2/catch.hpp>
#else
#error "EW_CATCH2_MAJOR is not set: build the tests through tests/CMakeLists.txt"
#endif

#if defined(EW_CATCH2_V3)
// v2 spellings the tests use, in v3's namespaces.
using Catch::Approx;
#if defined(CATCH_CONFIG_MAIN)
// v3 has no CATCH_CONFIG_MAIN; the test program's main() is the library's session.
int main(int argc, char* argv[]) { return Catch::Session().run(argc, argv); }
#endif
#endif
