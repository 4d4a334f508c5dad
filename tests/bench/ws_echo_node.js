// ws_echo_node.js - Node `ws` (node-ws) echo server for ws_echo.sh:
// NODE_PATH=/usr/share/nodejs node ws_echo_node.js PORT
'use strict';
const WebSocket = require('ws');
const wss = new WebSocket.Server({host: '127.0.0.1',
  port: Number(process.argv[2]), perMessageDeflate: false});
wss.on('connection', (ws) => {
  ws.on('message', (m, isBinary) => ws.send(m, {binary: isBinary}));
  ws.on('error', () => {});
});
