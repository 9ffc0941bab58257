// SPDX-License-Identifier: Apache-2.0

// The pull-request comment (input `comment: true`): the job summary posted
// on the pull request with the job's token (`pull-requests: write`), one
// comment per workflow and job, found again by a hidden marker and updated
// on every run. Nothing is posted outside a pull request, for a pull
// request from a fork, or with no detection and no comment to update.
'use strict';
const github = require('./github');

function marker(env) {
  return '<!-- mitmexec:' + (env.GITHUB_WORKFLOW || '').replace(/--/g, '') + '/' + (env.GITHUB_JOB || '').replace(/--/g, '') + ' -->';
}

// cut keeps a body under GitHub's 65,536-character limit for a comment.
function cut(md) {
  const max = 60000;
  return md.length <= max ? md : md.slice(0, max) + '\n\n(cut: the full report is the job summary)\n';
}

// post returns what it did, in words.
function post(markdown, detections, env, token) {
  const pr = github.pullRequest(env);
  if (pr.skip) return 'no pull-request comment: ' + pr.skip;
  if (!token) return 'no pull-request comment: no token (input github-token)';
  const job = { repo: pr.repo, number: pr.number, marker: marker(env), body: marker(env) + '\n' + cut(markdown), create: detections.length > 0 };
  const said = github.callSync(__filename, 'update', job, env, token);
  return said.startsWith('failed: ') ? 'pull-request comment ' + said : said;
}

// update runs in the child: list the comments, update ours or create it.
async function update(job, call) {
  const base = '/repos/' + job.repo + '/issues';
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

module.exports = { post, update, marker };
