// ws_peer.js -- a Node `ws` (node-ws) peer for
// tests/spec/websocket_interop_spec.lua; the same modes as ws_peer.py:
//
//   node ws_peer.js server [--no-compress] [--tls CERT KEY]
//   node ws_peer.js client URL [--no-compress] [--cafile CA]
//
// Run with NODE_PATH=/usr/share/nodejs (where Debian puts node-ws).
'use strict';
const fs = require('fs');
const crypto = require('crypto');
const WebSocket = require('ws');

const args = process.argv.slice(2);
const compress = !args.includes('--no-compress');

function serve() {
  let server;
  const i = args.indexOf('--tls');
  if (i >= 0) {
    server = require('https').createServer({
      cert: fs.readFileSync(args[i + 1]), key: fs.readFileSync(args[i + 2])});
  } else {
    server = require('http').createServer();
  }
  const wss = new WebSocket.Server({server, perMessageDeflate: compress,
    maxPayload: 1 << 24});
  wss.on('connection', (ws, req) => {
    const path = req.url;
    ws.on('error', () => {});
    if (path === '/ping') {
      let got = false;
      ws.on('pong', () => { got = true; });
      ws.ping('abc');
      setTimeout(() => ws.send('pong ' + (got ? 1 : 0)), 300);
    }
    ws.on('message', (m, isBinary) => {
      if (path === '/frag') {
        const n = m.length, a = Math.floor(n / 3), b = Math.floor(2 * n / 3);
        ws.send(m.subarray(0, a), {binary: isBinary, fin: false});
        ws.send(m.subarray(a, b), {binary: isBinary, fin: false});
        ws.send(m.subarray(b), {binary: isBinary, fin: true});
      } else if (path === '/close' && !isBinary &&
                 m.toString().startsWith('close ')) {
        const [, code, ...reason] = m.toString().split(' ');
        ws.close(Number(code), reason.join(' '));
      } else if (path === '/drop') {
        ws.terminate();
      } else {
        ws.send(m, {binary: isBinary});
      }
    });
  });
  server.listen(0, '127.0.0.1', () => {
    console.log(server.address().port);
  });
}

function report(name, ok, why) {
  console.log(ok ? 'ok ' + name : 'FAIL ' + name + ': ' + why);
}

function open(url) {
  const o = {perMessageDeflate: compress, maxPayload: 1 << 24};
  const i = args.indexOf('--cafile');
  if (i >= 0) o.ca = fs.readFileSync(args[i + 1]);
  const ws = new WebSocket(url, o);
  const queue = [], waiters = [];
  ws.on('message', (m, isBinary) => {
    const v = isBinary ? m : m.toString();
    if (waiters.length) waiters.shift()(v); else queue.push(v);
  });
  ws.recv = () => new Promise((res) =>
    queue.length ? res(queue.shift()) : waiters.push(res));
  ws.closed = new Promise((res) =>
    ws.on('close', (code, reason) => res([code, reason.toString()])));
  return new Promise((res, rej) => {
    ws.on('open', () => res(ws));
    ws.on('error', rej);
  });
}

async function client(url) {
  let ws = await open(url);
  console.log('extensions ' + ws.extensions);
  ws.send('hello');
  let m = await ws.recv();
  report('text', m === 'hello', m);
  const b = Buffer.from([...Array(256).keys()]);
  ws.send(b);
  m = await ws.recv();
  report('binary', Buffer.isBuffer(m) && m.equals(b), String(m).slice(0, 40));
  const big = crypto.randomBytes(1 << 20);
  ws.send(big);
  m = await ws.recv();
  report('1MiB', Buffer.isBuffer(m) && m.equals(big), m.length);
  ws.send('frag', {fin: false});
  ws.send('men', {fin: false});
  ws.send('ted', {fin: true});
  m = await ws.recv();
  report('fragmented', m === 'fragmented', m);
  const pong = new Promise((res) => ws.once('pong', res));
  ws.ping('hi');
  await pong;
  report('ping', true);
  ws.send('ping-me');
  m = await ws.recv();
  report('server-ping', m === 'pinged', m);
  ws.close(4000, 'done');
  let [code] = await ws.closed;
  report('client-close', code === 4000, code);
  ws = await open(url);
  ws.send('close-me');
  const [c2, r2] = await ws.closed;
  report('server-close', c2 === 4001 && r2 === 'server bye', c2 + ' ' + r2);
}

if (args[0] === 'server') serve();
else client(args[1]).then(() => process.exit(0),
  (e) => { console.log('FAIL client: ' + e); process.exit(1); });
