'use strict';
// An OpenAI-compatible fake upstream for the integration tests, HTTP or HTTPS, on
// 127.0.0.1 and an ephemeral port, whose behaviour the test changes at run time.
//
//   const up = await startUpstream({ name: 'a', tls: { key, cert }, models: ['m1'] });
//                     (tls.maxVersion, e.g. 'TLSv1.2', caps the protocol; default: TLS 1.3)
//                     (host: another loopback address than 127.0.0.1, port: a fixed port)
//   up.url            'https://localhost:PORT/v1' with tls (the host name the test
//                     certificates carry), 'http://127.0.0.1:PORT/v1' without
//   up.port, up.name
//   up.set({ mode, status, headers, delayMs, body, chunks, chunkDelayMs, match, matchModel, times, events })
//                     replaces the whole behaviour (unset fields take their defaults)
//   up.requests       [{ method, path, headers, body (string), json (parsed or undefined), at,
//                       model (json.model when a string), conn (serial number of the TCP
//                       connection it came on, 1-based), socketClosed, closedAt }]
//                     pushed once the request body is complete, before the mode acts;
//                     socketClosed turns true (closedAt = Date.now()) when the connection
//                     the request came on closes, whoever closed it
//   up.connections    TCP connections accepted (TLS: handshakes completed)
//   up.tcpConnections TCP connections accepted (also for TLS, before the handshake)
//   up.resumedSessions TLS handshakes that resumed a session
//   up.handshakes     TLS: [{ servername, resumed, protocol }], one per completed handshake
//   up.servernames    TLS: the SNI name of each full (not resumed) handshake, '' when none
//                     was sent. A resumed handshake is left out: the server side does not
//                     report the client's SNI then (OpenSSL gives '').
//   up.clearRequests()
//   up.waitForRequests(n, timeoutMs)   resolves when up.requests.length >= n
//   up.waitForClose(request, timeoutMs) resolves when that request's connection has closed
//   up.openSockets()  TCP connections open right now
//   up.dropConnections()  destroys every open connection, keeps listening
//   await up.close()  stops listening and destroys every open socket; idempotent
//
// Routes: GET /v1/models, POST /v1/chat/completions (JSON, or SSE when "stream": true),
// POST /v1/embeddings, POST /v1/responses (JSON, or its SSE events ending with
// response.completed), POST /v1/audio/transcriptions and /translations (multipart in,
// {"text"} out; entry.model is the form's model field), POST /v1/audio/speech (JSON in,
// SPEECH_BYTES out as audio/mpeg); anything else 404 with an OpenAI error body.
// Each request entry also has `raw`, the body as a Buffer (bytes exactly as received).
//
// Modes (apply to every request, or only to those whose path contains `match`, or only to
// those whose model is `matchModel`; the rest are answered as 'ok'; with `times`, only to
// the next `times` such requests,
// after which the behaviour goes back to 'ok' with the same delayMs):
//   ok                 answer normally (after delayMs, default 0)
//   slow               answer normally after delayMs (default 1000)
//   status             answer `status` (default 500) with an OpenAI error body (or `body`)
//                      and `headers`, e.g. { 'Retry-After': '2' } with 429
//   hang               read the request, never answer
//   reset              destroy the socket with a TCP RST when the request has arrived
//   garbage            write non-HTTP bytes on the socket and end it
//   stall_first_token  streaming chat: 200 + SSE headers, then nothing; other requests: ok
//   drop_mid_stream    streaming chat: 2 chunks, then the socket is destroyed; other
//                      requests: ok
//   informational      raw 1xx heads (`informational`, default [100]; 100 and 103 are
//                      written as `100 Continue` / `103 Early Hints` + a Link header) on the
//                      socket, informationalDelayMs (default 20) before the normal answer
//   no_content         204 No Content: a head, no body, the connection kept alive
//   captive_portal     200 text/html login page (what hotel Wi-Fi answers), for JSON and
//                      streaming requests alike (`body` replaces the page)
//   no_done            streaming chat: the normal events, then a cleanly framed end
//                      without `data: [DONE]`; other requests: ok
//   cut_mid_line       streaming chat: role + `chunks` events, then `data: {...` and
//                      cutLineBytes (default 20000) bytes of one line without its end,
//                      then the socket is destroyed; other requests: ok
//   many_line_first_event  streaming chat: the first event (role + content "FIRST") is one
//                      JSON object spread over `lines` (default 5000) data: lines, the
//                      rest as usual; up.lastFirstEventData is its data joined by SSE rules
//   flow               streaming chat: flowEvents (default 10000) events of flowBytes
//                      (default 4096) content each, as fast as the reader takes them (the
//                      writer waits for 'drain'), then [DONE]; up.flow = { written, done }
//   slow_sse           streaming chat: `chunks` events chunkDelayMs apart (default 300);
//                      other requests: ok after delayMs
//   refused            the listener closes (connection refused); any other mode opens it
//                      again on the same port; requests still arriving on old connections
//                      are reset
// A request whose JSON has a string "user" field gets it back as "echo" in its JSON
// answer and in every streamed chunk (to tell whose answer a client got).
// `body` (string, or an object sent as JSON) replaces the body for ok/slow/status.
// `events` (array of strings) replaces a streamed answer's events: each is sent as
// `data: STRING\n\n`, chunkDelayMs apart, then the response ends (include '[DONE]' for one).
const http = require('node:http');
const https = require('node:https');
const net = require('node:net');

