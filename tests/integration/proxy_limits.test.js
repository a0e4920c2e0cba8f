'use strict';
// The local API's limits and bookkeeping (issue 3, points 1, 2, 9, 10): request
// validation errors in OpenAI shape, the local bearer token, stalled and excess clients,
// keep-alive reuse towards the upstream, /v1/models, /metrics and the /status totals.
const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const http = require('node:http');
const { startAgent, endpointOf, parseMetrics, metricSamples, metricValue, tmpDir, TEST_KEY } = require('./lib/agent');
const { startUpstream } = require('./lib/fake_upstream');
const { testScope, SLOW_PROBE, chatBody, send, streamChat, chatReqs, waitProbed, assertOpenAIError } = require('./lib/proxy_client');

const CHAT = '/chat/completions';
const { cleanups, run: runCleanups, upstream, agentWith } = testScope();
afterEach(runCleanups);

async function single(agentKeys = {}) {
  const up = await upstream({ name: 'only' });
  const agent = await agentWith({ agent: agentKeys, endpoints: [{ name: 'only', url: up.url }] });
  return { agent, up };
}

// Opens a TCP connection to the agent, writes `bytes` and then nothing more.
function stalledClient(port, bytes) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    const info = { sock, data: '', closed: false };
    sock.setEncoding('latin1');
    sock.on('data', (c) => { info.data += c; });
    sock.on('close', () => { info.closed = true; });
    sock.on('error', () => { /* the agent may close it; seen as closed */ });
    sock.once('connect', () => { sock.write(bytes); resolve(info); });
    sock.once('error', reject);
    const fn = () => sock.destroy();
    fn.isSocket = true;
    cleanups.push(fn);
  });
}

const PARTIAL_HEAD = 'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appl';
const PARTIAL_BODY = 'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
  'Content-Length: 200\r\n\r\n{"model":"test-model","messages":[';

