// edgeway's AES-GCM (platform/mbedtls/gcm_clmul.cpp, the lean build on x86-64) against the
// GCM specification's test vectors and, over thousands of shapes of record, against Mbed
// TLS's own implementation compiled beside it (gcm_portable.c).
#include <mbedtls/cipher.h>
#include <mbedtls/gcm.h>

#if defined(EW_GCM_CLMUL) && defined(MBEDTLS_GCM_ALT)

#include <stdint.h>
#include <string.h>

#include <string>
#include <vector>

#include "core/rng.h"
#include "ew_catch.h"
#include "gcm_portable.h"

namespace {

using Bytes = std::vector<unsigned char>;

Bytes hex(const char* s) {
    Bytes out;
    for (size_t i = 0; s[i] != 0 && s[i + 1] != 0; i += 2) {
        auto nib = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
        out.push_back(static_cast<unsigned char>(nib(s[i]) << 4 | nib(s[i + 1])));
    }
    return out;
}

struct Rng {  // reproducible inputs from the project's xorshift64*
    ew::Rng r;
    unsigned char byte() { return static_cast<unsigned char>(r.next() >> 24); }
    Bytes bytes(size_t n) {
        Bytes b(n);
        for (auto& c : b) c = byte();
        return b;
    }
};

bool cpu_has_clmul() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul") &&
           __builtin_cpu_supports("ssse3");
}

struct Gcm {  // both implementations, keyed alike
    mbedtls_gcm_context fast;
    ew_gcm_portable ref;
    Gcm(const Bytes& key) {
        mbedtls_gcm_init(&fast);
        ew_gcm_portable_init(&ref);
        const unsigned bits = static_cast<unsigned>(key.size() * 8);
        REQUIRE(mbedtls_gcm_setkey(&fast, MBEDTLS_CIPHER_ID_AES, key.data(), bits) == 0);
        REQUIRE(ew_gcm_portable_setkey(&ref, MBEDTLS_CIPHER_ID_AES, key.data(), bits) == 0);
    }
    ~Gcm() {
        mbedtls_gcm_free(&fast);
        ew_gcm_portable_free(&ref);
    }
    bool fast_path_keyed() const { return fast.MBEDTLS_PRIVATE(rounds) != 0; }
};

struct Vector {
    const char *key, *iv, *aad, *pt, *ct, *tag;
};

