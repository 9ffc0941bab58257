// SPDX-License-Identifier: Apache-2.0

// The code that started a tool, in words, from the record's
// mitmexec.origin.* attributes (docs/record.md, "Origin"): "started by the
// postinstall script of dependency `left-pad@1.3.0`". The words are fixed;
// every value from the record goes through code(), which the caller makes
// safe for where the text goes (a Markdown cell, an annotation). And the
// file a reviewer should open, relative to the checkout, for SARIF.
'use strict';
const path = require('path');

function attr(d, k) {
  const v = d['mitmexec.origin.' + k];
  return v === undefined || v === null ? '' : String(v).replace(/[\r\n]+/g, ' ');
}

function pkg(d) {
  const name = attr(d, 'package.name');
  const version = attr(d, 'package.version');
  return name && version ? name + '@' + version : name;
}

// word shows a plain name (postinstall, npm) as it is, anything else as code.
function word(s, code) {
  return /^[A-Za-z0-9_.:-]{1,64}$/.test(s) ? s : code(s);
}

// describe returns "started by ..." or '' when the record names no origin.
// code(s) renders one value from the record; the default is a Markdown
// code span.
function describe(d, code) {
  code = code || ((s) => '`' + s.replace(/`/g, "'") + '`');
  const kind = attr(d, 'kind');
  const p = pkg(d);
  switch (kind) {
    case 'package_script': {
      const event = attr(d, 'lifecycle_event') || 'a';
      const whose = d['mitmexec.origin.package.dependency'] === true ? 'dependency '
        : d['mitmexec.origin.package.dependency'] === false ? 'the project ' : 'package ';
      const by = attr(d, 'package.manager') ? ' (' + word(attr(d, 'package.manager'), code) + ')' : '';
      return 'started by the ' + word(event, code) + ' script of ' + whose + (p ? code(p) : 'unnamed') + by;
    }
    case 'python_build':
      return 'started by the build of Python distribution ' + (p ? code(p) : 'in ' + code(attr(d, 'file') || 'an unnamed source tree'));
    case 'pytest':
      return attr(d, 'test') ? 'started by test ' + code(attr(d, 'test')) : 'started by a pytest run (the test is unknown)';
    case 'go_test':
      return 'started by the Go tests of package ' + code(attr(d, 'test')) + (attr(d, 'file') ? ' in ' + code(attr(d, 'file')) : '');
    case 'cargo_build_script':
      return 'started by the build script of crate ' + code(p || 'unnamed');
    case 'cargo':
      return 'started by crate ' + code(p || 'unnamed') + ' (run by cargo)';
    case 'make':
      return attr(d, 'make.target') ? 'started by make target ' + code(attr(d, 'make.target')) : "started by a make recipe (make's default goal)";
    case 'script':
      return 'started by script ' + code(attr(d, 'file'));
    default:
      return '';
  }
}

// inside returns p relative to root when p lies inside root, else ''.
function inside(root, p) {
  if (!root || !p) return '';
  const rel = path.relative(root, path.resolve(root, p));
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel.split(path.sep).join('/') : '';
}

// location is the file in the checkout (workspace) a reviewer should open:
// for a dependency's script the project's package.json that brought it in,
// else the file the origin names when it lies in the checkout; '' when
// none does. A pytest node id's file is relative to pytest's root, taken
// to be the checkout.
function location(d, workspace) {
  const file = attr(d, 'file');
  switch (attr(d, 'kind')) {
    case 'package_script':
      if (d['mitmexec.origin.package.dependency'] === true) {
        return inside(workspace, path.join(attr(d, 'project.dir'), 'package.json'));
      }
      return inside(workspace, file);
    case 'pytest':
      return path.isAbsolute(file) ? inside(workspace, file) : inside(workspace, path.join(workspace || '', file));
    default:
      return path.isAbsolute(file) ? inside(workspace, file) : '';
  }
}

module.exports = { describe, location };
