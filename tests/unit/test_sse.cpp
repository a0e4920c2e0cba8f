#include "ew_catch.h"

#include <string.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/sse.h"

using namespace ew;
using namespace std::string_literals;

namespace {

struct Ev {
    std::string data, event, id;
    bool done;
    bool operator==(const Ev& o) const { return data == o.data && event == o.event && id == o.id && done == o.done; }
};

struct Sink {
    std::vector<Ev> evs;
    std::vector<size_t> ends;  // end_offset as reported, per event
};

void collect(const SseEvent& e, void* user) {
    Sink* s = static_cast<Sink*>(user);
    s->evs.push_back(Ev{std::string(e.data, e.data_len), std::string(e.event, e.event_len),
                        std::string(e.id, e.id_len), e.is_done});
    s->ends.push_back(e.end_offset);
}

struct Run {
    std::vector<Ev> evs;
    SseStatus st = SseStatus::ok;
    bool partial = false;
    uint32_t comments = 0;
};

// Feeds `s` in chunks whose sizes come from `sizes` (cycled); 0 means the whole input.
Run feed(const std::string& s, const std::vector<size_t>& sizes) {
    std::unique_ptr<SseParser> p(new SseParser);
    sse_init(p.get());
    Sink sink;
    Run r;
    size_t i = 0, k = 0;
    while (i < s.size()) {
        size_t n = sizes.empty() || sizes[k % sizes.size()] == 0 ? s.size() - i : sizes[k % sizes.size()];
        if (n > s.size() - i) n = s.size() - i;
        k++;
        SseStatus st = sse_feed(p.get(), s.data() + i, n, collect, &sink);
        if (st != SseStatus::ok) r.st = st;
        i += n;
    }
    r.evs = sink.evs;
    r.partial = sse_has_partial(p.get());
    r.comments = p->comments;
    return r;
}

Run feed_whole(const std::string& s) { return feed(s, {}); }
Run feed_bytes(const std::string& s) { return feed(s, {1}); }
Run feed_random(const std::string& s, unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<size_t> sizes;
    for (int i = 0; i < 64; i++) sizes.push_back(1 + rng() % 23);
    return feed(s, sizes);
}

const char* kOpenAIStream =
    ": OPENROUTER PROCESSING\n\n"
    "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"
    "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\r\n\r\n"
    "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\r\r"
    "event: message\nid: 7\ndata: {\"id\":\"c1\",\"choices\":[],\n"
    "data:\"usage\":{\"prompt_tokens\":5}}\n\n"
    "retry: 3000\n"
    "data: [DONE]\n\n";

}  // namespace

TEST_CASE("sse: an OpenAI stream splits into its events", "[sse]") {
    Run r = feed_whole(kOpenAIStream);
    REQUIRE(r.st == SseStatus::ok);
    REQUIRE(r.evs.size() == 5);
    CHECK(r.evs[0].data == "{\"id\":\"c1\",\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}");
    CHECK(r.evs[1].data == "{\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}");
    CHECK(r.evs[2].data == "{\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}");
    CHECK(r.evs[3].data == "{\"id\":\"c1\",\"choices\":[],\n\"usage\":{\"prompt_tokens\":5}}");
    CHECK(r.evs[3].event == "message");
    CHECK(r.evs[3].id == "7");
    CHECK(r.evs[4].data == "[DONE]");
    CHECK(r.evs[4].done);
    CHECK(r.evs[4].event == "");
    CHECK(r.evs[4].id == "7");  // the last event ID persists
    for (size_t i = 0; i < 4; i++) CHECK_FALSE(r.evs[i].done);
    CHECK(r.comments == 1);
    CHECK_FALSE(r.partial);
}

TEST_CASE("sse: whole, byte-by-byte and random chunking give identical events", "[sse]") {
    std::string inputs[] = {
        kOpenAIStream,
        "data:a\r\n\r\ndata:b\r\rdata:c\n\ndata: d\r\n\n",
        "\xEF\xBB\xBF" "data: bom\n\n",
        "\xEF\xBB" "\ndata: half bom\n\n",
        "data\n\ndata:\n\ndata\ndata\n\n:c\r\n\r\nid: x\nevent: e\n\n",
        "data:  two spaces\nDATA: ignored\ndatax: ignored\nverylongfieldname: v\n\n",
        "id: a\0b\ndata: nul id ignored\n\nid\ndata: id cleared\n\n"s,
    };
    for (const std::string& in : inputs) {
        INFO("input: " << in);
        Run whole = feed_whole(in);
        CHECK(whole.st == SseStatus::ok);
        CHECK_FALSE(whole.evs.empty());
        CHECK(feed_bytes(in).evs == whole.evs);
        for (unsigned seed = 1; seed <= 50; seed++) CHECK(feed_random(in, seed).evs == whole.evs);
    }
}

