// TLS client sessions with Mbed TLS directly over a PAL socket (non-blocking BIO).
//
// TlsClientConfig: one per upstream endpoint, set up at start-up or reload. It holds the
// shared mbedtls_ssl_config, the CA chain, a CTR-DRBG seeded from pal::entropy, and the
// sessions saved for resumption. A config must outlive every TlsSession that uses it.
//
// Resumption (see the "TLS sessions" notes in the README):
// - TLS 1.2: the session from the last full handshake (session id and/or RFC 5077 ticket)
//   is offered by every new connection until a newer one replaces it.
// - TLS 1.3: each NewSessionTicket is kept in a small cache (EW_CAP_TLS_TICKETS, newest
//   first) and offered ONCE: init() takes it out of the cache (RFC 8446 section C.4, no
//   ticket reuse, so connections cannot be linked by it). The server sends fresh tickets on
//   every connection, full or resumed, and those refill the cache.
// - Tickets come after the TLS 1.3 handshake. A connection that exchanges data reads them
//   inside read(); one that only handshakes (a `tls` probe) or sits parked must call
//   poll_post_handshake() when its socket is readable, and should not close while
//   ticket_expected() says the server has not sent one yet (bounded by a deadline).
//
// TlsSession: one per connection, embedded in a connection slot (no allocation by edgeway;
// Mbed TLS callocs its record buffers in init(): MBEDTLS_SSL_IN_CONTENT_LEN +
// MBEDTLS_SSL_OUT_CONTENT_LEN, 16 KiB each by default, 16 + 4 KiB in the lean build of
// platform/mbedtls_config.h, plus overhead, so the caller bounds the number of live sessions). It never waits: every call returns want_read/want_write
// when the socket would block, and the caller polls for kIn/kOut and calls again.
//
// Builds against Mbed TLS 2.28 and 3.6; version differences stay inside tls.cpp.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "core/caps.h"
#include "pal.h"

namespace ew {

enum class TlsStatus : uint8_t {
    ok,          // done (handshake complete / bytes moved)
    want_read,   // wait for kIn on the socket, then repeat the same call
    want_write,  // wait for kOut on the socket, then repeat the same call
    closed,      // read: the peer ended the stream (close_notify or EOF)
    error,       // failed; error_text() says why; the session is unusable
};

const char* tls_status_name(TlsStatus s);

struct TlsClientOptions {
    mbedtls_x509_crt* ca_chain = nullptr;  // a parsed chain shared with other configs (TlsCaCache); wins
    const char* ca_file = nullptr;  // PEM bundle; nullptr or "" = kSystemCaBundle
    const char* ca_pem = nullptr;   // or PEM text in memory (NUL-terminated); wins over ca_file
    bool verify = true;             // false: no certificate or host name check (tls_verify = false)
};


constexpr const char* kSystemCaBundle = "/etc/ssl/certs/ca-certificates.crt";

// Parsed CA bundles, shared by every endpoint that names the same file. The system bundle
// parses to about 465 KiB of heap: once per agent, not once per endpoint. Entries live as
// long as the process (a reload may add some; sessions may still point at old ones).
class TlsCaCache {
public:
    TlsCaCache() = default;
    ~TlsCaCache();
    TlsCaCache(const TlsCaCache&) = delete;
    TlsCaCache& operator=(const TlsCaCache&) = delete;
    // The chain for `path` ("" = the system bundle), parsed on first use; nullptr with a
    // message in err on failure.
    mbedtls_x509_crt* get(const char* path, char* err, size_t err_cap);

private:
    struct Entry {
        char path[EW_CAP_PATH];
        mbedtls_x509_crt chain;
        bool used;
    };
    Entry entries_[EW_CAP_ENDPOINTS + 2] = {};  // the system bundle, one per endpoint, the telemetry broker's
};

class TlsClientConfig {
public:
    TlsClientConfig();
    ~TlsClientConfig();
    TlsClientConfig(const TlsClientConfig&) = delete;
    TlsClientConfig& operator=(const TlsClientConfig&) = delete;

    // Start-up / reload only: reads the CA file. Returns 0, or a negative Mbed TLS error
    // with error_text() set, e.g. "CA file /x.pem: cannot read it". A second call first
    // resets the config (no session may be using it then).
    int setup(const TlsClientOptions& opts);
    // The same from an endpoint's settings: `host` (kept, see host()) becomes the default
    // name for sessions; ca_file nullptr or "" = system bundle. True when ready; on failure
    // the message is also copied to err (if given).
    bool setup(const char* host, bool verify, const char* ca_file, char* err, size_t err_cap);
    void reset();
    const char* host() const { return host_; }

    bool ready() const { return ready_; }
    bool verify() const { return verify_; }
    const char* error_text() const { return error_; }
    int ca_skipped() const { return ca_skipped_; }  // certificates in the bundle that did not parse

    bool has_saved_session() const { return saved_count() > 0; }
    size_t saved_count() const;  // sessions that a new connection could offer
    uint32_t tickets_received() const { return tickets_received_; }  // TLS 1.3, since setup
    void forget_session();  // drop every saved session (the next handshake is a full one)

private:
    friend class TlsSession;
    struct Saved {
        mbedtls_ssl_session session;
        uint32_t seq;     // larger = newer
        bool used;
        bool single_use;  // a TLS 1.3 ticket: offered once, then dropped
    };
    void save_session(const mbedtls_ssl_context* ssl, bool single_use);
    // Sets the newest saved session on ssl (dropping it from the cache when single-use).
    bool offer_session(mbedtls_ssl_context* ssl);
    void drop(Saved& s);

