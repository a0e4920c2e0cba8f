/* The GCM context of edgeway's AES-GCM (MBEDTLS_GCM_ALT, lean static build on x86-64).
 * Mbed TLS's gcm.h includes this file in place of its own context when MBEDTLS_GCM_ALT is
 * defined (platform/mbedtls_config.h). Two implementations share one context:
 *   - portable: Mbed TLS's own gcm.c, compiled once more under other names
 *     (gcm_portable.c). It serves every call the fast path does not take: the streaming
 *     API (starts/update/finish), nonces other than 12 bytes, 192-bit keys, CPUs without
 *     AES-NI and PCLMULQDQ, and every error case, so errors stay Mbed TLS's own;
 *   - clmul: one-shot AES-GCM (crypt_and_tag, auth_decrypt: the TLS record path) with
 *     AES-NI and PCLMULQDQ, four blocks per step and one GHASH reduction per four blocks
 *     (gcm_clmul.cpp).
 * Plain C: Mbed TLS's C sources include it. */
#ifndef EW_GCM_ALT_H
#define EW_GCM_ALT_H

#include <stdint.h>

/* Storage for the portable implementation's context (its real type exists only inside
 * gcm_portable.c, which checks at compile time that it fits). */
#define EW_GCM_PORTABLE_WORDS 80
typedef struct ew_gcm_portable {
    uint64_t MBEDTLS_PRIVATE(words)[EW_GCM_PORTABLE_WORDS];
} ew_gcm_portable;

#if !defined(EW_GCM_PORTABLE_TU)
typedef struct mbedtls_gcm_context {
    ew_gcm_portable MBEDTLS_PRIVATE(portable);
    uint64_t MBEDTLS_PRIVATE(rk)[15 * 2];    /* AES round keys, AES-NI layout */
    uint64_t MBEDTLS_PRIVATE(hpow)[4 * 2];   /* H, H^2, H^3, H^4, byte-reversed */
    unsigned char MBEDTLS_PRIVATE(rounds);   /* 10 or 14: the fast path is keyed; 0: it is not */
} mbedtls_gcm_context;
#endif

#endif /* EW_GCM_ALT_H */
