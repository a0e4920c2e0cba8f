'use strict';
// Browser UIs and HTTP conformance (issue 10, points 1 and 6): CORS for the origins in
// cors_origins (preflight, Private Network Access, allow-origin on answers, errors and
// streams, Vary), a refused origin (403 without CORS headers, counted), HEAD on the admin
// paths, GET /v1/models/{id}, and HTTP/1.0 clients (never a chunked answer).
const { describe, it, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { parseMetrics, metricValue } = require('./lib/agent');
const { testScope, chatBody, send } = require('./lib/proxy_client');

const { run: runCleanups, upstream, agentWith } = testScope();
afterEach(runCleanups);

const KIOSK = 'https://kiosk.local';
const DEV = 'http://localhost:3000';

async function corsAgent(agentKeys = {}) {
  const up = await upstream({ name: 'primary' });
  const agent = await agentWith({
    agent: Object.assign({ cors_origins: [KIOSK, DEV] }, agentKeys),
    endpoints: [{ name: 'primary', url: up.url }],
  });
  return { agent, up };
}

// One request on its own connection, read until the server closes it.
function rawUntilClose(port, bytes, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    const parts = [];
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`no close after ${timeoutMs} ms: ${Buffer.concat(parts).toString('latin1')}`)); }, timeoutMs);
    sock.on('connect', () => sock.write(bytes));
    sock.on('data', (c) => parts.push(c));
    sock.on('error', () => {});
    sock.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(parts).toString('latin1');
      const i = text.indexOf('\r\n\r\n');
      resolve({ text, head: i < 0 ? text : text.slice(0, i), body: i < 0 ? '' : text.slice(i + 4) });
    });
  });
}

describe('CORS for local browser UIs', () => {
  it('answers a preflight from an allowed origin: methods, headers, max-age, Private Network Access', async () => {
    const { agent } = await corsAgent();
    const r = await send(agent, undefined, {
      method: 'OPTIONS',
      headers: {
        Origin: KIOSK,
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'authorization,content-type,x-stainless-os',
        'Access-Control-Request-Private-Network': 'true',
      },
    });
    const what = `${r.status} ${JSON.stringify(r.headers)}`;
    assert.equal(r.status, 204, what);
    assert.equal(r.headers['access-control-allow-origin'], KIOSK, what);
    assert.match(r.headers['access-control-allow-methods'], /POST/, what);
    assert.match(r.headers['access-control-allow-headers'], /Authorization/i, what);
    assert.match(r.headers['access-control-allow-headers'], /\*/, what);
    assert.ok(Number(r.headers['access-control-max-age']) > 0, what);
    assert.equal(r.headers['access-control-allow-private-network'], 'true', what);
    assert.match(String(r.headers.vary), /Origin/i, what);
    // Without the PNA request header, no PNA answer.
    const r2 = await send(agent, undefined, { method: 'OPTIONS', headers: { Origin: DEV, 'Access-Control-Request-Method': 'POST' } });
    assert.equal(r2.status, 204);
    assert.equal(r2.headers['access-control-allow-origin'], DEV);
    assert.equal(r2.headers['access-control-allow-private-network'], undefined);
  });

  it('puts the allow-origin header on answers, errors and streams of an allowed origin', async () => {
    const { agent } = await corsAgent();
    const ok = await send(agent, chatBody(), { headers: { Origin: KIOSK } });
    assert.equal(ok.status, 200, ok.body);
    assert.equal(ok.headers['access-control-allow-origin'], KIOSK);
    assert.match(String(ok.headers['access-control-expose-headers']), /x-edgeway-endpoint/);
    assert.match(String(ok.headers['access-control-expose-headers']), /retry-after/);
    const err = await send(agent, chatBody('no-such-model'), { headers: { Origin: KIOSK } });
    assert.equal(err.status, 404, err.body);
    assert.equal(err.headers['access-control-allow-origin'], KIOSK);
    const st = await send(agent, chatBody('test-model', { stream: true }), { headers: { Origin: DEV } });
    assert.equal(st.status, 200, st.body);
    assert.match(String(st.headers['content-type']), /^text\/event-stream/);
    assert.equal(st.headers['access-control-allow-origin'], DEV);
    assert.match(st.body, /data: \[DONE\]/);
    const models = await send(agent, undefined, { method: 'GET', path: '/v1/models', headers: { Origin: KIOSK } });
    assert.equal(models.headers['access-control-allow-origin'], KIOSK);
    // No Origin (curl, an SDK): no CORS headers, but Vary so no cache mixes them up.
    const plain = await send(agent, chatBody());
    assert.equal(plain.headers['access-control-allow-origin'], undefined);
    assert.match(String(plain.headers.vary), /Origin/i);
  });

  it('refuses a disallowed origin before it reaches an upstream, with no CORS headers, and counts it', async () => {
    const { agent, up } = await corsAgent();
    const before = up.requests.filter((r) => r.method === 'POST').length;
    for (const origin of ['https://evil.example', 'https://kiosk.local.evil.example', 'null']) {
      const r = await send(agent, chatBody(), { headers: { Origin: origin, 'Content-Type': 'text/plain' } });
      assert.equal(r.status, 403, `${origin}: ${r.status} ${r.body}`);
      assert.equal(r.json.error.code, 'origin_not_allowed');
      assert.equal(r.headers['access-control-allow-origin'], undefined, origin);
      const pre = await send(agent, undefined, { method: 'OPTIONS', headers: { Origin: origin, 'Access-Control-Request-Method': 'POST' } });
      assert.equal(pre.headers['access-control-allow-origin'], undefined, origin);
      assert.notEqual(pre.status, 204, origin);
    }
    assert.equal(up.requests.filter((r) => r.method === 'POST').length, before, 'a refused origin reached the upstream');
    const m = parseMetrics((await send(agent, undefined, { method: 'GET', path: '/metrics' })).body);
    assert.equal(metricValue(m, 'edgeway_cors_rejected_total', {}), 6);
  });

  it('with cors_origins empty (the default) every browser origin is refused', async () => {
    const up = await upstream({ name: 'primary' });
    const agent = await agentWith({ endpoints: [{ name: 'primary', url: up.url }] });
    const r = await send(agent, chatBody(), { headers: { Origin: 'http://localhost:3000' } });
    assert.equal(r.status, 403, r.body);
    assert.equal(r.headers['access-control-allow-origin'], undefined);
    const ok = await send(agent, chatBody());
    assert.equal(ok.status, 200, ok.body);
    assert.equal(ok.headers.vary, undefined);
  });

  it("cors_origins = * allows any origin (no local token) with 'Access-Control-Allow-Origin: *'", async () => {
    const { agent } = await corsAgent({ cors_origins: '*' });
    const r = await send(agent, chatBody(), { headers: { Origin: 'http://192.168.1.9:8000' } });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers['access-control-allow-origin'], '*');
  });
});

