//! The object handle table: handles are integers, never pointers, and never reused within a
//! process — not even across `C_Finalize` / `C_Initialize`, because the counters are the
//! process's, not the module instance's — so a stale handle can never name a different object
//! or session. The table also caches each
//! object's attributes and unwrapped material, so the signing path needs no database round trip.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use cryptoki_sys::{CK_OBJECT_HANDLE, CK_SESSION_HANDLE};

use super::object::{Object, ObjectId, ObjectRef};
use crate::error::Result;

/// A process-wide source of numbers that are never handed out twice.
pub struct Counter(AtomicU64);

impl Counter {
    const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }

    /// The next number, from 1 up. 2^64 handles cannot be used up.
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Object handles, session handles and the numbers in session objects' `CKA_UNIQUE_ID`.
pub static OBJECT_HANDLES: Counter = Counter::new();
pub static SESSION_HANDLES: Counter = Counter::new();
pub static SESSION_OBJECT_IDS: Counter = Counter::new();

/// A cached object; `stale` once another process may have changed or destroyed it.
struct Entry {
    object: ObjectRef,
    stale: bool,
}

#[derive(Default)]
struct Inner {
    by_handle: HashMap<CK_OBJECT_HANDLE, Entry>,
    by_id: HashMap<ObjectId, CK_OBJECT_HANDLE>,
}

#[derive(Default)]
pub struct HandleTable {
    inner: RwLock<Inner>,
}

impl HandleTable {
    /// Registers `object` (or refreshes the cached copy of an object already known) and returns
    /// its handle. Unwrapped material carries over when the sealed bytes did not change.
    pub fn insert(&self, object: Object) -> Result<CK_OBJECT_HANDLE> {
        let mut inner = self.inner.write()?;
        if let Some(&handle) = inner.by_id.get(&object.id) {
            if let Some(Entry {
                object: previous, ..
            }) = inner.by_handle.get(&handle)
            {
                let same_material = previous.sealed == object.sealed;
                if same_material && object.material.read()?.is_none() {
                    *object.material.write()? = previous.material.read()?.clone();
                }
            }
            inner.by_handle.insert(
                handle,
                Entry {
                    object: Arc::new(object),
                    stale: false,
                },
            );
            return Ok(handle);
        }
        let handle = OBJECT_HANDLES.next();
        inner.by_id.insert(object.id, handle);
        inner.by_handle.insert(
            handle,
            Entry {
                object: Arc::new(object),
                stale: false,
            },
        );
        Ok(handle)
    }

    pub fn get(&self, handle: CK_OBJECT_HANDLE) -> Result<Option<ObjectRef>> {
        Ok(self
            .inner
            .read()?
            .by_handle
            .get(&handle)
            .map(|e| e.object.clone()))
    }

    /// The cached object and whether it must be revalidated against the store first.
    pub fn lookup(&self, handle: CK_OBJECT_HANDLE) -> Result<Option<(ObjectRef, bool)>> {
        Ok(self
            .inner
            .read()?
            .by_handle
            .get(&handle)
            .map(|e| (e.object.clone(), e.stale)))
    }

    /// Keeps a cached object as it is until the next change (its revalidation could not reach
    /// the store; trying again on every use would make each call wait for the store).
    pub fn mark_fresh(&self, id: ObjectId) -> Result<()> {
        let mut inner = self.inner.write()?;
        if let Some(handle) = inner.by_id.get(&id).copied() {
            if let Some(entry) = inner.by_handle.get_mut(&handle) {
                entry.stale = false;
            }
        }
        Ok(())
    }

    /// Another process changed the store: every cached token object is revalidated on its
    /// next use (session objects live only here and cannot be stale).
    pub fn mark_token_objects_stale(&self) -> Result<()> {
        let mut inner = self.inner.write()?;
        for entry in inner.by_handle.values_mut().filter(|e| e.object.is_token()) {
            entry.stale = true;
        }
        Ok(())
    }

    /// Forgets an object (destroyed, or found gone from the database).
    pub fn remove(&self, id: ObjectId) -> Result<()> {
        let mut inner = self.inner.write()?;
        if let Some(handle) = inner.by_id.remove(&id) {
            inner.by_handle.remove(&handle);
        }
        Ok(())
    }

    /// Destroys the session objects a session created (when it closes).
    pub fn remove_session_objects(&self, session: CK_SESSION_HANDLE) -> Result<()> {
        let mut inner = self.inner.write()?;
        let doomed: Vec<(CK_OBJECT_HANDLE, ObjectId)> = inner
            .by_handle
            .iter()
            .filter(|(_, e)| e.object.owner_session == Some(session))
            .map(|(h, e)| (*h, e.object.id))
            .collect();
        for (handle, id) in doomed {
            inner.by_handle.remove(&handle);
            inner.by_id.remove(&id);
        }
        Ok(())
    }

    /// All session objects (for `C_FindObjects`; there are few, they live in memory).
    pub fn session_objects(&self) -> Result<Vec<(CK_OBJECT_HANDLE, ObjectRef)>> {
        Ok(self
            .inner
            .read()?
            .by_handle
            .iter()
            .filter(|(_, e)| !e.object.is_token())
            .map(|(h, e)| (*h, e.object.clone()))
            .collect())
    }

    /// Drops the unwrapped material of a token's objects (on logout), zeroizing secrets.
    /// In a forked child: drops every cached object (and with it the key material) of a table
    /// inherited from the parent, unless a lock held at the fork is in the way.
    pub fn clear_after_fork(&self) {
        if let Ok(mut inner) = self.inner.try_write() {
            inner.by_handle.clear();
            inner.by_id.clear();
        }
    }

    pub fn forget_material(&self, token: uuid::Uuid) -> Result<()> {
        let inner = self.inner.read()?;
        let objects = inner.by_handle.values().map(|e| &e.object);
        for object in objects.filter(|o| o.token == token && o.is_token()) {
            if object.sealed.is_some() {
                *object.material.write()? = None;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::attributes::AttrMap;
    use super::super::object::Half;
    use super::*;

    fn object(id: ObjectId, owner: Option<CK_SESSION_HANDLE>) -> Object {
        Object {
            id,
            token: uuid::Uuid::nil(),
            owner_session: owner,
            attrs: AttrMap::new(),
            sealed: None,
            material: RwLock::new(None),
        }
    }

    #[test]
    fn handles_are_stable_and_never_reused() {
        let table = HandleTable::default();
        let row = uuid::Uuid::new_v4();
        let id = ObjectId::Token {
            row,
            half: Half::Private,
        };
        let first = table.insert(object(id, None)).unwrap();
        assert_eq!(
            table.insert(object(id, None)).unwrap(),
            first,
            "same object, same handle"
        );
        table.remove(id).unwrap();
        assert!(table.get(first).unwrap().is_none());
        let again = table.insert(object(id, None)).unwrap();
        assert_ne!(again, first, "a destroyed handle is never handed out again");
    }

    #[test]
    fn session_objects_die_with_their_session() {
        let table = HandleTable::default();
        let mine = table
            .insert(object(ObjectId::Session(1), Some(10)))
            .unwrap();
        let other = table
            .insert(object(ObjectId::Session(2), Some(11)))
            .unwrap();
        table.remove_session_objects(10).unwrap();
        assert!(table.get(mine).unwrap().is_none());
        assert!(table.get(other).unwrap().is_some());
    }
}
