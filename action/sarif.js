// SPDX-License-Identifier: Apache-2.0

// The detections as a SARIF 2.1.0 log (input `sarif: path`), for code
// scanning: one result per detection, located at the file the origin names
// in the checkout (the project's package.json for a dependency's script,
// the test file, the build's manifest), else at the workflow file that ran
// the job, so every result shows on the change. The log names no URL and
// carries no environment: the message, the tool, the origin and the job.
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const github = require('./github');
const origin = require('./origin');

const ruleId = 'net_mitm_tool_exec';

// workflowFile is the file that defines the job: GitHub's workflow (from
// GITHUB_WORKFLOW_REF, owner/repo/.github/workflows/ci.yml@ref) or
// GitLab's .gitlab-ci.yml.
function workflowFile(env) {
  const ref = env.GITHUB_WORKFLOW_REF || '';
  const m = /^[^/]+\/[^/]+\/(.+?)@/.exec(ref);
  if (m) return m[1];
  if (env.GITLAB_CI === 'true') return env.CI_CONFIG_PATH || '.gitlab-ci.yml';
  return '';
}

function result(d, workspace, fallback) {
  const tool = d['mitmexec.tool.name'] || 'unknown';
  const words = origin.describe(d, (s) => "'" + s + "'");
  const uri = origin.location(d, workspace) || fallback;
  const r = {
    ruleId,
    ruleIndex: 0,
    level: 'error',
    message: { text: `MitM tool ${tool} ran during the job${words ? ', ' + words : ''}: ` +
      (d['process.command_line'] || d['process.executable.path'] || '') },
    properties: {},
  };
  if (uri) r.locations = [{ physicalLocation: { artifactLocation: { uri, uriBaseId: '%SRCROOT%' } } }];
  for (const [k, v] of Object.entries(d)) {
    if (k.startsWith('mitmexec.origin.') || k === 'mitmexec.tool.name' || k === 'mitmexec.action' ||
        k.startsWith('cicd.') || k.startsWith('vcs.')) r.properties[k] = v;
  }
  // One alert per tool and origin: a re-run of the same job updates it
  // instead of adding another.
  r.partialFingerprints = { 'mitmexecOrigin/v1': [tool, d['mitmexec.origin.kind'] || '', d['mitmexec.origin.package.name'] || '',
    d['mitmexec.origin.test'] || '', uri].join('|') };
  return r;
}

// log builds the SARIF log of the job's detections.
function log(detections, env) {
  const workspace = env.GITHUB_WORKSPACE || env.CI_PROJECT_DIR || process.cwd();
  const fallback = workflowFile(env);
  return {
    version: '2.1.0',
    runs: [{
      tool: {
        driver: {
          name: 'mitmexec',
          rules: [{
            id: ruleId,
            name: 'NetMitmToolExec',
            shortDescription: { text: 'A network man-in-the-middle tool ran during the job' },
            fullDescription: { text: 'A MitM tool (ettercap, bettercap, mitmproxy, arpspoof, ...) was executed while the job ran. ' +
              'The result points at the code that started it where the process tree names it.' },
            help: { text: 'Read the code the result points at: which dependency, test or build step starts the tool, and why.' },
            defaultConfiguration: { level: 'error' },
            properties: { tags: ['security', 'T1040', 'T1557'], 'security-severity': '9.0', precision: 'high' },
          }],
        },
      },
      automationDetails: { id: 'mitmexec/' + (env.GITHUB_JOB || env.CI_JOB_NAME || 'job') + '/' },
      results: detections.map((d) => result(d, workspace, fallback)),
    }],
  };
}

// write writes the log to file (relative to the working directory), making
// its directory. A file that cannot be written is a warning: the summary,
// the annotations and the exit status still say what ran.
function write(file, detections, env) {
  try {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    fs.writeFileSync(file, JSON.stringify(log(detections, env), null, 2) + '\n');
  } catch (e) {
    console.log((env.GITHUB_ACTIONS === 'true' ? '::warning::' : 'mitmexec: ') + 'SARIF not written: ' + e.message.replace(/[\r\n]+/g, ' '));
  }
}

// upload sends the file to code scanning (input `sarif-upload: true`, the
// token with `security-events: write`), as github/codeql-action's
// upload-sarif does: gzip, base64, for the job's commit and ref. The post
// step runs after every step of the job, so no later step could upload
// what it writes. Not for a pull request from a fork (its token is
// read-only).
function upload(file, env, token) {
  const pr = github.pullRequest(env);
  if (pr.skip && pr.skip.includes('fork')) return 'SARIF not uploaded: ' + pr.skip;
  if (!token || !/^[\w.-]+\/[\w.-]+$/.test(env.GITHUB_REPOSITORY || '') || !env.GITHUB_SHA || !env.GITHUB_REF) {
    return 'SARIF not uploaded: no token, repository, commit or ref';
  }
  let sarif;
  try {
    sarif = zlib.gzipSync(fs.readFileSync(file)).toString('base64');
  } catch (e) {
    return 'SARIF not uploaded: ' + e.message;
  }
  const job = { repo: env.GITHUB_REPOSITORY, body: { commit_sha: env.GITHUB_SHA, ref: env.GITHUB_REF, sarif, tool_name: 'mitmexec' } };
  const said = github.callSync(__filename, 'send', job, env, token);
  return said.startsWith('failed: ') ? 'SARIF upload ' + said : said;
}

// send runs in the child.
async function send(job, call) {
  const r = await call('POST', '/repos/' + job.repo + '/code-scanning/sarifs', job.body);
  return 'uploaded the SARIF report to code scanning' + (r && r.id ? ' (' + r.id + ')' : '');
}

module.exports = { log, write, workflowFile, upload, send };
