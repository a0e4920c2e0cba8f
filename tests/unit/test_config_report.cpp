// --check-config and --print-config at the core: every error of a file in one parse, with
// "did you mean" for misspelt keys and sections (golden files data/config/multi/*.ini, each
// `; expect: <error>` line in order), and the effective configuration printed with its
// defaults and masked secrets (data/config/print/NAME.ini -> NAME.expected).
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>

#include <algorithm>
#include "ew_catch.h"
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/strbuf.h"

namespace {

const std::string kDir = EW_TEST_DATA "/config";

const char* env_key(const char* name, void*) { return std::string(name) == "PRIMARY_API_KEY" ? "sk-SECRET-env" : nullptr; }

int key_file(const char* path, char* buf, size_t cap, size_t* len, bool* private_ok, void*) {
    std::string want = "/keys/token";
    if (want != path) return ENOENT;
    std::string text = "local-SECRET-token\n";
    if (text.size() > cap) return EFBIG;
    std::copy(text.begin(), text.end(), buf);
    *len = text.size();
    *private_ok = true;
    return 0;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::vector<std::string> files(const std::string& dir, const std::string& ext) {
    std::vector<std::string> out;
    DIR* d = opendir(dir.c_str());
    REQUIRE(d != nullptr);
    while (dirent* e = readdir(d)) {
        std::string n = e->d_name;
        if (n.size() > ext.size() && n.compare(n.size() - ext.size(), ext.size(), ext) == 0) out.push_back(n);
    }
    closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<std::string> directives(const std::string& text, const std::string& prefix) {
    std::vector<std::string> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
        if (line.compare(0, prefix.size(), prefix) == 0) out.push_back(line.substr(prefix.size()));
    return out;
}

struct Lines {
    std::vector<std::string> errors, warnings;
};
void on_error(const char* line, void* u) { static_cast<Lines*>(u)->errors.push_back(line); }
void on_warn(const char* line, void* u) { static_cast<Lines*>(u)->warnings.push_back(line); }

struct Parsed {
    ew::ConfigStatus status;
    Lines lines;
    std::string first;
    uint32_t count = 0;
    std::unique_ptr<ew::Config> cfg = std::make_unique<ew::Config>();
};

Parsed parse(const std::string& name, const std::string& text) {
    Parsed p;
    ew::ConfigSources src{env_key, key_file, nullptr};
    ew::ConfigDiag diag;
    ew::ConfigReport rep;
    rep.error = on_error;
    rep.warn = on_warn;
    rep.user = &p.lines;
    p.status = ew::config_parse_report(name.c_str(), text.data(), text.size(), src, p.cfg.get(), &diag, &rep);
    p.first = diag.text;
    p.count = rep.errors;
    return p;
}

std::string print(const ew::Config& cfg, const char* name) {
    static char buf[EW_CAP_INI_BYTES];
    ew::StrBuf out(buf, sizeof buf);
    ew::config_print(cfg, name, &out);
    REQUIRE_FALSE(out.overflow);
    return std::string(out.data, out.len);
}

}  // namespace

TEST_CASE("config report: every error of a file in one parse, in order, with did-you-mean", "[config]") {
    auto names = files(kDir + "/multi", ".ini");
    REQUIRE(names.size() >= 3);
    for (const auto& n : names) {
        INFO(n);
        std::string text = slurp(kDir + "/multi/" + n);
        auto expect = directives(text, "; expect: ");
        REQUIRE(expect.size() >= 3);
        Parsed p = parse(n, text);
        CHECK(p.status == ew::ConfigStatus::error);
        CHECK(p.lines.errors == expect);
        CHECK(p.count == expect.size());
        CHECK(p.first == expect[0]);  // the single-error interface still names the first
        CHECK(p.cfg->endpoint_count == 0);
    }
}

TEST_CASE("config print: the effective configuration, defaults filled in, secrets masked", "[config]") {
    auto names = files(kDir + "/print", ".ini");
    REQUIRE(names.size() >= 2);
    for (const auto& n : names) {
        INFO(n);
        Parsed p = parse(n, slurp(kDir + "/print/" + n));
        REQUIRE(p.status == ew::ConfigStatus::ok);
        std::string out = print(*p.cfg, n.c_str());
        std::string golden_path = kDir + "/print/" + n.substr(0, n.size() - 4) + ".expected";
        if (getenv("EW_UPDATE_GOLDEN")) std::ofstream(golden_path, std::ios::binary) << out;  // then review the diff
        std::string golden = slurp(golden_path);
        CHECK(out == golden);
        CHECK(out.find("SECRET") == std::string::npos);
        // The printed form reads back to the same settings (secrets aside).
        Parsed again = parse("printed.ini", out);
        REQUIRE(again.status == ew::ConfigStatus::ok);
        // (An API key from api_key_env is not in the printout; the token file path is.)
        CHECK(print(*again.cfg, n.c_str()) ==
              std::regex_replace(out, std::regex("; api key: set \\(masked\\)"), "; api key: none"));
    }
}
