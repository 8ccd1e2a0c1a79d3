//! Bulk-load mode: filling empty battle tables without maintaining their indexes row by row.
//!
//! [`Sink::begin_bulk_load`] drops, in one transaction, the indexes, unique and primary keys and
//! foreign keys of the tables a backfill fills ([`BULK_TABLES`]), after recording the exact
//! definition of each in `bulk_load_dropped_objects` (migration V6). The writer then only
//! inserts new rows (COPY). [`BulkLoad::finish`] rebuilds everything from that record, in
//! parallel over several pooled connections, deleting each record row in the transaction that
//! restores its object, so the record is empty exactly when the schema is whole again.
//!
//! A process that dies mid-load leaves the record behind; [`repair_interrupted_bulk_load`]
//! (run by [`crate::migrate()`] before it applies migrations, so at the start of every command)
//! rebuilds what is missing and skips what already exists. Check constraints, NOT NULL and
//! triggers are never dropped: the `battle_counts` triggers on `battles` (V4) keep counting
//! through a bulk load. [`schema_fingerprint`] lists the public schema's catalog so tests can
//! tell that a bulk load leaves it exactly as migrations made it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use tokio_postgres::Client;

use crate::error::{describe_pg, SinkError};
use crate::migrate::quote_ident;
use crate::sink::{Sink, WriterLock, WRITER_LOCK_KEY};

/// The tables a bulk load fills, whose indexes and keys it drops. Foreign keys referencing them
/// from other tables (`battle_aliases.battle_id`) are dropped too, since they depend on the
/// referenced primary key.
pub const BULK_TABLES: [&str; 6] = [
    "battles",
    "battle_participants",
    "battle_killmails",
    "battle_statistics",
    "killmails",
    "battle_third_parties",
];

/// What kind of catalog object a bulk load dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DroppedKind {
    /// An index no constraint owns.
    Index,
    PrimaryKey,
    Unique,
    ForeignKey,
}

impl DroppedKind {
    /// The value of `bulk_load_dropped_objects.object_kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            DroppedKind::Index => "index",
            DroppedKind::PrimaryKey => "primary_key",
            DroppedKind::Unique => "unique",
            DroppedKind::ForeignKey => "foreign_key",
        }
    }

    fn parse(kind: &str) -> Option<DroppedKind> {
        [
            DroppedKind::Index,
            DroppedKind::PrimaryKey,
            DroppedKind::Unique,
            DroppedKind::ForeignKey,
        ]
        .into_iter()
        .find(|k| k.as_str() == kind)
    }

    /// True for the constraints that own an index (built in the parallel index phase).
    fn is_key(self) -> bool {
        matches!(self, DroppedKind::PrimaryKey | DroppedKind::Unique)
    }
}

impl std::fmt::Display for DroppedKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DroppedKind::Index => "index",
            DroppedKind::PrimaryKey => "primary key",
            DroppedKind::Unique => "unique constraint",
            DroppedKind::ForeignKey => "foreign key",
        })
    }
}

/// One dropped index or constraint, as recorded in `bulk_load_dropped_objects`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DroppedObject {
    pub table: String,
    pub name: String,
    pub kind: DroppedKind,
    /// `pg_get_indexdef` of the index (of the key's index for a primary key or unique
    /// constraint); `None` for a foreign key.
    pub index_definition: Option<String>,
    /// `pg_get_constraintdef`; `None` for a plain index.
    pub constraint_definition: Option<String>,
    pub validated: bool,
    pub deferrable: bool,
    pub initially_deferred: bool,
}

/// How a bulk load drops and rebuilds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkLoadOptions {
    /// Drop the primary keys too. COPY of 300,000 participants took 0.9 s without any index
    /// against 1.7–2.4 s with only the (random UUID) primary key, and the key rebuilt in 0.25 s.
    /// Without them, an UPDATE or DELETE by id during the load scans the whole table and
    /// `INSERT ... ON CONFLICT` on a key fails: the writer must only insert.
    pub drop_primary_keys: bool,
    /// Connections [`BulkLoad::finish`] rebuilds over (at most the pool's size).
    pub rebuild_connections: usize,
    /// `maintenance_work_mem` of each rebuilding session (index builds sort in it).
    pub maintenance_work_mem: String,
}

