// AES-GCM for the TLS record path on x86-64 (MBEDTLS_GCM_ALT in the lean static build).
//
// Mbed TLS's GCM turns a record into one call per 16-byte block: an AES block through the
// cipher layer, then one GHASH multiplication with byte reversals around it and a full
// reduction. That was about 20,000 instructions of a 60,000-instruction proxied request
// over TLS (bench/README.md). Here a record is one pass: four counter blocks through
// AES-NI side by side, and GHASH over four blocks at a time with the powers H..H^4, summed
// unreduced and reduced once (Gueron and Kounavis, "Intel Carry-Less Multiplication
// Instruction and its Usage for Computing the GCM Mode", algorithms 1 and 5, with
// aggregated reduction).
//
// Only the one-shot calls (crypt_and_tag, auth_decrypt) with a 128- or 256-bit AES key and
// a 12-byte nonce take this path, and only on a CPU with AES-NI, PCLMULQDQ and SSSE3 (a
// runtime check). Everything else goes to Mbed TLS's own implementation, keyed alongside
// in the same context (gcm_alt.h, gcm_portable.c), including every error case.
extern "C" {
#include <mbedtls/constant_time.h>  // declares mbedtls_ct_memcmp without extern "C"
}
#include <mbedtls/gcm.h>
#include <mbedtls/platform_util.h>

#include <cpuid.h>
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "gcm_portable.h"

#define EW_CLMUL __attribute__((target("aes,pclmul,ssse3"))) static inline

namespace {

// CPUID leaf 1, ECX: AES-NI (bit 25), PCLMULQDQ (bit 1), SSSE3 (bit 9). <cpuid.h> rather
// than __builtin_cpu_supports, which links libgcc's whole CPU model table (4.5 KiB).
bool cpu_has_clmul() {
    static int cached = -1;  // the agent is one thread
    if (cached < 0) {
        unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
        const unsigned int need = bit_AES | bit_PCLMUL | bit_SSSE3;
        cached = __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & need) == need;
    }
    return cached == 1;
}

// ---- AES (encryption only: GCM never decrypts a block) --------------------------------------

EW_CLMUL __m128i key_mix(__m128i key, __m128i assist) {
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    return _mm_xor_si128(key, assist);
}

// The round constant of _mm_aeskeygenassist_si128 must be an immediate: hence the macros.
#define EW_K128(i, rcon) \
    rk[i] = key_mix(rk[(i) - 1], _mm_shuffle_epi32(_mm_aeskeygenassist_si128(rk[(i) - 1], rcon), 0xff))

__attribute__((target("aes,pclmul,ssse3"))) void expand_128(const unsigned char* key, __m128i rk[15]) {
    rk[0] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(key));
    EW_K128(1, 0x01); EW_K128(2, 0x02); EW_K128(3, 0x04); EW_K128(4, 0x08); EW_K128(5, 0x10);
    EW_K128(6, 0x20); EW_K128(7, 0x40); EW_K128(8, 0x80); EW_K128(9, 0x1b); EW_K128(10, 0x36);
}

// AES-256: even round keys from the previous even one and RotWord(SubWord()) of the odd one
// before (shuffle 0xff), odd ones from the previous odd one and SubWord() alone (0xaa).
#define EW_K256(i, rcon)                                                                        \
    rk[i] = key_mix(rk[(i) - 2], _mm_shuffle_epi32(_mm_aeskeygenassist_si128(rk[(i) - 1], rcon), 0xff)); \
    rk[(i) + 1] = key_mix(rk[(i) - 1], _mm_shuffle_epi32(_mm_aeskeygenassist_si128(rk[i], 0), 0xaa))

__attribute__((target("aes,pclmul,ssse3"))) void expand_256(const unsigned char* key, __m128i rk[15]) {
    rk[0] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(key));
    rk[1] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(key + 16));
    EW_K256(2, 0x01); EW_K256(4, 0x02); EW_K256(6, 0x04); EW_K256(8, 0x08); EW_K256(10, 0x10);
    EW_K256(12, 0x20);
    rk[14] = key_mix(rk[12], _mm_shuffle_epi32(_mm_aeskeygenassist_si128(rk[13], 0x40), 0xff));
}

