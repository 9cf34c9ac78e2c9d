//! The module instance: one per process between `C_Initialize` and `C_Finalize` (PKCS#11 3.0
//! §5.4). It owns the storage handle, the slot map, each token's login state, the session table
//! and the object handle table.
//!
//! Lock order (outermost first): `slots` → `tokens` → `sessions` → one session's mutex →
//! `TokenState::login` → the handle table. No lock is held across database I/O or a PIN
//! derivation; the signing path takes only read locks plus its own session's mutex.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use arc_swap::ArcSwapOption;

use cryptoki_sys::*;
use uuid::Uuid;

use super::fork;
use super::handles::HandleTable;
use super::session::{LoginKind, Session};
use super::token::{TokenKey, TokenRecord};
use crate::config::Config;
use crate::error::{Error, Result, Rv};
use crate::storage::{Storage, TokenRow};

/// One token's state in this process.
pub struct TokenState {
    pub id: Uuid,
    pub slot: CK_SLOT_ID,
    pub login: RwLock<Login>,
}

/// The login state of the application on a token; the token key is present while logged in.
#[derive(Clone, Default)]
pub enum Login {
    #[default]
    Public,
    User(Arc<TokenKey>),
    So(Arc<TokenKey>),
}

impl Login {
    pub fn kind(&self) -> LoginKind {
        match self {
            Login::Public => LoginKind::Public,
            Login::User(_) => LoginKind::User,
            Login::So(_) => LoginKind::So,
        }
    }

    /// The token key if anyone is logged in.
    pub fn token_key(&self) -> Option<Arc<TokenKey>> {
        match self {
            Login::Public => None,
            Login::User(k) | Login::So(k) => Some(k.clone()),
        }
    }
}

/// The slots as last read from the database: token slots plus the one empty slot.
#[derive(Default)]
pub struct SlotMap {
    pub tokens: BTreeMap<CK_SLOT_ID, Uuid>,
    pub empty_slot: CK_SLOT_ID,
}

pub struct Module {
    pub config: Config,
    pub storage: Arc<dyn Storage>,
    pub slots: RwLock<SlotMap>,
    pub tokens: RwLock<HashMap<Uuid, Arc<TokenState>>>,
    pub sessions: RwLock<HashMap<CK_SESSION_HANDLE, Arc<Mutex<Session>>>>,
    pub objects: HandleTable,
    coherence: Coherence,
    /// Who the history names for this instance's changes; `None` means this process as a
    /// PKCS#11 client (`lifecycle::actor`). The admin command names its user instead.
    actor: RwLock<Option<String>>,
    /// Connections to the remote modules of `pkcs11`-provider tokens, made on first use.
    pub providers: crate::provider::Providers,
    /// What `C_WaitForSlotEvent` has reported: see `core::slot_events`.
    pub(super) slot_watch: Mutex<super::slot_events::SlotWatch>,
}

/// When cached token objects were last checked against the store's change marker.
struct Coherence {
    started: std::time::Instant,
    /// Milliseconds since `started` at which the next check is due.
    next_check_ms: AtomicU64,
    /// Checks happen twice per configured bound, so a change is noticed within it.
    interval_ms: u64,
    /// The store's change marker when last checked.
    marker: AtomicU64,
}

/// The module of this process, with the fork generation it was made in.
pub struct Installed {
    generation: u64,
    module: Module,
}

/// The installed module. Every call loads it; `C_Initialize` and `C_Finalize` replace it while
/// holding [`CHANGE`]. A load is lock-free and leaves shared cache lines unwritten, so threads
/// calling at once do not slow each other down here.
static CURRENT: ArcSwapOption<Installed> = ArcSwapOption::const_empty();
/// Serialises `C_Initialize` and `C_Finalize`.
static CHANGE: Mutex<()> = Mutex::new(());
/// The generation of the installed module, `u64::MAX` for none: lets every call tell, without a
/// lock, whether the library is initialized in this process (a child of a fork is not).
static INSTALLED_GENERATION: AtomicU64 = AtomicU64::new(u64::MAX);

/// Whether `C_Initialize` has run in this process (and not `C_Finalize` since). A forked child
/// sees its parent's instance as not initialized, as PKCS#11 requires.
pub fn is_initialized() -> bool {
    INSTALLED_GENERATION.load(Ordering::Acquire) == fork::generation()
}