TEST_CASE("sse: field details follow the WHATWG rules", "[sse]") {
    Run r = feed_whole(std::string("data:  two spaces\nDATA: ignored\ndatax: ignored\nverylongfieldname: v\n\n"));
    REQUIRE(r.evs.size() == 1);
    CHECK(r.evs[0].data == " two spaces");  // only one leading space is removed

    r = feed_whole("data\n\ndata:\n\ndata\ndata\n\n");
    REQUIRE(r.evs.size() == 3);
    CHECK(r.evs[0].data == "");
    CHECK(r.evs[1].data == "");
    CHECK(r.evs[2].data == "\n");

    r = feed_whole("event: only\n\nid: 9\n\ndata: x\n\n");  // no data: not dispatched, type reset
    REQUIRE(r.evs.size() == 1);
    CHECK(r.evs[0].event == "");
    CHECK(r.evs[0].id == "9");

    r = feed_whole("id: 1\n\nid: a\0b\ndata: x\n\nid\ndata: y\n\n"s);
    REQUIRE(r.evs.size() == 2);
    CHECK(r.evs[0].id == "1");  // the id with NUL was ignored
    CHECK(r.evs[1].id == "");   // "id" alone sets it empty

    r = feed_whole("data: a\rdata: b\r\r");
    REQUIRE(r.evs.size() == 1);
    CHECK(r.evs[0].data == "a\nb");

    r = feed_whole("\xEF\xBB\xBF" "data: bom\n\n");
    REQUIRE(r.evs.size() == 1);
    CHECK(r.evs[0].data == "bom");
    r = feed_whole("\xEF\xBB\xBF\xEF\xBB\xBF" "data: x\n\n");  // only one BOM is skipped
    CHECK(r.evs.empty());
    r = feed_whole("data: [DONE] \n\n");
    REQUIRE(r.evs.size() == 1);
    CHECK_FALSE(r.evs[0].done);
}

TEST_CASE("sse: retry and comments", "[sse]") {
    std::unique_ptr<SseParser> p(new SseParser);
    sse_init(p.get());
    const char* s = ": ping\nretry: 1500\nretry: 12x\n: pong\n\n";
    REQUIRE(sse_feed(p.get(), s, strlen(s), nullptr, nullptr) == SseStatus::ok);
    CHECK(p->has_retry);
    CHECK(p->retry_ms == 1500);
    CHECK(p->comments == 2);
    CHECK(p->events == 0);
}

TEST_CASE("sse: CRLF split across chunks and end offsets", "[sse]") {
    std::unique_ptr<SseParser> p(new SseParser);
    sse_init(p.get());
    Sink sink;
    std::string a = "data: one\r\n\r";
    std::string b = "\ndata: two\r\n\r\n";
    REQUIRE(sse_feed(p.get(), a.data(), a.size(), collect, &sink) == SseStatus::ok);
    REQUIRE(sink.evs.size() == 1);
    CHECK(sink.ends[0] == a.size());  // dispatched at the lone \r
    CHECK(sse_has_partial(p.get()) == false);
    REQUIRE(sse_feed(p.get(), b.data(), b.size(), collect, &sink) == SseStatus::ok);
    // The \n after the \r was a line-end continuation, not a blank line: exactly two events.
    REQUIRE(sink.evs.size() == 2);
    CHECK(sink.evs[1].data == "two");
    CHECK(sink.ends[1] == b.size());  // \r\n inside one chunk is consumed whole
    CHECK(p->events == 2);

    // Offsets point just past each event, so a relay can cut at event boundaries.
    sse_init(p.get());
    Sink s2;
    std::string c = "data: a\n\ndata: b\n\ndata: part";
    REQUIRE(sse_feed(p.get(), c.data(), c.size(), collect, &s2) == SseStatus::ok);
    REQUIRE(s2.ends.size() == 2);
    CHECK(s2.ends[0] == 9);
    CHECK(s2.ends[1] == 18);
    CHECK(sse_has_partial(p.get()));

    // With a BOM at the start, offsets still count the chunk's bytes.
    sse_init(p.get());
    Sink s3;
    std::string d = "\xEF\xBB\xBF" "data: a\n\n";
    REQUIRE(sse_feed(p.get(), d.data(), d.size(), collect, &s3) == SseStatus::ok);
    REQUIRE(s3.ends.size() == 1);
    CHECK(s3.ends[0] == d.size());
}

TEST_CASE("sse: a cut stream leaves a partial event", "[sse]") {
    CHECK(feed_whole("data: x\n").partial);
    CHECK(feed_whole("data: x").partial);
    CHECK(feed_whole("event: e\n").partial);
    CHECK(feed_whole("\xEF\xBB").partial);
    CHECK_FALSE(feed_whole("data: x\n\n").partial);
    CHECK_FALSE(feed_whole(": c\n").partial);
    CHECK(feed_whole("data: x\n").evs.empty());
}

