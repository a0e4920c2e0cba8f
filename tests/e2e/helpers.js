'use strict';
// Shared set-up for the end-to-end tests: the official `openai` npm package (pinned in
// package.json, installed by `npm ci` in tests/e2e) talking to the real edgeway binary,
// which proxies to the integration tests' fake upstreams (tests/integration/lib, reused
// as is).
//
//   const { OpenAI, sdkVersion } = loadSdk();   fails with "run npm ci in tests/e2e" when
//                                                the package is not installed
//   const t = track();  afterEach(t.cleanup);   t.upstream(opts), t.agent(ini)
//   client(agent, { apiKey, maxRetries, counter })  an OpenAI client whose baseURL is
//                                                edgeway's /v1; counter.requests counts
//                                                the HTTP requests the SDK made
//   collect(stream)  -> { chunks, content, finish, error }: iterates an SDK stream to its
//                       end or to the error it throws
//   optional(name)   -> { mod, version, skip }: another client library from package.json;
//                       skip is a reason (printed) when it cannot run on this Node
//   failure(fn)      -> the error fn's promise rejects with (fails when it resolves)
const path = require('node:path');

const INTEGRATION_LIB = path.join(__dirname, '..', 'integration', 'lib');
const agentLib = require(path.join(INTEGRATION_LIB, 'agent'));
const upstreamLib = require(path.join(INTEGRATION_LIB, 'fake_upstream'));
const proxyClient = require(path.join(INTEGRATION_LIB, 'proxy_client'));

const E2E_DIR = __dirname;

function loadSdk() {
  let mod;
  try {
    mod = require('openai');
  } catch (e) {
    if (e && e.code === 'MODULE_NOT_FOUND' && /'openai'/.test(e.message)) {
      const msg = `the openai npm package is not installed: run npm ci in ${E2E_DIR} ` +
        '(cd tests/e2e && npm ci) before running the e2e tests';
      console.error(`edgeway e2e: ${msg}`);
      throw new Error(msg);
    }
    throw e;
  }
  // openai 6.x, CommonJS: module.exports is the OpenAI class itself, with .OpenAI and
  // .default pointing at it and the error classes as static members and named exports.
  const OpenAI = mod.OpenAI || mod.default || mod;
  // eslint-disable-next-line global-require
  const sdkVersion = require('openai/version').VERSION;
  return { OpenAI, sdkVersion };
}

function track() {
  const cleanups = [];
  const t = {
    async cleanup() {
      while (cleanups.length) {
        const fn = cleanups.pop();
        try { await fn(); } catch (_) { /* best effort */ }
      }
    },
    async upstream(opts) {
      const up = await upstreamLib.startUpstream(opts);
      cleanups.push(() => up.close());
      return up;
    },
    // Starts edgeway with probes that only run once at start, and waits for those first
    // probe results so they cannot race the test's requests.
    async agent(ini, { env } = {}) {
      const agent = await agentLib.startAgent({ ini: Object.assign({ probe: proxyClient.SLOW_PROBE }, ini), env });
      cleanups.push(() => agent.stop());
      await proxyClient.waitProbed(agent);
      return agent;
    },
  };
  return t;
}

function client(OpenAI, agent, { apiKey = 'sk-any-local-string', maxRetries, counter, timeout = 20000 } = {}) {
  const opts = { baseURL: `${agent.url}/v1`, apiKey, timeout };
  if (maxRetries !== undefined) opts.maxRetries = maxRetries;
  if (counter) {
    counter.requests = 0;
    opts.fetch = (url, init) => {
      counter.requests++;
      return globalThis.fetch(url, init);
    };
  }
  return new OpenAI(opts);
}

async function collect(stream) {
  const out = { chunks: [], content: '', finish: undefined, error: undefined };
  try {
    for await (const chunk of stream) {
      out.chunks.push(chunk);
      const ch = chunk.choices && chunk.choices[0];
      if (ch && ch.delta && typeof ch.delta.content === 'string') out.content += ch.delta.content;
      if (ch && ch.finish_reason) out.finish = ch.finish_reason;
    }
  } catch (e) {
    out.error = e;
  }
  return out;
}

// What the fake upstream streams for `chunks` content chunks.
function fakeStreamText(chunks) {
  let s = '';
  for (let i = 0; i < chunks; i++) s += `tok${i} `;
  return s;
}

// Another client library pinned in package.json. Each one states the Node it needs
// (engines.node, a ">=N" range); on an older Node, or when it is not installed, the tests
// that use it are skipped with the reason printed, never failed for the wrong cause.
function optional(name) {
  let pkg;
  try {
    pkg = require(`${name}/package.json`);
  } catch (_) {
    try {
      pkg = JSON.parse(require('node:fs').readFileSync(path.join(E2E_DIR, 'node_modules', name, 'package.json'), 'utf8'));
    } catch (e) {
      const skip = `${name} is not installed: run npm ci in ${E2E_DIR}`;
      console.log(`edgeway e2e: skipped: ${skip}`);
      return { skip };
    }
  }
  const want = /^>=\s*(\d+)/.exec((pkg.engines && pkg.engines.node) || '');
  const have = Number(process.versions.node.split('.')[0]);
  if (want && have < Number(want[1])) {
    const skip = `${name} ${pkg.version} needs Node ${pkg.engines.node}, this is ${process.version}`;
    console.log(`edgeway e2e: skipped: ${skip}`);
    return { skip, version: pkg.version };
  }
  // eslint-disable-next-line global-require, import/no-dynamic-require
  return { mod: require(name), version: pkg.version, skip: false };
}

async function failure(fn) {
  let value;
  try {
    value = await fn();
  } catch (e) {
    return e;
  }
  throw new Error(`expected the client to raise, it returned ${JSON.stringify(value)}`);
}

function describeError(e) {
  if (!e) return String(e);
  const fields = {
    name: e.constructor && e.constructor.name, status: e.status, code: e.code, type: e.type, message: e.message,
    error: e.error, headers: e.headers && typeof e.headers.entries === 'function' ? Object.fromEntries(e.headers.entries()) : undefined,
  };
  return JSON.stringify(fields);
}

module.exports = {
  loadSdk, track, client, collect, fakeStreamText, describeError, optional, failure,
  agentLib, upstreamLib, proxyClient,
};
