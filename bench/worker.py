#!/usr/bin/python3
"""bench/worker.py: the background worker's benchmarks, LISTEN latency and the visibility horizon.

Runs against the cluster the libpq environment names (PGHOST, PGPORT, PGUSER...), as a superuser,
with eventsource in shared_preload_libraries, on the server's own host (the LISTEN latency compares
the server's clock_timestamp() with this process's clock). It creates its own databases
(es_bench_listen, es_bench_horizon_a, es_bench_horizon_b, dropped first if a run left them and
always at the end) and prints one line per measurement:

  listen_latency phase=PHASE median_ms= p99_ms= max_ms= events= notifications= unannounced= ...
  visibility_horizon variant=VARIANT median_ms= p99_ms= max_ms= probes= ...

1. listen_latency. A client LISTENs on channel "eventsource" (the worker's NOTIFY, whose payload
   is the checkpoint of the newest event it announces) while pgbench appends at a paced 1,000 events
   a second (bench/workloads/append_timed.pgbench: 4 clients, each event's data carrying the
   writer's clock_timestamp() as sent_us, read before the insert and so before the commit and its
   WAL flush). For each appended event the latency is (the arrival of the first notification whose
   checkpoint covers it) - sent_us: an event appended while the worker is busy elsewhere waits for
   the worker's next NOTIFY, however fresh the event that one names. newest_* is the definition by
   notification: (its arrival) - sent_us of the event its payload names. After the load stops the
   client waits up to --drain-seconds for the phase's last event to be announced; events never
   announced count as unannounced and enter the figures with the wait up to then.
   longest_silence_ms: the longest time without a notification, from the phase's start to its last
   notification. rate: the appends a second pgbench reached. Three phases:
     idle                the worker has nothing but appends to announce;
     projection_catchup  an async projection (handler: pg_sleep(0.005), no writes) created at the
                         phase's start over a backlog of 20,000 events, catching up meanwhile;
     scavenge            the worker's background scavenge removes 400,000 hidden events (400
                         deleted streams of 1,000), eventsource.scavenge_interval set to 1 s when
                         the phase starts (it is 0, off, from the start of the benchmark until
                         then, so no scavenge runs in the other phases). The phase starts after a
                         CHECKPOINT and a sync, so that the kernel's writeback of what its setup
                         wrote does not stall the commits during the phase.
2. visibility_horizon. A client of database B appends an event (one a probe, every 10 ms) and
   polls eventsource.read_all of B every millisecond until the event is there; the probe's time is
   from the append's return (its commit) to the read that returns it. Variant baseline: nothing
   runs in database A. Variant projection_catchup: an async projection in database A catches up on
   20,000 events with a handler that inserts a row (so the worker's transaction holds a
   transaction id, which is the whole cluster's visibility horizon) and sleeps 5 ms; measured once
   the projection has committed its first events. ratio_* = catch-up / baseline, same run.

The worker serves only the databases in eventsource.worker_databases (PGC_SIGHUP) in releases
that need the list: the benchmark appends an event in each database it needs served and, if no
notification comes within 3 s, adds the database to the list with ALTER SYSTEM and
pg_reload_conf(). It puts eventsource.worker_databases and eventsource.scavenge_interval back as
postgresql.auto.conf had them when it ends, however it ends (an error, a timeout, SIGINT/SIGTERM).

  bench/worker.py                       both benchmarks, about 3 minutes
  bench/worker.py --only listen_latency (or visibility_horizon)
  bench/worker.py --seconds 10          shorter phases (default 20 for listen_latency, 15 for the
                                        horizon variants)

Needs /usr/bin/python3 with the Debian package python3-psycopg, and pgbench on the PATH.
"""
import argparse
import bisect
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time

import psycopg
from psycopg import sql

