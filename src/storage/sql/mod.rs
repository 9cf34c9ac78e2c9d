//! The SQL layer every SQL backend shares: each statement of the key store written once, each
//! row decoded once, and the [`Storage`] trait implemented once, over any [`Driver`].
//!
//! The parts:
//! * [`Dialect`] ([`dialect`]): the few fragments dialects spell differently — parameter markers
//!   (`?1` / `$1`), a JSON field as text (`json_extract(metadata, '$.label')` /
//!   `metadata->>'label'`), the row lock of a read-modify-write (nothing under SQLite's
//!   `BEGIN IMMEDIATE`, `FOR UPDATE` elsewhere), an integer list (`IN (…)` / `= ANY(…)`).
//!   Fragments are constant SQL text; values are always bound parameters ([`Param`]), never
//!   spliced into the text.
//! * [`Row`] ([`row`]): typed columns of a result row, so the `decode_*` functions below read
//!   every driver's rows.
//! * [`Conn`]: one connection (or open transaction) that runs a [`Sql`] statement, binding its
//!   [`Param`]s in the driver's encoding (SQLite: text for UUIDs, JSON and timestamps;
//!   PostgreSQL: `uuid`, `jsonb`, `timestamptz`).
//! * [`Driver`]: what a backend supplies — its dialect, a connection for reading, a write
//!   transaction (`write(|tx| …)`: commit when the work succeeds, roll back when it fails), and
//!   the few [`Storage`] methods that are about the store rather than its rows (describe,
//!   create, change marker, fork, privileges). Every `Driver` is a [`Storage`] through the
//!   implementation at the end of this file.
//!
//! The drivers (`storage::sqlite`, `storage::postgres`) keep connection handling, pooling, the
//! change feed, error mapping and migrations' transaction; a schema change is written in the
//! dialects' migrations and once here.

pub mod dialect;
pub mod row;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

pub use dialect::{ColumnType, Dialect, InList};
pub use row::Row;

use super::{
    AsymKeyRow, ConfigUpdate, FoundRow, KeyEvent, KeyFilter, KeyRow, KeyTable, NewKeyRow,
    ObjectMetadata, ObjectRow, Search, Storage, StorageResult, SymKeyRow, TokenRow,
};
use crate::error::Error;
use crate::key_state::KeyStatus;

