'use strict';
// Health that survives a restart ([agent] state_file, issue 13 item 3): kill -9 edgeway
// while an endpoint is RATE_LIMITED, start it again on the same state file, and the fake
// upstream counts no request to that endpoint (probes included) until the rest of its
// Retry-After has passed, while the other endpoint serves. A truncated, a corrupted and a
// foreign-version file each give one warning and a normal start.
const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { startAgent, endpointOf, FAST_PROBE, tmpDir } = require('./lib/agent');
const { startUpstream } = require('./lib/fake_upstream');
const { chatBody, send } = require('./lib/proxy_client');

const WRITE_MS = 200;  // state_write_interval_ms: short, so the test need not wait a minute

function iniWith(statePath, limited, other) {
  return {
    agent: { state_file: statePath, state_write_interval_ms: WRITE_MS },
    probe: FAST_PROBE,
    endpoints: [
      { name: 'limited', url: limited.url, priority: 10 },
      { name: 'other', url: other.url, priority: 5 },
    ],
  };
}

async function killHard(agent) {
  agent.proc.kill('SIGKILL');
  await agent.exited;
  assert.equal(agent.exitSignal, 'SIGKILL');
  await agent.stop();  // removes its folder; the state file lives elsewhere
}

// Polls the state file until pred(text) holds (the agent writes it on its own schedule).
async function waitStateFile(agent, statePath, pred, what, timeoutMs = 10000) {
  return agent.waitFor(async () => {
    let text = '';
    try { text = fs.readFileSync(statePath, 'utf8'); } catch (_) { /* not yet */ }
    return { ok: pred(text), value: text, last: text || '(no file)' };
  }, what, timeoutMs);
}

function count(re, text) {
  return (text.match(new RegExp(re.source, 'gm')) || []).length;
}

// The first agent: "limited" answers every request 429 with Retry-After: retryS; once the
// state file holds its limit, kill -9. Returns the time of its 429 (the upstream's clock).
async function limitThenKill(statePath, limited, other, retryS) {
  limited.set({ mode: 'status', status: 429, headers: { 'Retry-After': String(retryS) } });
  const first = await startAgent({ ini: iniWith(statePath, limited, other) });
  try {
    await first.waitStatus((st) => endpointOf(st, 'limited').state === 'RATE_LIMITED', '"limited" RATE_LIMITED');
    await waitStateFile(first, statePath, (t) => /^E limited url=[0-9a-f]{8} .*\brl=\d+/m.test(t) && /\ncrc=[0-9a-f]{8}\n$/.test(t),
      'the state file to hold the rate limit');
    assert.ok(!fs.existsSync(`${statePath}.tmp`), 'the temporary file was renamed over the state file');
    const mode = fs.statSync(statePath).mode & 0o777;
    assert.equal(mode & 0o077, 0, `the state file is private (mode ${mode.toString(8)})`);
    const r = await send(first, chatBody());
    assert.equal(r.status, 200, r.body);
    assert.equal(r.endpoint, 'other', r.body);
  } catch (e) {
    await first.stop();
    throw e;
  }
  const limitedAt = limited.requests[0].at;
  await killHard(first);
  return limitedAt;
}