HERE = os.path.dirname(os.path.abspath(__file__))
APPEND_TIMED = os.path.join(HERE, "workloads", "append_timed.pgbench")
LISTEN_DB = "es_bench_listen"
HORIZON_A = "es_bench_horizon_a"
HORIZON_B = "es_bench_horizon_b"
DATABASES = (LISTEN_DB, HORIZON_A, HORIZON_B)
RATE = 1000                 # appends a second in listen_latency
BACKLOG = 20000             # events an async projection finds when it is created
HIDDEN_STREAMS = 400        # deleted streams of HIDDEN_PER_STREAM events: what scavenge removes
HIDDEN_PER_STREAM = 1000
STATEMENT_TIMEOUT = "120s"  # no statement of the benchmark's own waits longer
PROBE_TIMEOUT = 60.0        # the longest one visibility probe waits for its event
SETTINGS = ("eventsource.worker_databases", "eventsource.scavenge_interval")


def say(message):
    print(time.strftime("%H:%M:%S"), message, file=sys.stderr, flush=True)


def connect(dbname, **kwargs):
    return psycopg.connect(dbname=dbname, autocommit=True, application_name="bench worker",
                           options=f"-c statement_timeout={STATEMENT_TIMEOUT}", **kwargs)


def parse_checkpoint(text):
    """'(742,15)' -> (742, 15): checkpoints order as these tuples do."""
    transaction_id, global_position = text.strip("()").split(",")
    return int(transaction_id), int(global_position)


def percentile(ordered, fraction):
    """Nearest-rank percentile of a sorted, non-empty list."""
    return ordered[max(1, math.ceil(len(ordered) * fraction)) - 1]


def summary(values_ms, prefix=""):
    """median_ms= p99_ms= max_ms= of a list of milliseconds (NULL when empty), names prefixed."""
    if not values_ms:
        return f"{prefix}median_ms=NULL {prefix}p99_ms=NULL {prefix}max_ms=NULL"
    ordered = sorted(values_ms)
    return (f"{prefix}median_ms={percentile(ordered, 0.5):.1f} {prefix}p99_ms={percentile(ordered, 0.99):.1f}"
            f" {prefix}max_ms={ordered[-1]:.1f}")


class Cluster:
    """The maintenance connection: databases, settings, and putting both back."""

    def __init__(self):
        self.conn = connect(os.environ.get("PGDATABASE", "postgres"))
        self.created = []
        # What postgresql.auto.conf says now (None: nothing), to write back at the end.
        self.saved = {name: self.value("SELECT setting FROM pg_catalog.pg_file_settings"
                                       " WHERE name = %s AND sourcefile LIKE '%%postgresql.auto.conf'"
                                       " ORDER BY seqno DESC LIMIT 1", name)
                      for name in SETTINGS}
        self.changed = set()

    def value(self, query, *parameters):
        row = self.conn.execute(query, parameters).fetchone()
        return row[0] if row else None

    def create_database(self, name):
        self.drop_database(name)
        self.conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.created.append(name)
        with connect(name) as conn:
            conn.execute("CREATE EXTENSION eventsource")

    def drop_database(self, name):
        self.conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def set(self, name, value):
        """ALTER SYSTEM SET name = value (None: RESET), and reload."""
        self.changed.add(name)
        if value is None:
            self.conn.execute(sql.SQL("ALTER SYSTEM RESET {}").format(sql.Identifier(name)))
        else:
            self.conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
        self.conn.execute("SELECT pg_catalog.pg_reload_conf()")

    def restore(self):
        for name in sorted(self.changed):
            self.set(name, self.saved[name])
            say(f"{name} put back to {self.saved[name]!r} (postgresql.auto.conf)"
                if self.saved[name] is not None else f"{name} reset (no postgresql.auto.conf entry)")
        self.changed.clear()

    def cleanup(self):
        # A fresh connection: an interrupt may have left the old one in the middle of a statement.
        self.conn.close()
        self.conn = connect(os.environ.get("PGDATABASE", "postgres"))
        for name in reversed(self.created):
            try:
                self.drop_database(name)
            except psycopg.Error as error:
                say(f"could not drop database {name}: {error}")
        self.created.clear()
        self.restore()