/// A value bound to a statement parameter. Each driver encodes it for its dialect.
#[derive(Clone, Copy, Debug)]
pub enum Param<'a> {
    Uuid(Uuid),
    Text(&'a str),
    I32(i32),
    I64(i64),
    Json(Option<&'a Value>),
    Time(Option<DateTime<Utc>>),
    Bytes(Option<&'a [u8]>),
    /// An integer list for a dialect whose [`Dialect::in_list`] binds arrays.
    I32s(&'a [i32]),
}

/// One statement: SQL text with the dialect's parameter markers, and its parameters in order.
pub struct Sql<'a> {
    dialect: &'static dyn Dialect,
    text: String,
    params: Vec<Param<'a>>,
}

impl<'a> Sql<'a> {
    /// A statement from a constant template whose `?` mark `params`, in order.
    pub fn new(
        dialect: &'static dyn Dialect,
        template: &str,
        params: impl IntoIterator<Item = Param<'a>>,
    ) -> Sql<'a> {
        let mut sql = Sql {
            dialect,
            text: String::with_capacity(template.len() + 16),
            params: Vec::new(),
        };
        sql.add(template, params);
        sql
    }

    /// Appends constant text whose `?` mark `params`, in order. Only text written by a statement
    /// author goes here; a dialect's fragment goes through [`Sql::raw`], where a `?` means
    /// nothing.
    pub fn add(
        &mut self,
        template: &str,
        params: impl IntoIterator<Item = Param<'a>>,
    ) -> &mut Self {
        let mut params = params.into_iter();
        let mut pieces = template.split('?');
        if let Some(first) = pieces.next() {
            self.text.push_str(first);
        }
        for piece in pieces {
            let param = params.next();
            debug_assert!(param.is_some(), "more `?` than parameters in {template:?}");
            if let Some(param) = param {
                self.params.push(param);
            }
            self.dialect.placeholder(self.params.len(), &mut self.text);
            self.text.push_str(piece);
        }
        debug_assert!(
            params.next().is_none(),
            "more parameters than `?` in {template:?}"
        );
        self
    }

    /// Appends constant text as it is (a dialect fragment, a table name).
    pub fn raw(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// The SQL text, with the dialect's markers.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn params(&self) -> &[Param<'a>] {
        &self.params
    }
}

/// One connection, or an open transaction on one: where statements run.
pub trait Conn {
    /// Runs a query and hands each result row to `each`.
    fn query(
        &mut self,
        sql: &Sql<'_>,
        each: &mut dyn FnMut(&dyn Row) -> StorageResult<()>,
    ) -> StorageResult<()>;
    /// Runs a statement; returns the number of rows it changed.
    fn execute(&mut self, sql: &Sql<'_>) -> StorageResult<u64>;
}

impl dyn Conn + '_ {
    fn all<T>(
        &mut self,
        sql: &Sql<'_>,
        decode: fn(&dyn Row) -> StorageResult<T>,
    ) -> StorageResult<Vec<T>> {
        let mut rows = Vec::new();
        self.query(sql, &mut |row| {
            rows.push(decode(row)?);
            Ok(())
        })?;
        Ok(rows)
    }

    fn first<T>(
        &mut self,
        sql: &Sql<'_>,
        decode: fn(&dyn Row) -> StorageResult<T>,
    ) -> StorageResult<Option<T>> {
        Ok(self.all(sql, decode)?.into_iter().next())
    }
}

/// What a SQL backend supplies; every `Driver` is a [`Storage`].
pub trait Driver: Send + Sync {
    fn dialect(&self) -> &'static dyn Dialect;

    /// Runs `work` on a connection for reading (no transaction needed).
    fn read<T>(&self, work: impl FnOnce(&mut dyn Conn) -> StorageResult<T>) -> StorageResult<T>;

    /// Runs `work` in one write transaction: committed when `work` succeeds, rolled back when it
    /// fails. Every method that returns early (a row gone, an update refused) does so before it
    /// wrote anything, so committing then writes nothing.
    fn write<T>(&self, work: impl FnOnce(&mut dyn Conn) -> StorageResult<T>) -> StorageResult<T>;

    /// One statement on its own. By default a write transaction; a driver whose single
    /// statements are atomic anyway may run it without one (PostgreSQL's autocommit).
    fn execute_one(&self, sql: &Sql<'_>) -> StorageResult<u64> {
        self.write(|tx| tx.execute(sql))
    }

    /// [`Storage::describe`], and so on: what is about the store, not its rows.
    fn describe(&self) -> String;
    fn require_existing(&self) -> StorageResult<()> {
        Ok(())
    }
    fn create(&self) -> StorageResult<()> {
        Ok(())
    }
    fn read_only(&self) -> Option<String> {
        None
    }
    fn missing_privileges(&self) -> StorageResult<Vec<String>> {
        Ok(Vec::new())
    }
    fn change_marker(&self) -> StorageResult<u64>;
    fn release_after_fork(&self, at_rest: bool) -> StorageResult<()>;
}

const TOKEN_COLUMNS: &str = "id, provider_name, config, metadata, created_at, updated_at";
pub(super) const ASYM_COLUMNS: &str = "id, provider_config_id, key_id, key_algorithm, key_status, \
     key_mode, expiration, public_key_ctx, private_key_ctx, metadata, created_at, updated_at";
pub(super) const SYM_COLUMNS: &str = "id, provider_config_id, key_id, key_status, key_mode, \
     expiration, key_value, metadata, created_at, updated_at";
const OBJECT_COLUMNS: &str =
    "id, provider_config_id, object_class, value, metadata, created_at, updated_at";
const EVENT_COLUMNS: &str =
    "id, key_id, provider_config_id, event, actor, old_value, new_value, at";

impl KeyTable {
    fn columns(self) -> &'static str {
        match self {
            KeyTable::Asym => ASYM_COLUMNS,
            KeyTable::Sym => SYM_COLUMNS,
        }
    }
}

fn decode_token(row: &dyn Row) -> StorageResult<TokenRow> {
    Ok(TokenRow {
        id: row.uuid(0)?,
        provider_name: row.text(1)?,
        config: row.json(2)?,
        metadata: row.json(3)?,
        created_at: row.time(4)?,
        updated_at: row.time(5)?,
    })
}

fn decode_asym(row: &dyn Row) -> StorageResult<KeyRow> {
    Ok(KeyRow::Asym(AsymKeyRow {
        id: row.uuid(0)?,
        provider_config_id: row.uuid(1)?,
        key_id: row.text(2)?,
        key_algorithm: row.i32(3)?,
        key_status: key_status(row, 4)?,
        key_mode: row.i32(5)?,
        expiration: row.opt_time(6)?,
        public_key_ctx: row.opt_json(7)?,
        private_key_ctx: row.opt_json(8)?,
        metadata: row.json(9)?,
        created_at: row.time(10)?,
        updated_at: row.time(11)?,
    }))
}

fn decode_sym(row: &dyn Row) -> StorageResult<KeyRow> {
    Ok(KeyRow::Sym(SymKeyRow {
        id: row.uuid(0)?,
        provider_config_id: row.uuid(1)?,
        key_id: row.text(2)?,
        key_status: key_status(row, 3)?,
        key_mode: row.i32(4)?,
        expiration: row.opt_time(5)?,
        key_value: row.opt_bytes(6)?,
        metadata: row.json(7)?,
        created_at: row.time(8)?,
        updated_at: row.time(9)?,
    }))
}

/// A stored `key_status`; a code no build writes is corrupt data.
fn key_status(row: &dyn Row, column: usize) -> StorageResult<KeyStatus> {
    let code = row.i32(column)?;
    KeyStatus::from_code(code).ok_or_else(|| row::corrupt(column, "key_status", code))
}

