#!/usr/bin/env python3
"""corpus.py: writes the hostile-input corpus for test/shell/hostile_input.sh as SQL on stdout.
Each case is one row of hostile.cases: the statement, what it must give ('ok', a SQLSTATE, or NULL
for "any documented rejection, or success"), extra SQLSTATEs it may raise (PostgreSQL's own input
errors for that case), a query that checks a successful write byte for byte, and how many events
the write adds to the log."""
import json
import uuid

cases = []
uuid_counter = [0]


def new_uuid():
    uuid_counter[0] += 1
    return str(uuid.UUID(int=(0x4A11 << 112) | uuid_counter[0]))


def lit(s):
    if s is None:
        return "NULL"
    return "'" + s.replace("'", "''") + "'"


def jlit(value):
    return lit(json.dumps(value, ensure_ascii=False)) + "::jsonb"


def add(sql, expect=None, extra=(), verify=None, events=0, kind="misc"):
    cases.append((kind, sql, expect, list(extra), verify, events))


def nbytes(s):
    return len(s.encode("utf-8"))


HOSTILE = [
    "'; DROP TABLE eventsource.events; --",
    "x'); DROP TABLE eventsource.streams; --",
    "'); DELETE FROM eventsource.snapshots; --",
    "\"x\"", "\"", "$$", "$$; DROP SCHEMA eventsource CASCADE; $$", "$q$", "\\", "\\'", "\\\\x00",
    "Robert'); DROP TABLE students;--", "%s%s%s%n", "%I %L %1$s", "order-1 OR 1=1", "order' OR '1'='1",
    "ünïcödé-ñ", "日本語-ストリーム", "emoji-😀🎉", "\u202eright-to-left", "\u00a0nbsp", "\ufeffbom",
    "\U0010FFFF-max", "tab\there", "new\nline", "cr\rreturn", "ctl-\x01\x02\x1b\x1f\x7f", "bell\x07",
    "a" * 255, "a" * 256, "é" * 127 + "a", "é" * 128, "a" * 500, "a" * 501, "é" * 250, "é" * 250 + "a",
    "x" * 10000, "-leading", "$system", "$", "-", "", " ", "x-", "a-b-c-d", "null", "NULL", "%", "_",
    "*", "U&\"\\0041\"", "E'\\x41'", ";", "--", "/* comment", "eventsource.events",
    "pg_catalog.pg_sleep(10)", "{a,b}", "{\"a\":1}", "(1,2)", "\\N",
]
# The stream ids of the baseline the corpus must leave alone all start with "base-".
assert not any(h.startswith("base-") for h in HOSTILE)

stream_seq = [0]


def fresh(prefix="h"):
    stream_seq[0] += 1
    return f"{prefix}-{stream_seq[0]}"


def append_case(stream, etype, data_sql, meta_sql="NULL", expected_version="NULL", expect=None,
                extra=(), kind="append"):
    eid = new_uuid()
    sql = (f"SELECT eventsource.append({lit(stream) if stream is not None else 'NULL'}, "
           f"{lit(etype) if etype is not None else 'NULL'}, {data_sql}, {meta_sql}, {expected_version}, '{eid}')")
    verify = (f"SELECT count(*) = 1 FROM eventsource.events e WHERE e.event_id = '{eid}' "
              f"AND e.stream_id = {lit(stream)} AND convert_to(e.stream_id, 'UTF8') = convert_to({lit(stream)}, 'UTF8') "
              f"AND e.event_type = {lit(etype)} AND e.data::text = ({data_sql})::text "
              f"AND md5(e.data::text) = md5(({data_sql})::text) "
              f"AND e.metadata::text IS NOT DISTINCT FROM ({meta_sql})::text "
              f"AND EXISTS (SELECT 1 FROM eventsource.read_stream({lit(stream)}, e.stream_version, 1) r "
              f"WHERE r.event_id = e.event_id AND r.stream_id = e.stream_id AND r.event_type = e.event_type "
              f"AND r.data::text = e.data::text AND r.metadata::text IS NOT DISTINCT FROM e.metadata::text)")
    add(sql, expect, extra, verify, 1, kind)


def stream_expect(s, for_append=True):
    if s is None:
        return "22004"
    if s == "":
        return "22023"
    if s.startswith("-") or (for_append and s.startswith("$")):
        return "22023"
    if nbytes(s) > 500:
        return "22001"
    return "ok"


def type_expect(t):
    if t is None:
        return "22004"
    if t == "":
        return "22023"
    if nbytes(t) > 255:
        return "22001"
    return "ok"


def name_expect(n):
    if n is None:
        return "22004"
    if n == "":
        return "22023"
    if nbytes(n) > 255:
        return "22001"
    return "ok"