// The "audio" /v1/audio/speech answers: every byte value, CR/LF pairs and NULs included.
const SPEECH_BYTES = Buffer.from(Array.from({ length: 6000 }, (_, i) => (i * 7 + (i >> 8)) & 0xff));

// The value of a text field in a multipart/form-data body (latin1 view), or undefined.
function multipartField(raw, field) {
  const text = raw.toString('latin1');
  const m = new RegExp(`name="${field}"\\r\\n(?:[^\\r]*\\r\\n)*?\\r\\n([^\\r]*)\\r\\n`).exec(text);
  return m ? m[1] : undefined;
}

const MODES = new Set(['ok', 'slow', 'status', 'hang', 'reset', 'garbage', 'stall_first_token', 'drop_mid_stream',
  'informational', 'no_content', 'captive_portal', 'no_done', 'cut_mid_line', 'many_line_first_event', 'flow', 'slow_sse',
  'refused']);
const STREAM_MODES = new Set(['stall_first_token', 'drop_mid_stream', 'no_done', 'cut_mid_line', 'many_line_first_event',
  'flow', 'slow_sse']);
const INFO_HEADS = {
  100: 'HTTP/1.1 100 Continue\r\n\r\n',
  102: 'HTTP/1.1 102 Processing\r\n\r\n',
  103: 'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n',
};
const CAPTIVE_PAGE = '<!DOCTYPE html><html><head><title>Guest Wi-Fi</title></head><body><h1>Welcome</h1>' +
  '<form action="/login" method="post"><input name="room"><button>Connect</button></form></body></html>\n';

function defaults() {
  return {
    mode: 'ok', status: 500, headers: {}, delayMs: 0, body: undefined, chunks: 3, chunkDelayMs: undefined, match: undefined,
    times: undefined, matchModel: undefined, events: undefined, informational: [100], informationalDelayMs: 20, cutLineBytes: 20000, lines: 5000,
    flowEvents: 10000, flowBytes: 4096,
  };
}

function openaiError(message, type, code) {
  return { error: { message, type, param: null, code: code === undefined ? null : code } };
}

function resetSocket(sock) {
  if (!sock || sock.destroyed) return;
  // A TLS socket's RST has to go on the TCP socket under it.
  const tcp = sock._parent && typeof sock._parent.resetAndDestroy === 'function' ? sock._parent : sock;
  try {
    if (typeof tcp.resetAndDestroy === 'function') {
      tcp.resetAndDestroy();
      if (tcp !== sock) sock.destroy();
      return;
    }
  } catch (_) { /* not a TCP handle: fall through */ }
  sock.destroy();
}

