//! The text of a PostgreSQL driver error, shared by the pool, the change feed and the test
//! helpers of the PostgreSQL store (its own module, so that none of them imports another for it).

/// A driver error as text: for server errors the SQLSTATE, the message and the constraint or
/// table, never the `DETAIL` line (it quotes row values).
pub(super) fn error_text(error: &::postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut text = format!("{} ({}): {}", db.severity(), db.code().code(), db.message());
            if let Some(constraint) = db.constraint() {
                text.push_str(&format!(" [constraint {constraint}]"));
            } else if let Some(table) = db.table() {
                text.push_str(&format!(" [table {table}]"));
            }
            text
        }
        None => {
            // The driver's own text is generic ("error connecting to server"); the cause is in
            // the source chain.
            let mut text = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(cause) = source {
                let cause_text = cause.to_string();
                if !text.contains(&cause_text) {
                    text.push_str(&format!(": {cause_text}"));
                }
                source = cause.source();
            }
            text
        }
    }
}
