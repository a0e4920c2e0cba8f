#include "net/transport.h"

#include "core/strbuf.h"

namespace ew {
namespace {

TransportStep connect_error(char* error, int err) {
    StrBuf m(error, EW_CAP_ERROR_TEXT);
    m.appendf("connect: %s", pal::strerror(err));
    return TransportStep::error;
}

}  // namespace

// ---- plain TCP ----------------------------------------------------------------------------------

TransportStep PlainTransport::start(const pal::Addr& addr, const char*, TlsClientConfig*) {
    error_[0] = '\0';
    int err = 0;
    sock_ = pal::tcp_connect(addr, &err);
    if (sock_ == pal::kNoSocket) return connect_error(error_, err);
    connecting_ = true;
    return TransportStep::in_progress;
}

TransportStep PlainTransport::advance() {
    if (!connecting_) return TransportStep::done;
    int e = pal::tcp_connect_result(sock_);
    if (e != 0) return connect_error(error_, e);
    connecting_ = false;
    return TransportStep::done;
}

bool PlainTransport::idle_usable() {
    // A parked connection must have nothing to read: data or EOF means the server is done
    // with it (or misbehaves), and the next exchange would read a stale answer.
    char probe;
    pal::IoResult r = pal::recv(sock_, &probe, 1);
    return r.status == pal::Io::would_block;
}

void PlainTransport::close() {
    if (sock_ != pal::kNoSocket) pal::close(sock_);
    sock_ = pal::kNoSocket;
    connecting_ = false;
}

// ---- TLS ------------------------------------------------------------------------------------------

TransportStep TlsTransport::start(const pal::Addr& addr, const char* host, TlsClientConfig* tls) {
    error_[0] = '\0';
    want_write_ = false;
    live_ = false;
    config_ = tls;
    copy_str(host_, sizeof host_, host);
    if (tls == nullptr || !tls->ready()) return fail_with(tls ? tls->error_text() : "TLS is not configured");
    int err = 0;
    sock_ = pal::tcp_connect(addr, &err);
    if (sock_ == pal::kNoSocket) return connect_error(error_, err);
    connecting_ = true;
    want_write_ = true;
    return TransportStep::in_progress;
}

TransportStep TlsTransport::fail_with(const char* what) {
    copy_str(error_, sizeof error_, what && what[0] ? what : "TLS failure");
    return TransportStep::error;
}

TransportStep TlsTransport::advance() {
    if (connecting_) {
        int e = pal::tcp_connect_result(sock_);
        if (e != 0) return connect_error(error_, e);
        connecting_ = false;
        if (tls_.init(config_, sock_, host_) == TlsStatus::error) return fail_with(tls_.error_text());
        live_ = true;
    }
    TlsStatus s = tls_.handshake();
    if (s == TlsStatus::want_read || s == TlsStatus::want_write) {
        want_write_ = s == TlsStatus::want_write;
        return TransportStep::in_progress;
    }
    want_write_ = false;
    if (s != TlsStatus::ok) return fail_with(tls_.error_text());
    return TransportStep::done;
}

pal::IoResult TlsTransport::send(const char* p, size_t n) {
    size_t done = 0;
    TlsStatus s = tls_.write(p, n, &done);
    if (s == TlsStatus::ok) return pal::IoResult{pal::Io::ok, done, 0};
    if (s == TlsStatus::want_read || s == TlsStatus::want_write) return pal::IoResult{pal::Io::would_block, 0, 0};
    copy_str(error_, sizeof error_, tls_.error_text());
    return pal::IoResult{pal::Io::error, 0, tls_.socket_error()};
}

pal::IoResult TlsTransport::recv(char* p, size_t n) {
    size_t got = 0;
    TlsStatus s = tls_.read(p, n, &got);
    want_write_ = s == TlsStatus::want_write;
    if (s == TlsStatus::ok) return pal::IoResult{pal::Io::ok, got, 0};
    if (s == TlsStatus::want_read || s == TlsStatus::want_write) return pal::IoResult{pal::Io::would_block, 0, 0};
    if (s == TlsStatus::closed) return pal::IoResult{pal::Io::closed, 0, 0};
    copy_str(error_, sizeof error_, tls_.error_text());
    return pal::IoResult{pal::Io::error, 0, tls_.socket_error()};
}

TransportStep TlsTransport::idle_read() {
    if (!live_) return TransportStep::error;
    TlsStatus s = tls_.poll_post_handshake();
    want_write_ = s == TlsStatus::want_write;
    if (s == TlsStatus::ok) return TransportStep::done;
    if (s == TlsStatus::want_read || s == TlsStatus::want_write) return TransportStep::in_progress;
    return TransportStep::error;
}

void TlsTransport::close() {
    if (live_) {
        if (tls_.handshake_done()) tls_.close_notify();
        tls_.free();
        live_ = false;
    }
    if (sock_ != pal::kNoSocket) pal::close(sock_);
    sock_ = pal::kNoSocket;
    connecting_ = false;
    want_write_ = false;
}

}  // namespace ew
