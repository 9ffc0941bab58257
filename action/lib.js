// SPDX-License-Identifier: Apache-2.0

// What main.js and post.js share: where the job's files live on GitHub
// Actions and on GitLab CI, inputs, state between the two steps, and the
// reading of the detections the local sink wrote. Plain Node, no npm
// dependencies: nothing to install and nothing to trust beyond this tree.
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

// readDetections returns each log record of the sink's JSONL file as a
// flat {attribute: value} object, with the resource's under resource.
function readDetections(file) {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    return [];
  }
  const out = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let req;
    try {
      req = JSON.parse(line);
    } catch (e) {
      continue;
    }
    for (const rl of req.resourceLogs || []) {
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
  return out;
}

// ofThisJob tells a detection of this job from one of another job on the
// same self-hosted runner (the tracer sees the whole host). A detection
// with no CI context at all (its process and every ancestor gone before
// they were read) is counted: it may be this job's.
function ofThisJob(d) {
  if (d['cicd.pipeline.run.id'] === undefined && d['cicd.pipeline.task.name'] === undefined) return true;
  if (platform() === 'github') {
    return d['cicd.pipeline.run.id'] === process.env.GITHUB_RUN_ID && d['cicd.pipeline.task.name'] === process.env.GITHUB_JOB;
  }
  if (platform() === 'gitlab') return d['cicd.pipeline.task.run.id'] === process.env.CI_JOB_ID;
  return true;
}

module.exports = { platform, input, boolInput, workDir, saveState, loadState, setOutput, alive, sleep, readDetections, ofThisJob };