EW_CLMUL __m128i aes_block(__m128i x, const __m128i* rk, int rounds) {
    x = _mm_xor_si128(x, rk[0]);
    for (int r = 1; r < rounds; ++r) x = _mm_aesenc_si128(x, rk[r]);
    return _mm_aesenclast_si128(x, rk[rounds]);
}

EW_CLMUL void aes_4(__m128i b[4], const __m128i* rk, int rounds) {
    for (int i = 0; i < 4; ++i) b[i] = _mm_xor_si128(b[i], rk[0]);
    for (int r = 1; r < rounds; ++r)
        for (int i = 0; i < 4; ++i) b[i] = _mm_aesenc_si128(b[i], rk[r]);
    for (int i = 0; i < 4; ++i) b[i] = _mm_aesenclast_si128(b[i], rk[rounds]);
}

// ---- GHASH, on byte-reversed blocks ---------------------------------------------------------

EW_CLMUL __m128i bswap(__m128i x) {
    return _mm_shuffle_epi8(x, _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
}

// An unreduced 256-bit carry-less product, its middle term kept apart until the reduction.
struct Wide {
    __m128i lo, mid, hi;
};

EW_CLMUL void clmul_acc(Wide* w, __m128i a, __m128i b) {
    w->lo = _mm_xor_si128(w->lo, _mm_clmulepi64_si128(a, b, 0x00));
    w->hi = _mm_xor_si128(w->hi, _mm_clmulepi64_si128(a, b, 0x11));
    w->mid = _mm_xor_si128(w->mid, _mm_clmulepi64_si128(a, b, 0x10));
    w->mid = _mm_xor_si128(w->mid, _mm_clmulepi64_si128(a, b, 0x01));
}

// hi:lo is the product of two bit-reflected values: shift it left by one bit (algorithm 5
// step 1), then reduce it modulo x^128 + x^7 + x^2 + x + 1 (steps 2 to 4).
EW_CLMUL __m128i reduce(const Wide& w) {
    __m128i lo = _mm_xor_si128(w.lo, _mm_slli_si128(w.mid, 8));
    __m128i hi = _mm_xor_si128(w.hi, _mm_srli_si128(w.mid, 8));
    const __m128i carry_lo = _mm_srli_epi64(lo, 63);
    const __m128i carry_hi = _mm_srli_epi64(hi, 63);
    lo = _mm_or_si128(_mm_slli_epi64(lo, 1), _mm_slli_si128(carry_lo, 8));
    hi = _mm_or_si128(_mm_or_si128(_mm_slli_epi64(hi, 1), _mm_slli_si128(carry_hi, 8)),
                      _mm_srli_si128(carry_lo, 8));
    // lo = X1:X0. D = X1 + (X0 << 63) + (X0 << 62) + (X0 << 57); d = D:X0.
    const __m128i a = _mm_xor_si128(_mm_xor_si128(_mm_slli_epi64(lo, 63), _mm_slli_epi64(lo, 62)),
                                    _mm_slli_epi64(lo, 57));
    const __m128i d = _mm_xor_si128(lo, _mm_slli_si128(a, 8));
    // [D:X0] >> 1, >> 2, >> 7 as 128-bit shifts: per-word shifts, plus D's low bits moved
    // into the low word.
    __m128i e = _mm_xor_si128(_mm_xor_si128(_mm_srli_epi64(d, 1), _mm_srli_epi64(d, 2)),
                              _mm_srli_epi64(d, 7));
    const __m128i m = _mm_xor_si128(_mm_xor_si128(_mm_slli_epi64(d, 63), _mm_slli_epi64(d, 62)),
                                    _mm_slli_epi64(d, 57));
    e = _mm_xor_si128(e, _mm_srli_si128(m, 8));
    return _mm_xor_si128(hi, _mm_xor_si128(d, e));
}

EW_CLMUL __m128i gf_mul(__m128i a, __m128i b) {
    Wide w = {_mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128()};
    clmul_acc(&w, a, b);
    return reduce(w);
}

// y = (y + x0) H^4 + x1 H^3 + x2 H^2 + x3 H: four blocks, one reduction.
EW_CLMUL __m128i ghash_4(__m128i y, const __m128i x[4], const __m128i h[4]) {
    Wide w = {_mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128()};
    clmul_acc(&w, _mm_xor_si128(y, bswap(x[0])), h[3]);
    clmul_acc(&w, bswap(x[1]), h[2]);
    clmul_acc(&w, bswap(x[2]), h[1]);
    clmul_acc(&w, bswap(x[3]), h[0]);
    return reduce(w);
}

EW_CLMUL __m128i ghash_1(__m128i y, __m128i x, const __m128i h[4]) {
    return gf_mul(_mm_xor_si128(y, bswap(x)), h[0]);
}

EW_CLMUL __m128i load(const unsigned char* p) {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

EW_CLMUL void store(unsigned char* p, __m128i x) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), x);
}

