//! Embedded, versioned SQL migrations per dialect.
//!
//! The SQL lives in `migrations/<dialect>/NNNN_name.sql` and is compiled into the binary. Both
//! dialects carry the same version numbers (a test reads the directories to make sure no file is
//! forgotten). [`run`] applies every pending migration in one transaction and records each
//! version in `schema_migrations`; a database whose newest version is beyond what this build
//! knows is refused with [`StorageError::SchemaTooNew`] rather than written to.
//!
//! This module does not name a driver: a backend hands [`run`] a [`MigrationTarget`].

use crate::error::StorageError;

use super::StorageResult;

/// The SQL dialect a migration is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// One embedded migration.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    pub version: i64,
    /// The file name, for error messages.
    pub name: &'static str,
    pub sql: &'static str,
}

const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_init.sql",
        sql: include_str!("../../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "0002_objects.sql",
        sql: include_str!("../../migrations/sqlite/0002_objects.sql"),
    },
    Migration {
        version: 3,
        name: "0003_change_feed.sql",
        sql: include_str!("../../migrations/sqlite/0003_change_feed.sql"),
    },
    Migration {
        version: 4,
        name: "0004_lifecycle.sql",
        sql: include_str!("../../migrations/sqlite/0004_lifecycle.sql"),
    },
];

const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_init.sql",
        sql: include_str!("../../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "0002_objects.sql",
        sql: include_str!("../../migrations/postgres/0002_objects.sql"),
    },
    Migration {
        version: 3,
        name: "0003_change_feed.sql",
        sql: include_str!("../../migrations/postgres/0003_change_feed.sql"),
    },
    Migration {
        version: 4,
        name: "0004_lifecycle.sql",
        sql: include_str!("../../migrations/postgres/0004_lifecycle.sql"),
    },
];

/// Creates the version table if needed, before the current version can be read. Migration 0001
/// creates it too (with `IF NOT EXISTS`) so the schema files show the whole schema.
fn bootstrap_sql(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY NOT NULL,
                applied_at TEXT NOT NULL
            );"
        }
        // Not `CREATE TABLE IF NOT EXISTS`: PostgreSQL checks the CREATE privilege before it
        // looks for the table, and an application role (README, "Several hosts") has none.
        Dialect::Postgres => {
            "DO $$
            BEGIN
                IF to_regclass('schema_migrations') IS NULL THEN
                    CREATE TABLE schema_migrations (
                        version BIGINT PRIMARY KEY,
                        applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
                    );
                END IF;
            END
            $$;"
        }
    }
}

/// The embedded migrations of a dialect, in ascending version order.
pub fn migrations(dialect: Dialect) -> &'static [Migration] {
    match dialect {
        Dialect::Sqlite => SQLITE,
        Dialect::Postgres => POSTGRES,
    }
}

/// The newest schema version this build understands.
pub fn latest_version(dialect: Dialect) -> i64 {
    migrations(dialect).last().map_or(0, |m| m.version)
}

/// What [`run`] needs from a backend connection. Every method runs on the same connection, so
/// everything between `begin` and `commit` is one transaction.
pub trait MigrationTarget {
    /// Starts a write transaction that excludes other migrators (SQLite: `BEGIN IMMEDIATE`;
    /// PostgreSQL: `BEGIN` plus an advisory or table lock).
    fn begin(&mut self) -> StorageResult<()>;
    fn commit(&mut self) -> StorageResult<()>;
    fn rollback(&mut self) -> StorageResult<()>;
    /// Runs several `;`-separated statements.
    fn execute_batch(&mut self, sql: &str) -> StorageResult<()>;
    /// `MAX(version)` of `schema_migrations`, 0 when empty.
    fn current_version(&mut self) -> StorageResult<i64>;
    /// Records `version` as applied now.
    fn record_version(&mut self, version: i64) -> StorageResult<()>;
}

/// What an application role needs on a PostgreSQL store that another role created and migrated
/// (README, "PostgreSQL set-up"): each table the module reads or writes, with the privileges it
/// uses there — `key_event` is only ever appended to and read. Besides these the role needs
/// `USAGE` on the schema (and `CONNECT` on the database); the change-feed triggers need nothing
/// (a trigger runs without its function's `EXECUTE` privilege). `sqlhsm db check` reports each
/// one the current role lacks; a test checks that the README's `GRANT` lines say exactly this.
pub const POSTGRES_APP_PRIVILEGES: &[(&str, &[&str])] = &[
    ("provider_config", &["SELECT", "INSERT", "UPDATE", "DELETE"]),
    ("asym_key", &["SELECT", "INSERT", "UPDATE", "DELETE"]),
    ("sym_key", &["SELECT", "INSERT", "UPDATE", "DELETE"]),
    ("p11_object", &["SELECT", "INSERT", "UPDATE", "DELETE"]),
    ("key_event", &["SELECT", "INSERT"]),
    ("schema_migrations", &["SELECT"]),
];

