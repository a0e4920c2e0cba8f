#include "ew_catch.h"

#include <string.h>

#include <string>

#include "core/json_scan.h"

using namespace ew;

namespace {

JsonStatus validate(const std::string& s, JsonError* err = nullptr) { return json_validate(s.data(), s.size(), err); }

std::string nested(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

std::string span_text(const std::string& s, JsonSpan sp) { return s.substr(sp.begin, sp.size()); }

}  // namespace

TEST_CASE("json_validate accepts valid documents", "[json]") {
    const char* valid[] = {
        "{}", "[]", " \t\r\n{} \n", "0", "-0", "1.5", "-12.5e+10", "1E-3", "0.0e0", "true", "false", "null",
        "\"\"", "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"", "\"\\u0041\\u00e9\\uD83D\\uDE00\"", "\"h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"",
        "{\"a\":1,\"b\":[1,2,{\"c\":null}],\"d\":{\"e\":\"f\"}}", "[ 1 , 2 , [ ] , { } ]", "{\"\":\"\"}",
        "{\"model\":\"gpt-4.1\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true}",
        "\"\x7F\"",
    };
    for (const char* v : valid) {
        INFO(v);
        JsonError err;
        CHECK(validate(v, &err) == JsonStatus::ok);
        CHECK(err.message[0] == '\0');
    }
    CHECK(validate(nested(EW_CAP_JSON_DEPTH)) == JsonStatus::ok);
}

TEST_CASE("json_validate rejects invalid documents", "[json]") {
    struct Case {
        std::string text;
        JsonStatus want;
    };
    const Case invalid[] = {
        {"", JsonStatus::empty},
        {"   \n", JsonStatus::empty},
        {"{", JsonStatus::syntax},
        {"[1,]", JsonStatus::syntax},
        {"[1 2]", JsonStatus::syntax},
        {"{\"a\":1,}", JsonStatus::syntax},
        {"{\"a\" 1}", JsonStatus::syntax},
        {"{a:1}", JsonStatus::syntax},
        {"{'a':1}", JsonStatus::syntax},
        {"{\"a\":1]", JsonStatus::syntax},
        {"[1}", JsonStatus::syntax},
        {"tru", JsonStatus::syntax},
        {"nul", JsonStatus::syntax},
        {"True", JsonStatus::syntax},
        {"undefined", JsonStatus::syntax},
        {"01", JsonStatus::bad_number},
        {"-", JsonStatus::bad_number},
        {"+1", JsonStatus::syntax},
        {"1.", JsonStatus::bad_number},
        {".5", JsonStatus::syntax},
        {"1e", JsonStatus::bad_number},
        {"1e+", JsonStatus::bad_number},
        {"-01", JsonStatus::bad_number},
        {"NaN", JsonStatus::syntax},
        {"\"abc", JsonStatus::syntax},
        {"\"a\\x\"", JsonStatus::bad_string},
        {"\"\\u12G4\"", JsonStatus::bad_string},
        {"\"\\u12\"", JsonStatus::bad_string},
        {"\"\\uD83D\"", JsonStatus::bad_string},
        {"\"\\uD83Dx\"", JsonStatus::bad_string},
        {"\"\\uDE00\"", JsonStatus::bad_string},
        {"\"\\uD83D\\u0041\"", JsonStatus::bad_string},
        {std::string("\"a\nb\""), JsonStatus::bad_string},
        {std::string("\"a\tb\""), JsonStatus::bad_string},
        {std::string("\"a\0b\"", 5), JsonStatus::bad_string},
        {"\"\xC3\"", JsonStatus::bad_utf8},
        {"\"\xC0\xAF\"", JsonStatus::bad_utf8},          // overlong '/'
        {"\"\xE0\x80\xAF\"", JsonStatus::bad_utf8},      // overlong
        {"\"\xED\xA0\x80\"", JsonStatus::bad_utf8},      // encoded surrogate
        {"\"\xF4\x90\x80\x80\"", JsonStatus::bad_utf8},  // above U+10FFFF
        {"\"\xFF\"", JsonStatus::bad_utf8},
        {"\"\x80\"", JsonStatus::bad_utf8},
        {"\xEF\xBB\xBF{}", JsonStatus::syntax},          // BOM
        {"{} x", JsonStatus::trailing},
        {"{}{}", JsonStatus::trailing},
        {"1 2", JsonStatus::trailing},
        {std::string("{}\0", 3), JsonStatus::trailing},
        {nested(EW_CAP_JSON_DEPTH + 1), JsonStatus::too_deep},
        {std::string(100000, '['), JsonStatus::too_deep},
        {"[[[[", JsonStatus::syntax},
    };
    for (const Case& c : invalid) {
        INFO("text: " << c.text);
        JsonError err;
        JsonStatus st = validate(c.text, &err);
        CHECK(st == c.want);
        CHECK(err.message[0] != '\0');
        CHECK(err.offset <= c.text.size());
    }
}

TEST_CASE("json_validate reports the error offset", "[json]") {
    JsonError err;
    REQUIRE(validate("{\"a\":[1,2,x]}", &err) == JsonStatus::syntax);
    CHECK(err.offset == 10);
    REQUIRE(validate("{\"a\":\"b\nc\"}", &err) == JsonStatus::bad_string);
    CHECK(err.offset == 7);
}

TEST_CASE("json_find_key counts top-level occurrences only", "[json]") {
    std::string body = R"({"messages":[{"model":"inner"}],"model":"gpt-4.1","x":{"model":"deep"}})";
    JsonSpan sp;
    REQUIRE(json_find_key(body.data(), body.size(), "model", &sp) == 1);
    CHECK(span_text(body, sp) == "\"gpt-4.1\"");
    char out[EW_CAP_MODEL_NAME];
    REQUIRE(json_span_string(body.data(), sp, out, sizeof out));
    CHECK(std::string(out) == "gpt-4.1");
    CHECK(json_find_key(body.data(), body.size(), "absent", &sp) == 0);

    std::string dup = R"({"model":"a","stream":true,"model":"b"})";
    REQUIRE(json_find_key(dup.data(), dup.size(), "model", &sp) == 2);
    CHECK(span_text(dup, sp) == "\"a\"");

    // Escaped keys compare after unescaping.
    std::string esc = R"({"mod\u0065l":"x", "\u006dodel" : "y"})";
    CHECK(json_find_key(esc.data(), esc.size(), "model", &sp) == 2);
    CHECK(span_text(esc, sp) == "\"x\"");
    // A key containing \u0000 is not the NUL-terminated key's prefix.
    std::string nul = R"({"model\u0000":"x"})";
    CHECK(json_find_key(nul.data(), nul.size(), "model", &sp) == 0);
    std::string pre = R"({"mode":"x","models":"y"})";
    CHECK(json_find_key(pre.data(), pre.size(), "model", &sp) == 0);
}

TEST_CASE("json_find_key rejects what is not one valid object", "[json]") {
    const char* bad[] = {"[]", "\"model\"", "{\"model\":\"a\"", "{\"model\":\"a\"} x", "{\"model\":01}", "",
                         "{\"model\":\"a\",}", "{\"a\":[1,}"};
    for (const char* b : bad) {
        INFO(b);
        CHECK(json_find_key(b, strlen(b), "model", nullptr) == -1);
    }
    CHECK(json_find_key("{}", 2, "model", nullptr) == 0);
    CHECK(json_find_key(" { } ", 5, "model", nullptr) == 0);
}

TEST_CASE("json span helpers", "[json]") {
    std::string b = R"({"stream":true,"s2":false,"n":null,"u":18446744073709551615,"big":18446744073709551616,)"
                    R"("neg":-1,"f":1.0,"e":1e3,"str":"a\"\u00e9\uD83D\uDE00\n","z":"a\u0000b","o":{"k":[1]}})";
    JsonSpan sp;
    bool bv = false;
    REQUIRE(json_find_key(b.data(), b.size(), "stream", &sp) == 1);
    CHECK(json_span_type(b.data(), sp) == JsonType::boolean);
    CHECK((json_span_bool(b.data(), sp, &bv) && bv));
    REQUIRE(json_find_key(b.data(), b.size(), "s2", &sp) == 1);
    CHECK((json_span_bool(b.data(), sp, &bv) && !bv));
    REQUIRE(json_find_key(b.data(), b.size(), "n", &sp) == 1);
    CHECK(json_span_type(b.data(), sp) == JsonType::null);
    CHECK_FALSE(json_span_bool(b.data(), sp, &bv));

    uint64_t u = 0;
    REQUIRE(json_find_key(b.data(), b.size(), "u", &sp) == 1);
    CHECK((json_span_uint(b.data(), sp, &u) && u == UINT64_MAX));
    for (const char* k : {"big", "neg", "f", "e", "str"}) {
        INFO(k);
        REQUIRE(json_find_key(b.data(), b.size(), k, &sp) == 1);
        CHECK_FALSE(json_span_uint(b.data(), sp, &u));
    }

    char out[32];
    size_t len = 0;
    REQUIRE(json_find_key(b.data(), b.size(), "str", &sp) == 1);
    REQUIRE(json_span_string(b.data(), sp, out, sizeof out, &len));
    CHECK(std::string(out, len) == "a\"\xC3\xA9\xF0\x9F\x98\x80\n");
    CHECK(json_span_string_equals(b.data(), sp, "a\"\xC3\xA9\xF0\x9F\x98\x80\n"));
    CHECK_FALSE(json_span_string_equals(b.data(), sp, "a"));
    CHECK_FALSE(json_span_string(b.data(), sp, out, 5));  // too small
    CHECK_FALSE(json_span_string(b.data(), sp, out, len));  // no room for the NUL
    CHECK(json_span_string(b.data(), sp, out, len + 1));
    REQUIRE(json_find_key(b.data(), b.size(), "z", &sp) == 1);
    CHECK_FALSE(json_span_string(b.data(), sp, out, sizeof out));  // embedded U+0000
    REQUIRE(json_find_key(b.data(), b.size(), "stream", &sp) == 1);
    CHECK_FALSE(json_span_string(b.data(), sp, out, sizeof out));  // not a string

    REQUIRE(json_find_key(b.data(), b.size(), "o", &sp) == 1);
    CHECK(json_span_type(b.data(), sp) == JsonType::object);
    JsonSpan k;
    REQUIRE(json_find_member(b.data(), sp, "k", &k) == 1);
    CHECK(json_span_type(b.data(), k) == JsonType::array);
    CHECK(span_text(b, k) == "[1]");
}

