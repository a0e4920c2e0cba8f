'use strict';
// Health state machine through the running agent: DOWN after `fall` failures, HEALTHY
// again after `rise` successes, one dead endpoint does not affect another, /readyz.
const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { startAgent, endpointOf, FAST_PROBE } = require('./lib/agent');
const { startUpstream, reservedClosedPort } = require('./lib/fake_upstream');

function waitReadyz(agent, status, what) {
  return agent.waitFor(async () => {
    const r = await agent.get('/readyz');
    return { ok: r.status === status, value: r, last: `${r.status} ${r.body}` };
  }, what || `/readyz ${status}`);
}

describe('health states', () => {
  it('a refused endpoint goes DOWN, a healthy one stays HEALTHY; /readyz goes 503 when both are dead', async () => {
    const up = await startUpstream({ name: 'good' });
    const deadPort = await reservedClosedPort();
    let agent;
    try {
      agent = await startAgent({
        ini: {
          probe: FAST_PROBE,
          endpoints: [
            { name: 'good', url: up.url, priority: 10 },
            { name: 'dead', url: `http://127.0.0.1:${deadPort}/v1`, priority: 5 },
          ],
        },
      });
      const s = await agent.waitStatus((st) => endpointOf(st, 'dead').state === 'DOWN' &&
        endpointOf(st, 'good').state === 'HEALTHY' && endpointOf(st, 'good').probes_ok >= 2,
      '"dead" DOWN and "good" HEALTHY with 2 ok probes');
      const dead = endpointOf(s, 'dead');
      const good = endpointOf(s, 'good');
      assert.equal(dead.last_result, 'connect', JSON.stringify(dead));
      assert.ok(dead.consecutive_failures >= FAST_PROBE.fall, JSON.stringify(dead));
      assert.equal(dead.probes_ok, 0, JSON.stringify(dead));
      assert.ok(dead.ejections >= 1, JSON.stringify(dead));
      assert.equal(typeof dead.last_failure_ms_ago, 'number', JSON.stringify(dead));
      assert.equal(dead.last_success_ms_ago, null, JSON.stringify(dead));
      // The seed's bug: one endpoint's connect error marked every endpoint unavailable.
      assert.equal(good.last_result, 'ok', JSON.stringify(good));
      assert.equal(good.consecutive_failures, 0, JSON.stringify(good));
      assert.equal(good.probes_failed, 0, JSON.stringify(good));
      assert.equal(good.status, 'healthy', JSON.stringify(good));

      const ready = await agent.get('/readyz');
      assert.equal(ready.status, 200, ready.body);
      assert.equal(ready.json && ready.json.ready, true, ready.body);

      await up.close();
      const s2 = await agent.waitStatus((st) => endpointOf(st, 'good').state === 'DOWN', '"good" DOWN after its upstream closed');
      assert.equal(endpointOf(s2, 'good').last_result, 'connect', JSON.stringify(endpointOf(s2, 'good')));
      const notReady = await waitReadyz(agent, 503, '/readyz 503 with every endpoint DOWN');
      assert.equal(notReady.json && notReady.json.ready, false, notReady.body);
    } finally {
      if (agent) await agent.stop();
      await up.close();
    }
  });

  it('an endpoint answering 500 goes DOWN, then comes back HEALTHY after `rise` ok probes', async () => {
    const up = await startUpstream({ name: 'flaky' });
    up.set({ mode: 'status', status: 500 });
    let agent;
    try {
      agent = await startAgent({
        ini: { probe: FAST_PROBE, endpoints: [{ name: 'flaky', url: up.url }] },
      });
      const s = await agent.waitStatus((st) => endpointOf(st, 'flaky').state === 'DOWN', '"flaky" DOWN on 500s');
      const down = endpointOf(s, 'flaky');
      assert.equal(down.last_result, 'http_status', JSON.stringify(down));
      assert.match(down.last_error, /500/, JSON.stringify(down));
      assert.ok(down.consecutive_failures >= FAST_PROBE.fall, JSON.stringify(down));
      assert.equal(down.consecutive_successes, 0, JSON.stringify(down));
      assert.ok(down.ejections >= 1, JSON.stringify(down));
      await waitReadyz(agent, 503, '/readyz 503 with the only endpoint DOWN');

      up.set({ mode: 'ok' });
      const early = [];
      const s2 = await agent.waitStatus((st) => {
        const e = endpointOf(st, 'flaky');
        if (e.state === 'HEALTHY' && e.consecutive_successes < FAST_PROBE.rise) early.push(e);
        return e.state === 'HEALTHY';
      }, '"flaky" HEALTHY again after the upstream recovered');
      assert.deepEqual(early, [], `HEALTHY before ${FAST_PROBE.rise} consecutive successes`);
      const back = endpointOf(s2, 'flaky');
      assert.equal(back.last_result, 'ok', JSON.stringify(back));
      assert.equal(back.consecutive_failures, 0, JSON.stringify(back));
      assert.ok(back.consecutive_successes >= FAST_PROBE.rise, JSON.stringify(back));
      assert.ok(back.probes_ok >= FAST_PROBE.rise, JSON.stringify(back));
      await waitReadyz(agent, 200, '/readyz 200 once the endpoint is back');
    } finally {
      if (agent) await agent.stop();
      await up.close();
    }
  });
});
