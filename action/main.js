// SPDX-License-Identifier: Apache-2.0

// The action's main step (and the GitLab template's before_script): start
// the mitmexec collector for the rest of the job, detached, and return once
// it reports ready, so every later step is watched.
'use strict';
const childProcess = require('child_process');
const fs = require('fs');
const path = require('path');
const lib = require('./lib');

const readyLine = 'Everything is ready';
const readyTimeoutMs = 120 * 1000;

function fail(msg) {
  if (lib.platform() === 'github') console.log('::error title=mitmexec::' + msg.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A'));
  else console.error('mitmexec: ' + msg);
  process.exit(1);
}

// asRoot runs argv as root: the receiver loads eBPF programs. GitHub's
// hosted runners give the runner user password-less sudo.
function asRoot(argv) {
  if (process.getuid() === 0) return argv;
  return ['sudo', '-n', '--', ...argv];
}

// collectorBinary is the input's prebuilt binary, else one built from the
// action's own checkout: there is no released binary to download, and a
// build from the checkout is exactly the code the workflow pinned by ref.
function collectorBinary() {
  const given = lib.input('collector');
  if (given) {
    if (!fs.existsSync(given)) fail('input collector: ' + given + ' does not exist');
    return path.resolve(given);
  }
  const root = path.resolve(__dirname, '..');
  console.log('mitmexec: building the collector from ' + root + ' (make otelcol)');
  const r = childProcess.spawnSync('make', ['-C', root, 'otelcol'], { stdio: 'inherit' });
  if (r.status !== 0) fail('make otelcol failed with status ' + r.status);
  return path.join(root, '_build', 'otelcol-custom');
}

function yamlString(s) {
  return JSON.stringify(s); // a JSON string is a YAML double-quoted scalar
}

function config(port) {
  const endpoint = lib.input('otlp-endpoint');
  const headers = lib.input('otlp-headers');
  const exporters = ['otlphttp/job'];
  let user = '';
  if (endpoint) {
    exporters.push('otlphttp/user');
    user = [
      '  otlphttp/user:',
      '    endpoint: ' + yamlString(endpoint),
      headers ? '    headers: ' + headers : '',
    ].filter(Boolean).join('\n') + '\n';
  }
  // The job's copy goes to the local sink without a queue: the export
  // returns only once the sink has the record on disk, so the collector's
  // shutdown (which drains the receiver) means every detection is in the
  // file. The user's endpoint keeps the default queue so a slow backend
  // never holds the job's copy back.
  return `receivers:
  mitmexec:
exporters:
  otlphttp/job:
    endpoint: http://127.0.0.1:${port}
    encoding: json
    compression: none
    sending_queue:
      enabled: false
${user}service:
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [mitmexec]
      exporters: [${exporters.join(', ')}]
`;
}

function waitFor(what, ms, check) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const v = check();
    if (v) return v;
    lib.sleep(100);
  }
  return null;
}

function main() {
  const dir = lib.workDir();
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const binary = collectorBinary();

  const detections = path.join(dir, 'detections.jsonl');
  const portFile = path.join(dir, 'sink.port');
  fs.rmSync(portFile, { force: true });
  const sink = childProcess.spawn(process.execPath, [path.join(__dirname, 'sink.js'), detections, portFile], {
    detached: true, stdio: 'ignore',
  });
  sink.unref();
  const port = waitFor('sink', 10000, () => fs.existsSync(portFile) && fs.readFileSync(portFile, 'utf8'));
  if (!port) fail('the local sink did not start within 10s');

  const cfg = path.join(dir, 'config.yaml');
  fs.writeFileSync(cfg, config(port), { mode: 0o600 }); // may hold the user's headers
  const logFile = path.join(dir, 'collector.log');
  const log = fs.openSync(logFile, 'w');
  const argv = asRoot([binary, '--config', 'file:' + cfg]);
  const col = childProcess.spawn(argv[0], argv.slice(1), { detached: true, stdio: ['ignore', log, log] });
  col.unref();
  fs.closeSync(log);
  lib.saveState(dir, { collectorPid: col.pid, sinkPid: sink.pid, detections, logFile, asRoot: process.getuid() !== 0 });

  const ready = waitFor('collector', readyTimeoutMs, () => {
    const text = fs.readFileSync(logFile, 'utf8');
    if (text.includes(readyLine)) return 'ready';
    if (!lib.alive(col.pid)) return 'exited';
    return null;
  });
  if (ready !== 'ready') {
    const tail = fs.readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n');
    fail('the collector ' + (ready === 'exited' ? 'exited' : 'was not ready within ' + readyTimeoutMs / 1000 + 's') + ':\n' + tail);
  }
  console.log('mitmexec: watching the rest of the job (collector pid ' + col.pid + ', log ' + logFile + ')');
}

main();
