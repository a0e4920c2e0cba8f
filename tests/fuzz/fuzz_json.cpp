// libFuzzer target: the strict JSON scanner (json_scan) and its consistency rules.
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_scan.h"
#include "core/upstream_error.h"

using namespace ew;

#define CHECK(c) \
    do {         \
        if (!(c)) abort(); \
    } while (0)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const char* p = reinterpret_cast<const char*>(data);
    JsonError err;
    JsonStatus st = json_validate(p, size, &err);
    CHECK(err.offset <= size);
    CHECK((st == JsonStatus::ok) == (err.message[0] == '\0'));

    JsonSpan model;
    int count = json_find_key(p, size, "model", &model);
    // find_key accepts exactly the valid documents whose value is an object.
    size_t first = 0;
    while (first < size && (p[first] == ' ' || p[first] == '\t' || p[first] == '\n' || p[first] == '\r')) first++;
    bool is_object = st == JsonStatus::ok && p[first] == '{';
    CHECK((count >= 0) == is_object);

    if (count > 0) {
        CHECK(model.begin < model.end && model.end <= size);
        char name[EW_CAP_MODEL_NAME];
        size_t name_len = 0;
        if (json_span_string(p, model, name, sizeof name, &name_len)) {
            CHECK(strlen(name) == name_len);
            CHECK(json_span_string_equals(p, model, name));
        }
        bool b;
        uint64_t u;
        (void)json_span_bool(p, model, &b);
        (void)json_span_uint(p, model, &u);
        if (json_span_type(p, model) == JsonType::object) {
            JsonSpan inner;
            CHECK(json_find_member(p, model, "x", &inner) >= 0);
        }
        // The rewrite keeps the document valid and changes only the model.
        static const char lit[] = "\"fallback-\\u00e9\"";
        BodySegments seg;
        json_rewrite_model(p, size, model, lit, sizeof lit - 1, &seg);
        static char out[1 << 17];
        size_t out_len = 0;
        if (body_segments_copy(seg, out, sizeof out, &out_len)) {
            CHECK(json_validate(out, out_len, nullptr) == JsonStatus::ok);
            JsonSpan m2;
            CHECK(json_find_key(out, out_len, "model", &m2) == count);
            CHECK(json_span_string_equals(out, m2, "fallback-\xC3\xA9"));
            CHECK(memcmp(out, p, model.begin) == 0);
            CHECK(memcmp(out + m2.end, p + model.end, size - model.end) == 0);
        }
    }
    // An error body means something only when it is one valid JSON object.
    const uint16_t statuses[] = {400, 404, 429};
    for (uint16_t s : statuses) CHECK(upstream_error_meaning(s, p, size) == ErrorMeaning::none || is_object);

    const char* path[] = {"usage", "prompt_tokens"};
    uint64_t v;
    (void)json_find_path_uint(p, size, path, 2, &v);

    // Any bytes as a model name: the literal is valid JSON unless the bytes are not UTF-8,
    // and it decodes back to the same bytes.
    static char lit2[1 << 16];
    size_t lit_len = 0;
    if (size < 4096 && json_string_literal(p, size, lit2, sizeof lit2, &lit_len)) {
        JsonStatus ls = json_validate(lit2, lit_len, nullptr);
        CHECK(ls == JsonStatus::ok || ls == JsonStatus::bad_utf8);
        if (ls == JsonStatus::ok && memchr(p, '\0', size) == nullptr) {
            static char back[4097];
            size_t back_len = 0;
            CHECK(json_span_string(lit2, JsonSpan{0, lit_len}, back, sizeof back, &back_len));
            CHECK(back_len == size && memcmp(back, p, size) == 0);
        }
    }
    return 0;
}
