-- append.sql: appends, expected versions, idempotent retries, catching a conflict by SQLSTATE.
-- Start from an empty store.
DROP EXTENSION eventsource;
CREATE EXTENSION eventsource;
\set VERBOSITY default

-- A new stream starts at version 1; the function returns the new version.
SELECT eventsource.append('order-1', 'OrderPlaced', '{"total": 30}');
SELECT eventsource.append('order-1', 'OrderPaid', '{"amount": 30}', '{"user": "ann"}');
SELECT eventsource.stream_version('order-1');
SELECT eventsource.stream_version('order-never');

-- expected_version 0: the stream must not exist.
SELECT eventsource.append('order-2', 'OrderPlaced', '{"total": 5}', expected_version => 0);
SELECT eventsource.append('order-2', 'OrderPlaced', '{"total": 5}', expected_version => 0);

-- expected_version -1: the stream must exist.
SELECT eventsource.append('order-2', 'OrderPaid', '{"amount": 5}', expected_version => -1);
SELECT eventsource.append('order-3', 'OrderPaid', '{"amount": 5}', expected_version => -1);

-- expected_version N: exactly N.
SELECT eventsource.append('order-2', 'OrderShipped', '{}', expected_version => 2);
SELECT eventsource.append('order-2', 'OrderShipped', '{}', expected_version => 2);
SELECT eventsource.append('order-3', 'OrderShipped', '{}', expected_version => 7);

-- A failed append writes nothing and takes no global position.
SELECT count(*) AS events, max(global_position) AS last_position FROM eventsource.events;
SELECT stream_id, category, stream_version FROM eventsource.streams ORDER BY stream_id;

-- A batch: all events in one stream, consecutive versions and positions, in one transaction.
SELECT * FROM eventsource.append_events('cart-9', '[
  {"type": "ItemAdded", "data": {"sku": "A", "quantity": 1}},
  {"type": "ItemAdded", "data": {"sku": "B", "quantity": 2}, "metadata": {"source": "web"}},
  {"type": "CartCheckedOut", "data": {}, "metadata": null, "id": null}
]', expected_version => 0);
SELECT stream_version, event_type, data, metadata, transaction_id = (
         SELECT transaction_id FROM eventsource.events WHERE stream_id = 'cart-9' AND stream_version = 1) AS same_transaction
  FROM eventsource.events WHERE stream_id = 'cart-9' ORDER BY stream_version;
-- A batch with the wrong expected version writes none of its events.
SELECT * FROM eventsource.append_events('cart-9', '[{"type": "ItemAdded", "data": {}}, {"type": "ItemAdded", "data": {}}]', 1);
SELECT eventsource.stream_version('cart-9');

-- Generated event ids are version 7 uuids.
SELECT DISTINCT substr(event_id::text, 15, 1) AS uuid_version FROM eventsource.events;

