// A world for one ProxyExchange with no sockets and no real time: a manual clock whose
// wait jumps to the nearest deadline, scripted in-memory upstream transports, and a client
// writer that records what the client would receive. The real UpstreamConn, ResponseParser,
// SSE splitter, health, router and metrics run on top of it.
#pragma once
#include <string.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/health.h"
#include "core/metrics.h"
#include "core/rng.h"
#include "net/client_writer.h"
#include "net/context.h"
#include "net/loop.h"
#include "net/proxy.h"
#include "net/resolver.h"
#include "net/upstream.h"

namespace ew_test {

using namespace ew;

class ManualClock final : public LoopBackend {
public:
    uint64_t now = 1000000;
    uint64_t now_ms() override { return now; }
    int wait(pal::PollItem*, size_t, int timeout_ms) override {
        if (timeout_ms > 0) now += static_cast<uint64_t>(timeout_ms);
        return 0;
    }
};

// One upstream connection's behaviour, scripted by the test.
struct Script {
    int connect_error = 0;        // errno-style: the connect fails
    bool connect_hangs = false;   // the connect never completes
    std::string answer;           // bytes the upstream sends once the request has arrived
    size_t max_read = 0;          // deliver at most this many bytes per read (0 = all)
    bool close_after = false;     // then EOF
    bool reset_after = false;     // then a reset
    bool send_fails = false;      // writing the request fails (e.g. a stale connection)
};

class FakeTransport final : public Transport {
public:
    explicit FakeTransport(Script s) : script(std::move(s)) {}
    TransportStep start(const pal::Addr&, const char*, TlsClientConfig*) override {
        started = true;
        if (script.connect_error) return TransportStep::error;
        return TransportStep::in_progress;
    }
    TransportStep advance() override {
        if (script.connect_hangs) return TransportStep::in_progress;
        connected = true;
        return TransportStep::done;
    }
    pal::IoResult send(const char* p, size_t n) override {
        if (script.send_fails || closed) return pal::IoResult{pal::Io::error, 0, 104};
        written.append(p, n);
        requests++;
        return pal::IoResult{pal::Io::ok, n, 0};
    }
    pal::IoResult recv(char* p, size_t n) override {
        if (pos < script.answer.size()) {
            size_t take = script.answer.size() - pos;
            if (script.max_read && take > script.max_read) take = script.max_read;
            if (take > n) take = n;
            memcpy(p, script.answer.data() + pos, take);
            pos += take;
            return pal::IoResult{pal::Io::ok, take, 0};
        }
        if (script.reset_after) return pal::IoResult{pal::Io::error, 0, 104};
        if (script.close_after) return pal::IoResult{pal::Io::closed, 0, 0};
        return pal::IoResult{pal::Io::would_block, 0, 0};
    }
    bool pending() const override {
        if (closed) return false;
        if (!connected) return !script.connect_hangs;
        if (written.empty()) return false;  // the upstream answers once asked
        return pos < script.answer.size() || script.reset_after || script.close_after;
    }
    bool wants_write() const override { return false; }
    pal::Socket socket() const override { return pal::kNoSocket; }
    bool idle_usable() override { return !server_closed_idle; }
    void close() override { closed = true; }
    const char* error_text() const override { return script.connect_error ? "connect: refused" : ""; }
    bool is_tls() const override { return false; }
    size_t write_chunk() const override { return 16384; }
    // The next request on a kept connection gets a new answer.
    void next_answer(const std::string& a) {
        script.answer = a;
        pos = 0;
        written.clear();
    }

