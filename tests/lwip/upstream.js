'use strict';
// A tiny OpenAI-compatible upstream for tests/lwip/run.sh, bound to a given address
// (tests/integration/lib/fake_upstream.js always binds 127.0.0.1, which is not reachable
// from lwIP's side of the tap).
//
//   node upstream.js HOST PORT LOGFILE
//
// Prints "listening HOST:PORT" once bound. Appends one JSON line per request to LOGFILE:
// { method, path, remote, remotePort, auth } — `remote` is the TCP peer's address as the
// kernel saw it, which is how the test knows the request came from lwIP's address.
const http = require('node:http');
const fs = require('node:fs');

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
    const entry = {
      method: req.method,
      path: req.url,
      remote: req.socket.remoteAddress,
      remotePort: req.socket.remotePort,
      auth: req.headers.authorization ? 'present' : 'absent',
    };
    fs.appendFileSync(logFile, JSON.stringify(entry) + '\n');
    if (req.method === 'GET' && req.url === '/v1/models') {
      return json(res, 200, { object: 'list', data: [{ id: 'test-model', object: 'model', owned_by: 'lwip-test' }] });
    }
    if (req.method === 'POST' && req.url === '/v1/chat/completions') {
      let model = 'test-model';
      try { model = JSON.parse(Buffer.concat(parts).toString('utf8')).model || model; } catch (_) { /* keep */ }
      return json(res, 200, {
        id: 'chatcmpl-lwip-1',
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model,
        choices: [{ index: 0, message: { role: 'assistant', content: `Hello over lwIP from ${req.socket.remoteAddress}` }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 },
      });
    }
    return json(res, 404, { error: { message: `no route ${req.method} ${req.url}`, type: 'invalid_request_error', param: null, code: null } });
  });
});

server.on('error', (e) => { console.error(`upstream: ${e.message}`); process.exit(1); });
server.listen(Number(portText), host, () => console.log(`listening ${host}:${server.address().port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