# 1. Hostile strings as stream ids, event types, JSON keys and values of append.
for h in HOSTILE:
    append_case(h, "T", "'{}'::jsonb", expect=stream_expect(h), kind="append:stream_id")
    append_case(fresh(), h, "'{}'::jsonb", expect=type_expect(h), kind="append:event_type")
    append_case(fresh(), "T", jlit({h: h, "n": [h, {h: None}]}), jlit({h: h}), expect="ok", kind="append:json")
    ev_id = new_uuid()
    events = [{"type": h, "data": {h: h}, "metadata": {"m": h}, "id": ev_id}]
    s = fresh()
    expect = type_expect(h)
    add(f"SELECT * FROM eventsource.append_events({lit(s)}, {jlit(events)})", expect, (),
        f"SELECT count(*) = 1 FROM eventsource.events WHERE event_id = '{ev_id}' AND stream_id = {lit(s)} "
        f"AND event_type = {lit(h)} AND data::text = {jlit({h: h})}::text AND metadata::text = {jlit({'m': h})}::text",
        1, "append_events:type")
    ev_id = new_uuid()
    events = [{"type": "T", "data": {}, "id": ev_id}]
    add(f"SELECT * FROM eventsource.append_events({lit(h)}, {jlit(events)})", stream_expect(h), (),
        f"SELECT count(*) = 1 FROM eventsource.events WHERE event_id = '{ev_id}' AND stream_id = {lit(h)}",
        1, "append_events:stream_id")
    # Reads: never an error for a valid id, a documented one otherwise.
    read_expect = stream_expect(h, for_append=False)
    for sql in (f"SELECT count(*) FROM eventsource.read_stream({lit(h)})",
                f"SELECT count(*) FROM eventsource.read_stream({lit(h)}, NULL, 5, 'backward')",
                f"SELECT eventsource.stream_version({lit(h)})",
                f"SELECT count(*) FROM eventsource.load_snapshot({lit(h)})",
                f"SELECT count(*) FROM eventsource.load_stream({lit(h)})"):
        add(sql, None, (), None, 0, "read:stream_id")
    add(f"SELECT eventsource.category({lit(h)})", None, (), None, 0, "category")
    add(f"SELECT eventsource.consumer_group_member({lit(h)}, 7)", None, (), None, 0, "consumer_group_member")
    add(f"SELECT count(*) FROM eventsource.read_category({lit(h)})", None, (), None, 0, "read_category:category")
    add(f"SELECT count(*) FROM eventsource.read_all(category => {lit(h)})", None, (), None, 0, "read_all:category")
    add(f"SELECT count(*) FROM eventsource.read_all(event_types => ARRAY[{lit(h)}])", None, (), None, 0, "read_all:event_types")
    add(f"SELECT count(*) FROM eventsource.read_category('h', event_types => ARRAY[{lit(h)}, 'T'])", None, (), None, 0, "read_category:event_types")
    add(f"SELECT count(*) FROM eventsource.read_stream('h-1', direction => {lit(h)})", "22023", (), None, 0, "read_stream:direction")
    # Snapshots of the stream the first case above appended to (when it was accepted).
    snap_expect = "ok" if stream_expect(h) == "ok" else None
    add(f"SELECT eventsource.save_snapshot({lit(h)}, 1, {jlit({'s': h})}, 7)", snap_expect, (),
        f"SELECT count(*) = 1 FROM eventsource.load_snapshot({lit(h)}, 1, 7) WHERE stream_id = {lit(h)} "
        f"AND state::text = {jlit({'s': h})}::text", 0, "save_snapshot:stream_id")
    add(f"SELECT eventsource.delete_snapshots({lit(h)}, 7)", None, (), None, 0, "delete_snapshots:stream_id")
    add(f"SELECT eventsource.delete_snapshots({lit(h)})", None, (), None, 0, "delete_snapshots:stream_id")
    # Subscriptions named h, then polled, acked and dropped.
    ne = name_expect(h)
    add(f"SELECT eventsource.create_subscription({lit(h)}, category => 'h', consumer_group_size => 2)", ne, (),
        f"SELECT count(*) = 1 FROM eventsource.subscriptions WHERE name = {lit(h)} AND category = 'h' "
        f"AND (SELECT count(*) FROM eventsource.subscription_members WHERE subscription_name = {lit(h)}) = 2",
        0, "create_subscription:name")
    if ne == "ok":
        add(f"SELECT eventsource.create_subscription({lit(h)})", "42710", (), None, 0, "create_subscription:duplicate")
    sub_expect = "ok" if ne == "ok" else ("22001" if ne == "22001" else None)
    add(f"SELECT count(*) FROM eventsource.poll({lit(h)}, 3, 1, 5)", sub_expect, (), None, 0, "poll:name")
    add(f"SELECT eventsource.ack({lit(h)}, '(1,999999999)', 1, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')", None, (), None, 0, "ack:name")
    add(f"SELECT eventsource.drop_subscription({lit(h)})", sub_expect, (),
        f"SELECT count(*) = 0 FROM eventsource.subscriptions WHERE name = {lit(h)}", 0, "drop_subscription:name")
    add(f"SELECT eventsource.drop_subscription({lit(h)})", None if ne != "ok" else "42704", (), None, 0, "drop_subscription:again")
    s = "hs-" + str(len(cases))
    add(f"SELECT eventsource.create_subscription({lit(s)}, category => {lit(h)}, event_types => ARRAY[{lit(h)}])", None, (),
        f"SELECT count(*) = 1 FROM eventsource.subscriptions WHERE name = {lit(s)} AND category = {lit(h)} AND event_types = ARRAY[{lit(h)}]",
        0, "create_subscription:category")
    add(f"SELECT count(*) FROM eventsource.poll({lit(s)})", None, (), None, 0, "poll")
    add(f"SELECT eventsource.drop_subscription({lit(s)})", None, (), None, 0, "drop_subscription")
    add(f"SELECT eventsource.create_subscription('hs-x', start_from => {lit(h)})", "22023", (), None, 0, "create_subscription:start_from")
    # Projections named h (inline, then async), paused, resumed, rebuilt and dropped. Their
    # category is h too: one containing '-' is a stream id passed by mistake (22023).
    ne = "22023" if ne == "ok" and "-" in h else ne
    for mode in ("inline", "async"):
        add(f"SELECT eventsource.create_projection({lit(h)}, 'hostile.noop(eventsource.event)', ARRAY[{lit(h)}], {lit(h)}, '{mode}', 'hostile.noop_reset()')",
            ne, (),
            f"SELECT count(*) = 1 FROM eventsource.projections WHERE name = {lit(h)} AND category = {lit(h)} AND event_types = ARRAY[{lit(h)}] AND mode = '{mode}'",
            0, "create_projection:name")
        if ne == "ok":
            add(f"SELECT eventsource.create_projection({lit(h)}, 'hostile.noop(eventsource.event)')", "42710", (), None, 0, "create_projection:duplicate")
        pe = "ok" if ne == "ok" else None
        add(f"SELECT eventsource.pause_projection({lit(h)})", pe, (), None, 0, "pause_projection:name")
        add(f"SELECT eventsource.resume_projection({lit(h)})", pe, (), None, 0, "resume_projection:name")
        add(f"SELECT eventsource.rebuild_projection({lit(h)})", pe, (), None, 0, "rebuild_projection:name")
        add(f"SELECT eventsource.drop_projection({lit(h)})", pe, (),
            f"SELECT count(*) = 0 FROM eventsource.projections WHERE name = {lit(h)}", 0, "drop_projection:name")
        add(f"SELECT eventsource.drop_projection({lit(h)})", "42704" if ne == "ok" else None, (), None, 0, "drop_projection:again")
    add(f"SELECT eventsource.create_projection('hp-x', 'hostile.noop(eventsource.event)', mode => {lit(h)})", "22023", (), None, 0, "create_projection:mode")
    add(f"SELECT eventsource.create_projection('hp-x', 'hostile.noop(eventsource.event)', on_failure => {lit(h)})", "22023", (), None, 0, "create_projection:on_failure")
    add(f"SELECT eventsource.create_projection('hp-x', {lit(h)})", None, ("42601", "42602", "22P02", "42883", "3F000", "42704", "42P13"), None, 0, "create_projection:handler")
    add(f"SELECT eventsource.create_projection('hp-x', 'hostile.noop(eventsource.event)', reset_handler => {lit(h)})", None, ("42601", "42602", "22P02", "42883", "3F000", "42704", "42P13"), None, 0, "create_projection:reset_handler")
    add(f"SELECT count(*) FROM eventsource.read_all(after => {lit(h)})", None, (), None, 0, "read_all:after")
    add(f"SELECT {lit(h)}::eventsource.checkpoint::text", None, (), None, 0, "checkpoint:in")

# 2. Handlers that are not handlers.
for handler in ("pg_catalog.now()", "hostile.noop_set(eventsource.event)", "hostile.noop_reset()", "nonexistent(eventsource.event)",
                "hostile.noop(eventsource.event); DROP TABLE eventsource.events; --", "hostile.noop(int)", "hostile.noop",
                "hostile.noop(eventsource.event) OR 1=1", "pg_catalog.pg_terminate_backend(integer)", "pg_catalog.pg_sleep(double precision)",
                "hostile.noop(eventsource.event, eventsource.event)", "hostile.two(eventsource.event, integer)"):
    for mode in ("inline", "async"):
        add(f"SELECT eventsource.create_projection('hp-h', {lit(handler)}, mode => '{mode}')", None,
            ("42601", "42602", "22P02", "42883", "3F000", "42704", "42P13"), None, 0, "create_projection:bad_handler")
        add(f"SELECT eventsource.create_projection('hp-h', 'hostile.noop(eventsource.event)', mode => '{mode}', reset_handler => {lit(handler)})", None,
            ("42601", "42602", "22P02", "42883", "3F000", "42704", "42P13"), None, 0, "create_projection:bad_reset_handler")
        add("SELECT eventsource.drop_projection('hp-h')", None, (), None, 0, "drop_projection")
for ma in (-2147483648, -1, 0, 1, 100, 101, 2147483647):
    exp = "ok" if 1 <= ma <= 100 else "22023"
    add(f"SELECT eventsource.create_projection('hp-ma', 'hostile.noop(eventsource.event)', mode => 'async', max_attempts => {ma})", exp, (), None, 0, "create_projection:max_attempts")
    add("SELECT eventsource.drop_projection('hp-ma')", exp if exp == "ok" else "42704", (), None, 0, "drop_projection")
