// edgeway's own Mbed TLS 3.6 configuration: the lean static build for devices
// (cmake -DEW_MBEDTLS_SOURCE=DIR, see the README "A lean static build"). It replaces
// Mbed TLS's default config (MBEDTLS_CONFIG_FILE) for the library AND for edgeway, which
// must see the same struct layouts.
//
// What edgeway needs and nothing more: a TLS client (no server, no DTLS); TLS 1.2 and
// 1.3; ECDHE over X25519 and P-256; AES-GCM and ChaCha20-Poly1305 (no CBC, no legacy
// ciphers, no static RSA key exchange); X.509 chains of RSA (PKCS#1 v1.5 and PSS) and
// ECDSA certificates from a PEM CA file; session tickets for resumption.
// P-384 is verified in certificates only (common CA keys, e.g. Let's Encrypt's E5/E6 and
// ISRG Root X2) and is not offered as a key exchange group (tls.cpp, EW_TLS_LEAN).
#ifndef EW_MBEDTLS_CONFIG_H
#define EW_MBEDTLS_CONFIG_H

#define EW_TLS_LEAN 1  // tls.cpp: offer only X25519 and P-256

// ---- platform ----------------------------------------------------------------------------
#define MBEDTLS_HAVE_ASM
#define MBEDTLS_HAVE_TIME
#define MBEDTLS_HAVE_TIME_DATE  // certificate validity
#define MBEDTLS_PLATFORM_C
#define MBEDTLS_FS_IO           // ca_file
#define MBEDTLS_ERROR_C         // readable messages in last_error and the logs
#define MBEDTLS_ENTROPY_C       // PSA crypto's own random generator
#define MBEDTLS_CTR_DRBG_C      // the config's generator, seeded from pal::entropy
#define MBEDTLS_AESNI_C         // amd64: AES-NI when the CPU has it (runtime check)
#define MBEDTLS_AESCE_C         // aarch64: the ARMv8 crypto extension (runtime check)

// ---- TLS ------------------------------------------------------------------------------------
#define MBEDTLS_SSL_TLS_C
#define MBEDTLS_SSL_CLI_C
#define MBEDTLS_SSL_PROTO_TLS1_2
#define MBEDTLS_SSL_PROTO_TLS1_3
#define MBEDTLS_SSL_TLS1_3_COMPATIBILITY_MODE  // middlebox compatibility (RFC 8446 D.4)
#define MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_EPHEMERAL_ENABLED
#define MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK_EPHEMERAL_ENABLED  // resumption with (EC)DHE
#define MBEDTLS_KEY_EXCHANGE_ECDHE_ECDSA_ENABLED  // TLS 1.2
#define MBEDTLS_KEY_EXCHANGE_ECDHE_RSA_ENABLED    // TLS 1.2
#define MBEDTLS_SSL_SESSION_TICKETS
#define MBEDTLS_SSL_SERVER_NAME_INDICATION
#define MBEDTLS_SSL_EXTENDED_MASTER_SECRET
#define MBEDTLS_SSL_KEEP_PEER_CERTIFICATE  // required by Mbed TLS's TLS 1.3 code
#define MBEDTLS_SSL_ALL_ALERT_MESSAGES

// Record buffers, allocated per live connection. Incoming records are up to 16 KiB (servers
// do not negotiate smaller ones), so the input buffer stays full size. Outgoing: our
// request head is at most EW_CAP_UPSTREAM_HEAD (1536) bytes and a typical chat request
// body a few KiB; a larger write is split into records by Mbed TLS (ssl_write returns a
// partial count, which UpstreamConn::step_send already handles). EW_MBEDTLS_OUT_CONTENT_LEN
// (CMake) overrides it.
#define MBEDTLS_SSL_IN_CONTENT_LEN 16384
#ifndef EW_MBEDTLS_OUT_CONTENT_LEN
#define EW_MBEDTLS_OUT_CONTENT_LEN 4096
#endif
#define MBEDTLS_SSL_OUT_CONTENT_LEN EW_MBEDTLS_OUT_CONTENT_LEN

#define MBEDTLS_SSL_CIPHERSUITES                                                                 \
    MBEDTLS_TLS1_3_AES_128_GCM_SHA256, MBEDTLS_TLS1_3_AES_256_GCM_SHA384,                        \
        MBEDTLS_TLS1_3_CHACHA20_POLY1305_SHA256, MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, \
        MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,                                          \
        MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,                                    \
        MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, \
        MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256

// ---- crypto -----------------------------------------------------------------------------------
#define MBEDTLS_PSA_CRYPTO_C  // TLS 1.3 runs on PSA
#define MBEDTLS_CIPHER_C
#define MBEDTLS_MD_C
#define MBEDTLS_AES_C
#define MBEDTLS_GCM_C
// x86-64: edgeway's AES-GCM for the record path (AES-NI and PCLMULQDQ, four blocks per step;
// platform/mbedtls/gcm_clmul.cpp), over Mbed TLS's own GCM for everything else
// (platform/mbedtls/gcm_portable.c, which compiles gcm.c without this define).
// cmake/mbedtls_source.cmake sets EW_GCM_CLMUL for x86-64 targets.
#if defined(EW_GCM_CLMUL) && !defined(EW_GCM_PORTABLE_TU)
#define MBEDTLS_GCM_ALT
#endif
#define MBEDTLS_CHACHA20_C
#define MBEDTLS_POLY1305_C
#define MBEDTLS_CHACHAPOLY_C
#define MBEDTLS_SHA224_C  // with SHA-256 (one module)
#define MBEDTLS_SHA256_C
#define MBEDTLS_SHA384_C
#define MBEDTLS_SHA512_C  // SHA-384 is computed by it
#define MBEDTLS_HKDF_C    // TLS 1.3 key schedule
#define MBEDTLS_BIGNUM_C
#define MBEDTLS_ECP_C
#define MBEDTLS_ECDH_C
#define MBEDTLS_ECDSA_C
#define MBEDTLS_ECP_DP_CURVE25519_ENABLED
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
#define MBEDTLS_ECP_DP_SECP384R1_ENABLED  // certificates only (see above)
#define MBEDTLS_ECP_NIST_OPTIM
#define MBEDTLS_RSA_C
#define MBEDTLS_PKCS1_V15
#define MBEDTLS_PKCS1_V21  // RSA-PSS: TLS 1.3 with RSA certificates

// ---- X.509 and keys ----------------------------------------------------------------------------
#define MBEDTLS_ASN1_PARSE_C
#define MBEDTLS_ASN1_WRITE_C  // ECDSA signatures are converted for PSA
#define MBEDTLS_OID_C
#define MBEDTLS_BASE64_C
#define MBEDTLS_PEM_PARSE_C
#define MBEDTLS_PK_C
#define MBEDTLS_PK_PARSE_C
#define MBEDTLS_X509_USE_C
#define MBEDTLS_X509_CRT_PARSE_C

#endif  // EW_MBEDTLS_CONFIG_H
