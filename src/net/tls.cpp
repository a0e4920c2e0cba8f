// TLS client sessions over PAL sockets. See tls.h for the contract.
// Every Mbed TLS version difference (2.28 vs 3.6) lives in this file.
#include "net/tls.h"

#include <string.h>

#include <mbedtls/error.h>
#include <mbedtls/version.h>
#include <mbedtls/x509.h>

#if MBEDTLS_VERSION_NUMBER >= 0x03000000 && defined(MBEDTLS_PSA_CRYPTO_C)
#include <psa/crypto.h>
#endif

#include "core/strbuf.h"
#include "net/tls_read_ahead.h"

namespace ew {
namespace {

// The values of MBEDTLS_ERR_NET_SEND_FAILED / RECV_FAILED (net_sockets.h is not used).
constexpr int kBioSendFailed = -0x004E;
constexpr int kBioRecvFailed = -0x004C;

#if MBEDTLS_VERSION_NUMBER >= 0x03000000
int ssl_state(const mbedtls_ssl_context* ssl) { return ssl->MBEDTLS_PRIVATE(state); }
#else
int ssl_state(const mbedtls_ssl_context* ssl) { return ssl->state; }
#endif

bool handshake_over(mbedtls_ssl_context* ssl) {
#if MBEDTLS_VERSION_NUMBER >= 0x03020000
    return mbedtls_ssl_is_handshake_over(ssl) != 0;
#else
    // 2.28: states after HANDSHAKE_OVER in the enum belong to the server side.
    return ssl_state(ssl) == MBEDTLS_SSL_HANDSHAKE_OVER;
#endif
}

bool is_tls13(const mbedtls_ssl_context* ssl) {
#if MBEDTLS_VERSION_NUMBER >= 0x03060000
    return mbedtls_ssl_get_version_number(ssl) == MBEDTLS_SSL_VERSION_TLS1_3;
#else
    return strcmp(mbedtls_ssl_get_version(ssl), "TLSv1.3") == 0;
#endif
}

// The TLS 1.3 client reports each NewSessionTicket through this code (3.6; 2.28 lacks it).
bool is_ticket_signal(int ret) {
#if defined(MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
    return ret == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET;
#else
    (void)ret;
    return false;
#endif
}

// Mbed TLS 3.6 answers WANT_READ when it has just recognised a post-handshake message
// (a TLS 1.3 NewSessionTicket) that it keeps buffered and handles on the NEXT read call:
// the socket may have nothing more to say, so the caller must not wait on it.
bool message_waiting(const mbedtls_ssl_context* ssl) { return mbedtls_ssl_check_pending(ssl) != 0; }

int entropy_source(void* /*ctx*/, unsigned char* out, size_t len) {
    return pal::entropy(out, len) == 0 ? 0 : MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
}

void append_mbedtls_error(StrBuf& sb, int ret) {
#if defined(MBEDTLS_ERROR_C)
    char text[96];
    mbedtls_strerror(ret, text, sizeof(text));
    sb.appendf("%s (-0x%04x)", text, static_cast<unsigned>(-ret));
#else
    sb.appendf("Mbed TLS error -0x%04x", static_cast<unsigned>(-ret));
#endif
}

void report_ca_error(StrBuf& err, const char* path, int ret) {
    err.appendf("CA file %s: ", path);
    if (ret == MBEDTLS_ERR_PK_FILE_IO_ERROR) {
        err.append("cannot read it");
    } else {
        err.append("no usable certificate: ");
        append_mbedtls_error(err, ret);
    }
}

// Parses a PEM bundle (nullptr or "" = the system bundle) into chain. Returns what
// mbedtls_x509_crt_parse_file returns: < 0 on failure (err says why), else the number of
// entries skipped as unparsable.
int parse_ca_file(mbedtls_x509_crt* chain, const char* path, StrBuf& err) {
    if (path == nullptr || path[0] == '\0') path = kSystemCaBundle;
#if defined(MBEDTLS_FS_IO)
    int ret = mbedtls_x509_crt_parse_file(chain, path);
    if (ret < 0) report_ca_error(err, path, ret);
    return ret;
#else
    (void)chain;
    err.appendf("CA file %s: this Mbed TLS build cannot read files; give the CA as PEM", path);
    return MBEDTLS_ERR_X509_FEATURE_UNAVAILABLE;
#endif
}

// "certificate: unknown CA (not trusted); host name mismatch (expected api.example.com)"
void describe_cert_flags(StrBuf& sb, uint32_t flags, const char* host) {
    struct Reason {
        uint32_t bits;
        const char* text;
    };
    static const Reason kReasons[] = {
        {MBEDTLS_X509_BADCERT_NOT_TRUSTED, "unknown CA (not trusted)"},
        {MBEDTLS_X509_BADCERT_CN_MISMATCH, nullptr},  // needs the host name
        {MBEDTLS_X509_BADCERT_EXPIRED, "expired"},
        {MBEDTLS_X509_BADCERT_FUTURE, "not yet valid"},
        {MBEDTLS_X509_BADCERT_REVOKED, "revoked"},
        {MBEDTLS_X509_BADCERT_MISSING, "missing (the server sent none)"},
        {MBEDTLS_X509_BADCERT_KEY_USAGE | MBEDTLS_X509_BADCERT_EXT_KEY_USAGE |
             MBEDTLS_X509_BADCERT_NS_CERT_TYPE,
         "not valid for a TLS server"},
        {MBEDTLS_X509_BADCERT_BAD_MD | MBEDTLS_X509_BADCERT_BAD_PK | MBEDTLS_X509_BADCERT_BAD_KEY,
         "weak or unsupported signature or key"},
    };
    sb.append("certificate: ");
    uint32_t rest = flags & ~static_cast<uint32_t>(MBEDTLS_X509_BADCERT_SKIP_VERIFY);
    bool first = true;
    for (const Reason& r : kReasons) {
        if (!(rest & r.bits)) continue;
        rest &= ~r.bits;
        if (!first) sb.append("; ");
        first = false;
        if (r.text) {
            sb.append(r.text);
        } else {
            sb.appendf("host name mismatch (expected %s)", host);
        }
    }
    if (rest) sb.appendf("%srejected (flags 0x%x)", first ? "" : "; ", static_cast<unsigned>(rest));
}

}  // namespace

const char* tls_status_name(TlsStatus s) {
    switch (s) {
        case TlsStatus::ok: return "ok";
        case TlsStatus::want_read: return "want_read";
        case TlsStatus::want_write: return "want_write";
        case TlsStatus::closed: return "closed";
        case TlsStatus::error: return "error";
    }
    return "?";
}

// ---- TlsClientConfig ------------------------------------------------------------------------

TlsClientConfig::TlsClientConfig() {
    mbedtls_ssl_config_init(&conf_);
    mbedtls_x509_crt_init(&ca_);
    mbedtls_ctr_drbg_init(&drbg_);
    for (Saved& s : saved_) {
        mbedtls_ssl_session_init(&s.session);
        s.used = false;
    }
    host_[0] = '\0';
    error_[0] = '\0';
}

TlsClientConfig::~TlsClientConfig() {
    forget_session();
    mbedtls_ssl_config_free(&conf_);
    mbedtls_x509_crt_free(&ca_);
    mbedtls_ctr_drbg_free(&drbg_);
}

void TlsClientConfig::reset() {
    forget_session();
    mbedtls_ssl_config_free(&conf_);
    mbedtls_x509_crt_free(&ca_);
    mbedtls_ctr_drbg_free(&drbg_);
    mbedtls_ssl_config_init(&conf_);
    mbedtls_x509_crt_init(&ca_);
    mbedtls_ctr_drbg_init(&drbg_);
    tickets_received_ = 0;
    ready_ = false;
    verify_ = true;
    ca_skipped_ = 0;
    host_[0] = '\0';
    error_[0] = '\0';
}

bool TlsClientConfig::setup(const char* host, bool verify, const char* ca_file, char* err, size_t err_cap) {
    TlsClientOptions opts;
    opts.ca_file = ca_file;
    opts.verify = verify;
    int ret = setup(opts);
    copy_str(host_, sizeof(host_), host ? host : "");
    if (err && err_cap) copy_str(err, err_cap, ret == 0 ? "" : error_);
    return ret == 0;
}

int TlsClientConfig::setup(const TlsClientOptions& opts) {
    reset();
    StrBuf err(error_, sizeof(error_));
    verify_ = opts.verify;
    int ret = 0;
#if MBEDTLS_VERSION_NUMBER >= 0x03000000 && defined(MBEDTLS_PSA_CRYPTO_C)
    // TLS 1.3 (on by default in 3.6) runs on PSA crypto; calling it again is harmless.
    if (psa_crypto_init() != PSA_SUCCESS) {
        err.append("TLS setup: PSA crypto initialisation failed");
        return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
    }
#endif
    static const unsigned char kPersonal[] = "edgeway-tls-client";
    ret = mbedtls_ctr_drbg_seed(&drbg_, entropy_source, nullptr, kPersonal, sizeof(kPersonal) - 1);
    if (ret != 0) {
        err.append("TLS setup: random generator: ");
        append_mbedtls_error(err, ret);
        return ret;
    }
    ret = mbedtls_ssl_config_defaults(&conf_, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                      MBEDTLS_SSL_PRESET_DEFAULT);
    if (ret != 0) {
        err.append("TLS setup: ");
        append_mbedtls_error(err, ret);
        return ret;
    }
    mbedtls_ssl_conf_rng(&conf_, mbedtls_ctr_drbg_random, &drbg_);
#if defined(EW_TLS_LEAN)
    // The lean build (platform/mbedtls_config.h): key exchange over X25519 and P-256 only.
    static const uint16_t kGroups[] = {MBEDTLS_SSL_IANA_TLS_GROUP_X25519, MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1,
                                       MBEDTLS_SSL_IANA_TLS_GROUP_NONE};
    mbedtls_ssl_conf_groups(&conf_, kGroups);
#endif
#if MBEDTLS_VERSION_NUMBER >= 0x03020000
    mbedtls_ssl_conf_min_tls_version(&conf_, MBEDTLS_SSL_VERSION_TLS1_2);
#else
    mbedtls_ssl_conf_min_version(&conf_, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
#endif
#if defined(MBEDTLS_SSL_SESSION_TICKETS) && defined(MBEDTLS_SSL_CLI_C)
    mbedtls_ssl_conf_session_tickets(&conf_, MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
#endif
#if defined(MBEDTLS_SSL_PROTO_TLS1_3) && defined(MBEDTLS_SSL_SESSION_TICKETS) && \
    defined(MBEDTLS_SSL_CLI_C) && MBEDTLS_VERSION_NUMBER >= 0x03060100
    // From 3.6.1 a TLS 1.3 client drops NewSessionTicket messages unless asked to report
    // them; they are this config's resumption tickets (taken in TlsSession::took_ticket).
    mbedtls_ssl_conf_tls13_enable_signal_new_session_tickets(
        &conf_, MBEDTLS_SSL_TLS1_3_SIGNAL_NEW_SESSION_TICKETS_ENABLED);
#endif

    if (!verify_) {
        mbedtls_ssl_conf_authmode(&conf_, MBEDTLS_SSL_VERIFY_NONE);
        ready_ = true;
        return 0;
    }
    mbedtls_ssl_conf_authmode(&conf_, MBEDTLS_SSL_VERIFY_REQUIRED);
    if (opts.ca_chain) {
        mbedtls_ssl_conf_ca_chain(&conf_, opts.ca_chain, nullptr);
        ready_ = true;
        return 0;
    }
    if (opts.ca_pem) {
        ret = mbedtls_x509_crt_parse(&ca_, reinterpret_cast<const unsigned char*>(opts.ca_pem),
                                     strlen(opts.ca_pem) + 1);
        if (ret < 0) report_ca_error(err, "(in memory)", ret);
    } else {
        ret = parse_ca_file(&ca_, opts.ca_file, err);
    }
    if (ret < 0) {
        mbedtls_x509_crt_free(&ca_);
        mbedtls_x509_crt_init(&ca_);
        return ret;
    }
    ca_skipped_ = ret;  // > 0: some entries did not parse, the others are in use
    mbedtls_ssl_conf_ca_chain(&conf_, &ca_, nullptr);
    ready_ = true;
    return 0;
}

TlsCaCache::~TlsCaCache() {
    for (Entry& e : entries_)
        if (e.used) mbedtls_x509_crt_free(&e.chain);
}

mbedtls_x509_crt* TlsCaCache::get(const char* path, char* err, size_t err_cap) {
    StrBuf msg(err, err_cap);
    if (path == nullptr || path[0] == '\0') path = kSystemCaBundle;
    Entry* slot = nullptr;
    for (Entry& e : entries_) {
        if (e.used && strcmp(e.path, path) == 0) return &e.chain;
        if (!e.used && slot == nullptr) slot = &e;
    }
    if (slot == nullptr) {
        msg.appendf("CA file %s: too many distinct CA files (cap %d)", path, EW_CAP_ENDPOINTS + 1);
        return nullptr;
    }
    mbedtls_x509_crt_init(&slot->chain);
    if (parse_ca_file(&slot->chain, path, msg) < 0) {
        mbedtls_x509_crt_free(&slot->chain);
        return nullptr;
    }
    copy_str(slot->path, sizeof slot->path, path);
    slot->used = true;
    return &slot->chain;
}

// ---- saved sessions (see tls.h: TLS 1.2 reusable, TLS 1.3 tickets single-use) ---------------

void TlsClientConfig::drop(Saved& s) {
    if (!s.used) return;
    mbedtls_ssl_session_free(&s.session);
    mbedtls_ssl_session_init(&s.session);
    s.used = false;
}

void TlsClientConfig::forget_session() {
    for (Saved& s : saved_) drop(s);
}

size_t TlsClientConfig::saved_count() const {
    size_t n = 0;
    for (const Saved& s : saved_) n += s.used ? 1 : 0;
    return n;
}

void TlsClientConfig::save_session(const mbedtls_ssl_context* ssl, bool single_use) {
    mbedtls_ssl_session fresh;
    mbedtls_ssl_session_init(&fresh);
    if (mbedtls_ssl_get_session(ssl, &fresh) != 0) {
        mbedtls_ssl_session_free(&fresh);
        return;
    }
    if (single_use) tickets_received_++;
    // One protocol at a time: a TLS 1.2 session replaces everything; a TLS 1.3 ticket
    // replaces a TLS 1.2 session, else takes a free slot or the oldest ticket's.
    Saved* slot = nullptr;
    for (Saved& s : saved_) {
        if (s.used && (!single_use || !s.single_use)) drop(s);
        if (!s.used && slot == nullptr) slot = &s;
    }
    if (slot == nullptr) {
        slot = &saved_[0];
        for (Saved& s : saved_)
            if (s.seq < slot->seq) slot = &s;
        drop(*slot);
    }
    // A plain C struct: ownership of its heap parts (ticket, peer cert) moves with the bytes.
    memcpy(&slot->session, &fresh, sizeof(fresh));
    slot->seq = ++seq_;
    slot->used = true;
    slot->single_use = single_use;
}

bool TlsClientConfig::offer_session(mbedtls_ssl_context* ssl) {
    Saved* newest = nullptr;
    for (Saved& s : saved_)
        if (s.used && (newest == nullptr || s.seq > newest->seq)) newest = &s;
    if (newest == nullptr) return false;
    // set_session copies the session into the context, so the cache's copy can go at once.
    bool offered = mbedtls_ssl_set_session(ssl, &newest->session) == 0;
    if (newest->single_use || !offered) drop(*newest);
    return offered;
}

// ---- TlsSession -----------------------------------------------------------------------------

TlsSession::TlsSession() {
    host_[0] = '\0';
    error_[0] = '\0';
}

TlsSession::~TlsSession() { free(); }

void TlsSession::free() {
    TlsReadAhead::drop(this);
    if (active_) mbedtls_ssl_free(&ssl_);
    active_ = false;
    config_ = nullptr;
    sock_ = pal::kNoSocket;
}

TlsStatus TlsSession::init(TlsClientConfig* config, pal::Socket sock, const char* host) {
    free();
    done_ = offered_ = saw_cert_ = resumed_ = cert_error_ = peer_eof_ = false;
    tickets_ = 0;
    verify_flags_ = 0;
    last_error_ = sock_err_ = 0;
    error_[0] = '\0';
    config_ = config;
    sock_ = sock;
    if (!host && config) host = config->host();
    copy_str(host_, sizeof(host_), host ? host : "");
    StrBuf err(error_, sizeof(error_));
    if (!config || !config->ready()) {
        err.append("TLS setup: the endpoint's TLS configuration is not ready");
        last_error_ = MBEDTLS_ERR_SSL_BAD_INPUT_DATA;
        return TlsStatus::error;
    }
    mbedtls_ssl_init(&ssl_);
    active_ = true;
    int ret = mbedtls_ssl_setup(&ssl_, &config->conf_);
    if (ret != 0) return fail(ret, "TLS setup");
    // The host name is verified against the certificate and sent as SNI. An IP literal
    // with verification off is not sent (SNI carries names only). See tls.h / the notes.
    pal::Addr literal;
    bool is_ip = pal::parse_addr(host_, 0, &literal) && strcmp(host_, "localhost") != 0;
    if (host_[0] && (config->verify() || !is_ip)) {
        ret = mbedtls_ssl_set_hostname(&ssl_, host_);
        if (ret != 0) return fail(ret, "TLS setup");
    }
    offered_ = config->offer_session(&ssl_);
    mbedtls_ssl_set_bio(&ssl_, this, bio_send, bio_recv, nullptr);
    return TlsStatus::ok;
}

int TlsSession::bio_send(void* ctx, const unsigned char* buf, size_t len) {
    auto* self = static_cast<TlsSession*>(ctx);
    pal::IoResult r = pal::send(self->sock_, buf, len);
    switch (r.status) {
        case pal::Io::ok: return static_cast<int>(r.n);
        case pal::Io::would_block: return MBEDTLS_ERR_SSL_WANT_WRITE;
        case pal::Io::closed: self->peer_eof_ = true; return kBioSendFailed;
        case pal::Io::error: break;
    }
    self->sock_err_ = r.err;
    return kBioSendFailed;
}

int TlsSession::bio_recv(void* ctx, unsigned char* buf, size_t len) {
    auto* self = static_cast<TlsSession*>(ctx);
    // Through the read-ahead: a record's header and body in one socket read (tls_read_ahead.h).
    pal::IoResult r = TlsReadAhead::recv(self, self->sock_, buf, len);
    switch (r.status) {
        case pal::Io::ok: return static_cast<int>(r.n);
        case pal::Io::would_block: return MBEDTLS_ERR_SSL_WANT_READ;
        case pal::Io::closed: self->peer_eof_ = true; return 0;
        case pal::Io::error: break;
    }
    self->sock_err_ = r.err;
    return kBioRecvFailed;
}

TlsStatus TlsSession::fail(int ret, const char* phase) {
    last_error_ = ret;
    StrBuf err(error_, sizeof(error_));
    uint32_t flags = mbedtls_ssl_get_verify_result(&ssl_);
    bool flags_known = flags != 0xFFFFFFFFu;
    if (flags_known) verify_flags_ = flags;
    uint32_t bad = flags & ~static_cast<uint32_t>(MBEDTLS_X509_BADCERT_SKIP_VERIFY);
    if (!done_ && config_ && config_->verify() && flags_known && bad != 0) {
        cert_error_ = true;
        describe_cert_flags(err, flags, host_);
    } else if (sock_err_ != 0) {
        err.appendf("%s: connection error: %s", phase, pal::strerror(sock_err_));
    } else if (peer_eof_ || ret == MBEDTLS_ERR_SSL_CONN_EOF) {
        err.appendf("%s: the server closed the connection", phase);
    } else {
        err.appendf("%s: ", phase);
        append_mbedtls_error(err, ret);
    }
    return TlsStatus::error;
}

void TlsSession::took_ticket() {
    bool tls13 = is_tls13(&ssl_);
    if (tls13 && tickets_ < 255) tickets_++;
    if (config_) config_->save_session(&ssl_, tls13);
}

TlsStatus TlsSession::handshake() {
    if (!active_) return TlsStatus::error;
    if (last_error_ != 0) return TlsStatus::error;
    if (done_) return TlsStatus::ok;
    // One state per step, so the route is visible: a full handshake passes through the
    // server Certificate state (TLS 1.2 and 1.3); an accepted session skips it.
    while (!handshake_over(&ssl_)) {
        if (ssl_state(&ssl_) == MBEDTLS_SSL_SERVER_CERTIFICATE) saw_cert_ = true;
        int ret = mbedtls_ssl_handshake_step(&ssl_);
        if (ret == 0) continue;
        if (ret == MBEDTLS_ERR_SSL_WANT_READ) return TlsStatus::want_read;
        if (ret == MBEDTLS_ERR_SSL_WANT_WRITE) return TlsStatus::want_write;
        if (is_ticket_signal(ret)) {
            took_ticket();
            continue;
        }
        return fail(ret, "TLS handshake");
    }
    done_ = true;
    resumed_ = offered_ && !saw_cert_;
    verify_flags_ = mbedtls_ssl_get_verify_result(&ssl_);
    // TLS 1.2: the session (id and/or ticket) is known now. TLS 1.3: tickets come after
    // the handshake, inside read()/write(), and are saved there.
    if (!is_tls13(&ssl_)) took_ticket();
    return TlsStatus::ok;
}

TlsStatus TlsSession::read(void* buf, size_t cap, size_t* n) {
    *n = 0;
    TlsStatus hs = handshake();
    if (hs != TlsStatus::ok) return hs;
    if (cap == 0) return TlsStatus::ok;
    for (int round = 0;; round++) {
        int ret = mbedtls_ssl_read(&ssl_, static_cast<unsigned char*>(buf), cap);
        if (ret > 0) {
            *n = static_cast<size_t>(ret);
            return TlsStatus::ok;
        }
        // A bounded number of buffered handshake messages in a row; then the loop's
        // pending() check brings us back.
        if (ret == MBEDTLS_ERR_SSL_WANT_READ && round < 16 && message_waiting(&ssl_)) continue;
        if (ret == MBEDTLS_ERR_SSL_WANT_READ) return TlsStatus::want_read;
        if (ret == MBEDTLS_ERR_SSL_WANT_WRITE) return TlsStatus::want_write;
        if (is_ticket_signal(ret)) {
            took_ticket();
            continue;
        }
        if (ret == 0 || ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || ret == MBEDTLS_ERR_SSL_CONN_EOF) {
            StrBuf err(error_, sizeof(error_));
            err.append(ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY
                           ? "TLS: the server closed the connection"
                           : "TLS: the server closed the connection without close_notify");
            return TlsStatus::closed;
        }
        return fail(ret, "TLS read");
    }
}

TlsStatus TlsSession::write(const void* buf, size_t len, size_t* n) {
    *n = 0;
    TlsStatus hs = handshake();
    if (hs != TlsStatus::ok) return hs;
    if (len == 0) return TlsStatus::ok;
    for (;;) {
        int ret = mbedtls_ssl_write(&ssl_, static_cast<const unsigned char*>(buf), len);
        if (ret >= 0) {
            *n = static_cast<size_t>(ret);
            return TlsStatus::ok;
        }
        if (ret == MBEDTLS_ERR_SSL_WANT_READ) return TlsStatus::want_read;
        if (ret == MBEDTLS_ERR_SSL_WANT_WRITE) return TlsStatus::want_write;
        if (is_ticket_signal(ret)) {
            took_ticket();
            continue;
        }
        return fail(ret, "TLS write");
    }
}

TlsStatus TlsSession::poll_post_handshake() {
    TlsStatus hs = handshake();
    if (hs != TlsStatus::ok) return hs;
    bool took = false;
    // Bounded: each pass consumes a record or returns; a server cannot keep us here forever.
    for (int round = 0; round < 16; round++) {
        unsigned char sink[16];
        int ret = mbedtls_ssl_read(&ssl_, sink, sizeof sink);
        if (is_ticket_signal(ret)) {
            took_ticket();
            took = true;
            continue;
        }
        if (ret == MBEDTLS_ERR_SSL_WANT_READ) {
            if (message_waiting(&ssl_)) continue;
            return took ? TlsStatus::ok : TlsStatus::want_read;
        }
        if (ret == MBEDTLS_ERR_SSL_WANT_WRITE) return TlsStatus::want_write;
        if (ret == 0 || ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || ret == MBEDTLS_ERR_SSL_CONN_EOF) {
            StrBuf err(error_, sizeof(error_));
            err.append("TLS: the server closed the connection");
            return TlsStatus::closed;
        }
        if (ret > 0) {
            // Nothing was asked: whatever this is, the connection cannot carry a request now.
            last_error_ = MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE;
            StrBuf err(error_, sizeof(error_));
            err.append("TLS: unexpected data from the server on an idle connection");
            return TlsStatus::error;
        }
        return fail(ret, "TLS read");
    }
    last_error_ = MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE;
    StrBuf err(error_, sizeof(error_));
    err.append("TLS: too many post-handshake messages from the server");
    return TlsStatus::error;
}

bool TlsSession::ticket_expected() const {
#if defined(MBEDTLS_SSL_PROTO_TLS1_3) && defined(MBEDTLS_SSL_SESSION_TICKETS)
    return active_ && done_ && last_error_ == 0 && tickets_ == 0 && is_tls13(&ssl_);
#else
    return false;
#endif
}

bool TlsSession::pending() const {
    if (!active_) return false;
    return mbedtls_ssl_get_bytes_avail(&ssl_) > 0 || mbedtls_ssl_check_pending(&ssl_) != 0 ||
           TlsReadAhead::held(this) > 0;
}

TlsStatus TlsSession::close_notify() {
    if (!active_ || !done_ || last_error_ != 0) return TlsStatus::error;
    int ret = mbedtls_ssl_close_notify(&ssl_);
    if (ret == 0) return TlsStatus::ok;
    if (ret == MBEDTLS_ERR_SSL_WANT_WRITE) return TlsStatus::want_write;
    if (ret == MBEDTLS_ERR_SSL_WANT_READ) return TlsStatus::want_read;
    return TlsStatus::error;  // the connection is going away anyway; not recorded
}

const char* TlsSession::version() const {
    return active_ && done_ ? mbedtls_ssl_get_version(&ssl_) : "";
}

const char* TlsSession::ciphersuite() const {
    return active_ && done_ ? mbedtls_ssl_get_ciphersuite(&ssl_) : "";
}

}  // namespace ew
