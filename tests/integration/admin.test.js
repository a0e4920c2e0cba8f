'use strict';
// The local admin surface: /healthz, /readyz, /status, /metrics, /, unknown paths, and
// bad local requests (malformed request line, oversize head).
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  startAgent, endpointOf, FAST_PROBE, TEST_KEY, parseMetrics, metricSamples, version,
} = require('./lib/agent');
const { startUpstream } = require('./lib/fake_upstream');

const STATES = ['HEALTHY', 'DEGRADED', 'DOWN', 'RATE_LIMITED', 'UNRESOLVED'];  // UNRESOLVED: the host name has no address yet
const RESULTS = ['ok', 'timeout', 'connect', 'tls', 'http_status', 'bad_response'];

function assertOpenAiError(r, what) {
  assert.match(String(r.headers['content-type'] || ''), /^application\/json/, `${what}: content-type ${r.headers['content-type']}`);
  const j = r.json;
  assert.ok(j && typeof j === 'object' && j.error && typeof j.error === 'object', `${what}: not an OpenAI error body: ${r.body}`);
  assert.equal(typeof j.error.message, 'string', `${what}: error.message: ${r.body}`);
  assert.ok(j.error.message.length > 0, `${what}: empty error.message`);
  assert.equal(typeof j.error.type, 'string', `${what}: error.type: ${r.body}`);
  assert.ok('param' in j.error, `${what}: error.param missing: ${r.body}`);
  assert.ok('code' in j.error, `${what}: error.code missing: ${r.body}`);
}

// Splits a raw HTTP/1.1 response into { statusLine, status, headers, body, json }.
function parseRaw(text) {
  const end = text.indexOf('\r\n\r\n');
  const head = end >= 0 ? text.slice(0, end) : text;
  const body = end >= 0 ? text.slice(end + 4) : '';
  const lines = head.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] || '');
  const headers = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let json;
  try { json = JSON.parse(body); } catch (_) { json = undefined; }
  return { statusLine: lines[0], status: m ? Number(m[1]) : 0, headers, body, json };
}

