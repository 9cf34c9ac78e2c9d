//! The object handle table: handles are integers, never pointers, and never reused within a
//! process — not even across `C_Finalize` / `C_Initialize`, because the counters are the
//! process's, not the module instance's — so a stale handle can never name a different object
//! or session.
//!
//! Two parts, so that memory stays flat however many objects a process touches:
//! - a compact map between handles and token objects' ids (row and half, 17 bytes a handle,
//!   about 27 bytes a handle with its index at a million), kept while the object exists, because
//!   a PKCS#11 handle stays valid as long as its object does;
//! - a bounded cache of full objects (attributes, sealed and unsealed material), `[cache]
//!   max_objects` of them, evicting the least recently used. An evicted object is read again from
//!   the store by its id on its next use ([`HandleTable::token_id`]) and unsealed again when its
//!   material is needed. Recency is kept by the clock (second-chance) approximation of LRU: a hit
//!   sets a flag under the shared lock, so the signing path never takes the exclusive one.
//!
//! Session objects exist only here and cannot be read back: they are kept aside, never evicted,
//! and count against no budget.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use cryptoki_sys::{CK_OBJECT_HANDLE, CK_SESSION_HANDLE};
use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap};

use super::object::{Half, Object, ObjectId, ObjectRef};
use crate::error::{Result, Rv};

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

    /// The last number handed out (0 before the first).
    fn current(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Object handles, session handles and the numbers in session objects' `CKA_UNIQUE_ID`.
pub static OBJECT_HANDLES: Counter = Counter::new();
pub static SESSION_HANDLES: Counter = Counter::new();
pub static SESSION_OBJECT_IDS: Counter = Counter::new();

/// A token object's id in 17 bytes (byte alignment, so a slot is exactly that): its row and
/// which half of the row. `half == 0` marks a slot with no live object.
#[derive(Clone, Copy, PartialEq, Eq)]
struct RowRef {
    row: [u8; 16],
    half: u8,
}

impl RowRef {
    const VACANT: RowRef = RowRef {
        row: [0; 16],
        half: 0,
    };

    fn of(id: ObjectId) -> Option<RowRef> {
        let ObjectId::Token { row, half } = id else {
            return None;
        };
        let half = match half {
            Half::Public => 1,
            Half::Private => 2,
            Half::Secret => 3,
            Half::Standalone => 4,
        };
        Some(RowRef {
            row: row.into_bytes(),
            half,
        })
    }

    fn id(self) -> Option<ObjectId> {
        let half = match self.half {
            1 => Half::Public,
            2 => Half::Private,
            3 => Half::Secret,
            4 => Half::Standalone,
            _ => return None,
        };
        Some(ObjectId::Token {
            row: uuid::Uuid::from_bytes(self.row),
            half,
        })
    }

    fn hash(self) -> u64 {
        let mut hasher = FxBuildHasher.build_hasher();
        hasher.write(&self.row);
        hasher.write_u8(self.half);
        hasher.finish()
    }
}

/// Slots are allocated in chunks of this many, so the map never reallocates (and briefly holds
/// twice) a million slots, and the handles of other module instances in the same process (gaps
/// in this table's range) cost at most a chunk pointer each.
const CHUNK: usize = 4096;

/// Handle ↔ token object id, for every token object a handle was handed out for. A handle's
/// slot is `handle - base`; the index finds a slot by id.
struct IdMap {
    base: u64,
    chunks: Vec<Option<Box<[RowRef]>>>,
    index: HashTable<u32>,
}

impl IdMap {
    fn new(base: u64) -> IdMap {
        IdMap {
            base,
            chunks: Vec::new(),
            index: HashTable::new(),
        }
    }

    fn offset(&self, handle: CK_OBJECT_HANDLE) -> Option<usize> {
        usize::try_from(handle.checked_sub(self.base)?).ok()
    }

    fn slot(&self, offset: usize) -> RowRef {
        match self.chunks.get(offset / CHUNK) {
            Some(Some(chunk)) => chunk[offset % CHUNK],
            _ => RowRef::VACANT,
        }
    }

    fn id_of(&self, handle: CK_OBJECT_HANDLE) -> Option<ObjectId> {
        self.slot(self.offset(handle)?).id()
    }

    fn handle_of(&self, id: RowRef) -> Option<CK_OBJECT_HANDLE> {
        let chunks = &self.chunks;
        let slot = |offset: u32| match chunks.get(offset as usize / CHUNK) {
            Some(Some(chunk)) => chunk[offset as usize % CHUNK],
            _ => RowRef::VACANT,
        };
        let offset = *self.index.find(id.hash(), |&o| slot(o) == id)?;
        Some(self.base + u64::from(offset))
    }

    /// Records a new handle for `id` (not in the map).
    fn insert(&mut self, handle: CK_OBJECT_HANDLE, id: RowRef) -> Result<()> {
        // 2^32 handles in one module instance: more than any store holds objects.
        let offset = self
            .offset(handle)
            .and_then(|o| u32::try_from(o).ok())
            .ok_or(Rv::HOST_MEMORY)?;
        let (chunk, within) = (offset as usize / CHUNK, offset as usize % CHUNK);
        if self.chunks.len() <= chunk {
            self.chunks.resize_with(chunk + 1, || None);
        }
        let slots = self.chunks[chunk].get_or_insert_with(|| vec![RowRef::VACANT; CHUNK].into());
        slots[within] = id;
        let chunks = &self.chunks;
        self.index.insert_unique(id.hash(), offset, |&o| {
            match chunks.get(o as usize / CHUNK) {
                Some(Some(chunk)) => chunk[o as usize % CHUNK].hash(),
                _ => 0,
            }
        });
        Ok(())
    }

    /// Forgets `id`; its handle is never handed out again (the counter only grows).
    fn remove(&mut self, id: RowRef) -> Option<CK_OBJECT_HANDLE> {
        let chunks = &self.chunks;
        let slot = |offset: u32| match chunks.get(offset as usize / CHUNK) {
            Some(Some(chunk)) => chunk[offset as usize % CHUNK],
            _ => RowRef::VACANT,
        };
        let entry = self.index.find_entry(id.hash(), |&o| slot(o) == id).ok()?;
        let (offset, _) = entry.remove();
        let (chunk, within) = (offset as usize / CHUNK, offset as usize % CHUNK);
        if let Some(Some(slots)) = self.chunks.get_mut(chunk) {
            slots[within] = RowRef::VACANT;
        }
        Some(self.base + u64::from(offset))
    }

    fn clear(&mut self) {
        self.chunks = Vec::new();
        self.index = HashTable::new();
    }
}

/// A cached token object; `stale` once another process may have changed or destroyed it,
/// `used` since the clock hand last passed it.
struct Cached {
    object: ObjectRef,
    stale: bool,
    used: AtomicBool,
}

impl Cached {
    fn new(object: Object) -> Cached {
        Cached {
            object: Arc::new(object),
            stale: false,
            used: AtomicBool::new(false),
        }
    }

    fn touch(&self) {
        // Load first: a flag already set is not written again, so threads signing with the same
        // key do not contend for its cache line.
        if !self.used.load(Ordering::Relaxed) {
            self.used.store(true, Ordering::Relaxed);
        }
    }
}

/// The bounded cache of full token objects, by handle.
struct Lru {
    capacity: usize,
    entries: FxHashMap<CK_OBJECT_HANDLE, Cached>,
    /// The clock: handles in the order they entered, each given a second chance when used.
    /// May hold handles no longer cached (removed objects); they are skipped.
    ring: VecDeque<CK_OBJECT_HANDLE>,
}

impl Lru {
    fn new(capacity: usize) -> Lru {
        Lru {
            capacity: capacity.max(1),
            entries: FxHashMap::default(),
            ring: VecDeque::new(),
        }
    }

    fn get(&self, handle: CK_OBJECT_HANDLE) -> Option<&Cached> {
        let cached = self.entries.get(&handle)?;
        cached.touch();
        Some(cached)
    }

    /// Caches `object` under `handle` (replacing a previous copy), evicting as needed.
    fn put(&mut self, handle: CK_OBJECT_HANDLE, object: Object) -> ObjectRef {
        let cached = Cached::new(object);
        let object = cached.object.clone();
        if let Some(previous) = self.entries.get_mut(&handle) {
            *previous = cached;
            previous.touch();
            return object;
        }
        while self.entries.len() >= self.capacity {
            self.evict_one();
        }
        self.entries.insert(handle, cached);
        self.ring.push_back(handle);
        if self.ring.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.ring.retain(|h| entries.contains_key(h));
        }
        object
    }

    fn evict_one(&mut self) {
        while let Some(handle) = self.ring.pop_front() {
            let Some(cached) = self.entries.get(&handle) else {
                continue;
            };
            if cached.used.swap(false, Ordering::Relaxed) {
                self.ring.push_back(handle);
                continue;
            }
            self.entries.remove(&handle);
            return;
        }
    }

    fn remove(&mut self, handle: CK_OBJECT_HANDLE) {
        self.entries.remove(&handle);
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.ring.clear();
    }
}

