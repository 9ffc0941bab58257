// SPDX-License-Identifier: Apache-2.0

// What main.js and post.js share: where the job's files live on GitHub
// Actions and on GitLab CI, inputs, state between the two steps, and the
// reading of the detections the evidence sink wrote, and which of them are
// this job's. Plain Node, no npm dependencies: nothing to install and
// nothing to trust beyond this tree.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');

function platform() {
  if (process.env.GITHUB_ACTIONS === 'true') return 'github';
  if (process.env.GITLAB_CI === 'true') return 'gitlab';
  return 'local';
}

// input reads an action input (INPUT_FAIL-ON-DETECTION on GitHub: the
// runner keeps the hyphens) or, on GitLab, the template's variable
// (MITMEXEC_FAIL_ON_DETECTION).
function input(name) {
  const gh = process.env['INPUT_' + name.toUpperCase()];
  if (gh !== undefined) return gh.trim();
  return (process.env['MITMEXEC_' + name.toUpperCase().replace(/-/g, '_')] || '').trim();
}

function boolInput(name) {
  return /^(true|yes|1|on)$/i.test(input(name));
}

// workDir is where this job's collector keeps its configuration, log and
// detections: per job, so jobs sharing a self-hosted runner never mix.
function workDir() {
  if (platform() === 'github') {
    return path.join(process.env.RUNNER_TEMP || os.tmpdir(), 'mitmexec-' + (process.env.GITHUB_RUN_ID || '0') + '-' + (process.env.GITHUB_JOB || 'job'));
  }
  if (platform() === 'gitlab') {
    return path.join(process.env.MITMEXEC_TMPDIR || os.tmpdir(), 'mitmexec-job-' + (process.env.CI_JOB_ID || '0'));
  }
  return path.join(process.env.MITMEXEC_TMPDIR || os.tmpdir(), 'mitmexec-local');
}

// saveState hands values to the post step. On GitHub, through
// $GITHUB_STATE (the runner gives them back as STATE_<name>); everywhere,
// in state.json of the work directory, which post reads on GitLab.
function saveState(dir, state) {
  fs.writeFileSync(path.join(dir, 'state.json'), JSON.stringify(state), { mode: 0o600 });
  if (platform() === 'github' && process.env.GITHUB_STATE) {
    fs.appendFileSync(process.env.GITHUB_STATE, 'dir=' + dir + os.EOL);
  }
}

function loadState() {
  const dir = process.env.STATE_dir || workDir();
  const state = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8'));
  return { dir, state };
}

function setOutput(name, value) {
  if (process.env.GITHUB_OUTPUT) fs.appendFileSync(process.env.GITHUB_OUTPUT, name + '=' + value + os.EOL);
}