fn key_decoder(table: KeyTable) -> fn(&dyn Row) -> StorageResult<KeyRow> {
    match table {
        KeyTable::Asym => decode_asym,
        KeyTable::Sym => decode_sym,
    }
}

fn decode_object(row: &dyn Row) -> StorageResult<ObjectRow> {
    Ok(ObjectRow {
        id: row.uuid(0)?,
        provider_config_id: row.uuid(1)?,
        object_class: row.i64(2)?,
        value: row.opt_bytes(3)?,
        metadata: row.json(4)?,
        created_at: row.time(5)?,
        updated_at: row.time(6)?,
    })
}

fn decode_event(row: &dyn Row) -> StorageResult<KeyEvent> {
    Ok(KeyEvent {
        id: row.uuid(0)?,
        key_id: row.text(1)?,
        provider_config_id: row.uuid(2)?,
        event: row.text(3)?,
        actor: row.text(4)?,
        old_value: row.opt_json(5)?,
        new_value: row.opt_json(6)?,
        at: row.time(7)?,
    })
}

fn insert_key_row(
    d: &'static dyn Dialect,
    tx: &mut dyn Conn,
    row: NewKeyRow<'_>,
) -> StorageResult<u64> {
    let sql = match row {
        NewKeyRow::Asym(row) => Sql::new(
            d,
            &format!(
                "INSERT INTO asym_key ({ASYM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            [
                Param::Uuid(row.id),
                Param::Uuid(row.provider_config_id),
                Param::Text(&row.key_id),
                Param::I32(row.key_algorithm),
                Param::I32(row.key_status.code()),
                Param::I32(row.key_mode),
                Param::Time(row.expiration),
                Param::Json(row.public_key_ctx.as_ref()),
                Param::Json(row.private_key_ctx.as_ref()),
                Param::Json(Some(&row.metadata)),
                Param::Time(Some(row.created_at)),
                Param::Time(Some(row.updated_at)),
            ],
        ),
        NewKeyRow::Sym(row) => Sql::new(
            d,
            &format!("INSERT INTO sym_key ({SYM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
            [
                Param::Uuid(row.id),
                Param::Uuid(row.provider_config_id),
                Param::Text(&row.key_id),
                Param::I32(row.key_status.code()),
                Param::I32(row.key_mode),
                Param::Time(row.expiration),
                Param::Bytes(row.key_value.as_deref()),
                Param::Json(Some(&row.metadata)),
                Param::Time(Some(row.created_at)),
                Param::Time(Some(row.updated_at)),
            ],
        ),
    };
    tx.execute(&sql)
}

fn insert_event(
    d: &'static dyn Dialect,
    tx: &mut dyn Conn,
    event: &KeyEvent,
) -> StorageResult<u64> {
    tx.execute(&Sql::new(
        d,
        &format!("INSERT INTO key_event ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
        [
            Param::Uuid(event.id),
            Param::Text(&event.key_id),
            Param::Uuid(event.provider_config_id),
            Param::Text(&event.event),
            Param::Text(&event.actor),
            Param::Json(event.old_value.as_ref()),
            Param::Json(event.new_value.as_ref()),
            Param::Time(Some(event.at)),
        ],
    ))
}

/// Records `event` (when given) if the row it is about changed, in the caller's transaction;
/// returns `changed`.
fn record_if(
    d: &'static dyn Dialect,
    tx: &mut dyn Conn,
    changed: bool,
    event: Option<&KeyEvent>,
) -> StorageResult<bool> {
    if let (true, Some(event)) = (changed, event) {
        insert_event(d, tx, event)?;
    }
    Ok(changed)
}

/// Replaces the metadata of `p11_object` rows in the caller's transaction (a row gone is
/// skipped).
fn update_object_metadata(
    d: &'static dyn Dialect,
    tx: &mut dyn Conn,
    objects: &[ObjectMetadata],
    now: DateTime<Utc>,
) -> StorageResult<()> {
    for object in objects {
        tx.execute(&Sql::new(
            d,
            "UPDATE p11_object SET metadata = ?, updated_at = ? WHERE id = ?",
            [
                Param::Json(Some(&object.metadata)),
                Param::Time(Some(now)),
                Param::Uuid(object.id),
            ],
        ))?;
    }
    Ok(())
}

/// Deletes every key and object of a token and records `destroyed` for each key deleted (the
/// `RETURNING` rows: a key another transaction commits meanwhile is either deleted with its event
/// or left alone), in the caller's transaction; returns the number of keys.
fn delete_token_contents(
    d: &'static dyn Dialect,
    tx: &mut dyn Conn,
    token: Uuid,
    destroyed: &KeyEvent,
) -> StorageResult<usize> {
    let mut keys = 0;
    for table in [KeyTable::Asym, KeyTable::Sym] {
        let key_ids = tx.all(
            &Sql::new(
                d,
                &format!(
                    "DELETE FROM {} WHERE provider_config_id = ? RETURNING key_id",
                    table.name()
                ),
                [Param::Uuid(token)],
            ),
            |row| row.text(0),
        )?;
        for key_id in &key_ids {
            insert_event(d, tx, &destroyed.for_key(key_id))?;
        }
        keys += key_ids.len();
    }
    tx.execute(&Sql::new(
        d,
        "DELETE FROM p11_object WHERE provider_config_id = ?",
        [Param::Uuid(token)],
    ))?;
    Ok(keys)
}

/// `AND <label> = ? AND <CKA_ID> = ?` for the filter fields given, on the expressions the
/// metadata indexes are built on.
fn and_names<'a>(d: &'static dyn Dialect, sql: &mut Sql<'a>, filter: &'a KeyFilter) {
    if let Some(label) = &filter.label {
        sql.raw(" AND ")
            .raw(&d.json_text("metadata", "label"))
            .add(" = ?", [Param::Text(label)]);
    }
    if let Some(ck_id) = &filter.ck_id {
        sql.raw(" AND ")
            .raw(&d.json_text("metadata", "id"))
            .add(" = ?", [Param::Text(ck_id)]);
    }
}

/// The `SELECT` of a [`KeyFilter`]; `None` when the filter can match nothing (an empty
/// algorithm list).
pub(super) fn find_keys_sql<'a>(
    d: &'static dyn Dialect,
    table: KeyTable,
    filter: &'a KeyFilter,
) -> Option<Sql<'a>> {
    let mut sql = Sql::new(
        d,
        &format!(
            "SELECT {} FROM {} WHERE provider_config_id = ?",
            table.columns(),
            table.name()
        ),
        [Param::Uuid(filter.provider_config_id)],
    );
    if !and_key_filter(d, &mut sql, table, filter) {
        return None;
    }
    sql.raw(" ORDER BY created_at, id");
    Some(sql)
}

