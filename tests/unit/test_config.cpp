// The INI reader: golden files (tests/unit/data/config/{good,bad}/*.ini) and the values
// they produce. Secrets come from a fake environment and a fake file system.
//
// bad/*.ini:  first line `; expect: <the exact error>`.
// good/*.ini: optional lines `; warn: <an exact warning>`, all of them, in order.
#include <dirent.h>
#include <errno.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include "ew_catch.h"
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/strbuf.h"

namespace {

const std::string kData = EW_TEST_DATA "/config";
const std::string kExample = EW_TEST_DATA "/../../../config/edgeway.ini";

// Every secret the fakes hand out contains this, so a test can tell one leaked into a message.
const char* const kSecretMark = "SECRET";

struct FakeFile {
    std::string content;
    bool private_ok = true;
    int error = 0;
};

struct Fakes {
    std::map<std::string, std::string> env = {
        {"PRIMARY_API_KEY", "sk-SECRET-primary"},
        {"BACKUP_API_KEY", "sk-SECRET-backup"},
        {"EMPTY_KEY", ""},
        {"LONG_KEY", "sk-SECRET-" + std::string(300, 'k')},
        {"SPACE_KEY", "sk SECRET"},
        {"CREDENTIALS_DIRECTORY", "/run/credentials/edgeway.service"},
    };
    std::map<std::string, FakeFile> files = {
        {"/keys/primary.key", {"sk-SECRET-file\n", true, 0}},
        {"/keys/token", {"  local-SECRET-token \r\n", true, 0}},
        {"/keys/shared.key", {"sk-SECRET-shared\n", false, 0}},
        {"/keys/empty.key", {" \n\n", true, 0}},
        {"/keys/two-words.key", {"sk-SECRET one\n", true, 0}},
        {"/keys/locked.key", {"", true, EACCES}},
        {"/keys/long.key", {std::string(EW_CAP_SECRET + 44, 'k') + "\n", true, 0}},
        {"/keys/full.key", {std::string(EW_CAP_SECRET + 64, 'k'), true, 0}},  // fills the reader's buffer
        {"/keys/huge.key", {std::string(4096, 'k'), true, 0}},
        // systemd credentials: what LoadCredential= leaves in $CREDENTIALS_DIRECTORY (mode 0400).
        {"/run/credentials/edgeway.service/primary-key", {"sk-SECRET-cred\n", true, 0}},
        {"/run/credentials/edgeway.service/backup.key@fleet", {" sk-SECRET-cred-backup\r\n", true, 0}},
        {"/run/credentials/edgeway.service/public-key", {"sk-SECRET-cred\n", false, 0}},
        {"/run/credentials/edgeway.service/empty-key", {"\n", true, 0}},
    };
};

const char* fake_getenv(const char* name, void* user) {
    auto& env = static_cast<Fakes*>(user)->env;
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
}

int fake_read_file(const char* path, char* buf, size_t cap, size_t* len, bool* private_ok, void* user) {
    auto& files = static_cast<Fakes*>(user)->files;
    *len = 0;
    auto it = files.find(path);
    if (it == files.end()) return ENOENT;
    if (it->second.error) return it->second.error;
    // The PAL refuses at cap - 1; this fake lets a file fill the buffer, to reach that guard too.
    if (it->second.content.size() > cap) return EFBIG;
    std::copy(it->second.content.begin(), it->second.content.end(), buf);
    *len = it->second.content.size();
    *private_ok = it->second.private_ok;
    return 0;
}

struct Result {
    ew::ConfigStatus status = ew::ConfigStatus::error;
    std::string error;
    std::vector<std::string> warnings;
    std::unique_ptr<ew::Config> cfg = std::make_unique<ew::Config>();
};

void collect_warning(const char* line, void* user) { static_cast<Result*>(user)->warnings.push_back(line); }

Result parse(const std::string& name, const std::string& text, Fakes fakes = Fakes()) {
    Result r;
    ew::ConfigSources src{fake_getenv, fake_read_file, &fakes};
    ew::ConfigDiag err;
    r.status = ew::config_parse(name.c_str(), text.data(), text.size(), src, r.cfg.get(), &err, collect_warning, &r);
    r.error = err.text;
    return r;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

Result parse_file(const std::string& path, Fakes fakes = Fakes()) {
    return parse(path.substr(path.find_last_of('/') + 1), slurp(path), fakes);
}

std::vector<std::string> ini_files(const std::string& dir) {
    std::vector<std::string> out;
    DIR* d = opendir(dir.c_str());
    if (!d) throw std::runtime_error("cannot open " + dir);
    while (dirent* e = readdir(d)) {
        std::string n = e->d_name;
        if (n.size() > 4 && n.compare(n.size() - 4, 4, ".ini") == 0) out.push_back(dir + "/" + n);
    }
    closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

// The values of `; PREFIX <text>` comment lines.
std::vector<std::string> directives(const std::string& text, const std::string& prefix) {
    std::vector<std::string> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.compare(0, prefix.size(), prefix) == 0) out.push_back(line.substr(prefix.size()));
    }
    return out;
}

bool leaks_secret(const Result& r) {
    if (r.error.find(kSecretMark) != std::string::npos) return true;
    for (const auto& w : r.warnings)
        if (w.find(kSecretMark) != std::string::npos) return true;
    return false;
}

const char* const kMinimal = "[endpoint.a]\nurl = https://a.example.com/v1\nmodels = m1\n";

}  // namespace

