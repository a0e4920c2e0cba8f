// Compile-time capacities of every fixed table and buffer in edgeway.
// A port shrinks them by defining the macro before this header (e.g. -DEW_CAP_CLIENTS=4).
// The INI reader rejects values above these caps, naming the key.
#pragma once

#ifndef EW_CAP_ENDPOINTS
#define EW_CAP_ENDPOINTS 8            // [endpoint.NAME] sections
#endif
#ifndef EW_CAP_MODELS_PER_ENDPOINT
#define EW_CAP_MODELS_PER_ENDPOINT 8  // entries in one endpoint's `models`
#endif
#ifndef EW_CAP_FALLBACK_RULES
#define EW_CAP_FALLBACK_RULES 16      // lines in [fallback]
#endif
#ifndef EW_CAP_FALLBACK_CHAIN
#define EW_CAP_FALLBACK_CHAIN 4       // models on the right-hand side of one rule
#endif
#ifndef EW_CAP_CONTEXT_FALLBACK_RULES
#define EW_CAP_CONTEXT_FALLBACK_RULES (EW_CAP_FALLBACK_RULES / 2)  // lines in [context_fallback] (8)
#endif
#ifndef EW_CAP_NAME
#define EW_CAP_NAME 32                // endpoint name, incl. NUL
#endif
#ifndef EW_CAP_MODEL_NAME
#define EW_CAP_MODEL_NAME 64          // model id, incl. NUL
#endif
#ifndef EW_CAP_URL
#define EW_CAP_URL 256                // endpoint url, incl. NUL
#endif
#ifndef EW_CAP_HOST
#define EW_CAP_HOST 128               // host part of a url, incl. NUL
#endif
#ifndef EW_CAP_PATH
#define EW_CAP_PATH 128               // file paths and url base paths, incl. NUL
#endif
#ifndef EW_CAP_SECRET
#define EW_CAP_SECRET 256             // an API key or the local token, incl. NUL
#endif
#ifndef EW_CAP_CLIENTS
#define EW_CAP_CLIENTS 64             // local client connections (max_clients <= this)
#endif
#ifndef EW_CAP_UPSTREAM_CONNS
#define EW_CAP_UPSTREAM_CONNS 80      // upstream connections, probes included (slots made on use)
#endif
#ifndef EW_CAP_IDLE_PER_ENDPOINT
#define EW_CAP_IDLE_PER_ENDPOINT 64   // plain-http keep-alive connections parked per endpoint
#endif
#ifndef EW_CAP_IDLE_TLS_PER_ENDPOINT
#define EW_CAP_IDLE_TLS_PER_ENDPOINT 16  // TLS ones: each holds 24-42 KiB of Mbed TLS buffers
#endif
#ifndef EW_CAP_TLS_TICKETS
#define EW_CAP_TLS_TICKETS EW_CAP_IDLE_TLS_PER_ENDPOINT  // TLS 1.3 tickets kept per endpoint, each offered once
#endif
#ifndef EW_CAP_TLS_READ_AHEAD
#define EW_CAP_TLS_READ_AHEAD 17408   // one socket read for TLS records: a full record and its header; one per process
#endif
#ifndef EW_CAP_REQUEST_BYTES
#define EW_CAP_REQUEST_BYTES 1048576  // max_request_bytes <= this
#endif
#ifndef EW_CAP_HEAD_BYTES
#define EW_CAP_HEAD_BYTES 8192        // request or response head (start line + headers)
#endif
#ifndef EW_CAP_RELAY_BYTES
#define EW_CAP_RELAY_BYTES 16384      // upstream -> client relay buffer per connection
#endif
#ifndef EW_CAP_HISTORY
#define EW_CAP_HISTORY 100            // ring of recent results per endpoint
#endif
#ifndef EW_CAP_INI_LINE
#define EW_CAP_INI_LINE 512           // one INI line
#endif
#ifndef EW_CAP_INI_BYTES
#define EW_CAP_INI_BYTES 65536        // whole INI file
#endif
#ifndef EW_CAP_DNS_SERVERS
#define EW_CAP_DNS_SERVERS 4          // entries in [agent] dns_servers
#endif
#ifndef EW_CAP_ERROR_TEXT
#define EW_CAP_ERROR_TEXT 160         // last error message kept per endpoint
#define EW_CAP_PROBE_BODY 768         // a chat probe's answer kept to read its usage (tokens)
#endif
#ifndef EW_CAP_SSE_EVENT
#define EW_CAP_SSE_EVENT 8192         // one SSE event's data (all its data: lines joined)
#endif
#ifndef EW_CAP_SSE_EVENT_NAME
#define EW_CAP_SSE_EVENT_NAME 64      // an SSE `event:` type and `id:` value
#endif
#ifndef EW_CAP_JSON_DEPTH
#define EW_CAP_JSON_DEPTH 64          // nesting depth accepted by the JSON validator
#endif