/// The conditions of a [`KeyFilter`] after a key table's `WHERE provider_config_id = ?`; false
/// when the filter can match nothing (an empty algorithm list).
fn and_key_filter<'a>(
    d: &'static dyn Dialect,
    sql: &mut Sql<'a>,
    table: KeyTable,
    filter: &'a KeyFilter,
) -> bool {
    and_names(d, sql, filter);
    if let (KeyTable::Asym, Some(algorithms)) = (table, &filter.key_algorithms) {
        if algorithms.is_empty() {
            return false;
        }
        let (condition, binding) = d.in_list("key_algorithm", algorithms.len());
        sql.raw(" AND ");
        match binding {
            InList::EachValue => sql.add(&condition, algorithms.iter().map(|a| Param::I32(*a))),
            InList::Array => sql.add(&condition, [Param::I32s(algorithms)]),
        };
    }
    if let Some(key_id) = &filter.key_id {
        sql.add(" AND key_id = ?", [Param::Text(key_id)]);
    }
    if let Some(status) = filter.key_status {
        sql.add(" AND key_status = ?", [Param::I32(status.code())]);
    }
    true
}

/// The conditions of an object search after `p11_object`'s `WHERE provider_config_id = ?`.
fn and_object_filter<'a>(
    d: &'static dyn Dialect,
    sql: &mut Sql<'a>,
    filter: &'a KeyFilter,
    class: Option<i64>,
) {
    if let Some(class) = class {
        sql.add(" AND object_class = ?", [Param::I64(class)]);
    }
    and_names(d, sql, filter);
}

fn find_objects_sql<'a>(
    d: &'static dyn Dialect,
    filter: &'a KeyFilter,
    class: Option<i64>,
) -> Sql<'a> {
    let mut sql = Sql::new(
        d,
        &format!("SELECT {OBJECT_COLUMNS} FROM p11_object WHERE provider_config_id = ?"),
        [Param::Uuid(filter.provider_config_id)],
    );
    and_object_filter(d, &mut sql, filter, class);
    sql.raw(" ORDER BY created_at, id");
    sql
}

/// The columns of the search over every object table ([`search_sql`]), after its `kind`: each
/// column any of the three tables has, once, with its type for the branches without it.
const FOUND_COLUMNS: &[(&str, ColumnType)] = &[
    ("id", ColumnType::Uuid),
    ("provider_config_id", ColumnType::Uuid),
    ("key_id", ColumnType::Text),
    ("key_algorithm", ColumnType::Int),
    ("key_status", ColumnType::Int),
    ("key_mode", ColumnType::Int),
    ("expiration", ColumnType::Time),
    ("public_key_ctx", ColumnType::Json),
    ("private_key_ctx", ColumnType::Json),
    ("key_value", ColumnType::Bytes),
    ("object_class", ColumnType::BigInt),
    ("value", ColumnType::Bytes),
    ("metadata", ColumnType::Json),
    ("created_at", ColumnType::Time),
    ("updated_at", ColumnType::Time),
];

/// One table in the search: its `kind` (the union's first column, and its order), its name and
/// the columns its decoder reads.
#[derive(Clone, Copy)]
enum Found {
    Asym,
    Sym,
    Object,
}