for arr in ("'{}'::text[]", "ARRAY[NULL]::text[]", "ARRAY['a', NULL]", "'{\"\"}'::text[]", "'{{a,b},{c,d}}'::text[]", "'[2:3]={a,b}'::text[]"):
    add(f"SELECT eventsource.create_projection('hp-arr', 'hostile.noop(eventsource.event)', {arr})", None, (), None, 0, "create_projection:event_types")
    add("SELECT eventsource.drop_projection('hp-arr')", None, (), None, 0, "drop_projection")
    add(f"SELECT eventsource.create_subscription('hs-arr', event_types => {arr})", None, (), None, 0, "create_subscription:event_types")
    add("SELECT eventsource.drop_subscription('hs-arr')", None, (), None, 0, "drop_subscription")
    add(f"SELECT count(*) FROM eventsource.read_all(event_types => {arr})", None, (), None, 0, "read_all:event_types")
    add(f"SELECT count(*) FROM eventsource.read_category('h', event_types => {arr})", None, (), None, 0, "read_category:event_types")

# 3. append_events: mutations of a valid event, key by key, value by value.
VALUES = [None, 0, -1, 1.5, 1e300, True, False, "", "s", "T" * 255, "T" * 256, [], {}, [1], [{}], {"a": 1},
          {"type": "T", "data": {}}, "6a1f7c1e-2d3b-4c5d-8e9f-0a1b2c3d4e5f", "not-a-uuid",
          "6A1F7C1E-2D3B-4C5D-8E9F-0A1B2C3D4E5F", "{6a1f7c1e-2d3b-4c5d-8e9f-0a1b2c3d4e5f}", "6a1f7c1e2d3b4c5d8e9f0a1b2c3d4e5f",
          "00000000-0000-0000-0000-000000000000", "'; DROP TABLE eventsource.events; --", "ünï", "\u0001", [[[[[]]]]],
          {"nested": {"junk": [1, {"x": [None, True]}]}}, "x" * 100000]


def value_ok(key, v):
    if key == "type":
        return isinstance(v, str) and v != "" and nbytes(v) <= 255
    if key == "data":
        return isinstance(v, dict)
    if key == "metadata":
        return v is None or isinstance(v, dict)
    if key == "id":
        return None  # a uuid string is accepted; other ids: 22P02 (or a duplicate: SE002)
    return False


for key in ("type", "data", "metadata", "id", "extra", "Type", "DATA", "", " type", "type "):
    for v in VALUES:
        for placement in ("only", "second"):
            ev = {"type": "T", "data": {"k": 1}}
            if key == "id" and isinstance(v, str) and len(v) > 30:
                # a uuid: make it unique per case so the write is fresh
                try:
                    uuid.UUID(v)
                    v = new_uuid() if v != "00000000-0000-0000-0000-000000000000" else v
                except ValueError:
                    pass
            ev[key] = v
            batch = [ev] if placement == "only" else [{"type": "T", "data": {}}, ev]
            ok = value_ok(key, v)
            s = fresh("he")
            if ok is True:
                exp = "ok"
            elif ok is False:
                exp = "22023" if not (key == "type" and isinstance(v, str) and nbytes(v) > 255) else "22001"
            else:
                exp = None
            verify = None
            if exp == "ok":
                verify = (f"SELECT (SELECT string_agg(event_type || ' ' || data::text || ' ' || coalesce(metadata::text, '-'), ';' ORDER BY stream_version) "
                          f"FROM eventsource.read_stream({lit(s)})) = "
                          f"(SELECT string_agg((e->>'type') || ' ' || (e->'data')::text || ' ' || coalesce(nullif(e->'metadata', 'null')::text, '-'), ';' ORDER BY n) "
                          f"FROM jsonb_array_elements({jlit(batch)}) WITH ORDINALITY AS x(e, n))")
            add(f"SELECT * FROM eventsource.append_events({lit(s)}, {jlit(batch)})", exp, ("22P02", "SE002"), verify,
                len(batch), f"append_events:{key or 'empty-key'}")

# Whole-argument junk: not arrays, empty arrays, arrays of non-objects, JSON that does not parse.
for junk in ("{}", "[]", "null", "\"str\"", "1", "true", "[1]", "[null]", "[[]]", "[\"x\"]", "[{}]", "[{\"type\":\"T\"}]",
             "[{\"data\":{}}]", "[{\"type\":\"T\",\"data\":{}}, 1]", "[{\"type\":\"T\",\"data\":{}}, null]",
             "{\"type\":\"T\",\"data\":{}}", "[{\"type\":\"A\",\"type\":\"B\",\"data\":{}}]"):
    add(f"SELECT * FROM eventsource.append_events({lit(fresh('hj'))}, {lit(junk)}::jsonb)", None, (), None, 1, "append_events:junk")
for bad in ("[", "[{", "{\"type\":", "[{'type':'T','data':{}}]", "[{\"type\":\"T\",\"data\":{}},]", "NaN", "Infinity",
            "[{\"type\":\"T\",\"data\":{\"a\":1e999999}}]", "[{\"type\":\"T\",\"data\":{\"a\":\"\\u0000\"}}]",
            "[{\"type\":\"T\",\"data\":{\"a\":\"\\ud800\"}}]", "[{\"type\":\"T\",\"data\":{}}]]", "", " ", "[{\"type\":\"T\",\"data\":{}}] x",
            "[{\"type\":\"T\",\"data\":{\"a\":01}}]", "[{\"type\":\"T\",\"data\":{\"a\":.5}}]", "[{\"type\":\"T\",\"data\":{\"a\":+1}}]",
            "[{\"type\":\"T\",\"data\":{\"a\":\"\\x41\"}}]", "[{\"type\":\"T\",\"data\":{a:1}}]"):
    add(f"SELECT * FROM eventsource.append_events({lit(fresh('hj'))}, {lit(bad)}::jsonb)", None, ("22P02", "22P05", "22003"), None, 0, "append_events:unparsable")
    add(f"SELECT eventsource.append({lit(fresh('hj'))}, 'T', {lit(bad)}::jsonb)", None, ("22P02", "22P05", "22003"), None, 0, "append:unparsable")
# Two events with one id; an id used by another stream; a retry with the same id.
dup = new_uuid()
add(f"SELECT * FROM eventsource.append_events('hd-1', {jlit([{'type': 'T', 'data': {}, 'id': dup}, {'type': 'T', 'data': {}, 'id': dup}])})", "22023", (), None, 0, "append_events:duplicate_id")
append_case("hd-2", "T", "'{}'::jsonb", expect="ok", kind="append")
add(f"SELECT * FROM eventsource.append_events('hd-3', {jlit([{'type': 'T', 'data': {}, 'id': cases[-1][1].split(chr(39))[-2]}])})", "SE002", (), None, 0, "append_events:id_elsewhere")

# 4. Deep nesting and huge arrays.
for depth in (100, 1000, 5000, 100000):
    deep = "[" * depth + "]" * depth
    add(f"SELECT eventsource.append({lit(fresh('hn'))}, 'T', jsonb_build_object('deep', {lit(deep)}::jsonb))", None, ("54001",), None, 1, "append:deep")
