-- The killmail store keeps each record as the UTF-8 bytes of its JSON (the enriched camelCase
-- shape of battles_dataflow::Killmail) instead of JSONB, without the content_md5 column.
-- Why: parsing 3 KB of JSON into JSONB and hashing its text again for content_md5 took most of
-- a backfill's time (about 3,500 killmails/s on a 2-core machine). The service only ever reads
-- a record back whole, and duplicates are told apart before the sink (the ingest fingerprint).
-- For ad-hoc queries: convert_from(record, 'UTF8')::jsonb.
ALTER TABLE killmails DROP COLUMN content_md5;
ALTER TABLE killmails ALTER COLUMN record TYPE BYTEA USING convert_to(record::text, 'UTF8');

-- lz4 compresses the records several times faster than the default pglz; servers built
-- without lz4 keep the default.
DO $$
BEGIN
  ALTER TABLE killmails ALTER COLUMN record SET COMPRESSION lz4;
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE 'lz4 compression is not available; killmail records use the default';
END
$$;
