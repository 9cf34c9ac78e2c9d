//! The integer codes of the key-management schema's columns, defined once. `key_algorithm`'s
//! are rows of the key-algorithm table, `crate::key_algorithm`.

pub use crate::key_state::{KeyMode, KeyStatus};