for n in (1000, 20000):
    s = fresh("hb")
    add(f"SELECT (eventsource.append_events({lit(s)}, (SELECT jsonb_agg(jsonb_build_object('type', 'T' || i, 'data', jsonb_build_object('i', i))) FROM generate_series(1, {n}) i))).stream_version",
        "ok", (), f"SELECT count(*) = {n} AND bool_and(event_type = 'T' || stream_version AND data = jsonb_build_object('i', stream_version)) FROM eventsource.read_stream({lit(s)}, max_count => 100000)",
        n, "append_events:huge_array")
add("SELECT count(*) FROM eventsource.read_all(event_types => (SELECT array_agg('T' || i) FROM generate_series(1, 100000) i), max_count => 100000)", "ok", (), None, 0, "read_all:huge_event_types")
add("SELECT count(*) FROM eventsource.read_all(category => repeat('c', 1000000))", None, (), None, 0, "read_all:huge_category")

# 5. Extreme integers in every integer argument.
BIG = ["-9223372036854775808", "-2147483649", "-2147483648", "-2", "-1", "0", "1", "2", "100000", "100001", "2147483647",
       "2147483648", "9223372036854775807", "9223372036854775808", "NULL"]
INT_MAX = 2147483647


def fits_int(v):
    return v == "NULL" or -2147483648 <= int(v) <= INT_MAX


def fits_big(v):
    return v == "NULL" or -9223372036854775808 <= int(v) <= 9223372036854775807


for v in BIG:
    ib = fits_big(v)
    ii = fits_int(v)
    n = None if v == "NULL" else int(v)
    # expected_version on a fresh stream
    if not ib:
        exp = None
    elif n is None or n == 0:
        exp = "ok"
    elif n < -1:
        exp = "22023"
    else:
        exp = "SE001"
    append_case(fresh("hi"), "T", "'{}'::jsonb", expected_version=v, expect=exp, extra=("22003",), kind="append:expected_version")
    add(f"SELECT * FROM eventsource.append_events({lit(fresh('hi'))}, '[{{\"type\":\"T\",\"data\":{{}}}}]', {v})", exp, ("22003",), None, 1 if exp == "ok" else 0, "append_events:expected_version")
    add(f"SELECT count(*) FROM eventsource.read_stream('h-1', {v})", None if not ib else ("22023" if n is not None and n < 0 else "ok"), ("22003",), None, 0, "read_stream:from_version")
    add(f"SELECT count(*) FROM eventsource.read_stream('h-1', {v}, 3, 'backward')", None if not ib else ("22023" if n is not None and n < 0 else "ok"), ("22003",), None, 0, "read_stream:from_version")
    mc = None if not ii else ("22004" if n is None else ("ok" if 1 <= n <= 100000 else "22023"))
    add(f"SELECT count(*) FROM eventsource.read_stream('h-1', NULL, {v})", mc, ("22003",), None, 0, "read_stream:max_count")
    add(f"SELECT count(*) FROM eventsource.read_all(NULL, {v})", mc, ("22003",), None, 0, "read_all:max_count")
    add(f"SELECT count(*) FROM eventsource.read_category('h', NULL, {v})", mc, ("22003",), None, 0, "read_category:max_count")
    add(f"SELECT count(*) FROM eventsource.poll('hsub', {v})", None, ("22003",), None, 0, "poll:max_count")
    add(f"SELECT count(*) FROM eventsource.poll('hsub', 1, {v})", None, ("22003",), None, 0, "poll:consumer_group_member")
    add(f"SELECT count(*) FROM eventsource.poll('hsub', 1, 1, {v})", None, ("22003",), None, 0, "poll:lease_seconds")
    add(f"SELECT eventsource.ack('hsub', '(1,1)', {v}, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')", None, ("22003",), None, 0, "ack:consumer_group_member")
    add(f"SELECT count(*) FROM eventsource.load_snapshot('h-1', {v})", None, ("22003",), None, 0, "load_snapshot:max_version")
    add(f"SELECT count(*) FROM eventsource.load_snapshot('h-1', NULL, {v})", None, ("22003",), None, 0, "load_snapshot:schema_version")
    add(f"SELECT count(*) FROM eventsource.load_stream('h-1', {v}, {v if ii else 'NULL'})", None, ("22003",), None, 0, "load_stream:versions")
    sv = None if not ib else ("22004" if n is None else ("ok" if n == 1 else "SE004"))
    add(f"SELECT eventsource.save_snapshot('h-1', {v}, '{{}}')", sv, ("22003",), None, 0, "save_snapshot:stream_version")
    sc = None if not ii else ("22004" if n is None else ("ok" if n >= 1 else "22023"))
    add(f"SELECT eventsource.save_snapshot('h-1', 1, '{{}}', {v})", sc, ("22003",), None, 0, "save_snapshot:schema_version")
    if v != "NULL":
        add(f"SELECT eventsource.delete_snapshots('h-1', {v})", None, ("22003",), None, 0, "delete_snapshots:below_schema_version")
        # Across every stream: must delete nothing when invalid (the baseline's snapshots are checked).
        if ii and n < 1:
            add(f"SELECT eventsource.delete_snapshots(NULL, {v})", "22023", (), None, 0, "delete_snapshots:all:below_schema_version")
    add(f"SELECT eventsource.consumer_group_member('h-1', {v})", None, ("22003",), None, 0, "consumer_group_member:size")
    gs = None if not ii else ("ok" if n is None or 1 <= n <= 1000 else "22023")
    add(f"SELECT eventsource.create_subscription('hs-int', consumer_group_size => {v})", None if n is None else gs, ("22003", "22004"), None, 0, "create_subscription:consumer_group_size")
    add("SELECT eventsource.drop_subscription('hs-int')", None, (), None, 0, "drop_subscription")
    add(f"SELECT eventsource.checkpoint({v}::bigint::text::xid8, {v})", None, ("22003", "22P02"), None, 0, "checkpoint:constructor")

# 6. Checkpoints as text.
CHECKPOINTS = ["(", "(1,", "(-1,2)", "(18446744073709551616,1)", "(1,9223372036854775808)", "(1,-1)", "()", "(,)", "(1)",
               "(1,2,3)", " (1,2) ", "(1, 2)", "( 1,2)", "(0x10,1)", "(1e3,1)", "(+1,2)", "(1,2)x", "", "null", "NULL", "(1.5,2)",
               "(١,٢)", "(1,2", "1,2", "ab", "('; DROP TABLE eventsource.events;--,1)", "(18446744073709551615,9223372036854775807)",
               "(0,0)", "(0,-9223372036854775808)", "(99999999999999999999999999999,1)", "(1,99999999999999999999999)",
               "(\t1,2)", "(1,2)\n", "(1\x01,2)", "(" + "9" * 10000 + ",1)", "(1," + "1" * 5000 + ")", "(00000000000000000001,01)"]
for c in CHECKPOINTS:
    add(f"SELECT {lit(c)}::eventsource.checkpoint::text", None, (), None, 0, "checkpoint:in")
    add(f"SELECT count(*) FROM eventsource.read_all({lit(c)})", None, (), None, 0, "read_all:after")
    add(f"SELECT count(*) FROM eventsource.read_all({lit(c)}::text::eventsource.checkpoint, 10, 'h')", None, (), None, 0, "read_all:after")
    add(f"SELECT count(*) FROM eventsource.read_category('h', {lit(c)})", None, (), None, 0, "read_category:after")
    add(f"SELECT eventsource.ack('hsub', {lit(c)})", None, (), None, 0, "ack:checkpoint")
    add(f"SELECT eventsource.ack('hsub', {lit(c)}, 1, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')", None, (), None, 0, "ack:checkpoint")
    add(f"SELECT eventsource.ack('hsub', '(1,1)', 1, {lit(c)})", None, (), None, 0, "ack:lease")
    add(f"SELECT eventsource.checkpoint_global_position({lit(c)}), eventsource.checkpoint_transaction_id({lit(c)})", None, (), None, 0, "checkpoint:accessors")
    add(f"SELECT {lit(c)}::eventsource.checkpoint OPERATOR(eventsource.<) '(1,1)'::eventsource.checkpoint", None, (), None, 0, "checkpoint:compare")
