'use strict';
// A real Prometheus 2.42 (Debian's package) scraping edgeway every second, as an operator
// would run it: promtool finds nothing to lint in /metrics, and the three queries
// give sensible answers through Prometheus' HTTP API:
//   sum by (endpoint)(rate(edgeway_requests_total[1m]))
//   histogram_quantile(0.95, sum by (le, endpoint)(rate(edgeway_time_to_first_token_seconds_bucket[1m])))
//   a requested -> served fallback count: sum(edgeway_requests_total{requested_model="big",model="small"})
// Prometheus listens on 127.0.0.1 only, keeps its data in its own temp dir, and is stopped
// at the end; the traffic is bounded in count and time.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { startAgent, endpointOf, tmpDir, freePort, httpRequest, tail } = require('./lib/agent');
const { startUpstream } = require('./lib/fake_upstream');
const { send, streamChat, chatBody } = require('./lib/proxy_client');

const PROMETHEUS = process.env.PROMETHEUS || '/usr/bin/prometheus';
const PROMTOOL = process.env.PROMTOOL || '/usr/bin/promtool';
const PROBE = { interval_ms: 500, down_interval_ms: 500, timeout_ms: 1000, fall: 3, rise: 2 };

async function until(what, fn, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last.ok) return last.value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms; last: ${JSON.stringify(last.value)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

describe('Prometheus scraping edgeway', () => {
  let primary;
  let backup;
  let agent;
  let prom;
  let promPort;
  let promLog = '';
  let dir;
  let fallbacks = 0;
  let requests = 0;

  async function query(q) {
    const r = await httpRequest({ port: promPort, path: `/api/v1/query?query=${encodeURIComponent(q)}`, timeoutMs: 5000 });
    assert.equal(r.status, 200, `${q}: ${r.body}`);
    const j = JSON.parse(r.body);
    assert.equal(j.status, 'success', r.body);
    return j.data.result.map((s) => ({ labels: s.metric, value: Number(s.value[1]) }));
  }

  before(async () => {
    assert.ok(fs.existsSync(PROMETHEUS) && fs.existsSync(PROMTOOL),
      'prometheus and promtool are missing: apt-get install prometheus (scripts/install-deps.sh --test)');
    primary = await startUpstream({ name: 'primary', models: ['big'] });
    backup = await startUpstream({ name: 'backup', models: ['small'] });
    primary.set({ mode: 'ok', chunkDelayMs: 20, delayMs: 30 });
    agent = await startAgent({
      ini: {
        probe: PROBE,
        endpoints: [
          { name: 'primary', url: primary.url, models: ['big'], priority: 10 },
          { name: 'backup', url: backup.url, models: ['small'], priority: 0 },
        ],
        fallback: { big: 'small' },
      },
    });
    await agent.waitStatus((s) => endpointOf(s, 'primary').probes_ok >= 1 && endpointOf(s, 'backup').probes_ok >= 1,
      'both endpoints probed');

    dir = tmpDir('edgeway-prometheus-');
    promPort = await freePort();
    fs.writeFileSync(path.join(dir, 'prometheus.yml'), [
      'global:', '  scrape_interval: 1s', '  evaluation_interval: 1s',
      'scrape_configs:', '  - job_name: edgeway', '    static_configs:', `      - targets: ['127.0.0.1:${agent.port}']`, '',
    ].join('\n'));
    prom = spawn(PROMETHEUS, [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`, '--storage.tsdb.retention.time=1h', '--log.level=warn'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
    prom.stdout.on('data', (c) => { promLog += c; });
    prom.stderr.on('data', (c) => { promLog += c; });
    await until('Prometheus ready', async () => {
      try {
        const r = await httpRequest({ port: promPort, path: '/-/ready', timeoutMs: 1000 });
        return { ok: r.status === 200, value: r.status };
      } catch (e) { return { ok: false, value: e.message }; }
    }, 30000);
  });

  after(async () => {
    if (prom && prom.exitCode === null) {
      prom.kill('SIGTERM');
      await new Promise((r) => { const t = setTimeout(() => { prom.kill('SIGKILL'); r(); }, 10000); prom.on('exit', () => { clearTimeout(t); r(); }); });
    }
    if (agent) await agent.stop();
    for (const up of [primary, backup]) if (up) await up.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('promtool check metrics prints nothing', async () => {
    // Traffic first, so that every family (histograms, failovers, edgeway's own answers) is there.
    await streamChat(agent, chatBody('big', { stream: true }));
    primary.set({ mode: 'status', status: 500, times: 1 });
    const r = await send(agent, chatBody('big'));
    assert.equal(r.status, 200, r.body);
    await send(agent, chatBody('nope'));  // 404, edgeway's own
    const m = await agent.get('/metrics');
    assert.equal(m.status, 200);
    const lint = spawnSync(PROMTOOL, ['check', 'metrics'], { input: m.body, encoding: 'utf8' });
    assert.equal(`${lint.stdout}${lint.stderr}`, '', 'promtool output');
    assert.equal(lint.status, 0);
  });

  it('the three queries answer from steady traffic with a fallback', async (t) => {
    // About 12 s of traffic, 3 streams a second (bounded: 40 requests, 30 s).
    const until_ = Date.now() + 30000;
    for (let i = 0; i < 40 && Date.now() < until_; i++) {
      if (i % 10 === 5) primary.set({ mode: 'status', status: 503, times: 1, chunkDelayMs: 20, delayMs: 30 });
      const s = await streamChat(agent, chatBody('big', { stream: true }));
      assert.equal(s.status, 200, JSON.stringify(s));
      requests++;
      if (s.headers['x-edgeway-model'] === 'small') fallbacks++;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(fallbacks >= 3, `fallbacks seen by the client: ${fallbacks}`);

    const rates = await until('rate of requests by endpoint', async () => {
      const v = await query('sum by (endpoint)(rate(edgeway_requests_total[1m]))');
      const by = Object.fromEntries(v.map((s) => [s.labels.endpoint, s.value]));
      return { ok: by.primary > 0 && by.backup > 0, value: by };
    }, 30000);
    // ~3 requests/s at most; rate() over a minute with ~15 s of traffic is smaller.
    assert.ok(rates.primary < 10 && rates.backup < 10, JSON.stringify(rates));

    const p95 = await until('p95 time to first token', async () => {
      const v = await query('histogram_quantile(0.95, sum by (le, endpoint)(rate(edgeway_time_to_first_token_seconds_bucket[1m])))');
      const by = Object.fromEntries(v.map((s) => [s.labels.endpoint, s.value]));
      return { ok: Number.isFinite(by.primary) && by.primary > 0, value: by };
    }, 30000);
    // The fake answers its head after 30 ms and the first event soon after: well under 1 s.
    assert.ok(p95.primary <= 1, `p95 ${p95.primary}`);

    const fb = await until('requested big, served small', async () => {
      const v = await query('sum(edgeway_requests_total{requested_model="big",model="small"})');
      const n = v.length ? v[0].value : 0;
      return { ok: n >= fallbacks + 1, value: n };  // +1: the fallback of the promtool case
    }, 30000);
    assert.equal(fb, fallbacks + 1);
    t.diagnostic(`requests ${requests}, fallbacks ${fallbacks}; rate by endpoint ${JSON.stringify(rates)}; ` +
      `p95 TTFT by endpoint ${JSON.stringify(p95)}; requested big -> served small ${fb}`);
    assert.ok(!/level=error/.test(promLog), tail(promLog));
  });
});
