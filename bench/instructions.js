'use strict';
// Instructions per proxied request, counted by callgrind: edgeway runs under
// `valgrind --tool=callgrind` in front of a local fake upstream, serves N requests (JSON or
// SSE, one keep-alive connection), and stops; two runs (N and 2N requests) are subtracted,
// so start-up, probes and shut-down cancel out. Counts do not move with machine load.
// Used by bench/instructions.sh.
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { startUpstream } = require('../tests/integration/lib/fake_upstream');

const BIN = process.env.EDGEWAY;
const N = Number(process.env.REQUESTS || 2000);

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

async function once(upUrl, count, stream) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ew-ir-'));
  const port = await freePort();
  fs.writeFileSync(path.join(dir, 'e.ini'), `[agent]\nlisten = 127.0.0.1:${port}\nlog_level = error\n` +
    `[probe]\ninterval_ms = 3600000\n[endpoint.up]\nurl = ${upUrl}\nmodels = test-model\n`);
  const out = path.join(dir, 'callgrind.out');
  const p = spawn('valgrind', ['--tool=callgrind', `--callgrind-out-file=${out}`, BIN, '-c', path.join(dir, 'e.ini')],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d) => { err += d; });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0; ; i++) {  // wait until it answers (valgrind starts slowly), bounded
    try { await new Promise((res, rej) => http.get({ host: '127.0.0.1', port, path: '/healthz' }, (r) => { r.resume(); r.on('end', res); }).on('error', rej)); break; } catch (e) {
      if (i > 600) throw new Error(`edgeway did not start: ${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  for (let i = 0; i < count; i++) await request(agent, port, stream);
  agent.destroy();
  p.kill('SIGTERM');
  await new Promise((r) => p.on('exit', r));
  const ann = execFileSync('callgrind_annotate', [out], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const m = ann.match(/([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS/) || ann.match(/([\d,]+)\s+PROGRAM TOTALS/);
  fs.rmSync(dir, { recursive: true, force: true });
  return { total: Number(m[1].replace(/,/g, '')), annotate: ann };
}

(async () => {
  const up = await startUpstream({ name: 'up', models: ['test-model'] });
  const rows = [];
  for (const stream of [false, true]) {
    const a = await once(up.url, N, stream);
    const b = await once(up.url, 2 * N, stream);
    const per = (b.total - a.total) / N;
    rows.push({ kind: stream ? 'SSE (3 events)' : 'JSON', per });
    if (process.env.TOP) {
      const lines = b.annotate.split('\n').filter((l) => /^\s*[\d,]+ \(/.test(l)).slice(1, Number(process.env.TOP) + 1);
      console.log(`top functions, ${stream ? 'SSE' : 'JSON'} run of ${2 * N} requests:\n${lines.join('\n')}`);
    }
  }
  await up.close();
  console.log('| request | instructions per proxied request |\n|---|---:|');
  for (const r of rows) console.log(`| ${r.kind} | ${Math.round(r.per).toLocaleString('en-US')} |`);
})().catch((e) => { console.error(e); process.exit(1); });
