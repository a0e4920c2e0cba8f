#!/usr/bin/env node
'use strict';
// Time back to the primary after it restarts (issue 13, item 2): see bench/restart_bench.sh.
// A primary and a backup fake upstream, each its own Node process (tests/integration/lib/
// fake_upstream.js on a fixed port), edgeway with the SPEC's default probe settings (models
// probe, interval 30 s, down interval 5 s, fall 3, rise 2) in front, one client sending a
// chat request every GAP_MS. Each round: kill -9 the primary, start it again on the same port
// after DOWN_MS, and measure the time from "listening again" to the first request the
// primary serves. Clean rounds are spaced by CLEAN_MS of serving (beyond the flap window,
// 4 x the cooldown); the last round kills it FLAP_AFTER_MS after it came back, which the
// cooldown rule counts as flapping. Per round: time back, client requests that failed, that
// paid a failed attempt, ejections and the cooldown /status reports.
// Env: EDGEWAY_BIN, ROUNDS (4 clean + 1 flap), DOWN_MS (2000), CLEAN_MS (30000),
//      FLAP_AFTER_MS (3000), GAP_MS (50).
const path = require('node:path');
const { spawn } = require('node:child_process');
const lib = path.join(__dirname, '..', 'tests', 'integration', 'lib');
const { startAgent, endpointOf, freePort } = require(path.join(lib, 'agent.js'));
const { send, chatBody } = require(path.join(lib, 'proxy_client.js'));

const ROUNDS = Number(process.env.ROUNDS || 4);
const DOWN_MS = Number(process.env.DOWN_MS || 2000);
const CLEAN_MS = Number(process.env.CLEAN_MS || 30000);
const FLAP_AFTER_MS = Number(process.env.FLAP_AFTER_MS || 3000);
const GAP_MS = Number(process.env.GAP_MS || 50);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const stamp = () => new Date().toISOString().slice(11, 19);

// One upstream in its own process; resolves when it listens.
function upstreamProcess(name, port) {
  const code = `const { startUpstream } = require(${JSON.stringify(path.join(lib, 'fake_upstream.js'))});
    startUpstream({ name: ${JSON.stringify(name)}, port: ${port} }).then(() => process.stdout.write('listening\\n'));`;
  const proc = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${name} did not listen`)), 10000);
    proc.stdout.on('data', (d) => {
      if (String(d).includes('listening')) {
        clearTimeout(t);
        resolve({ proc, at: Date.now() });
      }
    });
    proc.on('exit', (c) => reject(new Error(`${name} exited ${c}`)));
  });
}

function kill9(p) {
  return new Promise((resolve) => {
    p.proc.removeAllListeners('exit');
    p.proc.on('exit', () => resolve(Date.now()));
    p.proc.kill('SIGKILL');
  });
}

(async () => {
  const pport = await freePort();
  const bport = await freePort();
  let primary = await upstreamProcess('primary', pport);
  const backup = await upstreamProcess('backup', bport);
  const agent = await startAgent({
    ini: {
      probe: { kind: 'models', interval_ms: 30000, down_interval_ms: 5000, timeout_ms: 5000, fall: 3, rise: 2 },
      endpoints: [
        { name: 'primary', url: `http://127.0.0.1:${pport}/v1`, priority: 10 },
        { name: 'backup', url: `http://127.0.0.1:${bport}/v1`, priority: 5 },
      ],
    },
  });
  // One client, a request every GAP_MS, for the whole run.
  const log = [];
  let stop = false;
  const client = (async () => {
    while (!stop) {
      const t = Date.now();
      try {
        const r = await send(agent, chatBody(), { timeoutMs: 30000 });
        log.push({ t, done: Date.now(), status: r.status, endpoint: r.endpoint, attempts: r.attempts });
      } catch (e) {
        log.push({ t, done: Date.now(), status: 0, error: e.message });
      }
      await sleep(GAP_MS);
    }
  })();
  const rows = [];
  const round = async (label, serveBeforeMs) => {
    await sleep(serveBeforeMs);
    const killedAt = await kill9(primary);
    await sleep(DOWN_MS);
    primary = await upstreamProcess('primary', pport);
    const listenAt = primary.at;
    const deadline = Date.now() + 120000;
    let back;
    while (Date.now() < deadline) {
      back = log.find((e) => e.t >= listenAt && e.endpoint === 'primary' && e.status === 200);
      if (back) break;
      await sleep(20);
    }
    const window = log.filter((e) => e.t >= killedAt && (!back || e.t <= back.t));
    const st = endpointOf(await agent.status(), 'primary');
    const row = {
      label,
      backMs: back ? back.done - listenAt : null,
      sinceKillMs: back ? back.done - killedAt : null,
      requests: window.length,
      failed: window.filter((e) => e.status !== 200).length,
      paid: window.filter((e) => e.attempts > 1).length,
      ejections: st.ejections,
      cooldownMs: st.recovery ? st.recovery.cooldown_ms : undefined,
      downLevel: st.recovery ? st.recovery.down_level : undefined,
    };
    rows.push(row);
    process.stderr.write(`[${stamp()}] ${JSON.stringify(row)}\n`);
  };
  try {
    await sleep(3000);  // first probes, traffic settles on the primary
    for (let i = 1; i <= ROUNDS; i++) await round(`clean restart ${i}`, i === 1 ? 0 : CLEAN_MS);
    await round('killed again soon after it came back (flap)', FLAP_AFTER_MS);
  } finally {
    stop = true;
    await client;
    await agent.stop();
    primary.proc.kill('SIGKILL');
    backup.proc.kill('SIGKILL');
  }
  process.stdout.write('| round | back on primary after restart | since kill | requests meanwhile | failed | paid a failed attempt | cooldown (ms) |\n');
  process.stdout.write('|---|---|---|---|---|---|---|\n');
  for (const r of rows) {
    process.stdout.write(`| ${r.label} | ${r.backMs === null ? 'never (120 s)' : `${(r.backMs / 1000).toFixed(2)} s`} | ` +
      `${r.sinceKillMs === null ? '-' : `${(r.sinceKillMs / 1000).toFixed(2)} s`} | ${r.requests} | ${r.failed} | ` +
      `${r.paid} | ${r.cooldownMs} |\n`);
  }
  const total = log.length;
  const failed = log.filter((e) => e.status !== 200).length;
  process.stdout.write(`client requests: ${total}, failed: ${failed}\n`);
})().catch((e) => { process.stderr.write(`${e.stack || e}\n`); process.exit(2); });
