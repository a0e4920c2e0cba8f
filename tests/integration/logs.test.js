'use strict';
// The logs an operator reads after a failover run (the 80 s run, with intervals
// shortened 50x-150x): a dead endpoint probed every 200 ms logs only a handful of probe
// lines, every proxied request one access line with its id (the client's X-Request-Id, or
// one edgeway made, echoed as x-request-id), state changes both ways, every 5xx edgeway
// makes with why, and never an API key. Then the same as JSON lines (log_format = json).
const { describe, it, after } = require('node:test');
const assert = require('node:assert/strict');
const { startAgent, endpointOf, TEST_KEY, TEST_KEY_ENV, parseMetrics, metricSamples } = require('./lib/agent');
const { startUpstream, reservedClosedPort } = require('./lib/fake_upstream');
const { send, chatBody } = require('./lib/proxy_client');

const PROBE = { interval_ms: 200, down_interval_ms: 200, timeout_ms: 500, fall: 2, rise: 2, cooldown_max_ms: 400 };
const RUN_MS = 8000;      // the run: 40 probe intervals
const MAX_REQUESTS = 60;  // and at most this many requests

function accessLines(text) {
  return text.split('\n').filter((l) => / info access /.test(l));
}

async function scenario({ logFormat } = {}) {
  const live = await startUpstream({ name: 'live', models: ['m1'] });
  const deadPort = await reservedClosedPort();
  const agent = await startAgent({
    ini: {
      agent: logFormat ? { log_format: logFormat } : undefined,
      probe: PROBE,
      endpoints: [
        { name: 'dead', url: `http://127.0.0.1:${deadPort}/v1`, models: ['m1'], priority: 10, api_key_env: TEST_KEY_ENV },
        { name: 'live', url: live.url, models: ['m1'], priority: 0, api_key_env: TEST_KEY_ENV },
      ],
    },
  });
  const sent = [];
  const start = Date.now();
  for (let i = 0; Date.now() - start < RUN_MS && i < MAX_REQUESTS; i++) {
    const headers = i % 2 === 0 ? { 'X-Request-Id': `client-req-${i}` } : {};
    if (i === 3) headers['X-Request-Id'] = 'bad id with spaces';  // not valid: edgeway makes one
    const r = await send(agent, chatBody('m1'), { headers });
    assert.equal(r.status, 200, r.body);
    sent.push({ given: headers['X-Request-Id'], echoed: r.headers['x-request-id'] });
    await new Promise((res) => setTimeout(res, 100));
  }
  // One request nothing can serve: a 5xx edgeway makes itself, logged with why.
  live.set({ mode: 'status', status: 500 });
  const fail = await send(agent, chatBody('m1'), { headers: { 'X-Request-Id': 'the-failing-one' } });
  assert.equal(fail.status, 503, fail.body);
  // A flap of the live endpoint both ways: DOWN on 500s, back on good probes.
  await agent.waitStatus((s) => endpointOf(s, 'live').state === 'DOWN', 'live DOWN');
  live.set({ mode: 'ok' });
  await agent.waitStatus((s) => endpointOf(s, 'live').state === 'HEALTHY', 'live back', 15000);
  const m = parseMetrics((await agent.get('/metrics')).body);
  const deadProbes = metricSamples(m, 'edgeway_probes_total', { endpoint: 'dead' }).reduce((a, s) => a + s.value, 0);
  await agent.stop();
  await live.close();
  return { log: agent.stderr, sent, deadProbes };
}

describe('logs of a failover run', () => {
  const cleanups = [];
  after(async () => { for (const c of cleanups) await c(); });

  it('text: a handful of probe lines for the dead endpoint, one access line per request, ids echoed', async (t) => {
    const { log, sent, deadProbes } = await scenario();
    const lines = log.split('\n').filter(Boolean);
    const probeLines = lines.filter((l) => /probe endpoint=dead /.test(l) && / info /.test(l));
    assert.ok(deadProbes >= 20, `the dead endpoint was probed ${deadProbes} times`);
    assert.ok(probeLines.length >= 1 && probeLines.length <= 4,
      `${probeLines.length} probe lines for ${deadProbes} probes of the dead endpoint:\n${probeLines.join('\n')}`);
    const access = accessLines(log);
    assert.equal(access.length, sent.length + 1, `access lines:\n${access.join('\n')}`);
    t.diagnostic(`${lines.length} log lines: ${probeLines.length} probe lines for ${deadProbes} probes of the dead endpoint, ` +
      `${access.length} access lines for ${sent.length + 1} requests`);
    for (const [i, s] of sent.entries()) {
      if (s.given && !/\s/.test(s.given)) assert.equal(s.echoed, s.given);
      else assert.match(s.echoed, /^[0-9a-f]{16}$/, `request ${i}: made id`);
      const line = access.find((l) => l.includes(` id=${s.echoed} `));
      assert.ok(line, `no access line with id=${s.echoed}`);
      assert.match(line, /method=POST path=\/v1\/chat\/completions model=m1 served_model=m1 endpoint=(live|dead) status=200 attempts=\d+ duration_ms=\d+ ttft_ms=-/, line);
    }
    assert.ok(!log.includes('bad id with spaces'), 'an invalid client id went into the log');
    const failed = access.find((l) => l.includes('id=the-failing-one '));
    assert.match(failed, /endpoint=edgeway status=503/, failed);
    assert.ok(lines.some((l) => / warn request failed model=m1 .*status=503 error="/.test(l)), 'the 503 is logged with why');
    assert.ok(lines.some((l) => /endpoint=live state \S+ -> DOWN/.test(l)), 'the way down');
    assert.ok(lines.some((l) => /endpoint=live state DOWN -> HEALTHY/.test(l) || /endpoint=live state DOWN -> DEGRADED/.test(l)), `the way back:\n${lines.filter((l) => /state/.test(l)).join('\n')}`);
    assert.ok(!log.includes(TEST_KEY), 'an API key appears in the log');
    for (const l of lines) assert.match(l, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warn|info|debug) /, l);
  });

  it('json: the same events as one JSON object per line', async () => {
    const { log, sent } = await scenario({ logFormat: 'json' });
    const lines = log.split('\n').filter(Boolean);
    const parsed = lines.map((l) => { try { return JSON.parse(l); } catch (e) { assert.fail(`not JSON: ${l}`); return null; } });
    const access = parsed.filter((j) => j.msg === 'access');
    assert.equal(access.length, sent.length + 1);
    for (const j of access) {
      assert.equal(typeof j.time, 'string');
      assert.equal(j.level, 'info');
      assert.equal(j.method, 'POST');
      assert.equal(typeof j.status, 'number');
      assert.equal(typeof j.duration_ms, 'number');
    }
    assert.ok(parsed.some((j) => j.msg === 'request failed' && j.status === 503 && j.error), 'the 503 with why');
    assert.ok(!log.includes(TEST_KEY));
  });
});
