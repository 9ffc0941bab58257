// SPDX-License-Identifier: Apache-2.0

// The evidence sink: a separate detached process, run as root (sudo), that
// starts the collector as its own child and keeps what the collector sends
// during the job where the runner's user cannot change it. The collector's
// otlphttp exporter (encoding json) posts every detection to /v1/logs: each
// request is appended to detections.jsonl with a sequence number. The
// collector's own metrics arrive every few seconds on /v1/metrics (its
// telemetry's periodic OTLP reader, http/protobuf: the only HTTP encoding
// it has): each push is a heartbeat, and carries the collector's counts of
// what it sent, which the post step compares with the file. status.json
// says all of it, rewritten on every request. Both files are root's, 0644,
// in a root-owned directory: the runner's user reads them and can neither
// truncate nor replace them.
//
// Only the collector's uid may post: a connection from a socket of another
// uid (a job step faking heartbeats or detections) is refused and counted.
// The sink is the collector's parent: it sees the collector exit (killed,
// crashed) and, four times a second, whether it is stopped (SIGSTOP, state
// T), and writes both down, with when it said it was ready.
//
// Usage: node sink.js <job.json> <out-file> <collector> <config>
// job.json (written by main before any step of the job ran) names the job:
// its process, cgroup and CI key; out-file, created here (never an existing
// file or link), is where the sink says {port, dir, pid, collectorPid} once
// listening. The collector's log is collector.log in the evidence
// directory.
'use strict';
const childProcess = require('child_process');
const fs = require('fs');
const http = require('http');
const net = require('net');
const os = require('os');
const path = require('path');
const { procState, startTime } = require('./lib');

const [jobFile, outFile, collector, config] = process.argv.slice(2);
const job = JSON.parse(fs.readFileSync(jobFile, 'utf8'));
// Under root's own temporary directory (sticky, root's): the runner's user
// can neither rename it away nor put another in its place.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mitmexec-evidence-'));
fs.chmodSync(dir, 0o755);
const out = path.join(dir, 'detections.jsonl');
const statusFile = path.join(dir, 'status.json');
const logFile = path.join(dir, 'collector.log');
// A request larger than this is not a few detections: refused, not buffered.
const maxBody = 16 << 20;
// Foreign posts kept in the status, counted beyond.
const maxForeign = 20;

const status = {
  pid: process.pid,
  pidStart: startTime(process.pid), // with pid, names this sink and no later process
  uid: process.getuid(),
  started: Date.now(),
  job, // the job's process, cgroup and key, as main saw them
  collectorPid: 0,
  collectorExit: null, // {time, code, signal} when it exited
  stoppedSeen: [], // [{from, to}] times the collector was seen stopped (state T)
  ready: 0, // when the collector's log said it was ready: heartbeats are due from then on
  seq: 0, // requests appended to detections.jsonl
  records: 0, // log records in them
  heartbeats: [], // arrival times (ms) of every metrics push
  instances: [], // service.instance.id of every collector that pushed
  metrics: {}, // the latest value of each counter the integrity check reads
  foreign: [], // refused posts: {uid, path, time}
  foreignCount: 0,
  badRequests: 0,
  afterExit: 0, // requests from root's uid after the collector exited
  stopping: 0, // when the post step asked the sink to stop
  stopped: 0,
};

function writeStatus() {
  fs.writeFileSync(statusFile + '.tmp', JSON.stringify(status), { mode: 0o644 });
  fs.renameSync(statusFile + '.tmp', statusFile);
}

// peerUid finds the uid owning the client end of a loopback connection in
// /proc/net/tcp{,6}: the kernel's word, which the client cannot choose.
function peerUid(sock) {
  const hex = (p) => ':' + p.toString(16).toUpperCase().padStart(4, '0');
  const local = hex(sock.remotePort);
  const remote = hex(sock.localPort);
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text;
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch (e) {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const col = line.trim().split(/\s+/);
      if (col.length > 7 && col[1].endsWith(local) && col[2].endsWith(remote)) return Number(col[7]);
    }
  }
  return -1;
}

