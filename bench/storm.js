#!/usr/bin/env node
'use strict';
// The fault storm soak (issue 7): see bench/storm.sh and tests/integration/lib/fault_storm.js.
// Env: EDGEWAY_BIN (the binary), STORM_MINUTES (default 20), STORM_SEED (default 20261202),
//      STORM_SAMPLE_MS (default 10000), STORM_OUT (a JSON report file, optional).
// Prints a progress line per sample and a summary; exit status 0 when >= 99.9 % of the
// requests succeeded, no stream was cut silently and no answer crossed, 1 otherwise.
const fs = require('node:fs');
const path = require('node:path');
const { runStorm, summary } = require(path.join(__dirname, '..', 'tests', 'integration', 'lib', 'fault_storm.js'));

const minutes = Number(process.env.STORM_MINUTES || 20);
const seed = Number(process.env.STORM_SEED || 20261202);
const sampleMs = Number(process.env.STORM_SAMPLE_MS || 10000);
const out = process.env.STORM_OUT;

function stamp() { return new Date().toISOString().slice(11, 19); }

(async () => {
  process.stderr.write(`[${stamp()}] storm: ${minutes} min, seed ${seed}, binary ${process.env.EDGEWAY_BIN}\n`);
  const report = await runStorm({
    durationMs: Math.round(minutes * 60000), seed, sampleMs,
    onSample: (s) => {
      process.stderr.write(`[${stamp()}] t=${(s.t / 1000).toFixed(0)}s requests=${s.requests} failed=${s.failed} ` +
        `rss=${s.rssKb}kB fds=${s.fds} states=${s.states ? s.states.join('/') : '?'} modes=${s.modes.join('/')}\n`);
    },
  });
  const text = summary(report);
  process.stdout.write(`${text}\n`);
  // RSS after warm-up (the first 10 % of the samples): flat means the last sample is
  // within 5 % of the first one after warm-up.
  const warm = report.samples.slice(Math.floor(report.samples.length / 10)).map((s) => s.rssKb).filter((x) => x !== undefined);
  const flat = warm.length < 2 || warm[warm.length - 1] <= warm[0] * 1.05;
  process.stdout.write(`RSS after warm-up: first ${warm[0]} kB, last ${warm[warm.length - 1]} kB (${flat ? 'flat' : 'GROWING'})\n`);
  if (out) fs.writeFileSync(out, JSON.stringify(report, null, 1));
  const pass = report.agentAlive && report.successRate >= 0.999 && report.silentTruncations === 0 && report.crossed === 0;
  process.stdout.write(`verdict: ${pass ? 'PASS' : 'FAIL'} (>= 99.9 % success, 0 silent truncations, 0 crossed answers)\n`);
  process.exit(pass ? 0 : 1);
})().catch((e) => { process.stderr.write(`${e.stack || e}\n`); process.exit(2); });
