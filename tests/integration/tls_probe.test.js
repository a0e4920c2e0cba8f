'use strict';
// Probes over HTTPS: a trusted certificate, an unknown CA, a certificate for another
// host name, and tls_verify = false.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startAgent, endpointOf, FAST_PROBE, TEST_KEY } = require('./lib/agent');
const { startUpstream } = require('./lib/fake_upstream');
const { certs } = require('./lib/certs');

describe('TLS probes', () => {
  const ups = {};
  let agent;
  let c;

  before(async () => {
    c = certs();
    const pair = (p) => ({ key: c.read(p.key), cert: c.read(p.cert) });
    ups.good = await startUpstream({ name: 'good', tls: pair(c.server) });
    ups.unknownca = await startUpstream({ name: 'unknownca', tls: pair(c.unknownCa) });
    ups.wronghost = await startUpstream({ name: 'wronghost', tls: pair(c.wrongHost) });
    ups.noverify = await startUpstream({ name: 'noverify', tls: pair(c.unknownCa) });
    agent = await startAgent({
      ini: {
        probe: FAST_PROBE,
        endpoints: [
          { name: 'good', url: ups.good.url, ca_file: c.ca.cert },
          { name: 'unknownca', url: ups.unknownca.url, ca_file: c.ca.cert },
          { name: 'wronghost', url: ups.wronghost.url, ca_file: c.ca.cert },
          { name: 'noverify', url: ups.noverify.url, ca_file: c.ca.cert, tls_verify: false },
        ],
      },
    });
  });

  after(async () => {
    if (agent) await agent.stop();
    await Promise.all(Object.values(ups).map((u) => u.close()));
  });

  const ep = (s, name) => endpointOf(s, name);

  it('a certificate from the configured ca_file: HEALTHY', async () => {
    const s = await agent.waitStatus((st) => ep(st, 'good').probes_ok >= 2 && ep(st, 'good').state === 'HEALTHY',
      '"good" HEALTHY with 2 ok probes');
    const e = ep(s, 'good');
    assert.equal(e.last_result, 'ok', JSON.stringify(e));
    assert.equal(e.probes_failed, 0, JSON.stringify(e));
    const q = ups.good.requests.find((r) => r.method === 'GET' && r.path === '/v1/models');
    assert.ok(q, 'no GET /v1/models reached the HTTPS upstream');
    assert.equal(q.headers.authorization, `Bearer ${TEST_KEY}`);
    assert.equal(q.headers.host, `localhost:${ups.good.port}`);
  });

  it('sends SNI with the host name of the url', async () => {
    await agent.waitStatus((st) => ep(st, 'good').probes_ok >= 1, '"good" with an ok probe');
    // Only full handshakes show the SNI on the server side; the first one is always full.
    assert.ok(ups.good.servernames.length >= 1, `no full TLS handshake: ${JSON.stringify(ups.good.handshakes)}`);
    assert.ok(ups.good.servernames.every((n) => n === 'localhost'), `SNI of full handshakes: ${JSON.stringify(ups.good.handshakes)}`);
  });

  it('repeated probes do not pay a full TLS handshake each (keep-alive or session resumption)', async () => {
    await agent.waitStatus((st) => ep(st, 'good').probes_ok >= 4, '"good" with 4 ok probes');
    const u = ups.good;
    assert.ok(u.resumedSessions >= 1 || u.tcpConnections < u.requests.length,
      `${u.requests.length} requests, ${u.tcpConnections} TCP connections, handshakes ${JSON.stringify(u.handshakes)}`);
  });

  it('unknown CA: never ok, DOWN, last_error says unknown CA, the key is never sent', async () => {
    const oks = [];
    const s = await agent.waitStatus((st) => {
      const e = ep(st, 'unknownca');
      if (e.probes_ok !== 0) oks.push(e);
      return e.state === 'DOWN';
    }, '"unknownca" DOWN');
    assert.deepEqual(oks, [], 'a probe against an untrusted certificate counted as ok');
    const e = ep(s, 'unknownca');
    assert.equal(e.probes_ok, 0, JSON.stringify(e));
    assert.equal(e.last_result, 'tls', JSON.stringify(e));
    assert.match(e.last_error, /unknown CA/i, JSON.stringify(e));
    assert.equal(ups.unknownca.requests.length, 0, 'an HTTP request (with the API key) went to an unverified server');
  });

  it('certificate for another host name: DOWN, last_error says host name, the key is never sent', async () => {
    const s = await agent.waitStatus((st) => ep(st, 'wronghost').state === 'DOWN', '"wronghost" DOWN');
    const e = ep(s, 'wronghost');
    assert.equal(e.probes_ok, 0, JSON.stringify(e));
    assert.equal(e.last_result, 'tls', JSON.stringify(e));
    assert.match(e.last_error, /host ?name/i, JSON.stringify(e));
    assert.equal(ups.wronghost.requests.length, 0, 'an HTTP request (with the API key) went to a server with the wrong name');
  });

  it('tls_verify = false: HEALTHY despite the unknown CA, with a warning on stderr', async () => {
    const s = await agent.waitStatus((st) => ep(st, 'noverify').probes_ok >= 2 && ep(st, 'noverify').state === 'HEALTHY',
      '"noverify" HEALTHY with 2 ok probes');
    assert.equal(ep(s, 'noverify').last_result, 'ok', JSON.stringify(ep(s, 'noverify')));
    const warning = agent.stderr.split('\n').find((l) => /warn/i.test(l) && /tls_verify|verif/i.test(l));
    assert.ok(warning, `no warning about tls_verify = false on stderr:\n${agent.stderr}`);
  });

  it('the API key never shows in the logs', () => {
    assert.ok(!agent.stderr.includes(TEST_KEY) && !agent.stdout.includes(TEST_KEY), 'the logs show the API key');
  });
});
