'use strict';
// Runs the edgeway binary for the integration tests.
//
//   const agent = await startAgent({ ini, env, args, readyTimeoutMs });
//     ini: an object for iniFor() (agent.listen is filled in), a function
//          (listen) => INI text, or INI text (an `@LISTEN@` in it becomes host:port).
//     env: extra environment (EW_TEST_KEY=sk-test-secret-123 is always set).
//   agent.port, agent.url ('http://127.0.0.1:PORT'), agent.dir, agent.iniPath, agent.proc
//   agent.stdout, agent.stderr          everything the process printed so far
//   await agent.get(path, headers)      -> { status, headers, body, json }
//   await agent.post(path, body, headers)  (an object body is sent as JSON)
//   await agent.request({ method, path, headers, body, timeoutMs })
//   await agent.raw(bytes, { timeoutMs }) -> { data, error }  (one raw TCP exchange)
//   await agent.status()                GET /status, parsed (throws when not 200 JSON)
//   await agent.waitStatus(pred, what, timeoutMs = 15000)
//                                       polls /status every 50 ms until pred(status) is
//                                       true; fails with the last /status and stderr
//   await agent.waitFor(fn, what, timeoutMs)  same for any async condition
//   await agent.waitStderr(regex, what, timeoutMs)
//   await agent.stop()                  SIGTERM, SIGKILL after 5 s; -> exit code (or signal)
//
//   runCli(args, { env, timeoutMs })    -> { code, signal, stdout, stderr }
//   iniFor({ agent, probe, endpoints: [{ name, url, models, priority, ca_file, ... }], fallback,
//            context_fallback })
//   FAST_PROBE                          probe settings that make things happen in ~1 s
//   endpointOf(status, name), parseMetrics(text), metricValue(metrics, name, labels)
//   freePort(), tmpDir(prefix), TEST_KEY, TEST_KEY_ENV, sourceDir(), edgewayBin(), version()
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const http = require('node:http');
const { spawn, spawnSync } = require('node:child_process');

const TEST_KEY_ENV = 'EW_TEST_KEY';
const TEST_KEY = 'sk-test-secret-123';
// EW_TEST_PROBE_TIMEOUT_MS: a longer probe timeout where edgeway runs emulated (the ARM
// builds under qemu-user set it: a TLS handshake there can take longer than 500 ms).
const FAST_PROBE = Object.freeze({ interval_ms: 200, down_interval_ms: 200,
  timeout_ms: Number(process.env.EW_TEST_PROBE_TIMEOUT_MS) || 500, fall: 2, rise: 2 });
const POLL_MS = 50;

function edgewayBin() {
  const bin = process.env.EDGEWAY_BIN;
  if (!bin) throw new Error('EDGEWAY_BIN is not set: point it at the edgeway binary (ctest sets it)');
  if (!fs.existsSync(bin)) throw new Error(`EDGEWAY_BIN=${bin} does not exist`);
  return bin;
}

function sourceDir() {
  return process.env.EW_SOURCE_DIR || path.resolve(__dirname, '..', '..', '..');
}

