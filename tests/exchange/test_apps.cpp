// The exchange's rules for app patterns beyond JSON chat (issue 10): error classes that hold
// while endpoints stay limited, the header policy on the wire, multipart audio rewritten per
// attempt, audio bytes relayed from the head, and the Responses API's stream end and error.
#include "ew_catch.h"

#include "harness.h"

using namespace ew_test;

namespace {
constexpr uint8_t A = 0, B = 1;

bool has_header(const std::string& headers, const std::string& line) {
    return headers.find(line + "\r\n") != std::string::npos;
}

std::string head_of(const std::string& written) { return written.substr(0, written.find("\r\n\r\n") + 4); }
std::string body_of(const std::string& written) { return written.substr(written.find("\r\n\r\n") + 4); }

const std::string kBoundary = "XyZ-boundary";
const std::string kMultipartType = "multipart/form-data; boundary=" + kBoundary;

std::string form(const std::string& model, const std::string& audio) {
    return "--" + kBoundary + "\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n" + model + "\r\n--" +
           kBoundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n" +
           "Content-Type: audio/wav\r\n\r\n" + audio + "\r\n--" + kBoundary + "--\r\n";
}

std::string audio_bytes() {
    std::string a;
    for (int i = 0; i < 3000; i++) a.push_back(static_cast<char>((i * 13) & 0xff));
    return a + "\r\n--" + kBoundary.substr(0, 4) + "\r\n";
}

const char* const kFallbackEndpoints =
    "[agent]\nmax_attempts = 4\n"
    "[endpoint.a]\nurl = http://127.0.0.1:9001/v1\nmodels = whisper-1\npriority = 10\n"
    "auth_header = api-key\nheaders = X-Title: Kiosk; HTTP-Referer: https://kiosk.example\n"
    "[endpoint.b]\nurl = http://127.0.0.1:9002/v1\nmodels = whisper-large, test-model\npriority = 5\n"
    "[fallback]\nwhisper-1 = whisper-large\n";
}  // namespace

TEST_CASE("while every endpoint stays rate limited, later requests get 429 too (not 503 for no attempt)") {
    World w;
    w.ups.add(A, Script{0, false, status_answer(429, "Retry-After: 30\r\n")});
    w.ups.add(B, Script{0, false, status_answer(429, "Retry-After: 30\r\n")});
    w.request(chat_body());
    w.run();
    REQUIRE(w.out.status == 429);
    w.clock.now += 1000;
    w.request(chat_body());
    w.run();
    CHECK(w.ex->attempts() == 0);
    CHECK(w.out.status == 429);
    CHECK(w.out.body.find("\"rate_limit_error\"") != std::string::npos);
    CHECK(w.out.body.find("rate_limit_exceeded") != std::string::npos);
    CHECK(w.out.headers.find("Retry-After: ") != std::string::npos);
    CHECK(w.out.headers.find("retry-after-ms: ") != std::string::npos);
    CHECK(w.out.headers.find("x-should-retry: false") == std::string::npos);
}

TEST_CASE("while every key stays rejected, later requests get 503 upstream_auth_failed") {
    World w;
    w.ups.add(A, Script{0, false, status_answer(401)});
    w.ups.add(B, Script{0, false, status_answer(401)});
    w.request(chat_body());
    w.run();
    REQUIRE(w.out.body.find("upstream_auth_failed") != std::string::npos);
    w.request(chat_body());
    w.run();
    CHECK(w.out.status == 503);
    CHECK(w.out.body.find("upstream_auth_failed") != std::string::npos);
}

TEST_CASE("the upstream head carries the forwarded client headers, the endpoint's headers and its key header") {
    World w(kFallbackEndpoints);
    strcpy(w.cfg->endpoints[A].api_key, "sk-endpoint-a");
    w.ups.add(A, Script{0, false, json_200("{\"text\":\"hi\"}")});
    w.request_as(form("whisper-1", "abc"), "/v1/audio/transcriptions", kMultipartType,
                 "OpenAI-Project: proj_1\r\nIdempotency-Key: k-9\r\n");
    w.run();
    REQUIRE(w.out.status == 200);
    std::string head = head_of(w.ups.last(A)->written);
    CHECK(head.find("POST /v1/audio/transcriptions HTTP/1.1\r\n") == 0);
    CHECK(has_header(head, "OpenAI-Project: proj_1"));
    CHECK(has_header(head, "Idempotency-Key: k-9"));
    CHECK(has_header(head, "X-Title: Kiosk"));
    CHECK(has_header(head, "HTTP-Referer: https://kiosk.example"));
    CHECK(has_header(head, "api-key: sk-endpoint-a"));
    CHECK(head.find("Authorization") == std::string::npos);
    CHECK(has_header(head, "Content-Type: " + kMultipartType));
    CHECK(w.out.body == "{\"text\":\"hi\"}");
}

TEST_CASE("multipart: a 503 fails over, the next attempt's form has the fallback model and the same audio") {
    World w(kFallbackEndpoints);
    std::string audio = audio_bytes();
    w.ups.add(A, Script{0, false, status_answer(503)});
    w.ups.add(B, Script{0, false, json_200("{\"text\":\"from b\"}")});
    w.request_as(form("whisper-1", audio), "/v1/audio/transcriptions", kMultipartType);
    w.run();
    REQUIRE(w.out.status == 200);
    CHECK(w.ex->attempts() == 2);
    CHECK(body_of(w.ups.last(A)->written) == form("whisper-1", audio));
    std::string sent = body_of(w.ups.last(B)->written);
    CHECK(sent == form("whisper-large", audio));
    CHECK(has_header(head_of(w.ups.last(B)->written), "Content-Length: " + std::to_string(sent.size())));
    CHECK(has_header(w.out.headers, "x-edgeway-model: whisper-large"));
}