// A partial block, zero-padded (the padding GHASH needs and the keystream ignores).
EW_CLMUL __m128i load_partial(const unsigned char* p, size_t n) {
    unsigned char b[16] = {0};
    memcpy(b, p, n);
    return load(b);
}

EW_CLMUL __m128i ghash_bytes(__m128i y, const unsigned char* p, size_t n, const __m128i h[4]) {
    __m128i x[4];
    for (; n >= 64; p += 64, n -= 64) {
        for (int i = 0; i < 4; ++i) x[i] = load(p + 16 * i);
        y = ghash_4(y, x, h);
    }
    for (; n >= 16; p += 16, n -= 16) y = ghash_1(y, load(p), h);
    if (n != 0) y = ghash_1(y, load_partial(p, n), h);
    return y;
}

// ---- one record: CTR encryption and GHASH in one pass ---------------------------------------

// Counter blocks are kept byte-reversed: the big-endian 32-bit counter is then the lowest
// lane, and _mm_add_epi32 increments it modulo 2^32 as GCM's inc32 does.
EW_CLMUL __m128i next_ctr(__m128i* ctr_rev) {
    *ctr_rev = _mm_add_epi32(*ctr_rev, _mm_set_epi32(0, 0, 0, 1));
    return bswap(*ctr_rev);
}

// Encrypts or decrypts `length` bytes and writes the full 16-byte tag. The input and output
// may be the same buffer: every block is read before its output is written.
__attribute__((target("aes,pclmul,ssse3"))) void gcm_one_shot(
    const mbedtls_gcm_context* ctx, bool encrypt, size_t length, const unsigned char iv[12],
    const unsigned char* add, size_t add_len, const unsigned char* input, unsigned char* output,
    unsigned char tag[16]) {
    __m128i rk[15];
    __m128i h[4];
    for (int i = 0; i <= ctx->MBEDTLS_PRIVATE(rounds); ++i)
        rk[i] = load(reinterpret_cast<const unsigned char*>(ctx->MBEDTLS_PRIVATE(rk)) + 16 * i);
    for (int i = 0; i < 4; ++i)
        h[i] = load(reinterpret_cast<const unsigned char*>(ctx->MBEDTLS_PRIVATE(hpow)) + 16 * i);
    const int rounds = ctx->MBEDTLS_PRIVATE(rounds);

    unsigned char j0_bytes[16];
    memcpy(j0_bytes, iv, 12);
    j0_bytes[12] = 0;
    j0_bytes[13] = 0;
    j0_bytes[14] = 0;
    j0_bytes[15] = 1;
    const __m128i j0 = load(j0_bytes);
    __m128i ctr_rev = bswap(j0);

    __m128i y = ghash_bytes(_mm_setzero_si128(), add, add_len, h);

    const unsigned char* in = input;
    unsigned char* out = output;
    size_t n = length;
    __m128i b[4], x[4];
    for (; n >= 64; in += 64, out += 64, n -= 64) {
        for (int i = 0; i < 4; ++i) {
            b[i] = next_ctr(&ctr_rev);
            x[i] = load(in + 16 * i);
        }
        aes_4(b, rk, rounds);
        for (int i = 0; i < 4; ++i) b[i] = _mm_xor_si128(b[i], x[i]);
        y = ghash_4(y, encrypt ? b : x, h);
        for (int i = 0; i < 4; ++i) store(out + 16 * i, b[i]);
    }
    for (; n >= 16; in += 16, out += 16, n -= 16) {
        const __m128i xi = load(in);
        const __m128i c = _mm_xor_si128(aes_block(next_ctr(&ctr_rev), rk, rounds), xi);
        y = ghash_1(y, encrypt ? c : xi, h);
        store(out, c);
    }
    if (n != 0) {
        const __m128i xi = load_partial(in, n);
        unsigned char block[16];
        store(block, _mm_xor_si128(aes_block(next_ctr(&ctr_rev), rk, rounds), xi));
        memset(block + n, 0, 16 - n);  // GHASH pads the ciphertext with zeros
        y = ghash_1(y, encrypt ? load(block) : xi, h);
        memcpy(out, block, n);
        mbedtls_platform_zeroize(block, sizeof block);
    }

    // The length block, bit counts as two big-endian 64-bit words, byte-reversed.
    const __m128i lengths = _mm_set_epi64x(static_cast<long long>(add_len) * 8,
                                           static_cast<long long>(length) * 8);
    y = gf_mul(_mm_xor_si128(y, lengths), h[0]);
    store(tag, _mm_xor_si128(bswap(y), aes_block(j0, rk, rounds)));
}

