'use strict';
// Debian's mosquitto broker and mosquitto_sub for the telemetry tests, on 127.0.0.1.
//
//   const b = await startBroker({ tls: { cert, key } });   plain listener on b.port, and with
//                                  tls a second (TLS) listener on b.tlsPort; no persistence
//   startBroker({ users: { name: 'password' } })  anonymous clients refused; these log in
//                                  (mosquitto_passwd writes the broker's password file)
//   b.log                          everything the broker printed
//   await b.kill()                 SIGKILL, waits for the exit (the ports are free again)
//   await b.restart()              the same ports and configuration
//   await b.stop()                 idempotent
//
//   const s = await subscribe(b.port, 'edgeway/dev/#', { user, password });  mosquitto_sub -v
//                                  at QoS 1 (user and password for a broker with users)
//   s.messages                     [{ topic, payload, json (or undefined), at (Date.now()) }]
//   await s.waitFor(pred, what, timeoutMs)  resolves with the first message pred accepts
//                                  (earlier ones included); fails with what was seen
//   s.stop()
//
//   brokerAvailable()              false (skip) when mosquitto is not installed
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { freePort, tmpDir } = require('./agent');

const live = new Set();
process.on('exit', () => {
  for (const p of live) { try { p.kill('SIGKILL'); } catch (_) { /* gone */ } }
});

function findBin(name) {
  for (const dir of (process.env.PATH || '').split(':').concat(['/usr/sbin', '/usr/bin', '/sbin'])) {
    const p = path.join(dir, name);
    try { fs.accessSync(p, fs.constants.X_OK); return p; } catch (_) { /* next */ }
  }
  return null;
}

function brokerAvailable() {
  return !!(findBin('mosquitto') && findBin('mosquitto_sub'));
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

async function waitUntil(fn, what, timeoutMs, diag) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${diag ? `\n${diag()}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function startBroker({ tls, users } = {}) {
  const dir = tmpDir('edgeway-mqtt-');
  const port = await freePort();
  const tlsPort = tls ? await freePort() : 0;
  const auth = [];
  if (users) {
    const file = path.join(dir, 'passwd');
    for (const [name, password] of Object.entries(users)) {
      const args = ['-b', file, name, password];
      if (!fs.existsSync(file)) args.unshift('-c');
      const r = spawnSync(findBin('mosquitto_passwd'), args, { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`mosquitto_passwd failed: ${r.stderr}`);
    }
    auth.push(`password_file ${file}`);
  }
  const lines = [
    'persistence false',
    users ? 'allow_anonymous false' : 'allow_anonymous true',
    ...auth,
    'log_dest stderr',
    'log_type error', 'log_type warning', 'log_type notice', 'log_type information',
    'connection_messages true',
    `listener ${port} 127.0.0.1`,
  ];
  // As root, mosquitto drops to the `mosquitto` user, which cannot read the test's files.
  if (process.getuid && process.getuid() === 0) lines.unshift('user root');
  if (tls) {
    lines.push(`listener ${tlsPort} 127.0.0.1`, `certfile ${tls.cert}`, `keyfile ${tls.key}`);
  }
  const conf = path.join(dir, 'mosquitto.conf');
  fs.writeFileSync(conf, lines.join('\n') + '\n');
  const broker = { port, tlsPort, log: '', proc: null, conf };

  broker.start = async () => {
    const proc = spawn(findBin('mosquitto'), ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(proc);
    broker.proc = proc;
    proc.exited = new Promise((resolve) => proc.on('exit', () => { live.delete(proc); resolve(); }));
    proc.stdout.on('data', (d) => { broker.log += d.toString(); });
    proc.stderr.on('data', (d) => { broker.log += d.toString(); });
    let gone = false;
    proc.exited.then(() => { gone = true; });
    await waitUntil(async () => {
      if (gone) throw new Error(`mosquitto exited at start:\n${broker.log}`);
      return (await canConnect(port)) && (!tlsPort || await canConnect(tlsPort));
    }, `mosquitto on ${port}`, 15000, () => broker.log);
  };
  broker.kill = async () => {
    const p = broker.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    p.kill('SIGKILL');
    await p.exited;
  };
  broker.restart = async () => {
    await broker.kill();
    await broker.start();
  };
  broker.stop = broker.kill;
  await broker.start();
  return broker;
}

async function subscribe(port, topic, { user, password } = {}) {
  const login = user ? ['-u', user, '-P', password] : [];
  const proc = spawn(findBin('mosquitto_sub'),
    ['-h', '127.0.0.1', '-p', String(port), '-t', topic, '-v', '-q', '1', '-i', `observer-${process.pid}-${port}-${Date.now()}`, ...login],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  const sub = { messages: [], stderr: '', proc };
  let buf = '';
  proc.stdout.on('data', (d) => {
    const at = Date.now();
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const sp = line.indexOf(' ');
      const m = { topic: sp < 0 ? line : line.slice(0, sp), payload: sp < 0 ? '' : line.slice(sp + 1), at };
      try { m.json = JSON.parse(m.payload); } catch (_) { m.json = undefined; }
      sub.messages.push(m);
    }
  });
  proc.stderr.on('data', (d) => { sub.stderr += d.toString(); });
  proc.on('exit', () => live.delete(proc));
  sub.waitFor = async (pred, what, timeoutMs = 20000) => {
    let found;
    await waitUntil(async () => {
      found = sub.messages.find((m) => { try { return pred(m); } catch (_) { return false; } });
      return !!found;
    }, what, timeoutMs, () => `mosquitto_sub saw:\n${sub.messages.map((m) => `${m.topic} ${m.payload}`).join('\n')}\n${sub.stderr}`);
    return found;
  };
  sub.stop = () => { try { proc.kill('SIGKILL'); } catch (_) { /* gone */ } };
  return sub;
}

module.exports = { startBroker, subscribe, brokerAvailable, findBin };
