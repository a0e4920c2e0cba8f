// MQTT 3.1.1 (OASIS standard, 2014), the part a publishing client needs: CONNECT with a
// last will, PUBLISH (QoS 0/1), PINGREQ and DISCONNECT out; CONNACK, PUBACK and PINGRESP in.
// Pure byte work over caller buffers: no sockets, no allocation, no clock.
//
// Bytes from the broker are hostile until checked: mqtt_decode() reads one packet at the
// front of a buffer and refuses, with a reason, anything a broker must not send a client
// that never subscribed (PUBLISH, SUBACK, CONNECT, ...), reserved flag bits, wrong lengths,
// a remaining length of more than four bytes, and any packet larger than the caller holds.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace ew {

enum class MqttType : uint8_t {
    connect = 1, connack = 2, publish = 3, puback = 4, pubrec = 5, pubrel = 6, pubcomp = 7,
    subscribe = 8, suback = 9, unsubscribe = 10, unsuback = 11, pingreq = 12, pingresp = 13, disconnect = 14,
};

struct MqttConnect {
    const char* client_id = "";    // 1..23 bytes is what every broker must take; longer is common
    const char* username = "";     // "" = none
    const char* password = "";     // "" = none (needs a username, 3.1.1 section 3.1.2.9)
    uint16_t keepalive_s = 60;
    bool clean_session = true;
    const char* will_topic = "";   // "" = no will
    const char* will_payload = "";
    size_t will_len = 0;
    uint8_t will_qos = 1;
    bool will_retain = true;
};

// Each encoder writes one whole packet into buf and returns its length, or 0 when it does
// not fit in cap or a field is out of range (a string over 65535 bytes, QoS > 1, packet id 0
// with QoS 1).
size_t mqtt_encode_connect(const MqttConnect& c, uint8_t* buf, size_t cap);
size_t mqtt_encode_publish(const char* topic, const char* payload, size_t len, uint8_t qos, bool retain, bool dup,
                           uint16_t packet_id, uint8_t* buf, size_t cap);
size_t mqtt_encode_pingreq(uint8_t* buf, size_t cap);
size_t mqtt_encode_disconnect(uint8_t* buf, size_t cap);

enum class MqttDecode : uint8_t { packet, need_more, error };

// One packet from the broker.
struct MqttIn {
    MqttType type = MqttType::connack;
    uint8_t connack_code = 0;      // CONNACK: 0 accepted, 1..5 refused (mqtt_connack_text)
    bool session_present = false;  // CONNACK
    uint16_t packet_id = 0;        // PUBACK
};

// Reads the packet at the front of p[0..n): packet (with *used = its length), need_more
// (an incomplete packet that would fit in max_packet bytes), or error with *why set to a
// static text such as "unexpected PUBLISH from the broker".
MqttDecode mqtt_decode(const uint8_t* p, size_t n, size_t max_packet, MqttIn* out, size_t* used, const char** why);

// "accepted", "unacceptable protocol version", "identifier rejected", "server unavailable",
// "bad user name or password", "not authorized", else "refused (unknown code)".
const char* mqtt_connack_text(uint8_t code);

// A topic name a client may publish to: 1..65535 bytes, no '+', '#' or NUL.
bool mqtt_topic_ok(const char* topic, size_t n);

}  // namespace ew
