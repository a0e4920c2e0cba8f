'use strict';
// End to end with the official openai npm package (issue 10): the error classes an app
// gets when every upstream is rate limited (RateLimitError with Retry-After), rejects its
// key (503 upstream_auth_failed) or refuses the request (BadRequestError), models.retrieve,
// voice (audio.transcriptions with failover, audio.speech bytes), the Responses API's
// broken stream, and the SDK's project/organization options reaching the upstream.
const { describe, it, afterEach } = require('node:test');
const assert = require('node:assert/strict');
// The SDK's file uploads need a global File, which Node 18 (Debian 12) has only in node:buffer.
if (typeof globalThis.File === 'undefined') globalThis.File = require('node:buffer').File;
const { loadSdk, track, client, describeError, failure, upstreamLib } = require('./helpers');

const { OpenAI, sdkVersion } = loadSdk();
const MESSAGES = [{ role: 'user', content: 'hello' }];

const t = track();
afterEach(() => t.cleanup());

async function pair(extra = {}) {
  const primary = await t.upstream({ name: 'primary', models: extra.models });
  const secondary = await t.upstream({ name: 'secondary', models: extra.models });
  const agent = await t.agent({
    endpoints: [
      Object.assign({ name: 'primary', url: primary.url, priority: 10 }, extra.primary || {}),
      Object.assign({ name: 'secondary', url: secondary.url, priority: 5 }, extra.secondary || {}),
    ],
    fallback: extra.fallback,
  });
  return { agent, primary, secondary };
}

