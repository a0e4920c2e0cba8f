'use strict';
// Name resolution that never blocks and never gives up, against the tests' own DNS server
// on 127.0.0.1 ([agent] dns_servers points the agent at it):
//   - a name unresolvable at start is shown as such, is not "down", and requests fail over;
//     once the server answers, the endpoint becomes HEALTHY without SIGHUP within seconds
//   - a changed A record is followed by new connections within its TTL
//   - every A record is kept: a refused address moves connections to the next one
//   - a silent DNS server: the cached addresses keep serving
const { describe, it, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { startAgent, endpointOf, FAST_PROBE, parseMetrics, metricValue, runCliAsync, tmpDir } = require('./lib/agent');
const { startUpstream } = require('./lib/fake_upstream');
const { startDnsServer } = require('./lib/dns_server');
const { chatBody, send, chatReqs } = require('./lib/proxy_client');
const fs = require('node:fs');
const path = require('node:path');

const cleanups = [];
afterEach(async () => {
  while (cleanups.length) {
    try { await cleanups.pop()(); } catch (_) { /* best effort */ }
  }
});

async function dnsServer() {
  const dns = await startDnsServer();
  cleanups.push(() => dns.close());
  return dns;
}
async function upstream(opts) {
  const up = await startUpstream(opts);
  cleanups.push(() => up.close());
  return up;
}
async function agentWith(ini) {
  const agent = await startAgent({ ini });
  cleanups.push(() => agent.stop());
  return agent;
}
async function metrics(agent) {
  const r = await agent.get('/metrics');
  assert.equal(r.status, 200, r.body);
  return parseMetrics(r.body);
}

// Two fake upstreams on one port, on 127.0.0.2 and 127.0.0.3: the DNS answer alone decides
// which one a connection reaches.
async function twoOnOnePort() {
  for (let tries = 0; tries < 10; tries++) {
    const a = await upstream({ name: 'a', host: '127.0.0.2' });
    try {
      const b = await upstream({ name: 'b', host: '127.0.0.3', port: a.port });
      return { a, b };
    } catch (_) {
      await a.close();  // the port was taken on 127.0.0.3: another one
    }
  }
  throw new Error('no port free on both 127.0.0.2 and 127.0.0.3');
}

describe('dns', () => {
  it('unresolvable at start: shown as such, not down, requests fail over; answering -> HEALTHY without SIGHUP', async () => {
    const dns = await dnsServer();
    const name = 'late.edgeway.test';
    const primary = await upstream({ name: 'primary' });
    const backup = await upstream({ name: 'backup' });
    const agent = await agentWith({
      agent: { dns_servers: dns.server, dns_min_ttl_ms: 1000 },
      probe: FAST_PROBE,
      endpoints: [
        { name: 'primary', url: `http://${name}:${primary.port}/v1`, priority: 10 },
        { name: 'backup', url: backup.url, priority: 5 },
      ],
    });
    const s = await agent.waitStatus((st) => endpointOf(st, 'primary').dns.failures >= 1 &&
      endpointOf(st, 'backup').probes_ok >= 1, 'a failed lookup of primary, a probed backup');
    const p = endpointOf(s, 'primary');
    assert.equal(p.state, 'UNRESOLVED', JSON.stringify(p));
    assert.equal(p.dns.state, 'unresolved', JSON.stringify(p));
    assert.equal(p.dns.error, `dns: NXDOMAIN for ${name}`, JSON.stringify(p));
    assert.equal(p.last_error, `dns: NXDOMAIN for ${name}`, JSON.stringify(p));
    assert.equal(p.dns.address, null, JSON.stringify(p));
    // Not a failure of the upstream: no failed probe, no ejection.
    assert.equal(p.probes_failed, 0, JSON.stringify(p));
    assert.equal(p.consecutive_failures, 0, JSON.stringify(p));
    assert.equal(p.ejections, 0, JSON.stringify(p));
    assert.equal(endpointOf(s, 'backup').dns.state, 'numeric');

    const m = await metrics(agent);
    assert.equal(metricValue(m, 'edgeway_endpoint_dns_unresolved', { endpoint: 'primary', reason: `dns: NXDOMAIN for ${name}` }), 1);
    assert.equal(metricValue(m, 'edgeway_endpoint_dns_resolved', { endpoint: 'primary' }), 0);
    assert.equal(metricValue(m, 'edgeway_endpoint_dns_resolved', { endpoint: 'backup' }), 1);
    assert.equal(metricValue(m, 'edgeway_endpoint_state', { endpoint: 'primary', state: 'UNRESOLVED' }), 1);
    assert.equal(metricValue(m, 'edgeway_endpoint_state', { endpoint: 'primary', state: 'DOWN' }), 0);
    assert.equal(metricValue(m, 'edgeway_endpoint_up', { endpoint: 'primary' }), 0);
    assert.ok(metricValue(m, 'edgeway_dns_failures_total', { endpoint: 'primary' }) >= 1);

    // Requests go to the resolvable endpoint at once: the primary is not even attempted.
    const r = await send(agent, chatBody());
    assert.equal(r.status, 200, r.body);
    assert.equal(r.endpoint, 'backup');
    assert.equal(r.attempts, 1);
    const m2 = await metrics(agent);
    const failovers = m2.filter((x) => x.name === 'edgeway_failovers_total').reduce((n, x) => n + x.value, 0);
    assert.equal(failovers, 0, 'an unresolved name is no failover');
    assert.equal(chatReqs(primary).length, 0);

    // The server starts answering: HEALTHY without a signal.
    dns.set(name, { a: ['127.0.0.1'], ttl: 1 });
    const t0 = Date.now();
    const s2 = await agent.waitStatus((st) => endpointOf(st, 'primary').state === 'HEALTHY' &&
      endpointOf(st, 'primary').probes_ok >= 1, 'primary HEALTHY after the name resolves', 20000);
    const took = Date.now() - t0;
    const p2 = endpointOf(s2, 'primary');
    assert.ok(took < 10000, `HEALTHY ${took} ms after the DNS server answered`);
    assert.match(p2.dns.state, /^(resolved|refreshing)$/);
    assert.equal(p2.dns.address, `127.0.0.1:${primary.port}`);
    assert.equal(p2.probes_failed, 0, JSON.stringify(p2));
    const r2 = await send(agent, chatBody());
    assert.equal(r2.status, 200, r2.body);
    assert.equal(r2.endpoint, 'primary');
    assert.doesNotMatch(agent.stderr, /reload/);
    console.log(`# resolved and HEALTHY ${took} ms after the DNS server started answering`);
  });

  it('a changed A record: new connections go to the new address within its TTL', async () => {
    const dns = await dnsServer();
    const { a, b } = await twoOnOnePort();
    const name = 'moving.edgeway.test';
    const ttl = 2;
    dns.set(name, { a: ['127.0.0.2'], ttl });
    const agent = await agentWith({
      agent: { dns_servers: dns.server, dns_min_ttl_ms: 1000 },
      probe: { interval_ms: 60000, down_interval_ms: 60000, timeout_ms: 2000, fall: 3, rise: 2 },
      endpoints: [{ name: 'api', url: `http://${name}:${a.port}/v1` }],
    });
    await agent.waitStatus((st) => endpointOf(st, 'api').probes_ok >= 1, 'api probed');
    const first = await send(agent, chatBody());
    assert.equal(first.status, 200, first.body);
    assert.equal(chatReqs(a).length, 1);
    assert.equal(chatReqs(b).length, 0);

    dns.set(name, { a: ['127.0.0.3'], ttl });
    const t0 = Date.now();
    let moved = -1;
    for (let i = 0; i < 200 && Date.now() - t0 < 15000; i++) {
      const r = await send(agent, chatBody());
      assert.equal(r.status, 200, r.body);
      if (chatReqs(b).length > 0) {
        moved = Date.now() - t0;
        break;
      }
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.ok(moved >= 0, 'requests never reached the new address');
    // The cached answer was at most `ttl` old when the record changed; allow for a loaded machine.
    assert.ok(moved <= ttl * 1000 + 2000, `new address used ${moved} ms after the change (TTL ${ttl} s)`);
    const before = chatReqs(a).length;
    for (let i = 0; i < 5; i++) {
      const r = await send(agent, chatBody());
      assert.equal(r.status, 200, r.body);
    }
    assert.equal(chatReqs(a).length, before, 'no request went to the old address after the switch');
    const s = await agent.status();
    assert.equal(endpointOf(s, 'api').dns.address, `127.0.0.3:${a.port}`);
    assert.ok(endpointOf(s, 'api').dns.changes >= 1);
    console.log(`# new connections on the new address ${moved} ms after the record changed (TTL ${ttl} s)`);
  });

  it('every A record is kept: a refused address moves connections to the next one', async () => {
    const dns = await dnsServer();
    const { a, b } = await twoOnOnePort();
    await a.close();  // 127.0.0.2:PORT now refuses connections
    const name = 'two.edgeway.test';
    dns.set(name, { a: ['127.0.0.2', '127.0.0.3'], ttl: 300 });
    const agent = await agentWith({
      agent: { dns_servers: dns.server, dns_min_ttl_ms: 1000 },
      probe: FAST_PROBE,
      endpoints: [{ name: 'api', url: `http://${name}:${b.port}/v1` }],
    });
    const s = await agent.waitStatus((st) => endpointOf(st, 'api').dns.address === `127.0.0.3:${b.port}` &&
      endpointOf(st, 'api').probes_ok >= 1, 'connections moved to the second address');
    assert.equal(endpointOf(s, 'api').dns.addresses, 2);
    const r = await send(agent, chatBody());
    assert.equal(r.status, 200, r.body);
    assert.equal(r.endpoint, 'api');
    assert.equal(chatReqs(b).length, 1);
  });

  it('a silent DNS server: the cached addresses keep serving', async () => {
    const dns = await dnsServer();
    const up = await upstream({ name: 'api' });
    const name = 'steady.edgeway.test';
    dns.set(name, { a: ['127.0.0.1'], ttl: 1 });
    const agent = await agentWith({
      agent: { dns_servers: dns.server, dns_min_ttl_ms: 1000 },
      probe: FAST_PROBE,
      endpoints: [{ name: 'api', url: `http://${name}:${up.port}/v1` }],
    });
    await agent.waitStatus((st) => endpointOf(st, 'api').state === 'HEALTHY' && endpointOf(st, 'api').probes_ok >= 1,
      'api HEALTHY');
    dns.silent = true;
    const asked = dns.queriesFor(name).length;
    // Refreshes go unanswered until the resolver gives up on one (two tries, a few seconds).
    const s = await agent.waitStatus((st) => endpointOf(st, 'api').dns.error.includes('timeout'),
      'a refresh that timed out', 30000);
    assert.ok(dns.queriesFor(name).length > asked, 'the agent kept asking');
    const e = endpointOf(s, 'api');
    assert.match(e.dns.state, /^(resolved|refreshing)$/, JSON.stringify(e));
    assert.equal(e.dns.address, `127.0.0.1:${up.port}`);
    assert.equal(e.state, 'HEALTHY', JSON.stringify(e));
    for (let i = 0; i < 3; i++) {
      const r = await send(agent, chatBody());
      assert.equal(r.status, 200, r.body);
      assert.equal(r.endpoint, 'api');
    }
    const m = await metrics(agent);
    assert.equal(metricValue(m, 'edgeway_endpoint_dns_resolved', { endpoint: 'api' }), 1);
    assert.equal(metricValue(m, 'edgeway_endpoint_up', { endpoint: 'api' }), 1);
    assert.ok(metricValue(m, 'edgeway_dns_heap_peak_bytes') > 0);
    // The server comes back: the error clears.
    dns.silent = false;
    await agent.waitStatus((st) => endpointOf(st, 'api').dns.error === '', 'the refresh error cleared', 30000);
  });

  it('--probe-once names an unresolvable endpoint and why', async () => {
    const dns = await dnsServer();
    const up = await upstream({ name: 'ok' });
    const dir = tmpDir('edgeway-dns-');
    const ini = path.join(dir, 'edgeway.ini');
    fs.writeFileSync(ini, [
      '[agent]', `dns_servers = ${dns.server}`, '', '[probe]', 'timeout_ms = 2000', '',
      '[endpoint.gone]', `url = http://gone.edgeway.test:${up.port}/v1`, 'api_key_env = EW_TEST_KEY', 'models = m', '',
      '[endpoint.ok]', `url = ${up.url}`, 'api_key_env = EW_TEST_KEY', 'models = m', '',
    ].join('\n'));
    const r = await runCliAsync(['-c', ini, '--probe-once']);  // async: this process's DNS server must answer
    assert.equal(r.code, 1, r.stdout + r.stderr);  // some endpoints healthy (not all): exit 1
    const gone = r.stdout.split('\n').find((l) => l.startsWith('gone'));
    assert.ok(gone, r.stdout);
    assert.match(gone, /unresolved/);
    assert.match(gone, /dns: NXDOMAIN for gone\.edgeway\.test/);
  });
});
