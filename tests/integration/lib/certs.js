'use strict';
// Test certificates made with the `openssl` CLI, once per process, in a temp dir.
//
//   const c = certs();
//   c.ca.cert                     PEM path of the test CA (give it to edgeway as ca_file)
//   c.server      {key, cert}     signed by the test CA, SAN DNS:localhost + IP:127.0.0.1
//   c.unknownCa   {key, cert}     same SANs, signed by an unrelated second CA
//   c.wrongHost   {key, cert}     signed by the test CA, SAN DNS:wrong.example only
//   c.otherCa.cert                PEM path of that second CA (not trusted by anything)
//   c.read(path)                  file contents (Buffer), for tls.createServer
//
// EC P-256 keys, SHA-256 signatures, valid from a minute ago for 30 days.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

let cached = null;

function openssl(args, cwd) {
  try {
    return execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e.stderr ? e.stderr.toString() : String(e);
    throw new Error(`openssl ${args.join(' ')} failed: ${err}`);
  }
}

function ecKey(dir, name) {
  const file = path.join(dir, `${name}.key`);
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file], dir);
  fs.chmodSync(file, 0o600);
  return file;
}

function makeCa(dir, name, cn) {
  const key = ecKey(dir, name);
  const cert = path.join(dir, `${name}.pem`);
  openssl(['req', '-x509', '-new', '-sha256', '-key', key, '-out', cert, '-days', '30',
    '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-addext', 'subjectKeyIdentifier=hash'], dir);
  return { key, cert };
}

function makeLeaf(dir, name, ca, cn, san) {
  const key = ecKey(dir, name);
  const csr = path.join(dir, `${name}.csr`);
  const cert = path.join(dir, `${name}.pem`);
  const ext = path.join(dir, `${name}.ext`);
  fs.writeFileSync(ext, [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth',
    `subjectAltName=${san}`,
    'subjectKeyIdentifier=hash',
    'authorityKeyIdentifier=keyid,issuer',
    '',
  ].join('\n'));
  openssl(['req', '-new', '-sha256', '-key', key, '-out', csr, '-subj', `/CN=${cn}`], dir);
  const serial = '0x' + require('node:crypto').randomBytes(8).toString('hex');
  openssl(['x509', '-req', '-sha256', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key,
    '-set_serial', serial, '-days', '30', '-extfile', ext, '-out', cert], dir);
  return { key, cert };
}

function certs() {
  if (cached) return cached;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeway-certs-'));
  process.on('exit', () => {
    try { fs.rmSync(dir, { recursive: true, force: true }); } catch (_) { /* best effort */ }
  });
  const ca = makeCa(dir, 'test-ca', 'edgeway test CA');
  const otherCa = makeCa(dir, 'other-ca', 'edgeway unrelated CA');
  const server = makeLeaf(dir, 'server', ca, 'localhost', 'DNS:localhost,IP:127.0.0.1');
  const unknownCa = makeLeaf(dir, 'unknown-ca-server', otherCa, 'localhost', 'DNS:localhost,IP:127.0.0.1');
  const wrongHost = makeLeaf(dir, 'wrong-host-server', ca, 'wrong.example', 'DNS:wrong.example');
  cached = {
    dir,
    ca,
    otherCa,
    server,
    unknownCa,
    wrongHost,
    read: (p) => fs.readFileSync(p),
  };
  return cached;
}

module.exports = { certs };
