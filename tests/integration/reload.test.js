'use strict';
// SIGHUP re-reads the INI: a valid file is applied (new endpoints probed, removed ones
// gone) without dropping a request in flight; an invalid file is refused and the running
// configuration kept. SIGTERM lets an in-flight request finish before the agent exits.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const { startUpstream } = require('./lib/fake_upstream.js');
const { startAgent, iniFor } = require('./lib/agent.js');

// Resolves once `up` has received a chat request (probes are GETs of /models).
function chatArrived(up, already) {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 10000;
    const tick = () => {
      if (up.requests.filter((r) => r.path.includes('/chat/')).length > already) return resolve();
      if (Date.now() > deadline) return reject(new Error(`${up.name}: no chat request arrived`));
      setTimeout(tick, 10);
    };
    tick();
  });
}
const chats = (up) => up.requests.filter((r) => r.path.includes('/chat/')).length;

const PROBE = { interval_ms: 200, down_interval_ms: 200, timeout_ms: 500, fall: 2, rise: 2 };

describe('reload and drain', () => {
  let a, b, agent;
  const iniWith = (endpoints, listen) => iniFor({ agent: { listen }, probe: PROBE, endpoints });

  before(async () => {
    a = await startUpstream({ name: 'a', models: ['m1'] });
    b = await startUpstream({ name: 'b', models: ['m1'] });
    agent = await startAgent({ ini: (listen) => iniWith([{ name: 'a', url: a.url, models: ['m1'] }], listen) });
  });
  after(async () => {
    if (agent) await agent.stop();
    await a.close();
    await b.close();
  });

  it('SIGHUP applies a valid file while a request is in flight', async () => {
    await agent.waitStatus((st) => st.endpoints.length === 1 && st.endpoints[0].probes_ok >= 1, 'a probed');
    a.set({ mode: 'slow', delayMs: 800, match: '/chat/' });
    const already = chats(a);
    const inflight = agent.post('/v1/chat/completions', JSON.stringify({ model: 'm1', messages: [] }));
    await chatArrived(a, already);
    fs.writeFileSync(agent.iniPath, iniWith([{ name: 'b', url: b.url, models: ['m1'] }], agent.listen));
    agent.proc.kill('SIGHUP');
    const r = await inflight;
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers['x-edgeway-endpoint'], 'a');
    const st = await agent.waitStatus((s) => s.endpoints.length === 1 && s.endpoints[0].name === 'b' &&
      s.endpoints[0].probes_ok >= 1, 'endpoint b replaced a and was probed');
    assert.equal(st.endpoints[0].name, 'b');
    const r2 = await agent.post('/v1/chat/completions', JSON.stringify({ model: 'm1', messages: [] }));
    assert.equal(r2.status, 200);
    assert.equal(r2.headers['x-edgeway-endpoint'], 'b');
  });

  it('SIGHUP with an invalid file keeps the running configuration', async () => {
    fs.writeFileSync(agent.iniPath, '[agent]\nlisten = nonsense\nbogus_key = 1\n');
    agent.proc.kill('SIGHUP');
    await agent.waitStderr(/reload: .* has errors/, 'the reload refusal logged');
    const st = await agent.status();
    assert.equal(st.endpoints[0].name, 'b');
    const r = await agent.post('/v1/chat/completions', JSON.stringify({ model: 'm1', messages: [] }));
    assert.equal(r.status, 200);
  });

  it('SIGTERM drains: the request in flight is answered, then the agent exits 0', async () => {
    b.set({ mode: 'slow', delayMs: 600, match: '/chat/' });
    const already = chats(b);
    const inflight = agent.post('/v1/chat/completions', JSON.stringify({ model: 'm1', messages: [] }));
    await chatArrived(b, already);
    const code = await agent.stop();
    const r = await inflight;
    assert.equal(r.status, 200, r.body);
    assert.equal(code, 0);
    agent = null;
  });
});
