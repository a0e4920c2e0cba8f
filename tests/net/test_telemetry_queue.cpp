// The telemetry queue while the broker is away and when it comes back: bounded, oldest
// dropped and counted, periodic documents coalesced, state changes kept, unacknowledged
// ones re-sent with their packet id.
#include <string.h>

#include "ew_catch.h"
#include <memory>
#include <string>
#include <vector>

#include "net/telemetry_queue.h"

using namespace ew;

namespace {

void push(TelemetryQueue& q, const std::string& topic, const std::string& doc, bool change) {
    REQUIRE(q.push(topic.c_str(), doc.data(), doc.size(), change));
}

// Sends everything sendable (as the session would), returns the payloads in send order.
std::vector<std::string> drain(TelemetryQueue& q, std::vector<uint16_t>* ids = nullptr, bool* any_dup = nullptr) {
    std::vector<std::string> out;
    while (QueuedDoc* d = q.next_to_send()) {
        bool dup = d->state == QueuedState::resend;
        if (any_dup && dup) *any_dup = true;
        uint16_t id = dup ? d->packet_id : q.next_packet_id();
        out.push_back(std::string(d->payload, d->len));
        q.sent(d, id);
        if (ids) ids->push_back(id);
    }
    return out;
}

}  // namespace

TEST_CASE("telemetry queue: full, the oldest is dropped and counted", "[telemetry]") {
    auto q = std::make_unique<TelemetryQueue>();
    q->init(3);
    for (int i = 0; i < 5; i++) push(*q, "t/" + std::to_string(i), "doc" + std::to_string(i), true);
    CHECK(q->size() == 3);
    CHECK(q->dropped() == 2);
    std::vector<std::string> sent = drain(*q);
    CHECK(sent == std::vector<std::string>{"doc2", "doc3", "doc4"});
}

TEST_CASE("telemetry queue: a periodic document is replaced by a newer one; a state change never is", "[telemetry]") {
    auto q = std::make_unique<TelemetryQueue>();
    q->init(8);
    push(*q, "e/d/status", "status-1", false);
    push(*q, "e/d/endpoints/a", "a-periodic", false);
    push(*q, "e/d/endpoints/a", "a-DOWN", true);      // replaces the periodic one, in its place
    push(*q, "e/d/endpoints/a", "a-periodic-2", false);  // cannot replace the change: queued after it
    push(*q, "e/d/endpoints/a", "a-HEALTHY", true);   // replaces periodic-2, stays after DOWN
    push(*q, "e/d/status", "status-2", false);
    CHECK(q->size() == 3);
    CHECK(q->coalesced() == 3);
    std::vector<std::string> sent = drain(*q);
    CHECK(sent == std::vector<std::string>{"status-2", "a-DOWN", "a-HEALTHY"});
    CHECK(q->dropped() == 0);
}

TEST_CASE("telemetry queue: hours of periodic documents while the broker is away keep one per topic", "[telemetry]") {
    auto q = std::make_unique<TelemetryQueue>();
    q->init(4);
    push(*q, "e/d/endpoints/a", "a-DOWN", true);
    for (int i = 0; i < 1000; i++) {
        push(*q, "e/d/status", "s" + std::to_string(i), false);
        push(*q, "e/d/endpoints/a", "a" + std::to_string(i), false);
    }
    CHECK(q->size() == 3);
    CHECK(q->dropped() == 0);
    CHECK(drain(*q) == std::vector<std::string>{"a-DOWN", "s999", "a999"});
}

TEST_CASE("telemetry queue: in flight until acknowledged; a lost connection re-sends them with the same id", "[telemetry]") {
    auto q = std::make_unique<TelemetryQueue>();
    q->init(16);
    for (int i = 0; i < 3; i++) push(*q, "t/" + std::to_string(i), "d" + std::to_string(i), true);
    std::vector<uint16_t> ids;
    CHECK(drain(*q, &ids).size() == 3);
    CHECK(q->in_flight() == 3);
    CHECK(q->ack(ids[1]));
    CHECK_FALSE(q->ack(ids[1]));  // a duplicate PUBACK matches nothing
    CHECK_FALSE(q->ack(999));
    q->connection_lost();
    CHECK(q->in_flight() == 0);
    push(*q, "t/new", "fresh", true);
    std::vector<uint16_t> again;
    bool dup = false;
    std::vector<std::string> resent = drain(*q, &again, &dup);
    CHECK(dup);
    CHECK(resent == std::vector<std::string>{"d0", "d2", "fresh"});  // the re-sends first
    CHECK(again[0] == ids[0]);
    CHECK(again[1] == ids[2]);
    CHECK(again[2] != ids[0]);
    CHECK(again[2] != ids[2]);
}

TEST_CASE("telemetry queue: at most EW_CAP_MQTT_INFLIGHT unacknowledged at once", "[telemetry]") {
    auto q = std::make_unique<TelemetryQueue>();
    q->init(EW_CAP_TELEMETRY_QUEUE);
    for (int i = 0; i < EW_CAP_MQTT_INFLIGHT + 3; i++) push(*q, "t/" + std::to_string(i), "d", true);
    std::vector<uint16_t> ids;
    CHECK(drain(*q, &ids).size() == EW_CAP_MQTT_INFLIGHT);
    CHECK(q->next_to_send() == nullptr);
    REQUIRE(q->ack(ids[0]));
    CHECK(q->next_to_send() != nullptr);
}

TEST_CASE("telemetry queue: packet ids skip 0 and the ones in use, across the wrap", "[telemetry]") {
    auto q = std::make_unique<TelemetryQueue>();
    q->init(4);
    push(*q, "t", "d", true);
    QueuedDoc* d = q->next_to_send();
    uint16_t first = q->next_packet_id();
    q->sent(d, first);
    for (int i = 0; i < 70000; i++) {
        uint16_t id = q->next_packet_id();
        REQUIRE(id != 0);
        REQUIRE(id != first);
    }
}

TEST_CASE("telemetry queue: a document larger than a slot is refused, not cut", "[telemetry]") {
    auto q = std::make_unique<TelemetryQueue>();
    q->init(4);
    std::string big(EW_CAP_MQTT_PAYLOAD + 1, 'x');
    CHECK_FALSE(q->push("t", big.data(), big.size(), true));
    std::string topic(EW_CAP_MQTT_TOPIC, 't');
    CHECK_FALSE(q->push(topic.c_str(), "x", 1, true));
    CHECK(q->size() == 0);
}
