// SPDX-License-Identifier: Apache-2.0

// The action's main step (and the GitLab template's before_script): start,
// as root, the evidence sink (sink.js), which starts the mitmexec collector
// for the rest of the job, and return once the collector reports ready, so
// every later step is watched.
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

// config is the collector's: detections to the evidence sink (its port
// comes from the sink, which starts the collector, as MITMEXEC_SINK_PORT)
// and to the user's endpoint; the collector's own metrics to the sink every
// heartbeat interval and, with an endpoint, there too: through the
// collector's own OTLP receiver (MITMEXEC_SELF_PORT, loopback) and a
// metrics pipeline to the same exporter, so the endpoint sees the
// collector's heartbeat stop when it is stopped or killed.
function config(heartbeatMs) {
  const endpoint = lib.input('otlp-endpoint');
  const headers = lib.input('otlp-headers');
  const exporters = ['otlphttp/job'];
  let user = '';
  let self = '';
  let selfReader = '';
  let selfPipeline = '';
  if (endpoint) {
    exporters.push('otlphttp/user');
    user = [
      '  otlphttp/user:',
      '    endpoint: ' + yamlString(endpoint),
      headers ? '    headers: ' + headers : '',
    ].filter(Boolean).join('\n') + '\n';
    self = `  otlp/self:
    protocols:
      http:
        endpoint: 127.0.0.1:\${env:MITMEXEC_SELF_PORT}
`;
    selfReader = `        - periodic:
            interval: ${heartbeatMs}
            exporter:
              otlp:
                protocol: http/protobuf
                endpoint: http://127.0.0.1:\${env:MITMEXEC_SELF_PORT}/v1/metrics
`;
    selfPipeline = `    metrics/heartbeat:
      receivers: [otlp/self]
      exporters: [otlphttp/user]
`;
  }
  // The job's copy goes to the sink without a queue: the export returns
  // only once the sink has the record on disk, so the collector's shutdown
  // (which drains the receiver) means every detection is in the file. The
  // user's endpoint keeps the default queue, which sends at once (no
  // batching): a detection leaves the runner as it happens, and a slow
  // backend never holds the job's copy back.
  return `receivers:
  mitmexec:
${self}exporters:
  otlphttp/job:
    endpoint: http://127.0.0.1:\${env:MITMEXEC_SINK_PORT}
    encoding: json
    compression: none
    sending_queue:
      enabled: false
${user}service:
  telemetry:
    metrics:
      level: normal
      readers:
        - periodic:
            interval: ${heartbeatMs}
            exporter:
              otlp:
                protocol: http/protobuf
                endpoint: http://127.0.0.1:\${env:MITMEXEC_SINK_PORT}/v1/metrics
${selfReader}  pipelines:
    logs:
      receivers: [mitmexec]
      exporters: [${exporters.join(', ')}]
${selfPipeline}`;
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

// jobIdentity is what the job cannot forge about itself, read before any
// of its steps ran (the sink, root, keeps it): the process that runs its
// steps (the runner's worker on GitHub, the job's shell on GitLab: this
// step's parent, alive for the whole job) and the cgroup the job runs in.
function jobIdentity(heartbeatMs) {
  return {
    heartbeatMs, // the collector's, for the post step's silence check
    pid: process.ppid,
    cgroup: lib.cgroupOf('self'),
    key: lib.jobKey(),
    started: Date.now(),
  };
}

function main() {
  const dir = lib.workDir();
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const binary = collectorBinary();
  const heartbeatSeconds = Number(lib.input('heartbeat-seconds') || '5');
  if (!(heartbeatSeconds >= 1 && heartbeatSeconds <= 60)) fail('input heartbeat-seconds: ' + lib.input('heartbeat-seconds') + ' is not a number of seconds from 1 to 60');

  const jobFile = path.join(dir, 'job.json');
  fs.writeFileSync(jobFile, JSON.stringify(jobIdentity(heartbeatSeconds * 1000)), { mode: 0o644 });
  const cfg = path.join(dir, 'config.yaml');
  fs.writeFileSync(cfg, config(heartbeatSeconds * 1000), { mode: 0o600 }); // may hold the user's headers
  const sinkFile = path.join(dir, 'sink.json');
  fs.rmSync(sinkFile, { force: true });
  const argv = asRoot([process.execPath, path.join(__dirname, 'sink.js'), jobFile, sinkFile, binary, cfg]);
  const sink = childProcess.spawn(argv[0], argv.slice(1), { detached: true, stdio: 'ignore' });
  sink.unref();
  const info = waitFor('sink', 20000, () => {
    try {
      return JSON.parse(fs.readFileSync(sinkFile, 'utf8'));
    } catch (e) {
      return lib.alive(sink.pid) ? null : 'exited';
    }
  });
  if (info === 'exited') {
    fail('the evidence sink exited at once' + (process.getuid() !== 0 ? ': the runner\'s user needs password-less sudo (sudo -n) to run it and the collector as root' : ''));
  }
  if (!info) fail('the evidence sink did not start within 20s');
  const logFile = path.join(info.dir, 'collector.log');
  lib.saveState(dir, { evidence: info.dir, logFile });

  const ready = waitFor('collector', readyTimeoutMs, () => {
    let text = '';
    try {
      text = fs.readFileSync(logFile, 'utf8');
    } catch (e) { /* not yet */ }
    if (text.includes(readyLine)) return 'ready';
    if (!lib.alive(info.collectorPid)) return 'exited';
    return null;
  });
  if (ready !== 'ready') {
    let tail = '';
    try {
      tail = fs.readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n');
    } catch (e) { /* none */ }
    fail('the collector ' + (ready === 'exited' ? 'exited' : 'was not ready within ' + readyTimeoutMs / 1000 + 's') + ':\n' + tail);
  }
  console.log('mitmexec: watching the rest of the job (collector pid ' + info.collectorPid + ', evidence in ' + info.dir + ')');
}

main();
