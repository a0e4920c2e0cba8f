'use strict';
// A kiosk's browser UI calling edgeway directly (issue 10, point 1): headless Chromium
// (Debian's /usr/bin/chromium, driven by playwright-core) loads a page from an origin in
// cors_origins, which streams a chat answer through edgeway with fetch() and shows it token
// by token; a page from another origin cannot read an answer, and its request never
// reaches an upstream. Skipped, with the reason printed, where Chromium is not installed
// (scripts/install-deps.sh --test installs it).
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { track, optional, agentLib } = require('./helpers');

const CHROMIUM = process.env.EW_CHROMIUM || '/usr/bin/chromium';
const pw = optional('playwright-core');
let skip = pw.skip;
if (!skip && !fs.existsSync(CHROMIUM)) {
  skip = `${CHROMIUM} is not installed (apt-get install chromium, or scripts/install-deps.sh --test)`;
  console.log(`edgeway e2e: skipped: ${skip}`);
}

// The page a kiosk UI would be: it streams the answer into #out and says how it ended in #state.
function pageHtml(edgewayUrl) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>kiosk</title></head><body>
<h1>Kiosk assistant</h1><pre id="out"></pre><p id="state">idle</p>
<script>
async function ask() {
  const out = document.getElementById('out');
  const state = document.getElementById('state');
  state.textContent = 'asking';
  try {
    const res = await fetch(${JSON.stringify(`${edgewayUrl}/v1/chat/completions`)}, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Authorization': 'Bearer kiosk-token', 'OpenAI-Project': 'proj_kiosk' },
      body: JSON.stringify({ model: 'test-model', stream: true, messages: [{ role: 'user', content: 'hello' }] }),
    });
    state.textContent = 'status ' + res.status + ' endpoint ' + res.headers.get('x-edgeway-endpoint');
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf('\\n\\n')) >= 0) {
        const ev = buf.slice(0, i); buf = buf.slice(i + 2);
        const data = ev.replace(/^data: /, '');
        if (data === '[DONE]') { state.textContent += ' done'; continue; }
        const j = JSON.parse(data);
        const d = j.choices && j.choices[0] && j.choices[0].delta && j.choices[0].delta.content;
        if (d) out.textContent += d;
      }
    }
    state.textContent += ' ended';
  } catch (e) {
    state.textContent = 'blocked: ' + e.name + ': ' + e.message;
  }
}
ask();
</script></body></html>`;
}

function servePage(html) {
  return new Promise((resolve) => {
    const srv = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(html);
    });
    srv.listen(0, '127.0.0.1', () => resolve({ srv, origin: `http://127.0.0.1:${srv.address().port}` }));
  });
}

describe('a kiosk page in headless Chromium calls edgeway', { skip }, () => {
  const t = track();
  let browser;
  before(async () => {
    // playwright gives the browser a new empty profile of its own.
    browser = await pw.mod.chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
  });
  after(async () => {
    if (browser) await browser.close();
  });
  afterEach(() => t.cleanup());

  async function setUp() {
    const up = await t.upstream({ name: 'primary' });
    up.set({ mode: 'ok', chunks: 6, chunkDelayMs: 30 });
    // The page origins exist before edgeway's config names the allowed one.
    const allowedPort = await agentLib.freePort();
    const allowedOrigin = `http://127.0.0.1:${allowedPort}`;
    const agent = await t.agent({ agent: { cors_origins: allowedOrigin }, endpoints: [{ name: 'primary', url: up.url }] });
    const html = pageHtml(agent.url);
    const allowed = await new Promise((resolve) => {
      const srv = http.createServer((req, res) => { res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }); res.end(html); });
      srv.listen(allowedPort, '127.0.0.1', () => resolve({ srv, origin: allowedOrigin }));
    });
    const other = await servePage(html);
    return { up, agent, allowed, other, close: () => { allowed.srv.close(); other.srv.close(); } };
  }

  it('a page from an allowed origin streams the answer and shows it; a page from another origin is blocked', async () => {
    const s = await setUp();
    try {
      const ctx = await browser.newContext();
      const page = await ctx.newPage();
      await page.goto(`${s.allowed.origin}/`);
      await page.waitForFunction(() => / ended$/.test(document.getElementById('state').textContent) ||
        /^blocked/.test(document.getElementById('state').textContent), null, { timeout: 30000 });
      const state = await page.textContent('#state');
      const out = await page.textContent('#out');
      assert.equal(state, 'status 200 endpoint primary done ended', `page state: ${state}`);
      assert.equal(out, 'tok0 tok1 tok2 tok3 tok4 tok5 ');
      // EW_SCREENSHOT_DIR=dir keeps a picture of the page, to look at.
      if (process.env.EW_SCREENSHOT_DIR) await page.screenshot({ path: path.join(process.env.EW_SCREENSHOT_DIR, 'kiosk-allowed.png') });
      const posts = s.up.requests.filter((r) => r.method === 'POST');
      assert.equal(posts.length, 1);
      assert.equal(posts[0].headers['openai-project'], 'proj_kiosk');
      assert.notEqual(posts[0].headers.authorization, 'Bearer kiosk-token');

      const evil = await ctx.newPage();
      await evil.goto(`${s.other.origin}/`);
      await evil.waitForFunction(() => /^blocked/.test(document.getElementById('state').textContent) ||
        / ended$/.test(document.getElementById('state').textContent), null, { timeout: 30000 });
      const evilState = await evil.textContent('#state');
      assert.match(evilState, /^blocked: TypeError/, `a disallowed origin read the answer: ${evilState}`);
      assert.equal(await evil.textContent('#out'), '');
      assert.equal(s.up.requests.filter((r) => r.method === 'POST').length, 1, 'the disallowed page\'s request reached the upstream');
      const metrics = agentLib.parseMetrics((await s.agent.get('/metrics')).body);
      assert.ok(agentLib.metricValue(metrics, 'edgeway_cors_rejected_total', {}) >= 1);
      await ctx.close();
    } finally {
      s.close();
    }
  });
});
