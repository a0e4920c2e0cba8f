// Client values that reach heads: model names (x-edgeway-model, the upstream body) and the
// path forwarded upstream. Hostile input, refused rather than repaired.
#include "ew_catch.h"

#include <string.h>
#include <ctype.h>
#include <string>
#include <vector>

#include "core/request_check.h"

using namespace ew;

namespace {

ModelNameCheck model(const std::string& s) { return model_name_check(s.data(), s.size()); }

bool path_ok(const std::string& s, std::string* why_out = nullptr) {
    const char* why = "unset";
    bool ok = upstream_path_check(s.data(), s.size(), &why);
    if (why_out) *why_out = why;
    if (ok) CHECK(std::string(why).empty());
    else CHECK_FALSE(std::string(why).empty());
    return ok;
}

// An independent oracle: percent-decodes (a bad escape stays as it is).
std::string decode_path(const std::string& p) {
    std::string out;
    for (size_t i = 0; i < p.size(); i++) {
        if (p[i] == '%' && i + 2 < p.size() && isxdigit(static_cast<unsigned char>(p[i + 1])) &&
            isxdigit(static_cast<unsigned char>(p[i + 2]))) {
            out += static_cast<char>(std::stoi(p.substr(i + 1, 2), nullptr, 16));
            i += 2;
        } else {
            out += p[i];
        }
    }
    return out;
}

std::vector<std::string> segments(const std::string& s) {
    std::vector<std::string> out(1);
    for (char c : s) {
        if (c == '/') out.emplace_back();
        else out.back() += c;
    }
    return out;
}

}  // namespace

TEST_CASE("request_check: model names that may be echoed in a header", "[request_check]") {
    CHECK(model("gpt-4.1") == ModelNameCheck::ok);
    CHECK(model("llama3.1:8b") == ModelNameCheck::ok);
    CHECK(model("org/model name (v2)~!") == ModelNameCheck::ok);  // printable ASCII, spaces included
    CHECK(model(" ") == ModelNameCheck::ok);
    CHECK(model(std::string(EW_CAP_MODEL_NAME - 1, 'm')) == ModelNameCheck::ok);

    CHECK(model("") == ModelNameCheck::empty);
    CHECK(model_name_check(nullptr, 5) == ModelNameCheck::empty);
    CHECK(model(std::string(EW_CAP_MODEL_NAME, 'm')) == ModelNameCheck::too_long);  // never truncated
    CHECK(model(std::string(4096, 'm')) == ModelNameCheck::too_long);

    CHECK(model("evil\r\nSet-Cookie: pwn=1\r\nX-Injected: yes") == ModelNameCheck::bad_byte);
    for (int b = 0; b < 256; b++) {
        std::string s = "ab";
        s += static_cast<char>(b);
        s += "cd";
        INFO("byte " << b);
        CHECK((model(s) == ModelNameCheck::ok) == (b >= 0x20 && b <= 0x7e));
    }
    CHECK(model(std::string("a\0b", 3)) == ModelNameCheck::bad_byte);
    CHECK(model("caf\xc3\xa9") == ModelNameCheck::bad_byte);  // UTF-8: not ASCII
    CHECK(model("\t") == ModelNameCheck::bad_byte);
    // Only the n bytes given are read.
    CHECK(model_name_check("ok\r\n", 2) == ModelNameCheck::ok);
    CHECK(std::string(to_string(ModelNameCheck::too_long)) == "too_long");
    CHECK(std::string(to_string(ModelNameCheck::bad_byte)) == "bad_byte");
}

TEST_CASE("request_check: paths that may be forwarded upstream", "[request_check]") {
    for (const char* p : {"/v1/chat/completions", "/v1/chat/completions?x=1", "/v1/embeddings", "/v1/completions",
                          "/v1/a", "/v1/files/file-abc123/content", "/v1/chat/completions?a=1&b=%20c",
                          "/v1/x?", "/v1/...", "/v1/.well-known", "/v1/a..b", "/v1/..a", "/v1/%41bc",
                          "/v1/chat/completions?q=../x", "/v1/model:gen~1_2-3"}) {
        INFO(p);
        CHECK(path_ok(p));
    }
}