impl Found {
    fn kind(self) -> i32 {
        self as i32
    }

    fn from_kind(kind: i32) -> Option<Found> {
        [Found::Asym, Found::Sym, Found::Object]
            .into_iter()
            .find(|f| f.kind() == kind)
    }

    fn table(self) -> &'static str {
        match self {
            Found::Asym => KeyTable::Asym.name(),
            Found::Sym => KeyTable::Sym.name(),
            Found::Object => "p11_object",
        }
    }

    fn columns(self) -> &'static str {
        match self {
            Found::Asym => ASYM_COLUMNS,
            Found::Sym => SYM_COLUMNS,
            Found::Object => OBJECT_COLUMNS,
        }
    }

    /// Where the union has each column of this table's own `SELECT` list, so that the table's
    /// decoder reads the union's row unchanged ([`Remapped`]).
    fn positions(self) -> Vec<usize> {
        self.columns()
            .split(',')
            .map(|name| {
                let name = name.trim();
                FOUND_COLUMNS
                    .iter()
                    .position(|(found, _)| *found == name)
                    .map_or(usize::MAX, |at| at + 1)
            })
            .collect()
    }

    /// This table's branch of the union: every found column, its own or a typed NULL.
    fn select(self, d: &'static dyn Dialect) -> String {
        let own: Vec<&str> = self.columns().split(',').map(str::trim).collect();
        let list: Vec<String> = FOUND_COLUMNS
            .iter()
            .map(|(name, ty)| {
                if own.contains(name) {
                    (*name).to_string()
                } else {
                    format!("{} AS {name}", d.null_of(*ty))
                }
            })
            .collect();
        format!(
            "SELECT {} AS kind, {} FROM {} WHERE provider_config_id = ?",
            self.kind(),
            list.join(", "),
            self.table()
        )
    }
}

/// The search behind `C_FindObjectsInit` as one statement: a `UNION ALL` of the tables the search
/// wants, each branch with its table's indexed conditions, asym rows first, then sym, then
/// objects, each oldest first (as [`Storage::find_keys`] and [`Storage::find_objects`] order
/// them). `None` when it can match nothing.
pub(super) fn search_sql<'a>(d: &'static dyn Dialect, search: &'a Search) -> Option<Sql<'a>> {
    let filter = &search.filter;
    let mut sql = Sql::new(d, "", []);
    let mut branches = 0;
    let mut branch = |sql: &mut Sql<'a>, found: Found| {
        if branches > 0 {
            sql.raw(" UNION ALL ");
        }
        branches += 1;
        sql.add(&found.select(d), [Param::Uuid(filter.provider_config_id)]);
    };
    for (wanted, found, table) in [
        (search.asym, Found::Asym, KeyTable::Asym),
        (search.sym, Found::Sym, KeyTable::Sym),
    ] {
        let matchable =
            !(table == KeyTable::Asym && filter.key_algorithms.as_ref().is_some_and(Vec::is_empty));
        if wanted && matchable {
            branch(&mut sql, found);
            and_key_filter(d, &mut sql, table, filter);
        }
    }
    if search.objects {
        branch(&mut sql, Found::Object);
        and_object_filter(d, &mut sql, filter, search.object_class);
    }
    if branches == 0 {
        return None;
    }
    sql.raw(" ORDER BY kind, created_at, id");
    Some(sql)
}

/// A row of the search, read at the positions of one table's own `SELECT` list.
struct Remapped<'r> {
    row: &'r dyn Row,
    at: &'r [usize],
}

impl Remapped<'_> {
    fn at(&self, column: usize) -> usize {
        self.at.get(column).copied().unwrap_or(usize::MAX)
    }
}

impl Row for Remapped<'_> {
    fn opt_text(&self, column: usize) -> StorageResult<Option<String>> {
        self.row.opt_text(self.at(column))
    }
    fn i32(&self, column: usize) -> StorageResult<i32> {
        self.row.i32(self.at(column))
    }
    fn i64(&self, column: usize) -> StorageResult<i64> {
        self.row.i64(self.at(column))
    }
    fn bool(&self, column: usize) -> StorageResult<bool> {
        self.row.bool(self.at(column))
    }
    fn opt_bytes(&self, column: usize) -> StorageResult<Option<Vec<u8>>> {
        self.row.opt_bytes(self.at(column))
    }
    fn opt_uuid(&self, column: usize) -> StorageResult<Option<Uuid>> {
        self.row.opt_uuid(self.at(column))
    }
    fn opt_json(&self, column: usize) -> StorageResult<Option<Value>> {
        self.row.opt_json(self.at(column))
    }
    fn opt_time(&self, column: usize) -> StorageResult<Option<DateTime<Utc>>> {
        self.row.opt_time(self.at(column))
    }
}

/// Decodes a row of the search with its table's own decoder.
struct SearchDecoder {
    positions: [Vec<usize>; 3],
}

/// The one decoder: the positions depend on the column lists only, so they are worked out once
/// per process, not at every `C_FindObjectsInit`.
static SEARCH_DECODER: std::sync::LazyLock<SearchDecoder> =
    std::sync::LazyLock::new(SearchDecoder::new);

