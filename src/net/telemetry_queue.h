// The bounded queue of telemetry documents (retained, QoS 1) between edgeway and the broker.
//
// Each entry is one PUBLISH: topic and JSON payload, copied in (fixed slots, no allocation).
// An entry is waiting (never sent), in flight (sent on this connection, no PUBACK yet) or
// to be re-sent (sent on a connection that was lost before its PUBACK: sent again with DUP
// and the same packet id after the next CONNACK). A PUBACK removes it.
//
// Full (queue_max entries): the oldest entry is dropped, whatever its state, and counted.
// Coalescing: a document for a topic that already has a waiting periodic document replaces
// that one's payload in its place (the newer one says all the older one did). A document
// that carries a state change is never replaced, so every change the queue can hold
// reaches the broker, in order.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/caps.h"

namespace ew {

enum class QueuedState : uint8_t { unused, waiting, in_flight, resend };

struct QueuedDoc {
    char topic[EW_CAP_MQTT_TOPIC];
    char payload[EW_CAP_MQTT_PAYLOAD];
    uint16_t len;
    uint16_t packet_id;  // 0 until first sent
    uint32_t seq;        // larger = newer
    bool change;         // carries a state change: never coalesced
    QueuedState state;
};

class TelemetryQueue {
public:
    // max: queue_max (clamped to [1, EW_CAP_TELEMETRY_QUEUE]). Empties the queue.
    void init(uint32_t max);
    // Queues a document; false when it does not fit a slot (topic or payload too long).
    bool push(const char* topic, const char* payload, size_t len, bool change);
    // The next entry to send: a `resend` one first (oldest), else the oldest waiting one,
    // while fewer than EW_CAP_MQTT_INFLIGHT are in flight; nullptr when none.
    QueuedDoc* next_to_send();
    // d was written to the broker with this packet id.
    void sent(QueuedDoc* d, uint16_t packet_id);
    // A PUBACK: true when it matched an entry in flight (removed).
    bool ack(uint16_t packet_id);
    // The connection is gone: entries in flight are re-sent (DUP) on the next one.
    void connection_lost();
    // A packet id not used by any entry (1..65535).
    uint16_t next_packet_id();

    uint32_t size() const { return count_; }
    uint32_t in_flight() const { return in_flight_; }
    uint64_t dropped() const { return dropped_; }
    uint64_t coalesced() const { return coalesced_; }

private:
    struct Range {
        QueuedDoc* b;
        QueuedDoc* e;
        QueuedDoc* begin() const { return b; }
        QueuedDoc* end() const { return e; }
    };
    Range slots() { return Range{slots_, slots_ + max_}; }
    QueuedDoc* oldest(QueuedState s);
    void remove(QueuedDoc* d);

    QueuedDoc slots_[EW_CAP_TELEMETRY_QUEUE];
    uint32_t max_ = 0;  // slots [0, max_) are in use (init)
    uint32_t count_ = 0;
    uint32_t in_flight_ = 0;
    uint32_t seq_ = 0;
    uint16_t last_id_ = 0;
    uint64_t dropped_ = 0;
    uint64_t coalesced_ = 0;
};

}  // namespace ew
