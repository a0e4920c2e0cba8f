'use strict';
// The status page (GET /) in Debian's headless Chromium, driven by playwright-core, at a
// desktop size (1280x900) and a kiosk's (800x480): the headline verdict says whether the
// device is serving and through whom, and nothing overflows sideways. Three situations,
// made with real fake upstreams: everything up, the primary down, everything down.
// Screenshots go to EW_ARTIFACT_DIR (the build folder's artifacts/ui) for a human to look at.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');

const lib = path.join(__dirname, '..', 'integration', 'lib');
const { startAgent, endpointOf } = require(path.join(lib, 'agent'));
const { startUpstream } = require(path.join(lib, 'fake_upstream'));

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = process.env.EW_ARTIFACT_DIR || path.join(os.tmpdir(), 'edgeway-ui-artifacts');
const SIZES = [{ width: 1280, height: 900 }, { width: 800, height: 480 }];
const PROBE = { interval_ms: 200, down_interval_ms: 200, timeout_ms: 500, fall: 2, rise: 2 };

let chromium;
try {
  ({ chromium } = require('playwright-core'));
} catch (_) {
  chromium = null;
}

describe('status page in headless Chromium', () => {
  let browser;
  let primary;
  let backup;
  let agent;

  before(async () => {
    // Like the e2e tests: missing tools fail the test, saying what to install.
    assert.ok(chromium, 'playwright-core is missing: run `npm ci` in tests/ui (scripts/install-deps.sh --test does)');
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (scripts/install-deps.sh --test)`);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // Playwright gives the browser a new empty profile itself (no --user-data-dir here).
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
    primary = await startUpstream({ name: 'primary', models: ['m1'] });
    backup = await startUpstream({ name: 'backup', models: ['m1'] });
    agent = await startAgent({
      ini: {
        probe: PROBE,
        endpoints: [
          { name: 'primary', url: primary.url, models: ['m1'], priority: 10 },
          { name: 'backup', url: backup.url, models: ['m1'], priority: 0 },
        ],
      },
    });
    await agent.waitStatus((s) => endpointOf(s, 'primary').probes_ok >= 2 && endpointOf(s, 'backup').probes_ok >= 2,
      'both endpoints probed ok');
    // Some traffic, so that the chart and the strips have something to show.
    for (let i = 0; i < 12; i++) {
      const r = await agent.post('/v1/chat/completions', { model: 'm1', messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(r.status, 200, r.body);
    }
  });

  after(async () => {
    if (browser) await browser.close();
    if (agent) await agent.stop();
    for (const up of [primary, backup]) if (up) await up.close();
  });

  // Loads the page at each size; checks the verdict and that no element sticks out sideways.
  async function check(name, verdictRe) {
    for (const size of SIZES) {
      const page = await browser.newPage({ viewport: size });
      try {
        const resp = await page.goto(`${agent.url}/`, { waitUntil: 'load' });
        assert.equal(resp.status(), 200);
        const verdict = (await page.textContent('#verdict')).trim();
        assert.match(verdict, verdictRe, `${name} at ${size.width}x${size.height}`);
        const layout = await page.evaluate(() => {
          const vw = document.documentElement.clientWidth;
          const wide = [];
          for (const el of document.querySelectorAll('body *')) {
            const r = el.getBoundingClientRect();
            if (r.width > 0 && (r.right > vw + 0.5 || r.left < -0.5)) wide.push(`${el.tagName}.${el.className} ${Math.round(r.left)}..${Math.round(r.right)}`);
          }
          return { vw, scroll: document.documentElement.scrollWidth, wide: wide.slice(0, 5) };
        });
        assert.ok(layout.scroll <= layout.vw, `${name} ${size.width}x${size.height}: page ${layout.scroll} px wide in a ${layout.vw} px window`);
        assert.deepEqual(layout.wide, [], `${name} ${size.width}x${size.height}: elements past the window's edge`);
        // The verdict is visible without scrolling, even at the kiosk size.
        const box = await page.locator('#verdict').boundingBox();
        assert.ok(box && box.y + box.height <= size.height, `${name}: verdict below the fold`);
        await page.screenshot({ path: path.join(ARTIFACTS, `status-${name}-${size.width}x${size.height}.png`), fullPage: true });
      } finally {
        await page.close();
      }
    }
  }

  it('everything up: SERVING via primary', async () => {
    await check('serving', /^SERVING via primary$/);
  });

  it('primary down: SERVING on fallback backup', async () => {
    primary.set({ mode: 'status', status: 500 });
    await agent.waitStatus((s) => endpointOf(s, 'primary').state === 'DOWN', 'primary DOWN');
    for (let i = 0; i < 4; i++) await agent.post('/v1/chat/completions', { model: 'm1', messages: [] });
    await check('fallback', /^SERVING on fallback backup$/);
  });

  it('everything down: NOT SERVING, with why', async () => {
    primary.set({ mode: 'status', status: 500 });
    backup.set({ mode: 'reset' });
    await agent.waitStatus((s) => endpointOf(s, 'primary').state === 'DOWN' && endpointOf(s, 'backup').state === 'DOWN',
      'both DOWN');
    await check('not-serving', /^NOT SERVING — every endpoint is DOWN \(primary: .+\)$/);
  });
});