TEST_CASE("config: each bad golden file fails with exactly its expected error", "[config]") {
    auto files = ini_files(kData + "/bad");
    REQUIRE(files.size() >= 20);
    for (const auto& path : files) {
        INFO(path);
        std::string text = slurp(path);
        auto expect = directives(text, "; expect: ");
        REQUIRE(expect.size() == 1);
        Result r = parse_file(path);
        CHECK(r.status == ew::ConfigStatus::error);
        CHECK(r.error == expect[0]);
        CHECK_FALSE(leaks_secret(r));
        CHECK(r.cfg->endpoint_count == 0);  // a failed parse leaves the defaults, no keys
    }
}

TEST_CASE("config: each good golden file parses, with exactly the warnings it lists", "[config]") {
    auto files = ini_files(kData + "/good");
    REQUIRE(files.size() >= 5);
    for (const auto& path : files) {
        INFO(path);
        Result r = parse_file(path);
        CHECK(r.error == "");
        CHECK(r.status == ew::ConfigStatus::ok);
        CHECK(r.warnings == directives(slurp(path), "; warn: "));
        CHECK_FALSE(leaks_secret(r));
        CHECK(r.cfg->endpoint_count >= 1);
    }
}

TEST_CASE("config: the documented example config/edgeway.ini", "[config]") {
    std::string text = slurp(kExample);
    SECTION("parses without warnings when its key variables are set") {
        Result r = parse("edgeway.ini", text);
        REQUIRE(r.status == ew::ConfigStatus::ok);
        CHECK(r.warnings.empty());
        REQUIRE(r.cfg->endpoint_count == 2);
        CHECK(std::string(r.cfg->endpoints[0].api_key) == "sk-SECRET-primary");
        CHECK(std::string(r.cfg->endpoints[1].api_key) == "sk-SECRET-backup");
        REQUIRE(r.cfg->fallback_for("gpt-4.1") != nullptr);
    }
    SECTION("only warns when they are not set") {
        Fakes none;
        none.env.clear();
        Result r = parse("edgeway.ini", text, none);
        REQUIRE(r.status == ew::ConfigStatus::ok);
        REQUIRE(r.warnings.size() == 2);
        CHECK(r.warnings[0].find("endpoint.primary.api_key_env: PRIMARY_API_KEY is not set") != std::string::npos);
        CHECK(r.warnings[1].find("endpoint.backup.api_key_env: BACKUP_API_KEY is not set") != std::string::npos);
        CHECK(r.cfg->endpoints[0].api_key[0] == '\0');
    }
    SECTION("holds the defaults of AgentConfig and ProbeConfig") {
        Result r = parse("edgeway.ini", text);
        ew::Config defaults;
        const auto& a = r.cfg->agent;
        const auto& d = defaults.agent;
        CHECK(std::string(a.listen_host) == d.listen_host);
        CHECK(a.listen_port == d.listen_port);
        CHECK(a.log_level == d.log_level);
        CHECK(a.strategy == d.strategy);
        CHECK(a.max_clients == d.max_clients);
        CHECK(a.max_request_bytes == d.max_request_bytes);
        CHECK(a.request_timeout_ms == d.request_timeout_ms);
        CHECK(a.max_attempts == d.max_attempts);
        CHECK(a.retry_backoff_ms == d.retry_backoff_ms);
        CHECK(a.retry_backoff_max_ms == d.retry_backoff_max_ms);
        CHECK(a.first_token_timeout_ms == d.first_token_timeout_ms);
        CHECK(std::string(a.dns_servers) == d.dns_servers);
        CHECK(a.dns_min_ttl_ms == d.dns_min_ttl_ms);
        CHECK(a.dns_max_ttl_ms == d.dns_max_ttl_ms);
        const auto& p = r.cfg->probe;
        const auto& dp = defaults.probe;
        CHECK(p.kind == dp.kind);
        CHECK(p.interval_ms == dp.interval_ms);
        CHECK(p.down_interval_ms == dp.down_interval_ms);
        CHECK(p.timeout_ms == dp.timeout_ms);
        CHECK(p.fall == dp.fall);
        CHECK(p.rise == dp.rise);
        CHECK(p.jitter_pct == dp.jitter_pct);
        CHECK(p.cooldown_max_ms == dp.cooldown_max_ms);
        CHECK(r.cfg->endpoints[0].timeout_ms == ew::EndpointConfig().timeout_ms);
    }
    SECTION("sets every key of SPEC section 5") {
        const char* const keys[] = {
            "listen", "local_token_file", "log_level", "strategy", "max_clients", "max_request_bytes",
            "request_timeout_ms", "max_attempts", "retry_backoff_ms", "retry_backoff_max_ms",
            "first_token_timeout_ms", "dns_servers", "dns_min_ttl_ms", "dns_max_ttl_ms", "kind", "interval_ms",
            "down_interval_ms", "timeout_ms", "fall", "rise", "jitter_pct", "cooldown_max_ms", "url", "api_key_env",
            "models", "priority", "tls_verify", "ca_file"};
        for (const char* k : keys) {
            INFO(k);
            CHECK(text.find(std::string("\n") + k + " =") != std::string::npos);
        }
    }
}

