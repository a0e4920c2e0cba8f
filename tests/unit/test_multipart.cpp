// The multipart/form-data scanner: the boundary from the Content-Type, the framing, the
// field found by name (and only that name), hostile and truncated bodies refused.
#include "ew_catch.h"
#include <initializer_list>
#include <string>

#include "core/multipart.h"

using ew::MultipartSpan;
using ew::MultipartStatus;

namespace {

const std::string kB = "----edgeway7MA4YWxk";

std::string part(const std::string& headers, const std::string& value) {
    return "--" + kB + "\r\n" + headers + "\r\n\r\n" + value + "\r\n";
}

std::string form(const std::string& model, const std::string& audio) {
    return part("Content-Disposition: form-data; name=\"model\"", model) +
           part("Content-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav", audio) +
           part("Content-Disposition: form-data; name=\"response_format\"", "json") + "--" + kB + "--\r\n";
}

MultipartStatus find(const std::string& body, const char* field, std::string* value, int* count) {
    MultipartSpan s;
    MultipartStatus st = ew::multipart_find_field(body.data(), body.size(), kB.data(), kB.size(), field, &s, count);
    if (st == MultipartStatus::ok && *count > 0) *value = body.substr(s.begin, s.size());
    return st;
}

}  // namespace

TEST_CASE("multipart: the boundary comes from the Content-Type, quoted or not", "[multipart]") {
    const char* b = nullptr;
    size_t n = 0;
    std::string ct = "multipart/form-data; boundary=" + kB;
    REQUIRE(ew::multipart_boundary(ct.data(), ct.size(), &b, &n));
    CHECK(std::string(b, n) == kB);
    std::string quoted = "Multipart/Form-Data; charset=utf-8; boundary=\"a b:c\"";
    REQUIRE(ew::multipart_boundary(quoted.data(), quoted.size(), &b, &n));
    CHECK(std::string(b, n) == "a b:c");
    for (std::string bad : std::initializer_list<std::string>{"application/json", "multipart/form-data", "multipart/form-data; boundary=",
                            "multipart/form-datax; boundary=abc", "multipart/form-data; boundary=\"abc",
                            "multipart/form-data; boundary=" + std::string(71, 'a'),
                            "multipart/form-data; boundary=a\x01z"}) {
        INFO(bad);
        CHECK_FALSE(ew::multipart_boundary(bad.data(), bad.size(), &b, &n));
    }
}

TEST_CASE("multipart: finds the model field; audio bytes that look like framing do not confuse it", "[multipart]") {
    // The audio holds CR LF, NUL, "--" and a delimiter-like line with another boundary.
    std::string audio = std::string("RIFF\0\0", 6) + "\r\n--\r\n--" + kB.substr(0, 10) + "\r\nname=\"model\"\r\n\r\nxx";
    audio += std::string("\xff\xfe\r\n\r\n", 6);
    std::string body = form("whisper-1", audio);
    std::string v;
    int count = 0;
    REQUIRE(find(body, "model", &v, &count) == MultipartStatus::ok);
    CHECK(count == 1);
    CHECK(v == "whisper-1");
    REQUIRE(find(body, "file", &v, &count) == MultipartStatus::ok);
    CHECK(v == audio);
    REQUIRE(find(body, "stream", &v, &count) == MultipartStatus::ok);
    CHECK(count == 0);
    // "filename=" is not "name=".
    std::string only_file = part("Content-Disposition: form-data; filename=\"model\"", "x") + "--" + kB + "--";
    REQUIRE(find(only_file, "model", &v, &count) == MultipartStatus::ok);
    CHECK(count == 0);
}

TEST_CASE("multipart: two model fields are counted; an empty value is found empty", "[multipart]") {
    std::string body = part("Content-Disposition: form-data; name=model", "a") +
                       part("content-disposition: form-data; name=\"model\"", "") + "--" + kB + "--\r\n";
    std::string v;
    int count = 0;
    REQUIRE(find(body, "model", &v, &count) == MultipartStatus::ok);
    CHECK(count == 2);
    CHECK(v == "a");
}

TEST_CASE("multipart: a preamble is skipped, transport padding after a delimiter allowed", "[multipart]") {
    std::string body = "preamble\r\n--" + kB + "  \r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm\r\n--" +
                       kB + "--";
    std::string v;
    int count = 0;
    REQUIRE(find(body, "model", &v, &count) == MultipartStatus::ok);
    CHECK(v == "m");
}

TEST_CASE("multipart: truncated and malformed bodies are refused", "[multipart]") {
    std::string good = form("whisper-1", "abc");
    std::string v;
    int count = 0;
    // Every prefix that cuts the closing delimiter short is refused (never ok with a half body).
    for (size_t n = 0; n + 4 < good.size() - kB.size(); n++) {
        INFO(n);
        CHECK(find(good.substr(0, n), "model", &v, &count) != MultipartStatus::ok);
    }
    CHECK(find("no delimiter at all", "model", &v, &count) == MultipartStatus::bad_framing);
    CHECK(find("--" + kB + "\r\nContent-Disposition: form-data; name=\"model\"\r\nm\r\n--" + kB + "--", "model", &v,
               &count) != MultipartStatus::ok);
    CHECK(find("--" + kB + "\r\nBad\x01Header: x\r\n\r\nm\r\n--" + kB + "--", "model", &v, &count) ==
          MultipartStatus::bad_part_header);
    CHECK(find("--" + kB + "\r\n" + std::string(2000, 'h') + "\r\n\r\nm\r\n--" + kB + "--", "model", &v, &count) ==
          MultipartStatus::bad_part_header);
    std::string many;
    for (int i = 0; i < EW_MULTIPART_MAX_PARTS + 1; i++) many += part("Content-Disposition: form-data; name=\"x\"", "1");
    many += "--" + kB + "--";
    CHECK(find(many, "model", &v, &count) == MultipartStatus::too_many_parts);
}
