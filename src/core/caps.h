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
#define EW_CAP_IDLE_TLS_PER_ENDPOINT 8  // TLS ones: each holds ~37 KiB of Mbed TLS buffers
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
#ifndef EW_CAP_ERROR_TEXT
#define EW_CAP_ERROR_TEXT 160         // last error message kept per endpoint
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
