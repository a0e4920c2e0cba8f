'use strict';
// End to end with two more client libraries nobody on the project wrote (issue 10, point 7):
// LangChain's ChatOpenAI (@langchain/openai) and Vercel's AI SDK (ai + @ai-sdk/openai-
// compatible), through edgeway to the fake upstreams: JSON, streaming, a failover the app
// does not see, and what each raises when every upstream is down, every one is rate
// limited, a stream breaks after its first token, and the upstream refuses the request (400).
// Each library is skipped, with the reason printed, where it cannot run (Node older than
// its engines field, or not installed).
const { describe, it, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { track, describeError, failure, optional } = require('./helpers');

const langchain = optional('@langchain/openai');
const aiSdk = optional('ai');
const compat = optional('@ai-sdk/openai-compatible');

const t = track();
afterEach(() => t.cleanup());

async function pair() {
  const primary = await t.upstream({ name: 'primary' });
  const secondary = await t.upstream({ name: 'secondary' });
  const agent = await t.agent({
    agent: { max_attempts: 2 },
    endpoints: [
      { name: 'primary', url: primary.url, priority: 10 },
      { name: 'secondary', url: secondary.url, priority: 5 },
    ],
  });
  return { agent, primary, secondary };
}

function posts(up) { return up.requests.filter((r) => r.method === 'POST').length; }

describe(`LangChain ChatOpenAI (@langchain/openai ${langchain.version}) through edgeway`, { skip: langchain.skip }, () => {
  const chat = (agent) => new langchain.mod.ChatOpenAI({
    model: 'test-model', apiKey: 'sk-local', maxRetries: 0, configuration: { baseURL: `${agent.url}/v1` },
  });

  it('invoke (JSON) and stream: the upstream\'s answer, whole', async () => {
    const { agent } = await pair();
    const m = await chat(agent).invoke('hello');
    assert.equal(m.content, 'Hello from primary');
    let text = '';
    for await (const c of await chat(agent).stream('hello')) text += c.content;
    assert.equal(text, 'tok0 tok1 tok2 ');
  });

  it('a failover it does not see: primary 503, the secondary answers a stream', async () => {
    const { agent, primary } = await pair();
    primary.set({ mode: 'status', status: 503 });
    let text = '';
    for await (const c of await chat(agent).stream('hello')) text += c.content;
    assert.equal(text, 'tok0 tok1 tok2 ');
    assert.equal(posts(primary), 1);
  });

  it('all down: InternalServerError 503 all_endpoints_down', async () => {
    const { agent, primary, secondary } = await pair();
    primary.set({ mode: 'status', status: 500 });
    secondary.set({ mode: 'status', status: 502 });
    const e = await failure(() => chat(agent).invoke('hello'));
    assert.equal(e.status, 503, describeError(e));
    assert.equal(e.code, 'all_endpoints_down', describeError(e));
  });

  it('all rate limited: RateLimitError 429 (LangChain code MODEL_RATE_LIMIT)', async () => {
    const { agent, primary, secondary } = await pair();
    for (const up of [primary, secondary]) up.set({ mode: 'status', status: 429, headers: { 'Retry-After': '5' } });
    const e = await failure(() => chat(agent).invoke('hello'));
    assert.equal(e.constructor.name, 'RateLimitError', describeError(e));
    assert.equal(e.status, 429);
    assert.equal(e.lc_error_code, 'MODEL_RATE_LIMIT');
  });

  it('a stream broken after its first token raises upstream_stream_error, never a partial answer as complete', async () => {
    const { agent, primary } = await pair();
    primary.set({ mode: 'drop_mid_stream', chunks: 5 });
    let text = '';
    const e = await failure(async () => {
      for await (const c of await chat(agent).stream('hello')) text += c.content;
      return text;
    });
    assert.equal(e.code, 'upstream_stream_error', describeError(e));
    assert.equal(text, 'tok0 ');
  });

  it('an upstream 400: BadRequestError 400, not failed over', async () => {
    const { agent, primary, secondary } = await pair();
    primary.set({ mode: 'status', status: 400 });
    const e = await failure(() => chat(agent).invoke('hello'));
    assert.equal(e.constructor.name, 'BadRequestError', describeError(e));
    assert.equal(e.status, 400);
    assert.equal(posts(secondary), 0);
  });
});

const aiSkip = aiSdk.skip || compat.skip;
describe(`AI SDK (ai ${aiSdk.version}, @ai-sdk/openai-compatible ${compat.version}) through edgeway`, { skip: aiSkip }, () => {
  const model = (agent) => compat.mod.createOpenAICompatible({ name: 'edgeway', baseURL: `${agent.url}/v1`, apiKey: 'sk-local' })('test-model');

  // streamText never throws at the call: errors go to onError and to the streams. An app
  // that reads textStream sees a throw (a cut body) or, for an error before the stream,
  // `await text` rejecting; onError gets the cause either way.
  async function stream(agent) {
    const errors = [];
    const r = aiSdk.mod.streamText({ model: model(agent), prompt: 'hello', maxRetries: 0, onError: ({ error }) => errors.push(error) });
    let text = '';
    let thrown;
    try {
      for await (const d of r.textStream) text += d;
    } catch (e) {
      thrown = e;
    }
    // After textStream threw, this AI SDK leaves `text` pending: wait a bounded time.
    let final;
    let rejected;
    let timer;
    const pending = new Promise((resolve) => { timer = setTimeout(() => resolve('pending'), thrown ? 2000 : 15000); });
    try {
      final = await Promise.race([r.text, pending]);
    } catch (e) {
      rejected = e;
    }
    clearTimeout(timer);
    if (final === 'pending') final = undefined;
    return { text, thrown, final, rejected, errors };
  }

  it('generateText (JSON) and streamText: the upstream\'s answer, whole', async () => {
    const { agent } = await pair();
    const g = await aiSdk.mod.generateText({ model: model(agent), prompt: 'hello', maxRetries: 0 });
    assert.equal(g.text, 'Hello from primary');
    const s = await stream(agent);
    assert.equal(s.thrown, undefined, describeError(s.thrown));
    assert.equal(s.errors.length, 0, describeError(s.errors[0]));
    assert.equal(s.text, 'tok0 tok1 tok2 ');
    assert.equal(s.final, 'tok0 tok1 tok2 ');
  });

  it('a failover it does not see: primary 503, the secondary answers a stream', async () => {
    const { agent, primary } = await pair();
    primary.set({ mode: 'status', status: 503 });
    const s = await stream(agent);
    assert.equal(s.text, 'tok0 tok1 tok2 ');
    assert.equal(s.errors.length, 0);
    assert.equal(posts(primary), 1);
  });

  it('all down: APICallError 503 all_endpoints_down from generateText; the text of streamText rejects', async () => {
    const { agent, primary, secondary } = await pair();
    primary.set({ mode: 'status', status: 500 });
    secondary.set({ mode: 'status', status: 502 });
    const e = await failure(() => aiSdk.mod.generateText({ model: model(agent), prompt: 'hello', maxRetries: 0 }));
    assert.ok(compat.mod && aiSdk.mod.APICallError.isInstance(e), describeError(e));
    assert.equal(e.statusCode, 503, describeError(e));
    assert.match(e.responseBody, /all_endpoints_down/);
    const s = await stream(agent);
    assert.ok(s.rejected, 'await text resolved after an error answer');
    assert.equal(s.text, '');
    assert.equal(s.errors[0].statusCode, 503, describeError(s.errors[0]));
  });

  it('all rate limited: APICallError 429, retryable, with Retry-After in its headers', async () => {
    const { agent, primary, secondary } = await pair();
    for (const up of [primary, secondary]) up.set({ mode: 'status', status: 429, headers: { 'Retry-After': '5' } });
    const e = await failure(() => aiSdk.mod.generateText({ model: model(agent), prompt: 'hello', maxRetries: 0 }));
    assert.equal(e.statusCode, 429, describeError(e));
    assert.equal(e.isRetryable, true);
    assert.ok(Number(e.responseHeaders['retry-after']) >= 1, JSON.stringify(e.responseHeaders));
    assert.match(e.responseBody, /rate_limit_exceeded/);
  });

  it('a stream broken after its first token: textStream throws, onError has the cause; not a partial answer as complete', async () => {
    const { agent, primary } = await pair();
    primary.set({ mode: 'drop_mid_stream', chunks: 5 });
    const s = await stream(agent);
    const what = `thrown ${describeError(s.thrown)} rejected ${describeError(s.rejected)} final ${JSON.stringify(s.final)} errors ${s.errors.map(describeError)}`;
    assert.ok(s.thrown, `textStream must throw, not end as if complete: ${what}`);
    assert.equal(s.final, undefined, `await text resolved to a partial answer: ${what}`);
    assert.equal(s.text, 'tok0 ', what);
    assert.ok(s.errors.some((e) => e && (e.code === 'upstream_stream_error' || /terminated|mid-response/.test(String(e.message) + String(e.cause)))), what);
  });

  it('an upstream 400: APICallError 400, not retryable, not failed over', async () => {
    const { agent, primary, secondary } = await pair();
    primary.set({ mode: 'status', status: 400 });
    const e = await failure(() => aiSdk.mod.generateText({ model: model(agent), prompt: 'hello', maxRetries: 0 }));
    assert.equal(e.statusCode, 400, describeError(e));
    assert.equal(e.isRetryable, false);
    assert.equal(posts(secondary), 0);
  });
});
