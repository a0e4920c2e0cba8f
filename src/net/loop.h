// The one poll loop. Every socket owner is a Pollable that says, each iteration, which
// socket it waits on, for what, and until when. The loop's poll timeout is the distance
// to the nearest deadline; nothing else in edgeway waits.
//
// The loop reads time and waits through a LoopBackend: the PAL's clock and poll in the
// agent, a manual clock in tests (whose wait jumps time to the nearest deadline), so a
// test drives minutes of timeouts in microseconds.
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
    // Progress is possible without waiting (e.g. decrypted TLS records): dispatched now.
    virtual bool has_pending() const { return false; }
    virtual void on_ready(uint16_t revents, uint64_t now_ms) = 0;
    virtual void on_deadline(uint64_t now_ms) = 0;

protected:
    ~Pollable() = default;
};

// An owner with no socket: only a deadline (a timer). Exchanges, probes, the resolver.
class TimerPollable : public Pollable {
public:
    pal::Socket poll_socket() const override { return pal::kNoSocket; }
    uint16_t poll_events() const override { return 0; }
    void on_ready(uint16_t, uint64_t) override {}

protected:
    ~TimerPollable() = default;
};

class LoopBackend {
public:
    virtual uint64_t now_ms() = 0;
    // pal::poll's contract: the number ready, 0 on timeout, -1 on error.
    virtual int wait(pal::PollItem* items, size_t count, int timeout_ms) = 0;

protected:
    ~LoopBackend() = default;
};

// The PAL's monotonic clock and poll.
class PalLoopBackend final : public LoopBackend {
public:
    uint64_t now_ms() override { return pal::now_ms(); }
    int wait(pal::PollItem* items, size_t count, int timeout_ms) override {
        return pal::poll(items, count, timeout_ms);
    }
};

class Loop {
public:
    Loop();
    void set_backend(LoopBackend* b) { backend_ = b; }
    uint64_t now_ms() { return backend_->now_ms(); }
    // Never fails within the caps: EW_CAP_POLLABLES counts every owner that can exist.
    void add(Pollable* p);
    void remove(Pollable* p);
    bool contains(const Pollable* p) const;
    // One iteration: waits at most max_wait_ms (or less, to the nearest deadline),
    // dispatches readiness and due deadlines. Returns the number of dispatches.
    int run_once(int max_wait_ms);
    size_t count() const { return count_; }
    // Waits so far (a failed one too: time has passed).
    uint32_t waits() const { return waits_; }
    // True when a wait has completed since `since` (a value of waits()), and the last one
    // watched p for reading and reported nothing for it: its socket had nothing to read then,
    // so a read now would only say EAGAIN. False for owners it did not watch (no socket, no
    // kIn), and for one it reported, whether or not it has been dispatched yet.
    bool watched_quiet(const Pollable* p, uint32_t since) const;

private:
    LoopBackend* backend_;
    Pollable* items_[EW_CAP_POLLABLES] = {};
    size_t count_ = 0;
    pal::PollItem poll_[EW_CAP_POLLABLES] = {};
    Pollable* polled_[EW_CAP_POLLABLES] = {};
    size_t polled_n_ = 0;  // the last wait's list, kept until the next one is built
    uint32_t waits_ = 0;
    Pollable* due_[EW_CAP_POLLABLES] = {};
    uint64_t due_at_[EW_CAP_POLLABLES] = {};  // 0: progress pending
    size_t due_n_ = 0;
};

}  // namespace ew
