'use strict';
// The fault storm (issue 7, point 1): three fake upstreams whose behaviour flips every
// flipMinMs..flipMaxMs (seeded random) among ok, 500, reset, hang, 429 (Retry-After: 1),
// slow SSE and refused (listener closed), with at least one of them ok at every moment, and
// `clients` clients (JSON and streaming mixed) sending requests back to back through one
// edgeway. Used by tests/integration/fault_storm.test.js (60 s) and bench/storm.js (20 min).
//
//   const report = await runStorm({ durationMs, seed, clients, flipMinMs, flipMaxMs,
//                                   sampleMs, onSample, log })
//   report: { requests, ok, failed, failures: { kind: n }, silentTruncations, crossed,
//             cutWithoutErrorEvent, streamErrorEvents, successRate, samples: [{ t, rssKb,
//             fds, states, clientsActive }], allDownSamples, flips, modeMs, baselineFds,
//             finalFds, firstFailureAtMs, config }
//
// Outcome of one request (what a user of an SDK would see):
//   ok                  JSON: 200 + a chat.completion carrying this request's echo;
//                       stream: 200 text/event-stream, every chunk carries this request's
//                       echo, `data: [DONE]` last, the body ended cleanly
//   silent truncation   a stream whose body ended cleanly without [DONE] and without an
//                       error event (the client cannot tell it from a whole answer)
//   crossed             an answer carrying another request's echo
//   every other end     a failure, by kind (status_503, stream_error_event, client_timeout, ...)
const fs = require('node:fs');
const http = require('node:http');
const { startUpstream } = require('./fake_upstream');
const { startAgent } = require('./agent');

const MODES = ['ok', '500', 'reset', 'hang', '429', 'slow_sse', 'refused'];

function behaviourFor(mode) {
  switch (mode) {
    case 'ok': return { mode: 'ok' };
    case '500': return { mode: 'status', status: 500 };
    case 'reset': return { mode: 'reset' };
    case 'hang': return { mode: 'hang' };
    case '429': return { mode: 'status', status: 429, headers: { 'Retry-After': '1' } };
    case 'slow_sse': return { mode: 'slow_sse', chunks: 5, chunkDelayMs: 300, delayMs: 800 };
    case 'refused': return { mode: 'refused' };
    default: throw new Error(`storm: unknown mode ${mode}`);
  }
}

// mulberry32: a small seeded PRNG, so a run can be repeated.
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function procStats(pid) {
  let rssKb;
  let fds;
  try {
    const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    rssKb = m ? Number(m[1]) : undefined;
  } catch (_) { rssKb = undefined; }
  try { fds = fs.readdirSync(`/proc/${pid}/fd`).length; } catch (_) { fds = undefined; }
  return { rssKb, fds };
}

function getJson(port, path, timeoutMs) {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let t = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { t += c; });
      res.on('end', () => { try { resolve(JSON.parse(t)); } catch (_) { resolve(undefined); } });
      res.on('error', () => resolve(undefined));
    });
    req.setTimeout(timeoutMs, () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

// One request through the agent -> { kind, ok, silent, crossed, cut, errorEvent }.
function oneRequest(port, httpAgent, { stream, nonce, timeoutMs }) {
  const body = JSON.stringify({ model: 'test-model', messages: [{ role: 'user', content: 'hello' }], stream, user: nonce });
  return new Promise((resolve) => {
    let settled = false;
    const done = (r) => { if (!settled) { settled = true; clearTimeout(timer); resolve(r); } };
    const req = http.request({
      host: '127.0.0.1', port, method: 'POST', path: '/v1/chat/completions', agent: httpAgent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
    }, (res) => {
      let text = '';
      let ended = false;
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      const finish = () => {
        if (res.statusCode !== 200) return done({ kind: `status_${res.statusCode}` });
        if (!stream) {
          if (!ended) return done({ kind: 'json_cut' });
          let j;
          try { j = JSON.parse(text); } catch (_) { return done({ kind: 'json_unparsable' }); }
          if (j.echo !== undefined && j.echo !== nonce) return done({ kind: 'crossed', crossed: true });
          if (j.object !== 'chat.completion' || j.echo !== nonce) return done({ kind: 'json_not_a_completion' });
          return done({ kind: 'ok', ok: true });
        }
        if (!/^text\/event-stream/.test(String(res.headers['content-type']))) return done({ kind: 'stream_wrong_type' });
        const events = [];
        for (const block of text.replace(/\r\n/g, '\n').split('\n\n')) {
          const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, ''));
          if (data.length) events.push(data.join('\n'));
        }
        const last = events[events.length - 1];
        const errorEvent = events.some((d) => d.includes('"error"'));
        const sawDone = last === '[DONE]';
        let crossed = false;
        for (const d of events) {
          if (d === '[DONE]') continue;
          try {
            const j = JSON.parse(d);
            if (j.echo !== undefined && j.echo !== nonce) crossed = true;
          } catch (_) { /* an error or broken event: judged below */ }
        }
        if (crossed) return done({ kind: 'crossed', crossed: true });
        if (ended && sawDone && !errorEvent) return done({ kind: 'ok', ok: true });
        if (errorEvent) return done({ kind: 'stream_error_event', errorEvent: true });
        if (ended) return done({ kind: 'silent_truncation', silent: true });
        return done({ kind: 'stream_cut_without_error_event', cut: true });
      };
      res.on('end', () => { ended = true; finish(); });
      res.on('aborted', () => finish());
      res.on('error', () => finish());
      res.on('close', () => finish());
    });
    const timer = setTimeout(() => { req.destroy(); done({ kind: 'client_timeout' }); }, timeoutMs);
    req.on('error', (e) => done({ kind: `client_error_${e.code || 'other'}` }));
    req.end(body);
  });
}