/// The initialized module of this process, for the length of one call: holding it keeps the
/// module alive (a `C_Finalize` meanwhile drops it when the last holder is done).
pub struct ModuleRef(arc_swap::Guard<Option<Arc<Installed>>>);

impl std::ops::Deref for ModuleRef {
    type Target = Module;
    fn deref(&self) -> &Module {
        match self.0.as_deref() {
            Some(installed) => &installed.module,
            None => unreachable!("module() hands out installed modules only"),
        }
    }
}

/// The initialized module of this process.
pub fn module() -> Result<ModuleRef> {
    if !is_initialized() {
        Err(Rv::CRYPTOKI_NOT_INITIALIZED)?
    }
    let guard = CURRENT.load();
    match guard.as_deref() {
        Some(m) if m.generation == fork::generation() => Ok(ModuleRef(guard)),
        _ => Err(Rv::CRYPTOKI_NOT_INITIALIZED)?,
    }
}

/// [`module`] to keep beyond one call (a wait for a slot event), with an identity to compare.
pub fn module_kept() -> Result<Arc<Installed>> {
    let kept = module()?.0.clone().ok_or(Rv::CRYPTOKI_NOT_INITIALIZED)?;
    Ok(kept)
}

impl std::ops::Deref for Installed {
    type Target = Module;
    fn deref(&self) -> &Module {
        &self.module
    }
}

/// What the application allowed in its `C_Initialize` arguments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InitOptions {
    /// `CKF_LIBRARY_CANT_CREATE_OS_THREADS`: the module may not start threads (PKCS#11 3.0
    /// §5.4). Every store then works on the caller's threads (a PostgreSQL store opens its
    /// connections there and reads its change feed at the coherence checks), and remote modules
    /// are initialised with the same flag.
    pub no_os_threads: bool,
}

/// The module lock for `C_Initialize` / `C_Finalize`. In a child whose parent forked while
/// another thread was initializing or finalizing (and did not finish within the fork's wait),
/// the lock stays held by a thread that does not exist here: that child gets an error, never a
/// hang.
fn lock_for_change() -> Result<std::sync::MutexGuard<'static, ()>> {
    if fork::generation() == 0 || fork::inherited_state_is_clean() {
        return Ok(CHANGE.lock()?);
    }
    let deadline = std::time::Instant::now() + fork::QUIESCE_TIMEOUT;
    loop {
        match CHANGE.try_lock() {
            Ok(guard) => return Ok(guard),
            Err(std::sync::TryLockError::Poisoned(_)) => Err(Error::Poisoned)?,
            Err(std::sync::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(std::sync::TryLockError::WouldBlock) => {
                tracing::error!("forked while another thread was in C_Initialize or C_Finalize; this child cannot initialize sqlhsm (fork again, or exec)");
                Err(Rv::GENERAL_ERROR)?
            }
        }
    }
}

/// Makes `module` the process's module.
fn install(module: Module) {
    let generation = fork::generation();
    CURRENT.store(Some(Arc::new(Installed { generation, module })));
    INSTALLED_GENERATION.store(generation, Ordering::Release);
}

/// `C_Initialize`.
pub fn initialize(options: InitOptions) -> Result<()> {
    let _change = lock_for_change()?;
    if CURRENT
        .load()
        .as_ref()
        .is_some_and(|m| m.generation == fork::generation())
    {
        Err(Rv::CRYPTOKI_ALREADY_INITIALIZED)?
    }
    if let Some(inherited) = CURRENT.swap(None) {
        INSTALLED_GENERATION.store(u64::MAX, Ordering::Release);
        if let Err(e) = inherited.module.abandon_after_fork() {
            // Kept (never dropped), so that every later C_Initialize here refuses the same way.
            CURRENT.store(Some(inherited));
            return Err(e);
        }
        // Its connections and threads belong to the parent: their destructors would talk to
        // the parent's database sessions (a PostgreSQL connection's goodbye ends the parent's).
        std::mem::forget(inherited);
    }
    let config = Config::load().inspect_err(|e| _ = crate::logging::report_once(e))?;
    crate::logging::init(&config.log.level);
    let threads = if options.no_os_threads {
        crate::storage::Threads::Forbidden
    } else {
        crate::storage::Threads::Allowed
    };
    let storage = crate::storage::open_with(&config.database, threads).map_err(|e| {
        tracing::error!(error = %e, "cannot open the key store");
        Error::from(e)
    })?;
    tracing::info!(store = %storage.describe(), "sqlhsm initialized");
    let module = Module::new(config, storage)?;
    if options.no_os_threads {
        module.providers.forbid_os_threads();
    }
    install(module);
    Ok(())
}