// The GCM specification's test cases 1 to 4 and 14, and case 16's inputs with a 256-bit key.
const Vector kVectors[] = {
    {"00000000000000000000000000000000", "000000000000000000000000", "", "", "",
     "58e2fccefa7e3061367f1d57a4e7455a"},
    {"00000000000000000000000000000000", "000000000000000000000000", "",
     "00000000000000000000000000000000", "0388dace60b6a392f328c2b971b2fe78",
     "ab6e47d42cec13bdf53a67b21257bddf"},
    {"feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888", "",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985",
     "4d5c2af327cd64a62cf35abd2ba6fab4"},
    {"feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
     "5bc94fbc3221a5db94fae95ae7121a47"},
    {"0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000",
     "", "00000000000000000000000000000000", "cea7403d4d606b6e074ec5d3baf39d18",
     "d0d1c8a799996bf0265b98b5d48ab919"},
    {"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

}  // namespace

TEST_CASE("AES-GCM: the GCM specification's vectors, both directions, on the fast path") {
    for (const Vector& v : kVectors) {
        const Bytes key = hex(v.key), iv = hex(v.iv), aad = hex(v.aad), pt = hex(v.pt),
                    ct = hex(v.ct), tag = hex(v.tag);
        Gcm g(key);
        if (cpu_has_clmul()) REQUIRE(g.fast_path_keyed());
        Bytes out(pt.size() + 1), t(16);
        REQUIRE(mbedtls_gcm_crypt_and_tag(&g.fast, MBEDTLS_GCM_ENCRYPT, pt.size(), iv.data(), iv.size(),
                                          aad.data(), aad.size(), pt.data(), out.data(), 16, t.data()) == 0);
        CHECK(Bytes(out.begin(), out.begin() + static_cast<long>(pt.size())) == ct);
        CHECK(t == tag);
        Bytes back(ct.size() + 1);
        REQUIRE(mbedtls_gcm_auth_decrypt(&g.fast, ct.size(), iv.data(), iv.size(), aad.data(), aad.size(),
                                         tag.data(), 16, ct.data(), back.data()) == 0);
        CHECK(Bytes(back.begin(), back.begin() + static_cast<long>(pt.size())) == pt);
    }
}

TEST_CASE("AES-GCM: every record shape gives Mbed TLS's own ciphertext and tag") {
    Rng rng;
    const size_t aad_lens[] = {0, 1, 13, 15, 16, 17, 31, 64, 65, 100};
    const size_t tag_lens[] = {16, 12, 8, 4};
    std::vector<size_t> lengths;
    for (size_t n = 0; n <= 260; ++n) lengths.push_back(n);
    for (size_t n : {511, 1000, 1024, 4096 + 7, 16384, 16384 + 17}) lengths.push_back(n);
    int cases = 0;
    for (size_t key_len : {16, 32}) {
        Gcm g(rng.bytes(key_len));
        if (cpu_has_clmul()) REQUIRE(g.fast_path_keyed());
        for (size_t len : lengths) {
            const size_t aad_len = aad_lens[len % 10];
            const size_t tag_len = tag_lens[len % 4];
            const bool in_place = len % 3 == 0;
            const Bytes iv = rng.bytes(12), aad = rng.bytes(aad_len), pt = rng.bytes(len);
            Bytes ct_ref(len + 1), tag_ref(16), tag(16);
            REQUIRE(ew_gcm_portable_crypt_and_tag(&g.ref, MBEDTLS_GCM_ENCRYPT, len, iv.data(), 12,
                                                  aad.data(), aad_len, pt.data(), ct_ref.data(),
                                                  tag_len, tag_ref.data()) == 0);
            Bytes buf = pt;
            buf.resize(len + 1);
            Bytes ct(len + 1);
            unsigned char* out = in_place ? buf.data() : ct.data();
            REQUIRE(mbedtls_gcm_crypt_and_tag(&g.fast, MBEDTLS_GCM_ENCRYPT, len, iv.data(), 12, aad.data(),
                                              aad_len, buf.data(), out, tag_len, tag.data()) == 0);
            INFO("key " << key_len << " length " << len << " aad " << aad_len << " tag " << tag_len
                        << (in_place ? " in place" : ""));
            REQUIRE(memcmp(out, ct_ref.data(), len) == 0);
            REQUIRE(memcmp(tag.data(), tag_ref.data(), tag_len) == 0);

            // Decrypt (in place when encrypted in place), then with one bit changed in the
            // ciphertext, the additional data or the tag: refused, and no plaintext left.
            Bytes plain(len + 1);
            unsigned char* dst = in_place ? out : plain.data();
            REQUIRE(mbedtls_gcm_auth_decrypt(&g.fast, len, iv.data(), 12, aad.data(), aad_len, tag.data(),
                                             tag_len, out, dst) == 0);
            REQUIRE(memcmp(dst, pt.data(), len) == 0);
            for (int what = 0; what < 3; ++what) {
                Bytes c = ct_ref, a = aad, t = tag_ref;
                if (what == 0 && len == 0) continue;
                if (what == 1 && aad_len == 0) continue;
                Bytes& victim = what == 0 ? c : what == 1 ? a : t;
                const size_t span = what == 0 ? len : what == 1 ? aad_len : tag_len;
                victim[rng.byte() % span] ^= static_cast<unsigned char>(1u << (rng.byte() % 8));
                Bytes p(len + 1, 0x5a);
                REQUIRE(mbedtls_gcm_auth_decrypt(&g.fast, len, iv.data(), 12, a.data(), aad_len, t.data(),
                                                 tag_len, c.data(), p.data()) == MBEDTLS_ERR_GCM_AUTH_FAILED);
                REQUIRE(Bytes(p.begin(), p.begin() + static_cast<long>(len)) == Bytes(len, 0));
            }
            ++cases;
        }
    }
    CHECK(cases == 2 * static_cast<int>(lengths.size()));
}

TEST_CASE("AES-GCM: what the fast path does not take gives Mbed TLS's own answers") {
    Rng rng;
    const Bytes pt = rng.bytes(77), aad = rng.bytes(20);
    SECTION("nonces other than 12 bytes, and a 192-bit key") {
        for (size_t key_len : {16, 24, 32}) {
            Gcm g(rng.bytes(key_len));
            for (size_t iv_len : {1, 8, 12, 16, 60}) {
                const Bytes iv = rng.bytes(iv_len);
                Bytes a(pt.size()), b(pt.size()), ta(16), tb(16);
                REQUIRE(mbedtls_gcm_crypt_and_tag(&g.fast, MBEDTLS_GCM_ENCRYPT, pt.size(), iv.data(), iv_len,
                                                  aad.data(), aad.size(), pt.data(), a.data(), 16, ta.data()) == 0);
                REQUIRE(ew_gcm_portable_crypt_and_tag(&g.ref, MBEDTLS_GCM_ENCRYPT, pt.size(), iv.data(), iv_len,
                                                      aad.data(), aad.size(), pt.data(), b.data(), 16, tb.data()) == 0);
                CHECK(a == b);
                CHECK(ta == tb);
            }
        }
    }
    SECTION("invalid arguments: the same error codes") {
        Gcm g(rng.bytes(16));
        const Bytes iv = rng.bytes(12);
        Bytes out(pt.size() + 16), tag(16);
        for (size_t tag_len : {0, 3, 17}) {
            const int fast = mbedtls_gcm_crypt_and_tag(&g.fast, MBEDTLS_GCM_ENCRYPT, pt.size(), iv.data(), 12,
                                                       aad.data(), aad.size(), pt.data(), out.data(), tag_len,
                                                       tag.data());
            const int ref = ew_gcm_portable_crypt_and_tag(&g.ref, MBEDTLS_GCM_ENCRYPT, pt.size(), iv.data(), 12,
                                                          aad.data(), aad.size(), pt.data(), out.data(), tag_len,
                                                          tag.data());
            CHECK(fast != 0);
            CHECK(fast == ref);
        }
        CHECK(mbedtls_gcm_crypt_and_tag(&g.fast, MBEDTLS_GCM_ENCRYPT, 0, iv.data(), 0, nullptr, 0, nullptr,
                                        nullptr, 16, tag.data()) == MBEDTLS_ERR_GCM_BAD_INPUT);
        Bytes buf(pt.size() + 8);  // an output that starts inside its input
        CHECK(mbedtls_gcm_crypt_and_tag(&g.fast, MBEDTLS_GCM_ENCRYPT, pt.size(), iv.data(), 12, nullptr, 0,
                                        buf.data(), buf.data() + 8, 16, tag.data()) == MBEDTLS_ERR_GCM_BAD_INPUT);
    }
    SECTION("the streaming calls equal the one-shot fast path") {
        Gcm g(rng.bytes(32));
        const Bytes iv = rng.bytes(12);
        Bytes one(pt.size()), tag1(16);
        REQUIRE(mbedtls_gcm_crypt_and_tag(&g.fast, MBEDTLS_GCM_ENCRYPT, pt.size(), iv.data(), 12, aad.data(),
                                          aad.size(), pt.data(), one.data(), 16, tag1.data()) == 0);
        Bytes streamed(pt.size()), tag2(16);
        size_t n = 0, done = 0;
        REQUIRE(mbedtls_gcm_starts(&g.fast, MBEDTLS_GCM_ENCRYPT, iv.data(), 12) == 0);
        REQUIRE(mbedtls_gcm_update_ad(&g.fast, aad.data(), aad.size()) == 0);
        REQUIRE(mbedtls_gcm_update(&g.fast, pt.data(), 30, streamed.data(), 30, &n) == 0);
        done += n;
        REQUIRE(mbedtls_gcm_update(&g.fast, pt.data() + 30, pt.size() - 30, streamed.data() + 30,
                                   pt.size() - 30, &n) == 0);
        done += n;
        REQUIRE(mbedtls_gcm_finish(&g.fast, nullptr, 0, &n, tag2.data(), 16) == 0);
        CHECK(done == pt.size());
        CHECK(streamed == one);
        CHECK(tag2 == tag1);
    }
}

TEST_CASE("AES-GCM: the cipher layer (the TLS record path) reaches the fast path") {
    // TLS 1.2 and 1.3 records are sealed through mbedtls_cipher_auth_encrypt_ext.
    Rng rng;
    const Bytes key = rng.bytes(16), iv = rng.bytes(12), aad = rng.bytes(13), pt = rng.bytes(300);
    mbedtls_cipher_context_t c;
    mbedtls_cipher_init(&c);
    REQUIRE(mbedtls_cipher_setup(&c, mbedtls_cipher_info_from_type(MBEDTLS_CIPHER_AES_128_GCM)) == 0);
    REQUIRE(mbedtls_cipher_setkey(&c, key.data(), 128, MBEDTLS_ENCRYPT) == 0);
    Bytes sealed(pt.size() + 16);
    size_t olen = 0;
    REQUIRE(mbedtls_cipher_auth_encrypt_ext(&c, iv.data(), 12, aad.data(), aad.size(), pt.data(), pt.size(),
                                            sealed.data(), sealed.size(), &olen, 16) == 0);
    REQUIRE(olen == pt.size() + 16);
    if (cpu_has_clmul())
        CHECK(static_cast<mbedtls_gcm_context*>(c.MBEDTLS_PRIVATE(cipher_ctx))->MBEDTLS_PRIVATE(rounds) == 10);
    mbedtls_cipher_free(&c);
    Gcm g(key);
    Bytes ct(pt.size()), tag(16);
    REQUIRE(ew_gcm_portable_crypt_and_tag(&g.ref, MBEDTLS_GCM_ENCRYPT, pt.size(), iv.data(), 12, aad.data(),
                                          aad.size(), pt.data(), ct.data(), 16, tag.data()) == 0);
    CHECK(Bytes(sealed.begin(), sealed.begin() + 300) == ct);
    CHECK(Bytes(sealed.begin() + 300, sealed.end()) == tag);
}

#endif  // EW_GCM_CLMUL && MBEDTLS_GCM_ALT