// ---- connection buffers (per client / per upstream connection) -----------------------------
#ifndef EW_CAP_CLIENT_IN
#define EW_CAP_CLIENT_IN 4096         // request bytes read ahead per client (head + body pieces)
#endif
#ifndef EW_CAP_CLIENT_OUT
#define EW_CAP_CLIENT_OUT 32768       // answer bytes waiting for the client (head + body chunks)
#endif
#ifndef EW_CAP_CLIENT_HEAD
#define EW_CAP_CLIENT_HEAD 2048       // one response head edgeway writes to a client
#endif
#ifndef EW_CAP_STREAM_ERROR_RESERVE
#define EW_CAP_STREAM_ERROR_RESERVE 640  // client buffer kept free for a stream's error event
#endif
#ifndef EW_CAP_PASSTHROUGH
#define EW_CAP_PASSTHROUGH 768        // upstream headers relayed to the client (x-request-id, ...)
#endif
#ifndef EW_CAP_FORWARD_HEADERS
#define EW_CAP_FORWARD_HEADERS 512    // client headers forwarded upstream (OpenAI-Project, ...)
#endif
#ifndef EW_CAP_ENDPOINT_HEADERS
#define EW_CAP_ENDPOINT_HEADERS 384   // an endpoint's fixed `headers =`, as written upstream
#endif
#ifndef EW_CAP_CORS_ORIGINS
#define EW_CAP_CORS_ORIGINS 8         // entries in `cors_origins`
#endif
#ifndef EW_CAP_ORIGIN
#define EW_CAP_ORIGIN 128             // one origin, incl. NUL
#endif
#ifndef EW_CAP_UPSTREAM_HEAD
#define EW_CAP_UPSTREAM_HEAD 2560     // request head sent upstream (path + key included)
#endif
#ifndef EW_CAP_ERROR_BODY
#define EW_CAP_ERROR_BODY 2048        // an upstream 400/404/429 JSON body read for its meaning (x2 per exchange)
#endif
#ifndef EW_CAP_UPSTREAM_RX
#define EW_CAP_UPSTREAM_RX 4096       // raw bytes read from an upstream per step
#endif
#ifndef EW_CAP_UPSTREAM_WRITE
#define EW_CAP_UPSTREAM_WRITE 16384   // one gathered upstream write (one TLS record); shared scratch
#endif
#ifndef EW_CAP_RENDER
#define EW_CAP_RENDER 65536           // /status, /metrics, / : one buffer, sent from as the client reads
#endif
#ifndef EW_CAP_STATUS_MINUTES
#define EW_CAP_STATUS_MINUTES 60      // minutes of request/failover counts the status page charts
#endif
#ifndef EW_CAP_HISTOGRAM_PAIRS
#define EW_CAP_HISTOGRAM_PAIRS (2 * EW_CAP_ENDPOINTS)  // (endpoint, served model) pairs with histograms
#endif
#ifndef EW_HISTOGRAM_BUCKET_BITS
#define EW_HISTOGRAM_BUCKET_BITS 64   // one latency-histogram bucket's counter; 32 halves them (wraps at 2^32 answers)
#endif
#ifndef EW_CAP_REQUEST_ID
#define EW_CAP_REQUEST_ID 65          // a request id (client's X-Request-Id or made here), incl. NUL
#endif
#ifndef EW_CAP_REQUEST_SERIES
#define EW_CAP_REQUEST_SERIES 96      // (endpoint, served model, requested model, status) counters kept apart
#endif
// ---- parts a bare-metal device profile may leave out ---------------------------------------
// Each is 1 (on) for the Linux and lwIP host builds; the Cortex-M small caps
// (scripts/cortex-m-common.sh) set them to 0, where the part makes no sense or costs too much flash.
#ifndef EW_STATUS_PAGE
// 1: GET / is the full HTML status page (core/status_page.cpp, about 6 KB of Cortex-M flash).
// 0: a few lines of HTML with the verdict and links to /status (JSON) and /metrics.
#define EW_STATUS_PAGE 1
#endif
#ifndef EW_RECOVERY_TEXT
// 1: /status explains recovery (why an endpoint is out, what brings it back) in sentences
// (core/health_recovery.cpp). 0: short codes ("down chat 3 traffic", "trial in 4 s");
// the structured fields next to them are the same.
#define EW_RECOVERY_TEXT 1
#endif
#ifndef EW_ERRNO_TEXT
// 1: file errors in config messages are worded by strerror() (newlib's table is about 2.8 KB
// of flash). 0: the few a key file meets are worded the same, any other is "error N".
#define EW_ERRNO_TEXT 1
#endif

