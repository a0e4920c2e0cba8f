'use strict';
// End to end with the official openai npm package (issue 3, point 11): the status and the
// error class the SDK raises when edgeway answers an error, that edgeway's
// `x-should-retry: false` stops the SDK's own retries, and that a stream broken after
// commit makes the SDK's iterator throw instead of ending as if the answer were complete.
const fs = require('node:fs');
const path = require('node:path');
const { describe, it, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { loadSdk, track, client, collect, describeError, proxyClient, agentLib } = require('./helpers');

const { OpenAI, sdkVersion } = loadSdk();
const { chatReqs } = proxyClient;
const CHAT = '/chat/completions';
const MESSAGES = [{ role: 'user', content: 'hello' }];

const t = track();
afterEach(() => t.cleanup());

async function pair(agentKeys = {}) {
  const primary = await t.upstream({ name: 'primary' });
  const secondary = await t.upstream({ name: 'secondary' });
  const agent = await t.agent({
    agent: agentKeys,
    endpoints: [
      { name: 'primary', url: primary.url, priority: 10 },
      { name: 'secondary', url: secondary.url, priority: 5 },
    ],
  });
  return { agent, primary, secondary };
}

// Runs fn, which must reject; returns the error.
async function failure(fn) {
  let value;
  try {
    value = await fn();
  } catch (e) {
    return e;
  }
  assert.fail(`expected the SDK to raise, it returned ${JSON.stringify(value)}`);
  return undefined;
}

describe(`openai ${sdkVersion} through edgeway: errors`, () => {
  it('every upstream failing: InternalServerError 503 with edgeway\'s message, and the SDK (default maxRetries) does not retry', async () => {
    const { agent, primary, secondary } = await pair({ max_attempts: 2 });
    primary.set({ mode: 'status', status: 503, match: CHAT });
    secondary.set({ mode: 'status', status: 500, match: CHAT });
    const counter = {};
    // Default maxRetries (2): without x-should-retry: false the SDK would retry a 503.
    const sdk = client(OpenAI, agent, { counter });
    assert.equal(sdk.maxRetries, 2, 'the SDK default this test relies on');
    const err = await failure(() => sdk.chat.completions.create({ model: 'test-model', messages: MESSAGES }));
    const what = describeError(err);
    assert.ok(err instanceof OpenAI.InternalServerError, `not an InternalServerError: ${what}`);
    assert.ok(err instanceof OpenAI.APIError, what);
    assert.equal(err.status, 503, what);
    assert.equal(err.type, 'server_error', what);
    assert.ok(err.error && typeof err.error.message === 'string' && err.error.message.length > 0, what);
    assert.ok(err.message.includes(err.error.message), `the SDK's message does not carry edgeway's: ${what}`);
    // edgeway's own message, not an upstream's error body passed through.
    assert.doesNotMatch(err.message, /fake upstream/, what);
    assert.equal(err.headers.get('x-should-retry'), 'false', what);
    assert.match(String(err.headers.get('retry-after')), /^\d+$/, what);
    // Exactly one request reached edgeway: the SDK made one, edgeway counted one, and the
    // upstreams saw just the attempts of that one.
    assert.equal(counter.requests, 1, `HTTP requests the SDK made: ${what}`);
    const s = await agent.status();
    assert.equal(s.metrics.total, 1, JSON.stringify(s.metrics));
    assert.equal(s.metrics.failed, 1, JSON.stringify(s.metrics));
    const attempts = Number(err.headers.get('x-edgeway-attempts'));
    assert.equal(attempts, 2, what);
    assert.equal(chatReqs(primary).length + chatReqs(secondary).length, attempts, 'upstream requests vs attempts');
  });

  it('unknown model: NotFoundError 404, code model_not_found, no upstream request', async () => {
    const { agent, primary, secondary } = await pair();
    const counter = {};
    const sdk = client(OpenAI, agent, { counter });
    const err = await failure(() => sdk.chat.completions.create({ model: 'no-such-model', messages: MESSAGES }));
    const what = describeError(err);
    assert.ok(err instanceof OpenAI.NotFoundError, `not a NotFoundError: ${what}`);
    assert.equal(err.status, 404, what);
    assert.equal(err.code, 'model_not_found', what);
    assert.equal(err.type, 'invalid_request_error', what);
    assert.equal(err.param, 'model', what);
    assert.match(err.message, /no-such-model/, what);
    assert.equal(counter.requests, 1, 'the SDK does not retry a 404');
    assert.equal(chatReqs(primary).length + chatReqs(secondary).length, 0);
  });

  it('local_token_file set (0600): a wrong or missing token is AuthenticationError 401; the right one works and stays local', async () => {
    const up = await t.upstream({ name: 'only' });
    const dir = agentLib.tmpDir('edgeway-e2e-token-');
    const tokenFile = path.join(dir, 'local.token');
    const token = 'local-token-e2e-0123456789';
    fs.writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
    fs.chmodSync(tokenFile, 0o600);
    const agent = await t.agent({
      agent: { local_token_file: tokenFile },
      endpoints: [{ name: 'only', url: up.url }],
    });

    for (const apiKey of ['wrong-token', `${token}x`]) {
      const counter = {};
      const sdk = client(OpenAI, agent, { apiKey, counter });
      const err = await failure(() => sdk.chat.completions.create({ model: 'test-model', messages: MESSAGES }));
      const what = `apiKey ${apiKey}: ${describeError(err)}`;
      assert.ok(err instanceof OpenAI.AuthenticationError, `not an AuthenticationError: ${what}`);
      assert.equal(err.status, 401, what);
      assert.equal(err.type, 'authentication_error', what);
      assert.equal(counter.requests, 1, `the SDK does not retry a 401: ${what}`);
    }
    // No Authorization header at all (the SDK always sends one; strip it per request).
    {
      const sdk = client(OpenAI, agent, { apiKey: token });
      const err = await failure(() => sdk.chat.completions.create(
        { model: 'test-model', messages: MESSAGES },
        { headers: { Authorization: null } },
      ));
      const what = describeError(err);
      assert.ok(err instanceof OpenAI.AuthenticationError, `no token: not an AuthenticationError: ${what}`);
      assert.equal(err.status, 401, what);
    }
    assert.equal(chatReqs(up).length, 0, 'an unauthorised request reached the upstream');

    const sdk = client(OpenAI, agent, { apiKey: token, maxRetries: 0 });
    const ok = await sdk.chat.completions.create({ model: 'test-model', messages: MESSAGES });
    assert.equal(ok.choices[0].message.content, 'Hello from only');
    const reqs = chatReqs(up);
    assert.equal(reqs.length, 1);
    assert.equal(reqs[0].headers.authorization, `Bearer ${agentLib.TEST_KEY}`, 'the local token went upstream');
  });

  it('oversize request (max_request_bytes = 2048): APIError 413, nothing upstream', async () => {
    const { agent, primary, secondary } = await pair({ max_request_bytes: 2048 });
    const counter = {};
    const sdk = client(OpenAI, agent, { counter });
    const long = [{ role: 'user', content: 'x'.repeat(6000) }];
    const err = await failure(() => sdk.chat.completions.create({ model: 'test-model', messages: long }));
    const what = describeError(err);
    assert.ok(err instanceof OpenAI.APIError, `not an APIError: ${what}`);
    assert.ok(!(err instanceof OpenAI.APIConnectionError), `the SDK saw a broken connection instead of the 413: ${what}`);
    assert.equal(err.status, 413, what);
    assert.equal(err.type, 'invalid_request_error', what);
    assert.equal(err.code, 'request_too_large', what);
    assert.equal(counter.requests, 1, `the SDK does not retry a 413: ${what}`);
    assert.equal(chatReqs(primary).length + chatReqs(secondary).length, 0);
    // The agent serves on, and a request under the limit passes.
    const ok = await client(OpenAI, agent, { maxRetries: 0 }).chat.completions.create({ model: 'test-model', messages: MESSAGES });
    assert.equal(ok.choices[0].message.content, 'Hello from primary');
  });

  // A body far larger than the socket buffers can absorb: edgeway decides 413 from the
  // Content-Length before the body has arrived, so the client is still sending when the
  // answer is written. The SDK must still get the 413 (not a reset it would retry).
  it('oversize request of 16 MB (more than the socket buffers hold): still APIError 413, not a connection error', async () => {
    const { agent, primary, secondary } = await pair({ max_request_bytes: 2048 });
    const counter = {};
    const sdk = client(OpenAI, agent, { counter });
    const huge = [{ role: 'user', content: 'x'.repeat(16 * 1024 * 1024) }];
    const err = await failure(() => sdk.chat.completions.create({ model: 'test-model', messages: huge }));
    const what = describeError(err) + (err && err.cause ? ` cause: ${err.cause.cause || err.cause}` : '');
    assert.ok(!(err instanceof OpenAI.APIConnectionError),
      `the SDK saw a broken connection instead of the 413 (edgeway closed with unread request bytes: a TCP RST), ` +
      `and made ${counter.requests} requests: ${what}`);
    assert.ok(err instanceof OpenAI.APIError, `not an APIError: ${what}`);
    assert.equal(err.status, 413, what);
    assert.equal(err.code, 'request_too_large', what);
    assert.equal(counter.requests, 1, `the SDK does not retry a 413: ${what}`);
    assert.equal(chatReqs(primary).length + chatReqs(secondary).length, 0);
  });

  it('a stream broken after commit: the SDK\'s iterator throws upstream_stream_error, not a silent end', async () => {
    const { agent, primary, secondary } = await pair();
    primary.set({ mode: 'drop_mid_stream', chunks: 5 });
    const sdk = client(OpenAI, agent, { maxRetries: 0 });
    const { data: stream, response } = await sdk.chat.completions
      .create({ model: 'test-model', messages: MESSAGES, stream: true })
      .withResponse();
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-edgeway-endpoint'), 'primary');
    const r = await collect(stream);
    const what = `error ${describeError(r.error)} chunks ${JSON.stringify(r.chunks)}`;
    assert.ok(r.error, `the stream ended without an error, as if the answer were complete: ${what}`);
    assert.ok(r.error instanceof OpenAI.APIError, `not an APIError: ${what}`);
    assert.equal(r.error.code, 'upstream_stream_error', what);
    assert.equal(r.error.type, 'server_error', what);
    assert.ok(typeof r.error.message === 'string' && r.error.message.length > 0, what);
    // What came before the break is the primary's, and only the primary's.
    assert.equal(r.chunks.length, 2, what);
    assert.equal(r.content, 'tok0 ', what);
    assert.equal(r.finish, undefined, what);
    assert.ok(r.chunks.every((c) => c.id.startsWith('chatcmpl-fake-primary-')), what);
    assert.equal(chatReqs(secondary).length, 0, 'the broken stream was continued by the secondary');
    // The agent serves on.
    primary.set({ mode: 'ok' });
    const again = await collect(await sdk.chat.completions.create({ model: 'test-model', messages: MESSAGES, stream: true }));
    assert.equal(again.error, undefined, describeError(again.error));
    assert.equal(again.content, 'tok0 tok1 tok2 ');
  });
});