TEST_CASE("sse: an oversize event is an error, not an overflow", "[sse]") {
    std::string big = "data: " + std::string(EW_CAP_SSE_EVENT + 1, 'x') + "\n\n";
    std::string fits = "data: " + std::string(EW_CAP_SSE_EVENT, 'y') + "\n\n";
    fits[6] = 'z';
    {
        Run r = feed_whole(fits);  // exactly the cap fits
        REQUIRE(r.st == SseStatus::ok);
        REQUIRE(r.evs.size() == 1);
        CHECK(r.evs[0].data.size() == EW_CAP_SSE_EVENT);
    }
    for (const std::vector<size_t>& sizes : {std::vector<size_t>{}, std::vector<size_t>{1}, std::vector<size_t>{7, 4096}}) {
        Run r = feed("data: ok\n\n" + big + "data: after\n\n", sizes);
        CHECK(r.st == SseStatus::too_large);
        REQUIRE(r.evs.size() == 1);  // events before the oversize one were delivered
        CHECK(r.evs[0].data == "ok");
    }
    // Many data lines whose joined size exceeds the cap.
    std::string lines;
    for (int i = 0; i < EW_CAP_SSE_EVENT / 4 + 1; i++) lines += "data: abc\n";
    CHECK(feed_whole(lines + "\n").st == SseStatus::too_large);
    // An over-long event type.
    CHECK(feed_whole("event: " + std::string(EW_CAP_SSE_EVENT_NAME + 1, 'e') + "\ndata: x\n\n").st ==
          SseStatus::too_large);
    CHECK(feed_whole("event: " + std::string(EW_CAP_SSE_EVENT_NAME, 'e') + "\ndata: x\n\n").st == SseStatus::ok);
    // Long comments and unknown fields cost no buffer.
    Run r = feed_whole(": " + std::string(4 * EW_CAP_SSE_EVENT, 'c') + "\nfoo: " + std::string(4 * EW_CAP_SSE_EVENT, 'f') +
                       "\nid: " + std::string(4 * EW_CAP_SSE_EVENT, 'i') + "\ndata: fine\n\n");
    CHECK(r.st == SseStatus::ok);
    REQUIRE(r.evs.size() == 1);
    CHECK(r.evs[0].id == "");  // the over-long id was ignored

    // The error is sticky until sse_init.
    std::unique_ptr<SseParser> p(new SseParser);
    sse_init(p.get());
    CHECK(sse_feed(p.get(), big.data(), big.size(), nullptr, nullptr) == SseStatus::too_large);
    CHECK(sse_feed(p.get(), "data: x\n\n", 9, nullptr, nullptr) == SseStatus::too_large);
    sse_init(p.get());
    CHECK(sse_feed(p.get(), "data: x\n\n", 9, nullptr, nullptr) == SseStatus::ok);
    CHECK(p->events == 1);
    CHECK(std::string(to_string(SseStatus::too_large)) == "event too large");
}

TEST_CASE("sse: sse_stop pauses after an event and keeps its data valid", "[sse]") {
    std::string chunk = "data: first\r\n\r\nevent: e2\ndata: second\n\ndata: third\n\ndata: par";
    std::unique_ptr<SseParser> p(new SseParser);
    sse_init(p.get());
    struct Held {
        SseEvent ev;
        int calls = 0;
        SseParser* parser = nullptr;
    } held;
    held.parser = p.get();
    auto stop_first = [](const SseEvent& e, void* u) {
        Held* h = static_cast<Held*>(u);
        h->calls++;
        h->ev = e;
        sse_stop(h->parser);
    };
    REQUIRE(sse_feed(p.get(), chunk.data(), chunk.size(), stop_first, &held) == SseStatus::ok);
    CHECK(held.calls == 1);
    CHECK(p->consumed == held.ev.end_offset);
    CHECK(p->consumed == 15);
    CHECK(std::string(held.ev.data, held.ev.data_len) == "first");  // still intact after return

    // Resuming with the rest of the chunk continues as if never paused.
    Sink sink;
    size_t off = p->consumed;
    REQUIRE(sse_feed(p.get(), chunk.data() + off, chunk.size() - off, collect, &sink) == SseStatus::ok);
    CHECK(p->consumed == chunk.size() - off);
    REQUIRE(sink.evs.size() == 2);
    CHECK(sink.evs[0].data == "second");
    CHECK(sink.evs[0].event == "e2");
    CHECK(sink.evs[1].data == "third");
    CHECK(sse_has_partial(p.get()));

    // Stopping at every event and resuming gives the same events as one whole feed.
    std::string s = kOpenAIStream;
    Run whole = feed_whole(s);
    sse_init(p.get());
    struct Each {
        SseParser* parser;
        std::vector<Ev> evs;
    } each{p.get(), {}};
    auto stop_each = [](const SseEvent& e, void* u) {
        Each* x = static_cast<Each*>(u);
        x->evs.push_back(Ev{std::string(e.data, e.data_len), std::string(e.event, e.event_len),
                            std::string(e.id, e.id_len), e.is_done});
        sse_stop(x->parser);
    };
    size_t i = 0;
    int feeds = 0;
    while (i < s.size() && feeds < 100) {
        REQUIRE(sse_feed(p.get(), s.data() + i, s.size() - i, stop_each, &each) == SseStatus::ok);
        i += p->consumed;
        feeds++;
    }
    CHECK(each.evs == whole.evs);
    CHECK(feeds == 5);
}