describe('request validation', () => {
  it('a body over max_request_bytes: 413 in OpenAI shape, the upstream sees nothing', async () => {
    const { agent, up } = await single({ max_request_bytes: 4096 });
    const big = JSON.stringify(chatBody('test-model', { messages: [{ role: 'user', content: 'x'.repeat(5000) }] }));
    assert.ok(Buffer.byteLength(big) > 4096);
    const r = await send(agent, big);
    assert.equal(r.status, 413, `${r.status} ${r.body}`);
    assertOpenAIError(assert, r, { type: 'invalid_request_error' });
    // A head announcing too much is answered at once, before any body is sent.
    const t0 = Date.now();
    const raw = await agent.raw('POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
      'Content-Length: 100000\r\n\r\n', { timeoutMs: 5000 });
    assert.match(raw.data, /^HTTP\/1\.1 413 /, JSON.stringify(raw));
    assert.ok(Date.now() - t0 < 2000, `413 took ${Date.now() - t0} ms`);
    const body = JSON.parse(raw.data.slice(raw.data.indexOf('\r\n\r\n') + 4));
    assert.equal(typeof body.error.message, 'string', raw.data);
    // Just under the limit is fine.
    const fits = JSON.stringify(chatBody('test-model', { messages: [{ role: 'user', content: 'y'.repeat(3900) }] }));
    assert.ok(Buffer.byteLength(fits) <= 4096);
    const ok = await send(agent, fits);
    assert.equal(ok.status, 200, ok.body);
    assert.equal(chatReqs(up).length, 1, 'only the request that fits reached the upstream');
    assert.equal(chatReqs(up)[0].body, fits);
  });

  it('malformed JSON, a missing model, a duplicated model, an unknown model: 400/400/400/404 in OpenAI shape', async () => {
    const { agent, up } = await single();
    const bad = await send(agent, '{"model":"test-model","messages":[{"role":"user","content":"hi"}');
    assert.equal(bad.status, 400, bad.body);
    assertOpenAIError(assert, bad, { type: 'invalid_request_error' });

    const notJson = await send(agent, 'model=test-model');
    assert.equal(notJson.status, 400, notJson.body);
    assertOpenAIError(assert, notJson, { type: 'invalid_request_error' });

    const missing = await send(agent, { messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(missing.status, 400, missing.body);
    assertOpenAIError(assert, missing, { type: 'invalid_request_error', param: 'model' });

    const dup = await send(agent, '{"model":"test-model","messages":[],"model":"test-model"}');
    assert.equal(dup.status, 400, dup.body);
    assertOpenAIError(assert, dup, { type: 'invalid_request_error' });

    const unknown = await send(agent, chatBody('no-such-model'));
    assert.equal(unknown.status, 404, unknown.body);
    assertOpenAIError(assert, unknown, { code: 'model_not_found' });

    assert.equal(chatReqs(up).length, 0, 'an invalid request reached the upstream');
    // A "model" inside a nested object is not the request's model.
    const nested = await send(agent, '{"model":"test-model","messages":[],"metadata":{"model":"x"}}');
    assert.equal(nested.status, 200, nested.body);
  });

  it('a chunked request body is read whole and forwarded with its bytes unchanged; over the limit it is 413', async () => {
    const { agent, up } = await single({ max_request_bytes: 4096 });
    const chunkedPost = (parts) => new Promise((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1', port: agent.port, method: 'POST', path: '/v1/chat/completions', agent: false,
        headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' },
      }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => { text += c; });
        res.on('end', () => resolve({ status: res.statusCode, body: text }));
      });
      req.setTimeout(10000, () => req.destroy(new Error('no answer in 10 s')));
      req.on('error', reject);
      for (const p of parts) req.write(p);
      req.end();
    });
    const body = JSON.stringify(chatBody('test-model', { temperature: 0.5 }));
    const r = await chunkedPost([body.slice(0, 10), body.slice(10, 30), body.slice(30)]);
    assert.equal(r.status, 200, r.body);
    assert.equal(chatReqs(up).length, 1);
    assert.equal(chatReqs(up)[0].body, body);
    let big;
    try {
      big = await chunkedPost(Array.from({ length: 10 }, () => 'x'.repeat(1000)));
    } catch (e) {
      assert.fail(`an oversize chunked body got no 413 but: ${e.message}`);
    }
    assert.equal(big.status, 413, big.body);
    assert.equal(chatReqs(up).length, 1);
  });

  it('upstream request ids and rate-limit headers reach the client; other upstream headers do not', async () => {
    const { agent, up } = await single();
    up.set({ mode: 'ok', headers: { 'x-request-id': 'req_abc123', 'x-ratelimit-remaining-requests': '41',
      'openai-processing-ms': '7', 'x-upstream-secret': 'internal', 'set-cookie': 'a=b' } });
    const r = await send(agent, chatBody());
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers['x-upstream-request-id'], 'req_abc123');
    assert.equal(r.headers['x-ratelimit-remaining-requests'], '41');
    assert.equal(r.headers['openai-processing-ms'], '7');
    assert.equal(r.headers['x-upstream-secret'], undefined);
    assert.equal(r.headers['set-cookie'], undefined);
    assert.equal(r.headers['x-edgeway-endpoint'], 'only');
  });

  it('Expect: 100-continue gets a 100 Continue, then the answer', async () => {
    const { agent, up } = await single();
    const payload = JSON.stringify(chatBody());
    const r = await new Promise((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1', port: agent.port, method: 'POST', path: '/v1/chat/completions', agent: false,
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload), Expect: '100-continue' },
      }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => { text += c; });
        res.on('end', () => resolve({ status: res.statusCode, body: text, continued }));
      });
      let continued = false;
      // Without a 100 Continue the body is never sent; the timer fails the test instead.
      const timer = setTimeout(() => req.destroy(new Error('no 100 Continue within 3 s')), 3000);
      req.on('continue', () => { continued = true; clearTimeout(timer); req.end(payload); });
      req.on('error', (e) => { clearTimeout(timer); reject(e); });
      req.on('close', () => clearTimeout(timer));
      req.flushHeaders();
    });
    assert.equal(r.continued, true);
    assert.equal(r.status, 200, r.body);
    assert.equal(chatReqs(up).length, 1);
    assert.equal(chatReqs(up)[0].body, payload);
  });

  it('local_token_file: a missing or wrong bearer gets 401; the right one passes and never reaches the upstream', async () => {
    const up = await upstream({ name: 'only' });
    const dir = tmpDir('edgeway-token-');
    const tokenFile = path.join(dir, 'local.token');
    const token = 'local-secret-token-0123456789';
    fs.writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
    fs.chmodSync(tokenFile, 0o600);
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const agent = await agentWith({ agent: { local_token_file: tokenFile }, endpoints: [{ name: 'only', url: up.url }] });

    const none = await send(agent, chatBody());
    assert.equal(none.status, 401, none.body);
    assertOpenAIError(assert, none);
    const wrong = await send(agent, chatBody(), { headers: { Authorization: 'Bearer not-the-token' } });
    assert.equal(wrong.status, 401, wrong.body);
    assertOpenAIError(assert, wrong);
    const prefix = await send(agent, chatBody(), { headers: { Authorization: `Bearer ${token.slice(0, -1)}` } });
    assert.equal(prefix.status, 401, prefix.body);
    const longer = await send(agent, chatBody(), { headers: { Authorization: `Bearer ${token}x` } });
    assert.equal(longer.status, 401, longer.body);
    const models = await send(agent, undefined, { method: 'GET', path: '/v1/models' });
    assert.equal(models.status, 401, models.body);
    assert.equal(chatReqs(up).length, 0);

    const right = await send(agent, chatBody(), { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(right.status, 200, right.body);
    const [seen] = chatReqs(up);
    assert.equal(seen.headers.authorization, `Bearer ${TEST_KEY}`, 'the upstream must get the endpoint key');
    assert.ok(!JSON.stringify(seen.headers).includes(token), `the local token reached the upstream: ${JSON.stringify(seen.headers)}`);
    assert.ok(!seen.body.includes(token));
  });

  it('GET /v1/models lists the configured models once each', async () => {
    const a = await upstream({ name: 'a' });
    const b = await upstream({ name: 'b' });
    const agent = await agentWith({
      endpoints: [
        { name: 'a', url: a.url, models: ['alpha', 'beta'] },
        { name: 'b', url: b.url, models: ['beta', 'gamma', 'alpha'] },
      ],
    });
    const r = await send(agent, undefined, { method: 'GET', path: '/v1/models' });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.object, 'list', r.body);
    const ids = r.json.data.map((m) => m.id);
    assert.deepEqual([...ids].sort(), ['alpha', 'beta', 'gamma'], r.body);
    for (const m of r.json.data) assert.equal(m.object, 'model', r.body);
  });
});

