/* Mbed TLS's own GCM, compiled a second time under the names ew_gcm_portable_*: the
 * implementation behind edgeway's MBEDTLS_GCM_ALT wherever its AES-NI/PCLMULQDQ path does
 * not apply (gcm_alt.h), and the reference its tests compare that path against.
 * This file adds no GCM code: it includes the library's gcm.c from the source tree the
 * lean build compiles (EW_MBEDTLS_SOURCE), with MBEDTLS_GCM_ALT left undefined for this
 * translation unit only (platform/mbedtls_config.h reads EW_GCM_PORTABLE_TU). */
#define EW_GCM_PORTABLE_TU 1

#define mbedtls_gcm_context ew_gcm_portable_context
#define mbedtls_gcm_init ew_gcm_portable_init_
#define mbedtls_gcm_setkey ew_gcm_portable_setkey_
#define mbedtls_gcm_starts ew_gcm_portable_starts_
#define mbedtls_gcm_update_ad ew_gcm_portable_update_ad_
#define mbedtls_gcm_update ew_gcm_portable_update_
#define mbedtls_gcm_finish ew_gcm_portable_finish_
#define mbedtls_gcm_crypt_and_tag ew_gcm_portable_crypt_and_tag_
#define mbedtls_gcm_auth_decrypt ew_gcm_portable_auth_decrypt_
#define mbedtls_gcm_free ew_gcm_portable_free_
#define mbedtls_gcm_self_test ew_gcm_portable_self_test_

#include "library/gcm.c"

#include "gcm_alt.h"

/* The storage gcm_alt.h reserves must hold the real context, aligned as it needs. */
typedef char ew_gcm_portable_fits[(sizeof(ew_gcm_portable_context) <= sizeof(ew_gcm_portable) &&
                                   _Alignof(ew_gcm_portable_context) <= _Alignof(ew_gcm_portable))
                                      ? 1 : -1];

#define CTX(p) ((ew_gcm_portable_context *) (void *) (p))

void ew_gcm_portable_init(ew_gcm_portable *ctx)
{
    ew_gcm_portable_init_(CTX(ctx));
}

int ew_gcm_portable_setkey(ew_gcm_portable *ctx, mbedtls_cipher_id_t cipher,
                           const unsigned char *key, unsigned int keybits)
{
    return ew_gcm_portable_setkey_(CTX(ctx), cipher, key, keybits);
}

int ew_gcm_portable_starts(ew_gcm_portable *ctx, int mode, const unsigned char *iv, size_t iv_len)
{
    return ew_gcm_portable_starts_(CTX(ctx), mode, iv, iv_len);
}

int ew_gcm_portable_update_ad(ew_gcm_portable *ctx, const unsigned char *add, size_t add_len)
{
    return ew_gcm_portable_update_ad_(CTX(ctx), add, add_len);
}

int ew_gcm_portable_update(ew_gcm_portable *ctx, const unsigned char *input, size_t input_length,
                           unsigned char *output, size_t output_size, size_t *output_length)
{
    return ew_gcm_portable_update_(CTX(ctx), input, input_length, output, output_size,
                                   output_length);
}

int ew_gcm_portable_finish(ew_gcm_portable *ctx, unsigned char *output, size_t output_size,
                           size_t *output_length, unsigned char *tag, size_t tag_len)
{
    return ew_gcm_portable_finish_(CTX(ctx), output, output_size, output_length, tag, tag_len);
}

int ew_gcm_portable_crypt_and_tag(ew_gcm_portable *ctx, int mode, size_t length,
                                  const unsigned char *iv, size_t iv_len,
                                  const unsigned char *add, size_t add_len,
                                  const unsigned char *input, unsigned char *output,
                                  size_t tag_len, unsigned char *tag)
{
    return ew_gcm_portable_crypt_and_tag_(CTX(ctx), mode, length, iv, iv_len, add, add_len,
                                          input, output, tag_len, tag);
}

int ew_gcm_portable_auth_decrypt(ew_gcm_portable *ctx, size_t length,
                                 const unsigned char *iv, size_t iv_len,
                                 const unsigned char *add, size_t add_len,
                                 const unsigned char *tag, size_t tag_len,
                                 const unsigned char *input, unsigned char *output)
{
    return ew_gcm_portable_auth_decrypt_(CTX(ctx), length, iv, iv_len, add, add_len, tag,
                                         tag_len, input, output);
}

void ew_gcm_portable_free(ew_gcm_portable *ctx)
{
    ew_gcm_portable_free_(CTX(ctx));
}
