'use strict';
// Raw HTTP/1.1 on a net.Socket, for the tests that must see framing: which responses came
// on a connection, where each ends, whether a chunked body was terminated (`0\r\n\r\n`)
// or cut, and header lines exactly as sent.
//
//   const c = await rawConnect(port)
//   c.write(bytes)                  bytes as given (a string is sent as latin1)
//   c.data()                        everything received so far (Buffer)
//   c.closed, c.closedAt            the peer closed (or the socket failed)
//   c.responses()                   parseResponses(c.data(), { closed: c.closed }).responses
//   await c.waitFor(pred, what, timeoutMs)  pred(c) true -> resolves; fails with what was received
//   await c.waitResponses(n, timeoutMs)     n complete responses (or the peer closed)
//   await c.waitClosed(timeoutMs)
//   c.pause() / c.resume()          stop / restart reading (the kernel buffers fill up)
//   c.destroy()
//
//   parseResponses(buf, { closed }) -> { responses, rest }
//     each response: { status, reason, headers: [[name, value]], header(name) -> value | undefined,
//       headerLines: [raw lines], head (string), body (Buffer), framing: 'chunked'|'length'|'none'|'eof',
//       complete (bool), terminated (chunked: the 0-size chunk and its CRLF arrived), truncated (bool) }
//     1xx, 204 and 304 have no body whatever their headers say.
//   requestBytes({ method, path, headers, body })  one request, Content-Length set for a body
const net = require('node:net');

function findHeadEnd(buf, from) {
  return buf.indexOf('\r\n\r\n', from, 'latin1');
}

function parseHead(text) {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0]);
  if (!m) return null;
  const headers = [];
  const headerLines = lines.slice(1);
  for (const l of headerLines) {
    const i = l.indexOf(':');
    if (i <= 0) { headers.push([l, '']); continue; }
    headers.push([l.slice(0, i), l.slice(i + 1).trim()]);
  }
  return { status: Number(m[1]), reason: m[2] || '', headers, headerLines };
}

// Chunked body from `off`; -> { body, end (offset after the body), terminated }.
function parseChunked(buf, off) {
  const parts = [];
  let p = off;
  for (;;) {
    const eol = buf.indexOf('\r\n', p, 'latin1');
    if (eol < 0) return { body: Buffer.concat(parts), end: buf.length, terminated: false };
    const sizeText = buf.slice(p, eol).toString('latin1').split(';')[0].trim();
    if (!/^[0-9a-fA-F]+$/.test(sizeText)) return { body: Buffer.concat(parts), end: buf.length, terminated: false, bad: `chunk size ${JSON.stringify(sizeText)}` };
    const size = parseInt(sizeText, 16);
    if (size === 0) {
      // trailers, then CRLF
      const end = findHeadEnd(buf, eol);
      if (end === eol) return { body: Buffer.concat(parts), end: eol + 4, terminated: true };
      if (end < 0) {
        if (buf.length >= eol + 4 && buf.slice(eol, eol + 4).toString('latin1') === '\r\n\r\n') return { body: Buffer.concat(parts), end: eol + 4, terminated: true };
        return { body: Buffer.concat(parts), end: buf.length, terminated: false };
      }
      return { body: Buffer.concat(parts), end: end + 4, terminated: true };
    }
    const start = eol + 2;
    if (buf.length < start + size) {
      parts.push(buf.slice(start));
      return { body: Buffer.concat(parts), end: buf.length, terminated: false };
    }
    parts.push(buf.slice(start, start + size));
    if (buf.length < start + size + 2) return { body: Buffer.concat(parts), end: buf.length, terminated: false };
    if (buf.slice(start + size, start + size + 2).toString('latin1') !== '\r\n') {
      return { body: Buffer.concat(parts), end: buf.length, terminated: false, bad: 'chunk data not followed by CRLF' };
    }
    p = start + size + 2;
  }
}