__attribute__((target("aes,pclmul,ssse3"))) void clmul_setkey(mbedtls_gcm_context* ctx,
                                                              const unsigned char* key,
                                                              unsigned int keybits) {
    __m128i rk[15];
    const int rounds = keybits == 128 ? 10 : 14;
    if (keybits == 128)
        expand_128(key, rk);
    else
        expand_256(key, rk);
    unsigned char* out = reinterpret_cast<unsigned char*>(ctx->MBEDTLS_PRIVATE(rk));
    for (int i = 0; i <= rounds; ++i) store(out + 16 * i, rk[i]);
    // H = E(K, 0^128), then its powers, all in the byte-reversed domain GHASH works in.
    const __m128i h1 = bswap(aes_block(_mm_setzero_si128(), rk, rounds));
    const __m128i h2 = gf_mul(h1, h1);
    const __m128i h3 = gf_mul(h2, h1);
    const __m128i h4 = gf_mul(h3, h1);
    unsigned char* hp = reinterpret_cast<unsigned char*>(ctx->MBEDTLS_PRIVATE(hpow));
    store(hp, h1);
    store(hp + 16, h2);
    store(hp + 32, h3);
    store(hp + 48, h4);
    ctx->MBEDTLS_PRIVATE(rounds) = static_cast<unsigned char>(rounds);
    mbedtls_platform_zeroize(rk, sizeof rk);
}

void forget_fast_key(mbedtls_gcm_context* ctx) {
    mbedtls_platform_zeroize(ctx->MBEDTLS_PRIVATE(rk), sizeof ctx->MBEDTLS_PRIVATE(rk));
    mbedtls_platform_zeroize(ctx->MBEDTLS_PRIVATE(hpow), sizeof ctx->MBEDTLS_PRIVATE(hpow));
    ctx->MBEDTLS_PRIVATE(rounds) = 0;
}

// Whether a one-shot call can take the fast path. Anything else, invalid arguments
// included, goes to Mbed TLS's implementation, which gives its usual answer.
bool fast_path(const mbedtls_gcm_context* ctx, size_t length, size_t iv_len, size_t add_len,
               size_t tag_len, const unsigned char* input, const unsigned char* output) {
    if (ctx->MBEDTLS_PRIVATE(rounds) == 0 || iv_len != 12 || tag_len < 4 || tag_len > 16) return false;
    if (static_cast<uint64_t>(length) > 0xFFFFFFFE0ull) return false;          // 2^36 - 32 bytes
    if ((static_cast<uint64_t>(add_len) >> 61) != 0) return false;             // 2^64 - 1 bits
    if (length != 0 && (input == nullptr || output == nullptr)) return false;
    // In place is fine; an output that starts inside the input is not (Mbed TLS refuses it).
    if (output > input && static_cast<size_t>(output - input) < length) return false;
    return true;
}

ew_gcm_portable* portable(mbedtls_gcm_context* ctx) { return &ctx->MBEDTLS_PRIVATE(portable); }

}  // namespace

