// libFuzzer target: the multipart/form-data scanner. The first byte picks the boundary's
// length (1..70) from the next bytes; the rest is the body. Checks: a found field's span
// lies inside the body, ends right before a delimiter, and rewriting it with the exchange's
// three segments gives back the body when the value is put back unchanged.
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <string>

#include "core/multipart.h"

using namespace ew;

#define CHECK(c) \
    do {         \
        if (!(c)) abort(); \
    } while (0)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    size_t bl = 1 + data[0] % 70;
    if (size < 1 + bl) return 0;
    const char* b = reinterpret_cast<const char*>(data + 1);
    std::string ct = "multipart/form-data; boundary=\"" + std::string(b, bl) + "\"";
    const char* pb = nullptr;
    size_t pbl = 0;
    // Quoted whole (no quote inside), a valid boundary comes back as it is.
    if (memchr(b, '"', bl) == nullptr && multipart_boundary(ct.data(), ct.size(), &pb, &pbl))
        CHECK(pbl == bl && memcmp(pb, b, bl) == 0);
    const char* body = reinterpret_cast<const char*>(data + 1 + bl);
    size_t n = size - 1 - bl;
    for (const char* field : {"model", "file", "stream"}) {
        MultipartSpan s;
        int count = -1;
        MultipartStatus st = multipart_find_field(body, n, b, bl, field, &s, &count);
        CHECK(count >= 0);
        if (st != MultipartStatus::ok || count == 0) continue;
        CHECK(s.begin <= s.end && s.end <= n);
        CHECK(s.end + 4 + bl <= n);
        CHECK(memcmp(body + s.end, "\r\n--", 4) == 0 && memcmp(body + s.end + 4, b, bl) == 0);
        std::string rebuilt = std::string(body, s.begin) + std::string(body + s.begin, s.size()) +
                              std::string(body + s.end, n - s.end);
        CHECK(rebuilt.size() == n && memcmp(rebuilt.data(), body, n) == 0);
    }
    return 0;
}
