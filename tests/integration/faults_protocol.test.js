'use strict';
// Upstream answers that are legal HTTP but easy to mishandle (issue 7, point 2): 1xx heads
// before the final answer, and 204 No Content. The client must get the final answer, no
// answer may cross to another client through a reused upstream connection, and the
// client's own keep-alive connection must stay in step.
const { describe, it, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { testScope, chatBody, chatReqs } = require('./lib/proxy_client');
const { rawConnect, requestBytes } = require('./lib/raw_http');

const { run: runCleanups, upstream, agentWith, cleanups } = testScope();
afterEach(runCleanups);

async function single() {
  const up = await upstream({ name: 'only' });
  const agent = await agentWith({ endpoints: [{ name: 'only', url: up.url }] });
  return { agent, up };
}

async function connect(agent) {
  const c = await rawConnect(agent.port);
  cleanups.push(() => c.destroy());
  return c;
}

// The first final (>= 200) response on the connection, or what stands in its way: waits
// until one is complete, the bytes cannot be parsed as responses, or the peer closes.
async function firstFinal(c, what, timeoutMs = 15000) {
  const settled = () => {
    const rs = c.responses();
    return c.closed || rs.some((r) => Number.isNaN(r.status)) || rs.some((r) => r.status >= 200 && r.complete);
  };
  await c.waitFor(settled, what, timeoutMs);
  const rs = c.responses();
  return { rs, final: rs.find((r) => r.status >= 200 && r.complete), text: c.text() };
}

const show = (t) => JSON.stringify(t.length > 700 ? `${t.slice(0, 700)}...` : t);

describe('1xx heads from the upstream', () => {
  for (const codes of [[100], [103], [102, 103]]) {
    it(`${codes.join(' + ')} then 200: the client gets the 200, the next client its own answer`, async () => {
      const { agent, up } = await single();
      const problems = [];
      for (let round = 1; round <= 3; round++) {
        // Client A: the upstream sends the 1xx head(s), then the real answer.
        up.set({ mode: 'informational', informational: codes });
        const a = await connect(agent);
        a.write(requestBytes({ body: chatBody('test-model', { user: `client-a-${round}` }) }));
        const ra = await firstFinal(a, `client A's answer (round ${round})`);
        const firstA = ra.rs[0];
        if (!firstA || firstA.status !== 200) {
          problems.push(`round ${round}: client A's first response is not the 200 but ${firstA ? firstA.status : 'nothing'}: ${show(ra.text)}`);
        } else {
          const body = JSON.parse(firstA.body.toString('utf8'));
          if (body.echo !== `client-a-${round}`) problems.push(`round ${round}: client A got the answer for ${body.echo}: ${show(ra.text)}`);
          if (body.choices[0].message.content !== 'Hello from only') problems.push(`round ${round}: client A's body: ${show(ra.text)}`);
        }
        // Client B, on another connection, when the upstream behaves: the pool must not
        // hand it what was left unread on A's upstream connection.
        up.set({ mode: 'ok' });
        const b = await connect(agent);
        b.write(requestBytes({ body: chatBody('test-model', { user: `client-b-${round}` }) }));
        const rb = await firstFinal(b, `client B's answer (round ${round})`);
        if (!rb.final || rb.rs[0].status !== 200) {
          problems.push(`round ${round}: client B did not get a 200 first: ${show(rb.text)}`);
        } else {
          let body;
          try { body = JSON.parse(rb.final.body.toString('utf8')); } catch (_) { body = undefined; }
          if (!body || body.echo !== `client-b-${round}`) {
            problems.push(`round ${round}: client B got another client's answer (echo ${body && body.echo}): ${show(rb.text)}`);
          }
        }
        a.destroy();
        b.destroy();
      }
      assert.ok(problems.length === 0, problems.join('\n'));
      // Every request reached the upstream once (none was answered from a stale buffer).
      assert.equal(chatReqs(up).length, 6, `the upstream saw ${chatReqs(up).length} chat requests, wanted 6`);
    });
  }
});

describe('204 No Content from the upstream', () => {
  it('is relayed without body framing and the client connection stays usable', async () => {
    const { agent, up } = await single();
    up.set({ mode: 'no_content', times: 1 });
    const c = await connect(agent);
    c.write(requestBytes({ body: chatBody('test-model', { user: 'first' }) }));
    await c.waitFor((x) => x.closed || x.responses().length >= 1, 'the 204');
    const [first] = c.responses();
    assert.ok(first, `no response: ${show(c.text())}`);
    assert.equal(first.status, 204, show(c.text()));
    assert.equal(first.header('transfer-encoding'), undefined, `a 204 with Transfer-Encoding: ${show(first.head)}`);
    assert.ok(first.header('content-length') === undefined || first.header('content-length') === '0', show(first.head));
    // A second request on the same connection gets its own answer, framed right after
    // the 204's head.
    c.write(requestBytes({ body: chatBody('test-model', { user: 'second' }) }));
    await c.waitFor((x) => x.closed || x.responses().filter((r) => r.complete).length >= 2 || x.responses().some((r) => Number.isNaN(r.status)),
      'the answer to the second request');
    const rs = c.responses();
    assert.equal(rs.length, 2, `wanted exactly 204 then 200 on the connection: ${show(c.text())}`);
    assert.equal(rs[1].status, 200, `the second response: ${show(c.text())}`);
    assert.ok(rs[1].complete, show(c.text()));
    const body = JSON.parse(rs[1].body.toString('utf8'));
    assert.equal(body.echo, 'second', show(c.text()));
    assert.equal(chatReqs(up).length, 2);
  });
});
