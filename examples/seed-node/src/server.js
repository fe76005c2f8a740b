#!/usr/bin/env node
// `node src/server.js`: one process of the pipeline -- HTTP API, Socket.IO,
// queue worker and (in process 0, or in every process with the "listen"
// fan-out) the LISTEN/NOTIFY relay. Configured only by the environment
// (see config.js and README.md). Prints one line to stdout once it serves:
// "listening on http://HOST:PORT".

import http from 'node:http';
import Redis from 'ioredis';
import { createApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { logger } from './log.js';
import { RealtimeServer } from './realtime.js';
import { Relay } from './relay.js';
import { Runtime, StartupError } from './runtime.js';

const log = logger('server');
const SHUTDOWN_TIMEOUT_MS = 10_000;

// A last line of defence: a stray rejection or exception is logged, and the
// server goes on serving (every known failure is handled where it happens).
process.on('unhandledRejection', (reason) => log.error('unhandled rejection', reason));
process.on('uncaughtException', (err) => log.error('uncaught exception', err));

async function main() {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`seed-node: configuration error: ${err.message}\n`);
      return 2;
    }
    throw err;
  }

  let runtime;
  try {
    runtime = await Runtime.start(config);
  } catch (err) {
    if (err instanceof StartupError) {
      process.stderr.write(`seed-node: ${err.message}\n`);
      return 1;
    }
    throw err;
  }

  const parts = { relay: null };
  const server = http.createServer(createApp(runtime, parts));
  server.keepAliveTimeout = 65_000;
  server.on('clientError', (err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  let adapterClients = null;
  if (config.socketioRedis) {
    const pubClient = new Redis(config.redisUrl, { connectionName: 'alertbench-seed-node-sio-pub' });
    const subClient = pubClient.duplicate({ connectionName: 'alertbench-seed-node-sio-sub' });
    for (const c of [pubClient, subClient]) c.on('error', (err) => log.warn(`socket.io redis adapter: ${err.message}`));
    adapterClients = [pubClient, subClient];
  }
  const realtime = new RealtimeServer(server, {
    tokenSecret: config.tokenSecret,
    pool: runtime.pool,
    flaws: config.flaws,
    adapter: adapterClients && {
      pubClient: adapterClients[0],
      subClient: adapterClients[1],
      key: `${runtime.prefix}:socket.io`,
    },
  });
  const emit = (notification) => realtime.emitAlert(notification);
  runtime.emitter = emit; // used only by the emit_before_commit flaw

  if (config.runRelay) {
    parts.relay = new Relay(config.relayPgDsn ?? config.pgDsn, emit, {
      replayMarginS: config.relayReplayMarginS,
      onEvent: (kind) => runtime.metrics.relayEvents.labels(kind).inc(),
    });
    try {
      await parts.relay.start();
    } catch (err) {
      process.stderr.write(`seed-node: the relay could not LISTEN: ${err.message}\n`);
      await parts.relay.stop();
      await runtime.close();
      return 1;
    }
  }

  try {
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    process.stderr.write(`seed-node: cannot listen on ${config.host}:${config.port}: ${err.message}\n`);
    await parts.relay?.stop();
    await runtime.close();
    return 1;
  }
  const { address, port } = server.address();
  const host = address.includes(':') ? `[${address}]` : address;
  process.stdout.write(`listening on http://${host}:${port}\n`);
  log.info(
    `process ${config.processIndex + 1} of ${config.processes}; relay: ${config.runRelay ? 'yes' : 'no'};` +
      ` socket.io redis adapter: ${config.socketioRedis ? 'yes' : 'no'}`,
  );

  // Graceful shutdown on SIGTERM/SIGINT, bounded in time.
  await new Promise((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  log.info('shutting down');
  const force = setTimeout(() => {
    log.warn(`shutdown took over ${SHUTDOWN_TIMEOUT_MS} ms; exiting`);
    process.exit(1);
  }, SHUTDOWN_TIMEOUT_MS);
  force.unref();
  await realtime.close().catch((err) => log.warn(`closing socket.io: ${err.message}`));
  server.closeAllConnections();
  await parts.relay?.stop();
  await runtime.close();
  for (const c of adapterClients ?? []) c.disconnect();
  return 0;
}

process.exit(await main());