impl Default for BulkLoadOptions {
    /// Primary keys dropped; one rebuilding connection per CPU of this machine (at least 2);
    /// 1 GB of sort memory each.
    fn default() -> Self {
        BulkLoadOptions {
            drop_primary_keys: true,
            rebuild_connections: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .max(2),
            maintenance_work_mem: "1GB".to_owned(),
        }
    }
}

/// One object a rebuild restored (or found already present).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RebuiltObject {
    pub table: String,
    pub name: String,
    pub kind: DroppedKind,
    /// Time spent building it (index build, attaching the key, adding and validating the
    /// foreign key); zero when it was already present.
    pub elapsed: Duration,
    /// It existed already (a repair after a rebuild that got this far).
    pub already_present: bool,
}

/// What a rebuild did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkReport {
    /// Ordered by table, then name.
    pub objects: Vec<RebuiltObject>,
    /// Wall time of the whole rebuild.
    pub elapsed: Duration,
    /// Connections it rebuilt over.
    pub connections: usize,
}

/// What [`repair_interrupted_bulk_load`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RepairOutcome {
    /// No bulk load was left unfinished.
    NothingToRepair,
    /// A bulk load is recorded but a session holds the writer lock: the load is (presumably)
    /// still running, so its objects were left alone.
    WriterActive {
        pending: i64,
    },
    Repaired(BulkReport),
}

/// A bulk load in progress: the indexes and keys of [`BULK_TABLES`] are dropped until
/// [`BulkLoad::finish`]. Borrows the writer lock, which must be held until then. Dropping it
/// without finishing leaves the tables without their indexes; the next command repairs them.
pub struct BulkLoad<'w> {
    pool: Pool,
    options: BulkLoadOptions,
    dropped: Vec<DroppedObject>,
    began: Instant,
    finished: bool,
    _writer: &'w WriterLock,
}

