// Read-ahead under Mbed TLS's receive callback: one socket read per TLS record instead of two.
//
// Mbed TLS reads a record in two calls of its receive callback: the 5-byte header, then
// exactly the body the header announces. Straight onto the socket that is two recv(2)
// calls per record, and one more that finds nothing when the caller reads to would_block.
// Here the first call reads as much as the socket has (up to EW_CAP_TLS_READ_AHEAD, a full
// record and its header) into one buffer and hands Mbed TLS what it asked for; the
// following calls for that session are served from the buffer, without a system call.
//
// The buffer is one per process (the loop is single-threaded): a few KiB of memory for
// the whole agent, not per connection. While one session holds bytes in it, the others
// read straight from their sockets as before (correct, only one syscall more). A session
// holding bytes reports them through TlsSession::pending() (the socket may show nothing),
// and drops them when it is freed.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/caps.h"
#include "pal.h"

namespace ew {

class TlsReadAhead {
public:
    // Up to len bytes for `owner` (its socket `sock`): from the bytes kept for it, else
    // from the socket (reading ahead when the buffer is free). pal::recv's contract.
    static pal::IoResult recv(const void* owner, pal::Socket sock, void* buf, size_t len);
    // Bytes read from owner's socket and not handed out yet.
    static size_t held(const void* owner);
    // owner goes away (or its stream is no longer read): its bytes are discarded.
    static void drop(const void* owner);
    // recv(2) calls made through recv() since start-up (tests, benchmarks).
    static uint64_t socket_reads() { return socket_reads_; }

private:
    static const void* owner_;
    static size_t off_;
    static size_t len_;
    static uint64_t socket_reads_;
    static unsigned char buf_[EW_CAP_TLS_READ_AHEAD];
};

}  // namespace ew
