'use strict';
// Failover through the running agent (issue 3, points 3, 4, 7, 8): which failures move the
// request to the next candidate, which go back to the client unchanged, rate limits, bad
// keys, "nothing can serve", and model fallback chains (with the body rewritten only in
// its "model").
const { describe, it, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { startAgent, endpointOf, TEST_KEY } = require('./lib/agent');
const { startUpstream, reservedClosedPort } = require('./lib/fake_upstream');
const { testScope, SLOW_PROBE, chatBody, send, chatReqs, waitProbed, assertOpenAIError } = require('./lib/proxy_client');

const CHAT = '/chat/completions';
const { cleanups, run: runCleanups, upstream, agentWith } = testScope();
afterEach(runCleanups);

// primary (priority 10) and secondary (priority 5), both serving test-model.
async function pair({ primaryKeys = {}, secondaryKeys = {}, agentKeys = {} } = {}) {
  const primary = await upstream({ name: 'primary' });
  const secondary = await upstream({ name: 'secondary' });
  const agent = await agentWith({
    agent: agentKeys,
    endpoints: [
      Object.assign({ name: 'primary', url: primary.url, priority: 10 }, primaryKeys),
      Object.assign({ name: 'secondary', url: secondary.url, priority: 5 }, secondaryKeys),
    ],
  });
  return { agent, primary, secondary };
}

function assertServedBy(r, endpoint, { model = 'test-model', attempts } = {}) {
  const what = `${r.status} endpoint=${r.endpoint} model=${r.model} attempts=${r.attempts} body=${r.body.slice(0, 400)}`;
  assert.equal(r.status, 200, what);
  assert.equal(r.endpoint, endpoint, what);
  assert.equal(r.model, model, what);
  if (attempts !== undefined) assert.equal(r.attempts, attempts, what);
  assert.ok(r.json && Array.isArray(r.json.choices), what);
  assert.equal(r.json.choices[0].message.content, `Hello from ${endpoint}`, what);
}

// The endpoint, or the endpoint for this model, is shown as rate limited in /status
// (state RATE_LIMITED / rate_limited_for_ms for the whole endpoint, rate_limited_models
// {model: ms left} for one model).
function shownLimited(ep, model) {
  if (!ep) return false;
  if (ep.state === 'RATE_LIMITED' || ep.rate_limited_for_ms > 0) return true;
  const per = ep.rate_limited_models;
  return !!(per && typeof per === 'object' && per[model] > 0);
}
function limitLeftMs(ep, model) {
  if (!ep) return 0;
  return Math.max(ep.rate_limited_for_ms || 0, (ep.rate_limited_models && ep.rate_limited_models[model]) || 0);
}

describe('proxy failover', () => {
  it('503 on the primary: answered by the secondary at once, headers name it, 2 attempts', async () => {
    // A long back-off, which must not apply when moving on to another endpoint.
    const { agent, primary, secondary } = await pair({ agentKeys: { retry_backoff_ms: 2000, retry_backoff_max_ms: 4000 } });
    primary.set({ mode: 'status', status: 503, match: CHAT });
    const r = await send(agent, chatBody());
    assertServedBy(r, 'secondary', { attempts: 2 });
    assert.ok(r.ms < 1000, `failing over took ${r.ms} ms: a back-off was applied before another endpoint`);
    assert.equal(chatReqs(primary).length, 1, 'the primary was tried once');
    assert.equal(chatReqs(secondary).length, 1, 'the secondary answered once');
    for (const up of [primary, secondary]) {
      const req = chatReqs(up)[0];
      assert.equal(req.model, 'test-model');
      assert.equal(req.headers.authorization, `Bearer ${TEST_KEY}`, `${up.name} saw the endpoint's key`);
    }
    const s = await agent.status();
    assert.equal(s.metrics.total, 1, JSON.stringify(s.metrics));
    assert.equal(s.metrics.success, 1, JSON.stringify(s.metrics));
  });

  it('a connection reset by the primary: answered by the secondary', async () => {
    const { agent, primary, secondary } = await pair();
    primary.set({ mode: 'reset', match: CHAT });
    const r = await send(agent, chatBody());
    assertServedBy(r, 'secondary', { attempts: 2 });
    assert.equal(chatReqs(primary).length, 1);
    assert.equal(chatReqs(secondary).length, 1);
  });

  it('a hanging primary: the attempt times out after its timeout_ms and the secondary answers', async () => {
    const { agent, primary, secondary } = await pair({ primaryKeys: { timeout_ms: 300 } });
    primary.set({ mode: 'hang', match: CHAT });
    const r = await send(agent, chatBody(), { timeoutMs: 10000 });
    assertServedBy(r, 'secondary', { attempts: 2 });
    // The attempt deadline is 300 ms; well under request_timeout_ms (60 s) is the point.
    assert.ok(r.ms >= 250, `answered after ${r.ms} ms, before the primary's 300 ms timeout could pass`);
    assert.ok(r.ms < 5000, `answered after ${r.ms} ms: the 300 ms attempt timeout did not apply`);
    assert.equal(chatReqs(secondary).length, 1);
    // The hung attempt's connection is given up, not left open.
    await primary.waitForClose(chatReqs(primary)[0], 5000);
  });

  it('429 with Retry-After: 3 on the primary: the secondary answers at once, the primary gets nothing until the limit ends', async () => {
    const { agent, primary, secondary } = await pair();
    primary.set({ mode: 'status', status: 429, headers: { 'Retry-After': '3' }, match: CHAT });
    const t0 = Date.now();
    const first = await send(agent, chatBody());
    assertServedBy(first, 'secondary', { attempts: 2 });
    assert.ok(first.ms < 1500, `the request took ${first.ms} ms: it waited for the Retry-After instead of failing over`);
    assert.equal(chatReqs(primary).length, 1);

    // From now on the primary would answer fine: any request it gets shows in its count.
    primary.set({ mode: 'ok' });
    const s = await agent.status();
    const p = endpointOf(s, 'primary');
    // Checked at the end, so that the routing part of this test runs and reports either way.
    const left = limitLeftMs(p, 'test-model');
    const statusProblem = shownLimited(p, 'test-model') && left > 1500 && left <= 3000 ? undefined
      : `/status does not show the primary rate limited for the rest of its 3 s after its 429: ${JSON.stringify(p)}`;
    assert.equal(p.key_bad, false, JSON.stringify(p));
    assert.notEqual(p.state, 'DOWN', `a 429 is not a health failure: ${JSON.stringify(p)}`);

    for (let i = 0; i < 5; i++) {
      const r = await send(agent, chatBody());
      assertServedBy(r, 'secondary', { attempts: 1 });
    }
    assert.equal(chatReqs(primary).length, 1, 'the rate limited primary got requests');

    // After the limit it serves again: poll with requests, bounded in count and time.
    const early = [];
    let back;
    for (let i = 0; i < 200 && Date.now() - t0 < 12000; i++) {
      const sentAt = Date.now();
      const r = await send(agent, chatBody());
      assert.equal(r.status, 200, r.body);
      if (r.endpoint === 'primary') {
        if (sentAt - t0 < 2500) early.push({ sentAfterMs: sentAt - t0 });
        back = { r, sentAfterMs: sentAt - t0 };
        break;
      }
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.deepEqual(early, [], 'the primary served while its Retry-After: 3 was still running');
    assert.ok(back, `the primary did not get traffic again within 12 s of its 429 (Retry-After: 3)\n${agent.diag()}`);
    assertServedBy(back.r, 'primary', { attempts: 1 });
    const s2 = await agent.status();
    assert.ok(!shownLimited(endpointOf(s2, 'primary'), 'test-model'), JSON.stringify(endpointOf(s2, 'primary')));
    assert.equal(statusProblem, undefined);
  });

  it('401 on the primary: its key is marked bad in /status and the secondary answers', async () => {
    const { agent, primary, secondary } = await pair();
    primary.set({ mode: 'status', status: 401, match: CHAT });
    const r = await send(agent, chatBody());
    assertServedBy(r, 'secondary', { attempts: 2 });
    const s = await agent.status();
    assert.equal(endpointOf(s, 'primary').key_bad, true, JSON.stringify(endpointOf(s, 'primary')));
    assert.equal(endpointOf(s, 'secondary').key_bad, false, JSON.stringify(endpointOf(s, 'secondary')));
    // A bad key is not retried on every request.
    const r2 = await send(agent, chatBody());
    assertServedBy(r2, 'secondary', { attempts: 1 });
    assert.equal(chatReqs(primary).length, 1);
    assert.equal(chatReqs(secondary).length, 2);
  });

  for (const status of [400, 404, 422]) {
    it(`${status} from the primary goes back to the client unchanged, without failover`, async () => {
      const { agent, primary, secondary } = await pair();
      const errBody = JSON.stringify({
        error: { message: `upstream says ${status}: messages[0].content is \u00e9 wrong`, type: 'invalid_request_error', param: 'messages', code: `e${status}` },
      });
      primary.set({ mode: 'status', status, body: errBody, match: CHAT });
      const r = await send(agent, chatBody());
      const what = `${r.status} ${JSON.stringify(r.headers)} ${r.body}`;
      assert.equal(r.status, status, what);
      assert.equal(r.body, errBody, `body changed on the way: ${what}`);
      assert.match(String(r.headers['content-type']), /^application\/json/, what);
      assert.equal(r.endpoint, 'primary', what);
      assert.equal(r.model, 'test-model', what);
      assert.equal(r.attempts, 1, what);
      assert.equal(chatReqs(primary).length, 1);
      assert.equal(chatReqs(secondary).length, 0, 'the secondary was tried after a client error');
      // Not a health failure of the primary.
      const p = endpointOf(await agent.status(), 'primary');
      assert.equal(p.consecutive_failures, 0, JSON.stringify(p));
      assert.equal(p.key_bad, false, JSON.stringify(p));
    });
  }

  it('every endpoint failing (5xx): 503 in OpenAI shape, Retry-After, x-should-retry: false, bounded attempts', async () => {
    const { agent, primary, secondary } = await pair({ agentKeys: { max_attempts: 4 } });
    primary.set({ mode: 'status', status: 503, match: CHAT });
    secondary.set({ mode: 'status', status: 500, match: CHAT });
    const r = await send(agent, chatBody(), { timeoutMs: 20000 });
    const what = `${r.status} ${JSON.stringify(r.headers)} ${r.body}`;
    assert.equal(r.status, 503, what);
    assertOpenAIError(assert, r, { type: 'server_error' });
    assert.match(String(r.headers['retry-after']), /^\d+$/, `Retry-After: ${what}`);
    assert.ok(Number(r.headers['retry-after']) >= 1, what);
    assert.equal(r.headers['x-should-retry'], 'false', what);
    assert.ok(r.attempts >= 2 && r.attempts <= 4, what);
    assert.equal(chatReqs(primary).length + chatReqs(secondary).length, r.attempts, 'attempts header vs upstream requests');
    assert.ok(chatReqs(primary).length >= 1 && chatReqs(secondary).length >= 1, 'both endpoints were tried');
    // The upstreams' own error bodies are not what the client gets.
    assert.doesNotMatch(r.body, /fake upstream/, what);
    const s = await agent.status();
    assert.equal(s.metrics.failed, 1, JSON.stringify(s.metrics));
    assert.equal(s.metrics.success, 0, JSON.stringify(s.metrics));
  });

  it('every endpoint refusing connections: 503 with Retry-After', async () => {
    const p1 = await reservedClosedPort();
    const p2 = await reservedClosedPort();
    const agent = await agentWith({
      agent: { max_attempts: 3 },
      endpoints: [
        { name: 'gone1', url: `http://127.0.0.1:${p1}/v1`, priority: 10 },
        { name: 'gone2', url: `http://127.0.0.1:${p2}/v1`, priority: 5 },
      ],
    });
    const r = await send(agent, chatBody(), { timeoutMs: 20000 });
    const what = `${r.status} ${JSON.stringify(r.headers)} ${r.body}`;
    assert.equal(r.status, 503, what);
    assertOpenAIError(assert, r);
    assert.match(String(r.headers['retry-after']), /^\d+$/, what);
    assert.ok(r.attempts <= 3, what);
    if (r.attempts > 0) assert.equal(r.headers['x-should-retry'], 'false', what);
  });

  it('fallback chain: the requested model fails, the fallback model answers; the upstream sees only "model" rewritten', async () => {
    const big = await upstream({ name: 'bigep', models: ['big-model'] });
    const small = await upstream({ name: 'smallep', models: ['small-model'] });
    big.set({ mode: 'status', status: 500, match: CHAT });
    const agent = await agentWith({
      endpoints: [
        { name: 'bigep', url: big.url, priority: 10, models: ['big-model'] },
        { name: 'smallep', url: small.url, priority: 5, models: ['small-model'] },
      ],
      fallback: { 'big-model': 'small-model' },
    });
    // Hand-written JSON: odd spacing, escapes, a float: everything but the model must
    // reach the upstream byte for byte.
    const sent = String.raw`{ "messages" : [ {"role":"user","content":"caf\u00e9 \ud83d\ude00 \"quoted\" \\ back\nslash"} ],` +
      String.raw`  "model" :  "big-model" , "temperature":0.25,"max_tokens":7, "metadata":{"model":"not-this-one"} }`;
    const r = await send(agent, sent);
    const what = `${r.status} ${JSON.stringify(r.headers)} ${r.body}`;
    assert.equal(r.status, 200, what);
    assert.equal(r.endpoint, 'smallep', what);
    assert.equal(r.model, 'small-model', what);
    assert.equal(r.attempts, 2, what);
    assert.equal(r.json.model, 'small-model', what);

    const [toBig] = chatReqs(big);
    const [toSmall] = chatReqs(small);
    assert.ok(toBig && toSmall, 'both endpoints were tried');
    assert.equal(toBig.body, sent, 'the first attempt (requested model) was not forwarded byte for byte');
    const expected = sent.replace('"model" :  "big-model"', '"model" :  "small-model"');
    assert.notEqual(expected, sent);
    assert.equal(toSmall.body, expected, 'the fallback attempt: only the model may change');
    assert.equal(toSmall.json.temperature, 0.25);
    assert.equal(toSmall.json.messages[0].content, 'caf\u00e9 \ud83d\ude00 "quoted" \\ back\nslash');
    assert.equal(toSmall.json.metadata.model, 'not-this-one');
    assert.equal(toSmall.headers['content-length'], String(Buffer.byteLength(expected)));

    const s = await agent.status();
    assert.equal(s.metrics.fallback_triggered, 1, JSON.stringify(s.metrics));
  });

  it('a cyclic fallback (a = b, b = a) with both failing ends in 503 after bounded attempts', async () => {
    const ea = await upstream({ name: 'ea', models: ['model-a'] });
    const eb = await upstream({ name: 'eb', models: ['model-b'] });
    ea.set({ mode: 'status', status: 500, match: CHAT });
    eb.set({ mode: 'status', status: 502, match: CHAT });
    const agent = await agentWith({
      agent: { max_attempts: 4, request_timeout_ms: 10000 },
      endpoints: [
        { name: 'ea', url: ea.url, priority: 10, models: ['model-a'] },
        { name: 'eb', url: eb.url, priority: 5, models: ['model-b'] },
      ],
      fallback: { 'model-a': 'model-b', 'model-b': 'model-a' },
    });
    for (const [model, firstUp] of [['model-a', ea], ['model-b', eb]]) {
      const before = chatReqs(ea).length + chatReqs(eb).length;
      const firstBefore = chatReqs(firstUp).length;
      const r = await send(agent, chatBody(model), { timeoutMs: 15000 });
      const what = `${model}: ${r.status} ${JSON.stringify(r.headers)} ${r.body}`;
      assert.equal(r.status, 503, what);
      assertOpenAIError(assert, r);
      assert.ok(r.attempts <= 4, what);
      assert.ok(r.ms < 10000, `${what}: took ${r.ms} ms`);
      const made = chatReqs(ea).length + chatReqs(eb).length - before;
      assert.equal(made, r.attempts, `${what}: upstream requests vs x-edgeway-attempts`);
      if (r.attempts > 0) assert.ok(chatReqs(firstUp).length > firstBefore, `${what}: the requested model was not tried`);
    }
    // Each endpoint only ever saw its own model.
    assert.ok(chatReqs(ea).every((q) => q.model === 'model-a'), JSON.stringify(chatReqs(ea).map((q) => q.model)));
    assert.ok(chatReqs(eb).every((q) => q.model === 'model-b'), JSON.stringify(chatReqs(eb).map((q) => q.model)));
    const h = await agent.get('/healthz');
    assert.equal(h.status, 200);
  });

  for (const status of [408, 500, 502, 504]) {
    it(`${status} on the primary is retried on the secondary`, async () => {
      const { agent, primary, secondary } = await pair();
      primary.set({ mode: 'status', status, match: CHAT });
      const r = await send(agent, chatBody());
      assertServedBy(r, 'secondary', { attempts: 2 });
      assert.equal(chatReqs(primary).length, 1);
      assert.equal(chatReqs(secondary).length, 1);
    });
  }

  it('403 on the primary: key marked bad, the secondary answers', async () => {
    const { agent, primary } = await pair();
    primary.set({ mode: 'status', status: 403, match: CHAT });
    const r = await send(agent, chatBody());
    assertServedBy(r, 'secondary', { attempts: 2 });
    const p = endpointOf(await agent.status(), 'primary');
    assert.equal(p.key_bad, true, JSON.stringify(p));
  });

  it('back-off applies before re-trying the same endpoint', async () => {
    const only = await upstream({ name: 'only' });
    const agent = await agentWith({
      agent: { retry_backoff_ms: 400, retry_backoff_max_ms: 400 },
      endpoints: [{ name: 'only', url: only.url }],
    });
    only.set({ mode: 'status', status: 500, match: CHAT, times: 1 });
    const r = await send(agent, chatBody());
    assertServedBy(r, 'only', { attempts: 2 });
    const [a, b] = chatReqs(only);
    assert.ok(a && b, 'two attempts on the one endpoint');
    // Jittered in [backoff/2, backoff].
    assert.ok(b.at - a.at >= 190, `re-tried the same endpoint after ${b.at - a.at} ms, without back-off`);
    assert.ok(b.at - a.at < 3000, `re-tried after ${b.at - a.at} ms`);
  });

  // Sends requests until the primary answers one; returns when, relative to t0.
  async function primaryBackAfter(agent, t0, limitMs) {
    for (let i = 0; i < 300 && Date.now() - t0 < limitMs; i++) {
      const sentAt = Date.now();
      const r = await send(agent, chatBody());
      assert.equal(r.status, 200, r.body);
      if (r.endpoint === 'primary') return sentAt - t0;
      await new Promise((res) => setTimeout(res, 50));
    }
    return undefined;
  }

  it('429 with retry-after-ms: 1500 limits the primary for that long', async () => {
    const { agent, primary } = await pair();
    primary.set({ mode: 'status', status: 429, headers: { 'retry-after-ms': '1500' }, match: CHAT, times: 1 });
    const t0 = Date.now();
    const r = await send(agent, chatBody());
    assertServedBy(r, 'secondary', { attempts: 2 });
    const back = await primaryBackAfter(agent, t0, 10000);
    assert.ok(back !== undefined, 'the primary did not serve again within 10 s');
    assert.ok(back >= 1000, `the primary served again ${back} ms after a 429 with retry-after-ms: 1500`);
  });

  it('429 with Retry-After as an HTTP date is read against the response Date, not the local clock', async () => {
    const { agent, primary } = await pair();
    // A device clock (or server clock) years off: only the difference counts, 2 s.
    primary.set({
      mode: 'status', status: 429, match: CHAT, times: 1,
      headers: { Date: 'Wed, 21 Oct 2015 07:28:00 GMT', 'Retry-After': 'Wed, 21 Oct 2015 07:28:02 GMT' },
    });
    const t0 = Date.now();
    const r = await send(agent, chatBody());
    assertServedBy(r, 'secondary', { attempts: 2 });
    const back = await primaryBackAfter(agent, t0, 10000);
    assert.ok(back !== undefined, 'the primary did not serve again within 10 s (date read against the local clock?)');
    assert.ok(back >= 1500, `the primary served again ${back} ms after a 429 asking for 2 s`);
  });

  it('request_timeout_ms bounds the whole request when every endpoint hangs', async () => {
    const { agent, primary, secondary } = await pair({
      agentKeys: { request_timeout_ms: 800 },
      primaryKeys: { timeout_ms: 5000 },
      secondaryKeys: { timeout_ms: 5000 },
    });
    primary.set({ mode: 'hang', match: CHAT });
    secondary.set({ mode: 'hang', match: CHAT });
    const r = await send(agent, chatBody(), { timeoutMs: 10000 });
    const what = `${r.status} ${JSON.stringify(r.headers)} ${r.body}`;
    assert.ok(r.status === 504 || r.status === 503, what);
    assertOpenAIError(assert, r);
    assert.ok(r.ms >= 700 && r.ms < 3000, `answered after ${r.ms} ms with request_timeout_ms 800: ${what}`);
  });

  it('every endpoint DOWN before the request: both tried anyway (panic routing), then 503 with Retry-After', async () => {
    const p1 = await reservedClosedPort();
    const p2 = await reservedClosedPort();
    const agent = await startAgent({
      ini: {
        probe: { interval_ms: 100, down_interval_ms: 5000, timeout_ms: 500, fall: 1, rise: 2 },
        endpoints: [
          { name: 'gone1', url: `http://127.0.0.1:${p1}/v1`, priority: 10 },
          { name: 'gone2', url: `http://127.0.0.1:${p2}/v1`, priority: 5 },
        ],
      },
    });
    cleanups.push(() => agent.stop());
    await agent.waitStatus((st) => st.endpoints.every((e) => e.state === 'DOWN'), 'both endpoints DOWN');
    const r = await send(agent, chatBody());
    const what = `${r.status} ${JSON.stringify(r.headers)} ${r.body}`;
    assert.equal(r.status, 503, what);
    assertOpenAIError(assert, r);
    // Nothing could serve, so the DOWN endpoints were tried (panic), each refused, up to max_attempts.
    assert.equal(r.attempts, 4, what);
    assert.match(String(r.headers['retry-after']), /^\d+$/, what);
    // The cooldown (down_interval_ms 5000) is what it waits for.
    assert.ok(Number(r.headers['retry-after']) >= 1 && Number(r.headers['retry-after']) <= 6, what);
  });

  it('POST /v1/embeddings is forwarded by the same rules (503 -> the secondary)', async () => {
    const { agent, primary, secondary } = await pair();
    primary.set({ mode: 'status', status: 503, match: '/embeddings' });
    const r = await send(agent, { model: 'test-model', input: 'hello' }, { path: '/v1/embeddings' });
    const what = `${r.status} ${JSON.stringify(r.headers)} ${r.body}`;
    assert.equal(r.status, 200, what);
    assert.equal(r.endpoint, 'secondary', what);
    assert.equal(r.attempts, 2, what);
    assert.deepEqual(r.json.data[0].embedding, [0.1, 0.2, 0.3], what);
    const seen = secondary.requests.filter((q) => q.method === 'POST');
    assert.equal(seen.length, 1);
    assert.equal(seen[0].path, '/v1/embeddings');
    assert.equal(seen[0].json.input, 'hello');
    assert.equal(primary.requests.filter((q) => q.method === 'POST' && q.path === '/v1/embeddings').length, 1);
  });
});
