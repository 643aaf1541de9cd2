#!/usr/bin/python3
# examples/python/subscriber.py: a subscriber to the eventsource bus, with psycopg 3 (Debian's
# python3-psycopg). It drains its subscription with eventsource.poll, acknowledges each batch with
# eventsource.ack (with the batch's lease), then waits: for a NOTIFY on the subscription's channel (--mode listen, polling
# anyway after --listen-timeout seconds in case a notification is missed), or for --poll-interval
# seconds (--mode poll: no LISTEN, which works behind pgbouncer's transaction pooling too).
# It prints one line per event: "received <stream_id> <stream_version> <event_type>".
#
#   ./subscriber.py --subscription billing --category order     # libpq's PG* variables pick the database
#
# The subscription is created (from the beginning of the log) unless it exists.
import argparse
import os
import select
import sys
import time

import psycopg
from psycopg import sql
from psycopg.rows import namedtuple_row

parser = argparse.ArgumentParser(description="Print the events of an eventsource subscription.")
parser.add_argument("--dsn", default=os.environ.get("EVENTSOURCE_DSN", ""),
                    help="libpq connection string (default: $EVENTSOURCE_DSN, then the PG* variables)")
parser.add_argument("--subscription", required=True, help="subscription name")
parser.add_argument("--category", help="category to subscribe to, when the subscription is created")
parser.add_argument("--mode", choices=["listen", "poll"], default="listen")
parser.add_argument("--poll-interval", type=float, default=0.5, help="seconds between polls (poll mode)")
parser.add_argument("--listen-timeout", type=float, default=30, help="poll at least this often (listen mode)")
parser.add_argument("--batch-size", type=int, default=100)
parser.add_argument("--until-count", type=int, help="exit after processing this many events")
parser.add_argument("--timeout", type=float, help="exit after this many seconds (status 1 if --until-count was not reached)")
args = parser.parse_args()


def process(event):
    """The application's work for one event; this example only prints it."""
    print("received", event.stream_id, event.stream_version, event.event_type, flush=True)


# Autocommit: every poll and every ack is a transaction of its own.
conn = psycopg.connect(args.dsn, autocommit=True, row_factory=namedtuple_row)
conn.execute("""SELECT eventsource.create_subscription(%(name)s, %(category)s)
                 WHERE NOT EXISTS (SELECT FROM eventsource.subscriptions WHERE name = %(name)s)""",
             {"name": args.subscription, "category": args.category})
category = conn.execute("SELECT category FROM eventsource.subscriptions WHERE name = %s",
                        (args.subscription,)).fetchone().category

# A notification that arrives while a query runs is handed to this handler, not left on the socket.
notified = False


def on_notify(notify):
    global notified
    notified = True


if args.mode == "listen":
    channel = "eventsource" if category is None else f"eventsource.{category}"
    conn.add_notify_handler(on_notify)
    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))  # before the first poll
    print(f"listening on {channel}", file=sys.stderr, flush=True)
else:
    print(f"polling every {args.poll_interval}s", file=sys.stderr, flush=True)

deadline = None if args.timeout is None else time.monotonic() + args.timeout
count = 0
while True:
    notified = False
    while True:  # poll and process until the subscription is drained
        batch = conn.execute("SELECT * FROM eventsource.poll(%s, %s)",
                             (args.subscription, args.batch_size)).fetchall()
        if not batch:
            break
        for event in batch:
            process(event)
        # The lease poll returned: if it ran out and another consumer polled the batch meanwhile,
        # the ack fails with 55006 and the batch is that consumer's (work done in the ack's
        # transaction would roll back with it); poll again.
        try:
            conn.execute("SELECT eventsource.ack(%s, %s::eventsource.checkpoint, 0, %s)",
                         (args.subscription, str(batch[-1].checkpoint), batch[-1].lease))
        except psycopg.errors.ObjectInUse as error:
            print("batch not acknowledged:", error.diag.message_primary, file=sys.stderr, flush=True)
            continue
        count += len(batch)
        if args.until_count is not None and count >= args.until_count:
            sys.exit(0)

    wait = args.listen_timeout if args.mode == "listen" else args.poll_interval
    if deadline is not None:
        wait = min(wait, deadline - time.monotonic())
        if wait <= 0:
            sys.exit(1 if args.until_count is not None else 0)
    if args.mode == "poll":
        time.sleep(wait)
    elif not notified:
        # Readable: a notification is waiting; the next poll reads it off the socket.
        select.select([conn], [], [], wait)