    Script script;
    bool started = false;
    bool connected = false;
    bool closed = false;
    bool server_closed_idle = false;
    std::string written;
    size_t pos = 0;
    int requests = 0;
};

// Hands out scripted transports per endpoint, in order; an unscripted connect is refused.
class FakeUpstreams final : public TransportSource {
public:
    Transport* transport_for(const UpstreamConn& c, const EndpointConfig&) override {
        auto& q = queued[c.endpoint()];
        Script s;
        if (q.empty()) {
            s.connect_error = 111;
        } else {
            s = q.front();
            q.pop_front();
        }
        made.push_back(std::make_unique<FakeTransport>(s));
        made_for.push_back(c.endpoint());
        return made.back().get();
    }
    void add(uint8_t endpoint, Script s) { queued[endpoint].push_back(std::move(s)); }
    size_t opened(uint8_t endpoint) const {
        size_t n = 0;
        for (uint8_t e : made_for) n += e == endpoint;
        return n;
    }
    FakeTransport* last(uint8_t endpoint) {
        for (size_t i = made.size(); i-- > 0;)
            if (made_for[i] == endpoint) return made[i].get();
        return nullptr;
    }
    std::deque<Script> queued[EW_CAP_ENDPOINTS];
    std::vector<std::unique_ptr<FakeTransport>> made;
    std::vector<uint8_t> made_for;
};

// What the client would receive.
class RecordingWriter final : public ClientWriter {
public:
    void respond(uint16_t s, const char* ct, const char* body, size_t len, const char* hdrs) override {
        status = s;
        content_type = ct;
        headers = hdrs;
        this->body.assign(body, len);
    }
    void respond_bodiless(uint16_t s, const char* hdrs) override {
        status = s;
        headers = hdrs;
        bodiless = true;
    }
    bool stage(const char* d, size_t n) override {
        if (staged.size() + n > stage_cap) return false;
        staged.append(d, n);
        return true;
    }
    void drop_staged() override { staged.clear(); }
    bool begin_chunked(uint16_t s, const char* ct, const char* hdrs) override {
        status = s;
        content_type = ct;
        headers = hdrs;
        chunked = true;
        body += staged;
        staged.clear();
        return true;
    }
    bool write_chunk(const char* d, size_t n, bool) override {
        body.append(d, n);
        return true;
    }
    size_t chunk_room() const override { return room; }
    void flush() override { flushes++; }
    void end_answer(AnswerEnd how, bool) override {
        ended = true;
        end = how;
    }

    uint16_t status = 0;
    std::string content_type, headers, body, staged;
    bool chunked = false, bodiless = false, ended = false;
    AnswerEnd end = AnswerEnd::complete;
    size_t stage_cap = EW_CAP_CLIENT_OUT - EW_CAP_CLIENT_HEAD - EW_CAP_STREAM_ERROR_RESERVE - 2 * EW_CAP_UPSTREAM_RX;  // as ClientConn
    size_t room = 1 << 20;
    int flushes = 0;
};

// Two endpoints ("a" priority 10, "b" priority 5) serving test-model, plain http.
const char* const kTwoEndpoints =
    "[agent]\nmax_attempts = 4\nretry_backoff_ms = 200\nretry_backoff_max_ms = 2000\n"
    "request_timeout_ms = 60000\nfirst_token_timeout_ms = 15000\n"
    "[probe]\nfall = 3\nrise = 2\n"
    "[endpoint.a]\nurl = http://127.0.0.1:9001/v1\nmodels = test-model\npriority = 10\ntimeout_ms = 30000\n"
    "[endpoint.b]\nurl = http://127.0.0.1:9002/v1\nmodels = test-model\npriority = 5\ntimeout_ms = 30000\n";

struct World {
    explicit World(const char* ini = kTwoEndpoints);
    // Starts a request; `body` defaults to a JSON chat request.
    void request(const std::string& body, const char* path = "/v1/chat/completions");
    // The same with the request's Content-Type and forwarded headers ("Name: value\r\n"...).
    void request_as(const std::string& body, const char* path, const std::string& content_type,
                    const std::string& forward = "");
    // Runs the loop until the exchange is over (or `max_turns`); returns the turns taken.
    int run(int max_turns = 1000);
    void turn() { loop.run_once(60000); }
    bool ok(std::string* why) const;

    std::unique_ptr<Config> cfg;
    HealthParams params;
    Health health[EW_CAP_ENDPOINTS];
    Metrics metrics;
    Rng rng;
    ManualClock clock;
    Loop loop;
    std::unique_ptr<UpstreamPool> pool;
    std::unique_ptr<EndpointRuntime[]> runtime;
    std::unique_ptr<Resolver> names;  // numeric hosts only: never opened, never asks DNS
    FakeUpstreams ups;
    NetContext ctx;
    RecordingWriter out;
    std::unique_ptr<ProxyExchange> ex;
    std::string body, content_type, forward;
};

// HTTP answers.
std::string json_200(const std::string& json = "{\"id\":\"x\",\"choices\":[]}", const char* extra = "");
std::string status_answer(int status, const char* extra = "");
std::string sse_200(const std::vector<std::string>& events, bool done = true);
std::string chat_body(bool stream = false, const char* model = "test-model");

}  // namespace ew_test