async function runStorm({
  durationMs = 60000, seed = 7, clients = 4, flipMinMs = 2000, flipMaxMs = 5000, sampleMs = 1000,
  requestTimeoutMs = 45000, settleMs = 30000, onSample, log = () => {}, agentKeys = {}, probe, endpointKeys = {},
} = {}) {
  const rand = prng(seed);
  const ups = [];
  const cleanups = [];
  const report = {
    seed, durationMs, requests: 0, ok: 0, failed: 0, failures: {}, silentTruncations: 0, crossed: 0,
    cutWithoutErrorEvent: 0, streamErrorEvents: 0, samples: [], allDownSamples: 0, flips: 0,
    modeMs: Object.fromEntries(MODES.map((m) => [m, 0])), firstFailureAtMs: undefined, byType: { json: 0, stream: 0 },
  };
  try {
    for (let i = 0; i < 3; i++) {
      const up = await startUpstream({ name: `s${i}` });
      cleanups.push(() => up.close());
      ups.push(up);
    }
    const config = {
      agent: Object.assign({ max_clients: 16, request_timeout_ms: 30000, max_attempts: 4, first_token_timeout_ms: 2000, log_level: 'warn' }, agentKeys),
      probe: probe || { interval_ms: 2000, down_interval_ms: 1000, timeout_ms: 1000, fall: 3, rise: 2 },
      endpoints: ups.map((u, i) => Object.assign({ name: u.name, url: u.url, priority: 30 - 10 * i, timeout_ms: 2000 }, endpointKeys)),
    };
    report.config = config;
    const agent = await startAgent({ ini: config });
    cleanups.push(() => agent.stop());
    const pid = agent.proc.pid;
    // Baseline after the first probes.
    await agent.waitStatus((s) => s.endpoints.every((e) => e.probes_ok + e.probes_failed >= 1), 'first probes', 15000);
    report.baselineFds = procStats(pid).fds;
    report.baselineRssKb = procStats(pid).rssKb;

    // Behaviour flips.
    const modes = ups.map(() => 'ok');
    const since = ups.map(() => Date.now());
    const flipTimers = new Set();
    let stopping = false;
    const okOthers = (i) => modes.some((m, j) => j !== i && m === 'ok');
    const flip = (i) => {
      if (stopping) return;
      const now = Date.now();
      report.modeMs[modes[i]] += now - since[i];
      since[i] = now;
      let next = MODES[Math.floor(rand() * MODES.length)];
      if (next !== 'ok' && !okOthers(i)) next = 'ok';
      modes[i] = next;
      ups[i].set(behaviourFor(next));
      report.flips++;
      schedule(i);
    };
    const schedule = (i) => {
      const t = setTimeout(() => { flipTimers.delete(t); flip(i); }, flipMinMs + Math.floor(rand() * (flipMaxMs - flipMinMs)));
      flipTimers.add(t);
    };
    ups.forEach((_, i) => schedule(i));

    const t0 = Date.now();
    const endAt = t0 + durationMs;
    // Samples: RSS, fds, endpoint states.
    const sampler = setInterval(async () => {
      const st = procStats(pid);
      const s = await getJson(agent.port, '/status', 2000);
      const states = s && Array.isArray(s.endpoints) ? s.endpoints.map((e) => e.state) : undefined;
      const sample = { t: Date.now() - t0, rssKb: st.rssKb, fds: st.fds, states, modes: modes.slice(),
        clientsActive: s && s.metrics ? s.metrics.clients_active : undefined, requests: report.requests, failed: report.failed };
      if (states && states.every((x) => /down/i.test(String(x)))) report.allDownSamples++;
      report.samples.push(sample);
      if (onSample) onSample(sample, report);
    }, sampleMs);

    let serial = 0;
    const clientLoop = async (ci) => {
      const ka = new http.Agent({ keepAlive: true, maxSockets: 1 });
      let mine = 0;
      try {
        while (Date.now() < endAt) {
          // JSON and streams alternate on each client (two start with each).
          const stream = (mine++ + ci) % 2 === 1;
          const nonce = `c${ci}-r${++serial}`;
          const r = await oneRequest(agent.port, ka, { stream, nonce, timeoutMs: requestTimeoutMs });
          report.requests++;
          report.byType[stream ? 'stream' : 'json']++;
          if (r.ok) { report.ok++; continue; }
          report.failed++;
          if (report.firstFailureAtMs === undefined) report.firstFailureAtMs = Date.now() - t0;
          report.failures[r.kind] = (report.failures[r.kind] || 0) + 1;
          if (r.silent) report.silentTruncations++;
          if (r.crossed) report.crossed++;
          if (r.cut) report.cutWithoutErrorEvent++;
          if (r.errorEvent) report.streamErrorEvents++;
          // Not a busy loop when the agent answers at once.
          if (/^status_|^client_error/.test(r.kind)) await new Promise((res) => setTimeout(res, 20));
        }
      } finally {
        ka.destroy();
      }
    };
    await Promise.all(Array.from({ length: clients }, (_, i) => clientLoop(i)));
    stopping = true;
    for (const t of flipTimers) clearTimeout(t);
    clearInterval(sampler);
    const now = Date.now();
    ups.forEach((u, i) => { report.modeMs[modes[i]] += now - since[i]; u.set({ mode: 'ok' }); });
    report.elapsedMs = now - t0;
    report.successRate = report.requests ? report.ok / report.requests : 0;
    // fds once the load has stopped: wait (bounded) for them to settle to the baseline
    // (parked upstream connections are closed after 20 s idle).
    const settleFrom = Date.now();
    const settleUntil = settleFrom + settleMs;
    let fin = procStats(pid);
    while (fin.fds !== undefined && report.baselineFds !== undefined && fin.fds > report.baselineFds && Date.now() < settleUntil) {
      await new Promise((r) => setTimeout(r, 250));
      fin = procStats(pid);
    }
    report.finalFds = fin.fds;
    report.fdsSettleMs = Date.now() - settleFrom;
    report.finalRssKb = fin.rssKb;
    report.agentAlive = agent.exitCode === undefined;
    report.stderrTail = agent.stderr.slice(-2000);
    log(`storm done: ${report.requests} requests, ${report.failed} failed`);
    return report;
  } finally {
    while (cleanups.length) {
      try { await cleanups.pop()(); } catch (_) { /* best effort */ }
    }
  }
}

