// SPDX-License-Identifier: Apache-2.0

// The pull-request comment (input `comment: true`): the job summary posted
// on the pull request with the job's token (`pull-requests: write`), one
// comment per workflow and job, found again by a hidden marker and updated
// on every run. Nothing is posted outside a pull request, for a pull
// request from a fork (its token cannot write), or with no detection and
// no comment to update. A failure is a warning: the summary and the
// annotations already said it.
'use strict';
const childProcess = require('child_process');
const fs = require('fs');

const timeoutMs = 20 * 1000;

// target returns {repo, number} of the pull request the job runs for, or
// {skip: reason}.
function target(env) {
  const event = env.GITHUB_EVENT_NAME || '';
  if (event !== 'pull_request' && event !== 'pull_request_target') return { skip: 'not a pull request (' + (event || 'no event') + ')' };
  let payload;
  try {
    payload = JSON.parse(fs.readFileSync(env.GITHUB_EVENT_PATH, 'utf8'));
  } catch (e) {
    return { skip: 'no event payload (' + e.message + ')' };
  }
  const pr = payload.pull_request || {};
  const base = ((pr.base || {}).repo || {}).full_name || env.GITHUB_REPOSITORY;
  const head = ((pr.head || {}).repo || {}).full_name;
  if (event === 'pull_request' && head && head !== base) return { skip: 'a pull request from the fork ' + head + ': its token cannot comment' };
  if (!Number.isInteger(pr.number) || !/^[\w.-]+\/[\w.-]+$/.test(base || '')) return { skip: 'the event names no pull request' };
  return { repo: base, number: pr.number };
}

function marker(env) {
  return '<!-- mitmexec:' + (env.GITHUB_WORKFLOW || '').replace(/--/g, '') + '/' + (env.GITHUB_JOB || '').replace(/--/g, '') + ' -->';
}

// cut keeps a body under GitHub's 65,536-character limit for a comment.
function cut(md) {
  const max = 60000;
  return md.length <= max ? md : md.slice(0, max) + '\n\n(cut: the full report is the job summary)\n';
}

// post runs the requests in a child node (post.js runs synchronously) and
// returns what it did, in words.
function post(markdown, detections, env, token) {
  const t = target(env);
  if (t.skip) return 'no pull-request comment: ' + t.skip;
  if (!token) return 'no pull-request comment: no token (input github-token)';
  const job = { api: (env.GITHUB_API_URL || 'https://api.github.com').replace(/\/+$/, ''), repo: t.repo, number: t.number,
    marker: marker(env), body: marker(env) + '\n' + cut(markdown), create: detections.length > 0 };
  const r = childProcess.spawnSync(process.execPath, [__filename], {
    input: JSON.stringify(job), env: { MITMEXEC_COMMENT_TOKEN: token, PATH: env.PATH || '' }, timeout: timeoutMs, encoding: 'utf8' });
  if (r.error) return 'pull-request comment failed: ' + r.error.message;
  return (r.stdout || '').trim() || 'pull-request comment failed: ' + (r.stderr || 'exit ' + r.status).trim();
}

// The child: list the comments, update ours or create it.
async function run(job, token) {
  const headers = { authorization: 'Bearer ' + token, accept: 'application/vnd.github+json',
    'x-github-api-version': '2022-11-28', 'user-agent': 'mitmexec-action', 'content-type': 'application/json' };
  const call = async (method, url, body) => {
    const res = await fetch(url, { method, headers, body: body && JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs / 2) });
    if (!res.ok) throw new Error(method + ' ' + new URL(url).pathname + ': HTTP ' + res.status +
      (res.status === 403 || res.status === 404 ? ' (the token lacks pull-requests: write?)' : ''));
    return res.json();
  };
  const base = job.api + '/repos/' + job.repo + '/issues';
  let existing;
  for (let page = 1; page <= 10 && !existing; page++) {
    const list = await call('GET', base + '/' + job.number + '/comments?per_page=100&page=' + page);
    existing = list.find((c) => typeof c.body === 'string' && c.body.startsWith(job.marker));
    if (list.length < 100) break;
  }
  if (existing) {
    await call('PATCH', base + '/comments/' + existing.id, { body: job.body });
    return 'updated the pull-request comment ' + existing.id;
  }
  if (!job.create) return 'no pull-request comment: no detection, none to update';
  const c = await call('POST', base + '/' + job.number + '/comments', { body: job.body });
  return 'created the pull-request comment ' + c.id;
}

if (require.main === module) {
  const job = JSON.parse(fs.readFileSync(0, 'utf8'));
  run(job, process.env.MITMEXEC_COMMENT_TOKEN).then((s) => console.log(s), (e) => {
    console.log('pull-request comment failed: ' + e.message);
  });
}

module.exports = { post, target, marker };