TEST_CASE("config: every key lands in its field", "[config]") {
    Result r = parse_file(kData + "/good/good_full.ini");
    REQUIRE(r.status == ew::ConfigStatus::ok);
    const ew::Config& c = *r.cfg;
    CHECK(std::string(c.agent.listen_host) == "127.0.0.2");
    CHECK(c.agent.listen_port == 9090);
    CHECK(std::string(c.agent.local_token_file) == "/keys/token");
    CHECK(std::string(c.agent.local_token) == "local-SECRET-token");  // trimmed
    CHECK(c.agent.log_level == ew::LogLevel::debug);
    CHECK(c.agent.strategy == ew::Strategy::weighted);
    CHECK(c.agent.max_clients == 32);
    CHECK(c.agent.max_request_bytes == 65536);
    CHECK(c.agent.request_timeout_ms == 45000);
    CHECK(c.agent.max_attempts == 6);
    CHECK(c.agent.retry_backoff_ms == 100);
    CHECK(c.agent.retry_backoff_max_ms == 1000);
    CHECK(c.agent.first_token_timeout_ms == 8000);
    CHECK(c.probe.kind == ew::ProbeKind::chat);
    CHECK(c.probe.interval_ms == 10000);
    CHECK(c.probe.down_interval_ms == 2000);
    CHECK(c.probe.timeout_ms == 3000);
    CHECK(c.probe.fall == 5);
    CHECK(c.probe.rise == 4);
    CHECK(c.probe.jitter_pct == 20);
    CHECK(c.probe.cooldown_max_ms == 120000);

    REQUIRE(c.endpoint_count == 2);
    const ew::EndpointConfig& p = c.endpoints[0];
    CHECK(std::string(p.name) == "primary");
    CHECK(std::string(p.url) == "https://api.example.com:8443/openai/v1/");
    CHECK(p.scheme == ew::Scheme::https);
    CHECK(std::string(p.host) == "api.example.com");
    CHECK(p.port == 8443);
    CHECK(std::string(p.base_path) == "/openai/v1");
    CHECK(std::string(p.api_key) == "sk-SECRET-primary");
    CHECK_FALSE(p.api_key_inline);
    REQUIRE(p.model_count == 2);
    CHECK(std::string(p.models[0]) == "gpt-4.1");
    CHECK(std::string(p.models[1]) == "gpt-4o-mini");
    CHECK(p.priority == -5);
    CHECK(p.timeout_ms == 20000);
    CHECK(p.tls_verify);
    CHECK(std::string(p.ca_file) == "/etc/edgeway/ca.pem");
    CHECK(p.line == 25);

    const ew::EndpointConfig& l = c.endpoints[1];
    CHECK(std::string(l.name) == "local-llm_2");
    CHECK(l.scheme == ew::Scheme::http);
    CHECK(std::string(l.host) == "127.0.0.1");
    CHECK(l.port == 11434);
    CHECK(std::string(l.base_path) == "/v1");
    CHECK(std::string(l.api_key) == "sk-SECRET-file");  // trailing newline trimmed
    CHECK(std::string(l.models[0]) == "llama3.1:8b");
    CHECK(l.priority == 100);
    CHECK(l.timeout_ms == 120000);
    CHECK(std::string(l.ca_file).empty());

    REQUIRE(c.fallback_count == 2);
    const ew::FallbackRule* f = c.fallback_for("gpt-4.1");
    REQUIRE(f != nullptr);
    REQUIRE(f->next_count == 2);
    CHECK(std::string(f->next[0]) == "gpt-4o-mini");
    CHECK(std::string(f->next[1]) == "deepseek-v3.2");
    REQUIRE(c.fallback_for("gpt-5") != nullptr);
    CHECK(c.fallback_for("gpt-5")->next_count == 1);
    CHECK(c.fallback_for("gpt-4o-mini") == nullptr);
    CHECK(c.fallback_for(nullptr) == nullptr);

    CHECK(c.endpoint_index("primary") == 0);
    CHECK(c.endpoint_index("local-llm_2") == 1);
    CHECK(c.endpoint_index("nope") == -1);
    CHECK(c.endpoint_index(nullptr) == -1);
    CHECK(p.serves("gpt-4o-mini"));
    CHECK_FALSE(p.serves("deepseek-v3.2"));
    CHECK_FALSE(p.serves(nullptr));
    CHECK(l.serves("deepseek-v3.2"));
}

