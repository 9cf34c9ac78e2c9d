//! Slot and token management (PKCS#11 3.0 §5.5).

use cryptoki_sys::{CK_MECHANISM_INFO, CK_SLOT_INFO, CK_TOKEN_INFO};

use super::{CK_MECHANISM_TYPE, CK_SESSION_HANDLE, CK_SLOT_ID};
use crate::core::module;
use crate::error::{Result, Rv};
use crate::mechanism;

pub fn get_slot_list(token_present: bool) -> Result<Vec<CK_SLOT_ID>> {
    module()?.slot_list(token_present)
}

pub fn get_slot_info(slot: CK_SLOT_ID) -> Result<CK_SLOT_INFO> {
    module()?.slot_info(slot)
}

pub fn get_token_info(slot: CK_SLOT_ID) -> Result<CK_TOKEN_INFO> {
    module()?.token_info(slot)
}

pub fn get_mechanism_list(slot: CK_SLOT_ID) -> Result<Vec<CK_MECHANISM_TYPE>> {
    module()?.slot_token(slot)?;
    Ok(mechanism::all().iter().map(|entry| entry.kind).collect())
}

pub fn get_mechanism_info(
    slot: CK_SLOT_ID,
    mechanism: CK_MECHANISM_TYPE,
) -> Result<CK_MECHANISM_INFO> {
    module()?.slot_token(slot)?;
    Ok(mechanism::lookup(mechanism)
        .ok_or(Rv::MECHANISM_INVALID)?
        .info)
}

/// `label` is the caller's 32-byte, blank-padded label.
pub fn init_token(slot: CK_SLOT_ID, so_pin: &[u8], label: &[u8; 32]) -> Result<()> {
    module()?.init_token(slot, so_pin, label)
}

pub fn init_pin(session: CK_SESSION_HANDLE, pin: &[u8]) -> Result<()> {
    module()?.init_pin(session, pin)
}

pub fn set_pin(session: CK_SESSION_HANDLE, old_pin: &[u8], new_pin: &[u8]) -> Result<()> {
    module()?.set_pin(session, old_pin, new_pin)
}
