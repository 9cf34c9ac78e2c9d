//! Logging (placeholder until the storage branch lands).
pub fn init(level: &str) {
    let _ = level;
}