TEST_CASE("config: probe.cooldown_max_ms and down_interval_ms", "[config]") {
    CHECK(ew::Config().probe.cooldown_max_ms == 60000);
    Result r = parse_file(kData + "/good/good_cooldown_default.ini");
    REQUIRE(r.status == ew::ConfigStatus::ok);
    CHECK(r.cfg->probe.down_interval_ms == 90000);
    CHECK(r.cfg->probe.cooldown_max_ms == 90000);  // the unset default cap follows the interval
    Result eq = parse("x.ini", std::string("[probe]\ndown_interval_ms = 7000\ncooldown_max_ms = 7000\n") + kMinimal);
    REQUIRE(eq.status == ew::ConfigStatus::ok);
    CHECK(eq.cfg->probe.cooldown_max_ms == 7000);
    Result set = parse("x.ini", std::string("[probe]\ncooldown_max_ms = 600000\n") + kMinimal);
    REQUIRE(set.status == ew::ConfigStatus::ok);
    CHECK(set.cfg->probe.cooldown_max_ms == 600000);
    CHECK(set.cfg->probe.down_interval_ms == 5000);
}

TEST_CASE("config: the resolver's keys", "[config]") {
    SECTION("defaults: the system's servers, TTL clamped to [30 s, 10 min]") {
        Result r = parse_file(kData + "/good/good_minimal.ini");
        REQUIRE(r.status == ew::ConfigStatus::ok);
        CHECK(std::string(r.cfg->agent.dns_servers).empty());
        CHECK(r.cfg->agent.dns_min_ttl_ms == 30000);
        CHECK(r.cfg->agent.dns_max_ttl_ms == 600000);
    }
    SECTION("servers in the form the resolver takes, port 53 filled in") {
        Result r = parse_file(kData + "/good/good_dns.ini");
        REQUIRE(r.status == ew::ConfigStatus::ok);
        CHECK(std::string(r.cfg->agent.dns_servers) == "127.0.0.1:5353,[::1]:5300,10.0.0.53:53,[fd00::53]:53");
        CHECK(r.cfg->agent.dns_min_ttl_ms == 1000);
        CHECK(r.cfg->agent.dns_max_ttl_ms == 1000);
    }
    SECTION("an empty value means the system's servers") {
        Result r = parse("t.ini", "[agent]\ndns_servers =\n[endpoint.a]\nurl = http://127.0.0.1:1/\nmodels = m\n");
        REQUIRE(r.status == ew::ConfigStatus::ok);
        CHECK(std::string(r.cfg->agent.dns_servers).empty());
    }
}

