#include "net/loop.h"

namespace ew {
namespace {
PalLoopBackend g_pal_backend;
}

Loop::Loop() : backend_(&g_pal_backend) {}

bool Loop::contains(const Pollable* p) const {
    for (size_t i = 0; i < count_; i++)
        if (items_[i] == p) return true;
    return false;
}

void Loop::add(Pollable* p) {
    if (contains(p) || count_ == EW_CAP_POLLABLES) return;  // full cannot happen within the caps
    items_[count_++] = p;
}

void Loop::remove(Pollable* p) {
    for (size_t i = 0; i < count_; i++) {
        if (items_[i] == p) {
            items_[i] = items_[--count_];
            items_[count_] = nullptr;
            break;
        }
    }
    // A removed item may still be in this iteration's dispatch list.
    for (size_t i = 0; i < polled_n_; i++)
        if (polled_[i] == p) polled_[i] = nullptr;
    for (size_t i = 0; i < due_n_; i++)
        if (due_[i] == p) due_[i] = nullptr;
}

bool Loop::watched_quiet(const Pollable* p, uint32_t since) const {
    if (waits_ == since) return false;
    for (size_t i = 0; i < polled_n_; i++)
        if (polled_[i] == p) return (poll_[i].events & pal::kIn) != 0 && poll_[i].revents == 0;
    return false;
}

int Loop::run_once(int max_wait_ms) {
    uint64_t now = backend_->now_ms();
    int64_t wait = max_wait_ms;
    size_t n = 0;
    // One pass asks every owner what it waits for; the answers are kept for the second pass.
    due_n_ = 0;
    polled_n_ = 0;
    for (size_t i = 0; i < count_; i++) {
        Pollable* p = items_[i];
        uint64_t d = p->deadline_ms();
        bool pending = p->has_pending();
        if (d != 0) {
            int64_t left = d > now ? static_cast<int64_t>(d - now) : 0;
            if (wait < 0 || left < wait) wait = left;
        }
        if (pending) wait = 0;
        if (pending || d != 0) {
            due_[due_n_] = p;
            due_at_[due_n_] = pending ? 0 : d;
            due_n_++;
        }
        pal::Socket s = p->poll_socket();
        uint16_t ev = p->poll_events();
        if (s != pal::kNoSocket && ev != 0) {
            poll_[n] = pal::PollItem{s, ev, 0};
            polled_[n] = p;
            n++;
        }
    }
    polled_n_ = n;

    int ready = backend_->wait(poll_, n, static_cast<int>(wait));
    waits_++;
    if (ready < 0) polled_n_ = 0;  // the revents say nothing
    int dispatched = 0;
    now = backend_->now_ms();
    if (ready > 0) {
        for (size_t i = 0; i < n; i++) {
            if (poll_[i].revents != 0 && polled_[i] != nullptr) {
                polled_[i]->on_ready(poll_[i].revents, now);
                dispatched++;
            }
        }
    }
    // Buffered plaintext and due deadlines, among the owners that had either before the
    // wait; each is asked again, since readiness handlers change state. A deadline set
    // during this iteration is seen by the next one (its poll timeout is then 0).
    for (size_t i = 0; i < due_n_; i++) {
        Pollable* p = due_[i];
        if (p == nullptr || due_at_[i] > now) continue;
        if (p->has_pending()) {
            p->on_ready(pal::kIn, now);
            dispatched++;
            continue;
        }
        uint64_t d = p->deadline_ms();
        if (d != 0 && d <= now) {
            p->on_deadline(now);
            dispatched++;
        }
    }
    due_n_ = 0;
    return dispatched;
}

}  // namespace ew
