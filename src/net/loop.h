// The one poll loop. Every socket owner is a Pollable that says, each iteration, which
// socket it waits on, for what, and until when. The loop's poll timeout is the distance
// to the nearest deadline; nothing else in edgeway waits.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/caps.h"
#include "pal.h"

namespace ew {

class Pollable {
public:
    // Socket to watch, or pal::kNoSocket.
    virtual pal::Socket poll_socket() const = 0;
    // pal::kIn / pal::kOut interest; 0 = none.
    virtual uint16_t poll_events() const = 0;
    // Monotonic deadline in ms; 0 = none.
    virtual uint64_t deadline_ms() const = 0;
    // Bytes already buffered (e.g. decrypted TLS records): treat as readable now.
    virtual bool has_pending() const { return false; }
    virtual void on_ready(uint16_t revents, uint64_t now_ms) = 0;
    virtual void on_deadline(uint64_t now_ms) = 0;

protected:
    ~Pollable() = default;
};

// Every owner that can be registered at once: each client and its proxy exchange, each
// upstream connection, each probe, the listener. add() can then never run out.
#ifndef EW_CAP_POLLABLES
#define EW_CAP_POLLABLES (2 * EW_CAP_CLIENTS + EW_CAP_UPSTREAM_CONNS + EW_CAP_ENDPOINTS + 1)
#endif

class Loop {
public:
    bool add(Pollable* p);
    void remove(Pollable* p);
    // One iteration: waits at most max_wait_ms (or less, to the nearest deadline),
    // dispatches readiness and due deadlines. Returns the number of dispatches.
    int run_once(int max_wait_ms);
    size_t count() const { return count_; }

private:
    Pollable* items_[EW_CAP_POLLABLES] = {};
    size_t count_ = 0;
    pal::PollItem poll_[EW_CAP_POLLABLES] = {};
    Pollable* polled_[EW_CAP_POLLABLES] = {};
    size_t polled_n_ = 0;
    Pollable* due_[EW_CAP_POLLABLES] = {};
    uint64_t due_at_[EW_CAP_POLLABLES] = {};  // 0: buffered input pending
    size_t due_n_ = 0;
};

}  // namespace ew