describe('client connections', () => {
  it('40 stalled clients do not block a normal request', async () => {
    const { agent, up } = await single({ max_clients: 48 });
    const stalled = [];
    for (let i = 0; i < 40; i++) stalled.push(await stalledClient(agent.port, i % 2 ? PARTIAL_HEAD : PARTIAL_BODY));
    // All 40 are held by the agent (plus the /status request itself).
    await agent.waitStatus((s) => s.metrics.clients_active >= 41, '40 stalled clients accepted', 10000);
    const r = await send(agent, chatBody(), { timeoutMs: 10000 });
    assert.equal(r.status, 200, r.body);
    assert.ok(r.ms < 2000, `the normal request took ${r.ms} ms with 40 stalled clients`);
    const streamed = await streamChat(agent, chatBody('test-model', { stream: true }), { timeoutMs: 10000 });
    assert.equal(streamed.status, 200);
    assert.equal(streamed.done, true, JSON.stringify(streamed.events.map((e) => e.data)));
    assert.ok(stalled.every((s) => !s.closed && s.data === ''), 'a stalled client was answered or closed early');
    assert.equal(chatReqs(up).length, 2);
  });

  it('a connection table full of requests in progress answers the next client 503 at once', async () => {
    // Idle and half-sent connections make room for new ones (see faults tests); requests
    // that are being served do not, so a table full of them is full.
    const { agent, up } = await single({ max_clients: 4 });
    up.set({ mode: 'hang', match: '/chat/completions' });
    const body = JSON.stringify(chatBody());
    const busy = 'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    for (let i = 0; i < 4; i++) await stalledClient(agent.port, busy);
    // All four requests are upstream (probes are GETs, not counted): the table is all busy.
    await agent.waitFor(async () => {
      const n = chatReqs(up).length;
      return { ok: n === 4, value: n, last: `${n} chat requests upstream` };
    }, 'four requests in progress', 10000);
    const t0 = Date.now();
    const r = await agent.raw('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', { timeoutMs: 5000 });
    const ms = Date.now() - t0;
    assert.equal(r.error, undefined, JSON.stringify(r));
    assert.match(r.data, /^HTTP\/1\.1 503 /, JSON.stringify(r));
    assert.ok(ms < 1000, `the 503 took ${ms} ms`);
    assert.match(r.data, /\r\nretry-after: *\d+\r\n/i, r.data);
    const answer = JSON.parse(r.data.slice(r.data.indexOf('\r\n\r\n') + 4));
    assert.equal(typeof answer.error.message, 'string', r.data);
    assert.equal(answer.error.code, 'overloaded', r.data);
    // Once the stalled clients leave, the agent serves again.
    await closeStalledClients();
    const ok = await agent.waitFor(async () => {
      const h = await agent.get('/healthz');
      return { ok: h.status === 200, value: h, last: `${h.status} ${h.body}` };
    }, '/healthz 200 once the stalled clients left', 10000);
    assert.equal(ok.status, 200);
    const s = await agent.status();
    assert.ok(s.metrics.clients_rejected >= 1, JSON.stringify(s.metrics));
  });

  it('keep-alive: 30 sequential requests open at most 2 upstream connections', async () => {
    const { agent, up } = await single();
    const before = up.tcpConnections;
    const ka = new http.Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(() => ka.destroy());
    let clientSockets = 0;
    const create = ka.createConnection.bind(ka);
    ka.createConnection = (...args) => { clientSockets++; return create(...args); };
    for (let i = 0; i < 30; i++) {
      const r = await send(agent, chatBody(), { httpAgent: ka });
      assert.equal(r.status, 200, `request ${i}: ${r.body}`);
    }
    const opened = up.tcpConnections - before;
    const conns = new Set(chatReqs(up).map((q) => q.conn));
    assert.equal(chatReqs(up).length, 30);
    assert.ok(opened <= 2, `30 sequential requests opened ${opened} upstream connections (request conns: ${[...conns].join(',')})`);
    assert.ok(conns.size <= 2, `requests came on ${conns.size} upstream connections`);
    assert.ok(clientSockets <= 2, `edgeway did not keep the client's connection alive: ${clientSockets} client connections for 30 requests`);
  });
});

