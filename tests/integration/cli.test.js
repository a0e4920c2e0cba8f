'use strict';
// The command line: --version, --help, --check-config (good and bad INI files, key
// files, secrets), --probe-once.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const {
  runCli, runCliAsync, iniFor, tmpDir, sourceDir, version, TEST_KEY, FAST_PROBE,
} = require('./lib/agent');
const { startUpstream, reservedClosedPort } = require('./lib/fake_upstream');

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function show(r) {
  return `exit ${r.code}${r.signal ? ` (signal ${r.signal})` : ''}${r.timedOut ? ' (timed out)' : ''}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

function assertNoSecret(r, secret = TEST_KEY) {
  assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), `the secret ${secret} was printed:\n${show(r)}`);
}

const dir = tmpDir('edgeway-cli-');
let fileSeq = 0;
function writeIni(text, name) {
  const p = path.join(dir, name || `case-${++fileSeq}.ini`);
  fs.writeFileSync(p, text);
  return p;
}

// A valid configuration as lines; the bad cases edit it.
function goodLines() {
  return [
    '[agent]',
    'listen = 127.0.0.1:18088',
    'log_level = info',
    'strategy = priority',
    'max_clients = 8',
    '',
    '[probe]',
    'kind = models',
    'interval_ms = 200',
    'timeout_ms = 500',
    'fall = 2',
    'rise = 2',
    '',
    '[endpoint.a]',
    'url = http://127.0.0.1:9/v1',
    'api_key_env = EW_TEST_KEY',
    'models = m1, m2',
    'priority = 10',
    '',
    '[endpoint.b]',
    'url = http://127.0.0.1:10/v1',
    'api_key_env = EW_TEST_KEY',
    'models = m3',
    'priority = 5',
    '',
    '[fallback]',
    'm1 = m2, m3',
    '',
  ];
}

// Insert `lines` after the line equal to `after` (first occurrence).
function insertAfter(lines, afterLine, ...added) {
  const i = lines.indexOf(afterLine);
  if (i < 0) throw new Error(`no line ${afterLine}`);
  lines.splice(i + 1, 0, ...added);
  return lines;
}
function replaceLine(lines, from, to) {
  const i = lines.indexOf(from);
  if (i < 0) throw new Error(`no line ${from}`);
  lines[i] = to;
  return lines;
}

// Each case: the INI lines, the (1-based) line the error must name, and the key.
// `key` is a regex source; the key may carry its section as a prefix (agent.strategy).
const BAD_CASES = [
  {
    what: 'unknown key',
    lines: () => insertAfter(goodLines(), 'log_level = info', 'bogus_option = 1'),
    at: (l) => l.indexOf('bogus_option = 1'),
    key: 'bogus_option',
  },
  {
    what: 'duplicate key',
    lines: () => insertAfter(goodLines(), 'timeout_ms = 500', 'interval_ms = 300'),
    at: (l) => l.indexOf('interval_ms = 300'),
    key: 'interval_ms',
  },
  {
    what: 'unterminated section header',
    lines: () => replaceLine(goodLines(), '[endpoint.b]', '[endpoint.b'),
    at: (l) => l.indexOf('[endpoint.b'),
    key: '[^\\n]*?', // no key on a section line: any label, but FILE:LINE must be right
  },
  {
    what: 'bad number',
    lines: () => replaceLine(goodLines(), 'max_clients = 8', 'max_clients = eight'),
    at: (l) => l.indexOf('max_clients = eight'),
    key: 'max_clients',
  },
  {
    what: 'number with trailing junk',
    lines: () => replaceLine(goodLines(), 'interval_ms = 200', 'interval_ms = 200ms'),
    at: (l) => l.indexOf('interval_ms = 200ms'),
    key: 'interval_ms',
  },
  {
    what: 'negative time',
    lines: () => replaceLine(goodLines(), 'timeout_ms = 500', 'timeout_ms = -5'),
    at: (l) => l.indexOf('timeout_ms = -5'),
    key: 'timeout_ms',
  },
  {
    what: 'value above the compile-time cap',
    lines: () => replaceLine(goodLines(), 'max_clients = 8', 'max_clients = 1000000'),
    at: (l) => l.indexOf('max_clients = 1000000'),
    key: 'max_clients',
  },
  {
    what: 'unknown enum value',
    lines: () => replaceLine(goodLines(), 'strategy = priority', 'strategy = fastest'),
    at: (l) => l.indexOf('strategy = fastest'),
    key: 'strategy',
  },
  {
    what: 'unknown probe kind',
    lines: () => replaceLine(goodLines(), 'kind = models', 'kind = ping'),
    at: (l) => l.indexOf('kind = ping'),
    key: 'kind',
  },
  {
    what: 'bad URL scheme',
    lines: () => replaceLine(goodLines(), 'url = http://127.0.0.1:10/v1', 'url = ftp://127.0.0.1:10/v1'),
    at: (l) => l.indexOf('url = ftp://127.0.0.1:10/v1'),
    key: 'url',
  },
  {
    what: 'endpoint without url (names the section line)',
    lines: () => goodLines().filter((x) => x !== 'url = http://127.0.0.1:10/v1'),
    at: (l) => l.indexOf('[endpoint.b]'),
    key: 'url',
  },
  {
    what: 'fallback naming a model no endpoint serves',
    lines: () => replaceLine(goodLines(), 'm1 = m2, m3', 'm1 = m2, nowhere-model'),
    at: (l) => l.indexOf('m1 = m2, nowhere-model'),
    key: 'm1',
  },
];

describe('edgeway CLI', () => {
  it('--version prints the version and exits 0', () => {
    const r = runCli(['--version']);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, new RegExp(`^edgeway ${escapeRe(version())}\\s*$`), show(r));
  });

  it('--help prints usage and exits 0', () => {
    const r = runCli(['--help']);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /usage/i, show(r));
    for (const opt of ['-c', '--check-config', '--probe-once', '--version']) {
      assert.ok(r.stdout.includes(opt), `--help does not mention ${opt}:\n${show(r)}`);
    }
  });

  it('an unknown option is a usage error (exit 2)', () => {
    const r = runCli(['--no-such-option']);
    assert.equal(r.code, 2, show(r));
    assert.ok(r.stderr.trim().length > 0, `no message on stderr:\n${show(r)}`);
  });

  it('--check-config accepts the example config/edgeway.ini', () => {
    const example = path.join(sourceDir(), 'config', 'edgeway.ini');
    assert.ok(fs.existsSync(example), `${example} is missing: the example configuration is required`);
    // Give every api_key_env the example names a value, as a deployment would.
    const env = {};
    for (const m of fs.readFileSync(example, 'utf8').matchAll(/^\s*api_key_env\s*=\s*([A-Za-z_][A-Za-z0-9_]*)/gm)) {
      env[m[1]] = 'sk-example-secret-000';
    }
    const r = runCli(['--check-config', example], { env });
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, '', `--check-config must print nothing on stdout:\n${show(r)}`);
    assertNoSecret(r, 'sk-example-secret-000');
  });

  it('--check-config accepts a good file, in both argument orders, silently', () => {
    const file = writeIni(goodLines().join('\n'), 'good.ini');
    for (const args of [['--check-config', file], ['-c', file, '--check-config']]) {
      const r = runCli(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${show(r)}`);
      assert.equal(r.stdout, '', `${args.join(' ')}: stdout must be empty:\n${show(r)}`);
      assertNoSecret(r);
    }
  });

  it('--check-config on a missing file exits 2 naming the file', () => {
    const file = path.join(dir, 'does-not-exist.ini');
    const r = runCli(['--check-config', file]);
    assert.equal(r.code, 2, show(r));
    assert.ok(r.stderr.includes(file), `stderr does not name ${file}:\n${show(r)}`);
  });

  for (const c of BAD_CASES) {
    it(`--check-config rejects: ${c.what} (exit 2, FILE:LINE: key:)`, () => {
      const lines = c.lines();
      const idx = c.at(lines);
      assert.ok(idx >= 0, 'test bug: marker line not found');
      const file = writeIni(lines.join('\n'));
      const r = runCli(['--check-config', file]);
      assert.equal(r.code, 2, show(r));
      const re = new RegExp(`^${escapeRe(file)}:${idx + 1}: (?:[^\\s:]*\\.)?${c.key}: \\S`);
      assert.match(r.stderr, re, `want stderr to start "${file}:${idx + 1}: <${c.key}>: ..."\n${show(r)}`);
      assert.equal(r.stdout, '', show(r));
      assertNoSecret(r);
    });
  }

  it('the agent does not start on a bad file either (exit 2, same message)', () => {
    const lines = replaceLine(goodLines(), 'strategy = priority', 'strategy = fastest');
    const file = writeIni(lines.join('\n'));
    const r = runCli(['-c', file], { timeoutMs: 10000 });
    assert.equal(r.code, 2, show(r));
    const line = lines.indexOf('strategy = fastest') + 1;
    assert.match(r.stderr, new RegExp(`^${escapeRe(file)}:${line}: (?:[^\\s:]*\\.)?strategy: `), show(r));
  });

  it('api_key_file readable by others is refused; a private one is accepted; the key is never printed', () => {
    const secret = 'sk-file-secret-456';
    const keyFile = path.join(dir, 'key-open.txt');
    fs.writeFileSync(keyFile, `${secret}\n`);
    fs.chmodSync(keyFile, 0o644);
    const lines = replaceLine(goodLines(), 'api_key_env = EW_TEST_KEY', `api_key_file = ${keyFile}`);
    const file = writeIni(lines.join('\n'));
    const r = runCli(['--check-config', file]);
    assert.equal(r.code, 2, show(r));
    const line = lines.indexOf(`api_key_file = ${keyFile}`) + 1;
    assert.match(r.stderr, new RegExp(`^${escapeRe(file)}:${line}: (?:[^\\s:]*\\.)?api_key_file: `), show(r));
    assertNoSecret(r, secret);

    fs.chmodSync(keyFile, 0o600);
    const ok = runCli(['--check-config', file]);
    assert.equal(ok.code, 0, show(ok));
    assertNoSecret(ok, secret);
  });

  it('inline api_key is accepted with a warning that does not print the key', () => {
    const secret = 'sk-inline-secret-789';
    const lines = replaceLine(goodLines(), 'api_key_env = EW_TEST_KEY', `api_key = ${secret}`);
    const file = writeIni(lines.join('\n'));
    const r = runCli(['--check-config', file]);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stderr, /api_key/, `want a warning about the inline api_key:\n${show(r)}`);
    assertNoSecret(r, secret);
  });

  describe('--probe-once', () => {
    let up;
    let deadPort;
    before(async () => {
      up = await startUpstream({ name: 'alive', models: ['m1'] });
      deadPort = await reservedClosedPort();
    });
    after(async () => { if (up) await up.close(); });

    function probeIni(endpoints) {
      return writeIni(iniFor({
        agent: { listen: '127.0.0.1:1' }, // never bound by --probe-once
        // One probe each, so a generous timeout costs nothing: a loaded CI machine (or qemu
        // in the ARM builds) can take longer than FAST_PROBE's 500 ms to answer.
        probe: { ...FAST_PROBE, timeout_ms: 10000 },
        endpoints,
      }));
    }

    it('one healthy and one refused endpoint: table with both, exit 1 (some healthy)', async () => {
      const file = probeIni([
        { name: 'alive', url: up.url, models: ['m1'], priority: 10 },
        { name: 'dead', url: `http://127.0.0.1:${deadPort}/v1`, models: ['m1'], priority: 5 },
      ]);
      const r = await runCliAsync(['-c', file, '--probe-once']);
      assert.equal(r.code, 1, show(r));
      const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
      assert.ok(lines.length >= 3, `want a header row and two endpoint rows:\n${show(r)}`);
      assert.match(lines[0], /name/i, `header row:\n${show(r)}`);
      assert.match(lines[0], /result/i, `header row:\n${show(r)}`);
      const alive = lines.find((l) => /\balive\b/.test(l));
      const dead = lines.find((l) => /\bdead\b/.test(l));
      assert.ok(alive, `no row for "alive":\n${show(r)}`);
      assert.ok(dead, `no row for "dead":\n${show(r)}`);
      assert.match(alive, /\bok\b/, `"alive" row should say ok:\n${show(r)}`);
      assert.doesNotMatch(alive, /\bconnect\b|\btimeout\b/, show(r));
      assert.match(dead, /\bconnect\b/, `"dead" row should say connect:\n${show(r)}`);
      assert.ok(alive.includes(up.url) || alive.includes(String(up.port)), `"alive" row should show the url:\n${show(r)}`);
      assertNoSecret(r);
      // The probe (kind models) really reached the upstream, with the key as a bearer token.
      const probe = up.requests.find((q) => q.method === 'GET' && q.path === '/v1/models');
      assert.ok(probe, `no GET /v1/models reached the upstream; got ${JSON.stringify(up.requests.map((q) => `${q.method} ${q.path}`))}`);
      assert.equal(probe.headers.authorization, `Bearer ${TEST_KEY}`);
    });

    it('every endpoint healthy: exit 0', async () => {
      const file = probeIni([
        { name: 'alive', url: up.url, models: ['m1'], priority: 10 },
        { name: 'alive2', url: up.url, models: ['m1'], priority: 5 },
      ]);
      const r = await runCliAsync(['-c', file, '--probe-once']);
      assert.equal(r.code, 0, show(r));
      assert.match(r.stdout, /\balive\b.*\bok\b/, show(r));
      assert.match(r.stdout, /\balive2\b.*\bok\b/, show(r));
    });

    it('only a refused endpoint: exit 2 (none healthy)', async () => {
      const file = probeIni([{ name: 'dead', url: `http://127.0.0.1:${deadPort}/v1`, models: ['m1'] }]);
      const r = await runCliAsync(['-c', file, '--probe-once']);
      assert.equal(r.code, 2, show(r));
      assert.match(r.stdout, /\bdead\b.*\bconnect\b/, show(r));
      assertNoSecret(r);
    });
  });
});
