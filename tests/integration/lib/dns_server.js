'use strict';
// A small authoritative DNS server of the tests' own, UDP on 127.0.0.1 and an ephemeral
// port, answering A and AAAA questions from a table the test changes at run time.
//
//   const dns = await startDnsServer();
//   dns.port, dns.server         the port, and '127.0.0.1:PORT' (an [agent] dns_servers value)
//   dns.set(name, { a: ['127.0.0.1'], aaaa: ['::1'], ttl: 1 })
//                                the name's records (ttl in seconds, default 1); a name with
//                                no entry is NXDOMAIN
//   dns.set(name, { rcode: 'nxdomain' | 'servfail' | 'refused' })   that answer instead
//   dns.set(name, { silent: true })                                  no answer at all
//   dns.remove(name)             back to NXDOMAIN
//   dns.silent = true            ignore every question (a server gone away), until false
//   dns.queries                  [{ name, type ('A', 'AAAA', or the number), at, answered }]
//   dns.queriesFor(name)         those of one name
//   dns.waitForQueries(name, n, timeoutMs)  resolves when that name was asked n times
//   await dns.close()            idempotent
//
// Names compare case-insensitively, without a trailing dot. Everything after the question
// (e.g. an EDNS OPT record) is ignored; answers carry the question as it was sent.
const dgram = require('node:dgram');
const net = require('node:net');

const TYPES = { 1: 'A', 28: 'AAAA' };
const RCODES = { noerror: 0, servfail: 2, nxdomain: 3, refused: 5 };

function canon(name) {
  return String(name).toLowerCase().replace(/\.$/, '');
}

// The question at offset 12: { name, type, end } or null when malformed.
function parseQuestion(msg) {
  if (msg.length < 12 + 5) return null;
  let off = 12;
  const labels = [];
  for (let guard = 0; guard < 128; guard++) {
    if (off >= msg.length) return null;
    const len = msg[off];
    if (len === 0) {
      off += 1;
      break;
    }
    if (len > 63 || off + 1 + len > msg.length) return null;  // no compression in questions
    labels.push(msg.toString('latin1', off + 1, off + 1 + len));
    off += 1 + len;
  }
  if (off + 4 > msg.length) return null;
  return { name: canon(labels.join('.')), type: msg.readUInt16BE(off), end: off + 4 };
}

function ipv6Bytes(text) {
  // Node's SocketAddress parsing is not available everywhere: expand '::' by hand.
  const [head, tail] = text.includes('::') ? text.split('::') : [text, null];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === null ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function answerRecord(type, ttl, rdata) {
  const rr = Buffer.alloc(12 + rdata.length);
  rr.writeUInt16BE(0xc00c, 0);  // the name: a pointer to the question's
  rr.writeUInt16BE(type, 2);
  rr.writeUInt16BE(1, 4);       // class IN
  rr.writeUInt32BE(ttl >>> 0, 6);
  rr.writeUInt16BE(rdata.length, 10);
  rdata.copy(rr, 12);
  return rr;
}

function reply(query, q, rcode, records) {
  const head = Buffer.alloc(12);
  query.copy(head, 0, 0, 2);                      // id
  const rd = query[2] & 0x01;
  const opcode = query[2] & 0x78;
  head[2] = 0x80 | opcode | 0x04 | rd;            // QR, opcode, AA, RD
  head[3] = 0x80 | (rcode & 0x0f);                // RA, RCODE
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(records.length, 6);
  return Buffer.concat([head, query.subarray(12, q.end), ...records]);
}

async function startDnsServer() {
  const sock = dgram.createSocket('udp4');
  const table = new Map();
  const state = { silent: false, closed: false };
  const queries = [];
  const waiters = [];

  function notify() {
    for (const w of [...waiters]) {
      if (queries.filter((x) => x.name === w.name).length >= w.n) {
        clearTimeout(w.timer);
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  }

  sock.on('message', (msg, rinfo) => {
    const q = parseQuestion(msg);
    if (!q || (msg[2] & 0x80)) return;  // not a question
    const entry = table.get(q.name);
    const rec = { name: q.name, type: TYPES[q.type] || q.type, at: Date.now(), answered: false };
    queries.push(rec);
    notify();
    if (state.silent || (entry && entry.silent)) return;
    let rcode = RCODES.nxdomain;
    const records = [];
    if (entry) {
      rcode = RCODES[entry.rcode || 'noerror'];
      if (rcode === 0) {
        const ttl = entry.ttl === undefined ? 1 : entry.ttl;
        if (q.type === 1) for (const a of entry.a || []) records.push(answerRecord(1, ttl, Buffer.from(a.split('.').map(Number))));
        if (q.type === 28) for (const a of entry.aaaa || []) records.push(answerRecord(28, ttl, ipv6Bytes(a)));
      }
    }
    rec.answered = true;
    sock.send(reply(msg, q, rcode, records), rinfo.port, rinfo.address);
  });

  await new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(0, '127.0.0.1', () => {
      sock.off('error', reject);
      resolve();
    });
  });
  const port = sock.address().port;

  return {
    port,
    server: `127.0.0.1:${port}`,
    queries,
    get silent() {
      return state.silent;
    },
    set silent(v) {
      state.silent = !!v;
    },
    set(name, entry) {
      for (const a of (entry && entry.a) || []) if (!net.isIPv4(a)) throw new Error(`not IPv4: ${a}`);
      for (const a of (entry && entry.aaaa) || []) if (!net.isIPv6(a)) throw new Error(`not IPv6: ${a}`);
      table.set(canon(name), { ...entry });
    },
    remove(name) {
      table.delete(canon(name));
    },
    queriesFor(name) {
      return queries.filter((x) => x.name === canon(name));
    },
    waitForQueries(name, n, timeoutMs = 10000) {
      const w = { name: canon(name), n };
      const p = new Promise((resolve, reject) => {
        w.resolve = resolve;
        w.timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`dns: ${n} queries for ${name} not seen in ${timeoutMs} ms (saw ${queries.filter((x) => x.name === w.name).length})`));
        }, timeoutMs);
      });
      waiters.push(w);
      notify();
      return p;
    },
    async close() {
      if (state.closed) return;
      state.closed = true;
      for (const w of waiters.splice(0)) clearTimeout(w.timer);
      await new Promise((resolve) => sock.close(resolve));
    },
  };
}

module.exports = { startDnsServer };

// As a program (for the C++ net tests): `node dns_server.js` prints "port N", then takes one
// JSON command per line on stdin and answers "ok" (or "error ...") per line:
//   {"set": NAME, "entry": {...}}   {"remove": NAME}   {"silent": true|false}
//   {"count": NAME}  -> "ok N" (queries seen for NAME)
// It exits when stdin closes.
if (require.main === module) {
  startDnsServer().then((dns) => {
    process.stdout.write(`port ${dns.port}\n`);
    let buf = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.trim()) continue;
        try {
          const c = JSON.parse(line);
          if (c.set !== undefined) dns.set(c.set, c.entry || {});
          if (c.remove !== undefined) dns.remove(c.remove);
          if (c.silent !== undefined) dns.silent = c.silent;
          const extra = c.count !== undefined ? ` ${dns.queriesFor(c.count).length}` : '';
          process.stdout.write(`ok${extra}\n`);
        } catch (e) {
          process.stdout.write(`error ${e.message}\n`);
        }
      }
    });
    process.stdin.on('end', () => dns.close().then(() => process.exit(0)));
  });
}
