'use strict';
// What edgeway sends upstream and relays back for ordinary app patterns (issue 10, points
// 2, 4 and 5): the header policy (what the fake upstream receives), auth_header, multipart
// transcription with the model rewritten per attempt and failover, /v1/audio/speech bytes,
// and the Responses API's own stream end and `event: error`.
const { describe, it, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { TEST_KEY } = require('./lib/agent');
const { SPEECH_BYTES } = require('./lib/fake_upstream');
const { testScope, chatBody, send } = require('./lib/proxy_client');

const { run: runCleanups, upstream, agentWith } = testScope();
afterEach(runCleanups);

function posts(up, suffix) { return up.requests.filter((r) => r.method === 'POST' && r.path.split('?')[0].endsWith(suffix)); }

// A request whose answer is read as bytes; `cut` tells whether the body ended unfinished.
function rawPost(agent, path, body, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: agent.port, method: 'POST', path, agent: false,
      headers: Object.assign({ 'Content-Length': body.length }, headers) }, (res) => {
      const parts = [];
      let cut = null;
      res.on('data', (c) => parts.push(c));
      res.on('error', (e) => { cut = e; });
      res.on('aborted', () => { cut = cut || new Error('aborted'); });
      res.on('close', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(parts), cut, complete: res.complete }));
    });
    req.setTimeout(15000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

const B = '----edgewayTestBoundary42';
function transcriptionForm(model, audio, extra = {}) {
  const parts = [];
  const field = (name, value) => parts.push(Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`, 'latin1'));
  field('model', model);
  parts.push(Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="file"; filename="speech.wav"\r\nContent-Type: audio/wav\r\n\r\n`, 'latin1'));
  parts.push(audio, Buffer.from('\r\n'));
  for (const [k, v] of Object.entries(extra)) field(k, v);
  parts.push(Buffer.from(`--${B}--\r\n`));
  return Buffer.concat(parts);
}
// "Audio" with every byte value, CR LF pairs and a line that starts like a delimiter.
const AUDIO = Buffer.concat([Buffer.from('RIFF'), Buffer.from(Array.from({ length: 50000 }, (_, i) => (i * 31 + 7) & 0xff)),
  Buffer.from(`\r\n--${B.slice(0, 12)}\r\n`), Buffer.from([0, 13, 10, 13, 10, 255])]);

describe('header policy', () => {
  it('forwards the OpenAI headers and the endpoint\'s own, never the client\'s Authorization, Cookie or others', async () => {
    const up = await upstream({ name: 'primary' });
    const agent = await agentWith({
      agent: { log_level: 'debug' },
      endpoints: [{ name: 'primary', url: up.url, headers: 'HTTP-Referer: https://kiosk.example; X-Title: Kiosk One' }],
    });
    const r = await send(agent, chatBody(), {
      headers: {
        'OpenAI-Organization': 'org-123', 'OpenAI-Project': 'proj_abc', 'OpenAI-Beta': 'assistants=v2',
        'Idempotency-Key': 'idem-1', 'X-Request-Id': 'req-from-app', Cookie: 'session=hunter2',
        'X-Stainless-Lang': 'js', 'X-Custom': 'nope',
      },
    });
    assert.equal(r.status, 200, r.body);
    const h = posts(up, '/chat/completions').pop().headers;
    assert.equal(h['openai-organization'], 'org-123');
    assert.equal(h['openai-project'], 'proj_abc');
    assert.equal(h['openai-beta'], 'assistants=v2');
    assert.equal(h['idempotency-key'], 'idem-1');
    assert.equal(h['x-request-id'], 'req-from-app');
    assert.equal(h['http-referer'], 'https://kiosk.example');
    assert.equal(h['x-title'], 'Kiosk One');
    assert.equal(h.authorization, `Bearer ${TEST_KEY}`, 'the endpoint key, not the client\'s');
    for (const k of ['cookie', 'x-stainless-lang', 'x-custom']) assert.equal(h[k], undefined, `${k} reached the upstream`);
    // The probes carry the endpoint's headers too (a provider may want them everywhere).
    const probe = up.requests.find((q) => q.method === 'GET');
    assert.equal(probe.headers['x-title'], 'Kiosk One');
    await agent.stop();
    assert.ok(!agent.stderr.includes(TEST_KEY), 'the key appeared in the log');
  });

  it('the client\'s Authorization (its local token) never goes upstream', async () => {
    const up = await upstream({ name: 'primary' });
    const agent = await agentWith({ endpoints: [{ name: 'primary', url: up.url }] });
    const r = await send(agent, chatBody(), { headers: { Authorization: 'Bearer sk-client-own-key' } });
    assert.equal(r.status, 200, r.body);
    const h = posts(up, '/chat/completions').pop().headers;
    assert.equal(h.authorization, `Bearer ${TEST_KEY}`);
    assert.ok(!JSON.stringify(h).includes('sk-client-own-key'));
  });

  it('auth_header puts the key where the provider wants it (api-key, x-api-key) or nowhere (none)', async () => {
    const a = await upstream({ name: 'azure' });
    const b = await upstream({ name: 'anthropicish' });
    const c = await upstream({ name: 'local' });
    const agent = await agentWith({
      endpoints: [
        { name: 'azure', url: a.url, auth_header: 'api-key', models: ['m-a'] },
        { name: 'xkey', url: b.url, auth_header: 'x-api-key', models: ['m-b'] },
        { name: 'local', url: c.url, auth_header: 'none', models: ['m-c'] },
      ],
    });
    for (const m of ['m-a', 'm-b', 'm-c']) assert.equal((await send(agent, chatBody(m))).status, 200);
    const ha = posts(a, '/chat/completions').pop().headers;
    assert.equal(ha['api-key'], TEST_KEY);
    assert.equal(ha.authorization, undefined);
    const hb = posts(b, '/chat/completions').pop().headers;
    assert.equal(hb['x-api-key'], TEST_KEY);
    assert.equal(hb.authorization, undefined);
    const hc = posts(c, '/chat/completions').pop().headers;
    assert.equal(hc.authorization, undefined);
    assert.ok(!JSON.stringify(hc).includes(TEST_KEY), 'auth_header = none sent the key');
  });
});

