// xorshift64*: jitter and tie-breaking only, never cryptography. Seeded from the PAL's
// entropy by its owner; a test seeds it with a constant for a repeatable run.
#pragma once
#include <stdint.h>

namespace ew {

struct Rng {
    uint64_t state = 0x9E3779B97F4A7C15ull;
    void seed(uint64_t s) { state = s ? s : 0x9E3779B97F4A7C15ull; }
    uint32_t next() {
        uint64_t x = state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state = x;
        return static_cast<uint32_t>((x * 2685821657736338717ULL) >> 32);
    }
};

}  // namespace ew
