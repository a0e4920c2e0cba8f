'use strict';
// SSE chunk delay client for bench/proxy_bench.sh.
//   node bench/sse_client.js STREAMS NAME=URL [NAME=URL...]
// Sends STREAMS streaming chat completions to each URL, alternating between the URLs
// stream by stream (so slow drift of the machine hits every target alike), one at a time,
// keep-alive. For every event it takes (arrival time - the upstream's bench_t_ns): the
// time the chunk took from the upstream's socket write to this client's 'data' callback.
// Prints one JSON line per target: {name, streams, events, first_us:{...}, rest_us:{...}}
// with p50/p90/p99/max/mean. first = the first event of each stream (edgeway re-frames it
// at commit); rest = every later event.
const http = require('node:http');

const streams = Number(process.argv[2]);
const targets = process.argv.slice(3).map((a) => {
  const i = a.indexOf('=');
  return { name: a.slice(0, i), url: new URL(a.slice(i + 1)), first: [], rest: [], agent: new http.Agent({ keepAlive: true, maxSockets: 1 }) };
});
const BODY = JSON.stringify({ model: 'bench-model', stream: true, messages: [{ role: 'user', content: 'Count.' }] });

function one(t) {
  return new Promise((resolve, reject) => {
    const req = http.request(t.url, {
      method: 'POST', agent: t.agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(BODY), Accept: 'text/event-stream' },
    }, (res) => {
      if (res.statusCode !== 200) { reject(new Error(`${t.name}: HTTP ${res.statusCode}`)); res.resume(); return; }
      let buf = '';
      let seen = 0;
      res.setEncoding('utf8');
      res.on('data', (d) => {
        const now = process.hrtime.bigint();
        buf += d;
        let k;
        while ((k = buf.indexOf('\n\n')) >= 0) {
          const ev = buf.slice(0, k);
          buf = buf.slice(k + 2);
          const m = /"bench_t_ns":"(\d+)"/.exec(ev);
          if (!m) continue;
          const us = Number(now - BigInt(m[1])) / 1000;
          (seen++ === 0 ? t.first : t.rest).push(us);
        }
      });
      res.on('end', () => (seen > 0 ? resolve() : reject(new Error(`${t.name}: no events`))));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(BODY);
  });
}

function stats(a) {
  const s = a.slice().sort((x, y) => x - y);
  const q = (p) => s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
  const r = (x) => Math.round(x * 10) / 10;
  return { n: s.length, p50: r(q(50)), p90: r(q(90)), p99: r(q(99)), max: r(s[s.length - 1]), mean: r(s.reduce((x, y) => x + y, 0) / s.length) };
}

(async () => {
  for (let i = 0; i < streams; i++) for (const t of targets) await one(t);
  for (const t of targets) {
    console.log(JSON.stringify({ name: t.name, streams, events: t.first.length + t.rest.length, first_us: stats(t.first), rest_us: stats(t.rest) }));
    t.agent.destroy();
  }
})().catch((e) => { console.error(e.message); process.exit(1); });