add("SELECT eventsource.checkpoint_transaction_id(NULL), eventsource.checkpoint_global_position(NULL)", "ok", (), None, 0, "checkpoint:null")
add("SELECT eventsource.checkpoint(NULL, NULL)::text", None, (), None, 0, "checkpoint:null")
# 7. NULL in every argument position.
NULLS = [
    ("SELECT eventsource.append(NULL, 'T', '{}')", "22004"), ("SELECT eventsource.append('hz-1', NULL, '{}')", "22004"),
    ("SELECT eventsource.append('hz-1', 'T', NULL)", "22004"), ("SELECT * FROM eventsource.append_events(NULL, '[{\"type\":\"T\",\"data\":{}}]')", "22004"),
    ("SELECT * FROM eventsource.append_events('hz-1', NULL)", "22004"), ("SELECT * FROM eventsource.append_events('hz-1', 'null')", "22023"),
    ("SELECT count(*) FROM eventsource.read_stream(NULL)", "22004"), ("SELECT count(*) FROM eventsource.read_stream('hz-1', NULL, NULL)", "22004"),
    ("SELECT count(*) FROM eventsource.read_stream('hz-1', NULL, 10, NULL)", "22004"), ("SELECT count(*) FROM eventsource.read_all(NULL, NULL)", "22004"),
    ("SELECT count(*) FROM eventsource.read_all(NULL, 10, NULL, NULL)", "ok"), ("SELECT count(*) FROM eventsource.read_category(NULL)", "22004"),
    ("SELECT count(*) FROM eventsource.read_category('h', NULL, NULL)", "22004"), ("SELECT count(*) FROM eventsource.read_category('h', NULL, 10, NULL)", "ok"),
    ("SELECT eventsource.stream_version(NULL)", None), ("SELECT eventsource.category(NULL)", None),
    ("SELECT eventsource.consumer_group_member(NULL, 2)", None), ("SELECT eventsource.consumer_group_member('x', NULL)", None),
    ("SELECT eventsource.save_snapshot(NULL, 1, '{}')", "22004"), ("SELECT eventsource.save_snapshot('h-1', NULL, '{}')", "22004"),
    ("SELECT eventsource.save_snapshot('h-1', 1, NULL)", "22004"), ("SELECT eventsource.save_snapshot('h-1', 1, '{}', NULL)", "22004"),
    ("SELECT eventsource.save_snapshot('h-1', 1, 'null')", None),
    ("SELECT count(*) FROM eventsource.load_snapshot(NULL)", None), ("SELECT count(*) FROM eventsource.load_snapshot('h-1', NULL, NULL)", "ok"),
    ("SELECT count(*) FROM eventsource.load_stream(NULL)", None), ("SELECT count(*) FROM eventsource.load_stream('h-1', NULL, NULL)", "ok"),
    ("SELECT eventsource.delete_snapshots('hz-none', NULL)", "ok"),
    ("SELECT eventsource.create_subscription(NULL)", None), ("SELECT eventsource.create_subscription('hs-n', NULL, NULL, NULL)", None),
    ("SELECT eventsource.create_subscription('hs-n2', 'h', NULL, 'beginning', NULL)", None),
    ("SELECT count(*) FROM eventsource.poll(NULL)", None), ("SELECT count(*) FROM eventsource.poll('hsub', NULL)", None),
    ("SELECT count(*) FROM eventsource.poll('hsub', 1, NULL)", None), ("SELECT count(*) FROM eventsource.poll('hsub', 1, 0, NULL)", None),
    ("SELECT eventsource.ack(NULL, '(1,1)')", None), ("SELECT eventsource.ack('hsub', NULL)", None), ("SELECT eventsource.ack('hsub', '(1,1)', NULL)", None),
    ("SELECT eventsource.ack('hsub', '(1,1)', 0, NULL)", "22004"), ("SELECT eventsource.ack('hsub', '(1,1)', NULL, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')", None),
    ("SELECT eventsource.drop_subscription(NULL)", None), ("SELECT eventsource.drop_subscription('hs-n')", None), ("SELECT eventsource.drop_subscription('hs-n2')", None),
    ("SELECT eventsource.create_projection(NULL, 'hostile.noop(eventsource.event)')", None), ("SELECT eventsource.create_projection('hp-n', NULL)", None),
    ("SELECT eventsource.create_projection('hp-n', 'hostile.noop(eventsource.event)', NULL, NULL, NULL)", None),
    ("SELECT eventsource.create_projection('hp-n', 'hostile.noop(eventsource.event)', NULL, NULL, 'async', NULL, NULL)", None),
    ("SELECT eventsource.create_projection('hp-n', 'hostile.noop(eventsource.event)', NULL, NULL, 'async', NULL, 'stop', NULL)", None),
    ("SELECT eventsource.pause_projection(NULL)", None), ("SELECT eventsource.resume_projection(NULL)", None),
    ("SELECT eventsource.rebuild_projection(NULL)", None), ("SELECT eventsource.drop_projection(NULL)", None),
    ("SELECT eventsource.drop_projection('hp-n')", None),
    ("SELECT eventsource.checkpoint(NULL, 1)::text", None), ("SELECT eventsource.checkpoint('1', NULL)::text", None),
]
for sql, exp in NULLS:
    add(sql, exp, (), None, 0, "null")
append_case(fresh("hz"), "T", "'{}'::jsonb", "NULL", expect="ok", kind="null:metadata")
append_case(fresh("hz"), "T", "'{}'::jsonb", "'null'::jsonb", expect=None, kind="null:json_null_metadata")

# 8. NUL bytes and invalid UTF-8 through bytea casts; valid multibyte through the same path.
for b in ("\\x00", "\\x6100", "\\xc328", "\\xff", "\\xc0af", "\\xed\\xa0\\x80".replace("\\x", ""), "\\xeda080", "\\xf4908080", "\\xe282", "\\x80", "\\xfe\\xff".replace("\\x", "")):
    bb = b if b.startswith("\\x") else "\\x" + b
    expr = f"convert_from('{bb}'::bytea, 'UTF8')"
    for sql in (f"SELECT eventsource.append({expr}, 'T', '{{}}')",
                f"SELECT eventsource.append('hu-1', {expr}, '{{}}')",
                f"SELECT eventsource.append('hu-1', 'T', jsonb_build_object('a', {expr}))",
                f"SELECT eventsource.append('hu-1', 'T', jsonb_build_object({expr}, 1))",
                f"SELECT count(*) FROM eventsource.read_stream({expr})",
                f"SELECT eventsource.create_subscription({expr})",
                f"SELECT eventsource.create_projection({expr}, 'hostile.noop(eventsource.event)')",
                f"SELECT eventsource.save_snapshot('h-1', 1, jsonb_build_object('a', {expr}), 9)"):
        add(sql, None, ("22021",), None, 0, "encoding:invalid")
