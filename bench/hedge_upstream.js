'use strict';
// Fake OpenAI upstreams for bench/hedge_bench.sh: a primary with a slow tail and a steady
// backup, in one process.
//   node bench/hedge_upstream.js PRIMARY_PORT BACKUP_PORT
// POST /v1/chat/completions ("stream": true): the 200 head at once, then the first data
// event after the server's time to first token, then EVENTS more events GAP_MS apart and
// data: [DONE]. Primary: FAST_MS (default 50) for 90 % of requests and SLOW_MS (3000) for
// SLOW_PCT % (10), drawn from a seeded generator (the same sequence after each reset);
// backup: BACKUP_MS (80) always. HEAD_LATE=1 holds the head back until the first token.
// GET /v1/models: a model list (health checks). GET /bench/stats: requests per server and
// how many were closed by the client before their first token. POST /bench/reset: counters
// to 0, the generator re-seeded. Binds 127.0.0.1 only.
const http = require('node:http');

const FAST_MS = Number(process.env.FAST_MS || 50);
const SLOW_MS = Number(process.env.SLOW_MS || 3000);
const SLOW_PCT = Number(process.env.SLOW_PCT || 10);
const BACKUP_MS = Number(process.env.BACKUP_MS || 80);
const EVENTS = Number(process.env.EVENTS || 5);
const GAP_MS = Number(process.env.GAP_MS || 10);
const HEAD_LATE = process.env.HEAD_LATE === '1';
const MODELS = JSON.stringify({ object: 'list', data: [{ id: 'bench-model', object: 'model', created: 1735689600, owned_by: 'bench' }] });

// mulberry32: a small seeded generator, so every target sees the same slow requests in turn.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const stats = { primary: { requests: 0, slow: 0, cancelled: 0 }, backup: { requests: 0, slow: 0, cancelled: 0 } };
let draw = rng(13);

function chunk(name, i, delta, finish) {
  return `data: ${JSON.stringify({ id: `chatcmpl-${name}`, object: 'chat.completion.chunk', created: 1735689600, model: 'bench-model',
    choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
}

function server(name) {
  return (req, res) => {
    if (req.method === 'GET' && req.url === '/v1/models') {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(MODELS) });
      res.end(MODELS);
      return;
    }
    if (req.url === '/bench/stats') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(stats));
      return;
    }
    if (req.method === 'POST' && req.url === '/bench/reset') {
      for (const s of Object.values(stats)) s.requests = s.slow = s.cancelled = 0;
      draw = rng(13);
      res.writeHead(204);
      res.end();
      return;
    }
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end('{"error":{"message":"not found","type":"invalid_request_error","param":null,"code":null}}');
      return;
    }
    req.resume();
    req.on('end', () => {
      const st = stats[name];
      st.requests++;
      let ttft = BACKUP_MS;
      if (name === 'primary') {
        const slow = draw() * 100 < SLOW_PCT;
        if (slow) st.slow++;
        ttft = slow ? SLOW_MS : FAST_MS;
      }
      let first = false;
      const head = () => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
        res.flushHeaders();
      };
      if (!HEAD_LATE) head();
      res.on('close', () => { if (!first) st.cancelled++; });
      setTimeout(() => {
        if (res.destroyed) return;
        if (HEAD_LATE) head();
        first = true;
        res.write(chunk(name, 0, { role: 'assistant', content: '' }, null));
        let i = 1;
        const next = () => {
          if (res.destroyed || res.writableEnded) return;
          if (i > EVENTS) { res.end(chunk(name, i, {}, 'stop') + 'data: [DONE]\n\n'); return; }
          res.write(chunk(name, i, { content: `tok${i} ` }, null));
          i++;
          setTimeout(next, GAP_MS);
        };
        setTimeout(next, GAP_MS);
      }, ttft);
    });
  };
}

const [pp, bp] = process.argv.slice(2).map(Number);
for (const [name, port] of [['primary', pp], ['backup', bp]]) {
  const s = http.createServer({ keepAliveTimeout: 120000, noDelay: true }, server(name));
  s.on('connection', (sock) => sock.setNoDelay(true));
  s.listen(port, '127.0.0.1');
}
