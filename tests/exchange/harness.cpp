#include "harness.h"

#include <stdexcept>

namespace ew_test {
namespace {

const char* no_env(const char*, void*) { return nullptr; }
int no_file(const char*, char*, size_t, size_t*, bool*, void*) { return 2; }

}  // namespace

World::World(const char* ini) : cfg(new Config), pool(new UpstreamPool), runtime(new EndpointRuntime[EW_CAP_ENDPOINTS]) {
    ConfigSources src{no_env, no_file, nullptr};
    ConfigDiag err;
    if (config_parse("test.ini", ini, strlen(ini), src, cfg.get(), &err, nullptr, nullptr) != ConfigStatus::ok)
        throw std::runtime_error(err.text);
    params.fall = cfg->probe.fall;
    params.rise = cfg->probe.rise;
    params.cooldown_base_ms = cfg->probe.down_interval_ms;
    params.cooldown_max_ms = cfg->probe.cooldown_max_ms;
    for (auto& h : health) health_init(&h);
    rng.seed(42);
    loop.set_backend(&clock);
    pool->init(&loop, &ups);
    names.reset(new Resolver);
    for (uint32_t i = 0; i < cfg->endpoint_count; i++) {
        names->set_host(static_cast<uint8_t>(i), "127.0.0.1", cfg->endpoints[i].port, 0);
        runtime[i].names = names.get();
    }
    ctx.cfg = cfg.get();
    ctx.health = health;
    ctx.params = &params;
    ctx.metrics = &metrics;
    ctx.pool = pool.get();
    ctx.loop = &loop;
    ctx.runtime = runtime.get();
    ctx.rng = &rng;
    ctx.names = names.get();
    ex.reset(new ProxyExchange);
}

void World::request(const std::string& b, const char* path) {
    body = b;
    out = RecordingWriter();
    RequestView v;
    v.method = "POST";
    v.path = path;
    v.path_len = strlen(path);
    v.body = body.data();
    v.body_len = body.size();
    ex->start(&ctx, &out, v, clock.now);
}

void World::request_as(const std::string& b, const char* path, const std::string& ct, const std::string& fwd) {
    body = b;
    content_type = ct;
    forward = fwd;
    out = RecordingWriter();
    RequestView v;
    v.method = "POST";
    v.path = path;
    v.path_len = strlen(path);
    v.body = body.data();
    v.body_len = body.size();
    v.content_type = content_type.c_str();
    v.content_type_len = content_type.size();
    v.forward_headers = forward.c_str();
    v.forward_len = forward.size();
    ex->start(&ctx, &out, v, clock.now);
}

int World::run(int max_turns) {
    int turns = 0;
    while (ex->active() && turns < max_turns) {
        turn();
        turns++;
    }
    return turns;
}

std::string json_200(const std::string& json, const char* extra) {
    return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + std::string(extra) +
           "Content-Length: " + std::to_string(json.size()) + "\r\n\r\n" + json;
}

std::string status_answer(int status, const char* extra) {
    std::string body = "{\"error\":{\"message\":\"upstream says " + std::to_string(status) + "\"}}";
    return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\n" + extra +
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string sse_200(const std::vector<std::string>& events, bool done) {
    std::string b;
    for (const auto& e : events) b += "data: " + e + "\n\n";
    if (done) b += "data: [DONE]\n\n";
    char size[32];
    snprintf(size, sizeof size, "%zx\r\n", b.size());
    return "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" +
           std::string(size) + b + "\r\n0\r\n\r\n";
}

std::string chat_body(bool stream, const char* model) {
    return std::string("{\"model\":\"") + model + "\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]" +
           (stream ? ",\"stream\":true}" : "}");
}

}  // namespace ew_test