describe('HTTP conformance', () => {
  it('HEAD on the admin paths: the GET head (Content-Length included), no body', async () => {
    const { agent } = await corsAgent();
    for (const p of ['/healthz', '/readyz', '/status', '/metrics', '/', '/v1/models']) {
      const get = await send(agent, undefined, { method: 'GET', path: p });
      const head = await rawUntilClose(agent.port, `HEAD ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      assert.match(head.head, /^HTTP\/1\.1 200 /, `${p}: ${head.head}`);
      assert.equal(head.body, '', `${p}: HEAD must have no body`);
      const len = /\r\ncontent-length: (\d+)/i.exec(head.head);
      assert.ok(len, `${p}: no Content-Length: ${head.head}`);
      if (p === '/healthz' || p === '/v1/models') assert.equal(Number(len[1]), Buffer.byteLength(get.body), p);
      assert.match(head.head, new RegExp(`content-type: ${get.headers['content-type'].split(';')[0]}`, 'i'), p);
    }
  });

  it('GET /v1/models/{id}: 200 for a configured model (also percent-encoded), 404 in OpenAI shape otherwise', async () => {
    const up = await upstream({ name: 'primary', models: ['org/model-a', 'test-model'] });
    const agent = await agentWith({ endpoints: [{ name: 'primary', url: up.url, models: ['org/model-a', 'test-model'] }] });
    const r = await send(agent, undefined, { method: 'GET', path: '/v1/models/test-model' });
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(r.json, { id: 'test-model', object: 'model', created: 0, owned_by: 'edgeway' });
    const enc = await send(agent, undefined, { method: 'GET', path: '/v1/models/org%2Fmodel-a' });
    assert.equal(enc.status, 200, enc.body);
    assert.equal(enc.json.id, 'org/model-a');
    const missing = await send(agent, undefined, { method: 'GET', path: '/v1/models/gpt-nope' });
    assert.equal(missing.status, 404, missing.body);
    assert.equal(missing.json.error.code, 'model_not_found');
    assert.equal(missing.json.error.type, 'invalid_request_error');
    const bad = await send(agent, undefined, { method: 'GET', path: '/v1/models/a%0d%0aX:1' });
    assert.equal(bad.status, 400, bad.body);
  });

  it('HTTP/1.0: a JSON answer has Content-Length, a stream is close-delimited, never chunked', async () => {
    const { agent } = await corsAgent();
    const json = JSON.stringify(chatBody());
    const a = await rawUntilClose(agent.port,
      `POST /v1/chat/completions HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: ${json.length}\r\n\r\n${json}`);
    assert.doesNotMatch(a.head, /transfer-encoding/i, a.head);
    const len = /\r\ncontent-length: (\d+)/i.exec(a.head);
    if (len) assert.equal(Number(len[1]), Buffer.byteLength(a.body), a.text);
    assert.equal(JSON.parse(a.body).object, 'chat.completion', a.text);
    const sj = JSON.stringify(chatBody('test-model', { stream: true }));
    const s = await rawUntilClose(agent.port,
      `POST /v1/chat/completions HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: ${sj.length}\r\n\r\n${sj}`);
    assert.match(s.head, /^HTTP\/1\.[01] 200 /, s.head);
    assert.doesNotMatch(s.head, /transfer-encoding/i, s.head);
    assert.doesNotMatch(s.head, /content-length/i, s.head);
    assert.match(s.head, /connection: close/i, s.head);
    assert.ok(s.body.startsWith('data: {'), `the body must be the events as they are, no chunk sizes: ${s.body.slice(0, 80)}`);
    assert.match(s.body, /data: \[DONE\]\n\n$/, s.body);
    // Keep-alive 1.0 is not honoured either: one answer, then close (rawUntilClose returned).
    const k = await rawUntilClose(agent.port, 'GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    assert.match(k.head, /content-length: 15/i, k.head);
  });
});
