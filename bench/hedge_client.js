'use strict';
// Time-to-first-token client for bench/hedge_bench.sh.
//   node bench/hedge_client.js NAME URL REQUESTS CONCURRENCY [WARMUP]
// Sends WARMUP streaming chat completions (not measured), then REQUESTS more, CONCURRENCY at
// a time, keep-alive. For each: the time from writing the request to the first SSE data
// event arriving, and which server's event it was (the chunk id names it). Prints one JSON
// line: {name, n, errors, p50, p90, p99, max, mean (ms), served: {primary, backup}}.
const http = require('node:http');

const [name, url, reqs, conc, warm] = process.argv.slice(2);
const REQUESTS = Number(reqs);
const CONC = Number(conc);
const WARMUP = Number(warm || 0);
const agent = new http.Agent({ keepAlive: true, maxSockets: CONC });
const BODY = JSON.stringify({ model: 'bench-model', stream: true, messages: [{ role: 'user', content: 'Say hello.' }] });

function one() {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    let done = false;
    const finish = (r) => { if (!done) { done = true; resolve(r); } };
    const req = http.request(url, {
      method: 'POST', agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(BODY), Accept: 'text/event-stream' },
    }, (res) => {
      if (res.statusCode !== 200) { res.resume(); finish({ error: `HTTP ${res.statusCode}` }); return; }
      let buf = '';
      let r = null;
      res.setEncoding('utf8');
      res.on('data', (d) => {
        if (r) return;
        buf += d;
        const k = buf.indexOf('\n\n');
        if (k < 0) return;
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        const m = /"id":"chatcmpl-(\w+)"/.exec(buf.slice(0, k));
        r = { ms, from: m ? m[1] : '?' };
      });
      res.on('end', () => finish(r || { error: 'no event' }));
      res.on('error', (e) => finish({ error: e.message }));
    });
    req.setTimeout(30000, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => finish({ error: e.message }));
    req.end(BODY);
  });
}

async function run(n) {
  const out = [];
  let next = 0;
  const worker = async () => { while (next < n) { next++; out.push(await one()); } };
  await Promise.all(Array.from({ length: Math.min(CONC, n) }, worker));
  return out;
}

(async () => {
  if (WARMUP > 0) await run(WARMUP);
  const rs = await run(REQUESTS);
  const ok = rs.filter((r) => !r.error);
  const s = ok.map((r) => r.ms).sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
  const r1 = (x) => Math.round(x * 10) / 10;
  const served = {};
  for (const r of ok) served[r.from] = (served[r.from] || 0) + 1;
  console.log(JSON.stringify({
    name, n: ok.length, errors: rs.length - ok.length, p50: r1(q(50)), p90: r1(q(90)), p99: r1(q(99)),
    max: r1(s[s.length - 1]), mean: r1(s.reduce((a, b) => a + b, 0) / s.length), served,
  }));
  agent.destroy();
})().catch((e) => { console.error(e.message); process.exit(1); });