add("SELECT eventsource.append('hu-2', 'T', jsonb_build_object('a', chr(0)))", None, ("54000",), None, 0, "encoding:chr0")
add("SELECT eventsource.append('hu-2', 'T', '{\"a\": \"\\u0000\"}')", None, ("22P05",), None, 0, "encoding:u0000")
add("SELECT eventsource.append('hu-2', 'T', jsonb_build_object('a', E'\\x00'))", None, ("22021", "54000"), None, 0, "encoding:E00")
for good in ("\\xc3a9", "\\xe697a5", "\\xf09f9880", "\\xf48fbfbf", "\\x7f", "\\x01"):
    expr = f"convert_from('{good}'::bytea, 'UTF8')"
    s = fresh("hv") + "-"
    eid = new_uuid()
    add(f"SELECT eventsource.append({lit(s)} || {expr}, {expr}, jsonb_build_object({expr}, {expr}), jsonb_build_object('m', {expr}), NULL, '{eid}')",
        "ok", (), f"SELECT count(*) = 1 FROM eventsource.events WHERE event_id = '{eid}' AND convert_to(stream_id, 'UTF8') = convert_to({lit(s)}, 'UTF8') || '{good}'::bytea "
        f"AND convert_to(event_type, 'UTF8') = '{good}'::bytea AND convert_to(data->>{expr}, 'UTF8') = '{good}'::bytea "
        f"AND convert_to(metadata->>'m', 'UTF8') = '{good}'::bytea", 1, "encoding:valid")

# 10. The stream lifecycle (0.5.0): metadata, deletes, tombstones and scavenge with hostile input.
# Every accepted delete, tombstone or metadata change appends one audit event to $streams. Scavenge
# removes nothing here: the baseline's base-sub subscription (every category) has passed no event
# but the first, which no retention setting hides.
def status_ok(s):
    """Stream reads agree with stream_status (and run the retention rule without error)."""
    return (f"(SELECT count(*) FROM eventsource.read_stream({lit(s)}, max_count => 100000)) = "
            f"(SELECT visible_events FROM eventsource.stream_status WHERE stream_id = {lit(s)}) "
            f"AND (SELECT count(*) FROM eventsource.load_stream({lit(s)})) = "
            f"(SELECT visible_events FROM eventsource.stream_status WHERE stream_id = {lit(s)})")


META_STREAM = fresh("hm")
add(f"SELECT (eventsource.append_events({lit(META_STREAM)}, (SELECT jsonb_agg(jsonb_build_object('type', 'T', 'data', jsonb_build_object('i', i))) FROM generate_series(1, 5) i))).stream_version",
    "ok", (), None, 5, "lifecycle:setup")
WHOLE_OK = [0, 1, 2, 5, 1000000000000000, 1.0, -0.0]
WHOLE_BAD = [-1, -9223372036854775808, 9223372036854775807, 9223372036854775808, 1000000000000001, 1e15 + 0.5, 0.5, 2.5,
             1e30, -1e30, 1e-30, "3", "NaN", "Infinity", "-Infinity", "1e400", "", True, False, [], [3], {}, {"n": 3},
             "'; DROP TABLE eventsource.events; --"]
metadata_cases = []
for key in ("truncate_before", "max_count"):
    for v in WHOLE_OK:
        metadata_cases.append(({key: v}, "22023" if key == "max_count" and v <= 0 else "ok", ()))
    for v in WHOLE_BAD:
        metadata_cases.append(({key: v}, "22023", ()))
    metadata_cases.append(({key: None}, "ok", ()))
# Numbers JSON holds but float8 does not: numeric out of range.
for raw in ('{"max_count": 1e400}', '{"truncate_before": -1e400}', '{"max_count": 1e-400}', '{"max_age": 1e400}', '{"max_age": -1e400}',
            '{"max_age": 1e-400}'):
    metadata_cases.append((raw, "22003", ()))
AGE_OK = ["1 day", "30 days", "P1D", "PT1H", "1 second", "00:00:01", "1 microsecond", "1 month", "1 year 2 mons", "-1 day +25 hours",
          "1 month -29 days", 1, 86400, 0.5, 2.5e-6, 31536000, "999 years", 900 * 365 * 86400]
AGE_BAD = [("0", "22023"), ("-1 day", "22023"), ("1 month -30 days", "22023"), ("1 month -31 days", "22023"), (0, "22023"), (-1, "22023"),
           (-0.0, "22023"), (1e-7, "22023"), (-1e300, "22008"), (1e300, "22008"), ("a fortnight", "22007"), ("NaN", "22007"),
           ("Infinity", "22007"), ("-infinity", "22007"), ("", "22007"), (" ", "22007"), ("1 day; DROP TABLE eventsource.events; --", "22007"),
           ("'; DROP TABLE eventsource.events; --", "22007"), ("\u0001", "22007"), ("x" * 10000, "22007"),
           (True, "22023"), (False, "22023"), ([], "22023"), (["1 day"], "22023"), ({}, "22023"), ({"days": 1}, "22023")]
for v in AGE_OK:
    metadata_cases.append(({"max_age": v}, "ok", ()))
for v, code in AGE_BAD:
    metadata_cases.append(({"max_age": v}, code, ()))
# Interval fields past what an interval holds: PostgreSQL's own interval input error (22015).
# (Or, when PostgreSQL takes it, eventsource's own limit of 1000 years: 22023.)
for v in ("99999999999 years", "2147483648 days", "999999999999999999999 seconds", "178000000 years 1 month"):
    metadata_cases.append(({"max_age": v}, None, ("22007", "22008", "22015", "22023")))
# PostgreSQL's interval input ignores a trailing quote: accepted as 1 day.
metadata_cases.append(({"max_age": "1 day'"}, None, ()))
# Past eventsource's limit of 1000 years (beyond some 6,700 years now() - max_age would not be a timestamp).
for v in ("1001 years", "10000 years", "177999999 years", 1e12, 5e15):
    metadata_cases.append(({"max_age": v}, None, ("22008", "22023")))
metadata_cases.append(({"max_age": "1000 years"}, "ok", ()))
metadata_cases += [
    ({}, "ok", ()), ({"truncate_before": None, "max_count": None, "max_age": None}, "ok", ()),
    ({"truncate_before": 2, "max_count": 2, "max_age": "1 day"}, "ok", ()),
    ('{"max_count": 1, "max_count": 4}', "ok", ()), ('{"max_count": "x", "max_count": 4}', "ok", ()),
    ({"maxCount": 3}, "22023", ()), ({"MAX_COUNT": 3}, "22023", ()), ({"max_count ": 3}, "22023", ()), ({"": 1}, "22023", ()),
    ({"max_count": 3, "extra": 1}, "22023", ()), ({"max_count": {"max_count": 3}}, "22023", ()),
    ({"nested": {"max_count": 3}}, "22023", ()), ({"max_age": {"max_age": "1 day"}}, "22023", ()),
    ({"truncate_before": [1, 2]}, "22023", ()), ({"x" * 10000: 1}, "22023", ()),
    ("[]", "22023", ()), ('[{"max_count": 3}]', "22023", ()), ("null", "22023", ()), ('"max_count"', "22023", ()), ("3", "22023", ()),
    ("true", "22023", ()), ("{}", "ok", ()),
]
for h in HOSTILE:
    metadata_cases.append(({h: 1}, "22023", ()))
    metadata_cases.append(({"max_age": h}, None, ("22007", "22008", "22015")))
    metadata_cases.append(({"max_count": h}, "22023", ()))
