// SPDX-License-Identifier: Apache-2.0

// A synchronous call into the GitHub REST API for post.js (which runs
// synchronously): the work runs in a child node, the token passed in the
// child's environment only, and what it did comes back in words. A failure
// is words too: the summary and the annotations already said what ran.
'use strict';
const childProcess = require('child_process');
const fs = require('fs');

const timeoutMs = 20 * 1000;

// pullRequest returns {repo, number} of the pull request the job runs for,
// or {skip: reason}: not a pull request, or one from a fork (its
// pull_request token is read-only).
function pullRequest(env) {
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
  if (event === 'pull_request' && head && head !== base) return { skip: 'a pull request from the fork ' + head + ': its token cannot write' };
  if (!Number.isInteger(pr.number) || !/^[\w.-]+\/[\w.-]+$/.test(base || '')) return { skip: 'the event names no pull request' };
  return { repo: base, number: pr.number };
}

// callSync runs require(modulePath)[fn](job, call) in a child node and
// returns its words. call(method, path, body) is an authenticated request
// to the API that resolves to the response's JSON.
function callSync(modulePath, fn, job, env, token) {
  const api = (env.GITHUB_API_URL || 'https://api.github.com').replace(/\/+$/, '');
  const r = childProcess.spawnSync(process.execPath, [__filename, modulePath, fn], {
    input: JSON.stringify({ api, job }), env: { MITMEXEC_GITHUB_TOKEN: token, PATH: env.PATH || '' }, timeout: timeoutMs, encoding: 'utf8' });
  if (r.error) return 'failed: ' + r.error.message;
  return (r.stdout || '').trim() || 'failed: ' + (r.stderr || 'exit ' + r.status).trim().split('\n')[0];
}

if (require.main === module) {
  const { api, job } = JSON.parse(fs.readFileSync(0, 'utf8'));
  const headers = { authorization: 'Bearer ' + process.env.MITMEXEC_GITHUB_TOKEN, accept: 'application/vnd.github+json',
    'x-github-api-version': '2022-11-28', 'user-agent': 'mitmexec-action', 'content-type': 'application/json' };
  const call = async (method, p, body) => {
    const res = await fetch(api + p, { method, headers, body: body && JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs / 2) });
    if (!res.ok) throw new Error(method + ' ' + p.replace(/\?.*/, '') + ': HTTP ' + res.status + (res.status === 403 || res.status === 404 ? ' (does the token have the permission?)' : ''));
    return res.json();
  };
  require(process.argv[2])[process.argv[3]](job, call).then((s) => console.log(s), (e) => console.log('failed: ' + e.message));
}

module.exports = { pullRequest, callSync };