TEST_CASE("json_find_path_uint reads nested counters", "[json]") {
    std::string b = R"({"id":"x","usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15,)"
                    R"("details":{"cached_tokens":7}},"choices":[]})";
    const char* p1[] = {"usage", "prompt_tokens"};
    const char* p2[] = {"usage", "details", "cached_tokens"};
    const char* p3[] = {"usage", "missing"};
    const char* p4[] = {"id", "x"};
    const char* p5[] = {"usage"};
    uint64_t v = 0;
    CHECK((json_find_path_uint(b.data(), b.size(), p1, 2, &v) && v == 12));
    CHECK((json_find_path_uint(b.data(), b.size(), p2, 3, &v) && v == 7));
    CHECK_FALSE(json_find_path_uint(b.data(), b.size(), p3, 2, &v));
    CHECK_FALSE(json_find_path_uint(b.data(), b.size(), p4, 2, &v));
    CHECK_FALSE(json_find_path_uint(b.data(), b.size(), p5, 1, &v));
    CHECK_FALSE(json_find_path_uint(b.data(), b.size(), p1, 0, &v));
    std::string nulls = R"({"usage":null})";
    CHECK_FALSE(json_find_path_uint(nulls.data(), nulls.size(), p1, 2, &v));
}

TEST_CASE("json_string_literal escapes", "[json]") {
    char out[64];
    size_t len = 0;
    const char* name = "we\"ird\\model\n\x01";
    REQUIRE(json_string_literal(name, strlen(name), out, sizeof out, &len));
    CHECK(std::string(out, len) == "\"we\\\"ird\\\\model\\n\\u0001\"");
    CHECK(validate(std::string(out, len)) == JsonStatus::ok);
    CHECK_FALSE(json_string_literal("abcdef", 6, out, 8, &len));  // needs 9 with quotes and NUL
    CHECK(json_string_literal("abcdef", 6, out, 9, &len));
    CHECK_FALSE(json_string_literal("", 0, out, 0, &len));
}

