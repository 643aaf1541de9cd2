#!/usr/bin/env node
// examples/node/subscriber.js: a subscriber to the eventsource bus, with the pg package (npm ci).
// It drains its subscription with eventsource.poll, acknowledges each batch with eventsource.ack
// (with the batch's lease),
// then waits: for a NOTIFY on the subscription's channel (--mode listen, polling anyway after
// --listen-timeout seconds in case a notification is missed), or for --poll-interval seconds
// (--mode poll: no LISTEN, which works behind pgbouncer's transaction pooling too).
// It prints one line per event: "received <stream_id> <stream_version> <event_type>".
//
//   node subscriber.js --subscription billing --category order     # libpq's PG* variables pick the database
//
// The subscription is created (from the beginning of the log) unless it exists.
'use strict';
const { parseArgs } = require('node:util');
const { Client } = require('pg');

const { values: options } = parseArgs({
  options: {
    dsn: { type: 'string', default: process.env.EVENTSOURCE_DSN },
    subscription: { type: 'string' },
    category: { type: 'string' },
    mode: { type: 'string', default: 'listen' },
    'poll-interval': { type: 'string', default: '0.5' },
    'listen-timeout': { type: 'string', default: '30' },
    'batch-size': { type: 'string', default: '100' },
    'until-count': { type: 'string' },
    timeout: { type: 'string' },
  },
});
if (!options.subscription || !['listen', 'poll'].includes(options.mode)) {
  console.error('usage: subscriber.js --subscription NAME [--category CATEGORY] [--mode listen|poll]\n' +
    '  [--poll-interval S] [--listen-timeout S] [--batch-size N] [--until-count N] [--timeout S] [--dsn URL]');
  process.exit(2);
}
const name = options.subscription;
const untilCount = options['until-count'] === undefined ? null : Number(options['until-count']);
const deadline = options.timeout === undefined ? null : Date.now() + Number(options.timeout) * 1000;

// The application's work for one event; this example only prints it.
function processEvent(event) {
  console.log(`received ${event.stream_id} ${event.stream_version} ${event.event_type}`);
}

async function main() {
  // No BEGIN: every poll and every ack is a transaction of its own.
  const client = new Client(options.dsn ? { connectionString: options.dsn } : undefined);
  await client.connect();
  try {
    return await subscribe(client);
  } finally {
    await client.end();
  }
}

async function subscribe(client) {
  await client.query(`SELECT eventsource.create_subscription($1, $2)
                       WHERE NOT EXISTS (SELECT FROM eventsource.subscriptions WHERE name = $1)`,
                     [name, options.category ?? null]);
  const { rows: [{ category }] } = await client.query(
    'SELECT category FROM eventsource.subscriptions WHERE name = $1', [name]);

  // Set by every notification, whenever it arrives: one during a poll means "poll again".
  let notified = false;
  let wake = () => {};
  if (options.mode === 'listen') {
    const channel = category === null ? 'eventsource' : `eventsource.${category}`;
    client.on('notification', () => { notified = true; wake(); });
    await client.query(`LISTEN ${client.escapeIdentifier(channel)}`); // before the first poll
    console.error(`listening on ${channel}`);
  } else {
    console.error(`polling every ${options['poll-interval']}s`);
  }

  let count = 0;
  for (;;) {
    notified = false;
    for (;;) { // poll and process until the subscription is drained
      const { rows: batch } = await client.query(
        'SELECT * FROM eventsource.poll($1, $2)',
        [name, Number(options['batch-size'])]);
      if (batch.length === 0) break;
      batch.forEach(processEvent);
      // The lease poll returned: if it ran out and another consumer polled the batch meanwhile, the
      // ack fails with 55006 and the batch is that consumer's (work done in the ack's transaction
      // would roll back with it); poll again.
      try {
        await client.query('SELECT eventsource.ack($1, $2::eventsource.checkpoint, 0, $3)',
          [name, batch.at(-1).checkpoint, batch.at(-1).lease]);
      } catch (error) {
        if (error.code !== '55006') throw error;
        console.error(`batch not acknowledged: ${error.message}`);
        continue;
      }
      count += batch.length;
      if (untilCount !== null && count >= untilCount) return 0;
    }

    let wait = Number(options.mode === 'listen' ? options['listen-timeout'] : options['poll-interval']) * 1000;
    if (deadline !== null) {
      wait = Math.min(wait, deadline - Date.now());
      if (wait <= 0) return untilCount === null ? 0 : 1;
    }
    if (options.mode === 'poll' || !notified) {
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, wait);
        if (options.mode === 'listen') wake = () => { clearTimeout(timer); resolve(); };
      });
      wake = () => {};
    }
  }
}

main().then((status) => { process.exitCode = status; }, (error) => {
  console.error(error.message);
  process.exitCode = 1;
});
