'use strict';
// End to end with the official openai npm package as the client (issue 3, point 11):
// chat completions through edgeway, non-streaming and streaming, the x-edgeway-* headers
// as the SDK sees them, and a failover the SDK does not notice.
const { describe, it, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { loadSdk, track, client, collect, fakeStreamText, describeError, proxyClient, agentLib } = require('./helpers');

const { OpenAI, sdkVersion } = loadSdk();
const { chatReqs } = proxyClient;
const CHAT = '/chat/completions';
const MESSAGES = [{ role: 'user', content: 'hello' }];

const t = track();
afterEach(() => t.cleanup());

async function pair() {
  const primary = await t.upstream({ name: 'primary' });
  const secondary = await t.upstream({ name: 'secondary' });
  const agent = await t.agent({
    endpoints: [
      { name: 'primary', url: primary.url, priority: 10 },
      { name: 'secondary', url: secondary.url, priority: 5 },
    ],
  });
  return { agent, primary, secondary };
}

describe(`openai ${sdkVersion} through edgeway: chat`, () => {
  it('non-streaming: content and model as the upstream answered, x-edgeway-* headers readable via withResponse()', async () => {
    const { agent, primary, secondary } = await pair();
    const sdk = client(OpenAI, agent, { maxRetries: 0 });
    const { data, response } = await sdk.chat.completions.create({ model: 'test-model', messages: MESSAGES }).withResponse();
    const what = `${JSON.stringify(data)} headers ${JSON.stringify(Object.fromEntries(response.headers.entries()))}`;
    assert.equal(response.status, 200, what);
    assert.equal(data.object, 'chat.completion', what);
    assert.equal(data.model, 'test-model', what);
    assert.equal(data.choices[0].message.role, 'assistant', what);
    assert.equal(data.choices[0].message.content, 'Hello from primary', what);
    assert.equal(data.choices[0].finish_reason, 'stop', what);
    assert.deepEqual(data.usage, { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 }, what);
    assert.equal(response.headers.get('x-edgeway-endpoint'), 'primary', what);
    assert.equal(response.headers.get('x-edgeway-model'), 'test-model', what);
    assert.equal(response.headers.get('x-edgeway-attempts'), '1', what);
    // The upstream got the SDK's request with the endpoint's key, not the SDK's apiKey.
    const reqs = chatReqs(primary);
    assert.equal(reqs.length, 1);
    assert.equal(reqs[0].json.model, 'test-model');
    assert.deepEqual(reqs[0].json.messages, MESSAGES);
    assert.equal(reqs[0].headers.authorization, `Bearer ${agentLib.TEST_KEY}`);
    assert.equal(chatReqs(secondary).length, 0);
  });

  it('non-streaming: asResponse() gives the raw response with the headers and the JSON body', async () => {
    const { agent } = await pair();
    const sdk = client(OpenAI, agent, { maxRetries: 0 });
    const raw = await sdk.chat.completions.create({ model: 'test-model', messages: MESSAGES }).asResponse();
    assert.equal(raw.status, 200);
    assert.match(String(raw.headers.get('content-type')), /^application\/json/);
    assert.equal(raw.headers.get('x-edgeway-endpoint'), 'primary');
    const body = await raw.json();
    assert.equal(body.choices[0].message.content, 'Hello from primary');
  });

  it('streaming: the chunks concatenate to what the upstream sent and the stream ends normally', async () => {
    const { agent, primary } = await pair();
    primary.set({ mode: 'ok', chunks: 7, chunkDelayMs: 5 });
    const sdk = client(OpenAI, agent, { maxRetries: 0 });
    const { data: stream, response } = await sdk.chat.completions
      .create({ model: 'test-model', messages: MESSAGES, stream: true })
      .withResponse();
    assert.equal(response.status, 200);
    assert.match(String(response.headers.get('content-type')), /^text\/event-stream/);
    assert.equal(response.headers.get('x-edgeway-endpoint'), 'primary');
    assert.equal(response.headers.get('x-edgeway-model'), 'test-model');
    const r = await collect(stream);
    const what = `error ${describeError(r.error)} chunks ${JSON.stringify(r.chunks)}`;
    assert.equal(r.error, undefined, `the stream raised: ${what}`);
    assert.equal(r.content, fakeStreamText(7), what);
    assert.equal(r.finish, 'stop', what);
    // role chunk + 7 content chunks + finish chunk; [DONE] is not yielded.
    assert.equal(r.chunks.length, 9, what);
    for (const c of r.chunks) {
      assert.equal(c.object, 'chat.completion.chunk', what);
      assert.equal(c.model, 'test-model', what);
    }
    assert.equal(chatReqs(primary).length, 1);
    assert.equal(chatReqs(primary)[0].json.stream, true);
  });

  it('failover the SDK does not see: primary 503, secondary answers, one SDK request (maxRetries: 0)', async () => {
    const { agent, primary, secondary } = await pair();
    primary.set({ mode: 'status', status: 503, match: CHAT });
    const counter = {};
    const sdk = client(OpenAI, agent, { maxRetries: 0, counter });
    const { data, response } = await sdk.chat.completions.create({ model: 'test-model', messages: MESSAGES }).withResponse();
    const what = `${JSON.stringify(data)} headers ${JSON.stringify(Object.fromEntries(response.headers.entries()))}`;
    assert.equal(data.choices[0].message.content, 'Hello from secondary', what);
    assert.equal(data.model, 'test-model', what);
    assert.equal(response.headers.get('x-edgeway-endpoint'), 'secondary', what);
    assert.equal(response.headers.get('x-edgeway-attempts'), '2', what);
    assert.equal(counter.requests, 1, 'HTTP requests the SDK made');
    assert.equal(chatReqs(primary).length, 1);
    assert.equal(chatReqs(secondary).length, 1);
  });

  it('streaming failover before commit: primary 503, the stream comes whole from the secondary', async () => {
    const { agent, primary, secondary } = await pair();
    primary.set({ mode: 'status', status: 503, match: CHAT });
    const sdk = client(OpenAI, agent, { maxRetries: 0 });
    const { data: stream, response } = await sdk.chat.completions
      .create({ model: 'test-model', messages: MESSAGES, stream: true })
      .withResponse();
    assert.equal(response.headers.get('x-edgeway-endpoint'), 'secondary');
    const r = await collect(stream);
    assert.equal(r.error, undefined, `the stream raised: ${describeError(r.error)}`);
    assert.equal(r.content, fakeStreamText(3));
    assert.ok(r.chunks.every((c) => c.id.startsWith('chatcmpl-fake-secondary-')), JSON.stringify(r.chunks));
    assert.equal(chatReqs(primary).length, 1);
    assert.equal(chatReqs(secondary).length, 1);
  });

  it('models.list(): the configured models', async () => {
    const { agent } = await pair();
    const sdk = client(OpenAI, agent, { maxRetries: 0 });
    const ids = [];
    for await (const m of sdk.models.list()) ids.push(m.id);
    assert.deepEqual(ids, ['test-model']);
  });
});