TEST_CASE("config: the state file's keys", "[config]") {
    const std::string ep = "[endpoint.a]\nurl = http://127.0.0.1:1/\nmodels = m\n";
    SECTION("defaults: none, one write a minute at most; the example says the same") {
        Result r = parse("t.ini", ep);
        REQUIRE(r.status == ew::ConfigStatus::ok);
        CHECK(std::string(r.cfg->agent.state_file).empty());
        CHECK(r.cfg->agent.state_write_interval_ms == 60000);
        Result ex = parse("edgeway.ini", slurp(kExample));
        REQUIRE(ex.status == ew::ConfigStatus::ok);
        CHECK(std::string(ex.cfg->agent.state_file).empty());
        CHECK(ex.cfg->agent.state_write_interval_ms == 60000);
    }
    SECTION("set, and shown by --print-config") {
        Result r = parse("t.ini", "[agent]\nstate_file = /var/lib/edgeway/state\nstate_write_interval_ms = 100\n" + ep);
        REQUIRE(r.status == ew::ConfigStatus::ok);
        CHECK(std::string(r.cfg->agent.state_file) == "/var/lib/edgeway/state");
        CHECK(r.cfg->agent.state_write_interval_ms == 100);
        static char text[EW_CAP_INI_BYTES];
        ew::StrBuf out(text, sizeof text);
        ew::config_print(*r.cfg, "t.ini", &out);
        CHECK(std::string(out.data).find("\nstate_file = /var/lib/edgeway/state\nstate_write_interval_ms = 100\n") !=
              std::string::npos);
    }
    SECTION("an empty state_file means none; an interval under 100 ms is refused") {
        Result r = parse("t.ini", "[agent]\nstate_file =\n" + ep);
        REQUIRE(r.status == ew::ConfigStatus::ok);
        CHECK(std::string(r.cfg->agent.state_file).empty());
        Result bad = parse("t.ini", "[agent]\nstate_write_interval_ms = 99\n" + ep);
        REQUIRE(bad.status == ew::ConfigStatus::error);
        CHECK(bad.error.find("t.ini:2: agent.state_write_interval_ms:") == 0);
    }
}

