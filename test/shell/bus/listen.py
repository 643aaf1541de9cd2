#!/usr/bin/python3
# listen.py: a LISTEN client for the notifier tests. Listens on the channels given, prints each
# notification as "CHANNEL PAYLOAD UNIX_TIME" as it arrives, and exits after --count notifications
# or --timeout seconds. Prints "ready" once it listens, so a test can start appending.
import argparse
import select
import sys
import time

import psycopg

parser = argparse.ArgumentParser()
parser.add_argument("--dbname", required=True)
parser.add_argument("--channel", action="append", required=True)
parser.add_argument("--count", type=int, default=1)
parser.add_argument("--timeout", type=float, default=10)
args = parser.parse_args()

start = time.monotonic()
received = []


def on_notify(notification):
    received.append(notification)
    print(notification.channel, notification.payload, f"{time.time():.3f}", flush=True)


# psycopg 3.1 (Debian 12) has no timeout on notifies(): wait for the socket with select, then let
# a trivial query deliver what arrived to the handler.
with psycopg.connect(dbname=args.dbname, autocommit=True) as connection:
    connection.add_notify_handler(on_notify)
    for channel in args.channel:
        connection.execute(f'LISTEN "{channel}"')
    print("ready", flush=True)
    while len(received) < args.count:
        remaining = args.timeout - (time.monotonic() - start)
        if remaining <= 0:
            break
        select.select([connection.fileno()], [], [], remaining)
        connection.execute("SELECT")
sys.exit(0)
