'use strict';
// Every stream ends honestly (issue 7, points 5 and 6): after commit, an end that is not
// `[DONE]` is an `upstream_stream_error` event on a fresh event boundary and an unfinished
// chunked body (no `0\r\n\r\n`); the first event arrives as sent; a 200 that is not what was
// asked for (a captive portal's text/html page) fails over before commit. Streams are read
// as raw bytes so the chunked framing can be checked.
const { describe, it, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { endpointOf } = require('./lib/agent');
const { testScope, chatBody, send, streamChat, chatReqs } = require('./lib/proxy_client');
const { rawConnect, requestBytes } = require('./lib/raw_http');

const { run: runCleanups, upstream, agentWith, cleanups } = testScope();
afterEach(runCleanups);

const streamBody = (extra) => chatBody('test-model', Object.assign({ stream: true }, extra));
const show = (t) => JSON.stringify(t.length > 1500 ? `${t.slice(0, 700)} ... ${t.slice(-700)}` : t);

// SSE text -> events { data, json }, by the SSE rules (blank line ends an event; data:
// lines joined with \n); `rest` is an unterminated tail.
function sseEvents(text) {
  const events = [];
  const norm = text.replace(/\r\n/g, '\n');
  const blocks = norm.split('\n\n');
  const rest = blocks.pop();
  for (const block of blocks) {
    const data = [];
    for (const line of block.split('\n')) {
      if (line === 'data' || line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    if (!data.length) continue;
    const d = data.join('\n');
    let json;
    try { json = d === '[DONE]' ? undefined : JSON.parse(d); } catch (_) { json = undefined; }
    events.push({ data: d, json });
  }
  return { events, rest };
}

// A streaming request on a raw connection; `hold(c)` runs once the response head has
// arrived (e.g. to stop reading for a while). Resolves when the response is complete or
// the connection closed.
async function rawStream(agent, body, { hold, timeoutMs = 30000 } = {}) {
  const c = await rawConnect(agent.port);
  cleanups.push(() => c.destroy());
  c.write(requestBytes({ body }));
  if (hold) {
    await c.waitFor((x) => x.closed || x.responses().length >= 1, 'the response head', timeoutMs);
    await hold(c);
  }
  await c.waitFor((x) => x.closed || (x.responses()[0] && x.responses()[0].complete), 'the end of the stream', timeoutMs);
  const [r] = c.responses();
  const text = c.text();
  const bodyText = r ? r.body.toString('utf8') : '';
  const { events, rest } = sseEvents(bodyText);
  return { c, r, text, bodyText, events, rest, closed: c.closed };
}

// The honest end after commit: the last event is the error event, no [DONE], and the
// chunked body was not terminated.
function errorEndingProblems(s) {
  const out = [];
  const last = s.events[s.events.length - 1];
  if (!s.r || s.r.status !== 200) out.push(`status ${s.r && s.r.status}`);
  if (s.events.some((e) => e.data === '[DONE]')) out.push('[DONE] after a broken stream');
  if (!last || !last.json || !last.json.error) out.push(`the last event is not an error event: ${JSON.stringify(last && last.data.slice(0, 300))}`);
  else if (last.json.error.code !== 'upstream_stream_error') out.push(`error code ${last.json.error.code}`);
  if (s.r && s.r.terminated) out.push('the chunked body was terminated with 0\\r\\n\\r\\n (a clean end)');
  if (!s.closed) out.push('the connection was not closed');
  return out;
}

async function pair(agentKeys = {}, primaryKeys = {}) {
  const primary = await upstream({ name: 'primary' });
  const secondary = await upstream({ name: 'secondary' });
  const agent = await agentWith({
    agent: agentKeys,
    endpoints: [
      Object.assign({ name: 'primary', url: primary.url, priority: 10 }, primaryKeys),
      { name: 'secondary', url: secondary.url, priority: 5 },
    ],
  });
  return { agent, primary, secondary };
}

describe('streams that end without [DONE]', () => {
  it('a cleanly framed upstream end without [DONE]: the error event and an unfinished body', async () => {
    const { agent, primary, secondary } = await pair();
    primary.set({ mode: 'no_done', chunks: 3 });
    const s = await rawStream(agent, streamBody());
    const problems = errorEndingProblems(s);
    assert.ok(problems.length === 0, `${problems.join('\n')}\n${show(s.text)}`);
    // The events before the end all came from the primary, in order.
    const content = s.events.filter((e) => e.json && e.json.choices).map((e) => e.json.choices[0].delta.content);
    assert.deepEqual(content.slice(1, 4), ['tok0 ', 'tok1 ', 'tok2 '], show(s.text));
    assert.equal(chatReqs(secondary).length, 0, 'the committed stream was continued elsewhere');
  });

  it('an upstream cut in the middle of a long event line: the error event starts on a fresh event boundary', async () => {
    const { agent, primary } = await pair();
    primary.set({ mode: 'cut_mid_line', chunks: 2, cutLineBytes: 20000 });
    const s = await rawStream(agent, streamBody());
    const problems = errorEndingProblems(s);
    // Glued onto the unterminated line, the error would be part of the x...x line.
    const glued = /x+data: *\{"error"/.test(s.bodyText);
    if (glued) problems.push('the error event was glued onto the unterminated line');
    assert.ok(problems.length === 0, `${problems.join('\n')}\n${show(s.text)}`);
    assert.equal(s.rest.trim(), '', `bytes after the error event: ${show(s.rest)}`);
  });

  it('a client that stops reading for longer than timeout_ms: its whole stream or an error ending, never a clean end without [DONE]', async () => {
    const { agent, primary } = await pair({}, { timeout_ms: 1000 });
    // ~40 MB: more than the kernel buffers on both sides hold, so the agent's relay fills up
    // and it stops reading the upstream while the client does not read.
    const N = 10000;
    primary.set({ mode: 'flow', flowEvents: N, flowBytes: 4096 });
    let stalledAt;
    const s = await rawStream(agent, streamBody(), {
      timeoutMs: 90000,
      hold: async (c) => {
        c.pause();
        // The upstream is blocked on a full socket (the whole path is full), then 4x timeout_ms.
        await c.waitFor(() => {
          const f = primary.flow;
          if (!f) return false;
          const now = f.written;
          if (stalledAt === undefined || stalledAt.n !== now) { stalledAt = { n: now, at: Date.now() }; return false; }
          return Date.now() - stalledAt.at >= 500;
        }, 'the upstream writer to block on back-pressure', 30000);
        await new Promise((r) => setTimeout(r, 4000));
        c.resume();
      },
    });
    const done = s.events.some((e) => e.data === '[DONE]');
    const what = `${s.events.length} events, last ${JSON.stringify(s.events.length ? s.events[s.events.length - 1].data.slice(0, 200) : null)}, ` +
      `terminated=${s.r && s.r.terminated}, closed=${s.closed}, upstream wrote ${primary.flow && primary.flow.written}`;
    if (done) {
      // The whole stream, in order.
      const nums = s.events.filter((e) => e.json && e.json.choices && typeof e.json.choices[0].delta.content === 'string' && e.json.choices[0].delta.content.includes(':'))
        .map((e) => Number(e.json.choices[0].delta.content.split(':')[0]));
      assert.equal(nums.length, N, `events lost: ${what}`);
      assert.ok(nums.every((n, i) => n === i), `events out of order: ${what}`);
      assert.equal(s.events[s.events.length - 1].data, '[DONE]', what);
      assert.ok(s.r.terminated, `[DONE] but the body did not end: ${what}`);
    } else {
      const problems = errorEndingProblems(s);
      assert.ok(problems.length === 0, `no [DONE], and not an honest error ending: ${problems.join('; ')}; ${what}`);
    }
  });
});

describe('the first event', () => {
  it('a first event of 5,000 short data: lines arrives intact (the first token is not lost)', async () => {
    const { agent, primary } = await pair();
    primary.set({ mode: 'many_line_first_event', lines: 5000, chunks: 2 });
    const s = await rawStream(agent, streamBody());
    assert.equal(s.r && s.r.status, 200, show(s.text));
    const first = s.events[0];
    assert.ok(first, show(s.text));
    assert.ok(first.data === primary.lastFirstEventData,
      `the first event's data changed on the way: ${first.data.length} chars vs ${primary.lastFirstEventData.length} sent; got ${show(first.data)}`);
    assert.equal(first.json && first.json.choices[0].delta.content, 'FIRST', 'the first token');
    const content = s.events.filter((e) => e.json && e.json.choices).map((e) => e.json.choices[0].delta.content);
    assert.deepEqual(content.slice(0, 3), ['FIRST', 'tok0 ', 'tok1 '], show(s.text));
    assert.equal(s.events[s.events.length - 1].data, '[DONE]');
    assert.ok(s.r.terminated, 'the body did not end');
  });
});

describe('a 200 that is not what was asked for', () => {
  it('a captive portal (200 text/html) fails over, for JSON and for streams, and /status says why', async () => {
    const { agent, primary, secondary } = await pair();
    primary.set({ mode: 'captive_portal', match: '/chat/completions' });
    const j = await send(agent, chatBody());
    assert.equal(j.status, 200, j.body);
    assert.equal(j.endpoint, 'secondary', `answered by ${j.endpoint}: ${j.body.slice(0, 300)}`);
    assert.match(String(j.headers['content-type']), /^application\/json/, j.body.slice(0, 300));
    assert.equal(j.json && j.json.object, 'chat.completion', j.body.slice(0, 300));

    const st = await streamChat(agent, streamBody(), { timeoutMs: 15000 });
    assert.equal(st.status, 200);
    assert.equal(st.endpoint, 'secondary', `answered by ${st.endpoint}: ${st.raw.slice(0, 300)}`);
    assert.match(String(st.headers['content-type']), /^text\/event-stream/);
    assert.equal(st.done, true, st.raw.slice(0, 300));
    assert.ok(!st.raw.includes('<html'), 'the portal page reached the client');

    assert.equal(chatReqs(primary).length, 2);
    assert.equal(chatReqs(secondary).length, 2);
    const s = await agent.status();
    const p = endpointOf(s, 'primary');
    assert.match(JSON.stringify(p), /text\/html/, `no text/html reason in /status for the primary: ${JSON.stringify(p)}`);
    assert.ok(p.consecutive_failures >= 1 || (p.requests_failed || 0) >= 1, `the portal did not count against the primary: ${JSON.stringify(p)}`);
  });
});
