'use strict';
// Plays systemd (sd_notify(3)): a datagram socket bound by tests/integration/notify_sink.cpp,
// edgeway started with NOTIFY_SOCKET and WATCHDOG_USEC. Checks READY=1 once listening,
// RELOADING=1 (with MONOTONIC_USEC) then READY=1 around SIGHUP, a refused reload ending in
// READY=1 too, WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1 on SIGTERM, in that order and
// all from edgeway's own pid; an abstract socket ("@name") works the same.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { startAgent, iniFor, tmpDir, FAST_PROBE } = require('./lib/agent');
const { startUpstream } = require('./lib/fake_upstream');

function sinkBin() {
  const bin = process.env.EW_NOTIFY_SINK_BIN;
  if (!bin || !fs.existsSync(bin)) throw new Error(`EW_NOTIFY_SINK_BIN=${bin}: build the notify_sink target (ctest sets it)`);
  return bin;
}

// Starts the sink; resolves once it has bound the socket. sink.msgs: [{ us, pid, fields, raw }].
function startSink(name) {
  return new Promise((resolve, reject) => {
    const proc = spawn(sinkBin(), [name, '240'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const sink = { proc, msgs: [], stderr: '' };
    let buf = '';
    let bound = false;
    proc.stderr.on('data', (c) => { sink.stderr += c; });
    proc.stdout.on('data', (c) => {
      buf += c.toString('utf8');
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line === 'BOUND') { bound = true; resolve(sink); continue; }
        const m = /^MSG (\d+) (-?\d+) (.*)$/.exec(line);
        if (!m) continue;
        const raw = m[3].replace(/\\(n|\\)/g, (_, e) => (e === 'n' ? '\n' : '\\'));
        const fields = {};
        for (const kv of raw.split('\n')) {
          const eq = kv.indexOf('=');
          if (eq > 0) fields[kv.slice(0, eq)] = kv.slice(eq + 1);
        }
        sink.msgs.push({ us: Number(m[1]), pid: Number(m[2]), fields, raw });
      }
    });
    proc.on('exit', (code) => { if (!bound) reject(new Error(`notify_sink exited ${code}: ${sink.stderr}`)); });
    sink.close = () => { try { proc.kill('SIGTERM'); } catch (_) { /* gone */ } };
  });
}

