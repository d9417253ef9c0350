// @stateside/client: the Node.js client of the Stateside sidecar.
'use strict';
const { Client, defaultSocketPath } = require('./lib/client');
const { StatesideError } = require('./lib/errors');
const { defaultProtoDir } = require('./lib/proto');
const { sessions } = require('./lib/middleware');
const { gracefulShutdown } = require('./lib/shutdown');
const { createAdapter: createSocketIoAdapter } = require('./lib/socketio');
const { attachWebSockets } = require('./lib/ws');
const { status } = require('@grpc/grpc-js');

module.exports = { Client, StatesideError, defaultSocketPath, defaultProtoDir, sessions, gracefulShutdown,
                   createSocketIoAdapter, attachWebSockets, status };
