// libFuzzer entry: config_parse() on arbitrary bytes, with fixed fake secret sources
// (nothing from the real environment or disk). Besides the sanitizers' checks it aborts
// when an invariant of the result breaks or a fake secret shows up in a message.
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"

namespace {

const char kEnvSecret[] = "ENVSECRETa9Zq";
const char kFileSecret[] = "FILESECRETb8Yp";

const uint8_t* g_input = nullptr;
size_t g_input_len = 0;

const char* fake_getenv(const char* name, void*) {
    static char longest[EW_CAP_SECRET + 8];
    if (strcmp(name, "PRIMARY_API_KEY") == 0 || strcmp(name, "BACKUP_API_KEY") == 0) return kEnvSecret;
    if (strcmp(name, "EMPTY_KEY") == 0) return "";
    if (strcmp(name, "LONG_KEY") == 0) {
        memset(longest, 'k', sizeof longest - 1);
        longest[sizeof longest - 1] = '\0';
        return longest;
    }
    return nullptr;
}

int fake_read_file(const char* path, char* buf, size_t cap, size_t* len, bool* private_ok, void*) {
    *len = 0;
    *private_ok = true;
    const char* content = nullptr;
    if (strcmp(path, "/keys/primary.key") == 0 || strcmp(path, "/keys/token") == 0) content = "FILESECRETb8Yp\n";
    if (strcmp(path, "/keys/shared.key") == 0) {
        content = "FILESECRETb8Yp\n";
        *private_ok = false;
    }
    if (strcmp(path, "/keys/empty.key") == 0) content = "\n";
    if (strcmp(path, "/keys/full.key") == 0) {  // fills the whole buffer
        memset(buf, 'k', cap);
        *len = cap;
        return 0;
    }
    if (!content) return ENOENT;
    size_t n = strlen(content);
    if (n > cap) return EFBIG;
    memcpy(buf, content, n);
    *len = n;
    return 0;
}

bool input_has(const char* s) { return memmem(g_input, g_input_len, s, strlen(s)) != nullptr; }

// A message may show a secret only if the input itself spelled it out.
void check_message(const char* text, size_t cap) {
    if (!memchr(text, '\0', cap)) abort();
    if (strstr(text, kEnvSecret) && !input_has(kEnvSecret)) abort();
    if (strstr(text, kFileSecret) && !input_has(kFileSecret)) abort();
}

void on_warning(const char* line, void*) { check_message(line, sizeof(ew::ConfigDiag::text)); }

template <size_t N>
void check_terminated(const char (&s)[N]) {
    if (!memchr(s, '\0', N)) abort();
}

void check_config(const ew::Config& c) {
    if (c.endpoint_count < 1 || c.endpoint_count > EW_CAP_ENDPOINTS) abort();
    if (c.fallback_count > EW_CAP_FALLBACK_RULES) abort();
    check_terminated(c.agent.listen_host);
    check_terminated(c.agent.local_token);
    for (uint32_t i = 0; i < c.endpoint_count; i++) {
        const ew::EndpointConfig& e = c.endpoints[i];
        check_terminated(e.name);
        check_terminated(e.url);
        check_terminated(e.host);
        check_terminated(e.base_path);
        check_terminated(e.api_key);
        check_terminated(e.ca_file);
        if (e.model_count < 1 || e.model_count > EW_CAP_MODELS_PER_ENDPOINT) abort();
        if (e.host[0] == '\0' || e.port == 0) abort();
        if (c.endpoint_index(e.name) != static_cast<int>(i)) abort();
        for (uint32_t m = 0; m < e.model_count; m++) check_terminated(e.models[m]);
    }
    for (uint32_t i = 0; i < c.fallback_count; i++) {
        const ew::FallbackRule& r = c.fallback[i];
        if (r.next_count < 1 || r.next_count > EW_CAP_FALLBACK_CHAIN) abort();
        if (c.fallback_for(r.model) != &r) abort();
        for (uint32_t j = 0; j < r.next_count; j++) {
            bool served = false;
            for (uint32_t k = 0; k < c.endpoint_count; k++) served = served || c.endpoints[k].serves(r.next[j]);
            if (!served) abort();
        }
    }
}

ew::Config g_config;  // ~20 KB: kept off the stack

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    g_input = data;
    g_input_len = size;
    ew::ConfigSources src{fake_getenv, fake_read_file, nullptr};
    ew::ConfigDiag err;
    ew::ConfigStatus st = ew::config_parse("fuzz.ini", reinterpret_cast<const char*>(data), size, src, &g_config,
                                           &err, on_warning, nullptr);
    check_message(err.text, sizeof err.text);
    if (st == ew::ConfigStatus::ok) {
        if (err.text[0]) abort();
        check_config(g_config);
    } else if (!err.text[0] || g_config.endpoint_count != 0) {
        abort();
    }
    return 0;
}
