// [telemetry] as read from the file: absent = off, broker address and default ports,
// the password from a private file only.
#include <errno.h>
#include <string.h>

#include "ew_catch.h"
#include <memory>
#include <string>

#include "core/config.h"

using namespace ew;

namespace {

int read_key(const char* path, char* buf, size_t cap, size_t* len, bool* private_ok, void*) {
    std::string text;
    if (strcmp(path, "/keys/mqtt") == 0) {
        text = "mqtt-SECRET\n";
        *private_ok = true;
    } else if (strcmp(path, "/run/credentials/edgeway.service/mqtt-password") == 0) {
        text = "cred-SECRET\n";  // what LoadCredential= leaves there
        *private_ok = true;
    } else if (strcmp(path, "/keys/open") == 0) {
        text = "mqtt-SECRET\n";
        *private_ok = false;
    } else {
        return ENOENT;
    }
    if (text.size() > cap) return EFBIG;
    memcpy(buf, text.data(), text.size());
    *len = text.size();
    return 0;
}
const char* no_env(const char*, void*) { return nullptr; }
const char* systemd_env(const char* name, void*) {
    return strcmp(name, "CREDENTIALS_DIRECTORY") == 0 ? "/run/credentials/edgeway.service" : nullptr;
}

struct Parsed {
    ConfigStatus status;
    std::string error;
    std::unique_ptr<Config> cfg = std::make_unique<Config>();
};

Parsed parse(const std::string& telemetry, const char* (*env)(const char*, void*) = no_env) {
    std::string text = "[endpoint.a]\nurl = https://api.example.com/v1\nmodels = m\n" + telemetry;
    Parsed p;
    ConfigSources src{env, read_key, nullptr};
    ConfigDiag diag;
    p.status = config_parse("t.ini", text.data(), text.size(), src, p.cfg.get(), &diag, nullptr, nullptr);
    p.error = diag.text;
    return p;
}

}  // namespace

TEST_CASE("telemetry config: absent section is off; defaults", "[telemetry][config]") {
    Parsed off = parse("");
    REQUIRE(off.status == ConfigStatus::ok);
    CHECK_FALSE(off.cfg->telemetry.on);
    Parsed p = parse("[telemetry]\nmqtt_url = mqtt://broker.example.net\n");
    REQUIRE(p.status == ConfigStatus::ok);
    const TelemetryConfig& t = p.cfg->telemetry;
    CHECK(t.on);
    CHECK_FALSE(t.tls);
    CHECK(std::string(t.host) == "broker.example.net");
    CHECK(t.port == 1883);
    CHECK(std::string(t.topic_prefix) == "edgeway");
    CHECK(t.interval_ms == 60000);
    CHECK(t.queue_max == 64);
    CHECK(std::string(t.device_id).empty());  // the caller fills in the host name
}

TEST_CASE("telemetry config: mqtts, ports, IPv6 and the password file", "[telemetry][config]") {
    Parsed p = parse("[telemetry]\nmqtt_url = mqtts://broker.example.net\n");
    REQUIRE(p.status == ConfigStatus::ok);
    CHECK(p.cfg->telemetry.tls);
    CHECK(p.cfg->telemetry.port == 8883);
    p = parse("[telemetry]\nmqtt_url = mqtts://[::1]:9883\nusername = k\npassword_file = /keys/mqtt\n"
              "device_id = kiosk.7\ntopic_prefix = fleet/eu\nqueue_max = 1\ninterval_ms = 1000\n");
    REQUIRE(p.status == ConfigStatus::ok);
    const TelemetryConfig& t = p.cfg->telemetry;
    CHECK(std::string(t.host) == "::1");
    CHECK(t.port == 9883);
    CHECK(std::string(t.password) == "mqtt-SECRET");
    CHECK(std::string(t.device_id) == "kiosk.7");
    CHECK(std::string(t.topic_prefix) == "fleet/eu");
    p = parse("[telemetry]\nmqtt_url = mqtt://127.0.0.1:1883/\n");
    CHECK(p.status == ConfigStatus::ok);  // a bare trailing slash is no path
}

TEST_CASE("telemetry config: a password readable by others is refused without showing it", "[telemetry][config]") {
    Parsed p = parse("[telemetry]\nmqtt_url = mqtts://b.example\nusername = k\npassword_file = /keys/open\n");
    CHECK(p.status == ConfigStatus::error);
    CHECK(p.error == "t.ini:7: telemetry.password_file: /keys/open is readable by group or others; chmod 600 it");
    CHECK(p.error.find("SECRET") == std::string::npos);
    CHECK_FALSE(p.cfg->telemetry.on);  // nothing of a failed parse is kept
}

TEST_CASE("telemetry config: the password from a systemd credential", "[telemetry][config]") {
    const std::string head = "[telemetry]\nmqtt_url = mqtts://b.example\nusername = k\n";
    Parsed p = parse(head + "password_credential = mqtt-password\n", systemd_env);
    REQUIRE(p.status == ConfigStatus::ok);
    CHECK(std::string(p.cfg->telemetry.password) == "cred-SECRET");

    // Outside systemd it is an error naming the key, not a broker login without a password.
    p = parse(head + "password_credential = mqtt-password\n");
    CHECK(p.status == ConfigStatus::error);
    CHECK(p.error == "t.ini:7: telemetry.password_credential: CREDENTIALS_DIRECTORY is not set; run under systemd "
                     "with LoadCredential=mqtt-password:FILE");
    CHECK_FALSE(p.cfg->telemetry.on);

    p = parse(head + "password_credential = ../etc/shadow\n", systemd_env);
    CHECK(p.status == ConfigStatus::error);
    CHECK(p.error.find("t.ini:7: telemetry.password_credential: not a valid credential name") == 0);

    p = parse(head + "password_file = /keys/mqtt\npassword_credential = mqtt-password\n", systemd_env);
    CHECK(p.status == ConfigStatus::error);
    CHECK(p.error == "t.ini:8: telemetry.password_credential: set one of password_file and password_credential, not both");

    p = parse("[telemetry]\nmqtt_url = mqtts://b.example\npassword_credential = mqtt-password\n", systemd_env);
    CHECK(p.status == ConfigStatus::error);
    CHECK(p.error == "t.ini:6: telemetry.password_credential: a password needs telemetry.username (MQTT sends no "
                     "password without a user name)");
    CHECK(p.error.find("SECRET") == std::string::npos);
}
