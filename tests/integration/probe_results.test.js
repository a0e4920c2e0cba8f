'use strict';
// How each kind of upstream behaviour is classified by the probes (kind = models), as
// shown in /status and counted in /metrics. One agent probes eight fake upstreams.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  startAgent, endpointOf, FAST_PROBE, TEST_KEY, parseMetrics, metricSamples,
} = require('./lib/agent');
const { startUpstream, reservedClosedPort } = require('./lib/fake_upstream');

const SLOW_MS = 300; // below probe.timeout_ms (500)
const RESULTS = ['ok', 'timeout', 'connect', 'tls', 'http_status', 'bad_response'];

describe('probe results', () => {
  const ups = {};
  let agent;

  before(async () => {
    const plan = {
      ok: { mode: 'ok' },
      slow: { mode: 'slow', delayMs: SLOW_MS },
      s500: { mode: 'status', status: 500 },
      s429: { mode: 'status', status: 429, headers: { 'Retry-After': '2' } },
      hang: { mode: 'hang' },
      reset: { mode: 'reset' },
      garbage: { mode: 'garbage' },
    };
    for (const [name, b] of Object.entries(plan)) {
      ups[name] = await startUpstream({ name });
      ups[name].set(b);
    }
    const refusedPort = await reservedClosedPort();
    const endpoints = Object.keys(plan).map((name) => ({ name, url: ups[name].url }));
    endpoints.push({ name: 'refused', url: `http://127.0.0.1:${refusedPort}/v1` });
    agent = await startAgent({ ini: { probe: FAST_PROBE, endpoints } });
  });

  after(async () => {
    if (agent) await agent.stop();
    await Promise.all(Object.values(ups).map((u) => u.close()));
  });

  const ep = (s, name) => endpointOf(s, name);

  it('ok: HEALTHY, last_result ok, GET /v1/models with the bearer key', async () => {
    const s = await agent.waitStatus((st) => ep(st, 'ok').probes_ok >= 2 && ep(st, 'ok').state === 'HEALTHY', '"ok" with 2 ok probes');
    const e = ep(s, 'ok');
    assert.equal(e.last_result, 'ok', JSON.stringify(e));
    assert.equal(e.consecutive_failures, 0, JSON.stringify(e));
    assert.equal(e.probes_failed, 0, JSON.stringify(e));
    assert.equal(typeof e.last_success_ms_ago, 'number', JSON.stringify(e));
    assert.equal(e.last_failure_ms_ago, null, JSON.stringify(e));
    assert.ok(Number.isFinite(e.latency_ewma_ms) && e.latency_ewma_ms >= 0, JSON.stringify(e));
    const reqs = ups.ok.requests;
    assert.ok(reqs.length >= 2, `upstream saw ${reqs.length} requests`);
    for (const q of reqs) {
      assert.equal(`${q.method} ${q.path}`, 'GET /v1/models', 'a models probe is GET {base}/models');
      assert.equal(q.headers.authorization, `Bearer ${TEST_KEY}`);
      assert.equal(q.headers.host, `127.0.0.1:${ups.ok.port}`);
    }
  });

  it(`slow (${SLOW_MS} ms): ok, and the latency EWMA shows the delay`, async () => {
    const s = await agent.waitStatus((st) => ep(st, 'slow').probes_ok >= 3, '"slow" with 3 ok probes');
    const e = ep(s, 'slow');
    assert.equal(e.last_result, 'ok', JSON.stringify(e));
    assert.equal(e.state, 'HEALTHY', JSON.stringify(e));
    assert.ok(e.latency_ewma_ms >= SLOW_MS, `latency_ewma_ms ${e.latency_ewma_ms} < ${SLOW_MS}: ${JSON.stringify(e)}`);
    assert.ok(e.latency_ewma_ms > ep(s, 'ok').latency_ewma_ms, 'slow must have a higher EWMA than ok');
  });

  it('500: http_status, last_error names 500, DOWN', async () => {
    const s = await agent.waitStatus((st) => ep(st, 's500').state === 'DOWN', '"s500" DOWN');
    const e = ep(s, 's500');
    assert.equal(e.last_result, 'http_status', JSON.stringify(e));
    assert.match(e.last_error, /500/, JSON.stringify(e));
    assert.equal(e.probes_ok, 0, JSON.stringify(e));
    assert.ok(e.probes_failed >= FAST_PROBE.fall, JSON.stringify(e));
  });

  it('429 with Retry-After: 2: RATE_LIMITED, not counted as a failure; back to HEALTHY after', async () => {
    const seen = [];
    const s = await agent.waitStatus((st) => {
      const e = ep(st, 's429');
      seen.push(e);
      // Watch it for at least 2 x fall probes: it must never fail or go DOWN.
      return e.state === 'RATE_LIMITED' && ups.s429.requests.length >= 2 * FAST_PROBE.fall;
    }, '"s429" RATE_LIMITED after several 429 probes', 20000);
    const bad = seen.filter((e) => e.consecutive_failures !== 0 || e.state === 'DOWN');
    assert.deepEqual(bad, [], 'a 429 must not count as a health failure');
    const e = ep(s, 's429');
    assert.ok(e.rate_limited_for_ms > 0 && e.rate_limited_for_ms <= 2000,
      `rate_limited_for_ms should be in (0, 2000]: ${JSON.stringify(e)}`);
    assert.equal(e.ejections, 0, JSON.stringify(e));

    const m = await agent.get('/metrics');
    const samples = parseMetrics(m.body);
    const state = metricSamples(samples, 'edgeway_endpoint_state', { endpoint: 's429', state: 'RATE_LIMITED' });
    assert.equal(state.length, 1, `no edgeway_endpoint_state{endpoint="s429",state="RATE_LIMITED"}:\n${m.body}`);
    assert.equal(state[0].value, 1, state[0].line);

    ups.s429.set({ mode: 'ok' });
    const s2 = await agent.waitStatus((st) => ep(st, 's429').state === 'HEALTHY' && ep(st, 's429').last_result === 'ok',
      '"s429" HEALTHY after the rate limit ended and the upstream answers 200');
    assert.equal(ep(s2, 's429').rate_limited_for_ms, 0, JSON.stringify(ep(s2, 's429')));
  });

  it('hang: timeout, DOWN', async () => {
    const s = await agent.waitStatus((st) => ep(st, 'hang').state === 'DOWN', '"hang" DOWN');
    const e = ep(s, 'hang');
    assert.equal(e.last_result, 'timeout', JSON.stringify(e));
    assert.equal(e.probes_ok, 0, JSON.stringify(e));
  });

  it('reset: connect or bad_response, never ok', async () => {
    const s = await agent.waitStatus((st) => ep(st, 'reset').probes_failed >= FAST_PROBE.fall, '"reset" with failed probes');
    const e = ep(s, 'reset');
    assert.ok(['connect', 'bad_response'].includes(e.last_result), JSON.stringify(e));
    assert.equal(e.probes_ok, 0, JSON.stringify(e));
    await agent.waitStatus((st) => ep(st, 'reset').state === 'DOWN', '"reset" DOWN');
  });

  it('garbage: bad_response, never ok', async () => {
    const s = await agent.waitStatus((st) => ep(st, 'garbage').probes_failed >= FAST_PROBE.fall, '"garbage" with failed probes');
    const e = ep(s, 'garbage');
    assert.equal(e.last_result, 'bad_response', JSON.stringify(e));
    assert.equal(e.probes_ok, 0, JSON.stringify(e));
    await agent.waitStatus((st) => ep(st, 'garbage').state === 'DOWN', '"garbage" DOWN');
  });

  it('refused: connect, DOWN', async () => {
    const s = await agent.waitStatus((st) => ep(st, 'refused').state === 'DOWN', '"refused" DOWN');
    const e = ep(s, 'refused');
    assert.equal(e.last_result, 'connect', JSON.stringify(e));
    assert.equal(e.probes_ok, 0, JSON.stringify(e));
  });

  it('/metrics counts every probe result per endpoint', async () => {
    const want = {
      ok: ['ok'],
      slow: ['ok'],
      s500: ['http_status'],
      hang: ['timeout'],
      reset: ['connect', 'bad_response'],
      garbage: ['bad_response'],
      refused: ['connect'],
    };
    const m = await agent.get('/metrics');
    assert.equal(m.status, 200, m.body);
    const samples = parseMetrics(m.body);
    const probes = metricSamples(samples, 'edgeway_probes_total');
    for (const s of probes) assert.ok(RESULTS.includes(s.labels.result), `unknown result label: ${s.line}`);
    for (const [name, results] of Object.entries(want)) {
      const mine = probes.filter((s) => s.labels.endpoint === name);
      const total = mine.filter((s) => results.includes(s.labels.result)).reduce((a, s) => a + s.value, 0);
      assert.ok(total >= 1, `want edgeway_probes_total{endpoint="${name}",result=${results.join('|')}} >= 1, got:\n` +
        `${mine.map((s) => s.line).join('\n') || '(no lines)'}\n--- /metrics ---\n${m.body}`);
      if (!results.includes('ok')) {
        const ok = mine.filter((s) => s.labels.result === 'ok').reduce((a, s) => a + s.value, 0);
        assert.equal(ok, 0, `"${name}" never answers well, yet has ok probes counted`);
      }
    }
  });

  it('the API key never shows in /status, /metrics or the logs', async () => {
    for (const p of ['/status', '/metrics', '/']) {
      const r = await agent.get(p);
      assert.ok(!r.body.includes(TEST_KEY), `${p} shows the API key`);
    }
    assert.ok(!agent.stderr.includes(TEST_KEY) && !agent.stdout.includes(TEST_KEY), 'the logs show the API key');
  });
});
