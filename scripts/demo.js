#!/usr/bin/env node
'use strict';
// edgeway demo: no API key, no network. Starts three local OpenAI-compatible demo
// upstreams and edgeway in front of them, then lets you watch health and failover:
//   primary  serves gpt-4.1, priority 10    healthy, then fails for a while, then recovers
//   backup   serves gpt-4o-mini, priority 5 healthy ([fallback] gpt-4.1 = gpt-4o-mini)
//   broken   nothing listens there           goes DOWN after `fall` probes
// A client sends a request every 250 ms throughout; every answer is printed with the
// endpoint and model that served it.
// Usage: node scripts/demo.js [path/to/edgeway] [seconds]
const path = require('node:path');
const { startUpstream, reservedClosedPort } = require('../tests/integration/lib/fake_upstream.js');
const { startAgent } = require('../tests/integration/lib/agent.js');

const bin = process.argv[2] || path.join(__dirname, '..', 'build', 'edgeway');
const seconds = Number(process.argv[3] || 24);
process.env.EDGEWAY_BIN = path.resolve(bin);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pad = (s, n) => String(s).padEnd(n);

function table(st) {
  const rows = st.endpoints.map((e) => `  ${pad(e.name, 8)} ${pad(e.state, 13)} score ${pad(e.score.toFixed(1), 6)}` +
    ` latency ${pad(e.latency_ewma_ms.toFixed(1) + ' ms', 10)} failures ${pad(e.consecutive_failures, 3)} ${e.last_error}`);
  return rows.join('\n');
}

(async () => {
  const primary = await startUpstream({ name: 'primary', models: ['gpt-4.1'] });
  const backup = await startUpstream({ name: 'backup', models: ['gpt-4o-mini'] });
  const deadPort = await reservedClosedPort();
  const agent = await startAgent({
    ini: {
      agent: { log_level: 'warn', request_timeout_ms: 5000, max_attempts: 3 },
      probe: { kind: 'models', interval_ms: 1000, down_interval_ms: 500, timeout_ms: 500, fall: 2, rise: 2 },
      endpoints: [
        { name: 'primary', url: primary.url, models: ['gpt-4.1'], priority: 10 },
        { name: 'backup', url: backup.url, models: ['gpt-4o-mini'], priority: 5 },
        { name: 'broken', url: `http://127.0.0.1:${deadPort}/v1`, models: ['gpt-4.1'], priority: 1 },
      ],
      fallback: { 'gpt-4.1': ['gpt-4o-mini'] },
    },
  });
  console.log(`edgeway is up on ${agent.url} (OpenAI API at ${agent.url}/v1) - status page: ${agent.url}/\n`);

  let sent = 0, answered = 0, failed = 0;
  const by = {};
  let stop = false;
  const client = (async () => {
    while (!stop) {
      const n = ++sent;
      const body = JSON.stringify({ model: 'gpt-4.1', messages: [{ role: 'user', content: `question ${n}` }] });
      try {
        const r = await agent.post('/v1/chat/completions', body);
        const ep = r.headers['x-edgeway-endpoint'];
        const model = r.headers['x-edgeway-model'];
        if (r.status === 200) {
          answered++;
          by[ep] = (by[ep] || 0) + 1;
          console.log(`  request ${pad('#' + n, 5)} 200 answered by ${pad(ep, 8)} model ${pad(model, 12)} attempts ${r.headers['x-edgeway-attempts']}`);
        } else {
          failed++;
          console.log(`  request ${pad('#' + n, 5)} ${r.status} ${r.body}`);
        }
      } catch (e) {
        failed++;
        console.log(`  request #${n} failed: ${e.message}`);
      }
      await sleep(250);
    }
  })();

  const t0 = Date.now();
  const phase = (s) => console.log(`\n== ${((Date.now() - t0) / 1000).toFixed(1)} s: ${s}`);
  phase('all upstreams as configured; "broken" refuses connections');
  await sleep(2500);
  console.log(table(await agent.status()));
  phase('the primary starts answering 503');
  primary.set({ mode: 'status', status: 503 });
  await sleep(Math.max(3000, (seconds * 1000) / 3));
  console.log(table(await agent.status()));
  phase('the primary recovers; it returns after `rise` good probes');
  primary.set({ mode: 'ok' });
  await sleep(Math.max(4000, (seconds * 1000) / 3));
  console.log(table(await agent.status()));
  stop = true;
  await client;

  const st = await agent.status();
  const m = st.metrics;
  console.log(`\n== summary: ${sent} requests, ${answered} answered (${Object.entries(by).map(([k, v]) => `${v} by ${k}`).join(', ')}), ${failed} failed`);
  console.log(`   edgeway /status metrics: total ${m.total}, success ${m.success}, failed ${m.failed}, ` +
    `fallback_triggered ${m.fallback_triggered}, avg latency ${m.avg_latency_ms} ms, success rate ${m.success_rate}`);
  await agent.stop();
  await primary.close();
  await backup.close();
  process.exit(failed === 0 ? 0 : 1);
})().catch((e) => { console.error(e); process.exit(1); });
