// A Unix-socket proxy between a gRPC client and the sidecar that, once
// armed, cuts the connection at the moment the server's answer to a call
// starts: the first HTTP/2 HEADERS or DATA frame of a stream (not stream
// 0's SETTINGS, PING, WINDOW_UPDATE) the server sends after arm() is
// dropped and both sides closed. The sidecar has applied the call and the
// client never hears of it: the "applied, answer lost" failure a retry must
// survive (as tests/support/cutting_proxy.h). Disarmed after one cut.
'use strict';
const net = require('node:net');

const FRAME_HEADER = 9;
const DATA = 0x0;
const HEADERS = 0x1;

class CuttingProxy {
  static start(listenPath, targetPath) {
    const proxy = new CuttingProxy(targetPath);
    return new Promise((resolve, reject) => {
      proxy._server.once('error', reject);
      proxy._server.listen(listenPath, () => resolve(proxy));
    });
  }

  constructor(targetPath) {
    this.armed = false;
    this.cuts = 0;
    this._sockets = new Set();
    this._server = net.createServer((client) => {
      const server = net.connect(targetPath);
      this._track(client);
      this._track(server);
      client.pipe(server);
      let pending = Buffer.alloc(0);
      server.on('data', (chunk) => {
        // Forward whole frames, looking at each one's type and stream.
        pending = Buffer.concat([pending, chunk]);
        while (pending.length >= FRAME_HEADER) {
          const length = pending.readUIntBE(0, 3);
          if (pending.length < FRAME_HEADER + length) break;
          const type = pending[3];
          const stream = pending.readUInt32BE(5) & 0x7fffffff;
          if (this.armed && stream !== 0 && (type === HEADERS || type === DATA)) {
            this.armed = false;
            ++this.cuts;
            client.destroy();
            server.destroy();
            return;
          }
          client.write(pending.subarray(0, FRAME_HEADER + length));
          pending = pending.subarray(FRAME_HEADER + length);
        }
      });
      const end = () => { client.destroy(); server.destroy(); };
      client.on('close', end);
      server.on('close', end);
      client.on('error', end);
      server.on('error', end);
    });
  }

  _track(socket) {
    this._sockets.add(socket);
    socket.on('close', () => this._sockets.delete(socket));
  }

  // The next answer the server starts on any connection is cut.
  arm() {
    this.armed = true;
  }

  close() {
    for (const s of this._sockets) s.destroy();
    return new Promise((resolve) => this._server.close(() => resolve()));
  }
}

module.exports = { CuttingProxy };
