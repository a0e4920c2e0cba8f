'use strict';
// A tiny OpenAI-compatible upstream for tests/lwip/run.sh, bound to a given address
// (tests/integration/lib/fake_upstream.js always binds 127.0.0.1, which is not reachable
// from lwIP's side of the tap).
//
//   node upstream.js HOST PORT LOGFILE
//
// Prints "listening HOST:PORT" once bound. Appends one JSON line per request to LOGFILE:
// { method, path, remote, remotePort, auth, bytes } — `remote` is the TCP peer's address as
// the kernel saw it, which is how the test knows the request came from lwIP's address.
// Chat answers carry received_bytes and received_sha256 of the request body; for the model
// "test-model-big" the answer's content is 256 KiB long (a transfer of many segments).
const http = require('node:http');
const fs = require('node:fs');
const crypto = require('node:crypto');

const [host, portText, logFile] = process.argv.slice(2);
if (!host || !portText || !logFile) {
  console.error('usage: node upstream.js HOST PORT LOGFILE');
  process.exit(2);
}

function json(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

const server = http.createServer((req, res) => {
  const parts = [];
  req.on('data', (c) => parts.push(c));
  req.on('end', () => {
    const body = Buffer.concat(parts);
    const entry = {
      method: req.method,
      path: req.url,
      remote: req.socket.remoteAddress,
      remotePort: req.socket.remotePort,
      auth: req.headers.authorization ? 'present' : 'absent',
      bytes: body.length,
    };
    fs.appendFileSync(logFile, JSON.stringify(entry) + '\n');
    if (req.method === 'GET' && req.url === '/v1/models') {
      return json(res, 200, { object: 'list', data: ['test-model', 'test-model-big'].map((id) => ({ id, object: 'model', owned_by: 'lwip-test' })) });
    }
    if (req.method === 'POST' && req.url === '/v1/chat/completions') {
      let model = 'test-model';
      try { model = JSON.parse(body.toString('utf8')).model || model; } catch (_) { /* keep */ }
      const hello = `Hello over lwIP from ${req.socket.remoteAddress}`;
      return json(res, 200, {
        id: 'chatcmpl-lwip-1',
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model,
        received_bytes: body.length,
        received_sha256: crypto.createHash('sha256').update(body).digest('hex'),
        choices: [{ index: 0, message: { role: 'assistant', content: model === 'test-model-big' ? hello.padEnd(262144, '.') : hello }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 },
      });
    }
    return json(res, 404, { error: { message: `no route ${req.method} ${req.url}`, type: 'invalid_request_error', param: null, code: null } });
  });
});

server.on('error', (e) => { console.error(`upstream: ${e.message}`); process.exit(1); });
server.listen(Number(portText), host, () => console.log(`listening ${host}:${server.address().port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
