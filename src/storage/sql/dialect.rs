//! What one SQL dialect says differently: the constant fragments the shared statements in
//! [`super`] are assembled from. A fragment is SQL text written here, never a value: every value
//! is a bound parameter ([`super::Param`]).
//!
//! A dialect that speaks standard SQL writes only [`Dialect::placeholder`] and
//! [`Dialect::json_text`]; the other methods have the standard form as their default.
//!
//! Only what the statements need is here. None of them is an upsert, and none needs a cast but
//! the typed NULLs of the search's `UNION ALL` ([`Dialect::null_of`]): the one `CASE` that sets a
//! column from constants writes them as literals, so every dialect types it as the column's
//! integer (PostgreSQL would type bound `CASE` results as text). A
//! statement that needs either adds its fragment here, with a default where SQL has a standard
//! form.

/// One SQL dialect. The implementations live beside their drivers (`storage::sqlite`,
/// `storage::postgres`).
pub trait Dialect: Sync {
    /// Appends the marker of the `n`th parameter (from 1): `?1` (SQLite), `$1` (PostgreSQL).
    fn placeholder(&self, n: usize, sql: &mut String);

    /// The text of the top-level string field `field` of the JSON column `column`
    /// (`json_extract(metadata, '$.label')`, `metadata->>'label'`). The finds by label and
    /// `CKA_ID` use exactly this expression, so it must be the one the metadata indexes of the
    /// dialect's first migration are built on, or the database scans the table. `column` and
    /// `field` are constant names, never values.
    fn json_text(&self, column: &str, field: &str) -> String;

    /// Appended to a `SELECT` of the row a write transaction is about to change, so that
    /// concurrent read-modify-writes take turns (`FOR UPDATE`). Empty where the transaction
    /// already holds the write lock from its start (SQLite's `BEGIN IMMEDIATE`).
    fn lock_selected_rows(&self) -> &'static str {
        " FOR UPDATE"
    }

    /// `column` is one of `count` integers: the condition with one `?` per parameter it binds,
    /// and whether the values are bound as one array (`= ANY(?)`) instead of one by one
    /// (`IN (?, …)`, the default).
    fn in_list(&self, column: &str, count: usize) -> (String, InList) {
        let marks = vec!["?"; count].join(", ");
        (format!("{column} IN ({marks})"), InList::EachValue)
    }

    /// A NULL of a column's type, for the columns one branch of a `UNION ALL` does not have
    /// (the one search over every object table): plain `NULL` where a union's columns take the
    /// type of whatever the other branches give (the default), typed where a branch of NULLs
    /// alone would make the column text (PostgreSQL).
    fn null_of(&self, _ty: ColumnType) -> &'static str {
        "NULL"
    }
}

/// The types of the columns the object tables have, as [`Dialect::null_of`] needs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    Uuid,
    Text,
    Int,
    BigInt,
    Time,
    Json,
    Bytes,
}

/// How [`Dialect::in_list`] binds its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InList {
    /// One parameter per value.
    EachValue,
    /// One array parameter.
    Array,
}