impl Sink {
    /// [`Sink::begin_bulk_load_with`] with the default options.
    pub async fn begin_bulk_load<'w>(
        &self,
        writer: &'w WriterLock,
    ) -> Result<BulkLoad<'w>, SinkError> {
        self.begin_bulk_load_with(writer, BulkLoadOptions::default())
            .await
    }

    /// Drops the indexes, unique and primary keys (see [`BulkLoadOptions::drop_primary_keys`])
    /// and foreign keys of [`BULK_TABLES`] after recording their definitions, in one
    /// transaction. Only for the holder of the writer lock (`writer`; checked against the
    /// server's locks too, failing with [`SinkError::BulkLoadWithoutWriterLock`]): the writer
    /// must then only insert new rows until [`BulkLoad::finish`], and no other process may
    /// write battles meanwhile. Meant for an empty database ([`Sink::bulk_tables_empty`]);
    /// fails with [`SinkError::BulkLoadPending`] while an earlier bulk load is recorded.
    pub async fn begin_bulk_load_with<'w>(
        &self,
        writer: &'w WriterLock,
        options: BulkLoadOptions,
    ) -> Result<BulkLoad<'w>, SinkError> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        // API readers hold their locks for a query's length; do not queue behind a stuck one.
        tx.batch_execute("SET LOCAL lock_timeout = '60s'").await?;
        let writer_held: bool = tx
            .query_one(
                "SELECT EXISTS (
                   SELECT 1 FROM pg_locks l
                   WHERE l.locktype = 'advisory' AND l.granted
                     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                     AND ((l.classid::int8 << 32) | l.objid::int8) = $1)",
                &[&WRITER_LOCK_KEY],
            )
            .await?
            .get(0);
        if !writer_held {
            return Err(SinkError::BulkLoadWithoutWriterLock);
        }
        let pending = pending_count(&*tx).await?;
        if pending > 0 {
            return Err(SinkError::BulkLoadPending { objects: pending });
        }
        let dropped = droppable_objects(&*tx, options.drop_primary_keys).await?;
        for object in &dropped {
            tx.execute(
                "INSERT INTO bulk_load_dropped_objects
                   (table_name, object_name, object_kind, index_definition, constraint_definition,
                    constraint_validated, constraint_deferrable, constraint_initially_deferred)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &object.table,
                    &object.name,
                    &object.kind.as_str(),
                    &object.index_definition,
                    &object.constraint_definition,
                    &object.validated,
                    &object.deferrable,
                    &object.initially_deferred,
                ],
            )
            .await?;
        }
        // Foreign keys first (they depend on the referenced keys), then keys, then indexes.
        for kind in [
            DroppedKind::ForeignKey,
            DroppedKind::PrimaryKey,
            DroppedKind::Unique,
            DroppedKind::Index,
        ] {
            for object in dropped.iter().filter(|o| o.kind == kind) {
                let statement = if kind == DroppedKind::Index {
                    format!("DROP INDEX public.{}", quote_ident(&object.name))
                } else {
                    format!(
                        "ALTER TABLE public.{} DROP CONSTRAINT {}",
                        quote_ident(&object.table),
                        quote_ident(&object.name)
                    )
                };
                tx.batch_execute(&statement).await?;
            }
        }
        tx.commit().await?;
        tracing::info!(
            objects = dropped.len(),
            drop_primary_keys = options.drop_primary_keys,
            "bulk load: dropped the indexes and keys of the battle tables"
        );
        Ok(BulkLoad {
            pool: self.pool().clone(),
            options,
            dropped,
            began: Instant::now(),
            finished: false,
            _writer: writer,
        })
    }

    /// True when `battles` and `killmails` hold no rows: a backfill may bulk-load.
    pub async fn bulk_tables_empty(&self) -> Result<bool, SinkError> {
        let client = self.pool().get().await?;
        Ok(client
            .query_one(
                "SELECT NOT EXISTS (SELECT 1 FROM battles) AND NOT EXISTS (SELECT 1 FROM killmails)",
                &[],
            )
            .await?
            .get(0))
    }
}

impl BulkLoad<'_> {
    /// What [`Sink::begin_bulk_load`] dropped.
    pub fn dropped(&self) -> &[DroppedObject] {
        &self.dropped
    }

    /// Rebuilds every dropped object from the record: all indexes (those of the keys
    /// included) in parallel, one `CREATE INDEX` per connection at a time, biggest tables
    /// first; then the keys are attached to their indexes; then the foreign keys are added
    /// `NOT VALID` and validated in parallel. A failure (a duplicate key the load let in, say)
    /// is returned as [`SinkError::BulkRebuild`] naming each object and the server's reason;
    /// what could not be rebuilt stays recorded, so removing the cause and running any command
    /// (or [`repair_interrupted_bulk_load`]) completes it.
    pub async fn finish(mut self) -> Result<BulkReport, SinkError> {
        self.finished = true;
        let connections = self
            .options
            .rebuild_connections
            .clamp(1, self.pool.status().max_size.max(1));
        let mut pooled = Vec::with_capacity(connections);
        for _ in 0..connections {
            pooled.push(self.pool.get().await?);
        }
        let mut workers: Vec<&mut Client> = pooled.iter_mut().map(|o| &mut ***o).collect();
        let loaded_for = self.began.elapsed();
        let report = rebuild(&mut workers, &self.options.maintenance_work_mem).await?;
        tracing::info!(
            objects = report.objects.len(),
            connections = report.connections,
            loaded_for_ms = loaded_for.as_millis() as u64,
            rebuild_ms = report.elapsed.as_millis() as u64,
            "bulk load finished: indexes and keys rebuilt"
        );
        Ok(report)
    }
}

impl Drop for BulkLoad<'_> {
    fn drop(&mut self) {
        if !self.finished {
            tracing::warn!(
                objects = self.dropped.len(),
                "bulk load dropped without finish: the battle tables stay without their \
                 indexes and keys until the next command repairs them"
            );
        }
    }
}