for meta, exp, extra in metadata_cases:
    meta_sql = (lit(meta) + "::jsonb") if isinstance(meta, str) else jlit(meta)
    verify = None
    if exp != "22023" and exp != "22003":
        checks = [status_ok(META_STREAM)]
        if isinstance(meta, dict):
            for key in ("truncate_before", "max_count"):
                v = meta.get(key)
                checks.append(f"(eventsource.stream_metadata({lit(META_STREAM)})->{lit(key)}) IS NOT DISTINCT FROM "
                              + ("NULL" if v is None else f"{lit(json.dumps(int(v)))}::jsonb"))
            v = meta.get("max_age")
            if v is None:
                checks.append(f"NOT eventsource.stream_metadata({lit(META_STREAM)}) ? 'max_age'")
            elif isinstance(v, str):
                checks.append(f"(eventsource.stream_metadata({lit(META_STREAM)})->>'max_age')::interval = {lit(v)}::interval")
            else:
                checks.append(f"(eventsource.stream_metadata({lit(META_STREAM)})->>'max_age')::interval = {v!r}::float8 * interval '1 second'")
        verify = "SELECT " + " AND ".join(checks)
    add(f"SELECT eventsource.set_stream_metadata({lit(META_STREAM)}, {meta_sql})", exp, extra, verify,
        1, "set_stream_metadata:metadata")
add(f"SELECT eventsource.set_stream_metadata({lit(META_STREAM)}, NULL)", "22004", (), None, 0, "set_stream_metadata:null")
add(f"SELECT eventsource.set_stream_metadata({lit(META_STREAM)}, '{{}}')", "ok", (), "SELECT " + status_ok(META_STREAM), 1, "set_stream_metadata:clear")
add(f"SELECT eventsource.set_stream_metadata({lit(META_STREAM)}, '{{\"max_count\": 1e400}}'::text::jsonb)", "22003", (), None, 0, "set_stream_metadata:metadata")
add(f"SELECT eventsource.set_stream_metadata({lit(META_STREAM)}, '{{\"max_count\": 3')", None, ("22P02",), None, 0, "set_stream_metadata:unparsable")
add(f"SELECT eventsource.set_stream_metadata({lit(META_STREAM)}, '{{\"max_count\": NaN}}')", None, ("22P02",), None, 0, "set_stream_metadata:unparsable")
add(f"SELECT eventsource.set_stream_metadata({lit(META_STREAM)}, '{{\"max_age\": \"\\u0000\"}}')", None, ("22P05",), None, 0, "set_stream_metadata:unparsable")
add(f"SELECT eventsource.set_stream_metadata({lit(META_STREAM)}, jsonb_build_object('max_age', chr(1)))", "22007", (), None, 0, "set_stream_metadata:metadata")

# Hostile stream ids: metadata, delete, append after the delete, tombstone, and everything after it.
for h in HOSTILE:
    e = stream_expect(h)
    add(f"SELECT eventsource.stream_metadata({lit(h)})", "ok", (), None, 0, "stream_metadata:stream_id")
    # Section 1 appended to every accepted id, so the stream exists.
    add(f"SELECT eventsource.set_stream_metadata({lit(h)}, '{{\"max_count\": 1}}')", e, (),
        f"SELECT eventsource.stream_metadata({lit(h)}) = '{{\"max_count\": 1}}' AND EXISTS (SELECT 1 FROM eventsource.streams WHERE stream_id = {lit(h)} "
        f"AND convert_to(stream_id, 'UTF8') = convert_to({lit(h)}, 'UTF8')) AND (SELECT count(*) FROM eventsource.read_stream({lit(h)})) = 1 AND {status_ok(h)}",
        1, "set_stream_metadata:stream_id")
    add(f"SELECT eventsource.delete_stream({lit(h)}, -1)", e, (),
        f"SELECT (SELECT state FROM eventsource.stream_status WHERE stream_id = {lit(h)}) = 'deleted' AND "
        f"(SELECT count(*) FROM eventsource.read_stream({lit(h)})) = 0 AND {status_ok(h)} AND "
        f"(SELECT data->>'stream_id' FROM eventsource.read_stream('$streams', direction => 'backward', max_count => 1)) = {lit(h)}",
        1, "delete_stream:stream_id")
    eid = new_uuid()
    add(f"SELECT eventsource.append({lit(h)}, 'Reopened', '{{}}', NULL, -1, '{eid}')", e, (),
        f"SELECT count(*) = 1 FROM eventsource.read_stream({lit(h)}) r WHERE r.event_id = '{eid}' AND r.stream_version = eventsource.stream_version({lit(h)}) AND r.stream_version > 1",
        1, "delete_stream:append_after")
    add(f"SELECT eventsource.tombstone_stream({lit(h)})", e, (),
        f"SELECT (SELECT state FROM eventsource.stream_status WHERE stream_id = {lit(h)}) = 'tombstoned' AND (SELECT count(*) FROM eventsource.read_stream({lit(h)})) = 0",
        1, "tombstone_stream:stream_id")
    after = "SE005" if e == "ok" else e
    add(f"SELECT eventsource.append({lit(h)}, 'T', '{{}}')", after, (), None, 0, "tombstone_stream:append_after")
    add(f"SELECT * FROM eventsource.append_events({lit(h)}, '[{{\"type\": \"T\", \"data\": {{}}}}]', 0)", after, (), None, 0, "tombstone_stream:append_after")
    add(f"SELECT eventsource.tombstone_stream({lit(h)}, 0)", after, (), None, 0, "tombstone_stream:again")
    add(f"SELECT eventsource.delete_stream({lit(h)})", after, (), None, 0, "tombstone_stream:delete_after")
    add(f"SELECT eventsource.set_stream_metadata({lit(h)}, '{{}}')", after, (), None, 0, "tombstone_stream:metadata_after")
    # Ids never written: delete and metadata find no stream; a tombstone reserves the id.
    n = "hn-" + h if h is not None else None
    ne_ = stream_expect(n)
    add(f"SELECT eventsource.delete_stream({lit(n)})", "42704" if ne_ == "ok" else ne_, (), None, 0, "delete_stream:never_written")
    add(f"SELECT eventsource.set_stream_metadata({lit(n)}, '{{\"max_count\": 1}}')", "42704" if ne_ == "ok" else ne_, (), None, 0, "set_stream_metadata:never_written")
    add(f"SELECT eventsource.tombstone_stream({lit(n)}, 0)", ne_, (),
        f"SELECT count(*) = 1 FROM eventsource.stream_status WHERE stream_id = {lit(n)} AND state = 'tombstoned' AND stream_version = 0 "
        f"AND category = eventsource.category({lit(n)})", 1, "tombstone_stream:never_written")
    add(f"SELECT eventsource.append({lit(n)}, 'T', '{{}}')", "SE005" if ne_ == "ok" else ne_, (), None, 0, "tombstone_stream:never_written_append")