describe(`openai ${sdkVersion} through edgeway: app patterns`, () => {
  it('every upstream 429: RateLimitError 429 with Retry-After, code rate_limit_exceeded; again while they stay limited', async () => {
    const { agent, primary, secondary } = await pair();
    for (const up of [primary, secondary]) up.set({ mode: 'status', status: 429, headers: { 'Retry-After': '20' } });
    const sdk = client(OpenAI, agent, { maxRetries: 0 });
    for (let round = 0; round < 2; round++) {
      const e = await failure(() => sdk.chat.completions.create({ model: 'test-model', messages: MESSAGES }));
      const what = describeError(e);
      assert.ok(e instanceof OpenAI.RateLimitError, `not a RateLimitError: ${what}`);
      assert.equal(e.status, 429, what);
      assert.equal(e.code, 'rate_limit_exceeded', what);
      assert.equal(e.type, 'rate_limit_error', what);
      const ra = Number(e.headers.get('retry-after'));
      assert.ok(ra >= 1 && ra <= 20, what);
      assert.ok(Number(e.headers.get('retry-after-ms')) > 0, what);
    }
  });

  it('every key rejected: InternalServerError 503 with code upstream_auth_failed naming the endpoint, never 401', async () => {
    const { agent, primary, secondary } = await pair();
    primary.set({ mode: 'status', status: 401 });
    secondary.set({ mode: 'status', status: 403 });
    const sdk = client(OpenAI, agent, { maxRetries: 0 });
    const e = await failure(() => sdk.chat.completions.create({ model: 'test-model', messages: MESSAGES }));
    const what = describeError(e);
    assert.ok(e instanceof OpenAI.InternalServerError, what);
    assert.equal(e.status, 503, what);
    assert.equal(e.code, 'upstream_auth_failed', what);
    assert.match(e.message, /secondary|primary/, what);
    assert.ok(!(e instanceof OpenAI.AuthenticationError), what);
  });

  it('an upstream 400 is the app\'s own BadRequestError with the upstream\'s message, not failed over', async () => {
    const { agent, primary, secondary } = await pair();
    primary.set({ mode: 'status', status: 400, body: { error: { message: 'messages must not be empty', type: 'invalid_request_error', param: 'messages', code: null } } });
    const sdk = client(OpenAI, agent, { maxRetries: 0 });
    const e = await failure(() => sdk.chat.completions.create({ model: 'test-model', messages: MESSAGES }));
    assert.ok(e instanceof OpenAI.BadRequestError, describeError(e));
    assert.equal(e.param, 'messages');
    assert.match(e.message, /messages must not be empty/);
    assert.equal(secondary.requests.filter((r) => r.method === 'POST').length, 0);
  });

  it('models.retrieve(): a configured model; NotFoundError for another', async () => {
    const { agent } = await pair();
    const sdk = client(OpenAI, agent, { maxRetries: 0 });
    const m = await sdk.models.retrieve('test-model');
    assert.equal(m.id, 'test-model');
    assert.equal(m.object, 'model');
    const e = await failure(() => sdk.models.retrieve('gpt-unknown'));
    assert.ok(e instanceof OpenAI.NotFoundError, describeError(e));
  });

  it('the SDK\'s organization and project options reach the upstream; its own key stays local', async () => {
    const { agent, primary } = await pair();
    const sdk = new OpenAI({ baseURL: `${agent.url}/v1`, apiKey: 'sk-app-local', organization: 'org-kiosk', project: 'proj_kiosk', maxRetries: 0 });
    await sdk.chat.completions.create({ model: 'test-model', messages: MESSAGES });
    const h = primary.requests.filter((r) => r.method === 'POST').pop().headers;
    assert.equal(h['openai-organization'], 'org-kiosk');
    assert.equal(h['openai-project'], 'proj_kiosk');
    assert.notEqual(h.authorization, 'Bearer sk-app-local');
  });

  it('audio.transcriptions.create(): a 503 fails over; the audio arrives unchanged, the model as the fallback', async () => {
    const { agent, primary, secondary } = await pair({
      primary: { models: ['whisper-1'] }, secondary: { models: ['whisper-large'] }, fallback: { 'whisper-1': 'whisper-large' },
    });
    primary.set({ mode: 'status', status: 503 });
    const audio = Buffer.from(Array.from({ length: 40000 }, (_, i) => (i * 29 + 3) & 0xff));
    const sdk = client(OpenAI, agent, { maxRetries: 0 });
    const file = await OpenAI.toFile(audio, 'speech.wav', { type: 'audio/wav' });
    const r = await sdk.audio.transcriptions.create({ file, model: 'whisper-1' });
    assert.equal(r.text, 'transcript from secondary');
    const got = secondary.requests.filter((q) => q.path.endsWith('/audio/transcriptions'));
    assert.equal(got.length, 1);
    assert.equal(got[0].model, 'whisper-large');
    assert.ok(got[0].raw.includes(audio), 'the audio bytes changed on the way');
  });

  it('audio.speech.create(): the audio bytes as the upstream sent them', async () => {
    const { agent } = await pair({ models: ['tts-1'], primary: { models: ['tts-1'] }, secondary: { models: ['tts-1'] } });
    const sdk = client(OpenAI, agent, { maxRetries: 0 });
    const res = await sdk.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'Hello' });
    const bytes = Buffer.from(await res.arrayBuffer());
    assert.equal(res.headers.get('content-type'), 'audio/mpeg');
    assert.ok(bytes.equals(upstreamLib.SPEECH_BYTES), `got ${bytes.length} bytes`);
  });

  it('responses.create({stream}): whole stream ends normally; a broken one makes the iterator throw', async () => {
    const { agent, primary } = await pair();
    const sdk = client(OpenAI, agent, { maxRetries: 0 });
    const types = [];
    for await (const ev of await sdk.responses.create({ model: 'test-model', input: 'hi', stream: true })) types.push(ev.type);
    assert.equal(types[types.length - 1], 'response.completed', JSON.stringify(types));
    primary.set({ mode: 'drop_mid_stream' });
    const seen = [];
    const e = await failure(async () => {
      for await (const ev of await sdk.responses.create({ model: 'test-model', input: 'hi', stream: true })) seen.push(ev);
      return seen.map((x) => x.type);
    });
    assert.ok(e, 'a broken Responses stream ended as if complete');
    // The in-band event is the Responses API's own error shape, seen before the cut.
    const err = seen.find((x) => x.type === 'error');
    assert.ok(err, `no error event before the cut: ${JSON.stringify(seen.map((x) => x.type))} ${describeError(e)}`);
    assert.equal(err.code, 'upstream_stream_error');
  });
});