// A port on 127.0.0.1 that nothing listens on (for "connection refused").
function reservedClosedPort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function startUpstream(opts = {}) {
  const name = opts.name || 'fake';
  const models = opts.models || ['test-model'];
  let behaviour = Object.assign(defaults(), opts.behaviour || {});
  const sockets = new Set();
  const timers = new Set();
  const up = {
    name,
    models,
    requests: [],
    connections: 0,
    tcpConnections: 0,
    resumedSessions: 0,
    servernames: [],
    handshakes: [],
    url: '',
    port: 0,
    tls: !!opts.tls,
  };
  let seq = 0;
  // Serial numbers of accepted TCP connections (the TLS socket maps to its TCP one).
  const serials = new WeakMap();
  let connSeq = 0;
  function connSerial(sock) {
    if (!sock) return undefined;
    if (serials.has(sock)) return serials.get(sock);
    if (sock._parent && serials.has(sock._parent)) return serials.get(sock._parent);
    return undefined;
  }

  function later(ms, fn) {
    if (!ms) return fn();
    const t = setTimeout(() => { timers.delete(t); fn(); }, ms);
    timers.add(t);
    return undefined;
  }

  function sendJson(res, status, obj, extraHeaders) {
    const body = typeof obj === 'string' ? obj : JSON.stringify(obj);
    res.writeHead(status, Object.assign({
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(body),
      'x-fake-upstream': name,
    }, extraHeaders || {}));
    res.end(body);
  }

  function chatResponse(model, n, echo) {
    return withEcho({
      id: `chatcmpl-fake-${name}-${n}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model,
      choices: [{ index: 0, message: { role: 'assistant', content: `Hello from ${name}` }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
    }, echo);
  }

  function withEcho(obj, echo) {
    if (echo !== undefined) obj.echo = echo;
    return obj;
  }

  function chunk(model, n, delta, finish, echo) {
    return withEcho({
      id: `chatcmpl-fake-${name}-${n}`,
      object: 'chat.completion.chunk',
      created: Math.floor(Date.now() / 1000),
      model,
      choices: [{ index: 0, delta, finish_reason: finish || null }],
    }, echo);
  }

  function sseHead(res) {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache',
      'x-fake-upstream': name,
    });
    res.flushHeaders();
  }

  // Streams: role chunk, `count` content chunks, a finish chunk, [DONE].
  // With dropAfter, destroys the socket after that many events.
  function stream(res, model, n, b, dropAfter, echo, mode) {
    sseHead(res);
    const gap = b.chunkDelayMs !== undefined ? b.chunkDelayMs : (mode === 'slow_sse' ? 300 : 5);
    const alive = () => !(res.destroyed || res.socket == null || res.socket.destroyed);
    if (mode === 'flow') return flow(res, model, n, b, echo);
    if (mode === 'many_line_first_event') {
      // One event, `lines` data: lines: the JSON text, then empty lines, then its closing brace.
      const head = JSON.stringify(chunk(model, n, { role: 'assistant', content: 'FIRST' }, null, echo));
      const open = head.slice(0, -1);
      const parts = [open];
      for (let i = 0; i < b.lines - 2; i++) parts.push('');
      parts.push('}');
      up.lastFirstEventData = parts.join('\n');
      res.write(parts.map((l) => (l ? `data: ${l}\n` : 'data:\n')).join('') + '\n');
    }
    if (Array.isArray(b.events)) {
      let k = 0;
      const nextRaw = () => {
        if (res.destroyed || res.socket == null || res.socket.destroyed) return;
        if (k < b.events.length) res.write(`data: ${b.events[k++]}\n\n`, () => later(gap, nextRaw));
        else res.end();
      };
      nextRaw();
      return;
    }
    const events = mode === 'many_line_first_event' ? [] : [chunk(model, n, { role: 'assistant', content: '' }, null, echo)];
    for (let i = 0; i < b.chunks; i++) events.push(chunk(model, n, { content: `tok${i} ` }, null, echo));
    if (mode !== 'cut_mid_line') events.push(chunk(model, n, {}, 'stop', echo));
    let i = 0;
    const next = () => {
      if (!alive()) return;
      if (dropAfter !== undefined && i >= dropAfter) {
        res.socket.destroy();
        return;
      }
      if (i < events.length) {
        res.write(`data: ${JSON.stringify(events[i++])}\n\n`, () => later(gap, next));
      } else if (mode === 'cut_mid_line') {
        // A long event line, cut before its end: the bytes go out, then the connection dies.
        const line = `data: {"id":"chatcmpl-fake-${name}-${n}","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"${'x'.repeat(b.cutLineBytes)}`;
        res.write(line, () => later(50, () => { if (res.socket) res.socket.destroy(); }));
      } else if (mode === 'no_done') {
        res.end();
      } else {
        res.end('data: [DONE]\n\n');
      }
    };
    next();
  }

  // As fast as the reader takes it: waits for 'drain' whenever the socket's buffer is full.
  function flow(res, model, n, b, echo) {
    const state = { written: 0, done: false, bytes: 0 };
    up.flow = state;
    const content = 'f'.repeat(b.flowBytes);
    const pump = () => {
      while (state.written < b.flowEvents) {
        if (res.destroyed || res.socket == null || res.socket.destroyed) return;
        const ev = `data: ${JSON.stringify(chunk(model, n, { content: `${state.written}:${content}` }, null, echo))}\n\n`;
        state.written++;
        state.bytes += ev.length;
        if (!res.write(ev)) { res.once('drain', pump); return; }
      }
      if (!state.done) {
        state.done = true;
        res.end(`data: ${JSON.stringify(chunk(model, n, {}, 'stop', echo))}\n\ndata: [DONE]\n\n`);
      }
    };
    res.write(`data: ${JSON.stringify(chunk(model, n, { role: 'assistant', content: '' }, null, echo))}\n\n`);
    pump();
  }

  function answerOk(req, res, json, b, mode) {
    const n = ++seq;
    const reqModel = json && typeof json.model === 'string' ? json.model : models[0];
    const isStream = !!(json && json.stream === true);
    const echo = json && typeof json.user === 'string' ? json.user : undefined;
    const p = req.url.split('?')[0];
    if (b.body !== undefined && mode !== 'captive_portal') return sendJson(res, 200, b.body, b.headers);
    if (req.method === 'GET' && p === '/v1/models') {
      return sendJson(res, 200, {
        object: 'list',
        data: models.map((id) => ({ id, object: 'model', created: 0, owned_by: `fake-${name}` })),
      }, b.headers);
    }
    if (req.method === 'POST' && p === '/v1/chat/completions') {
      if (isStream) {
        if (mode === 'stall_first_token') { sseHead(res); return undefined; }
        if (mode === 'drop_mid_stream') return stream(res, reqModel, n, b, 2, echo, mode);
        return stream(res, reqModel, n, b, undefined, echo, mode);
      }
      return sendJson(res, 200, chatResponse(reqModel, n, echo), b.headers);
    }
    if (req.method === 'POST' && (p === '/v1/audio/transcriptions' || p === '/v1/audio/translations')) {
      return sendJson(res, 200, { text: `transcript from ${name}` }, b.headers);
    }
    if (req.method === 'POST' && p === '/v1/audio/speech') {
      res.writeHead(200, Object.assign({ 'Content-Type': 'audio/mpeg', 'x-fake-upstream': name }, b.headers || {}));
      res.write(SPEECH_BYTES.subarray(0, 2000));
      later(b.chunkDelayMs, () => res.end(SPEECH_BYTES.subarray(2000)));
      return undefined;
    }
    if (req.method === 'POST' && p === '/v1/responses') {
      const resp = { id: `resp_fake_${name}_${n}`, object: 'response', created_at: Math.floor(Date.now() / 1000), status: 'completed', model: reqModel,
        output: [{ type: 'message', id: `msg_${n}`, status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: `Hello from ${name}`, annotations: [] }] }],
        usage: { input_tokens: 5, output_tokens: 3, total_tokens: 8 } };
      if (!isStream) return sendJson(res, 200, resp, b.headers);
      sseHead(res);
      const evs = [['response.created', { type: 'response.created', sequence_number: 0, response: Object.assign({}, resp, { status: 'in_progress', output: [] }) }]];
      for (let i = 0; i < b.chunks; i++) evs.push(['response.output_text.delta', { type: 'response.output_text.delta', sequence_number: i + 1, item_id: `msg_${n}`, output_index: 0, content_index: 0, delta: `tok${i} ` }]);
      evs.push(['response.completed', { type: 'response.completed', sequence_number: b.chunks + 1, response: resp }]);
      let i = 0;
      const next = () => {
        if (res.destroyed || res.socket == null || res.socket.destroyed) return;
        if (mode === 'drop_mid_stream' && i >= 2) { res.socket.destroy(); return; }
        if (i < evs.length) { const [ev, data] = evs[i++]; res.write(`event: ${ev}\ndata: ${JSON.stringify(data)}\n\n`, () => later(b.chunkDelayMs, next)); }
        else res.end();
      };
      next();
      return undefined;
    }
    if (req.method === 'POST' && p === '/v1/embeddings') {
      return sendJson(res, 200, {
        object: 'list',
        data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2, 0.3] }],
        model: reqModel,
        usage: { prompt_tokens: 4, total_tokens: 4 },
      }, b.headers);
    }
    return sendJson(res, 404, openaiError(`fake upstream ${name}: no route ${req.method} ${p}`, 'invalid_request_error', 'not_found'));
  }

  function handle(req, res) {
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(parts);
      const body = raw.toString('utf8');
      let json;
      try { json = body ? JSON.parse(body) : undefined; } catch (_) { json = undefined; }
      const sock = req.socket;
      const multipart = /^multipart\/form-data/i.test(req.headers['content-type'] || '');
      const entry = {
        method: req.method, path: req.url, headers: req.headers, body, raw, json, at: Date.now(),
        model: json && typeof json.model === 'string' ? json.model : multipart ? multipartField(raw, 'model') : undefined,
        conn: connSerial(sock), socketClosed: !!(sock && sock.destroyed), closedAt: undefined,
      };
      if (sock && !entry.socketClosed) {
        sock.setMaxListeners(0);  // keep-alive sockets carry one listener per request
        sock.once('close', () => { entry.socketClosed = true; entry.closedAt = Date.now(); });
      } else {
        entry.closedAt = Date.now();
      }
      up.requests.push(entry);
      const b = behaviour;
      let mode = b.mode;
      if (b.match !== undefined && !req.url.includes(b.match)) mode = 'ok';
      else if (b.matchModel !== undefined && entry.model !== b.matchModel) mode = 'ok';
      else if (b.times !== undefined) {
        if (b.times > 0) b.times--;
        else mode = 'ok';
      }
      const isStream = !!(json && json.stream === true) || (multipart && multipartField(raw, 'stream') === 'true');
      const delay = mode === 'slow' ? (b.delayMs || 1000) : (b.delayMs || 0);
      if (STREAM_MODES.has(mode) && !isStream && mode !== 'stall_first_token' && mode !== 'drop_mid_stream') {
        return later(delay, () => answerOk(req, res, json, b, 'ok'));
      }
      switch (mode) {
        case 'refused':
          return resetSocket(req.socket); // the listener is closed; old connections die too
        case 'informational':
          return later(delay, () => {
            if (req.socket.destroyed) return;
            for (const code of b.informational) {
              const head = INFO_HEADS[code] || `HTTP/1.1 ${code} Informational\r\n\r\n`;
              req.socket.write(head);
            }
            later(b.informationalDelayMs, () => answerOk(req, res, json, b, 'ok'));
          });
        case 'no_content':
          return later(delay, () => {
            res.writeHead(204, Object.assign({ 'x-fake-upstream': name }, b.headers));
            res.end();
          });
        case 'captive_portal':
          return later(delay, () => {
            const page = typeof b.body === 'string' ? b.body : CAPTIVE_PAGE;
            res.writeHead(200, Object.assign({
              'Content-Type': 'text/html; charset=utf-8',
              'Content-Length': Buffer.byteLength(page),
              'Cache-Control': 'no-store',
              'x-fake-upstream': name,
            }, b.headers));
            res.end(page);
          });
        case 'hang':
          return; // the socket stays open until the client gives up or close()
        case 'reset':
          return later(delay, () => resetSocket(req.socket));
        case 'garbage':
          return later(delay, () => { if (!req.socket.destroyed) req.socket.end('HELLO garbage\r\n\r\n'); });
        case 'status':
          return later(delay, () => {
            const st = b.status || 500;
            const errBody = b.body !== undefined ? b.body
              : openaiError(`fake upstream ${name}: status ${st}`, st === 429 ? 'rate_limit_error' : st >= 500 ? 'server_error' : 'invalid_request_error', String(st));
            sendJson(res, st, errBody, b.headers);
          });
        case 'stall_first_token':
        case 'drop_mid_stream':
          if (!isStream) return later(delay, () => answerOk(req, res, json, b, 'ok'));
          return later(delay, () => answerOk(req, res, json, b, mode));
        default: // ok, slow
          return later(delay, () => answerOk(req, res, json, b, mode));
      }
    });
  }

  let server;
  if (opts.tls) {
    server = https.createServer({ key: opts.tls.key, cert: opts.tls.cert, maxVersion: opts.tls.maxVersion }, handle);
    server.on('connection', (sock) => {
      up.tcpConnections++;
      serials.set(sock, ++connSeq);
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
    });
    server.on('secureConnection', (sock) => {
      up.connections++;
      if (!serials.has(sock) && sock._parent && serials.has(sock._parent)) serials.set(sock, serials.get(sock._parent));
      const resumed = sock.isSessionReused();
      if (resumed) up.resumedSessions++;
      else up.servernames.push(sock.servername || '');
      up.handshakes.push({ servername: sock.servername || '', resumed, protocol: sock.getProtocol() });
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
    });
    server.on('tlsClientError', () => { /* counted by the client side; nothing to do */ });
  } else {
    server = http.createServer(handle);
    server.on('connection', (sock) => {
      up.tcpConnections++;
      up.connections++;
      serials.set(sock, ++connSeq);
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
    });
  }
  server.on('clientError', (err, sock) => { if (!sock.destroyed) sock.destroy(); });
  server.keepAliveTimeout = opts.keepAliveTimeoutMs || 5000;

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port || 0, opts.host || '127.0.0.1', () => { server.removeListener('error', reject); resolve(); });
  });
  up.port = server.address().port;
  up.host = opts.host || '127.0.0.1';
  up.url = opts.tls ? `https://localhost:${up.port}/v1` : `http://${up.host}:${up.port}/v1`;

  // 'refused': the listener closes; leaving that mode listens again on the same port
  // (retried while the port is briefly unavailable).
  let listening = true;
  let closed = false;
  function relisten(attempt = 0) {
    if (listening || closed || behaviour.mode === 'refused') return;
    listening = true;
    const onErr = () => {
      listening = false;
      if (attempt < 100) later(50, () => relisten(attempt + 1));
    };
    server.once('error', onErr);
    server.listen(up.port, up.host, () => server.removeListener('error', onErr));
  }
  up.set = (b = {}) => {
    const nb = Object.assign(defaults(), b);
    if (!MODES.has(nb.mode)) throw new Error(`fake upstream: unknown mode ${nb.mode}`);
    behaviour = nb;
    if (nb.mode === 'refused' && listening) {
      listening = false;
      server.close();
    } else if (nb.mode !== 'refused' && !listening) {
      relisten();
    }
  };
  up.set(behaviour);
  up.behaviour = () => Object.assign({}, behaviour);
  up.clearRequests = () => { up.requests.length = 0; };
  up.waitForRequests = (n, timeoutMs = 15000) => new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    const tick = () => {
      if (up.requests.length >= n) return resolve(up.requests);
      if (Date.now() > deadline) return reject(new Error(`fake upstream ${name}: ${up.requests.length} requests after ${timeoutMs} ms, wanted ${n}`));
      setTimeout(tick, 20);
    };
    tick();
  });

  up.waitForClose = (request, timeoutMs = 15000) => new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    const tick = () => {
      if (request.socketClosed) return resolve(request);
      if (Date.now() > deadline) return reject(new Error(`fake upstream ${name}: the connection of ${request.method} ${request.path} still open after ${timeoutMs} ms`));
      setTimeout(tick, 20);
    };
    tick();
  });
  up.openSockets = () => {
    let n = 0;
    for (const s of sockets) if (!s.destroyed && !(s._parent && sockets.has(s._parent))) n++;
    return n;
  };

  up.dropConnections = () => {
    for (const s of sockets) s.destroy();
  };

  let closing = null;
  up.close = () => {
    if (closing) return closing;
    closed = true;
    closing = new Promise((resolve) => {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      if (listening) server.close(() => resolve());
      else resolve();
      for (const s of sockets) s.destroy();
      sockets.clear();
    });
    return closing;
  };
  return up;
}

module.exports = { startUpstream, reservedClosedPort, openaiError, SPEECH_BYTES, multipartField };