impl SearchDecoder {
    fn new() -> SearchDecoder {
        SearchDecoder {
            positions: [Found::Asym, Found::Sym, Found::Object].map(Found::positions),
        }
    }

    fn decode(&self, row: &dyn Row) -> StorageResult<FoundRow> {
        let kind = row.i32(0)?;
        let found = Found::from_kind(kind).ok_or_else(|| row::corrupt(0, "kind", kind))?;
        let row = Remapped {
            row,
            at: &self.positions[found.kind() as usize],
        };
        Ok(match found {
            Found::Asym => FoundRow::Key(decode_asym(&row)?),
            Found::Sym => FoundRow::Key(decode_sym(&row)?),
            Found::Object => FoundRow::Object(decode_object(&row)?),
        })
    }
}

impl<D: Driver> Storage for D {
    fn describe(&self) -> String {
        Driver::describe(self)
    }

    fn require_existing(&self) -> StorageResult<()> {
        Driver::require_existing(self)
    }

    fn create(&self) -> StorageResult<()> {
        Driver::create(self)
    }

    fn read_only(&self) -> Option<String> {
        Driver::read_only(self)
    }

    fn missing_privileges(&self) -> StorageResult<Vec<String>> {
        Driver::missing_privileges(self)
    }

    fn change_marker(&self) -> StorageResult<u64> {
        Driver::change_marker(self)
    }

    fn release_after_fork(&self, at_rest: bool) -> StorageResult<()> {
        Driver::release_after_fork(self, at_rest)
    }

    fn list_tokens(&self) -> StorageResult<Vec<TokenRow>> {
        let d = self.dialect();
        self.read(|c| {
            c.all(
                &Sql::new(
                    d,
                    &format!("SELECT {TOKEN_COLUMNS} FROM provider_config ORDER BY created_at, id"),
                    [],
                ),
                decode_token,
            )
        })
    }

    fn get_token(&self, id: Uuid) -> StorageResult<Option<TokenRow>> {
        let d = self.dialect();
        self.read(|c| {
            c.first(
                &Sql::new(
                    d,
                    &format!("SELECT {TOKEN_COLUMNS} FROM provider_config WHERE id = ?"),
                    [Param::Uuid(id)],
                ),
                decode_token,
            )
        })
    }

    fn insert_token(&self, row: &TokenRow) -> StorageResult<()> {
        self.execute_one(&Sql::new(
            self.dialect(),
            &format!("INSERT INTO provider_config ({TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"),
            [
                Param::Uuid(row.id),
                Param::Text(&row.provider_name),
                Param::Json(Some(&row.config)),
                Param::Json(Some(&row.metadata)),
                Param::Time(Some(row.created_at)),
                Param::Time(Some(row.updated_at)),
            ],
        ))?;
        Ok(())
    }

    fn rename_token(&self, id: Uuid, provider_name: &str) -> StorageResult<()> {
        self.execute_one(&Sql::new(
            self.dialect(),
            "UPDATE provider_config SET provider_name = ?, updated_at = ? WHERE id = ?",
            [
                Param::Text(provider_name),
                Param::Time(Some(Utc::now())),
                Param::Uuid(id),
            ],
        ))?;
        Ok(())
    }

    fn update_token_config(
        &self,
        id: Uuid,
        update: ConfigUpdate<'_>,
    ) -> StorageResult<Result<Value, Error>> {
        let d = self.dialect();
        self.write(|tx| {
            // The row lock (or the transaction's write lock) makes concurrent read-modify-writes
            // from any process take turns.
            let mut select = Sql::new(
                d,
                "SELECT config FROM provider_config WHERE id = ?",
                [Param::Uuid(id)],
            );
            select.raw(d.lock_selected_rows());
            let Some(mut config) = tx.first(&select, |row| row.json(0))? else {
                return Ok(Err(Error::Pkcs11(crate::Rv::TOKEN_NOT_PRESENT)));
            };
            if let Err(error) = update(&mut config) {
                // Nothing was written; the commit only ends the transaction (and its lock).
                return Ok(Err(error));
            }
            tx.execute(&Sql::new(
                d,
                "UPDATE provider_config SET config = ?, updated_at = ? WHERE id = ?",
                [
                    Param::Json(Some(&config)),
                    Param::Time(Some(Utc::now())),
                    Param::Uuid(id),
                ],
            ))?;
            Ok(Ok(config))
        })
    }

    fn delete_token(&self, id: Uuid, destroyed: &KeyEvent) -> StorageResult<usize> {
        let d = self.dialect();
        self.write(|tx| {
            let keys = delete_token_contents(d, tx, id, destroyed)?;
            tx.execute(&Sql::new(
                d,
                "DELETE FROM provider_config WHERE id = ?",
                [Param::Uuid(id)],
            ))?;
            Ok(keys)
        })
    }

