'use strict';
// Recovery confirmed by what failed (issue 13, item 2), through the running agent: the
// flapping upstream — 200 on /models, 503 on chat — stays DOWN while chat fails, costs at
// most one failed attempt (a trial) per down interval instead of one per request, every
// client request succeeds through the backup, and once chat works it is back within a
// down interval. /status says why and what brings it back; /metrics counts the trials.
const { describe, it, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { startAgent, endpointOf, parseMetrics, metricValue } = require('./lib/agent');
const { testScope, chatBody, send, chatReqs, waitProbed } = require('./lib/proxy_client');

const CHAT = '/chat/completions';
const { cleanups, run: runCleanups, upstream } = testScope();
afterEach(runCleanups);

// Probes every second (also while DOWN: the down interval, the trial spacing too).
const PROBE = Object.freeze({ kind: 'models', interval_ms: 1000, down_interval_ms: 1000, timeout_ms: 1000, fall: 2,
  rise: 2 });

async function flappingPair(agentKeys = {}) {
  const primary = await upstream({ name: 'primary' });
  const backup = await upstream({ name: 'backup' });
  const agent = await startAgent({
    ini: {
      agent: Object.assign({ retry_backoff_ms: 0 }, agentKeys),
      probe: PROBE,
      endpoints: [
        { name: 'primary', url: primary.url, priority: 10 },
        { name: 'backup', url: backup.url, priority: 5 },
      ],
    },
  });
  cleanups.push(() => agent.stop());
  await waitProbed(agent);
  return { agent, primary, backup };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

describe('half-open recovery', () => {
  it('the flapping upstream stays DOWN, costs one trial per down interval, and returns once chat works', async (t) => {
    const { agent, primary, backup } = await flappingPair();
    primary.set({ mode: 'status', status: 503, match: CHAT });  // /models still answers 200
    primary.clearRequests();

    // N client requests, paced 40 ms apart, bounded in count and in time.
    const N = 150;
    const t0 = Date.now();
    const results = [];
    for (let i = 0; i < N && Date.now() - t0 < 30000; i++) {
      results.push(await send(agent, chatBody()));
      await sleep(40);
    }
    const elapsed = Date.now() - t0;
    const tried = chatReqs(primary).length;
    for (const r of results) {
      assert.equal(r.status, 200, `${r.status} ${r.body.slice(0, 300)}`);
      assert.equal(r.endpoint, 'backup', `${r.endpoint} attempts=${r.attempts}`);
    }
    // `fall` failures to eject it, then at most one trial per down interval (+1 for the edges).
    const bound = PROBE.fall + Math.floor(elapsed / PROBE.down_interval_ms) + 1;
    assert.ok(results.length >= 50, `only ${results.length} requests in ${elapsed} ms`);
    assert.ok(tried <= bound, `${tried} chat requests reached the flapping primary in ${elapsed} ms ` +
      `(${results.length} client requests); at most ${bound} allowed`);
    assert.ok(tried >= PROBE.fall + 1, `${tried}: no trial at all in ${elapsed} ms`);
    const paid = results.filter((r) => r.attempts > 1).length;
    assert.equal(paid, tried, 'each failed attempt on the primary is one client request that failed over');
    assert.ok(paid * 5 < results.length, `${paid} of ${results.length} requests paid a failed attempt`);
    // Its /models probes kept answering 200 the whole time, and did not bring it back.
    const models = primary.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/models')).length;
    assert.ok(models >= 2, `${models} /models probes during the run`);

    const st = await agent.status();
    const p = endpointOf(st, 'primary');
    assert.equal(p.state, 'DOWN', JSON.stringify(p));
    assert.equal(p.ejections, 1, `one ejection, the failed trials are not new ones: ${JSON.stringify(p)}`);
    assert.ok(p.recovery, JSON.stringify(p));
    assert.match(p.recovery.why, /^DOWN: \d+ failures of live traffic at chat level \(last: .*503/, p.recovery.why);
    assert.match(p.recovery.back, /successful trial request .* or a chat probe; its models probe cannot confirm/,
      p.recovery.back);
    assert.equal(p.recovery.down_level, 'chat');
    assert.equal(p.recovery.seen_by, 'traffic');
    assert.equal(p.recovery.probe_level, 'models');
    assert.equal(p.recovery.trial.needed, true);
    assert.ok(p.recovery.unconfirmed_probes >= 1, JSON.stringify(p.recovery));
    assert.equal(p.recovery.trial.failed, tried - PROBE.fall, JSON.stringify(p.recovery));
    const page = await agent.get('/');
    assert.match(page.body, /DOWN: \d+ failures of live traffic/);

    // Chat works again: back within one down interval (plus slack for a loaded machine).
    primary.set({ mode: 'ok' });
    const fixedAt = Date.now();
    let backAt = 0;
    for (let i = 0; i < 400 && Date.now() - fixedAt < 15000; i++) {
      const r = await send(agent, chatBody());
      assert.equal(r.status, 200, r.body);
      if (r.endpoint === 'primary') {
        backAt = Date.now();
        break;
      }
      await sleep(20);
    }
    assert.ok(backAt, 'the primary never served again after chat was fixed');
    const back = backAt - fixedAt;
    t.diagnostic(`${results.length} client requests in ${elapsed} ms: ${tried} reached the primary's chat ` +
      `(bound ${bound}), ${paid} paid a failed attempt, ${models} /models probes; back ${back} ms after chat was fixed`);
    assert.ok(back <= PROBE.down_interval_ms + 2000, `back on the primary after ${back} ms`);
    const again = await send(agent, chatBody());
    assert.equal(again.endpoint, 'primary');
    assert.equal(again.attempts, 1);

    const m = parseMetrics((await agent.get('/metrics')).body);
    assert.equal(metricValue(m, 'edgeway_endpoint_trials_total', { endpoint: 'primary', result: 'passed' }), 1);
    assert.ok(metricValue(m, 'edgeway_endpoint_trials_total', { endpoint: 'primary', result: 'failed' }) >= 1);
    assert.equal(metricValue(m, 'edgeway_endpoint_trial_open', { endpoint: 'primary' }), 0);
    assert.ok(backup.requests.length > 0);
  });

  it('a clean restart: back within two down intervals though the healthy probe interval is 60 s', async (t) => {
    const primary = await upstream({ name: 'primary' });
    const backup = await upstream({ name: 'backup' });
    const agent = await startAgent({
      ini: {
        agent: { retry_backoff_ms: 0 },
        probe: { kind: 'models', interval_ms: 60000, down_interval_ms: 1000, timeout_ms: 1000, fall: 2, rise: 2,
          jitter_pct: 0 },
        endpoints: [
          { name: 'primary', url: primary.url, priority: 10 },
          { name: 'backup', url: backup.url, priority: 5 },
        ],
      },
    });
    cleanups.push(() => agent.stop());
    await waitProbed(agent);
    const first = await send(agent, chatBody());
    assert.equal(first.endpoint, 'primary');
    primary.set({ mode: 'refused' });  // the server is gone: connections refused
    await agent.waitFor(async () => {
      const r = await send(agent, chatBody());
      assert.equal(r.status, 200, r.body);
      return { ok: endpointOf(await agent.status(), 'primary').state === 'DOWN', last: r.endpoint };
    }, 'live traffic ejecting the stopped primary');
    const st = endpointOf(await agent.status(), 'primary');
    assert.equal(st.recovery.down_level, 'tcp', JSON.stringify(st.recovery));
    assert.equal(st.recovery.trial.needed, false, 'its models probe sees a connect error: no trial needed');
    primary.set({ mode: 'ok' });  // started again, cleanly
    const restartedAt = Date.now();
    let backAt = 0;
    for (let i = 0; i < 600 && Date.now() - restartedAt < 20000; i++) {
      const r = await send(agent, chatBody());
      assert.equal(r.status, 200, r.body);
      if (r.endpoint === 'primary') {
        backAt = Date.now();
        break;
      }
      await sleep(20);
    }
    assert.ok(backAt, 'the primary never served again after its restart');
    const back = backAt - restartedAt;
    t.diagnostic(`back on the primary ${back} ms after the restart (down interval 1000 ms, rise 2, interval 60 s)`);
    // Two good probes one down interval apart, the first at most one down interval after the
    // ejection; the next healthy probe would have been up to 60 s away.
    assert.ok(back <= 2 * 1000 + 3000, `back after ${back} ms`);
    const after = endpointOf(await agent.status(), 'primary');
    assert.equal(after.recovery.cooldown_ms, 1000, 'a clean restart does not grow the cooldown');
  });

  it('probes of an endpoint that served live traffic within the interval are skipped', async () => {
    const { agent, primary } = await flappingPair();
    primary.clearRequests();
    // Live traffic every 100 ms for 3 s: no /models probe should reach the primary meanwhile.
    const t0 = Date.now();
    let served = 0;
    for (let i = 0; i < 60 && Date.now() - t0 < 3000; i++) {
      const r = await send(agent, chatBody());
      if (r.endpoint === 'primary') served++;
      await sleep(100);
    }
    const models = primary.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/models')).length;
    assert.ok(served >= 10, `${served} served`);
    // At most the one probe that may have been on its way when traffic began.
    assert.ok(models <= 1, `${models} /models probes while live traffic succeeded`);
    const m = parseMetrics((await agent.get('/metrics')).body);
    assert.ok(metricValue(m, 'edgeway_probes_skipped_total', { endpoint: 'primary', reason: 'fresh_traffic' }) >= 1);
  });

  it('chat probes stop at probe_budget_tokens_per_day and continue as models probes', async () => {
    const primary = await upstream({ name: 'primary' });
    const agent = await startAgent({
      ini: {
        agent: { probe_budget_tokens_per_day: 40 },
        probe: Object.assign({}, PROBE, { kind: 'chat', interval_ms: 200, down_interval_ms: 200 }),
        endpoints: [{ name: 'primary', url: primary.url }],
      },
    });
    cleanups.push(() => agent.stop());
    // The fake upstream's usage is small; the budget is spent after a few probes, then the
    // probes go on as GET /models.
    await agent.waitFor(async () => {
      const models = primary.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/models')).length;
      return { ok: models >= 2, last: `${chatReqs(primary).length} chat probes, ${models} models probes` };
    }, 'probes continuing as /models once the budget is spent');
    const m = parseMetrics((await agent.get('/metrics')).body);
    const spent = metricValue(m, 'edgeway_probe_tokens_total', { endpoint: 'primary' });
    const chats = chatReqs(primary).length;
    assert.ok(chats >= 1, `${chats} chat probes`);
    assert.ok(spent >= 40, `spent ${spent}`);
    // The last chat probe started below the cap: at most one probe's worth above it.
    assert.ok(spent < 40 + 40, `spent ${spent} with ${chats} chat probes`);
    assert.equal(metricValue(m, 'edgeway_probe_budget_tokens_remaining', {}), 0);
    assert.ok(metricValue(m, 'edgeway_probes_skipped_total', { endpoint: 'primary', reason: 'token_budget' }) >= 2);
    const chatsBefore = chatReqs(primary).length;
    await agent.waitFor(async () => {
      const models = primary.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/models')).length;
      return { ok: models >= 6, last: `${models}` };
    }, 'more /models probes');
    assert.equal(chatReqs(primary).length, chatsBefore, 'no chat probe after the budget was spent');
  });
});
