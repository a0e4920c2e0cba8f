'use strict';
// Fleet telemetry over MQTT against Debian's mosquitto on 127.0.0.1, mosquitto_sub as the
// fleet operator's observer: a DOWN transition arrives within a second of edgeway logging
// it, the last will says "offline" when edgeway is SIGKILLed, a state change made while the
// broker is away arrives once it is back, and mqtts:// works with the test CA and refuses
// a broker whose certificate that CA did not sign; a broker that wants a login gets the
// password from a systemd credential, and refuses a wrong one without edgeway showing it.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { startAgent, FAST_PROBE, parseMetrics, metricValue, tmpDir } = require('./lib/agent');
const { startUpstream } = require('./lib/fake_upstream');
const { startBroker, subscribe, brokerAvailable, findBin } = require('./lib/mosquitto');
const { certs } = require('./lib/certs');

const SKIP = !brokerAvailable() && 'mosquitto / mosquitto_sub are not installed (scripts/install-deps.sh --test)';

function telemetryIni(url, device, more = '') {
  return `[telemetry]\nmqtt_url = ${url}\ndevice_id = ${device}\ninterval_ms = 60000\n${more}`;
}

async function agentFor(up, url, device, more) {
  return startAgent({
    ini: {
      probe: FAST_PROBE,
      endpoints: [{ name: 'primary', url: up.url }],
      extra: telemetryIni(url, device, more),
    },
  });
}

const isEndpoint = (device, m) => m.topic === `edgeway/${device}/endpoints/primary` && m.json;
const isStatus = (device, m) => m.topic === `edgeway/${device}/status` && m.json;

async function metrics(agent) {
  const r = await agent.get('/metrics');
  assert.equal(r.status, 200);
  return { text: r.body, m: parseMetrics(r.body) };
}

// One broker (startBroker options from brokerOptions(), called in before()) and one
// upstream for a describe block; the agents and observers its tests push are stopped after.
function brokerAndUpstream(brokerOptions) {
  const f = { broker: null, up: null, agents: [], subs: [] };
  before(async () => {
    f.broker = await startBroker(brokerOptions());
    f.up = await startUpstream({ name: 'primary' });
  });
  after(async () => {
    for (const s of f.subs) s.stop();
    for (const a of f.agents) await a.stop();
    if (f.up) await f.up.close();
    if (f.broker) await f.broker.stop();
  });
  return f;
}

