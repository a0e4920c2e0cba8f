#include "core/mqtt_codec.h"

#include <string.h>

#include "core/caps.h"

// A build without telemetry (EW_CAP_TELEMETRY 0) has no MQTT client: none of this is compiled.
#if EW_CAP_TELEMETRY

namespace ew {
namespace {

constexpr uint32_t kMaxRemaining = 268435455;  // four length bytes (3.1.1 section 2.2.3)

// A bounded writer; `ok` turns false at the first byte that does not fit.
struct Out {
    uint8_t* p;
    size_t cap;
    size_t n = 0;
    bool ok = true;
    void byte(uint8_t b) {
        if (n >= cap) {
            ok = false;
            return;
        }
        p[n++] = b;
    }
    void u16(uint16_t v) {
        byte(static_cast<uint8_t>(v >> 8));
        byte(static_cast<uint8_t>(v & 0xFF));
    }
    void bytes(const void* s, size_t len) {
        if (len > cap - n || n > cap) {
            ok = false;
            return;
        }
        memcpy(p + n, s, len);
        n += len;
    }
    void str(const char* s, size_t len) {
        if (len > 0xFFFF) {
            ok = false;
            return;
        }
        u16(static_cast<uint16_t>(len));
        bytes(s, len);
    }
    void str(const char* s) { str(s, strlen(s)); }
    void remaining(size_t len) {
        if (len > kMaxRemaining) {
            ok = false;
            return;
        }
        do {
            uint8_t b = static_cast<uint8_t>(len % 128);
            len /= 128;
            if (len) b |= 0x80;
            byte(b);
        } while (len);
    }
};

size_t varint_size(size_t len) { return len < 128 ? 1 : len < 16384 ? 2 : len < 2097152 ? 3 : 4; }

size_t finish(const Out& o) { return o.ok ? o.n : 0; }

}  // namespace

size_t mqtt_encode_connect(const MqttConnect& c, uint8_t* buf, size_t cap) {
    size_t id = strlen(c.client_id), user = strlen(c.username), pass = strlen(c.password);
    size_t will_topic = strlen(c.will_topic);
    bool will = will_topic > 0;
    if (c.will_qos > 1 || (pass && !user)) return 0;
    size_t body = 10 + 2 + id;
    if (will) body += 2 + will_topic + 2 + c.will_len;
    if (user) body += 2 + user;
    if (pass) body += 2 + pass;
    Out o{buf, cap};
    o.byte(static_cast<uint8_t>(MqttType::connect) << 4);
    o.remaining(body);
    o.str("MQTT");
    o.byte(4);  // protocol level: 3.1.1
    uint8_t flags = 0;
    if (c.clean_session) flags |= 0x02;
    if (will) flags |= static_cast<uint8_t>(0x04 | (c.will_qos << 3) | (c.will_retain ? 0x20 : 0));
    if (pass) flags |= 0x40;
    if (user) flags |= 0x80;
    o.byte(flags);
    o.u16(c.keepalive_s);
    o.str(c.client_id, id);
    if (will) {
        o.str(c.will_topic, will_topic);
        o.str(c.will_payload, c.will_len);
    }
    if (user) o.str(c.username, user);
    if (pass) o.str(c.password, pass);
    return finish(o);
}

size_t mqtt_encode_publish(const char* topic, const char* payload, size_t len, uint8_t qos, bool retain, bool dup,
                           uint16_t packet_id, uint8_t* buf, size_t cap) {
    size_t t = strlen(topic);
    if (qos > 1 || (qos == 1 && packet_id == 0) || !mqtt_topic_ok(topic, t)) return 0;
    size_t body = 2 + t + (qos ? 2 : 0) + len;
    if (1 + varint_size(body) + body > cap) return 0;
    Out o{buf, cap};
    uint8_t h = static_cast<uint8_t>(static_cast<uint8_t>(MqttType::publish) << 4);
    if (dup && qos) h |= 0x08;
    h |= static_cast<uint8_t>(qos << 1);
    if (retain) h |= 0x01;
    o.byte(h);
    o.remaining(body);
    o.str(topic, t);
    if (qos) o.u16(packet_id);
    o.bytes(payload, len);
    return finish(o);
}

size_t mqtt_encode_pingreq(uint8_t* buf, size_t cap) {
    if (cap < 2) return 0;
    buf[0] = static_cast<uint8_t>(MqttType::pingreq) << 4;
    buf[1] = 0;
    return 2;
}

size_t mqtt_encode_disconnect(uint8_t* buf, size_t cap) {
    if (cap < 2) return 0;
    buf[0] = static_cast<uint8_t>(MqttType::disconnect) << 4;
    buf[1] = 0;
    return 2;
}

MqttDecode mqtt_decode(const uint8_t* p, size_t n, size_t max_packet, MqttIn* out, size_t* used, const char** why) {
    static const char* const kUnexpected[16] = {
        "reserved packet type 0 from the broker", "unexpected CONNECT from the broker", nullptr,
        "unexpected PUBLISH from the broker (nothing was subscribed)", nullptr,
        "unexpected PUBREC from the broker", "unexpected PUBREL from the broker", "unexpected PUBCOMP from the broker",
        "unexpected SUBSCRIBE from the broker", "unexpected SUBACK from the broker",
        "unexpected UNSUBSCRIBE from the broker", "unexpected UNSUBACK from the broker",
        "unexpected PINGREQ from the broker", nullptr, "unexpected DISCONNECT from the broker",
        "reserved packet type 15 from the broker"};
    *used = 0;
    *why = "";
    if (n == 0) return MqttDecode::need_more;
    uint8_t type = p[0] >> 4, flags = p[0] & 0x0F;
    if (kUnexpected[type]) {
        *why = kUnexpected[type];
        return MqttDecode::error;
    }
    // CONNACK, PUBACK and PINGRESP all have flags 0 (3.1.1 section 2.2.2).
    if (flags != 0) {
        *why = "reserved flag bits set in a packet from the broker";
        return MqttDecode::error;
    }
    size_t remaining = 0, pos = 1;
    for (uint32_t mult = 1;; mult *= 128) {
        if (pos == 5) {
            *why = "remaining length longer than four bytes";
            return MqttDecode::error;
        }
        if (pos >= n) return MqttDecode::need_more;
        uint8_t b = p[pos++];
        remaining += static_cast<size_t>(b & 0x7F) * mult;
        if ((b & 0x80) == 0) break;
    }
    size_t total = pos + remaining;
    size_t expect = static_cast<MqttType>(type) == MqttType::pingresp ? 0 : 2;
    if (remaining != expect) {
        *why = total > max_packet ? "packet from the broker larger than the client takes"
                                  : "packet from the broker has the wrong length";
        return MqttDecode::error;
    }
    if (n < total) return MqttDecode::need_more;
    MqttIn in;
    in.type = static_cast<MqttType>(type);
    if (in.type == MqttType::connack) {
        if (p[pos] & 0xFE) {
            *why = "reserved CONNACK flag bits set";
            return MqttDecode::error;
        }
        in.session_present = p[pos] & 0x01;
        in.connack_code = p[pos + 1];
        if (in.connack_code != 0 && in.session_present) {
            *why = "CONNACK refuses and claims a session";
            return MqttDecode::error;
        }
    } else if (in.type == MqttType::puback) {
        in.packet_id = static_cast<uint16_t>(p[pos] << 8 | p[pos + 1]);
        if (in.packet_id == 0) {
            *why = "PUBACK for packet id 0";
            return MqttDecode::error;
        }
    }
    *out = in;
    *used = total;
    return MqttDecode::packet;
}

const char* mqtt_connack_text(uint8_t code) {
    switch (code) {
        case 0: return "accepted";
        case 1: return "unacceptable protocol version";
        case 2: return "identifier rejected";
        case 3: return "server unavailable";
        case 4: return "bad user name or password";
        case 5: return "not authorized";
    }
    return "refused (unknown code)";
}

bool mqtt_topic_ok(const char* topic, size_t n) {
    if (n == 0 || n > 0xFFFF) return false;
    for (size_t i = 0; i < n; i++)
        if (topic[i] == '+' || topic[i] == '#' || topic[i] == '\0') return false;
    return true;
}

}  // namespace ew

#endif  // EW_CAP_TELEMETRY
