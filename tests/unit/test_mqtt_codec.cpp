// The MQTT 3.1.1 codec: packets as the standard spells them byte by byte, and the broker's
// side as hostile input (truncated, oversized, wrong types, reserved bits).
#include <string.h>

#include "ew_catch.h"
#include <string>
#include <vector>

#include "core/mqtt_codec.h"

using namespace ew;

namespace {

std::vector<uint8_t> bytes(std::initializer_list<int> b) {
    std::vector<uint8_t> v;
    for (int x : b) v.push_back(static_cast<uint8_t>(x));
    return v;
}

struct Decoded {
    MqttDecode d;
    MqttIn in;
    size_t used;
    std::string why;
};

Decoded decode(const std::vector<uint8_t>& v, size_t max = 64) {
    Decoded r;
    const char* why = "";
    r.d = mqtt_decode(v.data(), v.size(), max, &r.in, &r.used, &why);
    r.why = why;
    return r;
}

}  // namespace

TEST_CASE("mqtt: CONNECT carries the 3.1.1 header, the will and the credentials in order", "[mqtt]") {
    MqttConnect c;
    c.client_id = "kiosk-1";
    c.username = "u";
    c.password = "pw";
    c.keepalive_s = 60;
    c.will_topic = "e/k/status";
    c.will_payload = "off";
    c.will_len = 3;
    uint8_t buf[128];
    size_t n = mqtt_encode_connect(c, buf, sizeof buf);
    std::vector<uint8_t> want = bytes({0x10, 0, 0, 4, 'M', 'Q', 'T', 'T', 4,
                                       0x80 | 0x40 | 0x20 | 0x08 | 0x04 | 0x02,  // user, pass, will retain, will QoS 1, will, clean
                                       0, 60, 0, 7, 'k', 'i', 'o', 's', 'k', '-', '1', 0, 10, 'e', '/', 'k', '/', 's',
                                       't', 'a', 't', 'u', 's', 0, 3, 'o', 'f', 'f', 0, 1, 'u', 0, 2, 'p', 'w'});
    want[1] = static_cast<uint8_t>(want.size() - 2);
    REQUIRE(n == want.size());
    CHECK(std::vector<uint8_t>(buf, buf + n) == want);
}

TEST_CASE("mqtt: CONNECT without a will or credentials, and what cannot be encoded", "[mqtt]") {
    MqttConnect c;
    c.client_id = "d";
    uint8_t buf[64];
    size_t n = mqtt_encode_connect(c, buf, sizeof buf);
    REQUIRE(n == 15);
    CHECK(buf[9] == 0x02);  // clean session only
    c.password = "pw";      // a password without a user name is not allowed in 3.1.1
    CHECK(mqtt_encode_connect(c, buf, sizeof buf) == 0);
    c.password = "";
    CHECK(mqtt_encode_connect(c, buf, 14) == 0);  // does not fit
}

TEST_CASE("mqtt: PUBLISH QoS 1 retained, DUP on a re-send, and the remaining length past 127", "[mqtt]") {
    uint8_t buf[512];
    size_t n = mqtt_encode_publish("a/b", "{}", 2, 1, true, false, 0x1234, buf, sizeof buf);
    CHECK(std::vector<uint8_t>(buf, buf + n) == bytes({0x33, 9, 0, 3, 'a', '/', 'b', 0x12, 0x34, '{', '}'}));
    n = mqtt_encode_publish("a/b", "{}", 2, 1, true, true, 7, buf, sizeof buf);
    CHECK(buf[0] == 0x3B);  // DUP
    std::string big(200, 'x');
    n = mqtt_encode_publish("t", big.data(), big.size(), 1, true, false, 1, buf, sizeof buf);
    // 2 + 1 + 2 + 200 = 205 = 0xCD 0x01 as a variable byte integer
    REQUIRE(n == 1 + 2 + 205);
    CHECK(buf[1] == 0xCD);
    CHECK(buf[2] == 0x01);
    CHECK(mqtt_encode_publish("t", big.data(), big.size(), 1, true, false, 1, buf, 100) == 0);
    CHECK(mqtt_encode_publish("a/+", "x", 1, 1, true, false, 1, buf, sizeof buf) == 0);  // wildcard
    CHECK(mqtt_encode_publish("a", "x", 1, 1, true, false, 0, buf, sizeof buf) == 0);    // QoS 1 needs an id
    CHECK(mqtt_encode_publish("", "x", 1, 0, true, false, 0, buf, sizeof buf) == 0);
}

TEST_CASE("mqtt: PINGREQ and DISCONNECT are two bytes", "[mqtt]") {
    uint8_t buf[2];
    CHECK(mqtt_encode_pingreq(buf, 2) == 2);
    CHECK((buf[0] == 0xC0 && buf[1] == 0));
    CHECK(mqtt_encode_disconnect(buf, 2) == 2);
    CHECK((buf[0] == 0xE0 && buf[1] == 0));
    CHECK(mqtt_encode_pingreq(buf, 1) == 0);
}

