#!/usr/bin/python3
"""bench/latency_subscriber.py: the LISTEN subscriber of the bus benchmark (bench/run).

A real subscriber: it LISTENs on channel "eventsource" and, on each notification, reads the new
events with eventsource.read_all after its own checkpoint (pages of 1,000 until a short page),
starting at the head of the gap-safe log as it stands when it connects. Events whose stream_id
starts with --timed-prefix carry data.sent_us, the writer's clock_timestamp() in epoch
microseconds taken at the end of its append statement; for each of them the subscriber records
(the time read_all returned it) - sent_us. That timestamp precedes the commit and its WAL flush,
so the latency measured is: commit + notifier wake-up + NOTIFY + delivery + the read. For each such
event it also records the subscriber's own share: (the time read_all returned it) - (the time the
notification that prompted the read arrived).

With --listen-only it LISTENs on --channel and only consumes the notifications (the listener of
the raw INSERT + NOTIFY baseline).

It writes --ready once it listens, runs until SIGTERM or SIGINT, then waits until no
notification has come for --quiet seconds, reads once more without a notification (events
visible but never notified: "unnotified"), and writes one line to --result:

    timed_events p50_ms p99_ms max_ms notifications reads events_read unnotified read_p50_ms read_p99_ms

(the percentiles are NULL when no timed event arrived; read_*: the subscriber's share). Connection settings come from the libpq
environment (PGHOST, PGPORT, PGDATABASE...) or --dsn. Runs under /usr/bin/python3 with the Debian
package python3-psycopg.
"""
import argparse
import math
import select
import signal
import sys
import time

import psycopg

PAGE = 1000
READ = ("SELECT checkpoint::text, stream_id, (data->>'sent_us')::bigint"
        "  FROM eventsource.read_all(%s::eventsource.checkpoint, %s)")
HEAD = ("SELECT eventsource.checkpoint(transaction_id, global_position)::text FROM eventsource.events"
        " WHERE transaction_id < (SELECT eventsource.log_horizon())"
        " ORDER BY transaction_id DESC, global_position DESC LIMIT 1")


def percentile(ordered, fraction):
    """Nearest-rank percentile of a sorted list."""
    return ordered[max(1, math.ceil(len(ordered) * fraction)) - 1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default="")
    parser.add_argument("--channel", default="eventsource")
    parser.add_argument("--listen-only", action="store_true")
    parser.add_argument("--timed-prefix", default=None,
                        help="stream_id prefix of the events whose latency is measured")
    parser.add_argument("--ready", required=True, help="file written once listening")
    parser.add_argument("--result", required=True, help="file the result line is written to")
    parser.add_argument("--quiet", type=float, default=1.0)
    args = parser.parse_args()

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))

    conn = psycopg.connect(args.dsn, autocommit=True, application_name="bench subscriber")
    pending = []                       # arrival times of the notifications seen while a query ran
    conn.add_notify_handler(lambda n: pending.append(time.time_ns() // 1000))
    conn.execute(f'LISTEN "{args.channel}"')
    after = None if args.listen_only else conn.execute(HEAD).fetchone()
    after = after[0] if after else None
    with open(args.ready, "w") as ready:
        ready.write(f"{after}\n")

    latencies_us = []
    read_us = []                       # notification arrived -> read_all returned, per timed event
    woke_us = 0
    notifications = reads = events_read = 0
    prefix = args.timed_prefix

    def read_new(timed=True):
        """Reads the events after the checkpoint, page by page; returns how many."""
        nonlocal after, reads, events_read
        count = 0
        while True:
            rows = conn.execute(READ, (after, PAGE)).fetchall()
            received_us = time.time_ns() // 1000
            reads += 1
            count += len(rows)
            if timed and prefix is not None:
                for _, stream_id, sent_us in rows:
                    if sent_us is not None and stream_id.startswith(prefix):
                        latencies_us.append(received_us - sent_us)
                        read_us.append(received_us - woke_us)
            if rows:
                after = rows[-1][0]
            if len(rows) < PAGE:
                break
        events_read += count
        return count

    sock = conn.pgconn.socket
    last_notification = time.monotonic()
    while True:
        arrived = len(pending)
        if arrived:
            woke_us = pending[0]
            pending.clear()
        else:
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable:
                woke_us = time.time_ns() // 1000
                conn.pgconn.consume_input()
                while conn.pgconn.notifies() is not None:
                    arrived += 1
        if arrived:
            notifications += arrived
            last_notification = time.monotonic()
            if not args.listen_only:
                read_new()
        elif stopping and time.monotonic() - last_notification >= args.quiet:
            break

    # The last read's events are counted, not timed: no notification brought them.
    unnotified = 0 if args.listen_only else read_new(timed=False)
    conn.close()

    latencies_us.sort()
    read_us.sort()
    if latencies_us:
        p50, p99, worst, read_p50, read_p99 = (
            f"{v / 1000:.3f}" for v in (percentile(latencies_us, 0.5), percentile(latencies_us, 0.99), latencies_us[-1],
                                        percentile(read_us, 0.5), percentile(read_us, 0.99)))
    else:
        p50 = p99 = worst = read_p50 = read_p99 = "NULL"
    with open(args.result, "w") as result:
        result.write(f"{len(latencies_us)} {p50} {p99} {worst} {notifications} {reads} {events_read} {unnotified}"
                     f" {read_p50} {read_p99}\n")


if __name__ == "__main__":
    sys.exit(main())
