// Mbed TLS's own GCM (its gcm.c under other names, gcm_portable.c): the implementation
// edgeway's AES-GCM falls back to, and the reference its tests compare against.
#ifndef EW_GCM_PORTABLE_H
#define EW_GCM_PORTABLE_H

#include <mbedtls/gcm.h>

#ifdef __cplusplus
extern "C" {
#endif

void ew_gcm_portable_init(ew_gcm_portable *ctx);
int ew_gcm_portable_setkey(ew_gcm_portable *ctx, mbedtls_cipher_id_t cipher,
                           const unsigned char *key, unsigned int keybits);
int ew_gcm_portable_starts(ew_gcm_portable *ctx, int mode, const unsigned char *iv, size_t iv_len);
int ew_gcm_portable_update_ad(ew_gcm_portable *ctx, const unsigned char *add, size_t add_len);
int ew_gcm_portable_update(ew_gcm_portable *ctx, const unsigned char *input, size_t input_length,
                           unsigned char *output, size_t output_size, size_t *output_length);
int ew_gcm_portable_finish(ew_gcm_portable *ctx, unsigned char *output, size_t output_size,
                           size_t *output_length, unsigned char *tag, size_t tag_len);
int ew_gcm_portable_crypt_and_tag(ew_gcm_portable *ctx, int mode, size_t length,
                                  const unsigned char *iv, size_t iv_len,
                                  const unsigned char *add, size_t add_len,
                                  const unsigned char *input, unsigned char *output,
                                  size_t tag_len, unsigned char *tag);
int ew_gcm_portable_auth_decrypt(ew_gcm_portable *ctx, size_t length,
                                 const unsigned char *iv, size_t iv_len,
                                 const unsigned char *add, size_t add_len,
                                 const unsigned char *tag, size_t tag_len,
                                 const unsigned char *input, unsigned char *output);
void ew_gcm_portable_free(ew_gcm_portable *ctx);

#ifdef __cplusplus
}
#endif

#endif  // EW_GCM_PORTABLE_H