describe('telemetry over MQTT (plain)', { skip: SKIP }, () => {
  const f = brokerAndUpstream(() => ({}));

  it('a DOWN transition reaches mosquitto_sub within one second of edgeway logging it', async (t) => {
    const device = 'kiosk-down';
    const sub = await subscribe(f.broker.port, `edgeway/${device}/#`);
    f.subs.push(sub);
    f.up.set({ mode: 'ok' });
    const agent = await agentFor(f.up, `mqtt://127.0.0.1:${f.broker.port}`, device);
    f.agents.push(agent);
    const healthy = await sub.waitFor((m) => isEndpoint(device, m) && m.json.state === 'HEALTHY', 'primary HEALTHY');
    assert.equal(healthy.json.device, device);
    const online = await sub.waitFor((m) => isStatus(device, m) && m.json.online === true, 'status online');
    assert.equal(online.json.verdict, 'serving');
    assert.equal(online.json.via, 'primary');

    f.up.set({ mode: 'status', status: 500 });
    const logged = await agent.waitStderr(/^(\S+) warn endpoint=primary state (\S+) -> DOWN/m, 'the DOWN line', 20000);
    const loggedAt = Date.parse(logged[1]);
    assert.ok(Number.isFinite(loggedAt), `log time ${logged[1]}`);
    const down = await sub.waitFor((m) => isEndpoint(device, m) && m.json.state === 'DOWN' && m.json.change &&
      m.json.change.to === 'DOWN', 'the DOWN document', 10000);
    assert.equal(down.json.change.from, logged[2]);
    assert.ok(down.json.why.length > 0, JSON.stringify(down.json));
    const lag = down.at - loggedAt;
    t.diagnostic(`DOWN arrived at mosquitto_sub ${lag} ms after edgeway logged it`);
    assert.ok(lag < 1000, `DOWN arrived ${lag} ms after edgeway logged it`);
    // The status document follows with the status page's verdict.
    await sub.waitFor((m) => isStatus(device, m) && m.json.verdict === 'not_serving' &&
      m.json.why === 'every endpoint is DOWN', 'status not_serving');

    const { text, m } = await metrics(agent);
    assert.equal(metricValue(m, 'edgeway_telemetry_connected', {}), 1, text);
    assert.ok(metricValue(m, 'edgeway_telemetry_published_total', {}) >= 3, text);
    assert.equal(metricValue(m, 'edgeway_telemetry_dropped_total', {}), 0, text);
    const promtool = findBin('promtool');
    if (promtool) {
      const r = spawnSync(promtool, ['check', 'metrics'], { input: text });
      assert.equal(`${r.stdout}${r.stderr}`.trim(), '', 'promtool check metrics');
    }
  });

  it('the last will says offline after SIGKILL of edgeway', async () => {
    const device = 'kiosk-killed';
    const sub = await subscribe(f.broker.port, `edgeway/${device}/status`);
    f.subs.push(sub);
    f.up.set({ mode: 'ok' });
    const agent = await agentFor(f.up, `mqtt://127.0.0.1:${f.broker.port}`, device);
    f.agents.push(agent);
    await sub.waitFor((m) => isStatus(device, m) && m.json.online === true, 'status online');
    const killedAt = Date.now();
    agent.proc.kill('SIGKILL');
    await agent.exited;
    const will = await sub.waitFor((m) => isStatus(device, m) && m.json.online === false, 'the offline will', 15000);
    assert.deepEqual(will.json, { device, online: false, verdict: 'offline' });
    assert.ok(will.at >= killedAt);
    // Retained: an observer that comes later sees it too.
    const late = await subscribe(f.broker.port, `edgeway/${device}/status`);
    f.subs.push(late);
    await late.waitFor((m) => isStatus(device, m) && m.json.online === false, 'the retained offline will');
  });

  it('a state change while the broker is away arrives after it restarts', async () => {
    const device = 'kiosk-restart';
    const first = await subscribe(f.broker.port, `edgeway/${device}/#`);
    f.subs.push(first);
    f.up.set({ mode: 'ok' });
    const agent = await agentFor(f.up, `mqtt://127.0.0.1:${f.broker.port}`, device);
    f.agents.push(agent);
    await first.waitFor((m) => isEndpoint(device, m) && m.json.state === 'HEALTHY', 'primary HEALTHY');
    first.stop();

    await f.broker.kill();
    await agent.waitStderr(/telemetry: lost the broker/, 'edgeway noticing the broker is gone', 20000);
    f.up.set({ mode: 'status', status: 500 });
    await agent.waitStderr(/warn endpoint=primary state \S+ -> DOWN/, 'DOWN while the broker is away', 20000);
    // Wait until edgeway's back-off has grown to seconds, so the observer below is subscribed
    // before edgeway's next attempt: it then sees the queued change itself, not only the
    // retained state that edgeway publishes again after every reconnect.
    // (After the second failed attempt the back-off is 4 s +-25 %.)
    await agent.waitFor(async () => {
      const { m } = await metrics(agent);
      return { ok: metricValue(m, 'edgeway_telemetry_connect_failures_total', {}) >= 2 };
    }, 'two failed attempts to reconnect', 30000);
    const { m: before } = await metrics(agent);
    assert.equal(metricValue(before, 'edgeway_telemetry_connected', {}), 0);
    assert.ok(metricValue(before, 'edgeway_telemetry_queued_messages', {}) >= 1);

    await f.broker.restart();
    const second = await subscribe(f.broker.port, `edgeway/${device}/#`);
    f.subs.push(second);
    const change = await second.waitFor((m) => isEndpoint(device, m) && m.json.change && m.json.change.to === 'DOWN',
      'the queued DOWN change after the restart', 45000);
    assert.equal(change.json.state === 'DOWN' || change.json.change.to === 'DOWN', true);
    // What any later observer sees: the retained documents, published again after the reconnect.
    const status = await second.waitFor((m) => isStatus(device, m) && m.json.online === true, 'status online again');
    assert.equal(status.json.verdict, 'not_serving');
    const late = await subscribe(f.broker.port, `edgeway/${device}/endpoints/primary`);
    f.subs.push(late);
    const retained = await late.waitFor((m) => isEndpoint(device, m), 'the retained endpoint document');
    assert.equal(retained.json.state, 'DOWN');
    assert.ok(retained.json.transitions >= 1);
    const { text, m } = await metrics(agent);
    assert.ok(metricValue(m, 'edgeway_telemetry_connects_total', {}) >= 2, text);
    assert.ok(metricValue(m, 'edgeway_telemetry_connect_failures_total', {}) >= 2, text);
  });
});