/// Rebuilds what an interrupted bulk load left dropped, on `client` alone, when no session
/// holds the writer lock (a bulk load still running is left alone); takes the writer lock for
/// the rebuild's length. Idempotent: objects that exist already are skipped, and running it
/// with nothing recorded does nothing. Logs what it repaired.
pub async fn repair_interrupted_bulk_load(client: &mut Client) -> Result<RepairOutcome, SinkError> {
    let marker_exists: bool = client
        .query_one(
            "SELECT to_regclass('public.bulk_load_dropped_objects') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    if !marker_exists {
        return Ok(RepairOutcome::NothingToRepair);
    }
    let pending = pending_count(&*client).await?;
    if pending == 0 {
        return Ok(RepairOutcome::NothingToRepair);
    }
    let taken: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&WRITER_LOCK_KEY])
        .await?
        .get(0);
    if !taken {
        tracing::info!(
            pending,
            "a bulk load is recorded and a writer holds the lock: leaving it to finish"
        );
        return Ok(RepairOutcome::WriterActive { pending });
    }
    tracing::warn!(
        pending,
        "an interrupted bulk load left indexes and keys dropped; rebuilding them"
    );
    let result = rebuild(
        &mut [&mut *client],
        &BulkLoadOptions::default().maintenance_work_mem,
    )
    .await;
    let unlock = client
        .execute("SELECT pg_advisory_unlock($1)", &[&WRITER_LOCK_KEY])
        .await;
    let report = result?;
    unlock?;
    for object in &report.objects {
        tracing::info!(
            table = %object.table,
            name = %object.name,
            kind = %object.kind,
            already_present = object.already_present,
            elapsed_ms = object.elapsed.as_millis() as u64,
            "repaired after an interrupted bulk load"
        );
    }
    Ok(RepairOutcome::Repaired(report))
}