describe('admin endpoints', () => {
  let up;
  let agent;

  before(async () => {
    up = await startUpstream({ name: 'a', models: ['m1'] });
    agent = await startAgent({ ini: { probe: FAST_PROBE, endpoints: [{ name: 'a', url: up.url, models: ['m1'], priority: 10 }] } });
    await agent.waitStatus((s) => endpointOf(s, 'a').probes_ok >= 1, '"a" with an ok probe');
  });

  after(async () => {
    if (agent) await agent.stop();
    if (up) await up.close();
  });

  it('GET /healthz is 200 {"status":"ok"}', async () => {
    const r = await agent.get('/healthz');
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(r.json, { status: 'ok' });
  });

  it('GET /readyz is 200 {"ready":true} with a healthy endpoint', async () => {
    const r = await agent.get('/readyz');
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json && r.json.ready, true, r.body);
  });

  it('GET /status has the documented shape', async () => {
    const r = await agent.get('/status');
    assert.equal(r.status, 200, r.body);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    const s = r.json;
    assert.ok(s, `not JSON: ${r.body}`);
    assert.equal(s.version, version());
    assert.ok(Number.isFinite(s.uptime_ms) && s.uptime_ms >= 0, `uptime_ms: ${s.uptime_ms}`);
    assert.equal(s.strategy, 'priority');
    assert.ok(Array.isArray(s.endpoints) && s.endpoints.length === 1, JSON.stringify(s.endpoints));
    const e = s.endpoints[0];
    const num = (k) => assert.ok(typeof e[k] === 'number' && Number.isFinite(e[k]) && e[k] >= 0, `${k}: ${JSON.stringify(e[k])}`);
    const int = (k) => assert.ok(Number.isInteger(e[k]) && e[k] >= 0, `${k}: ${JSON.stringify(e[k])}`);
    const numOrNull = (k) => assert.ok(e[k] === null || (typeof e[k] === 'number' && e[k] >= 0), `${k}: ${JSON.stringify(e[k])}`);
    assert.equal(e.name, 'a');
    assert.equal(e.url, up.url);
    assert.ok(STATES.includes(e.state), `state: ${e.state}`);
    assert.ok(['healthy', 'degraded', 'unhealthy'].includes(e.status), `status: ${e.status}`);
    num('score');
    assert.ok(e.score <= 100, `score: ${e.score}`);
    num('latency_ewma_ms');
    for (const k of ['consecutive_failures', 'consecutive_successes', 'probes_ok', 'probes_failed', 'requests', 'ejections']) int(k);
    numOrNull('last_success_ms_ago');
    numOrNull('last_failure_ms_ago');
    assert.ok(e.last_result === null || RESULTS.includes(e.last_result), `last_result: ${e.last_result}`);
    assert.equal(typeof e.last_error, 'string');
    assert.equal(e.key_bad, false);
    num('rate_limited_for_ms');
    // A fast endpoint that answered every probe.
    assert.equal(e.state, 'HEALTHY', JSON.stringify(e));
    assert.equal(e.status, 'healthy', JSON.stringify(e));
    assert.ok(e.score > 70, JSON.stringify(e));
    assert.equal(e.last_result, 'ok', JSON.stringify(e));
    assert.equal(typeof e.last_success_ms_ago, 'number', JSON.stringify(e));
    // No failure is expected of it, but a probe may time out on a loaded machine: then the
    // failure is reported with its age, and the endpoint stays HEALTHY (checked above).
    if (e.last_failure_ms_ago !== null) assert.ok(e.probes_failed >= 1, JSON.stringify(e));
    assert.ok(e.probes_ok >= 1, JSON.stringify(e));
    const m = s.metrics;
    assert.ok(m && typeof m === 'object', `metrics: ${JSON.stringify(m)}`);
    for (const k of ['total', 'success', 'failed', 'fallback_triggered', 'avg_latency_ms', 'success_rate']) {
      assert.ok(typeof m[k] === 'number' && Number.isFinite(m[k]), `metrics.${k}: ${JSON.stringify(m[k])}`);
    }
  });

  it('GET /metrics is Prometheus text with the endpoint gauges', async () => {
    const r = await agent.get('/metrics');
    assert.equal(r.status, 200, r.body);
    const ct = String(r.headers['content-type']);
    assert.match(ct, /^text\/plain/, ct);
    assert.match(ct, /version=0\.0\.4/, ct);
    const samples = parseMetrics(r.body);
    const unparsed = samples.filter((x) => x.name === null || !Number.isFinite(x.value));
    assert.deepEqual(unparsed.map((x) => x.line), [], 'lines that are not valid Prometheus samples');
    assert.match(r.body, /^edgeway_endpoint_up\{endpoint="a"\} 1$/m, r.body);
    for (const name of ['edgeway_endpoint_health_ratio', 'edgeway_endpoint_latency_ewma_seconds']) {
      const found = metricSamples(samples, name, { endpoint: 'a' });
      assert.equal(found.length, 1, `${name}{endpoint="a"}:\n${r.body}`);
    }
    assert.ok(metricSamples(samples, 'edgeway_endpoint_health_ratio', { endpoint: 'a' })[0].value > 0.7, r.body);
    assert.equal(metricSamples(samples, 'edgeway_build_info', { version: version() }).length, 1, r.body);
    for (const name of ['process_resident_memory_bytes', 'process_start_time_seconds', 'process_open_fds']) {
      const found = metricSamples(samples, name);
      assert.equal(found.length, 1, `${name}:\n${r.body}`);
      assert.ok(found[0].value > 0, found[0].line);
    }
    const start = metricSamples(samples, 'process_start_time_seconds')[0].value;
    assert.ok(Math.abs(start - Date.now() / 1000) < 600, `process_start_time_seconds ${start} is not about now`);
    const states = metricSamples(samples, 'edgeway_endpoint_state', { endpoint: 'a' });
    assert.deepEqual(states.map((x) => x.labels.state).sort(), [...STATES].sort(), `one state line per state:\n${r.body}`);
    for (const x of states) assert.equal(x.value, x.labels.state === 'HEALTHY' ? 1 : 0, x.line);
    const okProbes = metricSamples(samples, 'edgeway_probes_total', { endpoint: 'a', result: 'ok' });
    assert.equal(okProbes.length, 1, r.body);
    assert.ok(okProbes[0].value >= 1, okProbes[0].line);
  });

  it('GET / is a small HTML status page', async () => {
    const r = await agent.get('/');
    assert.equal(r.status, 200, r.body);
    assert.match(String(r.headers['content-type']), /^text\/html/);
    assert.match(r.body, /<html/i);
  });

  it('an unknown path is 404 with an OpenAI-shaped error', async () => {
    const r = await agent.get('/no/such/path');
    assert.equal(r.status, 404, r.body);
    assertOpenAiError(r, 'GET /no/such/path');
  });

  it('a malformed request line gets 400 and the agent keeps serving', async () => {
    const x = await agent.raw('GARBAGE\r\n\r\n');
    const r = parseRaw(x.data);
    assert.equal(r.status, 400, `answer to "GARBAGE": ${JSON.stringify(x)}`);
    assertOpenAiError(r, 'malformed request');
    const h = await agent.get('/healthz');
    assert.equal(h.status, 200, h.body);
  });

  it('a request head over 8 KB gets 431 and the agent keeps serving', async () => {
    const big = 'x'.repeat(9000);
    const x = await agent.raw(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Fill: ${big}\r\n\r\n`);
    const r = parseRaw(x.data);
    assert.equal(r.status, 431, `answer to a 9 KB header: ${JSON.stringify({ data: x.data.slice(0, 500), error: x.error })}`);
    assertOpenAiError(r, 'oversize head');
    const h = await agent.get('/healthz');
    assert.equal(h.status, 200, h.body);
  });

  it('the API key never shows in /status, /metrics, / or the logs', async () => {
    for (const p of ['/status', '/metrics', '/']) {
      const r = await agent.get(p);
      assert.ok(!r.body.includes(TEST_KEY), `${p} shows the API key`);
    }
    assert.ok(!agent.stderr.includes(TEST_KEY), 'stderr shows the API key');
    assert.ok(!agent.stdout.includes(TEST_KEY), 'stdout shows the API key');
  });

  it('SIGTERM stops the agent with exit code 0', async () => {
    const code = await agent.stop();
    assert.equal(code, 0, `exit ${code}\n${agent.stderr.slice(-2000)}`);
  });
});
