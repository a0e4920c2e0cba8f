'use strict';
// TLS session resumption end to end, counted on the HTTPS upstream (Node's OpenSSL server):
// consecutive `tls` probes and proxied requests on fresh connections resume, under TLS 1.3
// (Mbed TLS 3.6) and under TLS 1.2 (2.28, or a server capped at TLS 1.2). A TLS 1.3 ticket
// comes after the handshake: a probe that closed at once would never resume.
//
// TLS 1.3 tickets are offered once each (RFC 8446 C.4). Node's server sends two tickets
// after a full handshake and none after a resumed one (OpenSSL's s_server and nginx send
// a fresh one each time: every connection then resumes, see tests/net/test_tls_resume.cpp
// and bench/README.md). So against Node: full, resumed, resumed, full, ... and never two
// full handshakes in a row. TLS 1.2 sessions are reusable: one full handshake in all.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startAgent, endpointOf, FAST_PROBE } = require('./lib/agent');
const { startUpstream } = require('./lib/fake_upstream');
const { certs } = require('./lib/certs');

const summary = (u) => JSON.stringify({ tcp: u.tcpConnections, handshakes: u.handshakes });
const full = (u) => u.handshakes.filter((h) => !h.resumed).length;

// The resumption a client with single-use TLS 1.3 tickets must achieve against this server.
function assertResumes(u, n) {
  const hs = u.handshakes.slice(0, n);
  assert.equal(hs.length, n, summary(u));
  assert.equal(hs[0].resumed, false, summary(u));
  assert.equal(hs[1].resumed, true, `the second connection did not resume: ${summary(u)}`);
  if (hs.every((h) => h.protocol === 'TLSv1.2')) {
    assert.equal(full({ handshakes: hs }), 1, `full handshakes beyond the first: ${summary(u)}`);
  } else {
    for (let i = 1; i < n; i++) {
      assert.ok(hs[i].resumed || hs[i - 1].resumed, `two full handshakes in a row (tickets lost): ${summary(u)}`);
    }
    assert.ok(full({ handshakes: hs }) <= Math.ceil(n / 3), summary(u));
  }
}

describe('TLS resumption: consecutive tls probes', () => {
  const ups = {};
  let agent;

  before(async () => {
    const c = certs();
    const tls = { key: c.read(c.server.key), cert: c.read(c.server.cert) };
    ups.best = await startUpstream({ name: 'best', tls });
    ups.tls12 = await startUpstream({ name: 'tls12', tls: Object.assign({ maxVersion: 'TLSv1.2' }, tls) });
    agent = await startAgent({
      ini: {
        probe: Object.assign({}, FAST_PROBE, { kind: 'tls' }),
        endpoints: [
          { name: 'best', url: ups.best.url, ca_file: c.ca.cert, models: ['m-best'] },
          { name: 'tls12', url: ups.tls12.url, ca_file: c.ca.cert, models: ['m-12'] },
        ],
      },
    });
  });

  after(async () => {
    if (agent) await agent.stop();
    await Promise.all(Object.values(ups).map((u) => u.close()));
  });

  for (const name of ['best', 'tls12']) {
    it(`${name}: 6 probes resume`, async () => {
      await agent.waitStatus((st) => endpointOf(st, name).probes_ok >= 6, `"${name}" with 6 ok probes`, 30000);
      const u = ups[name];
      // The probe is done once it has the server's Finished; the server records the
      // handshake when it has the client's, a moment later (later still on a busy machine).
      await agent.waitFor(async () => ({ ok: u.handshakes.length >= 6, last: summary(u) }),
        `"${name}": 6 handshakes recorded by the server`, 10000);
      if (name === 'tls12') assert.ok(u.handshakes.every((h) => h.protocol === 'TLSv1.2'), summary(u));
      assertResumes(u, 6);
    });
  }
});

describe('TLS resumption: proxied requests on fresh connections', () => {
  let up;
  let agent;

  before(async () => {
    const c = certs();
    // The server drops idle keep-alive connections at once: every request needs a new one.
    up = await startUpstream({ name: 'up', tls: { key: c.read(c.server.key), cert: c.read(c.server.cert) },
      models: ['m1'], keepAliveTimeoutMs: 30 });
    agent = await startAgent({
      ini: {
        probe: Object.assign({}, FAST_PROBE, { kind: 'tls', interval_ms: 600000, down_interval_ms: 600000 }),
        endpoints: [{ name: 'up', url: up.url, ca_file: c.ca.cert, models: ['m1'] }],
      },
    });
  });

  after(async () => {
    if (agent) await agent.stop();
    if (up) await up.close();
  });

  it('5 requests on 5 connections after the first probe resume', async () => {
    await agent.waitStatus((st) => endpointOf(st, 'up').probes_ok >= 1, '"up" probed once');
    for (let i = 0; i < 5; i++) {
      // The previous connection is gone (closed by the server, seen by the agent) first.
      await agent.waitFor(async () => ({ ok: up.openSockets() === 0, last: up.openSockets() }),
        'the upstream with no open connection', 10000);
      const r = await agent.post('/v1/chat/completions', { model: 'm1', messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(r.status, 200, r.body);
    }
    const conns = new Set(up.requests.map((q) => q.conn));
    assert.equal(conns.size, 5, `requests on ${conns.size} connections: ${summary(up)}`);
    assertResumes(up, 6);
  });
});
