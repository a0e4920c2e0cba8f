'use strict';
// Fake OpenAI upstream for the SSE part of bench/proxy_bench.sh.
//   node bench/sse_upstream.js PORT [PORT...]
// GET /v1/models: a model list. POST /v1/chat/completions with "stream": true: SSE_EVENTS
// chunk events (default 50), SSE_GAP_MS apart (default 20), then data: [DONE]. Each event
// carries "bench_t_ns": the CLOCK_MONOTONIC time (process.hrtime, the same clock in every
// process on the machine) at which it was handed to the socket, so a client can measure
// how long each chunk took to reach it, directly or through a proxy.
// Without "stream": a fixed JSON chat completion. Binds 127.0.0.1 only.
const http = require('node:http');

const EVENTS = Number(process.env.SSE_EVENTS || 50);
const GAP_MS = Number(process.env.SSE_GAP_MS || 20);
const MODELS = JSON.stringify({ object: 'list', data: [{ id: 'bench-model', object: 'model', created: 1735689600, owned_by: 'bench' }] });

function chat(model) {
  return JSON.stringify({
    id: 'chatcmpl-bench', object: 'chat.completion', created: 1735689600, model,
    choices: [{ index: 0, message: { role: 'assistant', content: 'Hello!' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 12, completion_tokens: 2, total_tokens: 14 },
  });
}

function handler(req, res) {
  if (req.method === 'GET' && req.url === '/v1/models') {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(MODELS) });
    res.end(MODELS);
    return;
  }
  if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end('{"error":{"message":"not found","type":"invalid_request_error","param":null,"code":null}}');
    return;
  }
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    let j;
    try { j = JSON.parse(body); } catch (_) {
      res.writeHead(400, { 'Content-Type': 'application/json' });
      res.end('{"error":{"message":"bad json","type":"invalid_request_error","param":null,"code":null}}');
      return;
    }
    const model = String(j.model || 'bench-model');
    if (!j.stream) {
      const b = chat(model);
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(b) });
      res.end(b);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    res.flushHeaders();
    let i = 0;
    const send = () => {
      if (res.destroyed || res.writableEnded) return;
      if (i === EVENTS) { res.end('data: [DONE]\n\n'); return; }
      const t = process.hrtime.bigint();
      res.write(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1735689600,"model":${JSON.stringify(model)},` +
        `"choices":[{"index":0,"delta":{"content":"tok${i} "},"finish_reason":null}],"bench_seq":${i},"bench_t_ns":"${t}"}\n\n`);
      i++;
      setTimeout(send, GAP_MS);
    };
    send();
  });
}

for (const p of process.argv.slice(2).map(Number)) {
  const s = http.createServer({ keepAliveTimeout: 120000, noDelay: true }, handler);
  s.on('connection', (sock) => sock.setNoDelay(true));
  s.listen(p, '127.0.0.1');
}
