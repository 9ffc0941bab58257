// SPDX-License-Identifier: Apache-2.0

// The action's post step (and the GitLab template's check): stop the
// collector, read what it detected during the job, and say it: a job
// summary, one ::error:: annotation per detection, the outputs result and
// detections, a report (JSON and Markdown), and a failing exit status when
// fail-on-detection is true. Running it twice is harmless: the second run
// reports the same file again.
'use strict';
const childProcess = require('child_process');
const fs = require('fs');
const path = require('path');
const lib = require('./lib');
const origin = require('./origin');

const stopTimeoutMs = 30 * 1000;

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

// stop ends the collector; false when it had stopped on its own. A post
// step already run (GitLab's check, then after_script) did stop it.
function stop(dir, state) {
  if (state.stoppedByPost) return true;
  if (!lib.alive(state.collectorPid)) return false;
  if (state.asRoot) childProcess.spawnSync('sudo', ['-n', 'kill', '-TERM', String(state.collectorPid)]);
  else process.kill(state.collectorPid, 'SIGTERM');
  const until = Date.now() + stopTimeoutMs;
  while (lib.alive(state.collectorPid) && Date.now() < until) lib.sleep(100);
  if (lib.alive(state.collectorPid)) {
    // A collector that does not stop must not outlive the job: what it
    // had not exported in 30 s is lost.
    if (state.asRoot) childProcess.spawnSync('sudo', ['-n', 'kill', '-KILL', String(state.collectorPid)]);
    else process.kill(state.collectorPid, 'SIGKILL');
  }
  fs.writeFileSync(path.join(dir, 'state.json'), JSON.stringify({ ...state, stoppedByPost: true }), { mode: 0o600 });
  return true;
}

function stepContext(d) {
  const parts = [];
  if (d['cicd.pipeline.task.name']) parts.push('job ' + d['cicd.pipeline.task.name']);
  if (d['process.working_directory']) parts.push('in ' + d['process.working_directory']);
  if (d['mitmexec.parent.executable.path']) parts.push('from ' + d['mitmexec.parent.executable.path']);
  return parts.join(', ');
}

function markdown(mine, others, wasRunning) {
  const lines = ['## mitmexec', ''];
  if (!wasRunning) lines.push('> [!CAUTION]', '> The collector had stopped before the end of the job: tools run after that were not watched.', '');
  if (mine.length === 0) {
    lines.push('no MitM tool ran during this job.');
  } else {
    lines.push(`**${mine.length} MitM tool execution${mine.length === 1 ? '' : 's'}** during this job:`, '',
      '| tool | step context | command line | ancestry | started by | action |', '|---|---|---|---|---|---|');
    for (const d of mine) {
      const ancestry = (d['mitmexec.ancestors'] || []).join(' ← ');
      const by = origin.describe(d, (s) => cell(s, true)).replace(/^started by /, '') || '-';
      lines.push(`| ${cell(d['mitmexec.tool.name'])} | ${cell(stepContext(d))} | ${cell(d['process.command_line'] || d['process.executable.path'], true)} | ${cell(ancestry, true)} | ${by} | ${cell(d['mitmexec.action'])} |`);
    }
  }
  if (others > 0) lines.push('', `(${others} detection${others === 1 ? '' : 's'} of other jobs on this runner not counted.)`);
  return lines.join('\n') + '\n';
}

function main() {
  let dir, state;
  try {
    ({ dir, state } = lib.loadState());
  } catch (e) {
    annotate('mitmexec', 'no state from the main step (' + e.message + '): the collector never started');
    lib.setOutput('result', 'fail');
    process.exit(1);
  }
  const wasRunning = stop(dir, state);
  if (lib.alive(state.sinkPid)) process.kill(state.sinkPid, 'SIGTERM');

  const all = lib.readDetections(state.detections);
  const mine = all.filter(lib.ofThisJob);
  const others = all.length - mine.length;
  const md = markdown(mine, others, wasRunning);
  if (process.env.GITHUB_STEP_SUMMARY) fs.appendFileSync(process.env.GITHUB_STEP_SUMMARY, md);
  const reportDir = process.env.MITMEXEC_REPORT_DIR || (lib.platform() === 'gitlab' ? process.env.CI_PROJECT_DIR : '') || dir;
  fs.writeFileSync(path.join(reportDir, 'mitmexec-report.md'), md);
  fs.writeFileSync(path.join(reportDir, 'mitmexec-report.json'), JSON.stringify({ detections: mine, otherJobs: others, collectorStoppedEarly: !wasRunning }, null, 2) + '\n');
  if (lib.platform() !== 'github') process.stdout.write(md);
  const say = (s) => console.log((/failed/.test(s) && lib.platform() === 'github' ? '::warning::' : 'mitmexec: ') + escapeData(s));
  if (lib.input('sarif')) require('./sarif').write(lib.input('sarif'), mine, process.env);
  if (lib.input('sarif') && lib.boolInput('sarif-upload')) say(require('./sarif').upload(lib.input('sarif'), process.env, lib.input('github-token')));
  if (lib.boolInput('comment')) say(require('./comment').post(md, mine, process.env, lib.input('github-token')));

  for (const d of mine) {
    annotate('MitM tool executed: ' + (d['mitmexec.tool.name'] || 'unknown'),
      [origin.describe(d), (d['process.command_line'] || d['process.executable.path'] || '') + ' (' + stepContext(d) + ')'].filter(Boolean).join(': '));
  }
  if (!wasRunning) {
    annotate('mitmexec', 'the collector had stopped before the end of the job; its log: ' + state.logFile);
  }
  const result = mine.length === 0 && wasRunning ? 'pass' : 'fail';
  lib.setOutput('result', result);
  lib.setOutput('detections', String(mine.length));
  console.log(`mitmexec: ${mine.length} detection(s), result ${result}; report in ${reportDir}`);
  if (!wasRunning || (mine.length > 0 && lib.boolInput('fail-on-detection'))) process.exit(1);
}

main();