// ---- the Mbed TLS GCM interface (mbedtls/gcm.h) ---------------------------------------------

void mbedtls_gcm_init(mbedtls_gcm_context* ctx) {
    memset(ctx, 0, sizeof *ctx);
    ew_gcm_portable_init(portable(ctx));
}

int mbedtls_gcm_setkey(mbedtls_gcm_context* ctx, mbedtls_cipher_id_t cipher,
                       const unsigned char* key, unsigned int keybits) {
    forget_fast_key(ctx);
    const int ret = ew_gcm_portable_setkey(portable(ctx), cipher, key, keybits);
    if (ret != 0) return ret;
    if (cipher == MBEDTLS_CIPHER_ID_AES && (keybits == 128 || keybits == 256) && cpu_has_clmul())
        clmul_setkey(ctx, key, keybits);
    return 0;
}

int mbedtls_gcm_starts(mbedtls_gcm_context* ctx, int mode, const unsigned char* iv, size_t iv_len) {
    return ew_gcm_portable_starts(portable(ctx), mode, iv, iv_len);
}

int mbedtls_gcm_update_ad(mbedtls_gcm_context* ctx, const unsigned char* add, size_t add_len) {
    return ew_gcm_portable_update_ad(portable(ctx), add, add_len);
}

int mbedtls_gcm_update(mbedtls_gcm_context* ctx, const unsigned char* input, size_t input_length,
                       unsigned char* output, size_t output_size, size_t* output_length) {
    return ew_gcm_portable_update(portable(ctx), input, input_length, output, output_size,
                                  output_length);
}

int mbedtls_gcm_finish(mbedtls_gcm_context* ctx, unsigned char* output, size_t output_size,
                       size_t* output_length, unsigned char* tag, size_t tag_len) {
    return ew_gcm_portable_finish(portable(ctx), output, output_size, output_length, tag, tag_len);
}

int mbedtls_gcm_crypt_and_tag(mbedtls_gcm_context* ctx, int mode, size_t length,
                              const unsigned char* iv, size_t iv_len, const unsigned char* add,
                              size_t add_len, const unsigned char* input, unsigned char* output,
                              size_t tag_len, unsigned char* tag) {
    if (!fast_path(ctx, length, iv_len, add_len, tag_len, input, output) ||
        (mode != MBEDTLS_GCM_ENCRYPT && mode != MBEDTLS_GCM_DECRYPT) || tag == nullptr)
        return ew_gcm_portable_crypt_and_tag(portable(ctx), mode, length, iv, iv_len, add, add_len,
                                             input, output, tag_len, tag);
    unsigned char full[16];
    gcm_one_shot(ctx, mode == MBEDTLS_GCM_ENCRYPT, length, iv, add, add_len, input, output, full);
    memcpy(tag, full, tag_len);
    mbedtls_platform_zeroize(full, sizeof full);
    return 0;
}

int mbedtls_gcm_auth_decrypt(mbedtls_gcm_context* ctx, size_t length, const unsigned char* iv,
                             size_t iv_len, const unsigned char* add, size_t add_len,
                             const unsigned char* tag, size_t tag_len,
                             const unsigned char* input, unsigned char* output) {
    if (!fast_path(ctx, length, iv_len, add_len, tag_len, input, output) || tag == nullptr)
        return ew_gcm_portable_auth_decrypt(portable(ctx), length, iv, iv_len, add, add_len, tag,
                                            tag_len, input, output);
    unsigned char expected[16];
    gcm_one_shot(ctx, false, length, iv, add, add_len, input, output, expected);
    const int diff = mbedtls_ct_memcmp(tag, expected, tag_len);
    mbedtls_platform_zeroize(expected, sizeof expected);
    if (diff != 0) {
        mbedtls_platform_zeroize(output, length);  // no unauthenticated plaintext leaves
        return MBEDTLS_ERR_GCM_AUTH_FAILED;
    }
    return 0;
}

void mbedtls_gcm_free(mbedtls_gcm_context* ctx) {
    if (ctx == nullptr) return;
    ew_gcm_portable_free(portable(ctx));
    forget_fast_key(ctx);
}