/// For the crate's own tests of the C boundary: makes the process's module (on an in-memory
/// store) if there is none, so that exports get past the initialization check.
#[cfg(test)]
pub fn initialize_for_tests() -> Result<()> {
    let _change = lock_for_change()?;
    if !is_initialized() {
        let config = Config::default();
        let storage =
            crate::storage::open(&crate::config::DatabaseConfig::with_url("sqlite::memory:"))?;
        install(Module::new(config, storage)?);
    }
    Ok(())
}

/// `C_Finalize`.
pub fn finalize() -> Result<()> {
    if !is_initialized() {
        Err(Rv::CRYPTOKI_NOT_INITIALIZED)?
    }
    let _change = lock_for_change()?;
    if CURRENT
        .load()
        .as_ref()
        .is_none_or(|m| m.generation != fork::generation())
    {
        Err(Rv::CRYPTOKI_NOT_INITIALIZED)?
    }
    INSTALLED_GENERATION.store(u64::MAX, Ordering::Release);
    CURRENT.store(None);
    super::slot_events::wake_waiters();
    Ok(())
}

impl Module {
    /// A module over an opened store. `C_Initialize` makes the process-wide one; tests make
    /// their own, in-process.
    pub fn new(config: Config, storage: Arc<dyn Storage>) -> Result<Module> {
        let coherence = Coherence {
            started: std::time::Instant::now(),
            next_check_ms: AtomicU64::new(0),
            interval_ms: (config.cache.coherence_ms / 2).max(5),
            marker: AtomicU64::new(storage.change_marker().unwrap_or(0)),
        };
        let objects = HandleTable::new(config.cache.max_objects);
        let module = Module {
            config,
            storage,
            slots: RwLock::new(SlotMap::default()),
            tokens: RwLock::new(HashMap::new()),
            sessions: RwLock::new(HashMap::new()),
            objects,
            coherence,
            actor: RwLock::new(None),
            providers: crate::provider::Providers::default(),
            slot_watch: Mutex::default(),
        };
        module.refresh_slots()?;
        module.start_slot_watch()?;
        Ok(module)
    }

    /// Re-reads the tokens from the database (other processes may have created some) and
    /// rebuilds the slot map. Called by `C_GetSlotList` and when an unknown slot id arrives.
    pub fn refresh_slots(&self) -> Result<()> {
        let rows = self.storage.list_tokens()?;
        let mut map = SlotMap::default();
        let mut known = Vec::new();
        for row in &rows {
            match TokenRecord::from_json(&row.config) {
                Ok(record) => {
                    map.tokens.insert(record.slot, row.id);
                    known.push((row.id, record.slot));
                }
                Err(e) => {
                    tracing::warn!(token = %row.provider_name, error = %e, "skipping a provider_config row that is not a usable token")
                }
            }
        }
        map.empty_slot = map.tokens.keys().next_back().map_or(1, |last| last + 1);
        let mut tokens = self.tokens.write()?;
        for (id, slot) in known {
            tokens.entry(id).or_insert_with(|| {
                Arc::new(TokenState {
                    id,
                    slot,
                    login: RwLock::new(Login::Public),
                })
            });
        }
        drop(tokens);
        let mut slots = self.slots.write()?;
        // Keep an empty slot id this process already showed, so a C_InitToken on it still
        // lands there, unless a token took it meanwhile.
        if !map.tokens.contains_key(&slots.empty_slot) && slots.empty_slot > map.empty_slot {
            map.empty_slot = slots.empty_slot;
        }
        *slots = map;
        Ok(())
    }

    /// What a slot holds: `Some(token id)` or `None` for the empty slot.
    pub fn slot_token(&self, slot: CK_SLOT_ID) -> Result<Option<Uuid>> {
        {
            let slots = self.slots.read()?;
            if let Some(id) = slots.tokens.get(&slot) {
                return Ok(Some(*id));
            }
            if slots.empty_slot == slot {
                return Ok(None);
            }
        }
        self.refresh_slots()?;
        let slots = self.slots.read()?;
        match slots.tokens.get(&slot) {
            Some(id) => Ok(Some(*id)),
            None if slots.empty_slot == slot => Ok(None),
            None => Err(Rv::SLOT_ID_INVALID)?,
        }
    }