// The project version from the top-level CMakeLists.txt (what --version and /status report).
function version() {
  const text = fs.readFileSync(path.join(sourceDir(), 'CMakeLists.txt'), 'utf8');
  const m = /project\s*\(\s*edgeway\s+VERSION\s+([0-9.]+)/i.exec(text);
  if (!m) throw new Error('no project(edgeway VERSION x.y.z) in CMakeLists.txt');
  return m[1];
}

const tmpDirs = new Set();
function tmpDir(prefix = 'edgeway-test-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.add(dir);
  return dir;
}

const liveAgents = new Set();
process.on('exit', () => {
  for (const p of liveAgents) { try { p.kill('SIGKILL'); } catch (_) { /* gone */ } }
  for (const d of tmpDirs) { try { fs.rmSync(d, { recursive: true, force: true }); } catch (_) { /* best effort */ } }
});

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function baseEnv(extra) {
  return Object.assign({}, process.env, { [TEST_KEY_ENV]: TEST_KEY }, extra || {});
}

// ---- INI ----------------------------------------------------------------------------------

function iniValue(v) {
  if (Array.isArray(v)) return v.join(', ');
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return String(v);
}

function iniSection(name, obj) {
  const lines = [`[${name}]`];
  for (const [k, v] of Object.entries(obj || {})) {
    if (v === undefined || v === null) continue;
    lines.push(`${k} = ${iniValue(v)}`);
  }
  return lines;
}

// Builds INI text with the SPEC section 5 keys. Endpoints get `api_key_env = EW_TEST_KEY`
// unless they name api_key_env, api_key_file or api_key (api_key_env: null omits it), and
// `models = test-model` unless they name models. Keys are written in the order given.
function iniFor({ agent, probe, endpoints, fallback, context_fallback: contextFallback, extra } = {}) {
  const out = [];
  if (agent) out.push(...iniSection('agent', agent), '');
  if (probe) out.push(...iniSection('probe', probe), '');
  for (const ep of endpoints || []) {
    const { name, ...rest } = ep;
    if (!name) throw new Error('iniFor: endpoint without a name');
    const keys = Object.assign({}, rest);
    if (!('api_key_env' in keys) && !('api_key_file' in keys) && !('api_key' in keys)) keys.api_key_env = TEST_KEY_ENV;
    if (!('models' in keys)) keys.models = ['test-model'];
    // url first, for readability of the file in failure messages
    const ordered = { url: keys.url };
    delete keys.url;
    out.push(...iniSection(`endpoint.${name}`, Object.assign(ordered, keys)), '');
  }
  if (fallback && Object.keys(fallback).length) out.push(...iniSection('fallback', fallback), '');
  if (contextFallback && Object.keys(contextFallback).length) {
    out.push(...iniSection('context_fallback', contextFallback), '');
  }
  if (extra) out.push(extra);
  return out.join('\n');
}

// ---- HTTP ---------------------------------------------------------------------------------

function httpRequest({ port, host = '127.0.0.1', method = 'GET', path: p = '/', headers = {}, body, timeoutMs = 10000 }) {
  return new Promise((resolve, reject) => {
    let payload = body;
    const hdrs = Object.assign({}, headers);
    if (payload !== undefined && typeof payload !== 'string' && !Buffer.isBuffer(payload)) {
      payload = JSON.stringify(payload);
      if (!Object.keys(hdrs).some((k) => k.toLowerCase() === 'content-type')) hdrs['Content-Type'] = 'application/json';
    }
    if (payload !== undefined) hdrs['Content-Length'] = Buffer.byteLength(payload);
    const req = http.request({ host, port, method, path: p, headers: hdrs, agent: false }, (res) => {
      const parts = [];
      res.on('data', (c) => parts.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch (_) { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, body: text, json });
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${p}: no response after ${timeoutMs} ms`)));
    req.on('error', (e) => reject(new Error(`${method} ${p} on 127.0.0.1:${port}: ${e.message}`)));
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

// Writes `bytes` on a fresh TCP connection and collects the answer until the peer closes,
// one complete response (by Content-Length) has arrived, or timeoutMs passes.
function rawExchange(port, bytes, { timeoutMs = 5000, host = '127.0.0.1' } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host });
    const parts = [];
    let done = false;
    const finish = (error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ data: Buffer.concat(parts).toString('latin1'), error: error ? error.message : undefined });
    };
    const timer = setTimeout(() => finish(new Error(`timeout after ${timeoutMs} ms`)), timeoutMs);
    sock.on('connect', () => sock.write(bytes));
    sock.on('data', (c) => {
      parts.push(c);
      const text = Buffer.concat(parts).toString('latin1');
      const headEnd = text.indexOf('\r\n\r\n');
      if (headEnd >= 0) {
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, headEnd));
        if (m && text.length - headEnd - 4 >= Number(m[1])) finish();
      }
    });
    sock.on('end', () => finish());
    sock.on('close', () => finish());
    sock.on('error', (e) => finish(e));
  });
}

// ---- metrics and status helpers -----------------------------------------------------------

// Prometheus text -> [{ name, labels: {k: v}, value }]; comments skipped.
function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    const l = line.trim();
    if (!l || l.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$/.exec(l);
    if (!m) { out.push({ name: null, line: l, labels: {}, value: NaN }); continue; }
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/g;
      let lm;
      while ((lm = re.exec(m[3])) !== null) labels[lm[1]] = lm[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    out.push({ name: m[1], labels, value: Number(m[4]), line: l });
  }
  return out;
}

// The samples of `name` whose labels include every label in `labels`.
function metricSamples(samples, name, labels = {}) {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

// The value of the one sample of `name` with exactly-matching given labels, or undefined.
function metricValue(samples, name, labels = {}) {
  const found = metricSamples(samples, name, labels);
  return found.length ? found[0].value : undefined;
}

function endpointOf(status, name) {
  if (!status || !Array.isArray(status.endpoints)) return undefined;
  return status.endpoints.find((e) => e.name === name);
}

function tail(text, n = 3000) {
  if (!text) return '(empty)';
  return text.length > n ? `...${text.slice(-n)}` : text;
}

// ---- the agent ----------------------------------------------------------------------------

function renderIni(ini, listen) {
  if (typeof ini === 'function') return ini(listen);
  if (typeof ini === 'string') return ini.split('@LISTEN@').join(listen);
  if (ini && typeof ini === 'object') {
    return iniFor(Object.assign({}, ini, { agent: Object.assign({ listen }, ini.agent || {}, { listen }) }));
  }
  throw new Error('startAgent: ini must be an object, a function or a string');
}

async function startOnce({ ini, env, args, readyTimeoutMs }) {
  const bin = edgewayBin();
  const port = await freePort();
  const listen = `127.0.0.1:${port}`;
  const dir = tmpDir('edgeway-agent-');
  const iniPath = path.join(dir, 'edgeway.ini');
  const text = renderIni(ini, listen);
  fs.writeFileSync(iniPath, text);

  const proc = spawn(bin, ['-c', iniPath, ...(args || [])], { env: baseEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  liveAgents.add(proc);
  const agent = {
    port, listen, url: `http://${listen}`, dir, iniPath, iniText: text, proc,
    stdout: '', stderr: '', exitCode: undefined, exitSignal: undefined,
  };
  const LIMIT = 4 * 1024 * 1024;
  proc.stdout.on('data', (c) => { if (agent.stdout.length < LIMIT) agent.stdout += c.toString('utf8'); });
  proc.stderr.on('data', (c) => { if (agent.stderr.length < LIMIT) agent.stderr += c.toString('utf8'); });
  agent.exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      agent.exitCode = code;
      agent.exitSignal = signal;
      liveAgents.delete(proc);
      resolve(code === null ? signal : code);
    });
    proc.on('error', (e) => {
      agent.stderr += `\n[harness] spawn failed: ${e.message}\n`;
      agent.exitCode = -1;
      liveAgents.delete(proc);
      resolve(-1);
    });
  });
  const running = () => agent.exitCode === undefined && agent.exitSignal === undefined;
  const describeExit = () => `edgeway exited (code ${agent.exitCode}, signal ${agent.exitSignal})`;
  const diag = () => `\n--- edgeway stderr (tail) ---\n${tail(agent.stderr)}\n--- INI ${iniPath} ---\n${text}`;

  agent.request = (opts) => httpRequest(Object.assign({ port }, opts));
  agent.get = (p, headers) => httpRequest({ port, method: 'GET', path: p, headers });
  agent.post = (p, body, headers) => httpRequest({ port, method: 'POST', path: p, body, headers });
  agent.raw = (bytes, opts) => rawExchange(port, bytes, opts);
  agent.status = async () => {
    const r = await agent.get('/status');
    if (r.status !== 200 || r.json === undefined) throw new Error(`GET /status: ${r.status} ${r.body.slice(0, 500)}`);
    return r.json;
  };
  agent.diag = diag;

  agent.waitFor = async (fn, what, timeoutMs = 15000) => {
    const deadline = Date.now() + timeoutMs;
    let last;
    let lastErr;
    for (;;) {
      if (!running()) throw new Error(`waiting for ${what}: ${describeExit()}${diag()}`);
      try {
        const r = await fn();
        if (r && r.ok) return r.value;
        last = r ? r.last : undefined;
        lastErr = undefined;
      } catch (e) {
        lastErr = e;
      }
      if (Date.now() >= deadline) {
        const lastText = last === undefined ? '(none)' : (typeof last === 'string' ? last : JSON.stringify(last, null, 2));
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n--- last value ---\n${lastText}` +
          (lastErr ? `\n--- last error ---\n${lastErr.stack || lastErr}` : '') + diag());
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  };

  // pred(status) -> truthy when done. A pred that throws counts as "not yet".
  agent.waitStatus = (pred, what, timeoutMs = 15000) => agent.waitFor(async () => {
    const s = await agent.status();
    let ok = false;
    let predErr;
    try { ok = !!pred(s); } catch (e) { predErr = e; }
    if (predErr) throw Object.assign(predErr, { message: `predicate: ${predErr.message}\nstatus: ${JSON.stringify(s)}` });
    return { ok, value: s, last: s };
  }, what, timeoutMs);

  agent.waitStderr = (re, what, timeoutMs = 15000) => agent.waitFor(async () => {
    const m = re.exec(agent.stderr);
    return { ok: !!m, value: m, last: tail(agent.stderr, 1000) };
  }, what || `stderr to match ${re}`, timeoutMs);

  let stopping = null;
  agent.stop = () => {
    if (stopping) return stopping;
    stopping = (async () => {
      if (running()) {
        try { proc.kill('SIGTERM'); } catch (_) { /* gone */ }
        const killer = setTimeout(() => { try { proc.kill('SIGKILL'); } catch (_) { /* gone */ } }, 5000);
        await agent.exited;
        clearTimeout(killer);
      }
      try { fs.rmSync(dir, { recursive: true, force: true }); tmpDirs.delete(dir); } catch (_) { /* best effort */ }
      return agent.exitCode === null ? agent.exitSignal : agent.exitCode;
    })();
    return stopping;
  };

  // Ready when GET /healthz answers 200.
  const deadline = Date.now() + readyTimeoutMs;
  let lastErr = '';
  for (;;) {
    if (!running()) {
      await agent.stop();
      return { agent: null, exitedEarly: true, stderr: agent.stderr, reason: `${describeExit()} before /healthz answered${diag()}` };
    }
    try {
      const r = await httpRequest({ port, path: '/healthz', timeoutMs: 1000 });
      if (r.status === 200) return { agent };
      lastErr = `GET /healthz -> ${r.status} ${r.body.slice(0, 200)}`;
    } catch (e) {
      lastErr = e.message;
    }
    if (Date.now() >= deadline) {
      await agent.stop();
      return { agent: null, exitedEarly: false, reason: `GET /healthz did not answer 200 within ${readyTimeoutMs} ms (last: ${lastErr})${diag()}` };
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

// Starts edgeway and waits for /healthz. Retries with another port when the chosen one
// was taken in the meantime (the agent exits complaining about the address).
async function startAgent({ ini, env, args, readyTimeoutMs = 10000, attempts = 4 } = {}) {
  let last;
  for (let i = 0; i < attempts; i++) {
    last = await startOnce({ ini, env, args, readyTimeoutMs });
    if (last.agent) return last.agent;
    const portTrouble = last.exitedEarly && /in use|EADDRINUSE|bind/i.test(last.stderr || '');
    if (!portTrouble) break;
  }
  throw new Error(`edgeway did not start: ${last.reason}`);
}

function runCli(args, { env, timeoutMs = 20000 } = {}) {
  const r = spawnSync(edgewayBin(), args, { env: baseEnv(env), encoding: 'utf8', timeout: timeoutMs });
  if (r.error && r.error.code !== 'ETIMEDOUT') throw r.error;
  return {
    code: r.status,
    signal: r.signal,
    stdout: r.stdout || '',
    stderr: r.stderr || '',
    timedOut: !!(r.error && r.error.code === 'ETIMEDOUT'),
  };
}

// Async variant for when fake upstreams in this process must answer the CLI.
function runCliAsync(args, { env, timeoutMs = 20000 } = {}) {
  return new Promise((resolve) => {
    const proc = spawn(edgewayBin(), args, { env: baseEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    proc.stdout.on('data', (c) => { stdout += c.toString('utf8'); });
    proc.stderr.on('data', (c) => { stderr += c.toString('utf8'); });
    const timer = setTimeout(() => { timedOut = true; proc.kill('SIGKILL'); }, timeoutMs);
    proc.on('error', (e) => { clearTimeout(timer); resolve({ code: -1, signal: null, stdout, stderr: stderr + e.message, timedOut }); });
    proc.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr, timedOut }); });
  });
}

module.exports = {
  startAgent, runCli, runCliAsync, iniFor, FAST_PROBE, TEST_KEY, TEST_KEY_ENV,
  endpointOf, parseMetrics, metricSamples, metricValue, freePort, tmpDir, sourceDir, edgewayBin, version,
  httpRequest, rawExchange, tail,
};
