// The local request parser is strict (RFC 9110/9112), whichever llhttp the build links:
// Debian 12's sources compiled in strict mode, or Debian 13's libllhttp 9. Each input is fed
// whole and one byte at a time, the way a slow client's bytes arrive.
#include <string.h>

#include <string>

#include "ew_catch.h"
#include "net/http.h"

namespace {

char g_body[4096];

struct Outcome {
    ew::HttpParse result = ew::HttpParse::need_more;
    std::string body;
    std::string reason;
    size_t messages = 0;  // complete requests parsed before the result
};

// Feeds `in` in pieces of `step` bytes (0: whole), resetting between complete messages the
// way a keep-alive connection does, until an error or the end of the input.
Outcome parse(const std::string& in, size_t step) {
    ew::RequestParser req;
    req.init(g_body, sizeof g_body);
    Outcome out;
    size_t off = 0;
    while (off < in.size()) {
        size_t len = in.size() - off;
        if (step != 0 && len > step) len = step;
        size_t used = 0;
        ew::HttpParse r = req.feed(in.data() + off, len, &used);
        off += used;
        if (r == ew::HttpParse::complete) {
            out.messages++;
            out.body.assign(req.body, req.body_len);
            req.reset();
            continue;
        }
        out.result = r;
        if (r != ew::HttpParse::need_more) {
            out.reason = req.error_reason;
            break;
        }
    }
    if (out.result == ew::HttpParse::need_more && out.messages > 0) out.result = ew::HttpParse::complete;
    return out;
}

const char* kChunkedHead = "POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
const char* kNext = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";

}  // namespace

TEST_CASE("request parser: a well-formed chunked request parses, whole and byte by byte") {
    std::string in = std::string(kChunkedHead) + "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    for (size_t step : {size_t{0}, size_t{1}, size_t{2}, size_t{7}}) {
        Outcome o = parse(in, step);
        INFO("step " << step << ": " << o.reason);
        CHECK(o.result == ew::HttpParse::complete);
        CHECK(o.messages == 1);
        CHECK(o.body == "hello world");
    }
}

TEST_CASE("request parser: chunk data not followed by CRLF is a bad request, and nothing after it is parsed") {
    // "XX" where the CRLF must be: lenient llhttp skips two bytes here and then answers the
    // pipelined request that follows.
    for (const char* bad : {"5\r\nhelloXX0\r\n\r\n", "5\r\nhello\rX0\r\n\r\n", "5\r\nhello\nX0\r\n\r\n",
                            "5\r\nhello0\r\n\r\n"}) {
        std::string in = std::string(kChunkedHead) + bad + kNext;
        for (size_t step : {size_t{0}, size_t{1}, size_t{3}}) {
            Outcome o = parse(in, step);
            INFO("chunks " << bad << ", step " << step);
            CHECK(o.result == ew::HttpParse::bad_request);
            CHECK(o.messages == 0);
        }
    }
}

TEST_CASE("request parser: a header name must be an RFC 9110 token") {
    for (const char* name : {"X A", "X\tA", "X\x01" "A", "X(A)", "X@A", "X\"A", "X\x80" "A"}) {
        std::string in = std::string("GET /healthz HTTP/1.1\r\nHost: a\r\n") + name + ": b\r\n\r\n";
        for (size_t step : {size_t{0}, size_t{1}}) {
            Outcome o = parse(in, step);
            INFO("header name [" << name << "], step " << step);
            CHECK(o.result == ew::HttpParse::bad_request);
            CHECK(o.messages == 0);
        }
    }
    // Every token character is fine.
    std::string ok = "GET /healthz HTTP/1.1\r\nHost: a\r\nX-a_b.c~d!e#f$g%h&i'j*k+l^m`n|o9Z: v\r\n\r\n";
    Outcome o = parse(ok, 0);
    CHECK(o.result == ew::HttpParse::complete);
    CHECK(o.messages == 1);
}

TEST_CASE("request parser: space before the colon and obsolete line folding are refused") {
    for (const char* head : {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",
                             "GET / HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n"}) {
        Outcome o = parse(head, 0);
        INFO(head);
        CHECK(o.result == ew::HttpParse::bad_request);
    }
}

TEST_CASE("request parser: pipelined requests still parse one after the other") {
    std::string in = std::string(kNext) + kNext + std::string(kChunkedHead) + "2\r\nok\r\n0\r\n\r\n";
    Outcome o = parse(in, 1);
    CHECK(o.result == ew::HttpParse::complete);
    CHECK(o.messages == 3);
    CHECK(o.body == "ok");
}