describe('telemetry over MQTT with TLS (mqtts://)', { skip: SKIP }, () => {
  let c;
  const f = brokerAndUpstream(() => {
    c = certs();
    return { tls: { cert: c.server.cert, key: c.server.key } };
  });

  it('publishes over TLS to a broker whose certificate the test CA signed', async () => {
    const device = 'kiosk-tls';
    const sub = await subscribe(f.broker.port, `edgeway/${device}/#`);
    f.subs.push(sub);
    const agent = await agentFor(f.up, `mqtts://localhost:${f.broker.tlsPort}`, device, `ca_file = ${c.ca.cert}\n`);
    f.agents.push(agent);
    await agent.waitStderr(/telemetry: connected to localhost:\d+ \(TLS\) as kiosk-tls/, 'the TLS session', 20000);
    const s = await sub.waitFor((m) => isStatus(device, m) && m.json.online === true, 'status online over TLS');
    assert.equal(s.json.device, device);
    await sub.waitFor((m) => isEndpoint(device, m) && m.json.state === 'HEALTHY', 'primary HEALTHY over TLS');
  });

  it('refuses a broker whose certificate another CA signed: no session, logged', async () => {
    const device = 'kiosk-wrong-ca';
    const sub = await subscribe(f.broker.port, `edgeway/${device}/#`);
    f.subs.push(sub);
    const agent = await agentFor(f.up, `mqtts://localhost:${f.broker.tlsPort}`, device, `ca_file = ${c.otherCa.cert}\n`);
    f.agents.push(agent);
    const line = await agent.waitStderr(/warn telemetry: cannot connect to localhost:\d+: ([^\n]*)/, 'the refusal', 20000);
    assert.match(line[1], /certificate|verif|x509|CA/i, line[0]);
    // A second attempt fails the same way (logged once, then quietly), still no session.
    await agent.waitFor(async () => {
      const { m } = await metrics(agent);
      return { ok: metricValue(m, 'edgeway_telemetry_connect_failures_total', {}) >= 2 };
    }, 'two failed attempts', 20000);
    const { text, m } = await metrics(agent);
    assert.equal(metricValue(m, 'edgeway_telemetry_connected', {}), 0, text);
    assert.equal(metricValue(m, 'edgeway_telemetry_connects_total', {}), 0, text);
    assert.deepEqual(sub.messages.filter((x) => x.topic.startsWith(`edgeway/${device}/`)), []);
    assert.doesNotMatch(f.broker.log, new RegExp(`as ${device}`));
    assert.doesNotMatch(agent.stderr, /telemetry: connected/);
  });
});

describe('telemetry over MQTT to a broker that wants a login', { skip: SKIP }, () => {
  const PASSWORD = 'mqtt-SECRET-4711';
  const observer = { user: 'observer', password: 'observer-pass' };
  const f = brokerAndUpstream(() => ({ users: { 'kiosk-login': PASSWORD, [observer.user]: observer.password } }));

  // What systemd's LoadCredential=edgeway.mqtt leaves: $CREDENTIALS_DIRECTORY/edgeway.mqtt, 0400.
  function credentials(password) {
    const dir = tmpDir('edgeway-cred-');
    fs.writeFileSync(path.join(dir, 'edgeway.mqtt'), `${password}\n`, { mode: 0o400 });
    return dir;
  }

  async function agentWithLogin(device, password) {
    const agent = await startAgent({
      ini: {
        probe: FAST_PROBE,
        endpoints: [{ name: 'primary', url: f.up.url }],
        extra: telemetryIni(`mqtt://127.0.0.1:${f.broker.port}`, device,
          `username = kiosk-login\npassword_credential = edgeway.mqtt\n`),
      },
      env: { CREDENTIALS_DIRECTORY: credentials(password) },
    });
    f.agents.push(agent);
    return agent;
  }

  it('logs in with the password from the credential and publishes', async () => {
    const device = 'kiosk-login-ok';
    const sub = await subscribe(f.broker.port, `edgeway/${device}/#`, observer);
    f.subs.push(sub);
    const agent = await agentWithLogin(device, PASSWORD);
    await agent.waitStderr(new RegExp(`telemetry: connected to 127\\.0\\.0\\.1:\\d+ as ${device}`), 'the session', 20000);
    const s = await sub.waitFor((m) => isStatus(device, m) && m.json.online === true, 'status online');
    assert.equal(s.json.device, device);
    assert.doesNotMatch(agent.stderr, /SECRET/);
  });

  it('a wrong password: the broker refuses, edgeway says why and never shows the password', async () => {
    const device = 'kiosk-login-bad';
    const agent = await agentWithLogin(device, 'wrong-SECRET-password');
    const line = await agent.waitStderr(/warn telemetry: cannot connect to 127\.0\.0\.1:\d+: ([^\n]*)/, 'the refusal', 20000);
    assert.match(line[1], /refused the session: (bad user name or password|not authorized)/, line[0]);
    const r = await agent.get('/metrics');
    assert.equal(metricValue(parseMetrics(r.body), 'edgeway_telemetry_connects_total', {}), 0, r.body);
    assert.doesNotMatch(agent.stderr, /SECRET/);
    const st = await agent.get('/status');
    assert.doesNotMatch(st.body, /SECRET/);
  });
});