function parseResponses(buf, { closed = false } = {}) {
  const responses = [];
  let off = 0;
  while (off < buf.length) {
    const he = findHeadEnd(buf, off);
    if (he < 0) break;
    const headText = buf.slice(off, he).toString('latin1');
    const h = parseHead(headText);
    if (!h) {
      responses.push({ status: NaN, reason: '', headers: [], headerLines: [], head: headText, body: buf.slice(he + 4), framing: 'garbage', complete: false, terminated: false, truncated: true, header: () => undefined });
      off = buf.length;
      break;
    }
    const r = Object.assign(h, { head: headText });
    r.header = (name) => {
      const f = r.headers.find(([k]) => k.toLowerCase() === name.toLowerCase());
      return f ? f[1] : undefined;
    };
    const bodyStart = he + 4;
    const te = (r.header('transfer-encoding') || '').toLowerCase();
    const cl = r.header('content-length');
    if ((r.status >= 100 && r.status < 200) || r.status === 204 || r.status === 304) {
      Object.assign(r, { body: Buffer.alloc(0), framing: 'none', complete: true, terminated: false, truncated: false });
      off = bodyStart;
    } else if (te.includes('chunked')) {
      const c = parseChunked(buf, bodyStart);
      Object.assign(r, { body: c.body, framing: 'chunked', complete: c.terminated, terminated: c.terminated, truncated: !c.terminated && closed, bad: c.bad });
      off = c.end;
    } else if (cl !== undefined) {
      const n = Number(cl);
      const have = Math.min(n, buf.length - bodyStart);
      Object.assign(r, { body: buf.slice(bodyStart, bodyStart + have), framing: 'length', complete: have === n, terminated: false, truncated: have < n && closed });
      off = bodyStart + have;
    } else {
      Object.assign(r, { body: buf.slice(bodyStart), framing: 'eof', complete: closed, terminated: false, truncated: false });
      off = buf.length;
    }
    responses.push(r);
    if (!r.complete) break;
  }
  return { responses, rest: buf.slice(off) };
}

function rawConnect(port, { host = '127.0.0.1', timeoutMs = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host });
    const chunks = [];
    let total = 0;
    let cached = null;
    const c = {
      sock, closed: false, closedAt: undefined, error: undefined, bytes: 0,
      write: (bytes) => sock.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes),
      data: () => {
        if (!cached || cached.length !== total) cached = Buffer.concat(chunks, total);
        return cached;
      },
      text: () => c.data().toString('latin1'),
      responses: () => parseResponses(c.data(), { closed: c.closed }).responses,
      pause: () => sock.pause(),
      resume: () => sock.resume(),
      destroy: () => sock.destroy(),
    };
    c.waitFor = (pred, what, ms = 15000) => new Promise((res, rej) => {
      const deadline = Date.now() + ms;
      const tick = () => {
        let ok = false;
        try { ok = !!pred(c); } catch (_) { ok = false; }
        if (ok) return res(c);
        if (Date.now() > deadline) {
          const t = c.text();
          return rej(new Error(`raw connection: timed out after ${ms} ms waiting for ${what}; closed=${c.closed}; ` +
            `${t.length} bytes received: ${JSON.stringify(t.length > 3000 ? `${t.slice(0, 1500)} ... ${t.slice(-1500)}` : t)}`));
        }
        setTimeout(tick, 20);
      };
      tick();
    });
    c.waitResponses = (n, ms) => c.waitFor(() => c.closed || c.responses().filter((r) => r.complete).length >= n, `${n} complete responses`, ms);
    c.waitClosed = (ms) => c.waitFor(() => c.closed, 'the peer to close the connection', ms);
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`connect to ${host}:${port}: timeout`)); }, timeoutMs);
    sock.on('data', (d) => { chunks.push(d); total += d.length; c.bytes = total; });
    sock.on('close', () => { c.closed = true; c.closedAt = Date.now(); });
    sock.on('error', (e) => { c.error = e.message; });
    sock.once('connect', () => { clearTimeout(timer); resolve(c); });
    sock.once('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

function requestBytes({ method = 'POST', path = '/v1/chat/completions', headers = {}, body } = {}) {
  let payload = body;
  if (payload !== undefined && typeof payload !== 'string' && !Buffer.isBuffer(payload)) payload = JSON.stringify(payload);
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1'];
  const h = Object.assign({}, headers);
  if (payload !== undefined) {
    if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['Content-Type'] = 'application/json';
    h['Content-Length'] = Buffer.byteLength(payload);
  }
  for (const [k, v] of Object.entries(h)) lines.push(`${k}: ${v}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), payload === undefined ? Buffer.alloc(0) : Buffer.from(payload, 'utf8')]);
}

module.exports = { rawConnect, parseResponses, requestBytes };
