#include "net/telemetry_queue.h"

#include <string.h>

namespace ew {

void TelemetryQueue::init(uint32_t max) {
    uint32_t old = max_;
    max_ = max < 1 ? 1 : max > EW_CAP_TELEMETRY_QUEUE ? EW_CAP_TELEMETRY_QUEUE : max;
    // Only the slots in use are touched: memory the queue never needs stays untouched pages.
    for (uint32_t i = 0; i < (old > max_ ? old : max_); i++) slots_[i].state = QueuedState::unused;
    count_ = 0;
    in_flight_ = 0;
}

QueuedDoc* TelemetryQueue::oldest(QueuedState s) {
    QueuedDoc* best = nullptr;
    for (QueuedDoc& d : slots())
        if (d.state != QueuedState::unused && (s == QueuedState::unused || d.state == s) &&
            (best == nullptr || d.seq < best->seq))
            best = &d;
    return best;
}

void TelemetryQueue::remove(QueuedDoc* d) {
    if (d->state == QueuedState::in_flight && in_flight_) in_flight_--;
    d->state = QueuedState::unused;
    count_--;
}

bool TelemetryQueue::push(const char* topic, const char* payload, size_t len, bool change) {
    size_t tn = strlen(topic);
    if (tn >= EW_CAP_MQTT_TOPIC || len > EW_CAP_MQTT_PAYLOAD) return false;
    for (QueuedDoc& d : slots()) {
        if (d.state != QueuedState::waiting || d.change || strcmp(d.topic, topic) != 0) continue;
        memcpy(d.payload, payload, len);
        d.len = static_cast<uint16_t>(len);
        d.change = change;
        coalesced_++;
        return true;
    }
    if (count_ >= max_) {
        remove(oldest(QueuedState::unused));  // unused here: any state
        dropped_++;
    }
    QueuedDoc* slot = nullptr;
    for (QueuedDoc& d : slots())
        if (d.state == QueuedState::unused) {
            slot = &d;
            break;
        }
    memcpy(slot->topic, topic, tn + 1);
    memcpy(slot->payload, payload, len);
    slot->len = static_cast<uint16_t>(len);
    slot->packet_id = 0;
    slot->seq = ++seq_;
    slot->change = change;
    slot->state = QueuedState::waiting;
    count_++;
    return true;
}

QueuedDoc* TelemetryQueue::next_to_send() {
    if (in_flight_ >= EW_CAP_MQTT_INFLIGHT) return nullptr;
    QueuedDoc* d = oldest(QueuedState::resend);
    return d ? d : oldest(QueuedState::waiting);
}

void TelemetryQueue::sent(QueuedDoc* d, uint16_t packet_id) {
    d->packet_id = packet_id;
    d->state = QueuedState::in_flight;
    in_flight_++;
}

bool TelemetryQueue::ack(uint16_t packet_id) {
    for (QueuedDoc& d : slots())
        if (d.state == QueuedState::in_flight && d.packet_id == packet_id) {
            remove(&d);
            return true;
        }
    return false;
}

void TelemetryQueue::connection_lost() {
    for (QueuedDoc& d : slots())
        if (d.state == QueuedState::in_flight) d.state = QueuedState::resend;
    in_flight_ = 0;
}

uint16_t TelemetryQueue::next_packet_id() {
    for (;;) {
        last_id_ = static_cast<uint16_t>(last_id_ + 1);
        if (last_id_ == 0) continue;
        bool used = false;
        for (const QueuedDoc& d : slots())
            used = used || (d.state != QueuedState::unused && d.packet_id == last_id_);
        if (!used) return last_id_;
    }
}

}  // namespace ew