TEST_CASE("config: syntax variants", "[config]") {
    Result r = parse_file(kData + "/good/good_syntax.ini");
    REQUIRE(r.status == ew::ConfigStatus::ok);
    const ew::Config& c = *r.cfg;
    CHECK(c.agent.log_level == ew::LogLevel::warn);
    CHECK(c.agent.strategy == ew::Strategy::latency);
    CHECK(c.agent.max_clients == 7);
    REQUIRE(c.endpoint_count == 2);
    CHECK(std::string(c.endpoints[0].url) == "https://api.example.com");
    CHECK(std::string(c.endpoints[0].base_path).empty());
    CHECK(c.endpoints[0].port == 443);
    REQUIRE(c.endpoints[0].model_count == 3);
    CHECK(std::string(c.endpoints[0].models[1]) == "gpt-4.1");
    CHECK(std::string(c.endpoints[0].models[2]) == "o3-mini");
    CHECK(c.endpoints[1].scheme == ew::Scheme::https);
    CHECK(std::string(c.endpoints[1].base_path) == "/v1");
    CHECK(c.endpoints[1].priority == 0);
    CHECK(std::string(c.endpoints[1].ca_file) == "/etc/ssl/ca;v2.pem");
    CHECK(c.endpoints[1].line == 16);
}

TEST_CASE("config: IPv6 and localhost", "[config]") {
    Result r = parse_file(kData + "/good/good_ipv6.ini");
    REQUIRE(r.status == ew::ConfigStatus::ok);
    CHECK(std::string(r.cfg->agent.listen_host) == "::1");
    CHECK(r.cfg->agent.listen_port == 8088);
    CHECK(std::string(r.cfg->endpoints[0].host) == "::1");
    CHECK(r.cfg->endpoints[0].port == 8000);
    CHECK(r.cfg->endpoints[0].scheme == ew::Scheme::http);
    CHECK(std::string(r.cfg->endpoints[0].base_path).empty());
    CHECK(std::string(r.cfg->endpoints[1].host) == "2001:db8::10");
    CHECK(r.cfg->endpoints[1].port == 443);

    Result l = parse_file(kData + "/good/good_localhost.ini");
    REQUIRE(l.status == ew::ConfigStatus::ok);
    CHECK(std::string(l.cfg->agent.listen_host) == "127.0.0.1");
    CHECK(l.cfg->agent.listen_port == 8089);
}

TEST_CASE("config: inline keys are kept and flagged", "[config]") {
    Result r = parse_file(kData + "/good/good_warnings.ini");
    REQUIRE(r.status == ew::ConfigStatus::ok);
    CHECK(std::string(r.cfg->endpoints[0].api_key) == "sk-SECRET-inline");
    CHECK(r.cfg->endpoints[0].api_key_inline);
    CHECK_FALSE(r.cfg->endpoints[0].tls_verify);
    CHECK(r.cfg->endpoints[1].api_key[0] == '\0');
}