/// Every column, index, constraint (with its validity) and user trigger of the public schema,
/// one line each, in a stable order: equal fingerprints mean the same schema.
pub async fn schema_fingerprint(client: &Client) -> Result<Vec<String>, SinkError> {
    let rows = client
        .query(
            r#"SELECT line FROM (
                 SELECT 1 AS part, c.relname::text AS rel, lpad(a.attnum::text, 6, '0') AS item,
                        format('column %s.%s %s%s%s%s%s%s', c.relname, a.attname,
                               format_type(a.atttypid, a.atttypmod),
                               CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
                               CASE a.attgenerated WHEN 's' THEN ' generated always as ' ELSE '' END,
                               coalesce(CASE WHEN a.attgenerated = '' THEN ' default ' ELSE '' END
                                        || pg_get_expr(d.adbin, d.adrelid), ''),
                               CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END,
                               CASE WHEN a.attcompression <> '' THEN ' compression ' || a.attcompression::text ELSE '' END)
                          AS line
                 FROM pg_attribute a
                 JOIN pg_class c ON c.oid = a.attrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attnum > 0
                   AND NOT a.attisdropped
               UNION ALL
                 SELECT 2, t.relname::text, i.relname::text,
                        format('index %s.%s %s valid=%s ready=%s', t.relname, i.relname,
                               pg_get_indexdef(i.oid), x.indisvalid, x.indisready)
                 FROM pg_index x
                 JOIN pg_class i ON i.oid = x.indexrelid
                 JOIN pg_class t ON t.oid = x.indrelid
                 JOIN pg_namespace n ON n.oid = t.relnamespace
                 WHERE n.nspname = 'public'
               UNION ALL
                 SELECT 3, t.relname::text, co.conname::text,
                        format('constraint %s.%s %s validated=%s index=%s', t.relname, co.conname,
                               pg_get_constraintdef(co.oid), co.convalidated,
                               coalesce((SELECT relname::text FROM pg_class WHERE oid = co.conindid), '-'))
                 FROM pg_constraint co
                 JOIN pg_class t ON t.oid = co.conrelid
                 JOIN pg_namespace n ON n.oid = t.relnamespace
                 WHERE n.nspname = 'public'
               UNION ALL
                 SELECT 4, t.relname::text, tg.tgname::text,
                        format('trigger %s.%s %s enabled=%s', t.relname, tg.tgname,
                               pg_get_triggerdef(tg.oid), tg.tgenabled::text)
                 FROM pg_trigger tg
                 JOIN pg_class t ON t.oid = tg.tgrelid
                 JOIN pg_namespace n ON n.oid = t.relnamespace
                 WHERE n.nspname = 'public' AND NOT tg.tgisinternal
               ) catalog
               ORDER BY part, rel COLLATE "C", item COLLATE "C""#,
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Rows in the bulk-load record.
async fn pending_count(client: &impl tokio_postgres::GenericClient) -> Result<i64, SinkError> {
    Ok(client
        .query_one("SELECT count(*) FROM bulk_load_dropped_objects", &[])
        .await?
        .get(0))
}

/// The indexes, keys and foreign keys of [`BULK_TABLES`] (primary keys only when
/// `drop_primary_keys`), with the foreign keys of other tables that reference them.
async fn droppable_objects(
    client: &impl tokio_postgres::GenericClient,
    drop_primary_keys: bool,
) -> Result<Vec<DroppedObject>, SinkError> {
    let tables: Vec<&str> = BULK_TABLES.to_vec();
    let rows = client
        .query(
            "SELECT t.relname::text, co.conname::text, co.contype::text,
                    CASE WHEN co.contype IN ('p', 'u') THEN pg_get_indexdef(co.conindid) END,
                    pg_get_constraintdef(co.oid), co.convalidated, co.condeferrable, co.condeferred
             FROM pg_constraint co
             JOIN pg_class t ON t.oid = co.conrelid
             JOIN pg_namespace n ON n.oid = t.relnamespace
             LEFT JOIN pg_class r ON r.oid = co.confrelid
             WHERE n.nspname = 'public'
               AND ((co.contype = 'u' AND t.relname = ANY($1))
                 OR (co.contype = 'p' AND $2 AND t.relname = ANY($1))
                 OR (co.contype = 'f' AND (t.relname = ANY($1) OR r.relname = ANY($1))))
             UNION ALL
             SELECT t.relname::text, i.relname::text, 'i', pg_get_indexdef(i.oid), NULL,
                    TRUE, FALSE, FALSE
             FROM pg_index x
             JOIN pg_class i ON i.oid = x.indexrelid
             JOIN pg_class t ON t.oid = x.indrelid
             JOIN pg_namespace n ON n.oid = t.relnamespace
             WHERE n.nspname = 'public' AND t.relname = ANY($1)
               AND NOT EXISTS (SELECT 1 FROM pg_constraint co
                               WHERE co.conrelid = x.indrelid AND co.conindid = x.indexrelid
                                 AND co.contype IN ('p', 'u', 'x'))
             ORDER BY 1, 2",
            &[&tables, &drop_primary_keys],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let table: String = r.get(0);
            let name: String = r.get(1);
            let kind = match r.get::<_, &str>(2) {
                "p" => DroppedKind::PrimaryKey,
                "u" => DroppedKind::Unique,
                "f" => DroppedKind::ForeignKey,
                "i" => DroppedKind::Index,
                other => {
                    return Err(SinkError::BulkMarker {
                        table,
                        name,
                        message: format!("unexpected constraint type {other:?}"),
                    })
                }
            };
            Ok(DroppedObject {
                table,
                name,
                kind,
                index_definition: r.get(3),
                constraint_definition: r.get(4),
                validated: r.get(5),
                deferrable: r.get(6),
                initially_deferred: r.get(7),
            })
        })
        .collect()
}