// alive reports whether pid still runs; EPERM means it does (a root
// collector seen from the runner's user).
// A zombie (exited, not yet reaped by a parent that is busy waiting) is
// not alive.
function alive(pid) {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if (e.code !== 'EPERM') return false;
  }
  try {
    const stat = fs.readFileSync('/proc/' + pid + '/stat', 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch (e) {
    return false;
  }
}

// procState is the one-letter state of /proc/PID/stat ('T' stopped, 'Z'
// zombie), '' when there is no such process.
function procState(pid) {
  try {
    const stat = fs.readFileSync('/proc/' + pid + '/stat', 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch (e) {
    return '';
  }
}

function sleep(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

// attrValue flattens an OTLP JSON AnyValue.
function attrValue(v) {
  if (!v) return undefined;
  if ('stringValue' in v) return v.stringValue;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return v.doubleValue;
  if ('boolValue' in v) return v.boolValue;
  if ('arrayValue' in v) return ((v.arrayValue && v.arrayValue.values) || []).map(attrValue);
  return undefined;
}

// startTime is the start time of pid (field 22 of /proc/PID/stat, clock
// ticks since boot): with the pid it names one process, never a later one
// that reused the pid.
function startTime(pid) {
  try {
    const stat = fs.readFileSync('/proc/' + pid + '/stat', 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] || '';
  } catch (e) {
    return '';
  }
}

// cgroupOf is the cgroup v2 path of pid ('self' for this process), as the
// receiver reports it in process.linux.cgroup.
function cgroupOf(pid) {
  try {
    const line = fs.readFileSync('/proc/' + pid + '/cgroup', 'utf8').split('\n').find((l) => l.startsWith('0::'));
    return line ? line.slice(3) : '';
  } catch (e) {
    return '';
  }
}

// jobKey names this job the way the runner does. The post step compares
// the key the sink recorded with its own, so evidence of another job (an
// old directory) is never read as this one's.
function jobKey() {
  if (platform() === 'github') {
    return ['github', process.env.GITHUB_RUN_ID || '', process.env.GITHUB_RUN_ATTEMPT || '', process.env.GITHUB_JOB || ''].join('/');
  }
  if (platform() === 'gitlab') return ['gitlab', process.env.CI_JOB_ID || ''].join('/');
  return 'local';
}

// parseDetections returns each log record of the sink's JSONL text as a
// flat {attribute: value} object, with the resource's under resource, and
// the sequence numbers of the file's lines in order (the integrity check
// wants them 1, 2, 3, ...). A line that is not the sink's is counted in
// bad.
function parseDetections(text) {
  const out = [];
  const seqs = [];
  let bad = 0;
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let entry;
    try {
      entry = JSON.parse(line);
    } catch (e) {
      bad++;
      continue;
    }
    if (!entry || typeof entry.seq !== 'number' || !entry.request) {
      bad++;
      continue;
    }
    seqs.push(entry.seq);
    for (const rl of entry.request.resourceLogs || []) {
      const resource = {};
      for (const kv of (rl.resource && rl.resource.attributes) || []) resource[kv.key] = attrValue(kv.value);
      for (const sl of rl.scopeLogs || []) {
        for (const lr of sl.logRecords || []) {
          const a = { resource, body: attrValue(lr.body), time: lr.timeUnixNano };
          for (const kv of lr.attributes || []) a[kv.key] = attrValue(kv.value);
          out.push(a);
        }
      }
    }
  }
  return { detections: out, seqs, bad };
}

// ciContext says what a detection's own CI context (read from the tool's
// environment, which the job chooses) claims: 'this' job, an 'other' job,
// or 'none'.
function ciContext(d, key) {
  const [plat, ...k] = key.split('/');
  if (d['cicd.pipeline.run.id'] === undefined && d['cicd.pipeline.task.name'] === undefined &&
    d['cicd.pipeline.task.run.id'] === undefined) return 'none';
  if (plat === 'github') {
    return d['cicd.pipeline.run.id'] === k[0] && d['cicd.pipeline.task.name'] === k[2] ? 'this' : 'other';
  }
  if (plat === 'gitlab') return d['cicd.pipeline.task.run.id'] === k[0] ? 'this' : 'other';
  return 'none'; // outside GitHub and GitLab there is no job name to compare
}

// attribute tells this job's detections from other processes' on the host
// (the tracer sees the whole host) by what the job cannot forge: the
// kernel's ancestry of the process (the job's process among its
// ancestors) and its cgroup (the job's, or one below it). An unprivileged
// process can leave the tree (setsid, a double fork) but not its cgroup.
// The CI context from the tool's environment is never a reason to leave a
// detection out: when it disagrees with the tree the detection is this
// job's and flagged (mitmexec.cicd.mismatch); one that claims this job
// from outside its tree and cgroup is counted and flagged too.
// Where the job has no cgroup of its own (the root cgroup), the tree is
// the only proof, and a detection outside it is counted unless its CI
// context names another job.
// Returns {mine, match, mismatch}; match is how it was tied to the job.
function attribute(d, job) {
  const ctx = ciContext(d, job.key);
  let match = '';
  const pids = [d['process.parent_pid'], ...(d['mitmexec.ancestors'] || []).map((a) => Number(String(a).split(':')[0]))];
  if (pids.includes(job.pid)) match = 'process_tree';
  const isolated = job.cgroup !== '' && job.cgroup !== '/';
  const cg = d['process.linux.cgroup'];
  if (!match && isolated && typeof cg === 'string' && (cg === job.cgroup || cg.startsWith(job.cgroup + '/'))) match = 'cgroup';
  if (match) return { mine: true, match, mismatch: ctx === 'other' };
  if (ctx === 'this') return { mine: true, match: 'ci_context', mismatch: true };
  if (!isolated && ctx === 'none') return { mine: true, match: 'none', mismatch: false };
  return { mine: false, match: '', mismatch: false };
}

module.exports = {
  platform, input, boolInput, workDir, saveState, loadState, setOutput, alive, sleep, parseDetections,
  procState, startTime, cgroupOf, jobKey, ciContext, attribute,
};