// A minimal protobuf reader for the few fields of an OTLP metrics export
// the sink reads (plain Node has no protobuf): fields(buf) returns
// [number, wire type, value] with value a Buffer for length-delimited
// fields, a Buffer of 8 bytes for fixed 64-bit ones, a number otherwise.
function fields(buf) {
  const out = [];
  let i = 0;
  const varint = () => {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (i >= buf.length) throw new Error('truncated varint');
      const b = buf[i++];
      v += (b & 0x7f) * mul;
      mul *= 128;
      if (b < 0x80) return v;
    }
  };
  while (i < buf.length) {
    const key = varint();
    const num = Math.floor(key / 8);
    const wt = key % 8;
    if (wt === 0) out.push([num, wt, varint()]);
    else if (wt === 1) {
      out.push([num, wt, buf.subarray(i, i + 8)]);
      i += 8;
    } else if (wt === 2) {
      const n = varint();
      if (i + n > buf.length) throw new Error('truncated field');
      out.push([num, wt, buf.subarray(i, i + n)]);
      i += n;
    } else if (wt === 5) i += 4;
    else throw new Error('wire type ' + wt);
  }
  return out;
}

const sub = (list, n) => list.filter((f) => f[0] === n && f[1] === 2).map((f) => f[2]);

// attrs reads repeated KeyValue (key 1, AnyValue 2 with string_value 1).
function attrs(kvs) {
  const a = {};
  for (const kv of kvs) {
    const f = fields(kv);
    const key = sub(f, 1)[0];
    const val = sub(f, 2)[0];
    const str = val && sub(fields(val), 1)[0];
    if (key && str) a[key.toString('utf8')] = str.toString('utf8');
  }
  return a;
}

// heartbeat keeps the push's time, the collector instance and the sums the
// integrity check compares: what the exporter to this sink sent and failed
// to send. ExportMetricsServiceRequest: resource_metrics 1 {resource 1
// {attributes 1}, scope_metrics 2 {metrics 2 {name 1, gauge 5, sum 7
// {data_points 1 {attributes 7, as_double 4, as_int 6}}}}}.
function heartbeat(body) {
  const metrics = {};
  const instances = [];
  for (const rm of sub(fields(body), 1)) {
    const rmf = fields(rm);
    const res = sub(rmf, 1)[0];
    const id = res && attrs(sub(fields(res), 1))['service.instance.id'];
    if (id) instances.push(id);
    for (const sm of sub(rmf, 2)) {
      for (const m of sub(fields(sm), 2)) {
        const mf = fields(m);
        const name = (sub(mf, 1)[0] || Buffer.alloc(0)).toString('utf8');
        for (const data of [...sub(mf, 5), ...sub(mf, 7)]) {
          for (const p of sub(fields(data), 1)) {
            const pf = fields(p);
            const exporter = attrs(sub(pf, 7)).exporter;
            let v;
            for (const [n, wt, val] of pf) {
              if (n === 6 && wt === 1) v = Number(val.readBigInt64LE(0));
              if (n === 4 && wt === 1) v = val.readDoubleLE(0);
            }
            if (v !== undefined) metrics[name + (exporter ? '{' + exporter + '}' : '')] = v;
          }
        }
      }
    }
  }
  // Only a push read to its end is a heartbeat.
  status.heartbeats.push(Date.now());
  for (const id of instances) if (!status.instances.includes(id)) status.instances.push(id);
  Object.assign(status.metrics, metrics);
}

function countRecords(req) {
  let n = 0;
  for (const rl of req.resourceLogs || []) for (const sl of rl.scopeLogs || []) n += (sl.logRecords || []).length;
  return n;
}

