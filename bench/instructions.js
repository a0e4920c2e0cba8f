'use strict';
// Instructions and system calls per proxied request. edgeway runs in front of a local fake
// upstream (plain HTTP or HTTPS with a test CA), serves N requests (JSON or SSE, one
// keep-alive connection), and stops; two runs (N and 2N requests) are subtracted, so
// start-up, probes, the TLS handshake and shut-down cancel out. Counts do not move with
// machine load.
//   instructions: `valgrind --tool=callgrind`; with TOP=n, the n costliest functions per
//                 request, inclusive (a function and what it calls) and self, also differenced
//   syscalls:     `strace -f -c` (SYSCALLS=0 skips), per request, by name
// Used by bench/instructions.sh. Env: EDGEWAY, REQUESTS (2000), TOP, CASES (comma list of
// json,sse,json-tls,sse-tls; default all four), SYSCALLS (1), PEER=haproxy (the same
// counts for HAProxy in edgeway's place: nbthread 1, keep-alive and `http-reuse always` to
// the upstream, `ssl verify required` with the same CA, no health check).
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { startUpstream } = require('../tests/integration/lib/fake_upstream');

const BIN = process.env.EDGEWAY;
const N = Number(process.env.REQUESTS || 2000);
const TOP = Number(process.env.TOP || 0);
const CASES = (process.env.CASES || 'json,sse,json-tls,sse-tls').split(',').filter(Boolean);
const SYSCALLS = process.env.SYSCALLS !== '0';
const PEER = process.env.PEER || '';
if (PEER !== '' && PEER !== 'haproxy') throw new Error(`PEER=${PEER}: only haproxy is known`);

// The proxy's configuration file and command line (without the tool in front).
function proxyCommand(c, dir, port) {
  if (PEER === 'haproxy') {
    const u = new URL(c.url);
    const tls = c.ca ? ` ssl verify required ca-file ${c.ca} sni str(${u.hostname}) verifyhost ${u.hostname}` : '';
    fs.writeFileSync(path.join(dir, 'h.cfg'), `global\n    nbthread 1\n    maxconn 256\n` +
      `defaults\n    mode http\n    option http-keep-alive\n    timeout connect 5s\n    timeout client 60s\n` +
      `    timeout server 60s\n    timeout http-keep-alive 60s\n` +
      `frontend api\n    bind 127.0.0.1:${port}\n    default_backend up\n` +
      `backend up\n    http-reuse always\n    server up 127.0.0.1:${u.port}${tls}\n`);
    return ['haproxy', '-db', '-f', path.join(dir, 'h.cfg')];
  }
  const ca = c.ca ? `ca_file = ${c.ca}\n` : '';
  fs.writeFileSync(path.join(dir, 'e.ini'), `[agent]\nlisten = 127.0.0.1:${port}\nlog_level = error\n` +
    `[probe]\ninterval_ms = 3600000\n[endpoint.up]\nurl = ${c.url}\nmodels = test-model\n${ca}`);
  return [BIN, '-c', path.join(dir, 'e.ini')];
}

