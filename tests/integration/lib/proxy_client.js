'use strict';
// Client side helpers for the proxy tests: JSON and SSE requests through edgeway, with the
// x-edgeway-* headers at hand, and small predicates on fake upstreams.
//
//   await send(agent, body, { path, headers, httpAgent, timeoutMs, method })
//        -> { status, headers, body, json, ms, endpoint, model, attempts }
//        body: an object (sent as JSON), a string or a Buffer sent byte for byte
//   await streamChat(agent, body, { headers, timeoutMs, onEvent(ev, ctl) })
//        -> { status, headers, events: [{ data, json, at }], done, ended, error, raw, ms, ... }
//        done: a `data: [DONE]` event arrived; ended: the response ended cleanly;
//        ctl.destroy() closes the client socket at once (from onEvent)
//   chatReqs(up)        the POST .../chat/completions requests an upstream saw
//   waitProbed(agent)   every endpoint has a first probe result (so probes cannot race
//                       the first requests)
//   SLOW_PROBE          probe settings with which only the initial probe runs in a test
const http = require('node:http');

const SLOW_PROBE = Object.freeze({ interval_ms: 60000, down_interval_ms: 60000, timeout_ms: 2000, fall: 3, rise: 2 });

function chatBody(model = 'test-model', extra = {}) {
  return Object.assign({ model, messages: [{ role: 'user', content: 'hello' }] }, extra);
}

function edgewayHeaders(h) {
  const attempts = h['x-edgeway-attempts'];
  return {
    endpoint: h['x-edgeway-endpoint'],
    model: h['x-edgeway-model'],
    attempts: attempts === undefined ? undefined : Number(attempts),
  };
}