#ifndef EW_STATE_FILE
// 1: the state file's format and checks (core/health_state.cpp, about 4.6 KB of Cortex-M
// flash). 0 builds a stub that refuses every file with one warning ("this build has no
// state file"): for a board without a file system (the Cortex-M small caps set it).
#define EW_STATE_FILE 1
#endif
#ifndef EW_CAP_STATE_BYTES
// The state file ([agent] state_file, core/health_state.h): a header, one line per endpoint
// (its name and up to ~200 bytes of fields, room left for fields added later), one per
// rate-limited model, the checksum line. Read and written through one buffer of this size.
#define EW_CAP_STATE_BYTES (64 + EW_CAP_ENDPOINTS * (EW_CAP_NAME + 224) + \
                            EW_CAP_ENDPOINTS * EW_CAP_MODELS_PER_ENDPOINT * (EW_CAP_MODEL_NAME + 32) + 16)
#endif

// ---- hedged first tokens (core/hedge.h) ---------------------------------------------------------
// Exchanges running a second (hedge) attempt at once, agent-wide: what the connection table
// has left after one attempt per client and a probe per endpoint, at most 8 and at most one
// per client (0 = hedging never starts; the keys are still read).
#define EW_CAP_SPARE_CONNS_ \
    (EW_CAP_UPSTREAM_CONNS > EW_CAP_CLIENTS + EW_CAP_ENDPOINTS ? EW_CAP_UPSTREAM_CONNS - EW_CAP_CLIENTS - EW_CAP_ENDPOINTS : 0)
#ifndef EW_CAP_HEDGES
#define EW_CAP_HEDGES \
    (EW_CAP_SPARE_CONNS_ < 8 ? (EW_CAP_SPARE_CONNS_ < EW_CAP_CLIENTS ? EW_CAP_SPARE_CONNS_ : EW_CAP_CLIENTS) \
                             : (8 < EW_CAP_CLIENTS ? 8 : EW_CAP_CLIENTS))
#endif
#ifndef EW_CAP_HEDGE_SAMPLES
#define EW_CAP_HEDGE_SAMPLES 64       // recent first-token / head times kept per endpoint for `auto`
#endif
#ifndef EW_HEDGE_AUTO_MIN_MS
#define EW_HEDGE_AUTO_MIN_MS 50       // `auto` never hedges sooner (a hedge this early buys little)
#endif
#ifndef EW_HEDGE_AUTO_MAX_MS
#define EW_HEDGE_AUTO_MAX_MS 10000    // nor later
#endif
#ifndef EW_HEDGE_AUTO_MEDIAN_PCT
#define EW_HEDGE_AUTO_MEDIAN_PCT 150  // nor sooner than this share of the median: jitter is not a slow tail
#endif
#ifndef EW_HEDGE_AUTO_MIN_SAMPLES
#define EW_HEDGE_AUTO_MIN_SAMPLES 8   // fewer recent samples than this: the fallback below
#endif
#ifndef EW_HEDGE_AUTO_FALLBACK_MS
#define EW_HEDGE_AUTO_FALLBACK_MS 1000  // `auto` for an endpoint with no recent samples yet
#endif
#ifndef EW_HEDGE_BUDGET_BURST
#define EW_HEDGE_BUDGET_BURST 10      // hedges the budget may save up (and starts with)
#endif

// ---- the loop ----------------------------------------------------------------------------------
// Every owner that can be registered at once: each client and its exchange, each upstream
// connection, each probe, the listener, the resolver's timer and its socket watches.
#ifndef EW_CAP_RESOLVER_POLLABLES
#define EW_CAP_RESOLVER_POLLABLES 5   // 1 + EW_PAL_DNS_SOCKETS (platform/pal.h; checked in net/resolver.h)
#endif
#ifndef EW_CAP_POLLABLES
#define EW_CAP_POLLABLES (2 * EW_CAP_CLIENTS + EW_CAP_UPSTREAM_CONNS + EW_CAP_ENDPOINTS + 1 + EW_CAP_RESOLVER_POLLABLES + 1)  // + telemetry
#endif
#ifndef EW_PAL_EPOLL_FDS
#define EW_PAL_EPOLL_FDS 1024         // Linux epoll back-end: descriptor numbers it tracks (higher: poll(2) that call)
#endif
#ifndef EW_PAL_MAX_POLL
#define EW_PAL_MAX_POLL 256           // sockets one pal::poll() call takes (the port's table)
#endif

// ---- how the capacities fit together -------------------------------------------------------------
#ifdef __cplusplus
static_assert(EW_CAP_POLLABLES <= EW_PAL_MAX_POLL,
              "more pollables than the port's poll table: pal::poll would fail and the loop stall");
static_assert(EW_CAP_UPSTREAM_CONNS > EW_CAP_ENDPOINTS, "each endpoint's probe needs a connection, traffic more");
static_assert(EW_CAP_HEDGES == 0 || EW_CAP_UPSTREAM_CONNS >= EW_CAP_CLIENTS + EW_CAP_HEDGES + EW_CAP_ENDPOINTS,
              "every client's attempt, every hedge in flight (a client's second attempt) and each endpoint's probe "
              "must find a connection slot");
