//! Slot events (`C_WaitForSlotEvent`, PKCS#11 3.0 §5.5): a token created or deleted, in this
//! process or any other using the store.
//!
//! The module remembers the tokens it has reported (from `C_Initialize` on); an event is a slot
//! whose token differs from that record, reported once, lowest slot first. Other processes'
//! changes arrive through the store's change marker (SQLite's `PRAGMA data_version`, the
//! PostgreSQL notifications, both of which the token table's writes move): the token list is
//! read again only when it moved. A blocking wait polls that marker every [`POLL`] — no busy
//! loop, no connection held while asleep, and outside the fork door, so a fork never waits for
//! it — and `C_Finalize` from another thread wakes it at once with
//! `CKR_CRYPTOKI_NOT_INITIALIZED`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use cryptoki_sys::CK_SLOT_ID;
use uuid::Uuid;

use super::fork;
use super::module::{module_kept, Module};
use crate::error::{Result, Rv};

/// How often a blocking wait looks at the store's change marker.
pub const POLL: Duration = Duration::from_millis(200);

/// The tokens as last reported, and the change marker they were read at.
#[derive(Default)]
pub struct SlotWatch {
    reported: BTreeMap<CK_SLOT_ID, Uuid>,
    marker: Option<u64>,
}

/// Counts `C_Finalize` calls, so a waiter can tell it was woken by one. Waking takes no lock
/// (a fork may leave a waiter's lock held in the child).
static FINALIZED: AtomicU64 = AtomicU64::new(0);
static WAKE: Condvar = Condvar::new();

/// Called by `C_Finalize`: every blocked `C_WaitForSlotEvent` returns.
pub fn wake_waiters() {
    FINALIZED.fetch_add(1, Ordering::SeqCst);
    WAKE.notify_all();
}

impl Module {
    /// The tokens present at `C_Initialize` are no event.
    pub(super) fn start_slot_watch(&self) -> Result<()> {
        let marker = self.storage.change_marker().ok();
        let reported = self.slots.read()?.tokens.clone();
        *self.slot_watch.lock()? = SlotWatch { reported, marker };
        Ok(())
    }

    /// The slot of a token created or deleted since it was last reported, if any.
    pub fn take_slot_event(&self) -> Result<Option<CK_SLOT_ID>> {
        let marker = self.storage.change_marker().ok();
        let moved = marker.is_none() || self.slot_watch.lock()?.marker != marker;
        if moved {
            // No lock is held across the read.
            self.refresh_slots()?;
        }
        let current = self.slots.read()?.tokens.clone();
        let mut watch = self.slot_watch.lock()?;
        if moved {
            watch.marker = marker;
        }
        let changed = current
            .keys()
            .chain(watch.reported.keys())
            .filter(|slot| current.get(slot) != watch.reported.get(slot))
            .min()
            .copied();
        if let Some(slot) = changed {
            match current.get(&slot) {
                Some(token) => watch.reported.insert(slot, *token),
                None => watch.reported.remove(&slot),
            };
        }
        Ok(changed)
    }
}

/// `C_WaitForSlotEvent`: an event's slot; with `dont_block`, `CKR_NO_EVENT` when there is
/// none; otherwise waits for one, or for `C_Finalize` (`CKR_CRYPTOKI_NOT_INITIALIZED`).
pub fn wait_for_slot_event(dont_block: bool) -> Result<CK_SLOT_ID> {
    let ours = module_kept()?;
    let finalized = FINALIZED.load(Ordering::SeqCst);
    let idle = Mutex::new(());
    loop {
        if let Some(slot) = ours.take_slot_event()? {
            return Ok(slot);
        }
        if dont_block {
            Err(Rv::NO_EVENT)?
        }
        fork::outside(|| -> Result<()> {
            let guard = idle.lock()?;
            let _ = WAKE.wait_timeout_while(guard, POLL, |_| {
                FINALIZED.load(Ordering::SeqCst) == finalized
            })?;
            Ok(())
        })?;
        let still_ours = module_kept().is_ok_and(|m| Arc::ptr_eq(&m, &ours));
        if FINALIZED.load(Ordering::SeqCst) != finalized || !still_ours {
            Err(Rv::CRYPTOKI_NOT_INITIALIZED)?
        }
    }
}
