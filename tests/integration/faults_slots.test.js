'use strict';
// Slots go to clients that use them (issue 7, point 7): when the connection table is full,
// the longest-idle keep-alive connection between requests is closed to admit a new one; a
// request head must arrive within client_header_timeout_ms; under pressure, connections
// without a complete head go first. An SDK's idle pool or a slowloris crowd must not
// lock normal clients out.
const { describe, it, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { testScope, chatBody, send, streamChat } = require('./lib/proxy_client');
const { rawConnect, requestBytes } = require('./lib/raw_http');

const { run: runCleanups, upstream, agentWith, cleanups } = testScope();
afterEach(runCleanups);

async function single(agentKeys) {
  const up = await upstream({ name: 'only' });
  const agent = await agentWith({ agent: agentKeys, endpoints: [{ name: 'only', url: up.url }] });
  return { agent, up };
}

const show = (t) => JSON.stringify(t.length > 500 ? `${t.slice(0, 500)}...` : t);

// A keep-alive connection that has made one complete request and now sits idle.
async function idleKeepAlive(agent, tag) {
  const c = await rawConnect(agent.port);
  cleanups.push(() => c.destroy());
  c.write(requestBytes({ body: chatBody('test-model', { user: tag }) }));
  await c.waitResponses(1, 10000);
  const [r] = c.responses();
  assert.equal(r && r.status, 200, `${tag}: ${show(c.text())}`);
  assert.ok(!c.closed, `${tag}: the agent closed a keep-alive connection after its answer`);
  return c;
}

// `count` connections that each send one byte of a never-ending request head per second;
// one the agent closes is opened again a second later (as an attacker would), until stop().
function slowloris(port, count) {
  const head = `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${'a'.repeat(100000)}`;
  const state = { conns: new Array(count).fill(null), opened: 0, closedByAgent: 0, answered: 0, stopped: false, bytes: 0 };
  function open(i) {
    if (state.stopped) return;
    const s = net.connect({ port, host: '127.0.0.1' });
    const conn = { s, pos: 0, open: false };
    state.conns[i] = conn;
    s.on('connect', () => { conn.open = true; state.opened++; });
    s.on('data', () => { state.answered++; });
    s.on('error', () => { /* seen as close */ });
    s.on('close', () => {
      conn.open = false;
      if (state.stopped) return;
      state.closedByAgent++;
      const t = setTimeout(() => open(i), 1000);
      state.timers.add(t);
      t.unref();
    });
  }
  state.timers = new Set();
  for (let i = 0; i < count; i++) open(i);
  // One byte a second per connection, spread over 10 ticks of 100 ms.
  let tick = 0;
  const iv = setInterval(() => {
    for (let i = tick % 10; i < count; i += 10) {
      const c = state.conns[i];
      if (c && c.open && c.pos < head.length) {
        c.s.write(head[c.pos++]);
        state.bytes++;
      }
    }
    tick++;
  }, 100);
  state.stop = () => {
    state.stopped = true;
    clearInterval(iv);
    for (const t of state.timers) clearTimeout(t);
    for (const c of state.conns) if (c) c.s.destroy();
  };
  cleanups.push(() => state.stop());
  state.openNow = () => state.conns.filter((c) => c && c.open).length;
  // Every one of the `count` has connected at least once, and the crowd has run 3 s.
  const t0 = Date.now();
  state.started = () => state.opened >= count && Date.now() - t0 >= 3000;
  return state;
}

async function waitUntil(pred, what, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (pred()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('idle keep-alive connections', () => {
  it('four idle keep-alive connections with max_clients = 4 do not lock out a fifth client; the longest-idle one is closed', async () => {
    const { agent } = await single({ max_clients: 4 });
    const idle = [];
    for (let i = 0; i < 4; i++) idle.push(await idleKeepAlive(agent, `pool-${i}`));
    // The fifth client, on a new connection.
    const fifth = await rawConnect(agent.port);
    cleanups.push(() => fifth.destroy());
    fifth.write(requestBytes({ body: chatBody('test-model', { user: 'fifth' }) }));
    await fifth.waitResponses(1, 10000);
    const [r] = fifth.responses();
    assert.equal(r && r.status, 200, `the fifth client: ${show(fifth.text())}`);
    assert.equal(JSON.parse(r.body.toString('utf8')).echo, 'fifth');
    // The slot came from the longest-idle connection (the first), not from the others.
    await idle[0].waitClosed(5000);
    assert.deepEqual(idle.slice(1).map((c) => c.closed), [false, false, false], 'a connection other than the longest-idle one was closed');
    // And again: a sixth client takes the next longest-idle slot.
    const sixth = await send(agent, chatBody(), { timeoutMs: 10000 });
    assert.equal(sixth.status, 200, sixth.body);
  });
});

// Under qemu-user (the ARM cross builds) the agent is emulated and many times slower: a crowd
// of 200 connections against it measures the emulator, so these run in the native build.
const EMULATED = process.env.EW_TEST_EMULATED === '1';
if (EMULATED) console.log('# slowloris crowd tests skipped: the agent runs emulated (qemu-user); they run natively');

describe('slowloris', { skip: EMULATED && 'the agent runs emulated (qemu-user)' }, () => {
  for (const [label, keys] of [
    ['default settings', {}],
    ['client_header_timeout_ms = 2000', { client_header_timeout_ms: 2000 }],
  ]) {
    it(`200 connections sending one header byte a second with max_clients = 16 (${label}): a normal request is served`, async () => {
      const { agent } = await single(Object.assign({ max_clients: 16 }, keys));
      const loris = slowloris(agent.port, 200);
      await waitUntil(() => loris.started(), '200 slowloris connections opened and 3 s of trickling', 20000);
      // A normal client here behaves as the official SDKs do: a connection reset or a 503
      // before any answer is retried (up to twice, as openai's maxRetries default). Each of
      // its requests must end served; what each try got is in the message.
      const results = [];
      const tries = [];
      for (let i = 0; i < 5; i++) {
        let r;
        for (let t = 0; t < 3; t++) {
          try {
            r = await send(agent, chatBody(), { timeoutMs: 10000 });
          } catch (e) {
            r = { status: 'error', body: e.message, ms: NaN };
          }
          tries.push(`${r.status}`);
          if (r.status === 200) break;
        }
        results.push(`${r.status} in ${r.ms} ms${r.status === 200 ? '' : `: ${String(r.body).slice(0, 200)}`}`);
      }
      let st;
      for (let t = 0; t < 3; t++) {
        try {
          st = await streamChat(agent, chatBody('test-model', { stream: true }), { timeoutMs: 10000 });
        } catch (e) {
          st = { status: 'error', done: false, raw: e.message };
        }
        tries.push(`stream ${st.status}`);
        if (st.status === 200) break;
      }
      const what = `normal requests: ${JSON.stringify(results)} (tries: ${tries.join(',')}); stream: ${st.status} done=${st.done}; ` +
        `slowloris: ${loris.openNow()} open now, ${loris.opened} opened, ${loris.closedByAgent} closed by the agent, ${loris.bytes} bytes sent`;
      assert.ok(results.every((x) => x.startsWith('200 ')), what);
      assert.equal(st.status, 200, what);
      assert.equal(st.done, true, what);
      loris.stop();
      const h = await agent.waitFor(async () => {
        const x = await agent.get('/healthz');
        return { ok: x.status === 200, value: x, last: `${x.status}` };
      }, '/healthz once the slowloris crowd left', 10000);
      assert.equal(h.status, 200);
    });
  }

  it('client_header_timeout_ms = 2000: a head that has not arrived whole by then is closed; one that has is served', async () => {
    const { agent } = await single({ client_header_timeout_ms: 2000 });
    const slow = await rawConnect(agent.port);
    cleanups.push(() => slow.destroy());
    const t0 = Date.now();
    slow.write('POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appl');
    // Keep trickling: the deadline is for the whole head, not for silence.
    const iv = setInterval(() => { if (!slow.closed) slow.write('a'); }, 300);
    cleanups.push(() => clearInterval(iv));
    await slow.waitClosed(10000);
    const ms = slow.closedAt - t0;
    assert.ok(ms >= 1500 && ms <= 6000, `closed after ${ms} ms, wanted about 2000`);
    const answered = slow.responses();
    assert.ok(answered.length === 0 || answered[0].status === 408, `the slow head got: ${show(slow.text())}`);
    const ok = await send(agent, chatBody(), { timeoutMs: 10000 });
    assert.equal(ok.status, 200, ok.body);
  });
});
