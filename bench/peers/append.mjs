// bench/peers/append.mjs: one-event appends through node-postgres for ./bench/run --peers.
//
//   node bench/peers/append.mjs setup --database DB
//       Emmett's schema (created by its own migration) and 100,000 streams
//       stream-1 .. stream-100000 of one event each, appended with Emmett's own SQL function as its
//       appendToStream calls it (the default partition, kind E).
//   node bench/peers/append.mjs run --variant raw|eventsource|emmett --database DB --seconds S
//                               --clients N --synchronous-commit on|off --run RUN
//       N concurrent loops over one pg.Pool of N connections, each appending one event per
//       transaction to one of the 100,000 streams at random for S seconds, then prints
//       "transactions errors latency_ms client_cpu_us" (latency: the mean time of one append as a
//       loop sees it; client_cpu_us: this process's CPU time during the runs per append).
//       raw: the raw INSERT of bench/workloads/raw_one.pgbench into bench.raw_events, a prepared
//       statement; eventsource: SELECT eventsource.append(...), a prepared statement; emmett:
//       Emmett's appendToStream with no expected version, on an event store given the same pool.
//       errors: appends that failed (Emmett reports a version conflict when another writer
//       appended to the stream between its read of the stream's position and its update).
//
// Connections come from the PG* environment (PGHOST, PGPORT, PGUSER), as psql's do.
import pg from 'pg';
import { parseArgs } from 'node:util';
import { defaultTag, getPostgreSQLEventStore } from '@event-driven-io/emmett-postgresql';

const streams = 100000;
const { positionals, values: options } = parseArgs({
  allowPositionals: true,
  options: {
    variant: { type: 'string' },
    database: { type: 'string' },
    seconds: { type: 'string', default: '5' },
    clients: { type: 'string', default: '16' },
    'synchronous-commit': { type: 'string', default: 'on' },
    run: { type: 'string', default: '0' },
  },
});
const command = positionals[0];
const clients = Number(options.clients);

function connectionString(database) {
  const host = process.env.PGHOST ?? '/var/run/postgresql';
  const port = process.env.PGPORT ?? '5432';
  const user = process.env.PGUSER ?? 'postgres';
  return `postgresql://${encodeURIComponent(user)}@/${encodeURIComponent(database)}` +
    `?host=${encodeURIComponent(host)}&port=${port}`;
}

const pool = new pg.Pool({
  application_name: 'bench/peers/append.mjs',
  database: options.database,
  max: clients,
  options: `-c synchronous_commit=${options['synchronous-commit']}`,
});

function randomStream() {
  return 'stream-' + (1 + Math.floor(Math.random() * streams));
}

// appender(loop, store): the function one loop calls for each append (store: Emmett's event store).
function appender(loop, store) {
  const run = Number(options.run);
  let n = 0;
  switch (options.variant) {
    case 'raw':
      return () => {
        n += 1;
        // The version bench/workloads/raw_one.pgbench computes: unique across runs and loops.
        const version = run * 1000000000 + (loop + 1) * 10000000 + n;
        return pool.query({
          name: 'raw_one',
          text: `INSERT INTO bench.raw_events (stream_id, stream_version, event_id, event_type, data)
                 VALUES ($1, $2, gen_random_uuid(), 'Ticked', '{"n": 1}')`,
          values: [randomStream(), version],
        });
      };
    case 'eventsource':
      return () => pool.query({
        name: 'append_one',
        text: `SELECT eventsource.append($1, 'Ticked', '{"n": 1}')`,
        values: [randomStream()],
      });
    case 'emmett':
      return () => store.appendToStream(randomStream(), [{ type: 'Ticked', data: { n: 1 } }]);
    default:
      throw new Error(`unknown variant ${options.variant}`);
  }
}

// openConnections(): every connection of the pool opened (as pgbench connects before its clock
// starts), with the statement timeout Emmett's schema migration leaves set on the session it ran in
// (dumbo's migration lock sets it to 10 s) reset.
async function openConnections() {
  const connections = await Promise.all(Array.from({ length: clients }, () => pool.connect()));
  await Promise.all(connections.map((connection) => connection.query('RESET statement_timeout')));
  connections.forEach((connection) => connection.release());
}

// emmettStore(): Emmett's event store on the pool, its schema migrated.
async function emmettStore() {
  const store = getPostgreSQLEventStore(connectionString(options.database), { connectionOptions: { pool } });
  await store.schema.migrate();
  return store;
}

async function run() {
  const store = options.variant === 'emmett' ? await emmettStore() : undefined;
  await openConnections();
  const cpuBefore = process.cpuUsage();
  const deadline = process.hrtime.bigint() + BigInt(Number(options.seconds) * 1e9);
  let transactions = 0;
  let errors = 0;
  let busy = 0n;
  let firstError;
  const loops = Array.from({ length: clients }, async (_, loop) => {
    const append = appender(loop, store);
    while (process.hrtime.bigint() < deadline) {
      const start = process.hrtime.bigint();
      try {
        await append();
        transactions += 1;
      } catch (error) {
        errors += 1;
        firstError ??= error;
      }
      busy += process.hrtime.bigint() - start;
    }
  });
  await Promise.all(loops);
  const cpu = process.cpuUsage(cpuBefore);
  if (firstError && transactions === 0) throw firstError;
  if (firstError) console.error(`first error of ${errors}: ${firstError.message}`);
  const appends = Math.max(transactions + errors, 1);
  const latency = Number(busy) / 1e6 / appends;
  console.log(`${transactions} ${errors} ${latency.toFixed(3)} ${((cpu.user + cpu.system) / appends).toFixed(1)}`);
}

async function setup() {
  await emmettStore();
  await openConnections();
  await pool.query(`
    SELECT count(*)
      FROM generate_series(1, ${streams}) AS n,
           LATERAL emt_append_to_stream(ARRAY[gen_random_uuid()::text], ARRAY['{}'::jsonb], ARRAY['{}'::jsonb],
                                        ARRAY['1'], ARRAY['Created'], ARRAY['E'], 'stream-' || n, 'stream',
                                        NULL, $1)`, [defaultTag]);
}

try {
  if (command === 'setup') await setup();
  else if (command === 'run') await run();
  else throw new Error('usage: append.mjs setup|run [options]');
} finally {
  await pool.end();
}