    fn delete_token_keys(&self, id: Uuid, destroyed: &KeyEvent) -> StorageResult<usize> {
        let d = self.dialect();
        self.write(|tx| delete_token_contents(d, tx, id, destroyed))
    }

    fn insert_key(&self, row: NewKeyRow<'_>, created: &KeyEvent) -> StorageResult<()> {
        let d = self.dialect();
        self.write(|tx| {
            insert_key_row(d, tx, row)?;
            insert_event(d, tx, created)
        })?;
        Ok(())
    }

    fn get_key(&self, table: KeyTable, id: Uuid) -> StorageResult<Option<KeyRow>> {
        let d = self.dialect();
        self.read(|c| {
            c.first(
                &Sql::new(
                    d,
                    &format!(
                        "SELECT {} FROM {} WHERE id = ?",
                        table.columns(),
                        table.name()
                    ),
                    [Param::Uuid(id)],
                ),
                key_decoder(table),
            )
        })
    }

    fn find_keys(&self, table: KeyTable, filter: &KeyFilter) -> StorageResult<Vec<KeyRow>> {
        let Some(sql) = find_keys_sql(self.dialect(), table, filter) else {
            return Ok(Vec::new());
        };
        self.read(|c| c.all(&sql, key_decoder(table)))
    }

    fn visit_keys(
        &self,
        table: KeyTable,
        filter: &KeyFilter,
        each: &mut dyn FnMut(KeyRow),
    ) -> StorageResult<()> {
        let Some(sql) = find_keys_sql(self.dialect(), table, filter) else {
            return Ok(());
        };
        let decode = key_decoder(table);
        self.read(|c| {
            c.query(&sql, &mut |row| {
                each(decode(row)?);
                Ok(())
            })
        })
    }

    fn update_key_attributes(
        &self,
        table: KeyTable,
        id: Uuid,
        metadata: &Value,
        expiration: Option<DateTime<Utc>>,
        event: Option<&KeyEvent>,
    ) -> StorageResult<bool> {
        let d = self.dialect();
        let sql = Sql::new(
            d,
            &format!(
                "UPDATE {} SET metadata = ?, expiration = ?, updated_at = ? WHERE id = ?",
                table.name()
            ),
            [
                Param::Json(Some(metadata)),
                Param::Time(expiration),
                Param::Time(Some(Utc::now())),
                Param::Uuid(id),
            ],
        );
        self.write(|tx| {
            let changed = tx.execute(&sql)? > 0;
            record_if(d, tx, changed, event)
        })
    }

    fn delete_key(&self, table: KeyTable, id: Uuid, destroyed: &KeyEvent) -> StorageResult<bool> {
        let d = self.dialect();
        let sql = Sql::new(
            d,
            &format!("DELETE FROM {} WHERE id = ?", table.name()),
            [Param::Uuid(id)],
        );
        self.write(|tx| {
            let changed = tx.execute(&sql)? > 0;
            record_if(d, tx, changed, Some(destroyed))
        })
    }

    fn key_id_exists(&self, key_id: &str) -> StorageResult<bool> {
        let sql = Sql::new(
            self.dialect(),
            "SELECT EXISTS (SELECT 1 FROM asym_key WHERE key_id = ?) \
             OR EXISTS (SELECT 1 FROM sym_key WHERE key_id = ?)",
            [Param::Text(key_id), Param::Text(key_id)],
        );
        self.read(|c| Ok(c.first(&sql, |row| row.bool(0))?.unwrap_or(false)))
    }

    fn insert_object(&self, row: &ObjectRow) -> StorageResult<()> {
        self.execute_one(&Sql::new(
            self.dialect(),
            &format!("INSERT INTO p11_object ({OBJECT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"),
            [
                Param::Uuid(row.id),
                Param::Uuid(row.provider_config_id),
                Param::I64(row.object_class),
                Param::Bytes(row.value.as_deref()),
                Param::Json(Some(&row.metadata)),
                Param::Time(Some(row.created_at)),
                Param::Time(Some(row.updated_at)),
            ],
        ))?;
        Ok(())
    }

    fn get_object(&self, id: Uuid) -> StorageResult<Option<ObjectRow>> {
        let sql = Sql::new(
            self.dialect(),
            &format!("SELECT {OBJECT_COLUMNS} FROM p11_object WHERE id = ?"),
            [Param::Uuid(id)],
        );
        self.read(|c| c.first(&sql, decode_object))
    }

    fn find_objects(
        &self,
        filter: &KeyFilter,
        class: Option<i64>,
    ) -> StorageResult<Vec<ObjectRow>> {
        let sql = find_objects_sql(self.dialect(), filter, class);
        self.read(|c| c.all(&sql, decode_object))
    }

    fn visit_objects(
        &self,
        filter: &KeyFilter,
        class: Option<i64>,
        each: &mut dyn FnMut(ObjectRow),
    ) -> StorageResult<()> {
        let sql = find_objects_sql(self.dialect(), filter, class);
        self.read(|c| {
            c.query(&sql, &mut |row| {
                each(decode_object(row)?);
                Ok(())
            })
        })
    }