/// The recorded objects.
async fn recorded_objects(client: &Client) -> Result<Vec<DroppedObject>, SinkError> {
    let rows = client
        .query(
            "SELECT table_name, object_name, object_kind, index_definition, constraint_definition,
                    constraint_validated, constraint_deferrable, constraint_initially_deferred
             FROM bulk_load_dropped_objects ORDER BY table_name, object_name",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let table: String = r.get(0);
            let name: String = r.get(1);
            let kind_text: String = r.get(2);
            let kind = DroppedKind::parse(&kind_text).ok_or_else(|| SinkError::BulkMarker {
                table: table.clone(),
                name: name.clone(),
                message: format!("unknown object kind {kind_text:?}"),
            })?;
            let object = DroppedObject {
                table,
                name,
                kind,
                index_definition: r.get(3),
                constraint_definition: r.get(4),
                validated: r.get(5),
                deferrable: r.get(6),
                initially_deferred: r.get(7),
            };
            let complete = match kind {
                DroppedKind::Index => object.index_definition.is_some(),
                DroppedKind::PrimaryKey | DroppedKind::Unique => {
                    object.index_definition.is_some() && object.constraint_definition.is_some()
                }
                DroppedKind::ForeignKey => object.constraint_definition.is_some(),
            };
            if !complete {
                return Err(SinkError::BulkMarker {
                    table: object.table,
                    name: object.name,
                    message: "a definition is missing".to_owned(),
                });
            }
            Ok(object)
        })
        .collect()
}

/// One DDL statement of a rebuild, run in a transaction of its own that also deletes the
/// object's record row when it completes the object.
struct RebuildStep {
    /// Position in the rebuild's object list.
    object: usize,
    statement: String,
    completes_object: bool,
}

/// The public schema's catalog as the rebuild needs it.
struct CatalogState {
    /// Index name → `pg_get_indexdef`.
    indexes: HashMap<String, String>,
    /// (table, constraint name) → validated.
    constraints: HashMap<(String, String), bool>,
    /// Table name → size in bytes, to start the longest builds first.
    table_bytes: HashMap<String, i64>,
}

