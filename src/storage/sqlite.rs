//! SQLite backend.

use super::*;

pub struct SqliteStorage;

impl SqliteStorage {
    pub fn open(path: &str, busy_timeout_ms: u64) -> StorageResult<SqliteStorage> {
        let _ = (path, busy_timeout_ms);
        todo!("helper")
    }
}