function summary(report) {
  const pct = (x) => `${(100 * x).toFixed(2)} %`;
  const rss = report.samples.map((s) => s.rssKb).filter((x) => x !== undefined);
  const fds = report.samples.map((s) => s.fds).filter((x) => x !== undefined);
  const lines = [
    `seed ${report.seed}, ${(report.elapsedMs / 1000).toFixed(0)} s, ${report.flips} flips`,
    `requests ${report.requests} (json ${report.byType.json}, stream ${report.byType.stream}), ok ${report.ok} (${pct(report.successRate)}), failed ${report.failed}`,
    `failures by kind: ${JSON.stringify(report.failures)}`,
    `first failure after ${report.firstFailureAtMs === undefined ? '-' : `${(report.firstFailureAtMs / 1000).toFixed(1)} s`}`,
    `silent truncations ${report.silentTruncations}, crossed answers ${report.crossed}, cut without error event ${report.cutWithoutErrorEvent}, stream error events ${report.streamErrorEvents}`,
    `/status samples with every endpoint down: ${report.allDownSamples} of ${report.samples.length}`,
    `RSS kB: baseline ${report.baselineRssKb}, min ${Math.min(...rss)}, max ${Math.max(...rss)}, final ${report.finalRssKb}`,
    `fds: baseline ${report.baselineFds}, min ${Math.min(...fds)}, max ${Math.max(...fds)}, final ${report.finalFds} (${(report.fdsSettleMs / 1000).toFixed(1)} s after the load stopped)`,
    `time per mode (s, summed over the 3 upstreams): ${Object.entries(report.modeMs).map(([k, v]) => `${k} ${(v / 1000).toFixed(0)}`).join(', ')}`,
  ];
  return lines.join('\n');
}

module.exports = { runStorm, summary, MODES };
