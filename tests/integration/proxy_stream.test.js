'use strict';
// Streaming (SSE) through the running agent (issue 3, point 5, the commit rule): events
// pass in order; a stream that stalls before its first token fails over; a stream that
// breaks after commit ends with an OpenAI error event and no [DONE], never spliced with
// another endpoint's answer; a client that leaves cancels its upstream attempt.
const { describe, it, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { startAgent, endpointOf } = require('./lib/agent');
const { startUpstream } = require('./lib/fake_upstream');
const { testScope, SLOW_PROBE, chatBody, send, streamChat, chatReqs, waitProbed } = require('./lib/proxy_client');

const { cleanups, run: runCleanups, upstream } = testScope();
afterEach(runCleanups);

async function pair({ agentKeys = {}, primaryKeys = {} } = {}) {
  const primary = await upstream({ name: 'primary' });
  const secondary = await upstream({ name: 'secondary' });
  const agent = await startAgent({
    ini: {
      agent: agentKeys,
      probe: SLOW_PROBE,
      endpoints: [
        Object.assign({ name: 'primary', url: primary.url, priority: 10 }, primaryKeys),
        { name: 'secondary', url: secondary.url, priority: 5 },
      ],
    },
  });
  cleanups.push(() => agent.stop());
  await waitProbed(agent);
  return { agent, primary, secondary };
}

const streamBody = (extra) => chatBody('test-model', Object.assign({ stream: true }, extra));

// The fake upstream's chunk ids are chatcmpl-fake-NAME-N.
function fromWhom(ev) {
  const m = ev.json && typeof ev.json.id === 'string' ? /^chatcmpl-fake-(.+)-\d+$/.exec(ev.json.id) : null;
  return m ? m[1] : undefined;
}

function dataEvents(r) { return r.events.filter((e) => e.data !== '[DONE]'); }

function assertWholeStream(r, endpoint, chunks) {
  const what = `status ${r.status} headers ${JSON.stringify(r.headers)} events ${JSON.stringify(r.events.map((e) => e.data))} error ${r.error}`;
  assert.equal(r.status, 200, what);
  assert.match(String(r.headers['content-type']), /^text\/event-stream/, what);
  assert.equal(r.endpoint, endpoint, what);
  assert.equal(r.model, 'test-model', what);
  const evs = dataEvents(r);
  assert.equal(evs.length, chunks + 2, `role + ${chunks} content + finish events: ${what}`);
  assert.deepEqual(evs.map(fromWhom), evs.map(() => endpoint), `events from another endpoint: ${what}`);
  assert.equal(evs[0].json.choices[0].delta.role, 'assistant', what);
  const content = evs.slice(1, 1 + chunks).map((e) => e.json.choices[0].delta.content);
  assert.deepEqual(content, Array.from({ length: chunks }, (_, i) => `tok${i} `), `content out of order: ${what}`);
  assert.equal(evs[evs.length - 1].json.choices[0].finish_reason, 'stop', what);
  assert.equal(r.events[r.events.length - 1].data, '[DONE]', `the stream must end with [DONE]: ${what}`);
  assert.equal(r.events.filter((e) => e.data === '[DONE]').length, 1, what);
  assert.ok(r.ended, `the response did not end cleanly: ${what}`);
  assert.ok(!r.events.some((e) => e.json && e.json.error), what);
}

describe('proxy streaming', () => {
  it('a stream passes through whole and in order, ending with [DONE]', async () => {
    const { agent, primary, secondary } = await pair();
    primary.set({ mode: 'ok', chunks: 6, chunkDelayMs: 20 });
    const r = await streamChat(agent, streamBody());
    assertWholeStream(r, 'primary', 6);
    assert.equal(r.attempts, 1);
    // Events arrive as they are produced, not in one lump at the end.
    const evs = dataEvents(r);
    assert.ok(evs[evs.length - 1].at - evs[0].at >= 50, `events were not relayed as they came: ${JSON.stringify(evs.map((e) => e.at))}`);
    assert.equal(chatReqs(primary)[0].json.stream, true);
    assert.match(String(chatReqs(primary)[0].headers.accept), /text\/event-stream/);
    assert.equal(chatReqs(secondary).length, 0);
  });

  it('a stall before the first token fails over: the client gets a whole stream from the secondary only', async () => {
    const { agent, primary, secondary } = await pair({ agentKeys: { first_token_timeout_ms: 400 } });
    primary.set({ mode: 'stall_first_token' });
    const r = await streamChat(agent, streamBody(), { timeoutMs: 15000 });
    assertWholeStream(r, 'secondary', 3);
    assert.equal(r.attempts, 2, `x-edgeway-attempts: ${JSON.stringify(r.headers)}`);
    assert.ok(r.ms >= 350, `answered after ${r.ms} ms: before first_token_timeout_ms (400) could pass`);
    assert.ok(r.ms < 5000, `answered after ${r.ms} ms: first_token_timeout_ms (400) did not apply`);
    assert.equal(chatReqs(primary).length, 1);
    assert.equal(chatReqs(secondary).length, 1);
    // The stalled attempt's connection is given up.
    await primary.waitForClose(chatReqs(primary)[0], 5000);
    const p = endpointOf(await agent.status(), 'primary');
    assert.ok(p.consecutive_failures >= 1, `the stall did not count against the primary: ${JSON.stringify(p)}`);
  });

  it('a drop mid-stream after commit: the 2 chunks, then an upstream_stream_error event, no [DONE], no splicing', async () => {
    const { agent, primary, secondary } = await pair();
    primary.set({ mode: 'drop_mid_stream', chunks: 5 });
    const r = await streamChat(agent, streamBody(), { timeoutMs: 15000 });
    const what = `status ${r.status} headers ${JSON.stringify(r.headers)} events ${JSON.stringify(r.events.map((e) => e.data))} error ${r.error}`;
    assert.equal(r.status, 200, what);
    assert.equal(r.endpoint, 'primary', what);
    assert.equal(r.done, false, `[DONE] after a broken stream: ${what}`);
    assert.equal(r.events.length, 3, what);
    const [first, second, last] = r.events;
    assert.equal(fromWhom(first), 'primary', what);
    assert.equal(first.json.choices[0].delta.role, 'assistant', what);
    assert.equal(fromWhom(second), 'primary', what);
    assert.equal(second.json.choices[0].delta.content, 'tok0 ', what);
    assert.ok(last.json && last.json.error, `the last event is not an error event: ${what}`);
    const e = last.json.error;
    assert.equal(e.code, 'upstream_stream_error', what);
    assert.equal(e.type, 'server_error', what);
    assert.ok('param' in e && e.param === null, what);
    assert.equal(typeof e.message, 'string', what);
    assert.ok(e.message.length > 0, what);
    assert.equal(last.event, undefined, `a plain data event (what the SDKs check): ${what}`);
    // Not continued by another endpoint.
    assert.equal(chatReqs(secondary).length, 0, 'the broken stream was continued by the secondary');
    assert.ok(r.events.every((ev) => fromWhom(ev) === undefined || fromWhom(ev) === 'primary'), what);
    // The agent serves on.
    const next = await send(agent, chatBody());
    assert.equal(next.status, 200, next.body);
  });

  it('a client that disconnects mid-stream: edgeway closes the upstream connection and serves the next request', async () => {
    const { agent, primary } = await pair();
    // ~20 s of stream: only a cancel can end it early.
    primary.set({ mode: 'ok', chunks: 100, chunkDelayMs: 200 });
    let destroyedAt;
    const r = await streamChat(agent, streamBody(), {
      timeoutMs: 15000,
      onEvent: (ev, ctl) => {
        if (ev.json && ev.json.choices && ev.json.choices[0].delta.content === 'tok0 ') {
          destroyedAt = Date.now();
          ctl.destroy();
        }
      },
    });
    assert.ok(destroyedAt, `the client never saw the first content chunk: ${JSON.stringify(r.events.map((e) => e.data))} ${r.error}`);
    assert.equal(r.endpoint, 'primary');
    const [req] = chatReqs(primary);
    await primary.waitForClose(req, 5000);
    assert.ok(req.closedAt - destroyedAt < 5000, `upstream closed ${req.closedAt - destroyedAt} ms after the client left`);
    // The slot is free again: only the /status request itself is active.
    const s = await agent.waitStatus((st) => st.metrics.clients_active === 1, 'clients_active back to 1 (the /status request)', 10000);
    const totalBefore = s.metrics.total;
    const successBefore = s.metrics.success;

    primary.set({ mode: 'ok' });
    const next = await send(agent, chatBody());
    assert.equal(next.status, 200, next.body);
    assert.equal(next.endpoint, 'primary');
    const s2 = await agent.status();
    assert.equal(s2.metrics.total, totalBefore + 1, JSON.stringify(s2.metrics));
    assert.equal(s2.metrics.success, successBefore + 1, JSON.stringify(s2.metrics));
    assert.equal(s2.metrics.success, 1, `only the second request succeeded: ${JSON.stringify(s2.metrics)}`);
  });

  it('an error event or an empty stream before the first token fails over (nothing was committed)', async () => {
    for (const events of [
      ['{"error":{"message":"overloaded","type":"server_error","param":null,"code":"overloaded"}}'],
      ['[DONE]'],
    ]) {
      const { agent, primary, secondary } = await pair();
      primary.set({ mode: 'ok', events });
      const r = await streamChat(agent, streamBody(), { timeoutMs: 15000 });
      assertWholeStream(r, 'secondary', 3);
      assert.equal(r.attempts, 2);
      assert.ok(!r.raw.includes('overloaded'), `the primary's error reached the client: ${r.raw}`);
      assert.equal(chatReqs(primary).length, 1);
      assert.equal(chatReqs(secondary).length, 1);
      await agent.stop();
    }
  });

  it('a client that disconnects while its attempt is waiting: the upstream attempt is cancelled', async () => {
    const { agent, primary } = await pair();
    primary.set({ mode: 'hang', match: '/chat/completions' });
    const payload = JSON.stringify(chatBody());
    const req = http.request({
      host: '127.0.0.1', port: agent.port, method: 'POST', path: '/v1/chat/completions', agent: false,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) },
    });
    req.on('error', () => { /* we destroy it */ });
    req.end(payload);
    const seen = await agent.waitFor(async () => {
      const [q] = chatReqs(primary);
      return { ok: !!q, value: q, last: `${chatReqs(primary).length} chat requests on the primary` };
    }, 'the request to reach the primary', 5000);
    const leftAt = Date.now();
    req.destroy();
    await primary.waitForClose(seen, 5000);
    assert.ok(seen.closedAt - leftAt < 5000);
    await agent.waitStatus((st) => st.metrics.clients_active === 1, 'clients_active back to 1 (the /status request)', 10000);
    primary.set({ mode: 'ok' });
    const next = await send(agent, chatBody());
    assert.equal(next.status, 200, next.body);
  });

  it('large answers pass whole: a 1 MB JSON body and a 2000-event stream', async () => {
    const { agent, primary } = await pair();
    const big = JSON.stringify({
      id: 'chatcmpl-big', object: 'chat.completion', model: 'test-model',
      choices: [{ index: 0, message: { role: 'assistant', content: 'z'.repeat(1024 * 1024) }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
    });
    primary.set({ mode: 'ok', body: big });
    const r = await send(agent, chatBody(), { timeoutMs: 20000 });
    assert.equal(r.status, 200);
    assert.equal(r.body.length, big.length, 'body length changed');
    assert.ok(r.body === big, 'body changed on the way');

    primary.set({ mode: 'ok', chunks: 2000, chunkDelayMs: 0 });
    const st = await streamChat(agent, streamBody(), { timeoutMs: 30000 });
    assertWholeStream(st, 'primary', 2000);
  });
});
