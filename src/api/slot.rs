//! Slot and token management (PKCS#11 3.0 §5.5).

use cryptoki_sys::{CK_MECHANISM_INFO, CK_SLOT_INFO, CK_TOKEN_INFO};

use super::{CK_MECHANISM_TYPE, CK_SESSION_HANDLE, CK_SLOT_ID};
use crate::error::Result;

pub fn get_slot_list(token_present: bool) -> Result<Vec<CK_SLOT_ID>> {
    let _ = token_present;
    todo!()
}

pub fn get_slot_info(slot: CK_SLOT_ID) -> Result<CK_SLOT_INFO> {
    let _ = slot;
    todo!()
}

pub fn get_token_info(slot: CK_SLOT_ID) -> Result<CK_TOKEN_INFO> {
    let _ = slot;
    todo!()
}

pub fn get_mechanism_list(slot: CK_SLOT_ID) -> Result<Vec<CK_MECHANISM_TYPE>> {
    let _ = slot;
    todo!()
}

pub fn get_mechanism_info(slot: CK_SLOT_ID, mechanism: CK_MECHANISM_TYPE) -> Result<CK_MECHANISM_INFO> {
    let _ = (slot, mechanism);
    todo!()
}

/// `label` is the caller's 32-byte, blank-padded label.
pub fn init_token(slot: CK_SLOT_ID, so_pin: &[u8], label: &[u8; 32]) -> Result<()> {
    let _ = (slot, so_pin, label);
    todo!()
}

pub fn init_pin(session: CK_SESSION_HANDLE, pin: &[u8]) -> Result<()> {
    let _ = (session, pin);
    todo!()
}

pub fn set_pin(session: CK_SESSION_HANDLE, old_pin: &[u8], new_pin: &[u8]) -> Result<()> {
    let _ = (session, old_pin, new_pin);
    todo!()
}
