// The loop's memory of its last wait: what the upstream pool relies on to hand out a parked
// connection without a read (Loop::watched_quiet). A scripted back-end says which sockets
// were ready; the owners are plain Pollables with made-up socket numbers.
#include "ew_catch.h"

#include "net/loop.h"
#include "pal.h"

namespace {

class ScriptedWait final : public ew::LoopBackend {
public:
    uint64_t now_ms() override { return 1000; }
    int wait(pal::PollItem* items, size_t count, int) override {
        if (fail) return -1;
        int ready = 0;
        for (size_t i = 0; i < count; i++) {
            items[i].revents = items[i].sock == ready_sock ? pal::kIn : 0;
            if (items[i].revents) ready++;
        }
        return ready;
    }
    pal::Socket ready_sock = pal::kNoSocket;
    bool fail = false;
};

class Owner final : public ew::Pollable {
public:
    Owner(pal::Socket s, uint16_t ev) : sock(s), events(ev) {}
    pal::Socket poll_socket() const override { return sock; }
    uint16_t poll_events() const override { return events; }
    uint64_t deadline_ms() const override { return 0; }
    void on_ready(uint16_t, uint64_t) override { dispatched++; }
    void on_deadline(uint64_t) override {}
    pal::Socket sock;
    uint16_t events;
    int dispatched = 0;
};

}  // namespace

TEST_CASE("loop: an owner the last wait watched and found quiet is known quiet; one it reported is not", "[loop]") {
    ScriptedWait be;
    ew::Loop loop;
    loop.set_backend(&be);
    Owner parked(7, pal::kIn), busy(8, pal::kIn);
    loop.add(&parked);
    loop.add(&busy);

    uint32_t at_park = loop.waits();
    CHECK_FALSE(loop.watched_quiet(&parked, at_park));  // no wait since it was parked

    be.ready_sock = 8;
    loop.run_once(0);
    CHECK(loop.waits() == at_park + 1);
    CHECK(loop.watched_quiet(&parked, at_park));
    CHECK(busy.dispatched == 1);
    CHECK_FALSE(loop.watched_quiet(&busy, at_park));  // reported (dispatched or not): read it
    CHECK_FALSE(loop.watched_quiet(&parked, loop.waits()));  // parked again after that wait

    be.ready_sock = 7;  // the server wrote to (or closed) the parked connection
    loop.run_once(0);
    CHECK(parked.dispatched == 1);
    CHECK_FALSE(loop.watched_quiet(&parked, at_park));
}

TEST_CASE("loop: owners the wait did not watch for reading, removed ones, and a failed wait are never quiet", "[loop]") {
    ScriptedWait be;
    ew::Loop loop;
    loop.set_backend(&be);
    Owner nosock(pal::kNoSocket, pal::kIn), unwatched(9, 0), writer(10, pal::kOut), removed(11, pal::kIn);
    Owner watched(12, pal::kIn);
    loop.add(&nosock);
    loop.add(&unwatched);
    loop.add(&writer);
    loop.add(&removed);
    loop.add(&watched);
    uint32_t since = loop.waits();
    loop.run_once(0);
    CHECK(loop.watched_quiet(&watched, since));
    CHECK_FALSE(loop.watched_quiet(&nosock, since));     // poll(2) back-end: parked plain sockets unwatched
    CHECK_FALSE(loop.watched_quiet(&unwatched, since));
    CHECK_FALSE(loop.watched_quiet(&writer, since));
    loop.remove(&removed);  // e.g. closed, its slot about to be reused
    CHECK_FALSE(loop.watched_quiet(&removed, since));

    be.fail = true;
    since = loop.waits();
    loop.run_once(0);
    CHECK(loop.waits() == since + 1);
    CHECK_FALSE(loop.watched_quiet(&watched, since));  // a failed wait says nothing about any socket
}