-- Idempotent retries: the same event ids at the same place return the original result.
SELECT * FROM eventsource.append_events('invoice-1', '[
  {"type": "InvoiceIssued", "data": {"amount": 100}, "id": "11111111-1111-4111-8111-111111111111"},
  {"type": "InvoiceSent", "data": {}, "id": "22222222-2222-4222-8222-222222222222"}
]', expected_version => 0);
SELECT max(global_position) AS last_position FROM eventsource.events \gset
SELECT * FROM eventsource.append_events('invoice-1', '[
  {"type": "InvoiceIssued", "data": {"amount": 100}, "id": "11111111-1111-4111-8111-111111111111"},
  {"type": "InvoiceSent", "data": {}, "id": "22222222-2222-4222-8222-222222222222"}
]', expected_version => 0);
-- ... with any expected version too, and with an id written without hyphens.
SELECT * FROM eventsource.append_events('invoice-1', '[
  {"type": "InvoiceIssued", "data": {"amount": 100}, "id": "11111111111141118111111111111111"},
  {"type": "InvoiceSent", "data": {}, "id": "22222222-2222-4222-8222-222222222222"}
]');
SELECT eventsource.append('invoice-1', 'InvoiceSent', '{}', event_id => '22222222-2222-4222-8222-222222222222');
SELECT count(*) = 0 AS nothing_written FROM eventsource.events WHERE global_position > :last_position;
-- A retry that expected a different version is a conflict.
SELECT * FROM eventsource.append_events('invoice-1', '[
  {"type": "InvoiceIssued", "data": {"amount": 100}, "id": "11111111-1111-4111-8111-111111111111"}
]', expected_version => 5);
-- An id reused in another stream is an error, not a silent duplicate.
SELECT eventsource.append('invoice-2', 'InvoiceIssued', '{}', event_id => '11111111-1111-4111-8111-111111111111');
-- Some ids stored and others not, or stored in another order: an error.
SELECT * FROM eventsource.append_events('invoice-1', '[
  {"type": "InvoiceIssued", "data": {"amount": 100}, "id": "11111111-1111-4111-8111-111111111111"},
  {"type": "InvoicePaid", "data": {}, "id": "33333333-3333-4333-8333-333333333333"}
]');
SELECT * FROM eventsource.append_events('invoice-1', '[
  {"type": "InvoiceSent", "data": {}, "id": "22222222-2222-4222-8222-222222222222"},
  {"type": "InvoiceIssued", "data": {"amount": 100}, "id": "11111111-1111-4111-8111-111111111111"}
]');
SELECT count(*) = 0 AS nothing_written FROM eventsource.events WHERE global_position > :last_position;
-- New ids append as usual.
SELECT eventsource.append('invoice-1', 'InvoicePaid', '{}', expected_version => 2,
                          event_id => '33333333-3333-4333-8333-333333333333');

-- A conflict is caught by its SQLSTATE in PL/pgSQL, with the versions in the detail.
DO $$
DECLARE
    detail text;
BEGIN
    PERFORM eventsource.append('order-1', 'OrderCancelled', '{}', expected_version => 1);
EXCEPTION WHEN SQLSTATE 'SE001' THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RAISE NOTICE 'caught version conflict: %', detail;
END
$$;

-- A read-modify-write loop that retries on conflict.
DO $$
DECLARE
    version bigint;
    attempts int := 0;
BEGIN
    LOOP
        attempts := attempts + 1;
        version := eventsource.stream_version('order-1') - CASE WHEN attempts = 1 THEN 1 ELSE 0 END;
        BEGIN
            PERFORM eventsource.append('order-1', 'OrderShipped', '{}', expected_version => version);
            EXIT;
        EXCEPTION WHEN SQLSTATE 'SE001' THEN
            RAISE NOTICE 'attempt % lost the race, retrying', attempts;
        END;
    END LOOP;
    RAISE NOTICE 'appended after % attempts', attempts;
END
$$;
SELECT stream_version, event_type FROM eventsource.read_stream('order-1');

-- Appends inside a transaction that rolls back leave no trace.
BEGIN;
SELECT eventsource.append('order-9', 'OrderPlaced', '{}');
ROLLBACK;
SELECT eventsource.stream_version('order-9');

-- Several appends to one stream in one transaction.
BEGIN;
SELECT eventsource.append('order-8', 'OrderPlaced', '{}', expected_version => 0);
SELECT eventsource.append('order-8', 'OrderPaid', '{}', expected_version => 1);
COMMIT;
SELECT stream_version, event_type FROM eventsource.read_stream('order-8');

-- Unicode and large payloads are stored and read back unchanged.
SELECT eventsource.append('note-1', 'NoteWritten', jsonb_build_object('text', 'grüße, 東京 ✓', 'blob', repeat('x', 100000)));
SELECT data->>'text' AS text, length(data->>'blob') AS blob_length FROM eventsource.read_stream('note-1');

-- The category is the part of the stream id before its first '-'.
SELECT eventsource.category('order-1'), eventsource.category('order-1-a'), eventsource.category('plain');

-- One transaction may append to more streams than the lock table holds locks (a bulk import): only
-- an append before the transaction's first write takes a lock on its stream.
SELECT count(eventsource.append('bulk-' || n, 'Imported', '{}')) AS imported FROM generate_series(1, 10000) AS n;
SELECT count(*) AS bulk_streams FROM eventsource.streams WHERE stream_id LIKE 'bulk-%';