describe('upstream connections', () => {
  it('plain-http connections of a burst stay parked and serve the next burst without new connections', async () => {
    const { agent, up } = await single();
    up.set({ mode: 'ok', delayMs: 150 });
    const burst = () => Promise.all(Array.from({ length: 8 }, () => send(agent, chatBody())));
    const rs = await burst();
    assert.deepEqual(rs.map((r) => r.status), Array(8).fill(200));
    assert.ok(new Set(chatReqs(up).map((q) => q.conn)).size >= 2, 'the 8 requests were not concurrent upstream');
    const before = up.tcpConnections;
    const rs2 = await burst();
    assert.deepEqual(rs2.map((r) => r.status), Array(8).fill(200));
    assert.equal(up.tcpConnections - before, 0, 'a second burst of 8 opened new upstream connections');
  });

  it('parked TLS connections are bounded (EW_CAP_IDLE_TLS_PER_ENDPOINT = 16) and reused', async () => {
    const { certs } = require('./lib/certs');
    const c = certs();
    const up = await upstream({ name: 'tlsidle', tls: { key: c.read(c.server.key), cert: c.read(c.server.cert) } });
    const agent = await agentWith({ agent: { max_clients: 24 },
      endpoints: [{ name: 'tlsidle', url: up.url, ca_file: c.ca.cert }] });
    up.set({ mode: 'ok', delayMs: 150 });
    const rs = await Promise.all(Array.from({ length: 20 }, () => send(agent, chatBody())));
    assert.deepEqual(rs.map((r) => r.status), Array(20).fill(200));
    assert.ok(new Set(chatReqs(up).map((q) => q.conn)).size > 16, 'the 20 requests were not concurrent upstream');
    await agent.waitFor(async () => ({ ok: up.openSockets() <= 16, last: `${up.openSockets()} open upstream connections` }),
      'at most 16 parked TLS connections', 5000);
    const before = up.tcpConnections;
    for (let i = 0; i < 4; i++) assert.equal((await send(agent, chatBody())).status, 200);
    assert.equal(up.tcpConnections - before, 0, 'parked TLS connections were not reused');
  });

  it('HTTPS upstream: keep-alive, and a new connection resumes the TLS session', async () => {
    const { certs } = require('./lib/certs');
    const c = certs();
    const up = await upstream({ name: 'tlsup', tls: { key: c.read(c.server.key), cert: c.read(c.server.cert) } });
    const agent = await agentWith({ endpoints: [{ name: 'tlsup', url: up.url, ca_file: c.ca.cert }] });
    const handshakes0 = up.connections;
    for (let i = 0; i < 20; i++) {
      const r = await send(agent, chatBody());
      assert.equal(r.status, 200, r.body);
    }
    assert.ok(up.connections - handshakes0 <= 2, `20 sequential HTTPS requests made ${up.connections - handshakes0} TLS handshakes`);
    // The server drops its connections: the next request needs a new one, which should
    // resume the session rather than pay a full handshake.
    const resumed0 = up.resumedSessions;
    const conns0 = up.connections;
    up.dropConnections();
    await agent.waitFor(async () => ({ ok: up.openSockets() === 0, last: up.openSockets() }), 'the upstream connections gone', 5000);
    const r = await send(agent, chatBody());
    assert.equal(r.status, 200, r.body);
    assert.equal(r.attempts, 1, 'a dropped parked connection cost an attempt');
    assert.ok(up.connections > conns0, 'no new TLS connection after the drop');
    assert.ok(up.resumedSessions > resumed0, `the new TLS connection did not resume the session (resumed ${up.resumedSessions}, handshakes ${up.connections})`);
  });
});