for sql, exp in ((f"SELECT eventsource.delete_stream(NULL)", "22004"), ("SELECT eventsource.delete_stream(NULL, 1)", "22004"),
                 ("SELECT eventsource.tombstone_stream(NULL)", "22004"), ("SELECT eventsource.tombstone_stream(NULL, NULL)", "22004"),
                 ("SELECT eventsource.set_stream_metadata(NULL, '{}')", "22004"), ("SELECT eventsource.set_stream_metadata(NULL, NULL)", "22004"),
                 ("SELECT eventsource.stream_metadata(NULL)", "ok"), ("SELECT eventsource.scavenge(NULL)", "22004"),
                 ("SELECT eventsource.delete_stream('$streams')", "22023"), ("SELECT eventsource.tombstone_stream('$streams')", "22023"),
                 ("SELECT eventsource.set_stream_metadata('$streams', '{\"max_count\": 1}')", "22023"),
                 ("SELECT eventsource.delete_stream('$streams-x')", "22023"), ("SELECT eventsource.tombstone_stream('$new')", "22023"),
                 ("SELECT eventsource.delete_stream(repeat('s', 1048576))", "22001"), ("SELECT eventsource.tombstone_stream(repeat('é', 251))", "22001"),
                 ("SELECT eventsource.set_stream_metadata(repeat('s', 501), '{}')", "22001"),
                 ("SELECT eventsource.delete_stream('base-1', 0)", "SE001"), ("SELECT eventsource.delete_stream('base-1', 3)", "SE001"),
                 ("SELECT eventsource.tombstone_stream('base-1', 1)", "SE001"), ("SELECT eventsource.tombstone_stream('base-2', 0)", "SE001"),
                 ("SELECT eventsource.set_stream_metadata('base-1', '{\"max_count\": 0}')", "22023"),
                 ("SELECT eventsource.set_stream_metadata('base-1', '{\"max_age\": \"never\"}')", "22007"),
                 ("SELECT eventsource.set_stream_metadata('base-2', '{\"truncate_before\": 1e400}')", "22003"),
                 ("SELECT eventsource.stream_metadata('base-1')", "ok")):
    add(sql, exp, (), None, 0, "lifecycle:null_reserved")
for b in ("\\x00", "\\xc328", "\\xff", "\\xeda080"):
    expr = f"convert_from('{b}'::bytea, 'UTF8')"
    for sql in (f"SELECT eventsource.delete_stream({expr})", f"SELECT eventsource.tombstone_stream({expr})",
                f"SELECT eventsource.set_stream_metadata({expr}, '{{}}')", f"SELECT eventsource.set_stream_metadata('h-1', jsonb_build_object({expr}, 1))",
                f"SELECT eventsource.set_stream_metadata('h-1', jsonb_build_object('max_age', {expr}))", f"SELECT eventsource.stream_metadata({expr})"):
        add(sql, None, ("22021",), None, 0, "lifecycle:encoding")

# Extreme expected versions: delete of a stream at version 1, tombstone of an id never written.
for v in BIG:
    n = None if v == "NULL" else int(v)
    if not fits_big(v):
        de = te = None
    elif n is not None and n < -1:
        de = te = "22023"
    else:
        de = "ok" if n is None or n in (1, -1) else "SE001"
        te = "ok" if n is None or n == 0 else "SE001"
    s = fresh("hx")
    append_case(s, "T", "'{}'::jsonb", expect="ok", kind="lifecycle:setup")
    add(f"SELECT eventsource.delete_stream({lit(s)}, {v})", de, ("22003", "42883"),
        f"SELECT count(*) = 0 FROM eventsource.read_stream({lit(s)})", 1, "delete_stream:expected_version")
    add(f"SELECT eventsource.tombstone_stream({lit(fresh('hx'))}, {v})", te, ("22003", "42883"), None, 1, "tombstone_stream:expected_version")
    add(f"SELECT eventsource.tombstone_stream({lit(s)}, {v})", "SE001" if de == "SE001" and n != 0 and v != "NULL" else None, ("22003", "42883", "22023", "SE005"),
        None, 1, "tombstone_stream:expected_version")
    # scavenge(max_events): 1 to 100000; removes nothing here (see above).
    se = None if not fits_int(v) else ("22004" if n is None else ("ok" if 1 <= n <= 100000 else "22023"))
    add(f"SELECT eventsource.scavenge({v})", se, ("22003", "42883"), None if se != "ok" else None, 0, "scavenge:max_events")
for v in ("1", "100000", "2147483647", "0", "-1", "-2147483648", "NULL"):
    add(f"CALL eventsource.scavenge_all({v})", None, ("22004", "22023"), None, 0, "scavenge_all:batch_size")
add("SELECT eventsource.scavenge()", "ok", (), "SELECT true", 0, "scavenge")
add("SELECT eventsource.scavenge(1) = 0", "ok", (), None, 0, "scavenge")
# In a read-only transaction every lifecycle change is refused (25006); were one accepted, the
# block would go on to raise XX000, which the summary reports as an internal error.
for call in ("eventsource.scavenge()", "eventsource.scavenge(0)", f"eventsource.delete_stream({lit(META_STREAM)})",
             f"eventsource.tombstone_stream({lit(META_STREAM)})", "eventsource.tombstone_stream('hro-never')",
             f"eventsource.set_stream_metadata({lit(META_STREAM)}, '{{\"max_count\": 1}}')",
             f"eventsource.set_stream_metadata({lit(META_STREAM)}, '{{\"max_count\": 0}}')"):
    add(f"DO $ro$ BEGIN PERFORM pg_catalog.set_config('transaction_read_only', 'on', true); PERFORM {call}; "
        f"RAISE EXCEPTION 'accepted in a read-only transaction' USING ERRCODE = 'XX000'; END $ro$",
        "25006", ("22023",), None, 0, "lifecycle:read_only")
add("SELECT count(*) FROM eventsource.stream_status", "ok", (), None, 0, "lifecycle:views")
add("SELECT count(*) FROM eventsource.category_statistics", "ok", (), None, 0, "lifecycle:views")
add("SELECT count(*) FROM eventsource.store_statistics WHERE appends IS NOT NULL", "ok", (), "SELECT count(*) = 1 FROM eventsource.store_statistics WHERE appends > 0", 0, "lifecycle:views")

# 9. Payloads up to and past the limits (run last: the notifier and projections have gone).
for size, label in ((1048576, "1MB"), (1048577, "1MB+1"), (8 * 1048576, "8MB")):
    append_case(fresh("hl"), "Big", f"jsonb_build_object('s', repeat('x', {size}))", f"jsonb_build_object('m', repeat('y', {size}))", expect="ok", kind=f"payload:{label}")
append_case(fresh("hl"), "Big", "(SELECT jsonb_object_agg(i::text, md5(i::text)) FROM generate_series(1, 40000) i)", expect="ok", kind="payload:incompressible")
append_case(fresh("hl"), "Big", "jsonb_build_object('s', repeat('é', 50 * 1048576))", expect="ok", kind="payload:100MB")
add("SELECT eventsource.save_snapshot('h-1', 1, jsonb_build_object('s', repeat('z', 2 * 1048576)), 11)", "ok", (),
    "SELECT count(*) = 1 FROM eventsource.load_snapshot('h-1', 1, 11) WHERE md5(state->>'s') = md5(repeat('z', 2 * 1048576))", 0, "payload:snapshot")
add("SELECT eventsource.append('hl-past', 'Big', jsonb_build_object('s', repeat('x', 268435456)))", None, ("54000",), None, 0, "payload:past_jsonb_limit")
add("SELECT * FROM eventsource.append_events('hl-past', jsonb_build_array(jsonb_build_object('type', repeat('t', 1048576), 'data', '{}'::jsonb)))", "22001", (), None, 0, "payload:type_1MB")
add("SELECT eventsource.append(repeat('s', 1048576), 'T', '{}')", "22001", (), None, 0, "payload:stream_id_1MB")

print("BEGIN;")
print("INSERT INTO hostile.cases (id, kind, sql, expect, extra, verify, events) VALUES")
rows = []
for i, (kind, sql, expect, extra, verify, events) in enumerate(cases, 1):
    arr = "ARRAY[" + ",".join(lit(e) for e in extra) + "]::text[]"
    rows.append(f"({i}, {lit(kind)}, {lit(sql)}, {lit(expect)}, {arr}, {lit(verify)}, {events})")
print(",\n".join(rows) + ";")
print("COMMIT;")