    pub fn token_state(&self, token: Uuid) -> Result<Arc<TokenState>> {
        self.tokens
            .read()?
            .get(&token)
            .cloned()
            .ok_or_else(|| Rv::TOKEN_NOT_PRESENT.into())
    }

    pub fn token_row(&self, token: Uuid) -> Result<(TokenRow, TokenRecord)> {
        let row = self
            .storage
            .get_token(token)?
            .ok_or(Rv::TOKEN_NOT_PRESENT)?;
        let record = TokenRecord::from_json(&row.config)?;
        Ok((row, record))
    }

    pub fn login_of(&self, token: Uuid) -> Result<Login> {
        Ok(self.token_state(token)?.login.read()?.clone())
    }

    pub fn session(&self, handle: CK_SESSION_HANDLE) -> Result<Arc<Mutex<Session>>> {
        self.sessions
            .read()?
            .get(&handle)
            .cloned()
            .ok_or_else(|| Rv::SESSION_HANDLE_INVALID.into())
    }

    /// (slot, token, read/write) of a session, without keeping its lock.
    pub fn session_basics(&self, handle: CK_SESSION_HANDLE) -> Result<(CK_SLOT_ID, Uuid, bool)> {
        let session = self.session(handle)?;
        let s = session.lock()?;
        Ok((s.slot, s.token, s.read_write))
    }

    pub fn sessions_of(&self, token: Uuid) -> Result<Vec<(CK_SESSION_HANDLE, bool)>> {
        let sessions: Vec<Arc<Mutex<Session>>> = self.sessions.read()?.values().cloned().collect();
        let mut out = Vec::new();
        for session in sessions {
            let s = session.lock()?;
            if s.token == token {
                out.push((s.handle, s.read_write));
            }
        }
        Ok(out)
    }

    pub fn logout_token(&self, token: Uuid) -> Result<()> {
        *self.token_state(token)?.login.write()? = Login::Public;
        self.objects.forget_material(token)
    }

    /// Milliseconds since this instance started, on the monotonic clock.
    pub fn clock_ms(&self) -> u64 {
        u64::try_from(self.coherence.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// At most once per coherence interval, asks the store whether anything changed since the
    /// last look; if so, every cached token object is revalidated on its next use. When the
    /// store cannot answer, cached objects stay in use (their keys keep working offline).
    /// Returns the time of the call on the module's monotonic clock, in milliseconds (the one
    /// clock reading of a call that needs one).
    pub fn check_coherence(&self) -> u64 {
        let c = &self.coherence;
        let now = self.clock_ms();
        let due = c.next_check_ms.load(Ordering::Acquire);
        if now < due {
            return now;
        }
        let next = now.saturating_add(c.interval_ms);
        if c.next_check_ms
            .compare_exchange(due, next, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return now; // another thread is checking
        }
        match self.storage.change_marker() {
            Ok(marker) if c.marker.swap(marker, Ordering::AcqRel) != marker => {
                if let Err(e) = self.objects.mark_token_objects_stale() {
                    tracing::error!(error = %e, "cannot mark cached objects stale");
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot check the store for changes; cached objects stay in use")
            }
        }
        now
    }

    /// In a forked child, before this instance inherited from the parent is forgotten: drops
    /// the secrets it holds (login token keys, cached key material) and lets the store release
    /// what it safely can. Only `try_` locks: a lock held at the fork is never released here.
    fn abandon_after_fork(&self) -> Result<()> {
        if let Ok(tokens) = self.tokens.try_read() {
            for state in tokens.values() {
                if let Ok(mut login) = state.login.try_write() {
                    *login = Login::Public;
                }
            }
        }
        self.objects.clear_after_fork();
        self.storage
            .release_after_fork(fork::inherited_state_is_clean())?;
        Ok(())
    }

    /// Names who acts through this instance in the key history from now on.
    pub fn set_actor(&self, actor: String) {
        if let Ok(mut current) = self.actor.write() {
            *current = Some(actor);
        }
    }

    /// Who acts through this instance, for the key history.
    pub fn actor(&self) -> String {
        match self.actor.read() {
            Ok(current) => current.clone().unwrap_or_else(super::lifecycle::actor),
            Err(_) => super::lifecycle::actor(),
        }
    }

    pub fn next_session_object_id(&self) -> u64 {
        super::handles::SESSION_OBJECT_IDS.next()
    }
}