TEST_CASE("config: whole-file cases", "[config]") {
    SECTION("empty text") {
        Result r = parse("empty.ini", "");
        CHECK(r.status == ew::ConfigStatus::error);
        CHECK(r.error == "empty.ini:0: endpoint: no [endpoint.NAME] section; at least one upstream is required");
    }
    SECTION("null text") {
        ew::Config cfg;
        Fakes f;
        ew::ConfigSources src{fake_getenv, fake_read_file, &f};
        ew::ConfigDiag err;
        CHECK(ew::config_parse("x.ini", nullptr, 10, src, &cfg, &err, nullptr, nullptr) == ew::ConfigStatus::error);
        CHECK(std::string(err.text) ==
              "x.ini:0: endpoint: no [endpoint.NAME] section; at least one upstream is required");
    }
    SECTION("the length bounds the text: nothing after it is read") {
        std::string text = std::string(kMinimal) + "bogus line\n";
        ew::Config cfg;
        Fakes f;
        ew::ConfigSources src{fake_getenv, fake_read_file, &f};
        CHECK(ew::config_parse("x.ini", text.data(), strlen(kMinimal), src, &cfg, nullptr, nullptr, nullptr) ==
              ew::ConfigStatus::ok);
        CHECK(ew::config_parse("x.ini", text.data(), text.size(), src, &cfg, nullptr, nullptr, nullptr) ==
              ew::ConfigStatus::error);
    }
    SECTION("a last line without a newline") {
        std::string text = kMinimal;
        text += "priority = 3";
        Result r = parse("x.ini", text);
        REQUIRE(r.status == ew::ConfigStatus::ok);
        CHECK(r.cfg->endpoints[0].priority == 3);
    }
    SECTION("larger than EW_CAP_INI_BYTES") {
        std::string text = std::string(kMinimal) + std::string(EW_CAP_INI_BYTES, '\n');
        Result r = parse("big.ini", text);
        CHECK(r.status == ew::ConfigStatus::error);
        CHECK(r.error == "big.ini:0: file: larger than 65536 bytes");
    }
    SECTION("a failed parse leaves no key behind") {
        std::string text = std::string(kMinimal) + "api_key = sk-SECRET-x\ntls_verify = maybe\n";
        Result r = parse("x.ini", text);
        CHECK(r.status == ew::ConfigStatus::error);
        CHECK(r.cfg->endpoints[0].api_key[0] == '\0');
        CHECK(r.cfg->endpoint_count == 0);
    }
    SECTION("a second parse into the same Config starts from the defaults") {
        Fakes f;
        ew::ConfigSources src{fake_getenv, fake_read_file, &f};
        ew::Config cfg;
        std::string first = std::string("[agent]\nmax_clients = 3\n") + kMinimal;
        REQUIRE(ew::config_parse("x.ini", first.data(), first.size(), src, &cfg, nullptr, nullptr, nullptr) ==
                ew::ConfigStatus::ok);
        CHECK(cfg.agent.max_clients == 3);
        REQUIRE(ew::config_parse("x.ini", kMinimal, strlen(kMinimal), src, &cfg, nullptr, nullptr, nullptr) ==
                ew::ConfigStatus::ok);
        CHECK(cfg.agent.max_clients == 16);
        CHECK(cfg.endpoint_count == 1);
    }
}

TEST_CASE("config: sources without getenv or read_file", "[config]") {
    ew::ConfigSources none{nullptr, nullptr, nullptr};
    ew::ConfigDiag err;
    ew::Config cfg;
    std::string env = std::string(kMinimal) + "api_key_env = PRIMARY_API_KEY\n";
    std::vector<std::string> warnings;
    auto collect = [](const char* line, void* user) { static_cast<std::vector<std::string>*>(user)->push_back(line); };
    CHECK(ew::config_parse("x.ini", env.data(), env.size(), none, &cfg, &err, collect, &warnings) ==
          ew::ConfigStatus::ok);
    CHECK(warnings.size() == 1);
    std::string file = std::string(kMinimal) + "api_key_file = /k\n";
    CHECK(ew::config_parse("x.ini", file.data(), file.size(), none, &cfg, &err, nullptr, nullptr) ==
          ew::ConfigStatus::error);
    CHECK(std::string(err.text).rfind("x.ini:4: endpoint.a.api_key_file: /k: ", 0) == 0);
}

