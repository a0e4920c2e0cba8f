// The byte transport under an upstream connection: plain TCP or TLS, one interface
// (coreHTTP's transport_interface.h is the model). UpstreamConn drives it and never asks
// which one it has; a test supplies an in-memory implementation.
//
// Readiness: `socket()` is what the loop polls (kNoSocket for an in-memory transport),
// `pending()` says progress is possible without waiting (decrypted TLS bytes, or a test
// transport with something scripted), and `wants_write()` that the last call needs
// writability before it can go on (TLS reading a renegotiation, or a handshake step).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "net/tls.h"
#include "pal.h"

namespace ew {

enum class TransportStep : uint8_t { done, in_progress, error };

class Transport {
public:
    // Starts connecting to `addr`; `host` is the name TLS verifies and sends as SNI.
    // in_progress: call advance() when the socket is ready (or pending()).
    virtual TransportStep start(const pal::Addr& addr, const char* host, TlsClientConfig* tls) = 0;
    // Drives the connect (and the handshake) on. done once ready for requests.
    virtual TransportStep advance() = 0;
    virtual pal::IoResult send(const char* p, size_t n) = 0;
    virtual pal::IoResult recv(char* p, size_t n) = 0;
    virtual bool pending() const = 0;
    virtual bool wants_write() const = 0;
    virtual pal::Socket socket() const = 0;
    // A parked connection that the server has closed or written to is not reusable.
    virtual bool idle_usable() = 0;
    // The socket of a connection with no exchange in progress is readable: done = took a
    // message that belongs between exchanges (a TLS 1.3 session ticket), still usable;
    // in_progress = nothing complete yet; error = the server closed it or wrote to it.
    virtual TransportStep idle_read() { return TransportStep::error; }
    // TLS 1.3 and the server has not sent a session ticket on this connection yet.
    virtual bool ticket_expected() const { return false; }
    // Closes (TLS: close_notify first, best effort). Idempotent.
    virtual void close() = 0;
    virtual const char* error_text() const = 0;
    virtual bool is_tls() const = 0;
    virtual bool resumed() const { return false; }
    // Largest write worth one call (one TLS record).
    virtual size_t write_chunk() const = 0;

protected:
    ~Transport() = default;
};

// Plain TCP over the PAL.
class PlainTransport final : public Transport {
public:
    TransportStep start(const pal::Addr& addr, const char* host, TlsClientConfig* tls) override;
    TransportStep advance() override;
    pal::IoResult send(const char* p, size_t n) override { return pal::send(sock_, p, n); }
    pal::IoResult recv(char* p, size_t n) override { return pal::recv(sock_, p, n); }
    bool pending() const override { return false; }
    bool wants_write() const override { return connecting_; }
    pal::Socket socket() const override { return sock_; }
    bool idle_usable() override;
    void close() override;
    const char* error_text() const override { return error_; }
    bool is_tls() const override { return false; }
    size_t write_chunk() const override { return EW_CAP_UPSTREAM_WRITE; }

private:
    pal::Socket sock_ = pal::kNoSocket;
    bool connecting_ = false;
    char error_[EW_CAP_ERROR_TEXT];
};

// TLS (Mbed TLS) over a PAL socket.
class TlsTransport final : public Transport {
public:
    TransportStep start(const pal::Addr& addr, const char* host, TlsClientConfig* tls) override;
    TransportStep advance() override;
    pal::IoResult send(const char* p, size_t n) override;
    pal::IoResult recv(char* p, size_t n) override;
    bool pending() const override { return live_ && tls_.pending(); }
    bool wants_write() const override { return want_write_; }
    pal::Socket socket() const override { return sock_; }
    bool idle_usable() override { return sock_ != pal::kNoSocket; }  // watched by poll while parked
    TransportStep idle_read() override;
    bool ticket_expected() const override { return live_ && tls_.ticket_expected(); }
    void close() override;
    const char* error_text() const override { return error_; }
    bool is_tls() const override { return true; }
    bool resumed() const override { return tls_.resumed(); }
    size_t write_chunk() const override { return EW_CAP_UPSTREAM_WRITE; }

private:
    TransportStep fail_with(const char* what);
    TlsSession tls_;
    TlsClientConfig* config_ = nullptr;
    pal::Socket sock_ = pal::kNoSocket;
    bool connecting_ = false;
    bool live_ = false;
    bool want_write_ = false;
    char host_[EW_CAP_HOST];
    char error_[EW_CAP_ERROR_TEXT];
};

}  // namespace ew