TEST_CASE("request_check: paths refused", "[request_check]") {
    struct Case {
        const char* path;
        const char* why;
    };
    const Case cases[] = {
        {"/v1/../x", "dot-segment"},
        {"/v1/../../admin/keys", "dot-segment"},
        {"/v1/%2e%2e/admin", "dot-segment"},
        {"/v1/%2E%2E/admin", "dot-segment"},
        {"/v1/.%2E/", "dot-segment"},
        {"/v1/%2e./x", "dot-segment"},
        {"/v1/./chat", "dot-segment"},
        {"/v1/%2e/chat", "dot-segment"},
        {"/v1/chat/..", "dot-segment"},
        {"/v1/chat/.", "dot-segment"},
        {"/v1/chat/%2E%2e?x=1", "dot-segment"},
        {"/v1/chat/..?x=1", "dot-segment"},
        {"/v1/a\\..\\admin", "backslash"},
        {"/v1/a%5c..%5cadmin", "backslash"},
        {"/v1/a%5C", "backslash"},
        {"/v1/a%2f..%2fadmin", "encoded slash"},
        {"/v1/a%2F", "encoded slash"},
        {"/v1/chat%00", "control byte"},
        {"/v1/chat%0d%0aX-Injected:%20yes", "control byte"},
        {"/v1/chat%0A", "control byte"},
        {"/v1/chat%0D", "control byte"},
        {"/v1/chat%7f", "control byte"},
        {"/v1/chat\r\nX: y", "control byte"},
        {"/v1/chat\tx", "control byte"},
        {"/v1/caf\xc3\xa9", "non-ASCII byte"},
        {"/v1/chat completions", "space"},
        {"/v1/chat#frag", "fragment"},
        {"/v1/chat%", "bad percent escape"},
        {"/v1/chat%2", "bad percent escape"},
        {"/v1/chat%zz", "bad percent escape"},
        {"/v1//chat", "empty path segment"},
        {"/v1/chat/", "empty path segment"},
        {"/v1/chat//completions", "empty path segment"},
        {"/v1/", "empty path segment"},
        {"/v1/?x=1", "empty path segment"},
        {"/v1", "path must start with /v1/"},
        {"/v2/chat", "path must start with /v1/"},
        {"/V1/chat", "path must start with /v1/"},
        {"v1/chat", "path must start with /v1/"},
        {"//v1/chat", "path must start with /v1/"},
        {"/admin/keys", "path must start with /v1/"},
        {"", "path must start with /v1/"},
        {"/v1/chat?a b", "space in query"},
        {"/v1/chat?a=\r\n", "control byte in query"},
        {"/v1/chat?a=%0d%0a", "control byte in query"},
        {"/v1/chat?a=%00", "control byte in query"},
        {"/v1/chat?a=\xff", "non-ASCII byte in query"},
        {"/v1/chat?a=%", "bad percent escape in query"},
        {"/v1/chat?a=%g1", "bad percent escape in query"},
        {"/v1/chat?a#b", "fragment"},
    };
    for (const Case& c : cases) {
        INFO(c.path);
        std::string why;
        CHECK_FALSE(path_ok(c.path, &why));
        CHECK(why == c.why);
    }
    SECTION("a NUL byte inside the given length") {
        std::string p("/v1/chat\0/../admin", 18);
        CHECK_FALSE(path_ok(p));
    }
    SECTION("only the n bytes given are read, and why may be null") {
        CHECK(upstream_path_check("/v1/chat/../x", 8, nullptr));
        CHECK_FALSE(upstream_path_check("/v1/chat/../x", 13, nullptr));
        CHECK_FALSE(upstream_path_check(nullptr, 0, nullptr));
    }
    SECTION("every 4-byte tail over hostile bytes: what passes decodes to a clean path") {
        const char alphabet[] = {'.', '%', '2', 'e', 'E', '/', '\\', '\r', '\0', 'a', '?', '5', 'c', 'f'};
        size_t passed = 0;
        for (char w : alphabet)
            for (char x : alphabet)
                for (char y : alphabet)
                    for (char z : alphabet) {
                        std::string p = std::string("/v1/") + w + x + y + z;
                        if (!upstream_path_check(p.data(), p.size(), nullptr)) continue;
                        passed++;
                        INFO(p);
                        std::string decoded = decode_path(p.substr(0, p.find('?')));
                        CHECK(decoded.find('\\') == std::string::npos);
                        CHECK(p.find('\r') == std::string::npos);
                        CHECK(p.find('\0') == std::string::npos);
                        for (const std::string& seg : segments(decoded.substr(4))) {
                            CHECK(seg != "");
                            CHECK(seg != ".");
                            CHECK(seg != "..");
                        }
                    }
        CHECK(passed > 1000);  // the oracle saw plenty of accepted paths
    }
}
