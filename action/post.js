// SPDX-License-Identifier: Apache-2.0

// The action's post step (and the GitLab template's check): stop the
// evidence sink (which stops the collector), check that the evidence is
// whole, decide which detections are this job's, and say it: a job
// summary, one ::error:: annotation per detection, the outputs result and
// detections, a report (JSON and Markdown), and a failing exit status when
// the evidence is not whole, or on a detection with fail-on-detection
// true. Running it twice is harmless: the second run reads the same
// evidence again.
'use strict';
const childProcess = require('child_process');
const fs = require('fs');
const path = require('path');
const lib = require('./lib');
const origin = require('./origin');

const stopTimeoutMs = 45 * 1000;

// escapeData/escapeProperty follow the runner's workflow-command escaping.
function escapeData(s) {
  return String(s).replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}
function escapeProperty(s) {
  return escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

function annotate(title, msg) {
  if (lib.platform() === 'github') console.log('::error title=' + escapeProperty(title) + '::' + escapeData(msg));
  else console.error('ERROR: ' + title + ': ' + msg);
}

// cell makes a value safe inside a Markdown table cell: HTML-escaped, no
// pipe, no line break, in <code> so a command line reads as one.
function cell(s, code) {
  if (s === undefined || s === null || s === '') return '-';
  const t = String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
    .replace(/\|/g, '&#124;').replace(/[\r\n]+/g, ' ');
  return code ? '<code>' + t + '</code>' : t;
}

function iso(ms) {
  return new Date(ms).toISOString();
}

// stopSink asks the sink (root) to stop the collector and itself, and waits
// for it. A sink already gone is not an error here: the status it left says
// whether the post step stopped it (a first run) or something else did.
function stopSink(ev) {
  if (!lib.alive(ev.sinkPid)) return;
  if (process.getuid() !== 0) childProcess.spawnSync('sudo', ['-n', 'kill', '-TERM', String(ev.sinkPid)]);
  else process.kill(ev.sinkPid, 'SIGTERM');
  const until = Date.now() + stopTimeoutMs;
  while (lib.alive(ev.sinkPid) && Date.now() < until) lib.sleep(100);
}

// awaitHeartbeat waits (at most the silence allowed) for a heartbeat newer
// than the post step's start: a collector alive now sends one within an
// interval, and the gap check below then covers the job to its very end.
// A collector gone or stopped is not waited for.
function awaitHeartbeat(ev) {
  const t0 = Date.now();
  const file = path.join(ev.dir, 'status.json');
  while (Date.now() - t0 < maxSilence(ev.heartbeatMs)) {
    const st = lib.procState(ev.collectorPid);
    if (st === '' || st === 'T' || st === 't' || st === 'Z') return;
    try {
      const hb = JSON.parse(fs.readFileSync(file, 'utf8')).heartbeats;
      if (hb.length && hb[hb.length - 1] >= t0) return;
    } catch (e) {
      return;
    }
    lib.sleep(200);
  }
}

// maxSilence is the longest the collector may go without a heartbeat:
// three intervals and a margin for a loaded machine.
function maxSilence(heartbeatMs) {
  return 3 * heartbeatMs + 2000;
}

// readOwned reads a file of the evidence, which must be root's (the sink's
// uid), a regular file and writable by nobody else; otherwise it says why
// in problems.
function readOwned(file, uid, problems) {
  let st;
  try {
    st = fs.lstatSync(file);
  } catch (e) {
    problems.push(`the evidence file ${file} is missing (${e.code})`);
    return null;
  }
  if (!st.isFile() || st.uid !== uid || (st.mode & 0o022) !== 0) {
    problems.push(`the evidence file ${file} is not the sink's (uid ${st.uid}, mode ${(st.mode & 0o7777).toString(8)}): it was replaced`);
    return null;
  }
  return fs.readFileSync(file, 'utf8');
}

// readStatus reads the sink's status.json from the evidence directory,
// both root's and writable by root alone, or says in problems why not.
function readStatus(dir, problems) {
  let st;
  try {
    st = fs.lstatSync(dir);
  } catch (e) {
    problems.push(`the evidence directory ${dir} is gone (${e.code})`);
    return null;
  }
  if (!st.isDirectory() || st.uid !== 0 || (st.mode & 0o022) !== 0) {
    problems.push(`the evidence directory ${dir} is not root's (uid ${st.uid}): it was replaced`);
    return null;
  }
  const text = readOwned(path.join(dir, 'status.json'), 0, problems);
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch (e) {
    problems.push('the sink status is not JSON: ' + e.message);
    return null;
  }
}

// checkEvidence verifies what the sink kept and returns the problems (each
// fails the gate, whatever fail-on-detection says: the job was not
// watched, or its evidence was touched), the status and the detections.
function checkEvidence(dir, job) {
  const problems = [];
  const status = readStatus(dir, problems);
  if (!status) return { problems, status: null, detections: [] };
  if (status.job.key !== job.key) problems.push(`the evidence is of job ${status.job.key}, not this one (${job.key})`);

  if (!status.stopped) {
    problems.push('the evidence sink was killed during the job: detections after ' + iso(status.heartbeats.slice(-1)[0] || status.started) + ' may be missing');
  }
  const exit = status.collectorExit;
  if (!exit) {
    problems.push('the collector did not stop when asked');
  } else if (!status.stopping || exit.time < status.stopping) {
    problems.push(`the collector exited during the job at ${iso(exit.time)} (${exit.signal ? 'killed by ' + exit.signal : 'exit status ' + exit.code}): what ran after that was not watched`);
  }
  if (status.killedAtStop) problems.push('the collector did not stop within 30s and was killed: detections it had not sent are lost');
  for (const s of status.stoppedSeen) {
    problems.push(`the collector was stopped (SIGSTOP) from ${iso(s.from)} to ${s.to ? iso(s.to) : 'the end of the job'}: tools run meanwhile may be lost`);
  }
  if (status.instances.length > 1) problems.push(`the collector was restarted during the job (${status.instances.length} instances reported)`);
  if (status.afterExit > 0) problems.push(`the collector was restarted during the job: ${status.afterExit} request(s) reached the sink after the collector it started had exited`);
  if (status.badRequests > 0) problems.push(`${status.badRequests} request(s) from the collector to the sink could not be read: what they held is lost`);
  if (status.foreignCount > 0) {
    const uids = [...new Set(status.foreign.map((f) => f.uid))].join(', ');
    problems.push(`${status.foreignCount} request(s) to the evidence sink from uid ${uids}, not the collector's, were refused: something in the job tried to feed it`);
  }

  // Heartbeats: the collector's metrics every heartbeatMs, due from its
  // readiness to the post step's request to stop (its last push, at its
  // shutdown, comes after). A longer silence is a collector that did not
  // run: stopped, starved, or frozen.
  const end = status.stopping || Date.now();
  const hb = [status.ready || status.started, ...status.heartbeats.filter((t) => t <= end), end];
  const maxGap = maxSilence(status.job.heartbeatMs);
  if (status.heartbeats.length === 0) {
    problems.push('the collector never sent a heartbeat (its own metrics): it did not run');
  } else {
    let worst = { gap: 0, from: 0 };
    for (let i = 1; i < hb.length; i++) if (hb[i] - hb[i - 1] > worst.gap) worst = { gap: hb[i] - hb[i - 1], from: hb[i - 1] };
    if (worst.gap > maxGap) {
      problems.push(`the collector was silent for ${(worst.gap / 1000).toFixed(1)}s from ${iso(worst.from)} (no heartbeat; at most ${(maxGap / 1000).toFixed(0)}s expected): it was stopped or frozen`);
    }
  }

  const text = readOwned(path.join(dir, 'detections.jsonl'), 0, problems);
  const read = lib.parseDetections(text || '');
  const wrong = read.seqs.findIndex((seq, i) => seq !== i + 1);
  if (read.bad > 0 || wrong >= 0 || read.seqs.length !== status.seq) {
    const at = wrong >= 0 ? wrong + 1 : read.seqs.length + 1;
    problems.push(`the detections file holds ${read.seqs.length} request(s) and ${read.bad} unreadable line(s), the sink appended ${status.seq} (request ${at} is not where it belongs): it was changed`);
  }
  if (read.detections.length !== status.records) {
    problems.push(`the detections file holds ${read.detections.length} detection(s), the sink received ${status.records}: it was changed`);
  }
  const sent = status.metrics['otelcol_exporter_sent_log_records{otlphttp/job}'] || 0;
  const failed = status.metrics['otelcol_exporter_send_failed_log_records{otlphttp/job}'] || 0;
  if (sent !== status.records) problems.push(`the collector reports ${sent} detection(s) sent to the sink, the sink received ${status.records}`);
  if (failed > 0) problems.push(`the collector failed to send ${failed} detection(s) to the sink`);
  // What the collector itself lost: exec records the kernel could not
  // queue (a full ring buffer, an undrained one after a stop), records it
  // could not decode, detections its pipeline refused. Any of it means a
  // tool may have run unseen.
  const lost = [
    ['otelcol_receiver_mitmexec_ring_reserve_failures', 'exec record(s) the kernel could not queue (ring buffer full)'],
    ['otelcol_receiver_mitmexec_queue_dropped', 'exec record(s) dropped from the kernel queue'],
    ['otelcol_receiver_mitmexec_decode_errors', 'exec record(s) that could not be decoded'],
    ['otelcol_receiver_mitmexec_dropped', 'detection(s) the pipeline refused'],
  ];
  for (const [name, what] of lost) {
    if (status.metrics[name] > 0) problems.push(`the collector lost ${status.metrics[name]} ${what}`);
  }
  return { problems, status, detections: read.detections };
}

function stepContext(d) {
  const parts = [];
  if (d['cicd.pipeline.task.name']) parts.push('job ' + d['cicd.pipeline.task.name']);
  if (d['process.working_directory']) parts.push('in ' + d['process.working_directory']);
  if (d['mitmexec.parent.executable.path']) parts.push('from ' + d['mitmexec.parent.executable.path']);
  if (d['mitmexec.cicd.mismatch']) parts.push('CI context NOT this job\'s');
  return parts.join(', ');
}

function markdown(v) {
  const lines = ['## mitmexec', ''];
  if (v.result === 'fail') {
    lines.push('> [!CAUTION]', '> **The gate failed:**');
    for (const r of v.reasons) lines.push('> - ' + cell(r));
    lines.push('');
  }
  if (v.mine.length === 0 && v.problems.length > 0) {
    lines.push('no MitM tool was seen during this job, but the watch was not whole (above): one may have run unseen.');
  } else if (v.mine.length === 0) {
    lines.push('no MitM tool ran during this job.');
  } else {
    lines.push(`**${v.mine.length} MitM tool execution${v.mine.length === 1 ? '' : 's'}** during this job:`, '',
      '| tool | step context | command line | ancestry | started by | action | tied to the job by |', '|---|---|---|---|---|---|---|');
    for (const d of v.mine) {
      const ancestry = (d['mitmexec.ancestors'] || []).join(' ← ');
      const by = origin.describe(d, (s) => cell(s, true)).replace(/^started by /, '') || '-';
      lines.push(`| ${cell(d['mitmexec.tool.name'])} | ${cell(stepContext(d))} | ${cell(d['process.command_line'] || d['process.executable.path'], true)} | ${cell(ancestry, true)} | ${by} | ${cell(d['mitmexec.action'])} | ${cell(d['mitmexec.job.match'])} |`);
    }
  }
  if (v.others > 0) lines.push('', `(${v.others} detection${v.others === 1 ? '' : 's'} of other processes on this runner, outside this job's process tree and cgroup, not counted.)`);
  return lines.join('\n') + '\n';
}

// verdict decides: the evidence problems, then this job's detections.
function verdict(checked, job, failOnDetection) {
  const mine = [];
  let others = 0;
  for (const d of checked.detections) {
    const a = lib.attribute(d, job);
    if (!a.mine) {
      others++;
      continue;
    }
    d['mitmexec.job.match'] = a.match;
    if (a.mismatch) d['mitmexec.cicd.mismatch'] = true;
    mine.push(d);
  }
  const reasons = [...checked.problems];
  const mismatched = mine.filter((d) => d['mitmexec.cicd.mismatch']);
  if (mine.length > 0) reasons.push(`${mine.length} MitM tool execution(s) during this job`);
  if (mismatched.length > 0) {
    reasons.push(`${mismatched.length} of them with a CI context that disagrees with the job's process tree (${mismatched.map((d) => d['cicd.pipeline.task.name'] || d['cicd.pipeline.task.run.id'] || '?').join(', ')}): a step hid the tool under another job's name`);
  }
  const result = reasons.length === 0 ? 'pass' : 'fail';
  const exit = checked.problems.length > 0 || (mine.length > 0 && failOnDetection) ? 1 : 0;
  return { mine, others, reasons, result, exit, problems: checked.problems };
}

// reporters get this job's detections once the verdict is in, in order:
// the summary, annotations and report files below, and whatever else
// reads them (the origin of each tool, SARIF, a pull-request comment).
// Each is (verdict, ctx) => void: verdict.mine is the list of this job's
// detections (flat attribute objects), verdict.reasons why the gate failed;
// ctx has reportDir, the state and the Markdown, which a reporter placed
// before summary may extend.
const reporters = [
  function summary(v, ctx) {
    if (process.env.GITHUB_STEP_SUMMARY) fs.appendFileSync(process.env.GITHUB_STEP_SUMMARY, ctx.markdown);
    fs.writeFileSync(path.join(ctx.reportDir, 'mitmexec-report.md'), ctx.markdown);
    fs.writeFileSync(path.join(ctx.reportDir, 'mitmexec-report.json'), JSON.stringify({
      result: v.result, reasons: v.reasons, problems: v.problems, detections: v.mine, otherProcesses: v.others,
    }, null, 2) + '\n');
    if (lib.platform() !== 'github') process.stdout.write(ctx.markdown);
  },
  function annotations(v) {
    for (const d of v.mine) {
      annotate('MitM tool executed: ' + (d['mitmexec.tool.name'] || 'unknown'),
        [origin.describe(d), (d['process.command_line'] || d['process.executable.path'] || '') + ' (' + stepContext(d) + ')'].filter(Boolean).join(': '));
    }
    for (const p of v.problems) annotate('mitmexec', p);
  },
  // SARIF for code scanning and the pull-request comment (origin.js, sarif.js, comment.js)
  function codeScanning(v, ctx) {
    const say = (s) => console.log((/failed/.test(s) && lib.platform() === 'github' ? '::warning::' : 'mitmexec: ') + escapeData(s));
    if (lib.input('sarif')) require('./sarif').write(lib.input('sarif'), v.mine, process.env);
    if (lib.input('sarif') && lib.boolInput('sarif-upload')) say(require('./sarif').upload(lib.input('sarif'), process.env, lib.input('github-token')));
    if (lib.boolInput('comment')) say(require('./comment').post(ctx.markdown, v.mine, process.env, lib.input('github-token')));
  },
];

function main() {
  let dir, state;
  try {
    ({ dir, state } = lib.loadState());
  } catch (e) {
    annotate('mitmexec', 'no state from the main step (' + e.message + '): the collector never started');
    lib.setOutput('result', 'fail');
    process.exit(1);
  }
  // Which sink and collector to stop, and the heartbeat interval, come
  // from the evidence (root's), not state.json, which the job can rewrite.
  // Another job's sink (state.json pointed elsewhere) is left alone, and a
  // pid is only the sink while it has the sink's start time.
  const status = readStatus(state.evidence, []);
  if (status && status.job.key === lib.jobKey() && lib.startTime(status.pid) === status.pidStart) {
    const ev = { dir: state.evidence, sinkPid: status.pid, collectorPid: status.collectorPid, heartbeatMs: status.job.heartbeatMs };
    if (lib.alive(ev.sinkPid)) awaitHeartbeat(ev);
    stopSink(ev);
  }
  const checked = checkEvidence(state.evidence, { key: lib.jobKey() });
  // The job's identity is the one main wrote before any step ran, as the
  // sink (root) keeps it.
  const job = checked.status ? checked.status.job : { pid: -1, cgroup: '', key: lib.jobKey() };
  const v = verdict(checked, job, lib.boolInput('fail-on-detection'));
  const reportDir = process.env.MITMEXEC_REPORT_DIR || (lib.platform() === 'gitlab' ? process.env.CI_PROJECT_DIR : '') || dir;
  const ctx = { reportDir, markdown: markdown(v), state };
  for (const r of reporters) r(v, ctx);
  lib.setOutput('result', v.result);
  lib.setOutput('detections', String(v.mine.length));
  console.log(`mitmexec: ${v.mine.length} detection(s), result ${v.result}; report in ${reportDir}`);
  if (v.exit !== 0) {
    console.log('mitmexec: the gate failed: ' + v.reasons.join('; '));
    process.exit(v.exit);
  }
}

main();