// Waits until pred(msgs) is truthy; fails with everything received so far.
async function waitMsgs(sink, pred, what, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = pred(sink.msgs);
    if (v) return v;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got:\n` +
        sink.msgs.map((m) => `${m.us} pid=${m.pid} ${JSON.stringify(m.raw)}`).join('\n'));
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

const states = (msgs) => msgs.filter((m) => !m.fields.WATCHDOG).map((m) => Object.keys(m.fields)[0]);
const pings = (msgs) => msgs.filter((m) => m.fields.WATCHDOG === '1');

describe('systemd notify protocol', () => {
  let up;
  before(async () => { up = await startUpstream({ name: 'up', models: ['m1'] }); });
  after(async () => { if (up) await up.close(); });

  const ini = () => ({ probe: FAST_PROBE, endpoints: [{ name: 'up', url: up.url, models: ['m1'] }] });

  it('READY, RELOADING/READY on SIGHUP (valid and refused), WATCHDOG at half the interval, STOPPING', async () => {
    const dir = tmpDir('edgeway-notify-');
    const sock = path.join(dir, 'notify.sock');
    const sink = await startSink(sock);
    const WATCHDOG_USEC = 2000000; // pings expected every 1 s
    let agent;
    try {
      agent = await startAgent({ ini: ini(), env: { NOTIFY_SOCKET: sock, WATCHDOG_USEC: String(WATCHDOG_USEC) } });
      const pid = agent.proc.pid;
      await waitMsgs(sink, (ms) => ms.some((m) => m.fields.READY === '1'), 'READY=1');
      const first = sink.msgs[0];
      assert.equal(first.fields.READY, '1', `the first message must be READY=1: ${first.raw}`);
      // READY=1 comes after the listener is up: /healthz answered before we looked, and the
      // message carries edgeway's own pid (systemd's NotifyAccess=main checks it).
      assert.equal(first.pid, pid);

      // Watchdog: four pings, each gap at least most of the half interval (not spamming) and
      // below WATCHDOG_USEC itself (what systemd would restart the service for).
      await waitMsgs(sink, (ms) => pings(ms).length >= 4, 'four WATCHDOG=1 pings', 20000);
      const p = pings(sink.msgs);
      for (let i = 1; i < p.length; i++) {
        const gap = p[i].us - p[i - 1].us;
        assert.ok(gap >= 0.9 * WATCHDOG_USEC / 2, `ping gap ${gap} µs is shorter than half of WATCHDOG_USEC`);
        assert.ok(gap < WATCHDOG_USEC, `ping gap ${gap} µs reached WATCHDOG_USEC: systemd would restart edgeway`);
        assert.equal(p[i].pid, pid);
      }

      // A valid reload: RELOADING=1 with MONOTONIC_USEC on our clock, then READY=1.
      agent.proc.kill('SIGHUP');
      await waitMsgs(sink, (ms) => states(ms).length >= 3, 'RELOADING=1 and READY=1 after SIGHUP');
      const reloading = sink.msgs.find((m) => m.fields.RELOADING === '1');
      const mono = Number(reloading.fields.MONOTONIC_USEC);
      assert.ok(Number.isFinite(mono) && Math.abs(reloading.us - mono) < 5e6,
        `MONOTONIC_USEC=${reloading.fields.MONOTONIC_USEC} is not CLOCK_MONOTONIC (received at ${reloading.us})`);

      // A refused reload (a broken file) still ends the reload with READY=1, saying so.
      const good = fs.readFileSync(agent.iniPath, 'utf8');
      fs.writeFileSync(agent.iniPath, `${good}\n[agent]\nlisten = nowhere\n`);
      agent.proc.kill('SIGHUP');
      await waitMsgs(sink, (ms) => states(ms).length >= 5, 'RELOADING=1 and READY=1 after a refused reload');
      const last = sink.msgs.filter((m) => !m.fields.WATCHDOG).pop();
      assert.match(last.fields.STATUS || '', /refused/, `STATUS after a refused reload: ${last.raw}`);

      const code = await agent.stop();
      assert.equal(code, 0, 'SIGTERM is a clean stop: exit 0');
      await waitMsgs(sink, (ms) => states(ms).includes('STOPPING'), 'STOPPING=1');
      assert.deepEqual(states(sink.msgs), ['READY', 'RELOADING', 'READY', 'RELOADING', 'READY', 'STOPPING']);
      assert.ok(sink.msgs.every((m) => m.pid === pid), 'every message comes from edgeway itself');
    } finally {
      if (agent) await agent.stop();
      sink.close();
    }
  });

  it('an abstract socket (@name) works; WATCHDOG_PID naming another process turns the pings off', async () => {
    const name = `@edgeway-test-${process.pid}-${Date.now()}`;
    const sink = await startSink(name);
    let agent;
    try {
      agent = await startAgent({ ini: ini(), env: { NOTIFY_SOCKET: name, WATCHDOG_USEC: '200000', WATCHDOG_PID: '1' } });
      await waitMsgs(sink, (ms) => ms.some((m) => m.fields.READY === '1'), 'READY=1 on the abstract socket');
      // Many ping intervals (100 ms each) go by while it probes, then it stops.
      await agent.waitStatus((s) => s.endpoints[0].probes_ok >= 5, 'five probes (about 8 ping intervals)');
      assert.equal(await agent.stop(), 0);
      await waitMsgs(sink, (ms) => states(ms).includes('STOPPING'), 'STOPPING=1');
      assert.equal(pings(sink.msgs).length, 0, 'the watchdog belongs to WATCHDOG_PID=1, not to edgeway');
      assert.deepEqual(states(sink.msgs), ['READY', 'STOPPING']);
    } finally {
      if (agent) await agent.stop();
      sink.close();
    }
  });
});