async fn catalog_state(client: &Client) -> Result<CatalogState, SinkError> {
    let public = "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'";
    let indexes = client
        .query(
            &format!(
                "SELECT c.relname::text, pg_get_indexdef(c.oid) FROM pg_class c {public}
                 AND c.relkind IN ('i', 'I')"
            ),
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let constraints = client
        .query(
            "SELECT c.relname::text, co.conname::text, co.convalidated
             FROM pg_constraint co JOIN pg_class c ON c.oid = co.conrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'",
            &[],
        )
        .await?
        .iter()
        .map(|r| ((r.get(0), r.get(1)), r.get(2)))
        .collect();
    let table_bytes = client
        .query(
            &format!(
                "SELECT c.relname::text, pg_table_size(c.oid) FROM pg_class c {public}
                 AND c.relkind IN ('r', 'p')"
            ),
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Ok(CatalogState {
        indexes,
        constraints,
        table_bytes,
    })
}

/// Restores every recorded object over `workers` (the first also runs the short sequential
/// steps), in four phases: indexes (in parallel), keys attached to their indexes, foreign keys
/// added `NOT VALID`, foreign keys validated (in parallel). Keys that fail to rebuild stop it
/// before the foreign keys, which would fail after them.
async fn rebuild(
    workers: &mut [&mut Client],
    maintenance_work_mem: &str,
) -> Result<BulkReport, SinkError> {
    let started = Instant::now();
    let objects = recorded_objects(&*workers[0]).await?;
    let catalog = catalog_state(&*workers[0]).await?;
    let mut elapsed = vec![Duration::ZERO; objects.len()];
    let mut already_present = vec![false; objects.len()];
    let mut failures = Vec::new();
    let constraint_validated = |o: &DroppedObject| {
        catalog
            .constraints
            .get(&(o.table.clone(), o.name.clone()))
            .copied()
    };

    // Phase 1: the indexes, those behind keys included, unless they (or their key) exist.
    let mut index_steps = Vec::new();
    let mut present_steps = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        let Some(definition) = &o.index_definition else {
            continue;
        };
        if o.kind.is_key() && constraint_validated(o).is_some() {
            already_present[i] = true;
            continue;
        }
        match catalog.indexes.get(&o.name) {
            Some(existing) if existing == definition => {
                if o.kind == DroppedKind::Index {
                    already_present[i] = true;
                }
            }
            Some(existing) => failures.push(format!(
                "{} {} on {}: an index of that name exists with another definition ({existing}; \
                 recorded: {definition})",
                o.kind, o.name, o.table
            )),
            None => index_steps.push(RebuildStep {
                object: i,
                statement: definition.clone(),
                completes_object: o.kind == DroppedKind::Index,
            }),
        }
    }
    let size_of = |i: usize| {
        catalog
            .table_bytes
            .get(&objects[i].table)
            .copied()
            .unwrap_or(0)
    };
    index_steps.sort_by_key(|s| std::cmp::Reverse(size_of(s.object)));
    run_steps(
        workers,
        index_steps,
        &objects,
        maintenance_work_mem,
        &mut elapsed,
        &mut failures,
    )
    .await;

    // Objects found whole: only their record row goes.
    for (i, o) in objects.iter().enumerate() {
        if already_present[i] && o.kind != DroppedKind::ForeignKey {
            present_steps.push(i);
        }
    }
    for i in present_steps {
        forget(&*workers[0], &objects[i]).await?;
    }
    if !failures.is_empty() {
        return rebuild_failed(&*workers[0], failures).await;
    }

    // Phase 2: keys take over their freshly built indexes (a catalog change, no scan).
    let mut key_steps = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        if o.kind.is_key() && !already_present[i] {
            let key = if o.kind == DroppedKind::PrimaryKey {
                "PRIMARY KEY"
            } else {
                "UNIQUE"
            };
            key_steps.push(RebuildStep {
                object: i,
                statement: format!(
                    "ALTER TABLE public.{} ADD CONSTRAINT {} {key} USING INDEX {}{}",
                    quote_ident(&o.table),
                    quote_ident(&o.name),
                    quote_ident(&o.name),
                    deferral(o)
                ),
                completes_object: true,
            });
        }
    }
    run_steps(
        &mut workers[..1],
        key_steps,
        &objects,
        maintenance_work_mem,
        &mut elapsed,
        &mut failures,
    )
    .await;
    if !failures.is_empty() {
        return rebuild_failed(&*workers[0], failures).await;
    }

    // Phase 3: foreign keys added without checking the rows (brief locks, one at a time), then
    // phase 4: checked in parallel (validation locks the referenced table only for row sharing).
    let mut add_steps = Vec::new();
    let mut validate_steps = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        if o.kind != DroppedKind::ForeignKey {
            continue;
        }
        let definition = o.constraint_definition.as_deref().unwrap_or_default();
        let validate = RebuildStep {
            object: i,
            statement: format!(
                "ALTER TABLE public.{} VALIDATE CONSTRAINT {}",
                quote_ident(&o.table),
                quote_ident(&o.name)
            ),
            completes_object: true,
        };
        match constraint_validated(o) {
            Some(true) => {
                already_present[i] = true;
                forget(&*workers[0], o).await?;
            }
            Some(false) if !o.validated => {
                already_present[i] = true;
                forget(&*workers[0], o).await?;
            }
            Some(false) => validate_steps.push(validate),
            None => {
                add_steps.push(RebuildStep {
                    object: i,
                    // An unvalidated original's definition already ends in NOT VALID.
                    statement: format!(
                        "ALTER TABLE public.{} ADD CONSTRAINT {} {definition}{}",
                        quote_ident(&o.table),
                        quote_ident(&o.name),
                        if o.validated { " NOT VALID" } else { "" }
                    ),
                    completes_object: !o.validated,
                });
                if o.validated {
                    validate_steps.push(validate);
                }
            }
        }
    }
    run_steps(
        &mut workers[..1],
        add_steps,
        &objects,
        maintenance_work_mem,
        &mut elapsed,
        &mut failures,
    )
    .await;
    if !failures.is_empty() {
        return rebuild_failed(&*workers[0], failures).await;
    }
    validate_steps.sort_by_key(|s| std::cmp::Reverse(size_of(s.object)));
    run_steps(
        workers,
        validate_steps,
        &objects,
        maintenance_work_mem,
        &mut elapsed,
        &mut failures,
    )
    .await;
    if !failures.is_empty() {
        return rebuild_failed(&*workers[0], failures).await;
    }

    let left = pending_count(&*workers[0]).await?;
    if left > 0 {
        return Err(SinkError::BulkRebuild {
            failures: vec![format!(
                "{left} recorded objects were not restored by the rebuild (recorded while it ran?)"
            )],
            pending: left,
        });
    }
    let mut rebuilt: Vec<RebuiltObject> = objects
        .into_iter()
        .enumerate()
        .map(|(i, o)| RebuiltObject {
            table: o.table,
            name: o.name,
            kind: o.kind,
            elapsed: elapsed[i],
            already_present: already_present[i],
        })
        .collect();
    rebuilt.sort_by(|a, b| (&a.table, &a.name).cmp(&(&b.table, &b.name)));
    Ok(BulkReport {
        objects: rebuilt,
        elapsed: started.elapsed(),
        connections: workers.len(),
    })
}