    mbedtls_ssl_config conf_;
    mbedtls_x509_crt ca_;
    mbedtls_ctr_drbg_context drbg_;
    Saved saved_[EW_CAP_TLS_TICKETS];
    uint32_t seq_ = 0;
    uint32_t tickets_received_ = 0;
    bool ready_ = false;
    bool verify_ = true;
    int ca_skipped_ = 0;
    char host_[EW_CAP_HOST];
    char error_[EW_CAP_ERROR_TEXT];
};

class TlsSession {
public:
    TlsSession();
    ~TlsSession();
    TlsSession(const TlsSession&) = delete;
    TlsSession& operator=(const TlsSession&) = delete;

    // Binds a session to a socket (connected, or connecting: the handshake simply waits
    // for it) and to the host name that the certificate must carry, also sent as SNI
    // (nullptr = the config's host()).
    // Does not take ownership of the socket. The session must not move while active
    // (Mbed TLS keeps a pointer to it). Offers the config's saved session, if any.
    TlsStatus init(TlsClientConfig* config, pal::Socket sock, const char* host = nullptr);

    // Drives the handshake; ok once complete (and on every later call).
    TlsStatus handshake();

    // Reads decrypted bytes: ok with *n > 0; closed at the end of the stream; want_* when
    // nothing is buffered. Runs the handshake first if it is not complete.
    TlsStatus read(void* buf, size_t cap, size_t* n);

    // Writes up to len bytes (one record of at most 16 KiB per call): ok with *n <= len.
    // Contract (Mbed TLS rule): after want_read/want_write, the NEXT write must repeat the
    // same call with the same buffer contents and the same len; the bytes were already
    // taken and encrypted by the first call, and the repeat reports them written (*n).
    // Reads may happen in between. Runs the handshake first if it is not complete.
    TlsStatus write(const void* buf, size_t len, size_t* n);

    // For a connection with no exchange in progress (parked, or a `tls` probe done with its
    // handshake), when its socket is readable: takes post-handshake messages (TLS 1.3
    // NewSessionTicket, saved in the config for the next connection). Never waits.
    //   ok          one ticket or more was taken by this call
    //   want_read   nothing (more) to take: poll for kIn and call again
    //   want_write  Mbed TLS must write first: poll for kOut and call again
    //   closed      the server ended the connection
    //   error       failed, or the server sent application data nobody asked for
    //               (error_text() says so): close the connection
    // Runs the handshake first if it is not complete.
    TlsStatus poll_post_handshake();

    // TLS 1.3 and no ticket has arrived on this connection yet (the server normally sends
    // one right after the handshake): a connection closed now leaves the next one without
    // a ticket to resume. Always false for TLS 1.2 (its session is saved in handshake()).
    bool ticket_expected() const;
    uint8_t tickets_taken() const { return tickets_; }  // on this connection

    // True when decrypted or received-but-unprocessed bytes sit inside Mbed TLS or in the
    // read-ahead (tls_read_ahead.h): the loop must call read() again instead of sleeping
    // in poll (the socket may show nothing).
    bool pending() const;

    // Sends close_notify (best effort: ok, want_write, or error). Then call free().
    TlsStatus close_notify();

    // Releases the Mbed TLS context (its buffers). Does not close the socket. Idempotent.
    void free();

    bool active() const { return active_; }
    bool handshake_done() const { return done_; }
    // The handshake was abbreviated: the server accepted the offered session (TLS 1.2
    // session id or ticket, TLS 1.3 ticket), so no certificate was sent or verified.
    bool resumed() const { return resumed_; }
    bool cert_error() const { return cert_error_; }  // failed on certificate verification
    uint32_t verify_flags() const { return verify_flags_; }  // MBEDTLS_X509_BADCERT_* bits
    int last_error() const { return last_error_; }  // Mbed TLS code of the failure, 0 if none
    int socket_error() const { return sock_err_; }  // errno-style code from the socket, 0 if none
    const char* error_text() const { return error_; }
    const char* version() const;      // "TLSv1.2", "TLSv1.3" (after the handshake)
    const char* ciphersuite() const;  // IANA-style name (after the handshake)
    pal::Socket socket() const { return sock_; }

private:
    static int bio_send(void* ctx, const unsigned char* buf, size_t len);
    static int bio_recv(void* ctx, unsigned char* buf, size_t len);
    TlsStatus fail(int ret, const char* phase);
    void took_ticket();

    mbedtls_ssl_context ssl_;
    TlsClientConfig* config_ = nullptr;
    pal::Socket sock_ = pal::kNoSocket;
    bool active_ = false;
    bool done_ = false;
    bool offered_ = false;    // a saved session was set on this context
    bool saw_cert_ = false;   // the handshake went through the server Certificate state
    bool resumed_ = false;
    bool cert_error_ = false;
    bool peer_eof_ = false;
    uint8_t tickets_ = 0;     // TLS 1.3 tickets taken on this connection (saturating)
    uint32_t verify_flags_ = 0;
    int last_error_ = 0;
    int sock_err_ = 0;
    char host_[EW_CAP_HOST];
    char error_[EW_CAP_ERROR_TEXT];
};

}  // namespace ew