    fn visit_rows(&self, search: &Search, each: &mut dyn FnMut(FoundRow)) -> StorageResult<()> {
        let Some(sql) = search_sql(self.dialect(), search) else {
            return Ok(());
        };
        let decoder = &*SEARCH_DECODER;
        self.read(|c| {
            c.query(&sql, &mut |row| {
                each(decoder.decode(row)?);
                Ok(())
            })
        })
    }

    fn update_object(&self, id: Uuid, metadata: &Value, value: &[u8]) -> StorageResult<bool> {
        let changed = self.execute_one(&Sql::new(
            self.dialect(),
            "UPDATE p11_object SET metadata = ?, value = ?, updated_at = ? WHERE id = ?",
            [
                Param::Json(Some(metadata)),
                Param::Bytes(Some(value)),
                Param::Time(Some(Utc::now())),
                Param::Uuid(id),
            ],
        ))?;
        Ok(changed > 0)
    }

    fn delete_object(&self, id: Uuid) -> StorageResult<bool> {
        let sql = Sql::new(
            self.dialect(),
            "DELETE FROM p11_object WHERE id = ?",
            [Param::Uuid(id)],
        );
        self.write(|tx| Ok(tx.execute(&sql)? > 0))
    }

    fn record_event(&self, event: &KeyEvent) -> StorageResult<()> {
        let d = self.dialect();
        self.write(|tx| insert_event(d, tx, event))?;
        Ok(())
    }

    fn key_events(&self, key_id: &str) -> StorageResult<Vec<KeyEvent>> {
        let sql = Sql::new(
            self.dialect(),
            &format!("SELECT {EVENT_COLUMNS} FROM key_event WHERE key_id = ? ORDER BY at, id"),
            [Param::Text(key_id)],
        );
        self.read(|c| c.all(&sql, decode_event))
    }

    fn rotate_key(
        &self,
        successor: NewKeyRow<'_>,
        old_table: KeyTable,
        old_id: Uuid,
        old_metadata: &Value,
        objects: &[ObjectMetadata],
        events: &[KeyEvent],
    ) -> StorageResult<bool> {
        let d = self.dialect();
        let now = Utc::now();
        // A Compromised predecessor stays Compromised; one that already has a successor is
        // left alone (and nothing is written). The codes are constants of this build, written
        // as literals so that every dialect types the `CASE` as the column's integer.
        let mut retire = Sql::new(
            d,
            &format!(
                "UPDATE {} SET key_status = CASE WHEN key_status = {compromised} \
                 THEN {compromised} ELSE {inactive} END, \
                 metadata = ?, updated_at = ? WHERE id = ? AND COALESCE(",
                old_table.name(),
                compromised = KeyStatus::Compromised.code(),
                inactive = KeyStatus::Inactive.code(),
            ),
            [
                Param::Json(Some(old_metadata)),
                Param::Time(Some(now)),
                Param::Uuid(old_id),
            ],
        );
        retire
            .raw(&d.json_text("metadata", "rotated_to"))
            .raw(", '') = ''");
        self.write(|tx| {
            if tx.execute(&retire)? == 0 {
                return Ok(false);
            }
            insert_key_row(d, tx, successor)?;
            update_object_metadata(d, tx, objects, now)?;
            for event in events {
                insert_event(d, tx, event)?;
            }
            Ok(true)
        })
    }

    fn rename_key(
        &self,
        table: KeyTable,
        id: Uuid,
        metadata: &Value,
        objects: &[ObjectMetadata],
        event: &KeyEvent,
    ) -> StorageResult<bool> {
        let d = self.dialect();
        let now = Utc::now();
        let rename = Sql::new(
            d,
            &format!(
                "UPDATE {} SET metadata = ?, updated_at = ? WHERE id = ?",
                table.name()
            ),
            [
                Param::Json(Some(metadata)),
                Param::Time(Some(now)),
                Param::Uuid(id),
            ],
        );
        self.write(|tx| {
            if tx.execute(&rename)? == 0 {
                return Ok(false);
            }
            update_object_metadata(d, tx, objects, now)?;
            insert_event(d, tx, event)?;
            Ok(true)
        })
    }

    fn set_key_state(
        &self,
        table: KeyTable,
        id: Uuid,
        status: KeyStatus,
        expiration: Option<DateTime<Utc>>,
        metadata: Option<&Value>,
        event: &KeyEvent,
    ) -> StorageResult<bool> {
        let d = self.dialect();
        let sql = Sql::new(
            d,
            &format!(
                "UPDATE {} SET key_status = ?, expiration = ?, updated_at = ?, \
                 metadata = COALESCE(?, metadata) WHERE id = ?",
                table.name()
            ),
            [
                Param::I32(status.code()),
                Param::Time(expiration),
                Param::Time(Some(Utc::now())),
                Param::Json(metadata),
                Param::Uuid(id),
            ],
        );
        self.write(|tx| {
            let changed = tx.execute(&sql)? > 0;
            record_if(d, tx, changed, Some(event))
        })
    }
}