function freePort() {
  return new Promise((resolve) => {
    const s = require('node:net').createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

function request(agent, port, stream) {
  const body = JSON.stringify({ model: 'test-model', messages: [{ role: 'user', content: 'hi' }], stream });
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/chat/completions', agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

// Function -> cost, from callgrind_annotate's listing (inclusive or self).
function functionCosts(out, inclusive) {
  const ann = execFileSync('callgrind_annotate', [`--inclusive=${inclusive ? 'yes' : 'no'}`, '--threshold=100', out],
    { encoding: 'utf8', maxBuffer: 256 << 20 });
  const m = ann.match(/([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS/) || ann.match(/([\d,]+)\s+PROGRAM TOTALS/);
  const costs = new Map();
  for (const line of ann.split('\n')) {
    const f = line.match(/^\s*([\d,]+) \([^)]*\)\s+(\S.*?)\s*$/);
    if (!f || /PROGRAM TOTALS/.test(line)) continue;
    // "file:function [object]": the object path differs between builds; keep the function.
    const name = f[2].replace(/\s+\[[^\]]*\]$/, '').replace(/^[^:]*:/, '');
    costs.set(name, (costs.get(name) || 0) + Number(f[1].replace(/,/g, '')));
  }
  return { total: Number(m[1].replace(/,/g, '')), costs };
}

// Syscall -> calls, from strace -c's table.
function syscallCounts(file) {
  const counts = new Map();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/);
    // % time, seconds, usecs/call, calls, [errors], syscall
    if (f.length < 5 || !/^\d/.test(f[0]) || f[f.length - 1] === 'total') continue;
    const name = f[f.length - 1];
    const calls = Number(f[3]);
    if (!Number.isFinite(calls)) continue;
    counts.set(name, (counts.get(name) || 0) + calls);
  }
  return counts;
}

async function once(c, count, tool) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ew-ir-'));
  const port = await freePort();
  const cmd = proxyCommand(c, dir, port);
  const out = path.join(dir, tool === 'callgrind' ? 'callgrind.out' : 'strace.out');
  const argv = tool === 'callgrind'
    ? ['valgrind', ['--tool=callgrind', `--callgrind-out-file=${out}`, ...cmd]]
    : ['strace', ['-f', '-c', '-o', out, ...cmd]];
  const p = spawn(argv[0], argv[1], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d) => { err += d; });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0; ; i++) {  // wait until it answers (valgrind starts slowly), bounded
    try { await new Promise((res, rej) => http.get({ host: '127.0.0.1', port, path: '/healthz' }, (r) => { r.resume(); r.on('end', res); }).on('error', rej)); break; } catch (e) {
      if (i > 600) throw new Error(`${PEER || 'edgeway'} did not start: ${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  for (let i = 0; i < count; i++) await request(agent, port, c.stream);
  agent.destroy();
  const exited = new Promise((r) => p.on('exit', r));
  // strace: the edgeway it runs is stopped (SIGTERM to strace would only detach it).
  const child = tool === 'strace' ? execFileSync('pgrep', ['-P', String(p.pid)], { encoding: 'utf8' }).trim() : '';
  if (child) process.kill(Number(child.split('\n')[0]), 'SIGTERM');
  else p.kill('SIGTERM');
  await exited;
  let result;
  if (tool === 'callgrind') {
    const self = functionCosts(out, false);
    result = { total: self.total, self: self.costs, incl: TOP ? functionCosts(out, true).costs : new Map() };
  } else {
    result = { calls: syscallCounts(out) };
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return result;
}

function perRequest(a, b) {  // (b - a) / N for each key of b
  const rows = [];
  for (const [k, v] of b) rows.push([k, (v - (a.get(k) || 0)) / N]);
  return rows.sort((x, y) => y[1] - x[1]);
}

const fmt = (x) => Math.round(x).toLocaleString('en-US');

(async () => {
  const { certs } = require('../tests/integration/lib/certs');
  const cert = certs();
  const plain = await startUpstream({ name: 'up', models: ['test-model'] });
  const tls = await startUpstream({ name: 'tls', models: ['test-model'],
    tls: { key: cert.read(cert.server.key), cert: cert.read(cert.server.cert) } });
  const all = {
    json: { kind: 'JSON, plain upstream', url: plain.url, stream: false },
    sse: { kind: 'SSE (3 events), plain upstream', url: plain.url, stream: true },
    'json-tls': { kind: 'JSON, TLS upstream', url: tls.url, stream: false, ca: cert.ca.cert },
    'sse-tls': { kind: 'SSE (3 events), TLS upstream', url: tls.url, stream: true, ca: cert.ca.cert },
  };
  const rows = [];
  for (const name of CASES) {
    const c = all[name];
    if (!c) throw new Error(`unknown case ${name}`);
    const a = await once(c, N, 'callgrind');
    const b = await once(c, 2 * N, 'callgrind');
    const row = { kind: c.kind, per: (b.total - a.total) / N };
    if (TOP) {
      for (const [label, key] of [['inclusive', 'incl'], ['self', 'self']]) {
        console.log(`\ntop functions per request, ${label}, ${c.kind} (${2 * N} minus ${N} requests):`);
        for (const [f, v] of perRequest(a[key], b[key]).slice(0, TOP)) console.log(`${fmt(v).padStart(8)}  ${f}`);
      }
    }
    if (SYSCALLS) {
      const sa = await once(c, N, 'strace');
      const sb = await once(c, 2 * N, 'strace');
      const per = perRequest(sa.calls, sb.calls).filter(([, v]) => v >= 0.005);
      row.syscalls = per.reduce((s, [, v]) => s + v, 0);
      row.by = per.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ');
    }
    rows.push(row);
  }
  await plain.close();
  await tls.close();
  console.log(`\n${PEER === 'haproxy' ? execFileSync('haproxy', ['-v'], { encoding: 'utf8' }).split('\n')[0] : `edgeway ${BIN}`}, ${N} requests subtracted from ${2 * N}, one keep-alive client connection`);
  console.log('| request | instructions per proxied request | syscalls per request | of which |\n|---|---:|---:|---|');
  for (const r of rows)
    console.log(`| ${r.kind} | ${fmt(r.per)} | ${r.syscalls === undefined ? '' : r.syscalls.toFixed(2)} | ${r.by || ''} |`);
})().catch((e) => { console.error(e); process.exit(1); });
