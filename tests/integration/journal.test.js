'use strict';
// journald (sd-daemon(3)): when $JOURNAL_STREAM names stderr's device:inode, every line starts
// with its syslog priority "<N>", so `journalctl -p warning` finds the warnings: a state change
// to DOWN is <4>, a recovery to HEALTHY <6>, a configuration error <3>. When the variable
// names another file (a child that inherited it), lines stay as they are.
//
// The test gives edgeway a file as stderr and sets JOURNAL_STREAM to that file's dev:inode,
// as systemd does with its journal stream socket.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { iniFor, freePort, tmpDir, edgewayBin, TEST_KEY, TEST_KEY_ENV } = require('./lib/agent');
const { startUpstream } = require('./lib/fake_upstream');

const dir = tmpDir('edgeway-journal-');
let seq = 0;

// A fresh stderr file and the JOURNAL_STREAM value that names it.
function stderrFile() {
  const file = path.join(dir, `stderr-${++seq}.log`);
  const fd = fs.openSync(file, 'w+');
  const st = fs.fstatSync(fd, { bigint: true });
  return { file, fd, journalStream: `${st.dev}:${st.ino}` };
}

function envWith(extra) {
  return Object.assign({}, process.env, { [TEST_KEY_ENV]: TEST_KEY }, extra);
}

async function waitFile(file, re, what, proc, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = fs.readFileSync(file, 'utf8');
    const m = re.exec(text);
    if (m) return { m, text };
    if (proc.exitCode !== null || Date.now() > deadline) {
      throw new Error(`${proc.exitCode !== null ? `edgeway exited ${proc.exitCode}` : `timed out after ${timeoutMs} ms`}` +
        ` waiting for ${what}; stderr:\n${text}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('journald priorities', () => {
  let up;
  before(async () => { up = await startUpstream({ name: 'flaky', models: ['m1'] }); });
  after(async () => { if (up) await up.close(); });

  it('with JOURNAL_STREAM = stderr: DOWN is <4>, the recovery <6>, every line has a priority', async () => {
    const port = await freePort();
    const ini = path.join(dir, 'agent.ini');
    fs.writeFileSync(ini, iniFor({
      agent: { listen: `127.0.0.1:${port}` },
      probe: { interval_ms: 100, down_interval_ms: 100, timeout_ms: 500, fall: 2, rise: 2 },
      endpoints: [{ name: 'flaky', url: up.url, models: ['m1'] }],
    }));
    up.set({ mode: 'status', status: 503 });
    const err = stderrFile();
    const proc = spawn(edgewayBin(), ['-c', ini], {
      env: envWith({ JOURNAL_STREAM: err.journalStream }), stdio: ['ignore', 'ignore', err.fd],
    });
    fs.closeSync(err.fd);
    try {
      const down = await waitFile(err.file, /^(.*)endpoint=flaky state \S+ -> DOWN.*$/m, 'the DOWN transition', proc);
      assert.ok(down.m[0].startsWith('<4>'), `a DOWN transition is a warning: ${down.m[0]}`);
      up.set({ mode: 'ok' });
      const rec = await waitFile(err.file, /^(.*)endpoint=flaky state \S+ -> HEALTHY.*$/m, 'the recovery', proc);
      assert.ok(rec.m[0].startsWith('<6>'), `a recovery is info: ${rec.m[0]}`);
      for (const l of rec.text.split('\n').filter((x) => /state DOWN -> /.test(x))) {
        assert.ok(l.startsWith('<6>'), `leaving DOWN is a recovery, info: ${l}`);
      }
      const lines = rec.text.split('\n').filter((l) => l !== '');
      for (const l of lines) assert.match(l, /^<[3467]>\S/, `every line carries a priority: ${l}`);
      assert.ok(lines.some((l) => /^<6>.* info listening on /.test(l)), `the listening line is info:\n${rec.text}`);
    } finally {
      proc.kill('SIGTERM');
      await new Promise((r) => (proc.exitCode !== null ? r() : proc.on('exit', r)));
    }
  });

  it('a configuration error is <3> FILE:LINE: key: message, and the exit code is 2', () => {
    const ini = path.join(dir, 'bad.ini');
    fs.writeFileSync(ini, '[agent]\nstrategy = fastest\n');
    const err = stderrFile();
    const r = spawnSync(edgewayBin(), ['-c', ini], {
      env: envWith({ JOURNAL_STREAM: err.journalStream }), stdio: ['ignore', 'ignore', err.fd], timeout: 20000,
    });
    fs.closeSync(err.fd);
    const text = fs.readFileSync(err.file, 'utf8');
    assert.equal(r.status, 2, text);
    assert.ok(text.startsWith(`<3>${ini}:2: agent.strategy: `), `want "<3>${ini}:2: agent.strategy: ...", got:\n${text}`);
  });

  it('with JOURNAL_STREAM naming another file, lines stay unprefixed', () => {
    const ini = path.join(dir, 'bad2.ini');
    fs.writeFileSync(ini, '[agent]\nstrategy = fastest\n');
    const other = stderrFile();
    fs.closeSync(other.fd);
    const err = stderrFile();
    const r = spawnSync(edgewayBin(), ['--check-config', ini], {
      env: envWith({ JOURNAL_STREAM: other.journalStream }), stdio: ['ignore', 'ignore', err.fd], timeout: 20000,
    });
    fs.closeSync(err.fd);
    const text = fs.readFileSync(err.file, 'utf8');
    assert.equal(r.status, 2, text);
    assert.ok(text.startsWith(`${ini}:2: agent.strategy: `), `no prefix expected:\n${text}`);
  });
});