const server = http.createServer((req, res) => {
  const kind = req.method === 'POST' && req.url.startsWith('/v1/logs') ? 'logs'
    : req.method === 'POST' && req.url.startsWith('/v1/metrics') ? 'metrics' : '';
  if (!kind) {
    res.writeHead(404).end();
    return;
  }
  if (req.socket.peerUid === undefined) req.socket.peerUid = peerUid(req.socket);
  if (req.socket.peerUid !== status.uid) {
    status.foreignCount++;
    if (status.foreign.length < maxForeign) status.foreign.push({ uid: req.socket.peerUid, path: req.url.slice(0, 64), time: Date.now() });
    writeStatus();
    res.writeHead(403).end();
    req.destroy();
    return;
  }
  // The collector this sink started is its child; a request after it
  // exited comes from another one: a restart.
  if (status.collectorExit) status.afterExit++;
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size > maxBody) {
      res.writeHead(413).end();
      req.destroy();
      return;
    }
    chunks.push(c);
  });
  req.on('end', () => {
    if (size > maxBody) return;
    const body = Buffer.concat(chunks);
    let parsed;
    try {
      if (kind === 'logs') parsed = JSON.parse(body.toString('utf8'));
      else heartbeat(body);
    } catch (e) {
      status.badRequests++;
      writeStatus();
      res.writeHead(400, { 'Content-Type': 'application/json' }).end('{}');
      return;
    }
    if (kind === 'logs') {
      // Synchronous: the line is on disk before the collector hears 200,
      // so a detection acknowledged is a detection the post step sees.
      status.seq++;
      status.records += countRecords(parsed);
      fs.appendFileSync(out, JSON.stringify({ seq: status.seq, received: Date.now(), request: parsed }) + '\n', { mode: 0o644 });
    }
    writeStatus();
    if (kind === 'logs') res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
    else res.writeHead(200, { 'Content-Type': 'application/x-protobuf' }).end();
  });
});

let col = null;
function watch() {
  if (!col || status.collectorExit) return;
  if (!status.ready) {
    try {
      if (fs.readFileSync(logFile, 'utf8').includes('Everything is ready')) {
        status.ready = Date.now();
        writeStatus();
      }
    } catch (e) { /* not yet */ }
  }
  const st = procState(col.pid);
  const now = Date.now();
  const open = status.stoppedSeen.length && !status.stoppedSeen[status.stoppedSeen.length - 1].to;
  if ((st === 'T' || st === 't') && !open) {
    status.stoppedSeen.push({ from: now, to: 0 });
    writeStatus();
  } else if (st !== 'T' && st !== 't' && open) {
    status.stoppedSeen[status.stoppedSeen.length - 1].to = now;
    writeStatus();
  }
}

fs.writeFileSync(out, '', { mode: 0o644 });
writeStatus();
// freePort asks the kernel for a loopback port nobody listens on, for the
// collector's own OTLP receiver (its heartbeat to the user's endpoint).
function freePort(cb) {
  const probe = net.createServer();
  probe.listen(0, '127.0.0.1', () => {
    const port = probe.address().port;
    probe.close(() => cb(port));
  });
}

server.listen(0, '127.0.0.1', () => freePort((selfPort) => {
  const port = server.address().port;
  const log = fs.openSync(logFile, 'w', 0o644);
  col = childProcess.spawn(collector, ['--config', 'file:' + config], {
    stdio: ['ignore', log, log],
    env: { ...process.env, MITMEXEC_SINK_PORT: String(port), MITMEXEC_SELF_PORT: String(selfPort) },
  });
  fs.closeSync(log);
  status.collectorPid = col.pid;
  col.on('exit', (code, signal) => {
    status.collectorExit = { time: Date.now(), code, signal };
    writeStatus();
  });
  writeStatus();
  setInterval(watch, 250).unref();
  fs.writeFileSync(outFile, JSON.stringify({ port, dir, pid: process.pid, collectorPid: col.pid }), { mode: 0o644, flag: 'wx' });
}));

// SIGTERM (the post step, through sudo): stop the collector, which drains
// the receiver through the exporter and pushes its last metrics here, then
// stop listening. A collector stopped at this point is woken first: it
// cannot shut down otherwise, and the stop is already written down.
const stopTimeoutMs = 30 * 1000;
process.on('SIGTERM', () => {
  if (status.stopping) return;
  status.stopping = Date.now();
  watch();
  const done = () => {
    status.stopped = Date.now();
    writeStatus();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  if (!col || status.collectorExit) {
    done();
    return;
  }
  col.on('exit', done);
  try {
    process.kill(col.pid, 'SIGCONT');
    process.kill(col.pid, 'SIGTERM');
  } catch (e) {
    done();
    return;
  }
  setTimeout(() => {
    // A collector that does not stop must not outlive the job: what it had
    // not exported by now is lost, and the status says it was killed.
    status.killedAtStop = true;
    try {
      process.kill(col.pid, 'SIGKILL');
    } catch (e) { /* gone */ }
  }, stopTimeoutMs).unref();
});