TEST_CASE("json_rewrite_model swaps only the model value", "[json]") {
    std::string body = "{ \"messages\" : [{\"role\":\"user\",\"content\":\"say \\\"model\\\"\"}],\n"
                       "  \"model\" : \"gpt-4.1\" , \"stream\":true, \"temperature\":0.5 }";
    JsonSpan sp;
    REQUIRE(json_find_key(body.data(), body.size(), "model", &sp) == 1);
    char lit[EW_CAP_MODEL_NAME + 2];
    size_t lit_len = 0;
    REQUIRE(json_string_literal("gpt-4o-\"mini\"", 13, lit, sizeof lit, &lit_len));
    BodySegments seg;
    json_rewrite_model(body.data(), body.size(), sp, lit, lit_len, &seg);
    CHECK(seg.part[0] == body.data());  // no copy of the body
    CHECK(seg.part[2] == body.data() + sp.end);
    char out[512];
    size_t n = 0;
    REQUIRE(body_segments_copy(seg, out, sizeof out, &n));
    CHECK(n == seg.total());
    std::string rewritten(out, n);
    REQUIRE(validate(rewritten) == JsonStatus::ok);
    JsonSpan sp2;
    REQUIRE(json_find_key(out, n, "model", &sp2) == 1);
    char model[EW_CAP_MODEL_NAME];
    REQUIRE(json_span_string(out, sp2, model, sizeof model));
    CHECK(std::string(model) == "gpt-4o-\"mini\"");
    // Everything outside the value is byte-identical.
    CHECK(rewritten.substr(0, sp2.begin) == body.substr(0, sp.begin));
    CHECK(rewritten.substr(sp2.end) == body.substr(sp.end));
    CHECK_FALSE(body_segments_copy(seg, out, n, &n));

    // A bogus span leaves the body whole.
    json_rewrite_model(body.data(), body.size(), JsonSpan{5, 9999}, lit, lit_len, &seg);
    CHECK(seg.total() == body.size());
    CHECK(seg.len[1] == 0);
}

TEST_CASE("to_string(JsonStatus)", "[json]") {
    CHECK(std::string(to_string(JsonStatus::ok)) == "ok");
    CHECK(std::string(to_string(JsonStatus::too_deep)) == "too_deep");
}
