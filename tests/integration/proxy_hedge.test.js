'use strict';
// Hedged first tokens through the running agent (issue 13, item 1): a primary slow to its
// first token is beaten by a hedge on the backup; the client gets the backup's whole stream
// only, the primary's connection is closed (not parked), and /metrics counts the hedge.
const { describe, it, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { startAgent, endpointOf, parseMetrics, metricValue } = require('./lib/agent');
const { testScope, SLOW_PROBE, chatBody, send, streamChat, chatReqs, waitProbed } = require('./lib/proxy_client');

const { cleanups, run: runCleanups, upstream } = testScope();
afterEach(runCleanups);

async function pair(agentKeys) {
  const primary = await upstream({ name: 'primary' });
  const backup = await upstream({ name: 'backup' });
  const agent = await startAgent({
    ini: {
      agent: agentKeys,
      probe: SLOW_PROBE,
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

function fromWhom(ev) {
  const m = ev.json && typeof ev.json.id === 'string' ? /^chatcmpl-fake-(.+)-\d+$/.exec(ev.json.id) : null;
  return m ? m[1] : undefined;
}

async function metrics(agent) {
  return parseMetrics((await send(agent, undefined, { method: 'GET', path: '/metrics' })).body);
}

describe('proxy hedging', () => {
  it('a slow primary first token is beaten by the backup; the primary connection is closed', async () => {
    const { agent, primary, backup } = await pair({ hedge_after_ms: 300, hedge_budget_pct: 50 });
    // The primary sends nothing (no head either) for 4 s; the backup answers at once.
    primary.set({ mode: 'slow', delayMs: 4000, match: '/chat/completions' });
    backup.set({ mode: 'ok', chunks: 3 });
    const r = await streamChat(agent, chatBody('test-model', { stream: true }), { timeoutMs: 15000 });
    const what = `status ${r.status} headers ${JSON.stringify(r.headers)} events ${JSON.stringify(r.events.map((e) => e.data))}`;
    assert.equal(r.status, 200, what);
    assert.equal(r.endpoint, 'backup', what);
    assert.equal(r.attempts, 2, what);
    const evs = r.events.filter((e) => e.data !== '[DONE]');
    assert.ok(evs.length >= 3, what);
    assert.deepEqual(evs.map(fromWhom), evs.map(() => 'backup'), `events from another endpoint: ${what}`);
    assert.equal(r.events[r.events.length - 1].data, '[DONE]', what);
    assert.ok(r.ended, what);
    // The first token came after the hedge delay and long before the primary's 4 s.
    assert.ok(r.ms >= 250, `answered after ${r.ms} ms: before hedge_after_ms (300)`);
    assert.ok(r.ms < 3000, `answered after ${r.ms} ms: the hedge did not beat the primary`);
    assert.equal(chatReqs(primary).length, 1);
    assert.equal(chatReqs(backup).length, 1);
    // The loser's connection is closed by edgeway (not parked for reuse), well before its answer.
    await primary.waitForClose(chatReqs(primary)[0], 2500);
    assert.ok(chatReqs(primary)[0].closedAt - chatReqs(primary)[0].at < 3500);
    const m = await metrics(agent);
    assert.equal(metricValue(m, 'edgeway_hedges_started_total', {}), 1);
    assert.equal(metricValue(m, 'edgeway_hedge_wins_total', { winner: 'hedge' }), 1);
    assert.equal(metricValue(m, 'edgeway_hedge_wins_total', { winner: 'primary' }), 0);
    assert.equal(metricValue(m, 'edgeway_hedge_losers_cancelled_total', {}), 1);
    // A cancelled loser is no failure of its endpoint.
    const p = endpointOf(await agent.status(), 'primary');
    assert.equal(p.consecutive_failures, 0, JSON.stringify(p));
    assert.equal(p.status, 'healthy', JSON.stringify(p));
  });

  it('a primary that answers in time is not hedged, and hedging is off unless configured', async () => {
    for (const keys of [{ hedge_after_ms: 1500 }, {}]) {
      const { agent, primary, backup } = await pair(keys);
      primary.set({ mode: keys.hedge_after_ms ? 'ok' : 'slow', delayMs: 800, match: '/chat/completions' });
      const r = await streamChat(agent, chatBody('test-model', { stream: true }), { timeoutMs: 15000 });
      assert.equal(r.status, 200);
      assert.equal(r.endpoint, 'primary', JSON.stringify(keys));
      assert.equal(chatReqs(backup).length, 0, JSON.stringify(keys));
      assert.equal(chatReqs(primary).length, 1);
      const m = await metrics(agent);
      assert.equal(metricValue(m, 'edgeway_hedges_started_total', {}), 0);
      await runCleanups();
    }
  });
});
