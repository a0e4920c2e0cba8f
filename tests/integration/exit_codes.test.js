'use strict';
// Exit codes as a service manager reads them (edgeway(8)): 0 a clean stop, 1 a runtime
// failure (the port is in use), 2 bad usage or configuration. (--probe-once's 0/1/2 are in
// cli.test.js.)
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { startAgent, runCliAsync, runCli, iniFor, tmpDir, FAST_PROBE } = require('./lib/agent');
const { startUpstream } = require('./lib/fake_upstream');

function show(r) {
  return `exit ${r.code}${r.signal ? ` (signal ${r.signal})` : ''}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

describe('exit codes', () => {
  let up;
  const dir = tmpDir('edgeway-exit-');
  before(async () => { up = await startUpstream({ name: 'up', models: ['m1'] }); });
  after(async () => { if (up) await up.close(); });
  const endpoints = () => [{ name: 'up', url: up.url, models: ['m1'] }];

  for (const sig of ['SIGTERM', 'SIGINT']) {
    it(`${sig}: a clean stop, exit 0`, async () => {
      const agent = await startAgent({ ini: { probe: FAST_PROBE, endpoints: endpoints() } });
      agent.proc.kill(sig);
      const code = await agent.exited;
      assert.equal(code, 0, agent.stderr);
      assert.match(agent.stderr, /stopped/);
    });
  }

  it('the listen port already in use: exit 1 (runtime), naming the address', async () => {
    const holder = net.createServer();
    await new Promise((r) => holder.listen(0, '127.0.0.1', r));
    const { port } = holder.address();
    try {
      const file = path.join(dir, 'busy.ini');
      fs.writeFileSync(file, iniFor({ agent: { listen: `127.0.0.1:${port}` }, probe: FAST_PROBE, endpoints: endpoints() }));
      const r = await runCliAsync(['-c', file], { timeoutMs: 20000 });
      assert.equal(r.code, 1, show(r));
      assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${port}`), show(r));
      assert.match(r.stderr, /in use/i, show(r));
    } finally {
      await new Promise((r) => holder.close(r));
    }
  });

  it('usage errors: exit 2', () => {
    for (const args of [[], ['-c'], ['--bogus'], ['--probe-once']]) {
      const r = runCli(args);
      assert.equal(r.code, 2, `${JSON.stringify(args)}: ${show(r)}`);
      assert.match(r.stderr, /usage/, `${JSON.stringify(args)}: ${show(r)}`);
    }
  });

  it('configuration errors: exit 2, for the agent and for --check-config', () => {
    const bad = path.join(dir, 'bad.ini');
    fs.writeFileSync(bad, '[agent]\nmax_clients = 0\n');
    const missing = path.join(dir, 'missing.ini');
    for (const args of [['-c', bad], ['--check-config', bad], ['-c', missing], ['-c', bad, '--probe-once']]) {
      const r = runCli(args);
      assert.equal(r.code, 2, `${JSON.stringify(args)}: ${show(r)}`);
      assert.match(r.stderr, /^\S+:\d+: \S+: /, `${JSON.stringify(args)}: ${show(r)}`);
    }
  });
});
