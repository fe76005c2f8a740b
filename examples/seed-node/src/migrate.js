#!/usr/bin/env node
// `node src/migrate.js`: create the contract's schema in the database of
// env PG_DSN (idempotent). With ALERTBENCH_FLAWS containing no_unique_index,
// the partial unique index on ACTIVE alerts is left out, as the seed
// system shipped without it.

import { connect } from './db.js';
import { parseFlaws } from './flaws.js';
import { migrate } from './schema.js';

async function main() {
  const dsn = process.env.PG_DSN;
  if (!dsn) {
    process.stderr.write('migrate: PG_DSN is required (postgresql://user@host:port/db)\n');
    return 2;
  }
  let flaws;
  try {
    flaws = parseFlaws(process.env.ALERTBENCH_FLAWS);
  } catch (err) {
    process.stderr.write(`migrate: ALERTBENCH_FLAWS: ${err.message}\n`);
    return 2;
  }
  let client;
  try {
    client = await connect(dsn, { applicationName: 'alertbench-seed-node-migrate' });
  } catch (err) {
    process.stderr.write(`migrate: cannot connect to Postgres at PG_DSN: ${err.message}\n`);
    return 1;
  }
  try {
    const uniqueActiveAlert = !flaws.has('no_unique_index');
    await migrate(client, { uniqueActiveAlert });
    process.stderr.write(`migrate: schema up to date (unique active-alert index: ${uniqueActiveAlert})\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`migrate: failed: ${err.message}\n`);
    return 1;
  } finally {
    await client.end().catch(() => {});
  }
}

process.exitCode = await main();
