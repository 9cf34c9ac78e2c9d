//! One accessor for a result row of any driver, so each table's rows are decoded once
//! ([`super`]'s `decode_*`).
//!
//! A driver implements the `opt_*` methods (and the few plain ones) on its own row type, in the
//! encoding its dialect stores (SQLite: UUIDs, JSON and timestamps as text; PostgreSQL: `uuid`,
//! `jsonb`, `timestamptz`). Anything that does not decode is [`StorageError::Corrupt`], with
//! the column it was found in.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::super::StorageResult;
use crate::error::StorageError;

/// Typed columns of one result row, by position in the `SELECT` list (from 0).
pub trait Row {
    fn opt_text(&self, column: usize) -> StorageResult<Option<String>>;
    fn i32(&self, column: usize) -> StorageResult<i32>;
    fn i64(&self, column: usize) -> StorageResult<i64>;
    fn bool(&self, column: usize) -> StorageResult<bool>;
    fn opt_bytes(&self, column: usize) -> StorageResult<Option<Vec<u8>>>;
    fn opt_uuid(&self, column: usize) -> StorageResult<Option<Uuid>>;
    fn opt_json(&self, column: usize) -> StorageResult<Option<Value>>;
    fn opt_time(&self, column: usize) -> StorageResult<Option<DateTime<Utc>>>;

    fn text(&self, column: usize) -> StorageResult<String> {
        self.opt_text(column)?.ok_or_else(|| null(column))
    }
    fn uuid(&self, column: usize) -> StorageResult<Uuid> {
        self.opt_uuid(column)?.ok_or_else(|| null(column))
    }
    fn json(&self, column: usize) -> StorageResult<Value> {
        self.opt_json(column)?.ok_or_else(|| null(column))
    }
    fn time(&self, column: usize) -> StorageResult<DateTime<Utc>> {
        self.opt_time(column)?.ok_or_else(|| null(column))
    }
}

/// A column that must not be NULL is.
fn null(column: usize) -> StorageError {
    StorageError::Corrupt(format!("NULL in column {column}"))
}

/// A value of column `column` that does not decode as `what`.
pub fn corrupt(column: usize, what: &str, cause: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(format!("bad {what} in column {column}: {cause}"))
}