describe('state file', () => {
  it('kill -9 while RATE_LIMITED for 60 s: after the restart the endpoint gets nothing, probes included, while the other serves', async () => {
    const limited = await startUpstream({ name: 'limited' });
    const other = await startUpstream({ name: 'other' });
    const statePath = path.join(tmpDir('edgeway-state-'), 'edgeway.state');
    let again;
    try {
      await limitThenKill(statePath, limited, other, 60);
      // From now on it would answer 200: anything it is sent shows in its count.
      limited.set({ mode: 'ok' });
      limited.clearRequests();
      other.clearRequests();

      again = await startAgent({ ini: iniWith(statePath, limited, other) });
      const st = await again.status();
      const ep = endpointOf(st, 'limited');
      assert.equal(ep.state, 'RATE_LIMITED', JSON.stringify(ep));
      assert.ok(ep.rate_limited_for_ms > 40000 && ep.rate_limited_for_ms <= 60000,
        `the rest of the 60 s, less the time since the write: ${JSON.stringify(ep)}`);
      assert.match(again.stderr, /state_file .*: restored 2 of 2 endpoints, 1 limited or DOWN \(wall clock: \d+ ms/);
      assert.match(again.stderr, /endpoint=limited state HEALTHY -> RATE_LIMITED \(state file\)/);

      // A window of traffic and of probe intervals (FAST_PROBE: every 200 ms): without the
      // state file the first probe alone would have reached "limited" at once.
      const windowMs = 4000;
      const t0 = Date.now();
      let served = 0;
      for (let i = 0; i < 40 && Date.now() - t0 < windowMs; i++) {
        const r = await send(again, chatBody());
        assert.equal(r.status, 200, r.body);
        assert.equal(r.endpoint, 'other', `request ${i} went to ${r.endpoint}: ${r.body.slice(0, 300)}`);
        served++;
        await new Promise((res) => setTimeout(res, 100));
      }
      assert.ok(Date.now() - t0 >= windowMs - 200 || served === 40, 'the window ran');
      assert.equal(limited.requests.length, 0,
        `the rate limited endpoint was sent ${limited.requests.length} requests after the restart: ` +
        JSON.stringify(limited.requests.map((q) => `${q.method} ${q.path}`)));
      assert.ok(other.requests.length >= served, `other served ${other.requests.length}`);
      const s2 = await again.status();
      assert.equal(endpointOf(s2, 'limited').state, 'RATE_LIMITED', JSON.stringify(endpointOf(s2, 'limited')));
    } finally {
      if (again) await again.stop();
      await limited.close();
      await other.close();
    }
  });

  it('Retry-After: 8, kill -9, restart: nothing reaches the endpoint before its 8 s are over, then it is probed and serves again', async () => {
    const limited = await startUpstream({ name: 'limited' });
    const other = await startUpstream({ name: 'other' });
    const statePath = path.join(tmpDir('edgeway-state-'), 'edgeway.state');
    let again;
    try {
      const limitedAt = await limitThenKill(statePath, limited, other, 8);
      limited.set({ mode: 'ok' });
      limited.clearRequests();
      again = await startAgent({ ini: iniWith(statePath, limited, other) });
      const ep = endpointOf(await again.status(), 'limited');
      assert.equal(ep.state, 'RATE_LIMITED', `restarted ${Date.now() - limitedAt} ms after the 429: ${JSON.stringify(ep)}`);
      await again.waitStatus((st) => endpointOf(st, 'limited').state === 'HEALTHY' && limited.requests.length > 0,
        '"limited" HEALTHY again after its Retry-After', 20000);
      const early = limited.requests.filter((q) => q.at < limitedAt + 8000 - 50);
      assert.deepEqual(early.map((q) => ({ path: q.path, msAfter429: q.at - limitedAt })), [],
        'requests reached the endpoint before its Retry-After: 8 was over');
      let back;
      for (let i = 0; i < 50 && !back; i++) {
        const r = await send(again, chatBody());
        assert.equal(r.status, 200, r.body);
        if (r.endpoint === 'limited') back = r;
        else await new Promise((res) => setTimeout(res, 100));
      }
      assert.ok(back, 'the endpoint served again after its limit');
    } finally {
      if (again) await again.stop();
      await limited.close();
      await other.close();
    }
  });

  it('a truncated, a corrupted and a foreign-version state file: one warning each, a normal start, the file replaced', async () => {
    const limited = await startUpstream({ name: 'limited' });
    const other = await startUpstream({ name: 'other' });
    const statePath = path.join(tmpDir('edgeway-state-'), 'edgeway.state');
    try {
      await limitThenKill(statePath, limited, other, 60);
      limited.set({ mode: 'ok' });
      const good = fs.readFileSync(statePath, 'utf8');
      const i = good.indexOf('rl=') + 3;
      const cases = [
        { name: 'truncated', text: good.slice(0, Math.floor(good.length / 2)), why: /truncated/ },
        { name: 'corrupted', text: good.slice(0, i) + (good[i] === '9' ? '8' : '9') + good.slice(i + 1), why: /checksum mismatch/ },
        { name: 'foreign version', text: good.replace(/^edgeway-state 1 /, 'edgeway-state 7 '), why: /version 7/ },
      ];
      for (const c of cases) {
        fs.writeFileSync(statePath, c.text);
        limited.clearRequests();
        const agent = await startAgent({ ini: iniWith(statePath, limited, other) });
        try {
          const warnings = agent.stderr.split('\n').filter((l) => /state_file/.test(l) && /\bignored\b/.test(l));
          assert.equal(warnings.length, 1, `${c.name}: one warning, got:\n${agent.stderr}`);
          assert.ok(warnings[0].includes(statePath), `${c.name}: the warning names the file: ${warnings[0]}`);
          assert.match(warnings[0], c.why, `${c.name}: the warning says why`);
          assert.match(warnings[0], /warn/i, `${c.name}: logged as a warning: ${warnings[0]}`);
          // A normal start: the endpoint is probed and serves.
          await agent.waitStatus((st) => endpointOf(st, 'limited').state === 'HEALTHY' && endpointOf(st, 'limited').probes_ok >= 1,
            `${c.name}: "limited" probed and HEALTHY`);
          const r = await send(agent, chatBody());
          assert.equal(r.status, 200, r.body);
          assert.equal(r.endpoint, 'limited', r.body);
          // The unusable file is replaced by a good one, so the next start does not warn again.
          await waitStateFile(agent, statePath, (t) => /^edgeway-state 1 wall=\d+\n/.test(t) && /\ncrc=[0-9a-f]{8}\n$/.test(t),
            `${c.name}: the file replaced`);
          assert.equal(count(/state_file .*ignored/, agent.stderr), 1, agent.stderr);
        } finally {
          await agent.stop();
        }
      }
      // Started once more on the file the last run left: no warning at all.
      const agent = await startAgent({ ini: iniWith(statePath, limited, other) });
      try {
        await agent.waitStderr(/state_file .*: restored 2 of 2 endpoints/, 'the state restored');
        assert.equal(count(/state_file .*ignored/, agent.stderr), 0, agent.stderr);
      } finally {
        await agent.stop();
      }
    } finally {
      await limited.close();
      await other.close();
    }
  });

  it('flash wear: a change within the interval waits for it; SIGTERM writes what is pending', async () => {
    const limited = await startUpstream({ name: 'limited' });
    const other = await startUpstream({ name: 'other' });
    const statePath = path.join(tmpDir('edgeway-state-'), 'edgeway.state');
    limited.set({ mode: 'status', status: 429, headers: { 'Retry-After': '60' } });
    const ini = iniWith(statePath, limited, other);
    ini.agent.state_write_interval_ms = 3600000;
    const agent = await startAgent({ ini });
    try {
      // The first change after a start is written at once.
      const first = await waitStateFile(agent, statePath, (t) => /^E limited .*\brl=\d+/m.test(t), 'the first write');
      assert.match(first, /^E other url=[0-9a-f]{8} ej=0 /m);
      const written = fs.statSync(statePath).mtimeMs;
      // "other" goes DOWN: a persistent change, held back by the hour-long interval.
      other.set({ mode: 'refused' });
      await agent.waitStatus((st) => endpointOf(st, 'other').state === 'DOWN', '"other" DOWN');
      await new Promise((r) => setTimeout(r, 600));  // a few loop turns and probe intervals
      assert.equal(fs.statSync(statePath).mtimeMs, written, 'written again within state_write_interval_ms');
      assert.match(fs.readFileSync(statePath, 'utf8'), /^E other url=[0-9a-f]{8} ej=0 /m);
    } finally {
      assert.equal(await agent.stop(), 0);
      await limited.close();
      await other.close();
    }
    // The clean stop wrote the pending change.
    const last = fs.readFileSync(statePath, 'utf8');
    assert.match(last, /^E other url=[0-9a-f]{8} ej=1 cl=0 dn=\d+/m, last);
    assert.match(last, /^E limited .*\brl=\d+/m, last);
  });

  it('a missing state file is one info line, and --check-config / --print-config know both keys', async () => {
    const other = await startUpstream({ name: 'other' });
    const statePath = path.join(tmpDir('edgeway-state-'), 'edgeway.state');
    try {
      const agent = await startAgent({
        ini: { agent: { state_file: statePath }, probe: FAST_PROBE, endpoints: [{ name: 'other', url: other.url }] },
      });
      try {
        assert.match(agent.stderr, /state_file .*: none yet; starting fresh/);
        assert.doesNotMatch(agent.stderr, /warn.*state_file|state_file.*ignored/i, agent.stderr);
      } finally {
        await agent.stop();
      }
    } finally {
      await other.close();
    }
    const { runCli } = require('./lib/agent');
    const dir = tmpDir('edgeway-state-cfg-');
    const ini = path.join(dir, 'e.ini');
    fs.writeFileSync(ini, `[agent]\nstate_file = /var/lib/edgeway/state\nstate_write_interval_ms = 30000\n\n` +
      '[endpoint.a]\nurl = http://127.0.0.1:9/v1\napi_key_env = EW_TEST_KEY\nmodels = m\n');
    const check = runCli(['--check-config', ini]);
    assert.equal(check.code, 0, check.stderr);
    const print = runCli(['--print-config', ini]);
    assert.equal(print.code, 0, print.stderr);
    assert.match(print.stdout, /^state_file = \/var\/lib\/edgeway\/state$/m);
    assert.match(print.stdout, /^state_write_interval_ms = 30000$/m);
    fs.writeFileSync(ini, '[agent]\nstate_write_interval_ms = 10\n\n[endpoint.a]\nurl = http://127.0.0.1:9/v1\napi_key_env = EW_TEST_KEY\nmodels = m\n');
    const bad = runCli(['--check-config', ini]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /e\.ini:2: .*state_write_interval_ms/);
  });
});