/// Applies all pending migrations in one transaction; returns how many were applied (0 when the
/// schema is current). On any failure nothing is applied.
///
/// A current schema is recognised by one read, without a write transaction: most opens find
/// nothing to do, and a store that may only be read (a read-only file, an application role)
/// opens without asking for a write lock it cannot have.
pub fn run(target: &mut dyn MigrationTarget, dialect: Dialect) -> StorageResult<usize> {
    let supported = latest_version(dialect);
    // An error here (no version table yet) is answered by the transactional path below.
    if let Ok(current) = target.current_version() {
        if current == supported {
            return Ok(0);
        }
        if current > supported {
            return Err(StorageError::SchemaTooNew {
                found: current,
                supported,
            });
        }
    }
    target.begin()?;
    match apply_pending(target, dialect) {
        Ok(applied) => {
            target.commit()?;
            Ok(applied)
        }
        Err(error) => {
            // The original error matters more than a failed rollback; a broken connection rolls
            // back on its own when it closes.
            let _ = target.rollback();
            Err(error)
        }
    }
}

fn apply_pending(target: &mut dyn MigrationTarget, dialect: Dialect) -> StorageResult<usize> {
    target.execute_batch(bootstrap_sql(dialect))?;
    let current = target.current_version()?;
    let supported = latest_version(dialect);
    if current > supported {
        return Err(StorageError::SchemaTooNew {
            found: current,
            supported,
        });
    }
    let mut applied = 0;
    for migration in migrations(dialect).iter().filter(|m| m.version > current) {
        let failed = |error: StorageError| StorageError::Migration {
            version: migration.version,
            reason: format!("{}: {error}", migration.name),
        };
        target.execute_batch(migration.sql).map_err(failed)?;
        target.record_version(migration.version).map_err(failed)?;
        applied += 1;
    }
    Ok(applied)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    fn versions_on_disk(dialect: &str) -> BTreeSet<(i64, String)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dialect);
        std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".sql"))
            .map(|name| {
                let (number, _) = name.split_once('_').expect("NNNN_name.sql");
                (number.parse::<i64>().expect("numeric version"), name)
            })
            .collect()
    }

    fn embedded(dialect: Dialect) -> BTreeSet<(i64, String)> {
        migrations(dialect)
            .iter()
            .map(|m| (m.version, m.name.to_string()))
            .collect()
    }

    #[test]
    fn dialects_carry_the_same_versions() {
        let sqlite = versions_on_disk("sqlite");
        let postgres = versions_on_disk("postgres");
        assert!(!sqlite.is_empty());
        assert_eq!(
            sqlite, postgres,
            "migrations/sqlite and migrations/postgres differ"
        );
        assert_eq!(
            sqlite,
            embedded(Dialect::Sqlite),
            "a sqlite migration is not embedded"
        );
        assert_eq!(
            postgres,
            embedded(Dialect::Postgres),
            "a postgres migration is not embedded"
        );
        assert_eq!(
            latest_version(Dialect::Sqlite),
            latest_version(Dialect::Postgres)
        );
    }

    #[test]
    fn embedded_versions_ascend_without_gaps() {
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            for (index, migration) in migrations(dialect).iter().enumerate() {
                assert_eq!(migration.version, index as i64 + 1, "{dialect:?}");
                assert!(migration
                    .name
                    .starts_with(&format!("{:04}_", migration.version)));
            }
        }
    }

    /// A fake target that records what it was asked to do.
    #[derive(Default)]
    struct Fake {
        committed: BTreeSet<i64>,
        pending: Option<BTreeSet<i64>>,
        batches: usize,
        fail_batch: bool,
        begins: usize,
    }

    impl MigrationTarget for Fake {
        fn begin(&mut self) -> StorageResult<()> {
            self.begins += 1;
            self.pending = Some(self.committed.clone());
            Ok(())
        }
        fn commit(&mut self) -> StorageResult<()> {
            self.committed = self.pending.take().unwrap();
            Ok(())
        }
        fn rollback(&mut self) -> StorageResult<()> {
            self.pending = None;
            Ok(())
        }
        fn execute_batch(&mut self, _sql: &str) -> StorageResult<()> {
            self.batches += 1;
            if self.fail_batch && self.batches > 1 {
                return Err(StorageError::Backend("syntax error".into()));
            }
            Ok(())
        }
        fn current_version(&mut self) -> StorageResult<i64> {
            Ok(self
                .pending
                .as_ref()
                .unwrap_or(&self.committed)
                .iter()
                .max()
                .copied()
                .unwrap_or(0))
        }
        fn record_version(&mut self, version: i64) -> StorageResult<()> {
            self.pending.as_mut().unwrap().insert(version);
            Ok(())
        }
    }

    #[test]
    fn applying_twice_is_a_no_op() {
        let mut fake = Fake::default();
        let latest = latest_version(Dialect::Sqlite) as usize;
        assert_eq!(run(&mut fake, Dialect::Sqlite).unwrap(), latest);
        assert_eq!(run(&mut fake, Dialect::Sqlite).unwrap(), 0);
        assert_eq!(fake.committed.len(), latest);
        assert_eq!(
            fake.begins, 1,
            "a current schema needs no write transaction"
        );
    }

    /// The README's `GRANT … ON <tables> TO sqlhsm_app` lines grant exactly
    /// [`POSTGRES_APP_PRIVILEGES`], and every table the migrations create is in it.
    #[test]
    fn the_readme_grants_what_the_application_role_needs() {
        let readme =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
                .unwrap();
        let mut granted = BTreeSet::new();
        for line in readme.lines().map(str::trim) {
            let Some(rest) = line.strip_prefix("GRANT ") else {
                continue;
            };
            let Some((privileges, rest)) = rest.split_once(" ON ") else {
                continue;
            };
            let Some((objects, _role)) = rest.split_once(" TO ") else {
                continue;
            };
            if objects.starts_with("DATABASE ") || objects.starts_with("SCHEMA ") {
                continue;
            }
            for table in objects.split(',').map(str::trim) {
                for privilege in privileges.split(',').map(str::trim) {
                    granted.insert((table.to_string(), privilege.to_string()));
                }
            }
        }
        let needed: BTreeSet<(String, String)> = POSTGRES_APP_PRIVILEGES
            .iter()
            .flat_map(|(table, privileges)| {
                privileges
                    .iter()
                    .map(move |p| (table.to_string(), p.to_string()))
            })
            .collect();
        assert_eq!(granted, needed, "README.md's GRANT lines");
        let mut tables = BTreeSet::new();
        for migration in migrations(Dialect::Postgres) {
            let code: String = migration
                .sql
                .lines()
                .filter(|line| !line.trim_start().starts_with("--"))
                .map(|line| format!("{line}\n"))
                .collect();
            for statement in code.split(';') {
                let words: Vec<&str> = statement.split_whitespace().collect();
                if let ["CREATE", "TABLE", name, ..] = words.as_slice() {
                    let name = if *name == "IF" { words[5] } else { name };
                    tables.insert(name.to_string());
                    assert!(
                        POSTGRES_APP_PRIVILEGES.iter().any(|(t, _)| *t == name),
                        "{}: table {name} is missing from POSTGRES_APP_PRIVILEGES",
                        migration.name
                    );
                }
            }
        }
        assert_eq!(tables.len(), POSTGRES_APP_PRIVILEGES.len(), "{tables:?}");
    }

    #[test]
    fn a_newer_database_is_refused() {
        let mut fake = Fake {
            committed: [1, 2, 99].into(),
            ..Fake::default()
        };
        match run(&mut fake, Dialect::Postgres) {
            Err(StorageError::SchemaTooNew { found, supported }) => {
                assert_eq!(found, 99);
                assert_eq!(supported, latest_version(Dialect::Postgres));
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }

    #[test]
    fn a_failed_migration_applies_nothing() {
        let mut fake = Fake {
            fail_batch: true,
            ..Fake::default()
        };
        match run(&mut fake, Dialect::Sqlite) {
            Err(StorageError::Migration { version: 1, reason }) => {
                assert!(reason.contains("0001_init.sql"), "{reason}");
            }
            other => panic!("expected Migration error, got {other:?}"),
        }
        assert!(fake.committed.is_empty());
        assert!(fake.pending.is_none(), "rolled back");
    }
}
