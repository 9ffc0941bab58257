// SPDX-License-Identifier: Apache-2.0

// The local OTLP/HTTP sink: the collector's otlphttp exporter (encoding
// json) posts every detection here, and each request body is appended as
// one line to a JSONL file the post step reads. A separate detached process,
// because the action's main process must exit for the job to go on.
// Usage: node sink.js <out.jsonl> <port-file>
'use strict';
const fs = require('fs');
const http = require('http');

const [out, portFile] = process.argv.slice(2);
// A request larger than this is not a few detections: refused, not buffered.
const maxBody = 16 << 20;

const server = http.createServer((req, res) => {
  if (req.method !== 'POST' || !req.url.startsWith('/v1/logs')) {
    res.writeHead(404).end();
    return;
  }
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
    const body = Buffer.concat(chunks).toString('utf8');
    try {
      JSON.parse(body);
    } catch (e) {
      res.writeHead(400, { 'Content-Type': 'application/json' }).end('{}');
      return;
    }
    // Synchronous: the line is on disk before the collector hears 200, so
    // a detection acknowledged is a detection the post step sees.
    fs.appendFileSync(out, body.replace(/\n/g, ' ') + '\n');
    res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
  });
});

server.listen(0, '127.0.0.1', () => {
  fs.writeFileSync(portFile + '.tmp', String(server.address().port));
  fs.renameSync(portFile + '.tmp', portFile);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