def wait_for_notification(conn, deadline):
    """Waits until a notification arrives on conn (LISTENing) or deadline; whether one came."""
    sock = conn.pgconn.socket
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], 0.1)
        if readable:
            conn.pgconn.consume_input()
            if conn.pgconn.notifies() is not None:
                return True
    return False


def bus_answers(database, seconds):
    """Whether the worker announces an event appended in database within seconds."""
    with connect(database) as conn:
        conn.execute("LISTEN eventsource")
        with connect(database) as writer:
            writer.execute("SELECT eventsource.append('bench-ready', 'Ready', '{}')")
        return wait_for_notification(conn, time.monotonic() + seconds)


def serve(cluster, databases):
    """Makes sure the worker serves databases: adds those it does not to worker_databases."""
    missing = [database for database in databases if not bus_answers(database, 3)]
    if not missing:
        return
    listed = cluster.value("SELECT current_setting('eventsource.worker_databases')")
    names = [name.strip() for name in listed.split(",") if name.strip()] + missing
    say(f"the worker does not serve {', '.join(missing)}: ALTER SYSTEM SET eventsource.worker_databases"
        f" = '{', '.join(names)}' and reload")
    cluster.set("eventsource.worker_databases", ", ".join(names))
    for database in missing:
        if not bus_answers(database, 30):
            raise RuntimeError(f"the worker does not announce events of database {database} 30 s after"
                               " it was added to eventsource.worker_databases")


def append_backlog(conn, prefix, streams, per_stream):
    """streams streams of per_stream events each, a transaction per stream."""
    conn.execute(sql.SQL(
        "DO $$ BEGIN FOR s IN 1..{streams} LOOP"
        "  PERFORM eventsource.append_events({prefix} || s, (SELECT jsonb_agg(jsonb_build_object("
        "      'type', 'Backlogged', 'data', jsonb_build_object('n', n))) FROM generate_series(1, {per_stream}) AS n));"
        "  COMMIT;"
        " END LOOP; END $$").format(streams=sql.Literal(streams), prefix=sql.Literal(prefix),
                                    per_stream=sql.Literal(per_stream)))


class Listener(threading.Thread):
    """LISTENs on "eventsource" and records (arrival in epoch us, payload checkpoint) per notification."""

    def __init__(self, database):
        super().__init__(daemon=True)
        self.conn = connect(database)
        self.conn.execute("LISTEN eventsource")
        self.notifications = []      # appended only by this thread; read by others between phases
        self.newest = (0, 0)
        self.stopping = threading.Event()
        self.start()

    def run(self):
        pgconn = self.conn.pgconn
        sock = pgconn.socket
        while not self.stopping.is_set():
            readable, _, _ = select.select([sock], [], [], 0.1)
            if not readable:
                continue
            arrived_us = time.time_ns() // 1000
            pgconn.consume_input()
            while (notification := pgconn.notifies()) is not None:
                try:
                    checkpoint = parse_checkpoint(notification.extra.decode())
                except ValueError:
                    continue     # anyone may NOTIFY on "eventsource": not the worker's
                self.notifications.append((arrived_us, checkpoint))
                self.newest = max(self.newest, checkpoint)

    def stop(self):
        self.stopping.set()
        self.join(5)
        self.conn.close()


