'use strict';
// Upstream errors read for their meaning (issue 13, item 4), through the running agent
// against fake upstreams: a 429 insufficient_quota exhausts the key (a long cooldown shown
// in /status, the status page and /metrics) and fails over; a 400 context_length_exceeded
// moves to the [context_fallback] model, or reaches the client as the upstream sent it; a
// 404 model_not_found marks (endpoint, model) unavailable and fails over, or reaches the
// client as sent when no other endpoint can serve.
const { describe, it, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { endpointOf, parseMetrics, metricValue, runCli, iniFor, tmpDir } = require('./lib/agent');
const { openaiError } = require('./lib/fake_upstream');
const { testScope, chatBody, send, chatReqs } = require('./lib/proxy_client');
const fs = require('node:fs');
const path = require('node:path');

const CHAT = '/chat/completions';
const { run: runCleanups, upstream, agentWith } = testScope();
afterEach(runCleanups);

// The bodies as the upstreams send them (strings: the client must get these exact bytes).
const QUOTA = JSON.stringify(openaiError('You exceeded your current quota, please check your plan and billing details.',
  'insufficient_quota', 'insufficient_quota'));
const CONTEXT = JSON.stringify(openaiError(
  "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
  'invalid_request_error', 'context_length_exceeded'));
function notFound(who) {
  return JSON.stringify(openaiError(`${who}: the model \`test-model\` does not exist or you do not have access to it.`,
    'invalid_request_error', 'model_not_found'));
}

async function pair() {
  const primary = await upstream({ name: 'primary' });
  const secondary = await upstream({ name: 'secondary' });
  const agent = await agentWith({
    endpoints: [
      { name: 'primary', url: primary.url, priority: 10 },
      { name: 'secondary', url: secondary.url, priority: 5 },
    ],
  });
  return { agent, primary, secondary };
}

function what(r) {
  return `${r.status} endpoint=${r.endpoint} model=${r.model} attempts=${r.attempts} body=${r.body.slice(0, 300)}`;
}

describe('upstream errors read for their meaning', () => {
  it('429 insufficient_quota: the key is exhausted for an hour (not a rate limit), shown as such; the request fails over', async () => {
    const { agent, primary, secondary } = await pair();
    primary.set({ mode: 'status', status: 429, body: QUOTA, headers: { 'Retry-After': '1' }, match: CHAT });
    const r = await send(agent, chatBody());
    assert.equal(r.status, 200, what(r));
    assert.equal(r.endpoint, 'secondary', what(r));
    assert.equal(r.attempts, 2, what(r));

    const s = await agent.status();
    const p = endpointOf(s, 'primary');
    assert.equal(p.key_exhausted, true, JSON.stringify(p));
    assert.ok(p.key_exhausted_for_ms > 3500000 && p.key_exhausted_for_ms <= 3600000, JSON.stringify(p));
    assert.notEqual(p.state, 'RATE_LIMITED', JSON.stringify(p));
    assert.equal(p.rate_limited_for_ms, 0, JSON.stringify(p));
    assert.deepEqual(p.rate_limited_models, {}, 'not the 1 s rate limit the Retry-After asked for');
    assert.match(p.last_error, /insufficient_quota/, JSON.stringify(p));
    assert.equal(endpointOf(s, 'secondary').key_exhausted, false);

    const page = await agent.get('/');
    assert.match(page.body, /API key out of quota/, 'the status page says the key is out of quota');
    const m = parseMetrics((await agent.get('/metrics')).body);
    assert.equal(metricValue(m, 'edgeway_endpoint_key_exhausted', { endpoint: 'primary' }), 1);
    assert.equal(metricValue(m, 'edgeway_endpoint_key_exhausted', { endpoint: 'secondary' }), 0);
    assert.equal(metricValue(m, 'edgeway_failovers_total', { endpoint: 'primary', reason: 'insufficient_quota' }), 1);

    // Later requests are not sent to the exhausted key (past the 1 s a rate limit would last).
    const before = chatReqs(primary).length;
    const lastAt = chatReqs(primary)[before - 1].at;
    await agent.waitFor(async () => ({ ok: Date.now() - lastAt > 1200 }), 'the 1 s Retry-After to pass', 10000);
    const again = await send(agent, chatBody());
    assert.equal(again.endpoint, 'secondary', what(again));
    assert.equal(again.attempts, 1, what(again));
    assert.equal(chatReqs(primary).length, before, 'the exhausted key was not tried again');

    // Every key out of quota: 429 insufficient_quota, and the SDKs are told not to retry.
    secondary.set({ mode: 'status', status: 429, body: QUOTA, match: CHAT });
    const none = await send(agent, chatBody());
    assert.equal(none.status, 429, what(none));
    assert.equal(none.json.error.code, 'insufficient_quota', what(none));
    assert.equal(none.headers['x-should-retry'], 'false');
    assert.ok(Number(none.headers['retry-after']) > 3000, `Retry-After ${none.headers['retry-after']}`);
    assert.equal(chatReqs(primary).length, before);
  });

  it('400 context_length_exceeded: retried on the [context_fallback] model; the upstream saw both', async () => {
    const up = await upstream({ name: 'one', models: ['small', 'big'] });
    const backup = await upstream({ name: 'two', models: ['big'] });
    const agent = await agentWith({
      endpoints: [
        { name: 'one', url: up.url, models: ['small', 'big'], priority: 10 },
        { name: 'two', url: backup.url, models: ['big'], priority: 5 },
      ],
      context_fallback: { small: 'big' },
    });
    up.set({ mode: 'status', status: 400, body: CONTEXT, matchModel: 'small' });
    const r = await send(agent, chatBody('small'));
    assert.equal(r.status, 200, what(r));
    assert.equal(r.endpoint, 'one', what(r));
    assert.equal(r.model, 'big', what(r));
    assert.equal(r.attempts, 2, what(r));
    assert.deepEqual(chatReqs(up).map((q) => q.model), ['small', 'big']);
    assert.equal(chatReqs(backup).length, 0);
    const p = endpointOf(await agent.status(), 'one');
    assert.equal(p.consecutive_failures, 0, 'a context error is not a failure of the endpoint');

    // The larger model failing too: the client gets the upstream's 400, byte for byte.
    up.set({ mode: 'status', status: 400, body: CONTEXT, match: CHAT });
    backup.set({ mode: 'status', status: 400, body: CONTEXT, match: CHAT });
    const bad = await send(agent, chatBody('small'));
    assert.equal(bad.status, 400, what(bad));
    assert.equal(bad.body, CONTEXT);
    assert.match(bad.headers['content-type'], /^application\/json/);
    assert.equal(bad.model, 'big', 'the newest 400: the larger model said it too, and has no rule of its own');
    assert.equal(bad.attempts, 2, what(bad));
  });

  it('400 context_length_exceeded without a [context_fallback] rule: the 400 as the upstream sent it, one attempt', async () => {
    const { agent, primary, secondary } = await pair();
    primary.set({ mode: 'status', status: 400, body: CONTEXT, headers: { 'x-request-id': 'req_ctx_1' }, match: CHAT });
    const r = await send(agent, chatBody());
    assert.equal(r.status, 400, what(r));
    assert.equal(r.body, CONTEXT);
    assert.equal(r.endpoint, 'primary');
    assert.equal(r.attempts, 1);
    assert.ok(JSON.stringify(r.headers).includes('req_ctx_1'), 'the upstream request id is relayed as it is today');
    assert.equal(chatReqs(secondary).length, 0);
  });

  it('404 model_not_found from one endpoint: (endpoint, model) unavailable for a while, the other endpoint serves', async () => {
    const { agent, primary, secondary } = await pair();
    primary.set({ mode: 'status', status: 404, body: notFound('primary'), match: CHAT });
    const r = await send(agent, chatBody());
    assert.equal(r.status, 200, what(r));
    assert.equal(r.endpoint, 'secondary', what(r));
    assert.equal(r.attempts, 2, what(r));
    const p = endpointOf(await agent.status(), 'primary');
    assert.ok(p.unavailable_models['test-model'] > 250000 && p.unavailable_models['test-model'] <= 300000,
      JSON.stringify(p));
    assert.equal(p.consecutive_failures, 0, JSON.stringify(p));
    const m = parseMetrics((await agent.get('/metrics')).body);
    assert.equal(metricValue(m, 'edgeway_failovers_total', { endpoint: 'primary', reason: 'model_not_found' }), 1);

    const again = await send(agent, chatBody());
    assert.equal(again.endpoint, 'secondary', what(again));
    assert.equal(again.attempts, 1, 'the endpoint without the model is not asked again');
    assert.equal(chatReqs(primary).length, 1);
  });

  it('404 model_not_found where no other endpoint can serve: the app gets the upstream 404 as sent', async () => {
    const { agent, primary, secondary } = await pair();
    primary.set({ mode: 'status', status: 404, body: notFound('primary'), match: CHAT });
    secondary.set({ mode: 'status', status: 503, match: CHAT });
    const r = await send(agent, chatBody());
    assert.equal(r.status, 404, what(r));
    assert.equal(r.body, notFound('primary'));
    assert.equal(r.endpoint, 'primary', what(r));
    assert.match(r.headers['content-type'], /^application\/json/);
  });

  it('an unknown error shape keeps the status-code rules: a 404 without model_not_found is relayed at once', async () => {
    const { agent, primary, secondary } = await pair();
    const vllm = '{"object":"error","message":"The model `test-model` does not exist.","type":"NotFoundError","param":null,"code":404}';
    primary.set({ mode: 'status', status: 404, body: vllm, match: CHAT });
    const r = await send(agent, chatBody());
    assert.equal(r.status, 404, what(r));
    assert.equal(r.body, vllm);
    assert.equal(r.attempts, 1);
    assert.equal(chatReqs(secondary).length, 0);
  });

  it('--print-config shows [context_fallback]; --check-config names FILE:LINE for a model no endpoint serves', () => {
    const dir = tmpDir('ew-ctx-');
    const good = path.join(dir, 'good.ini');
    fs.writeFileSync(good, iniFor({
      endpoints: [{ name: 'a', url: 'http://127.0.0.1:9/v1', models: ['small', 'big'] }],
      context_fallback: { small: 'big' },
    }));
    const p = runCli(['--print-config', good]);
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /\n\[context_fallback\]\nsmall = big\n/, p.stdout);
    const bad = path.join(dir, 'bad.ini');
    const text = iniFor({ endpoints: [{ name: 'a', url: 'http://127.0.0.1:9/v1', models: ['small'] }],
      context_fallback: { small: 'huge' } });
    fs.writeFileSync(bad, text);
    const line = text.split('\n').indexOf('small = huge') + 1;
    const c = runCli(['--check-config', bad]);
    assert.equal(c.code, 2, c.stderr);
    assert.ok(c.stderr.includes(`bad.ini:${line}: context_fallback.small: no endpoint serves "huge"`), c.stderr);
  });
});
