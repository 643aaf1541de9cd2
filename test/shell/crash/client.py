#!/usr/bin/python3
# client.py: a client for crash_restart.sh that runs until its connection fails (the server is
# killed under it), writing what it did to --out, one line per step, flushed at once:
#   writer:   "try<TAB>BATCH<TAB>STREAM<TAB>IDS" before each call, and once the call returned
#             "ack<TAB>BATCH<TAB>STREAM<TAB>VERSION<TAB>POSITIONS<TAB>IDS" (ids and positions
#             comma-separated, positions empty for a single append, which returns no position);
#             single appends and append_events batches of 3 to 5, with event ids of its own.
#   consumer: polls subscription --subscription and acks each batch; "ack<TAB>CHECKPOINT" once the
#             ack returned.
# Autocommit: a call that returned has committed.
import argparse
import random
import sys
import uuid

import psycopg
from psycopg.types.json import Jsonb

parser = argparse.ArgumentParser()
parser.add_argument("--dbname", required=True)
parser.add_argument("--mode", choices=["writer", "consumer"], required=True)
parser.add_argument("--name", required=True)
parser.add_argument("--out", required=True)
parser.add_argument("--streams", type=int, default=36)
parser.add_argument("--subscription", default="crash-sub")
args = parser.parse_args()

out = open(args.out, "a", buffering=1)


def log(*fields):
    out.write("\t".join(str(f) for f in fields) + "\n")
    out.flush()


def writer(connection):
    sequence = 0
    while True:
        sequence += 1
        batch = f"{args.name}-{sequence}"
        stream = f"crash-{random.randint(1, args.streams)}"
        if random.random() < 0.5:
            ids = [str(uuid.uuid4())]
            log("try", batch, stream, ",".join(ids))
            version = connection.execute(
                "SELECT eventsource.append(%s, 'Ticked', %s, %s, NULL, %s::uuid)",
                (stream, Jsonb({"batch": batch}), Jsonb({"client": args.name}), ids[0]),
            ).fetchone()[0]
            log("ack", batch, stream, version, "", ",".join(ids))
        else:
            ids = [str(uuid.uuid4()) for _ in range(random.randint(3, 5))]
            events = [{"type": "Tocked", "data": {"batch": batch, "n": n}, "id": i}
                      for n, i in enumerate(ids)]
            log("try", batch, stream, ",".join(ids))
            version, positions = connection.execute(
                "SELECT stream_version, global_positions FROM eventsource.append_events(%s, %s)",
                (stream, Jsonb(events)),
            ).fetchone()
            log("ack", batch, stream, version, ",".join(str(p) for p in positions), ",".join(ids))


def consumer(connection):
    while True:
        rows = connection.execute(
            "SELECT checkpoint::text, lease FROM eventsource.poll(%s, 20, lease_seconds => 2)", (args.subscription,)
        ).fetchall()
        if rows:
            checkpoint, lease = rows[-1]
            connection.execute("SELECT eventsource.ack(%s, %s::eventsource.checkpoint, 0, %s)",
                               (args.subscription, checkpoint, lease))
            log("ack", checkpoint)


try:
    with psycopg.connect(dbname=args.dbname, autocommit=True) as connection:
        log("connected")
        (writer if args.mode == "writer" else consumer)(connection)
except psycopg.Error as error:
    # The expected end: the server went away.
    log("failed", str(error).splitlines()[0] if str(error) else type(error).__name__)
    sys.exit(0)