function send(agent, body, { path = '/v1/chat/completions', headers = {}, httpAgent = false, timeoutMs = 15000, method = 'POST' } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    let payload = body;
    const hdrs = Object.assign({}, headers);
    if (payload !== undefined && typeof payload !== 'string' && !Buffer.isBuffer(payload)) payload = JSON.stringify(payload);
    if (payload !== undefined) {
      if (!Object.keys(hdrs).some((k) => k.toLowerCase() === 'content-type')) hdrs['Content-Type'] = 'application/json';
      hdrs['Content-Length'] = Buffer.byteLength(payload);
    }
    const req = http.request({ host: '127.0.0.1', port: agent.port, method, path, headers: hdrs, agent: httpAgent }, (res) => {
      const parts = [];
      res.on('data', (c) => parts.push(c));
      res.on('error', (e) => reject(new Error(`${method} ${path}: response error ${e.message}`)));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch (_) { json = undefined; }
        resolve(Object.assign({ status: res.statusCode, headers: res.headers, body: text, json, ms: Date.now() - t0 },
          edgewayHeaders(res.headers)));
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path}: no complete response after ${timeoutMs} ms`)));
    req.on('error', (e) => reject(new Error(`${method} ${path} on 127.0.0.1:${agent.port}: ${e.message}`)));
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

// Splits SSE text into events (blank-line separated); returns [events, rest].
function splitEvents(text) {
  const events = [];
  let rest = text.replace(/\r\n/g, '\n');
  for (;;) {
    const i = rest.indexOf('\n\n');
    if (i < 0) break;
    const block = rest.slice(0, i);
    rest = rest.slice(i + 2);
    const data = [];
    let name;
    for (const line of block.split('\n')) {
      if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      else if (line.startsWith('event:')) name = line.slice(6).trim();
    }
    if (!data.length && name === undefined) continue; // comment-only block
    const d = data.join('\n');
    let json;
    try { json = d === '[DONE]' ? undefined : JSON.parse(d); } catch (_) { json = undefined; }
    events.push({ event: name, data: d, json });
  }
  return [events, rest];
}

function streamChat(agent, body, { headers = {}, timeoutMs = 15000, onEvent, httpAgent = false } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const payload = typeof body === 'string' ? body : JSON.stringify(body);
    const hdrs = Object.assign({ 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) }, headers);
    const out = { status: undefined, headers: {}, events: [], done: false, ended: false, error: undefined, raw: '', ms: 0, destroyed: false };
    let settled = false;
    let buf = '';
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      out.ms = Date.now() - t0;
      Object.assign(out, edgewayHeaders(out.headers));
      resolve(out);
    };
    const req = http.request({ host: '127.0.0.1', port: agent.port, method: 'POST', path: '/v1/chat/completions', headers: hdrs, agent: httpAgent }, (res) => {
      out.status = res.statusCode;
      out.headers = res.headers;
      const ctl = { destroy: () => { out.destroyed = true; res.socket && res.socket.destroy(); req.destroy(); finish(); } };
      res.setEncoding('utf8');
      res.on('data', (c) => {
        if (settled) return;
        out.raw += c;
        buf += c;
        const [evs, rest] = splitEvents(buf);
        buf = rest;
        for (const ev of evs) {
          ev.at = Date.now() - t0;
          out.events.push(ev);
          if (ev.data === '[DONE]') out.done = true;
          if (onEvent && !settled) onEvent(ev, ctl);
          if (settled) return;
        }
      });
      res.on('end', () => { out.ended = true; finish(); });
      res.on('error', (e) => { out.error = e.message; finish(); });
      res.on('close', () => { if (!out.ended && !out.error) out.error = 'closed before the end of the response'; finish(); });
    });
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      req.destroy();
      reject(new Error(`streaming request: not finished after ${timeoutMs} ms; so far ${JSON.stringify(out.events.map((e) => e.data))}`));
    }, timeoutMs);
    req.on('error', (e) => {
      if (settled) return;
      if (out.status !== undefined) { out.error = e.message; finish(); return; }
      settled = true;
      clearTimeout(timer);
      reject(new Error(`streaming request on 127.0.0.1:${agent.port}: ${e.message}`));
    });
    req.write(payload);
    req.end();
  });
}

function chatReqs(up) {
  return up.requests.filter((r) => r.method === 'POST' && r.path.split('?')[0].endsWith('/chat/completions'));
}

// Waits until every endpoint has its first probe result, so the initial probes (which run
// at start) cannot race the test's first requests or clear state they set.
function waitProbed(agent, timeoutMs = 10000) {
  return agent.waitStatus((s) => s.endpoints.every((e) => e.probes_ok + e.probes_failed >= 1),
    'a first probe result for every endpoint', timeoutMs);
}

// The OpenAI error shape: {"error":{"message","type","param","code"}}.
function assertOpenAIError(assert, r, { type, code, param } = {}) {
  const what = `${r.status} ${r.body}`;
  assert.ok(r.json && typeof r.json === 'object', `not JSON: ${what}`);
  assert.ok(r.json.error && typeof r.json.error === 'object', `no "error" object: ${what}`);
  const e = r.json.error;
  assert.equal(typeof e.message, 'string', `error.message: ${what}`);
  assert.ok(e.message.length > 0, `empty error.message: ${what}`);
  assert.equal(typeof e.type, 'string', `error.type: ${what}`);
  assert.ok('code' in e, `no error.code: ${what}`);
  assert.ok('param' in e, `no error.param: ${what}`);
  if (type !== undefined) assert.equal(e.type, type, `error.type: ${what}`);
  if (code !== undefined) assert.equal(e.code, code, `error.code: ${what}`);
  if (param !== undefined) assert.equal(e.param, param, `error.param: ${what}`);
  assert.match(String(r.headers['content-type'] || ''), /^application\/json/, `content-type: ${what}`);
}

// Per-test resources: fake upstreams and agents made through the scope are closed after
// each test (register the returned `run` with node:test's afterEach).
function testScope() {
  const { startUpstream } = require('./fake_upstream');
  const { startAgent } = require('./agent');
  const cleanups = [];
  async function run() {
    while (cleanups.length) {
      const fn = cleanups.pop();
      try { await fn(); } catch (_) { /* best effort */ }
    }
  }
  async function upstream(opts) {
    const up = await startUpstream(opts);
    cleanups.push(() => up.close());
    return up;
  }
  async function agentWith(ini) {
    const agent = await startAgent({ ini: Object.assign({ probe: SLOW_PROBE }, ini) });
    cleanups.push(() => agent.stop());
    await waitProbed(agent);
    return agent;
  }
  return { cleanups, run, upstream, agentWith };
}

module.exports = { testScope, SLOW_PROBE, chatBody, send, streamChat, splitEvents, chatReqs, waitProbed, assertOpenAIError, edgewayHeaders };
