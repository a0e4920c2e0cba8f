'use strict';
// Issue 3, "What it must show": with the primary upstream killed mid-run, a client sending
// requests in a loop sees no failed request while a second endpoint is healthy.
const { describe, it, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { startAgent, endpointOf, FAST_PROBE } = require('./lib/agent');
const { startUpstream } = require('./lib/fake_upstream');
const { SLOW_PROBE, chatBody, send, chatReqs, waitProbed } = require('./lib/proxy_client');

const cleanups = [];
afterEach(async () => {
  while (cleanups.length) {
    const fn = cleanups.pop();
    try { await fn(); } catch (_) { /* best effort */ }
  }
});

const TOTAL = 200;
const KILL_AFTER = 50;
const RUN_LIMIT_MS = 60000;

async function run({ probe, concurrency }) {
  const primary = await startUpstream({ name: 'primary' });
  cleanups.push(() => primary.close());
  const secondary = await startUpstream({ name: 'secondary' });
  cleanups.push(() => secondary.close());
  const agent = await startAgent({
    ini: {
      probe,
      endpoints: [
        { name: 'primary', url: primary.url, priority: 10 },
        { name: 'secondary', url: secondary.url, priority: 5 },
      ],
    },
  });
  cleanups.push(() => agent.stop());
  await waitProbed(agent);
  // A little delay, so that requests are in flight on the primary when it dies.
  primary.set({ mode: 'ok', delayMs: 15 });

  const results = [];
  let next = 0;
  let done = 0;
  let killed = null;
  let killedAt = Infinity;
  const t0 = Date.now();
  const worker = async () => {
    while (next < TOTAL && Date.now() - t0 < RUN_LIMIT_MS) {
      const i = next++;
      const startedAt = Date.now();
      let r;
      try {
        r = await send(agent, chatBody('test-model', { messages: [{ role: 'user', content: `request ${i}` }] }), { timeoutMs: 15000 });
      } catch (e) {
        r = { status: 'error', body: e.message };
      }
      results.push({ i, startedAt, status: r.status, endpoint: r.endpoint, attempts: r.attempts, body: r.status === 200 ? '' : r.body });
      done++;
      if (done >= KILL_AFTER && !killed) {
        killedAt = Date.now();
        killed = primary.close(); // stops listening and destroys every open socket
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  await killed;

  const failed = results.filter((r) => r.status !== 200);
  assert.equal(results.length, TOTAL, `only ${results.length} requests ran within ${RUN_LIMIT_MS} ms`);
  assert.deepEqual(failed, [], `${failed.length} of ${TOTAL} requests failed with the primary killed after ${KILL_AFTER}\n${agent.diag()}`);
  const byPrimary = results.filter((r) => r.endpoint === 'primary');
  const bySecondary = results.filter((r) => r.endpoint === 'secondary');
  assert.ok(byPrimary.length >= KILL_AFTER - concurrency, `the primary served ${byPrimary.length} before it was killed`);
  assert.ok(bySecondary.length >= TOTAL - KILL_AFTER - concurrency, `the secondary served only ${bySecondary.length}`);
  assert.equal(byPrimary.length + bySecondary.length, TOTAL);
  // Nothing started after the kill was answered by the dead primary.
  const late = byPrimary.filter((r) => r.startedAt > killedAt + 5);
  assert.deepEqual(late, [], 'answers attributed to the primary after it was killed');
  // Passive health: the dead primary is noticed by traffic and not tried on every request.
  const tail = results.filter((r) => r.startedAt > killedAt).slice(-20);
  assert.ok(tail.every((r) => r.attempts === 1), `requests at the end still tried the dead primary first: ${JSON.stringify(tail)}`);
  // The kill was noticed by traffic: some request failed over from the dead primary.
  const failedOver = results.filter((r) => r.attempts > 1);
  if (probe === SLOW_PROBE) assert.ok(failedOver.length >= 1, 'no request failed over: the kill was not exercised');
  if (process.env.EW_TEST_VERBOSE) console.log(`failed over: ${JSON.stringify(failedOver)}`);
  const p = endpointOf(await agent.status(), 'primary');
  assert.equal(p.state, 'DOWN', JSON.stringify(p));
  const s = await agent.status();
  assert.equal(s.metrics.failed, 0, JSON.stringify(s.metrics));
  assert.equal(s.metrics.success, TOTAL, JSON.stringify(s.metrics));
  assert.equal(chatReqs(secondary).length, bySecondary.length, 'the secondary saw more requests than it answered');
}

describe('primary killed mid-run', () => {
  it('200 sequential requests: every one answered 200, the secondary takes over (passive health only)', async () => {
    await run({ probe: SLOW_PROBE, concurrency: 1 });
  });

  it('200 requests, 4 at a time: every one answered 200, the secondary takes over (probes every 200 ms)', async () => {
    await run({ probe: FAST_PROBE, concurrency: 4 });
  });
});