TEST_CASE("config: api_key_credential reads NAME from $CREDENTIALS_DIRECTORY, trimmed", "[config]") {
    Result r = parse_file(kData + "/good/good_credential.ini");
    REQUIRE(r.status == ew::ConfigStatus::ok);
    CHECK(std::string(r.cfg->endpoints[0].api_key) == "sk-SECRET-cred");
    CHECK(std::string(r.cfg->endpoints[1].api_key) == "sk-SECRET-cred-backup");
    CHECK_FALSE(r.cfg->endpoints[0].api_key_inline);

    std::string text = std::string(kMinimal) + "api_key_credential = primary-key\n";
    SECTION("a trailing slash on the directory is not doubled") {
        Fakes f;
        f.env["CREDENTIALS_DIRECTORY"] = "/run/credentials/edgeway.service/";
        Result s = parse("x.ini", text, f);
        CHECK(s.error == "");
        CHECK(std::string(s.cfg->endpoints[0].api_key) == "sk-SECRET-cred");
    }
    SECTION("outside systemd (no CREDENTIALS_DIRECTORY) the key is an error, not a silent keyless endpoint") {
        Fakes f;
        f.env.erase("CREDENTIALS_DIRECTORY");
        Result s = parse("x.ini", text, f);
        CHECK(s.status == ew::ConfigStatus::error);
        CHECK(s.error ==
              "x.ini:4: endpoint.a.api_key_credential: CREDENTIALS_DIRECTORY is not set; run under systemd with "
              "LoadCredential=primary-key:FILE");
    }
    SECTION("a relative CREDENTIALS_DIRECTORY is refused") {
        Fakes f;
        f.env["CREDENTIALS_DIRECTORY"] = "run/credentials";
        Result s = parse("x.ini", text, f);
        CHECK(s.error == "x.ini:4: endpoint.a.api_key_credential: CREDENTIALS_DIRECTORY is not an absolute path");
    }
    SECTION("a name of 65 characters is refused") {
        Result s = parse("x.ini", std::string(kMinimal) + "api_key_credential = " + std::string(65, 'c') + "\n");
        CHECK(s.status == ew::ConfigStatus::error);
        CHECK(s.error.find("not a valid credential name") != std::string::npos);
    }
}

TEST_CASE("config: no message ever shows a key", "[config]") {
    // The same secret inline in many broken places.
    const char* const broken[] = {
        "api_key = sk-SECRET-123\napi_key = sk-SECRET-456\n",
        "api_key = sk-SECRET-123\napi_key_env = PRIMARY_API_KEY\n",
        "api_key = sk-SECRET 123\n",
        "api_key sk-SECRET-123\n",
        "sk-SECRET-123\n",
        "api_key = sk-SECRET-123\x01\n",
        "api_key_file = /keys/shared.key\n",
        "api_key_file = /keys/two-words.key\n",
        "api_key_env = LONG_KEY\n",
        "api_key_env = SPACE_KEY\n",
    };
    for (const char* tail : broken) {
        INFO(tail);
        Result r = parse("x.ini", std::string(kMinimal) + tail);
        CHECK(r.status == ew::ConfigStatus::error);
        CHECK_FALSE(r.error.empty());
        CHECK_FALSE(leaks_secret(r));
    }
}

TEST_CASE("config: to_string names the enum values as the INI spells them", "[config]") {
    CHECK(std::string(ew::to_string(ew::LogLevel::error)) == "error");
    CHECK(std::string(ew::to_string(ew::LogLevel::debug)) == "debug");
    CHECK(std::string(ew::to_string(ew::Strategy::priority)) == "priority");
    CHECK(std::string(ew::to_string(ew::Strategy::weighted)) == "weighted");
    CHECK(std::string(ew::to_string(ew::ProbeKind::models)) == "models");
    CHECK(std::string(ew::to_string(ew::ProbeKind::tls)) == "tls");
    CHECK(std::string(ew::to_string(static_cast<ew::ProbeKind>(99))) == "?");
}