struct Inner {
    ids: IdMap,
    cache: Lru,
    /// Session objects: never evicted (nothing to reload them from).
    session: FxHashMap<CK_OBJECT_HANDLE, ObjectRef>,
    session_by_id: FxHashMap<u64, CK_OBJECT_HANDLE>,
}

pub struct HandleTable {
    inner: RwLock<Inner>,
    /// Counts the table's changes (every write, whatever it changed): an operation whose key
    /// passed its checks when the count was `n` may skip checking it again while the count is
    /// still `n` (see [`Self::changes`]).
    changes: AtomicU64,
}

impl Default for HandleTable {
    fn default() -> Self {
        HandleTable::new(crate::config::CacheConfig::default().max_objects)
    }
}

impl HandleTable {
    /// A table caching at most `max_objects` token objects in full.
    pub fn new(max_objects: usize) -> HandleTable {
        HandleTable {
            inner: RwLock::new(Inner {
                ids: IdMap::new(OBJECT_HANDLES.current() + 1),
                cache: Lru::new(max_objects),
                session: FxHashMap::default(),
                session_by_id: FxHashMap::default(),
            }),
            changes: AtomicU64::new(0),
        }
    }

    /// How many times the table has changed. Read before checking a key: while it is the same,
    /// no cached object was replaced, marked stale or removed, so the verdict still holds. A read
    /// of it writes nothing, so threads checking at once never contend for its cache line.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// The table for a change, counted in [`Self::changes`] before anything is changed.
    fn write(&self) -> Result<std::sync::RwLockWriteGuard<'_, Inner>> {
        let inner = self.inner.write()?;
        self.changes.fetch_add(1, Ordering::AcqRel);
        Ok(inner)
    }

    /// Registers `object` (or refreshes the cached copy of an object already known) and returns
    /// its handle. Unwrapped material carries over when the sealed bytes did not change.
    pub fn insert(&self, object: Object) -> Result<CK_OBJECT_HANDLE> {
        Ok(self.cache(object)?.0)
    }

    /// [`Self::insert`], also returning the cached copy (which a small cache may evict before
    /// a following [`Self::get`]).
    pub fn cache(&self, object: Object) -> Result<(CK_OBJECT_HANDLE, ObjectRef)> {
        let mut inner = self.write()?;
        let key = match object.id {
            ObjectId::Token { .. } => RowRef::of(object.id).ok_or(Rv::GENERAL_ERROR)?,
            ObjectId::Session(number) => {
                let handle = match inner.session_by_id.get(&number) {
                    Some(&handle) => handle,
                    None => OBJECT_HANDLES.next(),
                };
                let object = Arc::new(object);
                inner.session_by_id.insert(number, handle);
                inner.session.insert(handle, object.clone());
                return Ok((handle, object));
            }
        };
        let handle = match inner.ids.handle_of(key) {
            Some(handle) => {
                if let Some(previous) = inner.cache.entries.get(&handle) {
                    let previous = &previous.object;
                    if previous.sealed == object.sealed && object.material.read()?.is_none() {
                        *object.material.write()? = previous.material.read()?.clone();
                    }
                }
                handle
            }
            None => {
                let handle = OBJECT_HANDLES.next();
                inner.ids.insert(handle, key)?;
                handle
            }
        };
        Ok((handle, inner.cache.put(handle, object)))
    }

    /// The handle of a token object, registered without caching the object itself: for
    /// searches that return more objects than the cache holds. A cached copy is kept.
    pub fn register(&self, id: ObjectId) -> Result<CK_OBJECT_HANDLE> {
        let key = RowRef::of(id).ok_or(Rv::GENERAL_ERROR)?;
        if let Some(handle) = self.inner.read()?.ids.handle_of(key) {
            return Ok(handle);
        }
        let mut inner = self.write()?;
        if let Some(handle) = inner.ids.handle_of(key) {
            return Ok(handle);
        }
        let handle = OBJECT_HANDLES.next();
        inner.ids.insert(handle, key)?;
        Ok(handle)
    }

    /// Whether a token object's full copy is in the cache.
    pub fn is_cached(&self, id: ObjectId) -> Result<bool> {
        let inner = self.inner.read()?;
        Ok(RowRef::of(id)
            .and_then(|key| inner.ids.handle_of(key))
            .is_some_and(|handle| inner.cache.entries.contains_key(&handle)))
    }

    pub fn get(&self, handle: CK_OBJECT_HANDLE) -> Result<Option<ObjectRef>> {
        Ok(self.lookup(handle)?.map(|(object, _)| object))
    }

    /// The cached object and whether it must be revalidated against the store first. `None`
    /// for an unknown handle and for a token object not in the cache ([`Self::token_id`] tells
    /// which).
    pub fn lookup(&self, handle: CK_OBJECT_HANDLE) -> Result<Option<(ObjectRef, bool)>> {
        let inner = self.inner.read()?;
        if let Some(cached) = inner.cache.get(handle) {
            return Ok(Some((cached.object.clone(), cached.stale)));
        }
        Ok(inner.session.get(&handle).map(|o| (o.clone(), false)))
    }

    /// The id of the token object a handle names, cached or not (`None`: no such handle, or a
    /// session object's).
    pub fn token_id(&self, handle: CK_OBJECT_HANDLE) -> Result<Option<ObjectId>> {
        Ok(self.inner.read()?.ids.id_of(handle))
    }

    /// Keeps a cached object as it is until the next change (its revalidation could not reach
    /// the store; trying again on every use would make each call wait for the store).
    pub fn mark_fresh(&self, id: ObjectId) -> Result<()> {
        let mut inner = self.write()?;
        let Some(handle) = RowRef::of(id).and_then(|key| inner.ids.handle_of(key)) else {
            return Ok(());
        };
        if let Some(cached) = inner.cache.entries.get_mut(&handle) {
            cached.stale = false;
        }
        Ok(())
    }

    /// Another process changed the store: every cached token object is revalidated on its
    /// next use (session objects live only here and cannot be stale; evicted objects are read
    /// afresh anyway).
    pub fn mark_token_objects_stale(&self) -> Result<()> {
        let mut inner = self.write()?;
        for cached in inner.cache.entries.values_mut() {
            cached.stale = true;
        }
        Ok(())
    }

    /// Forgets an object (destroyed, or found gone from the database).
    pub fn remove(&self, id: ObjectId) -> Result<()> {
        let mut inner = self.write()?;
        match (RowRef::of(id), id) {
            (Some(key), _) => {
                if let Some(handle) = inner.ids.remove(key) {
                    inner.cache.remove(handle);
                }
            }
            (None, ObjectId::Session(number)) => {
                if let Some(handle) = inner.session_by_id.remove(&number) {
                    inner.session.remove(&handle);
                }
            }
            (None, ObjectId::Token { .. }) => {}
        }
        Ok(())
    }

    /// Destroys the session objects a session created (when it closes).
    pub fn remove_session_objects(&self, session: CK_SESSION_HANDLE) -> Result<()> {
        let mut inner = self.write()?;
        let doomed: Vec<(CK_OBJECT_HANDLE, ObjectId)> = inner
            .session
            .iter()
            .filter(|(_, o)| o.owner_session == Some(session))
            .map(|(h, o)| (*h, o.id))
            .collect();
        for (handle, id) in doomed {
            inner.session.remove(&handle);
            if let ObjectId::Session(number) = id {
                inner.session_by_id.remove(&number);
            }
        }
        Ok(())
    }

    /// All session objects (for `C_FindObjects`; there are few, they live in memory).
    pub fn session_objects(&self) -> Result<Vec<(CK_OBJECT_HANDLE, ObjectRef)>> {
        Ok(self
            .inner
            .read()?
            .session
            .iter()
            .map(|(h, o)| (*h, o.clone()))
            .collect())
    }

    /// In a forked child: drops every cached object (and with it the key material) of a table
    /// inherited from the parent, unless a lock held at the fork is in the way.
    pub fn clear_after_fork(&self) {
        if let Ok(mut inner) = self.inner.try_write() {
            inner.ids.clear();
            inner.cache.clear();
            inner.session.clear();
            inner.session_by_id.clear();
        }
    }

    /// Drops the unwrapped material of a token's objects (on logout), zeroizing secrets.
    pub fn forget_material(&self, token: uuid::Uuid) -> Result<()> {
        let inner = self.inner.read()?;
        let objects = inner.cache.entries.values().map(|c| &c.object);
        for object in objects.filter(|o| o.token == token) {
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

    fn token_id() -> ObjectId {
        ObjectId::Token {
            row: uuid::Uuid::new_v4(),
            half: Half::Secret,
        }
    }

    #[test]
    fn handles_are_stable_and_never_reused() {
        let table = HandleTable::default();
        let id = ObjectId::Token {
            row: uuid::Uuid::new_v4(),
            half: Half::Private,
        };
        let first = table.insert(object(id, None)).unwrap();
        assert_eq!(
            table.insert(object(id, None)).unwrap(),
            first,
            "same object, same handle"
        );
        assert_eq!(table.token_id(first).unwrap(), Some(id));
        table.remove(id).unwrap();
        assert!(table.get(first).unwrap().is_none());
        assert_eq!(table.token_id(first).unwrap(), None);
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

    #[test]
    fn the_least_recently_used_object_is_evicted_and_its_handle_stays() {
        let table = HandleTable::new(3);
        let ids: Vec<ObjectId> = (0..4).map(|_| token_id()).collect();
        let handles: Vec<_> = ids[..3]
            .iter()
            .map(|id| table.insert(object(*id, None)).unwrap())
            .collect();
        // Use the first and the third: the second is now the least recently used.
        assert!(table.get(handles[0]).unwrap().is_some());
        assert!(table.get(handles[2]).unwrap().is_some());
        let fourth = table.insert(object(ids[3], None)).unwrap();
        assert!(table.get(handles[1]).unwrap().is_none(), "the LRU one goes");
        for kept in [handles[0], handles[2], fourth] {
            assert!(table.get(kept).unwrap().is_some());
        }
        // Evicted is not forgotten: same handle, same id, and caching it again keeps the handle.
        assert_eq!(table.token_id(handles[1]).unwrap(), Some(ids[1]));
        assert_eq!(table.register(ids[1]).unwrap(), handles[1]);
        assert_eq!(table.insert(object(ids[1], None)).unwrap(), handles[1]);
        assert!(table.get(handles[1]).unwrap().is_some());
        // All three were used since the hand last passed: it goes round once, clearing their
        // flags, and takes the oldest.
        assert!(!table.is_cached(ids[2]).unwrap());
        assert!(table.is_cached(ids[0]).unwrap() && table.is_cached(ids[3]).unwrap());
        assert_eq!(table.inner.read().unwrap().cache.entries.len(), 3);
    }

    #[test]
    fn session_objects_are_never_evicted() {
        let table = HandleTable::new(1);
        let session = table.insert(object(ObjectId::Session(7), Some(1))).unwrap();
        for _ in 0..10 {
            table.insert(object(token_id(), None)).unwrap();
        }
        assert!(table.get(session).unwrap().is_some());
    }

    #[test]
    fn many_handles_map_both_ways() {
        let table = HandleTable::new(8);
        let ids: Vec<ObjectId> = (0..3 * CHUNK + 5).map(|_| token_id()).collect();
        let handles: Vec<_> = ids.iter().map(|id| table.register(*id).unwrap()).collect();
        for (id, handle) in ids.iter().zip(&handles) {
            assert_eq!(table.token_id(*handle).unwrap(), Some(*id));
            assert_eq!(table.register(*id).unwrap(), *handle);
        }
        for id in ids.iter().step_by(2) {
            table.remove(*id).unwrap();
        }
        for (i, (id, handle)) in ids.iter().zip(&handles).enumerate() {
            let expected = (i % 2 == 1).then_some(*id);
            assert_eq!(table.token_id(*handle).unwrap(), expected);
        }
    }
}