TEST_CASE("multipart: bad forms are refused before any attempt") {
    World w(kFallbackEndpoints);
    w.request_as(form("whisper-1", "abc"), "/v1/audio/transcriptions", "application/json");
    CHECK(w.out.status == 400);
    w.request_as(form("whisper-1", "abc").substr(0, 40), "/v1/audio/translations", kMultipartType);
    CHECK(w.out.status == 400);
    w.request_as(form("whisper-1\x01", "abc"), "/v1/audio/transcriptions", kMultipartType);
    CHECK(w.out.status == 400);
    w.request_as(form("nope", "abc"), "/v1/audio/transcriptions", kMultipartType);
    CHECK(w.out.status == 404);
    CHECK(w.ups.made.empty());
}

TEST_CASE("speech: an audio answer is committed at its head and relayed byte for byte; an HTML 200 fails over") {
    World w("[endpoint.a]\nurl = http://127.0.0.1:9001/v1\nmodels = tts-1\npriority = 10\n"
            "[endpoint.b]\nurl = http://127.0.0.1:9002/v1\nmodels = tts-1\npriority = 5\n");
    std::string audio(5000, '\0');
    for (size_t i = 0; i < audio.size(); i++) audio[i] = static_cast<char>(i * 7);
    w.ups.add(A, Script{0, false, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 6\r\n\r\n<html>"});
    Script s{0, false, "HTTP/1.1 200 OK\r\nContent-Type: audio/mpeg\r\nContent-Length: 5000\r\n\r\n" + audio};
    s.max_read = 700;
    w.ups.add(B, s);
    w.request("{\"model\":\"tts-1\",\"input\":\"hello\",\"voice\":\"alloy\"}", "/v1/audio/speech");
    w.run();
    CHECK(w.out.status == 200);
    CHECK(w.out.content_type == "audio/mpeg");
    CHECK(w.out.body == audio);
    CHECK(w.out.end == AnswerEnd::complete);
    CHECK(w.ex->attempts() == 2);
    CHECK(has_header(head_of(w.ups.last(B)->written), "Accept: */*"));
}

TEST_CASE("Responses API: response.completed ends a stream; a break ends it with its own event: error") {
    auto responses = [](bool complete) {
        std::string b = "event: response.created\ndata: {\"type\":\"response.created\"}\n\n"
                        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}\n\n";
        if (complete) b += "event: response.completed\ndata: {\"type\":\"response.completed\"}\n\n";
        char size[32];
        snprintf(size, sizeof size, "%zx\r\n", b.size());
        return "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" +
               std::string(size) + b + "\r\n" + (complete ? "0\r\n\r\n" : "");
    };
    const std::string req = "{\"model\":\"test-model\",\"input\":\"hi\",\"stream\":true}";
    World ok;
    ok.ups.add(A, Script{0, false, responses(true)});
    ok.request(req, "/v1/responses");
    ok.run();
    CHECK(ok.out.status == 200);
    CHECK(ok.out.end == AnswerEnd::complete);
    CHECK(ok.out.body.find("event: error") == std::string::npos);

    World broken;
    Script s{0, false, responses(false)};
    s.reset_after = true;
    broken.ups.add(A, s);
    broken.request(req, "/v1/responses");
    broken.run();
    CHECK(broken.out.status == 200);
    CHECK(broken.out.end == AnswerEnd::unfinished);
    const std::string tail = "\n\nevent: error\ndata: {\"type\":\"error\",\"code\":\"upstream_stream_error\",\"message\":";
    CHECK(broken.out.body.find(tail) != std::string::npos);
    CHECK(broken.out.body.find("{\"error\":") == std::string::npos);  // not the chat shape

    // A chat stream's break keeps the chat shape.
    World chat;
    Script c{0, false, responses(false)};
    c.reset_after = true;
    chat.ups.add(A, c);
    chat.request(chat_body(true));
    chat.run();
    CHECK(chat.out.end == AnswerEnd::unfinished);
    CHECK(chat.out.body.find("data: {\"error\":{") != std::string::npos);
}

TEST_CASE("multipart stream=true: a transcription stream ends properly with transcript.text.done (no [DONE])") {
    World w(kFallbackEndpoints);
    std::string f = "--" + kBoundary + "\r\nContent-Disposition: form-data; name=\"stream\"\r\n\r\ntrue\r\n" +
                    form("whisper-1", "abc");
    std::string b = "data: {\"type\":\"transcript.text.delta\",\"delta\":\"hel\"}\n\n"
                    "data: {\"type\":\"transcript.text.done\",\"text\":\"hello\"}\n\n";
    char size[32];
    snprintf(size, sizeof size, "%zx\r\n", b.size());
    w.ups.add(A, Script{0, false, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" +
                                      std::string(size) + b + "\r\n0\r\n\r\n"});
    w.request_as(f, "/v1/audio/transcriptions", kMultipartType);
    w.run();
    CHECK(w.out.status == 200);
    CHECK(w.out.end == AnswerEnd::complete);
    CHECK(w.out.body == b);
    CHECK(has_header(head_of(w.ups.last(A)->written), "Accept: text/event-stream"));
}
