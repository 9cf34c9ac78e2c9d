//! The mechanism table.

use cryptoki_sys::CK_MECHANISM_TYPE;

use super::MechanismEntry;

pub fn lookup(kind: CK_MECHANISM_TYPE) -> Option<&'static MechanismEntry> {
    let _ = kind;
    todo!("helper")
}

/// All entries, sorted by mechanism type.
pub fn all() -> &'static [MechanismEntry] {
    todo!("helper")
}