// Removes and runs the cleanups registered by stalledClient (sockets only), keeping the
// agent and upstreams for the rest of the test.
async function closeStalledClients() {
  for (let i = cleanups.length - 1; i >= 0; i--) {
    if (cleanups[i].isSocket) {
      const [fn] = cleanups.splice(i, 1);
      await fn();
    }
  }
}

describe('metrics after traffic', () => {
  let agent;
  let primary;
  let secondary;
  let bigep;
  const sent = { ms: [] };

  before(async () => {
    primary = await startUpstream({ name: 'primary' });
    secondary = await startUpstream({ name: 'secondary', models: ['test-model', 'small-model'] });
    bigep = await startUpstream({ name: 'bigep', models: ['big-model'] });
    agent = await startAgent({
      ini: {
        agent: { max_attempts: 2 },
        probe: SLOW_PROBE,
        endpoints: [
          { name: 'primary', url: primary.url, priority: 10 },
          { name: 'secondary', url: secondary.url, priority: 5, models: ['test-model', 'small-model'] },
          { name: 'bigep', url: bigep.url, priority: 1, models: ['big-model'] },
        ],
        fallback: { 'big-model': 'small-model' },
      },
    });
    await waitProbed(agent);
    primary.set({ mode: 'ok', delayMs: 60 });
    secondary.set({ mode: 'ok', delayMs: 60 });
    bigep.set({ mode: 'status', status: 500, match: CHAT });
    const expect = (r, status, endpoint) => {
      assert.equal(r.status, status, `${r.status} ${r.endpoint} ${r.body}`);
      if (endpoint) assert.equal(r.endpoint, endpoint, `${r.status} ${r.endpoint} ${r.body}`);
      sent.ms.push(r.ms);
    };
    // 3 plain answers from the primary.
    for (let i = 0; i < 3; i++) expect(await send(agent, chatBody()), 200, 'primary');
    // 1 failover (503 on the primary) to the secondary.
    primary.set({ mode: 'status', status: 503, match: CHAT, delayMs: 60 });
    expect(await send(agent, chatBody()), 200, 'secondary');
    primary.set({ mode: 'ok', delayMs: 60 });
    // 1 model fallback: big-model fails on bigep, small-model answers on the secondary.
    expect(await send(agent, chatBody('big-model')), 200, 'secondary');
    // 1 stream from the primary.
    const st = await streamChat(agent, chatBody('test-model', { stream: true }));
    assert.equal(st.status, 200);
    assert.equal(st.done, true);
    sent.ms.push(st.ms);
    // 1 that nothing can serve (max_attempts 2: primary, secondary).
    primary.set({ mode: 'status', status: 500, match: CHAT });
    secondary.set({ mode: 'status', status: 500, match: CHAT });
    expect(await send(agent, chatBody()), 503);
  });

  after(async () => {
    if (agent) await agent.stop();
    for (const up of [primary, secondary, bigep]) if (up) await up.close();
  });

  it('/metrics: requests, attempts, failovers by reason, both histograms, tokens from usage', async () => {
    const r = await agent.get('/metrics');
    assert.equal(r.status, 200, r.body);
    assert.match(String(r.headers['content-type']), /^text\/plain/);
    const m = parseMetrics(r.body);
    const bad = m.filter((s) => s.name === null);
    assert.deepEqual(bad.map((s) => s.line), [], 'lines that are not Prometheus samples');
    const sum = (name, labels) => metricSamples(m, name, labels).reduce((a, s) => a + s.value, 0);

    // requests by endpoint, model, status
    assert.equal(metricValue(m, 'edgeway_requests_total', { endpoint: 'primary', model: 'test-model', status: '200' }), 4, r.body);
    assert.equal(metricValue(m, 'edgeway_requests_total', { endpoint: 'secondary', model: 'test-model', status: '200' }), 1, r.body);
    assert.equal(metricValue(m, 'edgeway_requests_total', { endpoint: 'secondary', model: 'small-model', status: '200' }), 1, r.body);
    assert.equal(sum('edgeway_requests_total', { status: '503' }), 1, r.body);
    assert.equal(sum('edgeway_requests_total'), 7, r.body);
    // the fallback shows as requested -> served; the 503 edgeway made is labelled as its own
    assert.equal(metricValue(m, 'edgeway_requests_total', { endpoint: 'secondary', model: 'small-model', requested_model: 'big-model' }), 1, r.body);
    assert.equal(sum('edgeway_requests_total', { source: 'edgeway', endpoint: 'none', status: '503' }), 1, r.body);
    // failovers are counted against the endpoint that failed
    assert.equal(sum('edgeway_failovers_total', { endpoint: 'bigep' }), 1, r.body);
    assert.ok(sum('edgeway_failovers_total', { endpoint: 'primary' }) >= 2, r.body);

    // attempts by endpoint and outcome
    assert.equal(metricValue(m, 'edgeway_attempts_total', { endpoint: 'primary', outcome: 'ok' }), 4, r.body);
    assert.equal(metricValue(m, 'edgeway_attempts_total', { endpoint: 'primary', outcome: 'http_5xx' }), 2, r.body);
    assert.equal(metricValue(m, 'edgeway_attempts_total', { endpoint: 'secondary', outcome: 'ok' }), 2, r.body);
    assert.equal(metricValue(m, 'edgeway_attempts_total', { endpoint: 'secondary', outcome: 'http_5xx' }), 1, r.body);
    assert.equal(metricValue(m, 'edgeway_attempts_total', { endpoint: 'bigep', outcome: 'http_5xx' }), 1, r.body);
    assert.equal(sum('edgeway_attempts_total'), 10, r.body);

    // failovers by reason: every sample has a reason; 5xx ones counted
    const fo = metricSamples(m, 'edgeway_failovers_total');
    assert.ok(fo.length > 0 && fo.every((s) => typeof s.labels.reason === 'string' && s.labels.reason), r.body);
    const serverErr = sum('edgeway_failovers_total', { reason: 'server_error' });
    assert.ok(serverErr >= 3 && serverErr <= 4, `failovers{reason="server_error"} = ${serverErr}\n${r.body}`);
    assert.equal(sum('edgeway_failovers_total') - serverErr, 0, r.body);

    // histograms
    for (const [name, count] of [['edgeway_request_duration_seconds', 7], ['edgeway_time_to_first_token_seconds', 1]]) {
      const buckets = metricSamples(m, `${name}_bucket`);
      assert.ok(buckets.length >= 2, `${name}: no buckets\n${r.body}`);
      // One series per (endpoint, served model); buckets cumulative within each, up to 300 s.
      const series = new Map();
      for (const b of buckets) {
        const key = `${b.labels.endpoint}/${b.labels.model}`;
        const prev = series.get(key) || 0;
        assert.ok(b.value >= prev, `${name} buckets not cumulative\n${r.body}`);
        series.set(key, b.value);
      }
      assert.ok(buckets.some((b) => b.labels.le === '300'), `${name}: no 300 s bucket\n${r.body}`);
      assert.equal(sum(`${name}_bucket`, { le: '+Inf' }), count, `${name} +Inf\n${r.body}`);
      assert.equal(sum(`${name}_count`), count, `${name}_count\n${r.body}`);
      assert.ok(sum(`${name}_sum`) > 0, `${name}_sum\n${r.body}`);
    }
    assert.match(r.body, /# TYPE edgeway_request_duration_seconds histogram/);
    assert.match(r.body, /# TYPE edgeway_time_to_first_token_seconds histogram/);

    // tokens from usage (the fake reports prompt 5, completion 3 per JSON answer)
    const tok = (endpoint, model, kind) => metricValue(m, 'edgeway_tokens_total', { endpoint, model, kind });
    assert.equal(tok('primary', 'test-model', 'prompt'), 15, r.body);
    assert.equal(tok('primary', 'test-model', 'completion'), 9, r.body);
    assert.equal(tok('secondary', 'test-model', 'prompt'), 5, r.body);
    assert.equal(tok('secondary', 'test-model', 'completion'), 3, r.body);
    assert.equal(tok('secondary', 'small-model', 'prompt'), 5, r.body);
    assert.equal(tok('secondary', 'small-model', 'completion'), 3, r.body);
    assert.equal(metricSamples(m, 'edgeway_tokens_total', { endpoint: 'bigep' }).length, 0, r.body);
  });

  it('/status metrics: total, success, failed, fallback_triggered, avg_latency_ms, success_rate match the traffic', async () => {
    const s = await agent.status();
    const mt = s.metrics;
    const what = JSON.stringify(mt);
    assert.equal(mt.total, 7, what);
    assert.equal(mt.success, 6, what);
    assert.equal(mt.failed, 1, what);
    // The model fallback for sure; an endpoint failover with the same model may count too.
    assert.ok(mt.fallback_triggered >= 1 && mt.fallback_triggered <= 2, what);
    assert.ok(Math.abs(mt.success_rate - 6 / 7) < 0.001, what);
    // Every answer took the upstream's 60 ms delay; none took longer than the client saw.
    assert.equal(typeof mt.avg_latency_ms, 'number', what);
    assert.ok(mt.avg_latency_ms >= 55, `avg_latency_ms below the upstream delay: ${what}`);
    assert.ok(mt.avg_latency_ms <= Math.max(...sent.ms) + 5, `avg_latency_ms above the slowest request (${Math.max(...sent.ms)} ms): ${what}`);
    assert.equal(endpointOf(s, 'bigep').requests >= 1, true, JSON.stringify(endpointOf(s, 'bigep')));
  });
});
