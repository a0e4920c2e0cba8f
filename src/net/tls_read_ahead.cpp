// See tls_read_ahead.h.
#include "net/tls_read_ahead.h"

#include <string.h>

namespace ew {

const void* TlsReadAhead::owner_ = nullptr;
size_t TlsReadAhead::off_ = 0;
size_t TlsReadAhead::len_ = 0;
uint64_t TlsReadAhead::socket_reads_ = 0;
unsigned char TlsReadAhead::buf_[EW_CAP_TLS_READ_AHEAD];

pal::IoResult TlsReadAhead::recv(const void* owner, pal::Socket sock, void* buf, size_t len) {
    if (len == 0) return pal::IoResult{pal::Io::ok, 0, 0};
    if (owner != nullptr && owner_ == owner) {
        size_t n = len_ - off_ < len ? len_ - off_ : len;
        memcpy(buf, buf_ + off_, n);
        off_ += n;
        if (off_ == len_) drop(owner);
        return pal::IoResult{pal::Io::ok, n, 0};
    }
    socket_reads_++;
    if (owner == nullptr || owner_ != nullptr || len >= sizeof buf_) return pal::recv(sock, buf, len);
    pal::IoResult r = pal::recv(sock, buf_, sizeof buf_);
    if (r.status != pal::Io::ok) return r;
    size_t n = r.n < len ? r.n : len;
    memcpy(buf, buf_, n);
    if (r.n > n) {
        owner_ = owner;
        off_ = n;
        len_ = r.n;
    }
    return pal::IoResult{pal::Io::ok, n, 0};
}

size_t TlsReadAhead::held(const void* owner) {
    return owner != nullptr && owner_ == owner ? len_ - off_ : 0;
}

void TlsReadAhead::drop(const void* owner) {
    if (owner == nullptr || owner_ != owner) return;
    owner_ = nullptr;
    off_ = len_ = 0;
}

}  // namespace ew
