-- bulk_load_dropped_objects: the marker of a bulk load (battles_sink::bulk). Before a backfill
-- into an empty database the writer drops the indexes, unique and primary keys and foreign keys
-- of the tables it fills, and records here, in the same transaction, the exact definition of
-- each (pg_get_indexdef, pg_get_constraintdef). Why: COPY into tables without indexes and
-- rebuilding them afterwards is several times faster than maintaining them row by row; and a
-- process that dies mid-load leaves this list behind, from which the next command rebuilds what
-- is missing. A row is deleted in the transaction that restores its object, so the table is
-- empty exactly when no bulk load is in progress or left unfinished.
CREATE TABLE bulk_load_dropped_objects (
  table_name TEXT NOT NULL,
  object_name TEXT NOT NULL,
  object_kind TEXT NOT NULL
    CHECK (object_kind IN ('index', 'primary_key', 'unique', 'foreign_key')),
  -- The CREATE [UNIQUE] INDEX statement of an index, or of the index behind a primary key or
  -- unique constraint; NULL for a foreign key.
  index_definition TEXT,
  -- pg_get_constraintdef of a constraint; NULL for a plain index.
  constraint_definition TEXT,
  -- Whether the constraint was validated (a foreign key added NOT VALID stays so).
  constraint_validated BOOLEAN NOT NULL DEFAULT TRUE,
  constraint_deferrable BOOLEAN NOT NULL DEFAULT FALSE,
  constraint_initially_deferred BOOLEAN NOT NULL DEFAULT FALSE,
  dropped_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  PRIMARY KEY (table_name, object_name),
  CHECK ((object_kind = 'foreign_key') = (index_definition IS NULL)),
  CHECK ((object_kind = 'index') = (constraint_definition IS NULL))
);