/// ` DEFERRABLE [INITIALLY DEFERRED]` as the key was declared.
fn deferral(o: &DroppedObject) -> &'static str {
    match (o.deferrable, o.initially_deferred) {
        (true, true) => " DEFERRABLE INITIALLY DEFERRED",
        (true, false) => " DEFERRABLE",
        _ => "",
    }
}

/// Deletes the record row of an object found whole.
async fn forget(client: &Client, o: &DroppedObject) -> Result<(), SinkError> {
    client
        .execute(
            "DELETE FROM bulk_load_dropped_objects WHERE table_name = $1 AND object_name = $2",
            &[&o.table, &o.name],
        )
        .await?;
    Ok(())
}

async fn rebuild_failed(client: &Client, failures: Vec<String>) -> Result<BulkReport, SinkError> {
    let pending = pending_count(client).await?;
    for failure in &failures {
        tracing::error!("bulk load rebuild: {failure}");
    }
    Err(SinkError::BulkRebuild { failures, pending })
}

/// Runs `steps` over `workers`, each worker taking the next step when its previous one ends.
/// Adds each step's time to its object's entry of `elapsed`; a failed step adds its object and
/// the server's reason to `failures` (the other steps still run).
async fn run_steps(
    workers: &mut [&mut Client],
    steps: Vec<RebuildStep>,
    objects: &[DroppedObject],
    maintenance_work_mem: &str,
    elapsed: &mut [Duration],
    failures: &mut Vec<String>,
) {
    let queue = Mutex::new(VecDeque::from(steps));
    let queue = &queue;
    let runs = workers.iter_mut().map(|client| async move {
        let mut done = Vec::new();
        loop {
            let Some(step) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() else {
                break;
            };
            let begun = Instant::now();
            let result = run_step(client, &step, &objects[step.object], maintenance_work_mem).await;
            done.push((step.object, begun.elapsed(), result));
        }
        done
    });
    for (object, took, result) in futures_util::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
    {
        elapsed[object] += took;
        if let Err(e) = result {
            let o = &objects[object];
            failures.push(format!(
                "{} {} on {}: {}",
                o.kind,
                o.name,
                o.table,
                describe_pg(&e)
            ));
        }
    }
}

async fn run_step(
    client: &mut Client,
    step: &RebuildStep,
    object: &DroppedObject,
    maintenance_work_mem: &str,
) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT set_config('maintenance_work_mem', $1, true)",
        &[&maintenance_work_mem],
    )
    .await?;
    tx.batch_execute(&step.statement).await?;
    if step.completes_object {
        tx.execute(
            "DELETE FROM bulk_load_dropped_objects WHERE table_name = $1 AND object_name = $2",
            &[&object.table, &object.name],
        )
        .await?;
    }
    tx.commit().await
}