describe('voice: multipart transcription and speech', () => {
  it('a transcription fails over from a 503 endpoint; the second sees the rewritten model and the audio unchanged', async () => {
    const primary = await upstream({ name: 'primary', models: ['whisper-1'] });
    const secondary = await upstream({ name: 'secondary', models: ['whisper-large'] });
    const agent = await agentWith({
      endpoints: [
        { name: 'primary', url: primary.url, models: ['whisper-1'], priority: 10 },
        { name: 'secondary', url: secondary.url, models: ['whisper-large'], priority: 5 },
      ],
      fallback: { 'whisper-1': 'whisper-large' },
    });
    primary.set({ mode: 'status', status: 503 });
    const form = transcriptionForm('whisper-1', AUDIO, { response_format: 'json', language: 'en' });
    const r = await rawPost(agent, '/v1/audio/transcriptions', form, { 'Content-Type': `multipart/form-data; boundary=${B}` });
    const text = r.body.toString('utf8');
    assert.equal(r.status, 200, text);
    assert.deepEqual(JSON.parse(text), { text: 'transcript from secondary' });
    assert.equal(r.headers['x-edgeway-endpoint'], 'secondary');
    const p = posts(primary, '/audio/transcriptions');
    assert.equal(p.length, 1);
    assert.ok(p[0].raw.equals(form), 'the first attempt must carry the form as sent');
    const s = posts(secondary, '/audio/transcriptions');
    assert.equal(s.length, 1);
    assert.equal(s[0].model, 'whisper-large');
    assert.equal(s[0].headers['content-type'], `multipart/form-data; boundary=${B}`);
    const expected = transcriptionForm('whisper-large', AUDIO, { response_format: 'json', language: 'en' });
    assert.ok(s[0].raw.equals(expected), 'the second attempt: the same form, only the model field changed');
    assert.ok(s[0].raw.includes(AUDIO), 'the audio bytes changed on the way');
  });

  it('a transcript in text form (response_format=text) is relayed as it is', async () => {
    const up = await upstream({ name: 'primary', models: ['whisper-1'] });
    const agent = await agentWith({ endpoints: [{ name: 'primary', url: up.url, models: ['whisper-1'] }] });
    // The fake answers JSON; a text transcript comes as text/plain from a status-mode 200.
    up.set({ mode: 'status', status: 200, body: 'hello world\n', headers: { 'Content-Type': 'text/plain; charset=utf-8' } });
    const r = await rawPost(agent, '/v1/audio/translations', transcriptionForm('whisper-1', AUDIO, { response_format: 'text' }),
      { 'Content-Type': `multipart/form-data; boundary=${B}` });
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(r.body.toString(), 'hello world\n');
    assert.match(r.headers['content-type'], /^text\/plain/);
  });

  it('refuses bad forms with 400 before any upstream is tried', async () => {
    const up = await upstream({ name: 'primary', models: ['whisper-1'] });
    const agent = await agentWith({ endpoints: [{ name: 'primary', url: up.url, models: ['whisper-1'] }] });
    const cases = [
      [transcriptionForm('whisper-1', AUDIO), 'application/json', /multipart\/form-data/],
      [transcriptionForm('whisper-1', AUDIO).subarray(0, 3000), `multipart/form-data; boundary=${B}`, /not valid multipart/],
      [transcriptionForm('whisper-1\r\nX: y', AUDIO), `multipart/form-data; boundary=${B}`, /model|multipart/],
      [Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc\r\n--${B}--\r\n`), `multipart/form-data; boundary=${B}`, /model/],
    ];
    for (const [body, ct, re] of cases) {
      const r = await rawPost(agent, '/v1/audio/transcriptions', body, { 'Content-Type': ct });
      assert.equal(r.status, 400, r.body.toString());
      assert.match(JSON.parse(r.body.toString()).error.message, re);
    }
    const unknown = await rawPost(agent, '/v1/audio/transcriptions', transcriptionForm('whisper-9', AUDIO), { 'Content-Type': `multipart/form-data; boundary=${B}` });
    assert.equal(unknown.status, 404);
    assert.equal(posts(up, '/audio/transcriptions').length, 0);
  });

  it('a form larger than max_request_bytes gets 413', async () => {
    const up = await upstream({ name: 'primary', models: ['whisper-1'] });
    const agent = await agentWith({ agent: { max_request_bytes: 32768 }, endpoints: [{ name: 'primary', url: up.url, models: ['whisper-1'] }] });
    const r = await rawPost(agent, '/v1/audio/transcriptions', transcriptionForm('whisper-1', AUDIO), { 'Content-Type': `multipart/form-data; boundary=${B}` }).catch((e) => ({ status: 0, error: e }));
    assert.equal(r.status, 413);
  });

  it('/v1/audio/speech: JSON in, the audio bytes out exactly, with their content type', async () => {
    const up = await upstream({ name: 'primary', models: ['tts-1'] });
    const agent = await agentWith({ endpoints: [{ name: 'primary', url: up.url, models: ['tts-1'] }] });
    const body = Buffer.from(JSON.stringify({ model: 'tts-1', input: 'Hello there', voice: 'alloy' }));
    const r = await rawPost(agent, '/v1/audio/speech', body, { 'Content-Type': 'application/json' });
    assert.equal(r.status, 200, r.body.toString('latin1').slice(0, 200));
    assert.equal(r.headers['content-type'], 'audio/mpeg');
    assert.ok(r.complete && !r.cut, 'the audio answer did not end cleanly');
    assert.equal(r.body.length, SPEECH_BYTES.length);
    assert.ok(r.body.equals(SPEECH_BYTES), 'the audio bytes changed on the way');
    assert.equal(posts(up, '/audio/speech').pop().headers.accept, '*/*');
  });
});

describe('Responses API streams', () => {
  it('a whole /v1/responses stream ends cleanly without [DONE] (response.completed is its end)', async () => {
    const up = await upstream({ name: 'primary' });
    const agent = await agentWith({ endpoints: [{ name: 'primary', url: up.url }] });
    const r = await rawPost(agent, '/v1/responses', Buffer.from(JSON.stringify({ model: 'test-model', input: 'hi', stream: true })), { 'Content-Type': 'application/json' });
    const text = r.body.toString();
    assert.equal(r.status, 200, text);
    assert.ok(r.complete && !r.cut, `the stream was cut: ${text}`);
    assert.match(text, /event: response\.completed/);
    assert.doesNotMatch(text, /event: error/);
  });

  it('a broken /v1/responses stream ends with the Responses-API `event: error` and an unfinished body', async () => {
    const up = await upstream({ name: 'primary' });
    const agent = await agentWith({ endpoints: [{ name: 'primary', url: up.url }] });
    up.set({ mode: 'drop_mid_stream' });
    const r = await rawPost(agent, '/v1/responses', Buffer.from(JSON.stringify({ model: 'test-model', input: 'hi', stream: true })), { 'Content-Type': 'application/json' });
    const text = r.body.toString();
    assert.equal(r.status, 200, text);
    assert.ok(!r.complete, `the body must end unfinished: ${text}`);
    assert.match(text, /event: response\.output_text\.delta/, 'the tokens before the break were relayed');
    assert.match(text, /\n\nevent: error\ndata: \{"type":"error","code":"upstream_stream_error","message":"[^"]*primary[^"]*","param":null\}\n\n$/, text);
  });
});

describe('curl sees a broken stream', () => {
  const { spawnSync } = require('node:child_process');
  const haveCurl = spawnSync('curl', ['--version']).status === 0;
  it('curl exits non-zero when a stream breaks after its first token, 0 for a whole one', { skip: haveCurl ? false : 'curl is not installed' }, async () => {
    const up = await upstream({ name: 'primary' });
    const agent = await agentWith({ endpoints: [{ name: 'primary', url: up.url }] });
    const body = JSON.stringify(chatBody('test-model', { stream: true }));
    const curl = () => new Promise((resolve) => {
      const { spawn } = require('node:child_process');
      const p = spawn('curl', ['-sS', '-N', '--max-time', '20', '-H', 'Content-Type: application/json', '-d', body, `${agent.url}/v1/chat/completions`]);
      let out = '';
      p.stdout.on('data', (c) => { out += c; });
      p.on('close', (code) => resolve({ code, out }));
    });
    const whole = await curl();
    assert.equal(whole.code, 0, whole.out);
    assert.match(whole.out, /data: \[DONE\]/);
    up.set({ mode: 'drop_mid_stream' });
    const cut = await curl();
    assert.equal(cut.code, 18, `curl must exit 18 (transfer closed with outstanding read data): ${cut.code} ${cut.out}`);
    assert.match(cut.out, /upstream_stream_error/);
  });
});
