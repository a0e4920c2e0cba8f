'use strict';
// Hostile requests (issue 7, points 3 and 4): nothing from a request reaches a response
// head or the upstream unvalidated, and the local HTTP parser is strict. Each case is sent
// as raw bytes and the answer read as raw bytes, so an injected header line or a second
// answer on the connection is seen as the client's HTTP parser would see it.
const { describe, it, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { testScope, chatBody } = require('./lib/proxy_client');
const { rawConnect, requestBytes } = require('./lib/raw_http');

const { run: runCleanups, upstream, agentWith, cleanups } = testScope();
afterEach(runCleanups);

async function single() {
  const up = await upstream({ name: 'only' });
  const agent = await agentWith({ endpoints: [{ name: 'only', url: up.url }] });
  up.clearRequests(); // the initial probe's GET /v1/models
  return { agent, up };
}

// One raw request on a fresh connection -> the first response (complete, or whatever
// arrived before the peer closed), the raw text, and the connection.
async function exchange(agent, bytes, what, timeoutMs = 10000) {
  const c = await rawConnect(agent.port);
  cleanups.push(() => c.destroy());
  c.write(bytes);
  await c.waitFor((x) => x.closed || x.responses().some((r) => r.complete || Number.isNaN(r.status)), what, timeoutMs);
  return { c, r: c.responses()[0], text: c.text() };
}

const show = (t) => JSON.stringify(t.length > 700 ? `${t.slice(0, 700)}...` : t);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

// Every header line of a response head is `token: value` with nothing that a client would
// read as a header the agent did not mean to send.
function headProblems(r) {
  const out = [];
  for (const line of r.headerLines) {
    const i = line.indexOf(':');
    if (i <= 0 || !TOKEN.test(line.slice(0, i))) out.push(`not a header line: ${JSON.stringify(line)}`);
    if (/^(set-cookie|x-injected)\s*:/i.test(line)) out.push(`injected header: ${JSON.stringify(line)}`);
    if (/[\x00-\x08\x0a-\x1f\x7f]/.test(line)) out.push(`control byte in ${JSON.stringify(line)}`);
  }
  return out;
}

describe('the requested model name', () => {
  const bad = [
    ['CRLF + Set-Cookie + X-Injected', 'evil\r\nSet-Cookie: pwn=1\r\nX-Injected: yes'],
    ['LF only', 'evil\nX-Injected: yes'],
    ['CR only', 'evil\rX-Injected: yes'],
    ['a served model + CRLF', 'test-model\r\nX-Injected: yes'],
    ['CRLF around the 63-byte cap', `${'m'.repeat(55)}\r\nX-Injected: yes`],
    ['NUL', 'evil\u0000X-Injected: yes'],
    ['TAB', 'evil\tmodel'],
    ['DEL', 'evil\u007fmodel'],
    ['non-ASCII', 'mod\u00e8le'],
    ['100 bytes', 'm'.repeat(100)],
    ['64 bytes (one over the cap)', 'm'.repeat(64)],
  ];
  for (const [label, model] of bad) {
    it(`${label}: 400, no injected header, the upstream sees nothing`, async () => {
      const { agent, up } = await single();
      const problems = [];
      for (const stream of [false, true]) {
        const { r, text } = await exchange(agent, requestBytes({ body: chatBody(model, stream ? { stream: true } : {}) }),
          `the answer (stream=${stream})`);
        if (!r || r.status !== 400) problems.push(`stream=${stream}: wanted 400, got ${r ? r.status : 'nothing'}: ${show(text)}`);
        if (r) {
          for (const p of headProblems(r)) problems.push(`stream=${stream}: ${p}`);
          const echoed = r.headerLines.find((l) => /^x-edgeway-model:/i.test(l));
          if (echoed && echoed.length > 'x-edgeway-model: '.length + 63) problems.push(`stream=${stream}: x-edgeway-model over the cap: ${echoed}`);
          if (r.status === 400) {
            let body;
            try { body = JSON.parse(r.body.toString('utf8')); } catch (_) { body = undefined; }
            if (!body || !body.error || body.error.type !== 'invalid_request_error') problems.push(`stream=${stream}: not an OpenAI invalid_request_error: ${show(text)}`);
          }
        }
      }
      assert.ok(problems.length === 0, problems.join('\n'));
      assert.deepEqual(up.requests.map((q) => `${q.method} ${q.path}`), [], 'a request with a bad model name reached the upstream');
    });
  }

  it('within the cap: a served name is answered and named in x-edgeway-model; an unknown 63-byte name is 404', async () => {
    const { agent, up } = await single();
    const ok = await exchange(agent, requestBytes({ body: chatBody('test-model') }), 'the answer');
    assert.equal(ok.r.status, 200, show(ok.text));
    assert.equal(ok.r.header('x-edgeway-model'), 'test-model', show(ok.text));
    const long = await exchange(agent, requestBytes({ body: chatBody('m'.repeat(63)) }), 'the answer');
    assert.equal(long.r.status, 404, show(long.text));
    assert.deepEqual(headProblems(long.r), [], show(long.text));
    assert.equal(up.requests.length, 1);
  });
});

describe('request paths', () => {
  // POST is what is forwarded upstream; a GET under /v1/ other than /v1/models is 405.
  const escapes = [
    '/v1/../x',
    '/v1/../../admin/keys',
    '/v1/chat/../../x',
    '/v1/chat/completions/..',
    '/v1/./chat/completions',
    '/v1/%2e%2e/x',
    '/v1/%2E%2E/%2e%2e/admin/keys',
    '/v1/.%2e/chat/completions',
    '/v1/%2e./x',
    '/v1/%2e/chat/completions',
    '/v1/..\\..\\admin',
    '/v1/chat\\completions',
  ];
  it('dot-segments (plain or percent-encoded) and backslashes: 400, never forwarded', async () => {
    const { agent, up } = await single();
    const problems = [];
    for (const path of escapes) {
      const { r, text } = await exchange(agent, requestBytes({ method: 'POST', path, body: chatBody() }), `the answer to POST ${path}`);
      if (!r || r.status !== 400) problems.push(`POST ${path}: wanted 400, got ${r ? r.status : 'nothing'}: ${show(text)}`);
    }
    for (const path of ['/v1/../x', '/v1/%2e%2e/models']) {
      const { r, text } = await exchange(agent, requestBytes({ method: 'GET', path }), `the answer to GET ${path}`);
      if (!r || (r.status !== 400 && r.status !== 405)) problems.push(`GET ${path}: wanted 400 (or 405), got ${r ? r.status : 'nothing'}: ${show(text)}`);
    }
    const reached = up.requests.map((q) => `${q.method} ${q.path}`);
    assert.ok(problems.length === 0 && reached.length === 0,
      `${problems.join('\n')}\nreached the upstream (with the endpoint's key): ${JSON.stringify(reached)}`);
  });

  it('plain paths still work: /v1/models locally, /v1/embeddings forwarded as is', async () => {
    const { agent, up } = await single();
    const models = await exchange(agent, requestBytes({ method: 'GET', path: '/v1/models' }), '/v1/models');
    assert.equal(models.r.status, 200, show(models.text));
    const emb = await exchange(agent, requestBytes({ path: '/v1/embeddings', body: { model: 'test-model', input: 'hi' } }), '/v1/embeddings');
    assert.equal(emb.r.status, 200, show(emb.text));
    assert.deepEqual(up.requests.map((q) => q.path), ['/v1/embeddings']);
  });
});

describe('strict HTTP on the local side', () => {
  const head = 'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';
  const json = JSON.stringify(chatBody());
  const pipelined = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
  const cases = [
    ['5\\r\\nhelloXX0 (the issue\'s bytes)', `${head}5\r\nhelloXX0\r\n\r\n${pipelined}`],
    ['a JSON chunk followed by XX', `${head}${json.length.toString(16)}\r\n${json}XX0\r\n\r\n${pipelined}`],
    ['a JSON chunk followed by LF only', `${head}${json.length.toString(16)}\r\n${json}\n0\r\n\r\n${pipelined}`],
  ];
  for (const [label, bytes] of cases) {
    it(`chunk data not followed by CRLF (${label}): 400, the connection closes, the pipelined request is not answered`, async () => {
      const { agent, up } = await single();
      const { c } = await exchange(agent, bytes, 'the answer');
      await c.waitClosed(10000).catch(() => { /* checked below */ });
      const rs = c.responses();
      const text = c.text();
      assert.ok(rs.length >= 1, `no answer: ${show(text)}`);
      assert.equal(rs[0].status, 400, `wanted 400 for the bad chunk framing: ${show(text)}`);
      assert.equal(rs.length, 1, `more than one answer on the connection (the pipelined request was read): ${show(text)}`);
      assert.ok(c.closed, `the connection stayed open after a framing error: ${show(text)}`);
      assert.deepEqual(up.requests.map((q) => q.path), [], 'the badly framed request reached the upstream');
    });
  }

  const badNames = [
    ['a space inside', 'X A: b'],
    ['a space before the colon', 'X-A : b'],
    ['a tab inside', 'X\tA: b'],
    ['a double quote', 'X"A: b'],
    ['parentheses', 'X(A): b'],
    ['a slash', 'X/A: b'],
  ];
  for (const [label, line] of badNames) {
    it(`a header name with ${label} (${JSON.stringify(line)}): 400, nothing forwarded`, async () => {
      const { agent, up } = await single();
      const problems = [];
      for (const [method, path, body] of [['GET', '/healthz', ''], ['POST', '/v1/chat/completions', JSON.stringify(chatBody())]]) {
        const bytes = `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${line}\r\n` +
          (body ? `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` : '') + `\r\n${body}`;
        const { r, text } = await exchange(agent, bytes, `the answer to ${method} ${path}`);
        if (!r || r.status !== 400) problems.push(`${method} ${path}: wanted 400, got ${r ? r.status : 'nothing'}: ${show(text)}`);
      }
      assert.ok(problems.length === 0, problems.join('\n'));
      assert.deepEqual(up.requests.map((q) => q.path), [], 'the request reached the upstream');
    });
  }

  it('well-formed token header names are accepted (control)', async () => {
    const { agent } = await single();
    const { r, text } = await exchange(agent, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Odd!#$%&'*+.^_`|~1: b\r\n\r\n", 'the answer');
    assert.equal(r.status, 200, show(text));
  });
});