TEST_CASE("mqtt: CONNACK, PUBACK and PINGRESP from the broker", "[mqtt]") {
    Decoded r = decode(bytes({0x20, 2, 0, 0}));
    REQUIRE(r.d == MqttDecode::packet);
    CHECK(r.in.type == MqttType::connack);
    CHECK(r.in.connack_code == 0);
    CHECK(r.used == 4);
    r = decode(bytes({0x20, 2, 0, 5}));
    REQUIRE(r.d == MqttDecode::packet);
    CHECK(std::string(mqtt_connack_text(r.in.connack_code)) == "not authorized");
    CHECK(std::string(mqtt_connack_text(99)) == "refused (unknown code)");
    r = decode(bytes({0x40, 2, 0xAB, 0xCD, 0xD0, 0}));  // PUBACK then the start of a PINGRESP
    REQUIRE(r.d == MqttDecode::packet);
    CHECK(r.in.type == MqttType::puback);
    CHECK(r.in.packet_id == 0xABCD);
    CHECK(r.used == 4);
    r = decode(bytes({0xD0, 0}));
    REQUIRE(r.d == MqttDecode::packet);
    CHECK(r.in.type == MqttType::pingresp);
}

TEST_CASE("mqtt: a truncated packet asks for more, at every cut", "[mqtt]") {
    std::vector<uint8_t> whole = bytes({0x40, 2, 0, 9});
    for (size_t cut = 0; cut < whole.size(); cut++) {
        INFO(cut);
        Decoded r = decode(std::vector<uint8_t>(whole.begin(), whole.begin() + static_cast<long>(cut)));
        CHECK(r.d == MqttDecode::need_more);
        CHECK(r.used == 0);
    }
}

TEST_CASE("mqtt: hostile packets from the broker are refused with a reason", "[mqtt]") {
    struct Case {
        std::vector<uint8_t> b;
        const char* why;
    } cases[] = {
        {bytes({0x30, 3, 0, 1, 'a'}), "unexpected PUBLISH from the broker (nothing was subscribed)"},
        {bytes({0x90, 3, 0, 1, 0}), "unexpected SUBACK from the broker"},
        {bytes({0x10, 0}), "unexpected CONNECT from the broker"},
        {bytes({0x00, 0}), "reserved packet type 0 from the broker"},
        {bytes({0xF0, 0}), "reserved packet type 15 from the broker"},
        {bytes({0xE0, 0}), "unexpected DISCONNECT from the broker"},
        {bytes({0x62, 2, 0, 1}), "unexpected PUBREL from the broker"},
        {bytes({0x21, 2, 0, 0}), "reserved flag bits set in a packet from the broker"},
        {bytes({0x20, 3, 0, 0, 0}), "packet from the broker has the wrong length"},
        {bytes({0x40, 0x80, 0x80, 0x80, 0x80, 0x01}), "remaining length longer than four bytes"},
        {bytes({0x40, 0xFF, 0xFF, 0xFF, 0x7F}), "packet from the broker larger than the client takes"},
        {bytes({0xD0, 1, 0}), "packet from the broker has the wrong length"},
        {bytes({0x20, 2, 0x02, 0}), "reserved CONNACK flag bits set"},
        {bytes({0x20, 2, 0x01, 4}), "CONNACK refuses and claims a session"},
        {bytes({0x40, 2, 0, 0}), "PUBACK for packet id 0"},
    };
    for (const Case& c : cases) {
        Decoded r = decode(c.b);
        INFO(c.why);
        CHECK(r.d == MqttDecode::error);
        CHECK(r.why == c.why);
        CHECK(r.used == 0);
    }
    // A huge length is refused from its header alone: no waiting for 256 MB that never fit.
    Decoded r = decode(bytes({0x40, 0xFF, 0xFF}));
    CHECK(r.d == MqttDecode::need_more);  // the length itself is not complete yet
}

TEST_CASE("mqtt: every byte string up to three bytes decodes without reading past its end", "[mqtt]") {
    // Exhaustive over the short inputs a broken broker can send; ASan/UBSan builds check the reads.
    uint8_t b[3];
    for (int len = 1; len <= 3; len++)
        for (uint32_t v = 0; v < (1u << (8 * len)); v += (len == 3 ? 7 : 1)) {
            for (int i = 0; i < len; i++) b[i] = static_cast<uint8_t>(v >> (8 * i));
            MqttIn in;
            size_t used = 99;
            const char* why = nullptr;
            MqttDecode d = mqtt_decode(b, static_cast<size_t>(len), 64, &in, &used, &why);
            REQUIRE(why != nullptr);
            if (d == MqttDecode::packet) REQUIRE(used <= static_cast<size_t>(len));
            else REQUIRE(used == 0);
        }
}

TEST_CASE("mqtt: topic names a client may publish to", "[mqtt]") {
    CHECK(mqtt_topic_ok("edgeway/kiosk-1/status", 22));
    CHECK_FALSE(mqtt_topic_ok("", 0));
    CHECK_FALSE(mqtt_topic_ok("a/#", 3));
    CHECK_FALSE(mqtt_topic_ok("a/+/b", 5));
    CHECK_FALSE(mqtt_topic_ok("a\0b", 3));
}