class Load:
    """pgbench appending append_timed.pgbench at RATE a second for seconds, in the background."""

    def __init__(self, database, phase, seconds):
        self.seconds = seconds
        self.process = subprocess.Popen(
            ["pgbench", "-n", "-M", "prepared", "-c", "4", "-j", "2", "-R", str(RATE), "-T", str(seconds),
             "-D", f"run={phase}", "-f", APPEND_TIMED, database],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def wait(self):
        """Waits for pgbench (at most its time and a minute); the rate it reached."""
        try:
            output, _ = self.process.communicate(timeout=self.seconds + 60)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError("pgbench did not end a minute after its time")
        if self.process.returncode != 0:
            raise RuntimeError(f"pgbench failed:\n{output}")
        for line in output.splitlines():
            if line.startswith("number of transactions actually processed:"):
                return int(line.split(":")[1].split("/")[0]) / self.seconds
        raise RuntimeError(f"pgbench said nothing about transactions:\n{output}")

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def listen_phase(conn, listener, phase, seconds, drain_seconds, during=None):
    """Appends at RATE for seconds while during() (if given) runs, then measures; returns the line."""
    first = len(listener.notifications)
    started_us = time.time_ns() // 1000
    load = Load(LISTEN_DB, phase, seconds)
    try:
        if during is not None:
            during()
        rate = load.wait()
    finally:
        load.kill()
    events = conn.execute(
        "SELECT eventsource.checkpoint(transaction_id, global_position)::text, (data->>'sent_us')::bigint"
        "  FROM eventsource.events WHERE stream_id LIKE %s", (f"lat-{phase}-%",)).fetchall()
    events = sorted((parse_checkpoint(checkpoint), sent_us) for checkpoint, sent_us in events)
    last = events[-1][0] if events else (0, 0)
    deadline = time.monotonic() + drain_seconds
    while listener.newest < last and time.monotonic() < deadline:
        time.sleep(0.05)
    drained_us = time.time_ns() // 1000
    notifications = listener.notifications[first:]

    # covered[i]: the newest checkpoint announced by notification i or one before it.
    covered, newest = [], (0, 0)
    for _, checkpoint in notifications:
        newest = max(newest, checkpoint)
        covered.append(newest)
    latencies, unannounced = [], 0
    for checkpoint, sent_us in events:
        i = bisect.bisect_left(covered, checkpoint)
        if i == len(covered):
            unannounced += 1
            latencies.append((drained_us - sent_us) / 1000)
        else:
            latencies.append((notifications[i][0] - sent_us) / 1000)
    sent_by_checkpoint = dict(events)
    by_notification = [(arrived_us - sent_by_checkpoint[checkpoint]) / 1000
                       for arrived_us, checkpoint in notifications if checkpoint in sent_by_checkpoint]
    arrivals = [started_us] + [arrived_us for arrived_us, _ in notifications]
    gap = max((b - a for a, b in zip(arrivals, arrivals[1:])), default=0) / 1000
    return (f"listen_latency phase={phase} {summary(latencies)} events={len(events)}"
            f" notifications={len(notifications)} unannounced={unannounced} rate={rate:.0f}"
            f" {summary(by_notification, 'newest_')} longest_silence_ms={gap:.0f}")


def settle_writes(conn):
    """Writes the setup's dirty pages out (CHECKPOINT, then sync): the scavenge phase's setup (400,000
    events appended, their streams deleted, the events counted) leaves up to 170 MB dirty in the
    kernel's page cache, which the kernel writes back in one burst a few seconds into the phase. A
    commit's WAL flush then waits behind it: every commit of the cluster stalls for 200-470 ms, and
    so does every notification, whatever the worker does (bench/results/2026-12-02-listen-stall.md)."""
    conn.execute("CHECKPOINT")
    os.sync()


def listen_latency(cluster, seconds, drain_seconds):
    say(f"listen_latency: database {LISTEN_DB}, a backlog of {BACKLOG} events")
    cluster.create_database(LISTEN_DB)
    conn = connect(LISTEN_DB)
    conn.execute("CREATE SCHEMA bench_worker")
    conn.execute("CREATE FUNCTION bench_worker.sleep_handler(e eventsource.event) RETURNS void"
                 " LANGUAGE sql AS 'SELECT pg_catalog.pg_sleep(0.005)'")
    append_backlog(conn, "backlog-", BACKLOG // 1000, 1000)
    cluster.set("eventsource.scavenge_interval", "0")
    serve(cluster, [LISTEN_DB])
    listener = Listener(LISTEN_DB)
    try:
        say(f"listen_latency phase idle: {RATE} appends/s for {seconds} s")
        print(listen_phase(conn, listener, "idle", seconds, drain_seconds), flush=True)

        say(f"listen_latency phase projection_catchup: an async projection (5 ms an event) over {BACKLOG}"
            f" events, {RATE} appends/s for {seconds} s")
        def create_projection():
            conn.execute("SELECT eventsource.create_projection('bench-catchup',"
                         " 'bench_worker.sleep_handler(eventsource.event)', mode => 'async')")

        line = listen_phase(conn, listener, "projection_catchup", seconds, drain_seconds, create_projection)
        processed = conn.execute("SELECT events_processed, events_behind FROM eventsource.projection_status"
                                 " WHERE name = 'bench-catchup'").fetchone()
        conn.execute("SELECT eventsource.drop_projection('bench-catchup')")
        print(f"{line} projected={processed[0]} behind={processed[1]}", flush=True)

        say(f"listen_latency phase scavenge: appending {HIDDEN_STREAMS * HIDDEN_PER_STREAM} events and"
            " deleting their streams")
        append_backlog(conn, "hidden-", HIDDEN_STREAMS, HIDDEN_PER_STREAM)
        conn.execute("SELECT count(eventsource.delete_stream('hidden-' || s)) FROM generate_series(1, %s) AS s",
                     (HIDDEN_STREAMS,))
        hidden = "SELECT count(*) FROM eventsource.events WHERE stream_id LIKE 'hidden-%'"
        before = conn.execute(hidden).fetchone()[0]
        settle_writes(conn)
        say(f"listen_latency phase scavenge: scavenge_interval 1 s, {RATE} appends/s for {seconds} s")
        line = listen_phase(conn, listener, "scavenge", seconds, drain_seconds,
                            lambda: cluster.set("eventsource.scavenge_interval", "1s"))
        cluster.set("eventsource.scavenge_interval", "0")
        after = conn.execute(hidden).fetchone()[0]
        print(f"{line} scavenged={before - after} hidden_left={after}", flush=True)
    finally:
        listener.stop()
        conn.close()


def probe(conn, number, after):
    """Appends one event, polls read_all until it is there; (milliseconds, its checkpoint)."""
    stream = f"probe-{number}"
    conn.execute("SELECT eventsource.append(%s, 'Probed', '{}')", (stream,))
    committed = time.monotonic()
    while time.monotonic() - committed < PROBE_TIMEOUT:
        row = conn.execute("SELECT checkpoint::text FROM eventsource.read_all(%s::eventsource.checkpoint, 100)"
                           " WHERE stream_id = %s", (after, stream)).fetchone()
        if row:
            return (time.monotonic() - committed) * 1000, row[0]
        time.sleep(0.001)
    raise RuntimeError(f"an event appended in {HORIZON_B} was not in read_all after {PROBE_TIMEOUT:.0f} s")


def probe_for(conn, seconds, state):
    """Probes every 10 ms for seconds; the list of milliseconds."""
    times = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        state["number"] += 1
        milliseconds, state["after"] = probe(conn, state["number"], state["after"])
        times.append(milliseconds)
        time.sleep(0.01)
    return times


def visibility_horizon(cluster, seconds):
    say(f"visibility_horizon: databases {HORIZON_A} (a backlog of {BACKLOG} events) and {HORIZON_B}")
    cluster.create_database(HORIZON_A)
    cluster.create_database(HORIZON_B)
    with connect(HORIZON_A) as a, connect(HORIZON_B) as b:
        a.execute("CREATE SCHEMA bench_worker")
        a.execute("CREATE TABLE bench_worker.projected (global_position bigint NOT NULL)")
        a.execute("CREATE FUNCTION bench_worker.writing_handler(e eventsource.event) RETURNS void"
                  " LANGUAGE sql AS 'INSERT INTO bench_worker.projected VALUES (e.global_position);"
                  " SELECT pg_catalog.pg_sleep(0.005)'")
        append_backlog(a, "backlog-", BACKLOG // 1000, 1000)
        serve(cluster, [HORIZON_A])
        state = {"number": 0, "after": None}
        probe_for(b, 1, state)       # warm-up: plans, caches

        say(f"visibility_horizon variant baseline: probing {HORIZON_B} for {seconds} s")
        baseline = probe_for(b, seconds, state)
        print(f"visibility_horizon variant=baseline {summary(baseline)} probes={len(baseline)}", flush=True)

        say(f"visibility_horizon variant projection_catchup: an async projection in {HORIZON_A} (an insert"
            f" and 5 ms an event), probing {HORIZON_B} for {seconds} s")
        a.execute("SELECT eventsource.create_projection('bench-catchup',"
                  " 'bench_worker.writing_handler(eventsource.event)', mode => 'async')")
        deadline = time.monotonic() + 60
        processed = "SELECT events_processed FROM eventsource.projection_status WHERE name = 'bench-catchup'"
        while a.execute(processed).fetchone()[0] == 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the async projection in {HORIZON_A} projected nothing in 60 s")
            time.sleep(0.1)
        catchup = probe_for(b, seconds, state)
        projected = a.execute(processed).fetchone()[0]
        a.execute("SELECT eventsource.drop_projection('bench-catchup')")
        ratios = ""
        if baseline and catchup:
            ordered_baseline, ordered_catchup = sorted(baseline), sorted(catchup)
            ratios = (f" ratio_median={percentile(ordered_catchup, 0.5) / percentile(ordered_baseline, 0.5):.1f}"
                      f" ratio_p99={percentile(ordered_catchup, 0.99) / percentile(ordered_baseline, 0.99):.1f}")
        print(f"visibility_horizon variant=projection_catchup {summary(catchup)} probes={len(catchup)}"
              f"{ratios} projected={projected}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("listen_latency", "visibility_horizon"))
    parser.add_argument("--seconds", type=int, default=None,
                        help="seconds a phase (default: 20 listen_latency, 15 visibility_horizon)")
    parser.add_argument("--drain-seconds", type=int, default=60,
                        help="how long listen_latency waits for a phase's last event to be announced")
    parser.add_argument("--timeout", type=int, default=900, help="the whole run's limit in seconds")
    args = parser.parse_args()
    if shutil.which("pgbench") is None:
        sys.exit("bench/worker.py: pgbench is not on the PATH")

    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    def timed_out(_signum, _frame):
        raise TimeoutError(f"the benchmark ran longer than --timeout {args.timeout} s")

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGALRM, timed_out)
    signal.alarm(args.timeout)
    cluster = Cluster()
    try:
        if cluster.value("SELECT current_setting('eventsource.notify', true)") != "on":
            sys.exit("bench/worker.py: needs eventsource in shared_preload_libraries and eventsource.notify on")
        print(f"worker_benchmark server={cluster.value('SHOW server_version')} cores={os.cpu_count()}"
              f" rate={RATE} backlog={BACKLOG} hidden={HIDDEN_STREAMS * HIDDEN_PER_STREAM}"
              f" fsync={cluster.value('SHOW fsync')}"
              f" synchronous_commit={cluster.value('SHOW synchronous_commit')}", flush=True)
        if args.only in (None, "listen_latency"):
            listen_latency(cluster, args.seconds or 20, args.drain_seconds)
        if args.only in (None, "visibility_horizon"):
            visibility_horizon(cluster, args.seconds or 15)
    finally:
        signal.alarm(0)
        cluster.cleanup()
        cluster.conn.close()


if __name__ == "__main__":
    try:
        main()
    except (KeyboardInterrupt, TimeoutError) as stopped:
        sys.exit(f"bench/worker.py: stopped ({stopped}); its databases dropped, its settings put back")