static_assert(EW_CAP_HEDGES <= EW_CAP_CLIENTS, "a hedge is a client's second attempt: no more hedges than clients");
static_assert(EW_HEDGE_AUTO_MIN_MS <= EW_HEDGE_AUTO_MAX_MS && EW_HEDGE_AUTO_MAX_MS <= 65535,
              "auto hedge bounds: min <= max, and samples are kept as 16-bit milliseconds");
static_assert(EW_HEDGE_AUTO_MIN_SAMPLES >= 1 && EW_HEDGE_AUTO_MIN_SAMPLES <= EW_CAP_HEDGE_SAMPLES &&
                  EW_CAP_HEDGE_SAMPLES <= 65535,
              "auto hedge needs at least one sample and no more than the ring holds");
static_assert(EW_CAP_UPSTREAM_HEAD >= 256 + 512 + EW_CAP_PATH + EW_CAP_HOST + EW_CAP_SECRET +
                                        EW_CAP_FORWARD_HEADERS + EW_CAP_ENDPOINT_HEADERS + 160,
              "the upstream head must hold the fixed headers, a local path, base path, host, key, the forwarded "
              "and the endpoint's headers and a multipart content type");
static_assert(EW_CAP_CLIENT_HEAD >= 512 + EW_CAP_PASSTHROUGH + 3 * EW_CAP_MODEL_NAME + 256 + EW_CAP_ORIGIN,
              "a client head holds the status line, edgeway's headers and the relayed ones");
static_assert(EW_CAP_STREAM_ERROR_RESERVE >= EW_CAP_ERROR_TEXT + 2 * EW_CAP_NAME + 256,
              "the error event (message, endpoint name, framing) must fit the reserve");
static_assert(EW_CAP_CLIENT_OUT >= EW_CAP_CLIENT_HEAD + 2 * EW_CAP_UPSTREAM_RX + EW_CAP_STREAM_ERROR_RESERVE,
              "a client buffer holds a head, one relayed read with framing, and the error reserve");
static_assert(EW_CAP_RENDER >= 16384, "the status page and /metrics of a small configuration need 16 KiB");
static_assert(EW_CAP_SSE_EVENT <=
                  EW_CAP_CLIENT_OUT - EW_CAP_CLIENT_HEAD - EW_CAP_STREAM_ERROR_RESERVE - 2 * EW_CAP_UPSTREAM_RX,
              "a first SSE event is staged in the client buffer before commit, one read of room kept");
static_assert(EW_CAP_HEAD_BYTES <= EW_CAP_REQUEST_BYTES, "a head limit above the body cap makes no sense");
#endif

// ---- fleet telemetry over MQTT ([telemetry]) -----------------------------------------------
#ifndef EW_CAP_TELEMETRY
#define EW_CAP_TELEMETRY 1            // 0: a build without [telemetry] (refused by the reader; no RAM for it)
#endif
#ifndef EW_CAP_TELEMETRY_QUEUE
#define EW_CAP_TELEMETRY_QUEUE 64     // messages held while the broker is away (queue_max <= this)
#endif
#ifndef EW_CAP_MQTT_INFLIGHT
#define EW_CAP_MQTT_INFLIGHT 8        // QoS 1 publishes sent and not yet acknowledged
#endif
#ifndef EW_CAP_MQTT_TOPIC
#define EW_CAP_MQTT_TOPIC 160         // one topic, incl. NUL (prefix/device/endpoints/NAME)
#endif
#ifndef EW_CAP_MQTT_PAYLOAD
#define EW_CAP_MQTT_PAYLOAD 1024      // one JSON document
#endif
#ifndef EW_CAP_MQTT_RX
#define EW_CAP_MQTT_RX 64             // bytes read from the broker: it only ever sends tiny acks
#endif
#ifndef EW_CAP_MQTT_PREFIX
#define EW_CAP_MQTT_PREFIX 48         // topic_prefix, incl. NUL
#endif
#ifndef EW_CAP_DEVICE_ID
#define EW_CAP_DEVICE_ID 64           // device_id (the MQTT client id too), incl. NUL
#endif
#ifndef EW_CAP_MQTT_USER
#define EW_CAP_MQTT_USER 64           // username, incl. NUL
#endif
// One outgoing packet: CONNECT (ids, will, credentials) or PUBLISH (topic + document).
#define EW_CAP_MQTT_PACKET (EW_CAP_MQTT_TOPIC + EW_CAP_MQTT_PAYLOAD + EW_CAP_MQTT_USER + EW_CAP_SECRET + EW_CAP_DEVICE_ID + 32)
