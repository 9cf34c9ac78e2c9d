//! fork() from a busy program (PKCS#11 3.0 §5.1: a child must call `C_Initialize` itself).
//!
//! Only the thread that calls fork() lives on in the child, so any lock another thread held at
//! that moment stays held there forever, and any database connection or cache it was changing is
//! half-changed. sqlhsm therefore makes every fork happen *between* its calls: each `C_*` call
//! runs inside [`enter`], and the process's fork handlers (registered by `ffi::fork` with
//! `pthread_atfork`) run [`prepare`] before the fork — which stops new calls at the door and waits
//! for the running ones to finish — then [`parent`] or [`child`] after it. The child thus inherits
//! no held lock of sqlhsm's, and its own OpenSSL copy and SQLite library are idle.
//!
//! The door costs no lock and no system call: each thread marks itself busy in a slot of its own
//! (its own cache line), and only [`prepare`] reads the others'. A call still running after
//! [`QUIESCE_TIMEOUT`] (a stuck database, say) is not waited for: the fork goes ahead and the
//! child is told (see [`inherited_state_is_clean`]) so that it trusts nothing it inherited.
//!
//! [`generation`] changes in every child, so an instance created before the fork is recognised
//! as inherited without asking the kernel for the process id on every call.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a fork waits for the calls running in other threads.
pub const QUIESCE_TIMEOUT: Duration = Duration::from_secs(10);

/// Threads that can be inside sqlhsm at once with a door slot of their own; more share one
/// overflow slot (correct, only slower).
const SLOTS: usize = 512;

/// One thread's busy mark, alone on its cache line so that threads never contend for it.
#[repr(align(128))]
struct Slot {
    claimed: AtomicBool,
    /// Calls of the owning thread now running (more than one when a call re-enters).
    busy: AtomicU32,
}

#[allow(clippy::declare_interior_mutable_const)] // the array initialiser below, used once
const FREE_SLOT: Slot = Slot {
    claimed: AtomicBool::new(false),
    busy: AtomicU32::new(0),
};

static SLOT_TABLE: [Slot; SLOTS] = [FREE_SLOT; SLOTS];
/// Shared by the threads that found no free slot.
static OVERFLOW: Slot = FREE_SLOT;
static FORK_PENDING: AtomicBool = AtomicBool::new(false);
static GENERATION: AtomicU64 = AtomicU64::new(0);
/// Whether every other thread's call had finished when the last fork happened.
static QUIESCED: AtomicBool = AtomicBool::new(true);

/// This thread's claim on a slot, released when the thread ends.
struct Claim(Option<usize>);

impl Claim {
    fn take() -> Claim {
        let free = SLOT_TABLE.iter().position(|s| {
            s.claimed
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        });
        Claim(free)
    }

    fn slot(&self) -> &'static Slot {
        match self.0 {
            Some(i) => &SLOT_TABLE[i],
            None => &OVERFLOW,
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(i) = self.0 {
            SLOT_TABLE[i].busy.store(0, Ordering::Release);
            SLOT_TABLE[i].claimed.store(false, Ordering::Release);
        }
    }
}

thread_local! {
    static CLAIM: Claim = Claim::take();
    /// This thread's calls now running; a re-entered call does not wait at the door.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// A call in progress; leaving it (drop) lets a waiting fork go ahead.
pub struct Call {
    slot: Option<&'static Slot>,
}

impl Drop for Call {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
        if let Some(slot) = self.slot {
            // Saturating: in a child, `child()` has already zeroed the marks of threads that
            // exist only in the parent.
            let _ = slot
                .busy
                .fetch_update(Ordering::Release, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }
}

/// Marks this thread as inside sqlhsm until the returned value is dropped. Waits while a fork is
/// being prepared (never when this thread is already inside a call, which the fork waits for).
pub fn enter() -> Call {
    let nested = DEPTH.with(|d| {
        let depth = d.get();
        d.set(depth + 1);
        depth > 0
    });
    // During thread teardown the slot is gone; such a thread is in no call a fork waits for.
    let slot = CLAIM.try_with(Claim::slot).ok();
    let Some(slot) = slot else {
        return Call { slot: None };
    };
    mark_busy(slot, nested);
    Call { slot: Some(slot) }
}

/// Marks the thread busy, first waiting while a fork is being prepared (unless `nested`).
fn mark_busy(slot: &Slot, nested: bool) {
    loop {
        // SeqCst pairs this mark with `prepare`'s flag: either prepare sees the thread busy, or
        // the thread sees the fork pending.
        slot.busy.fetch_add(1, Ordering::SeqCst);
        if nested || !FORK_PENDING.load(Ordering::SeqCst) {
            return;
        }
        slot.busy.fetch_sub(1, Ordering::SeqCst);
        while FORK_PENDING.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

/// Runs `wait` outside the door, so that a fork need not wait for it: for a call that pauses a
/// long time (a PIN login waiting for other guesses to settle) while it holds no lock and no
/// connection. The call comes back in through the door afterwards.
pub fn outside<T>(wait: impl FnOnce() -> T) -> T {
    let outermost = DEPTH.with(Cell::get) == 1;
    let slot = CLAIM.try_with(Claim::slot).ok().filter(|_| outermost);
    let Some(slot) = slot else {
        return wait();
    };
    slot.busy.fetch_sub(1, Ordering::SeqCst);
    let result = wait();
    mark_busy(slot, false);
    result
}

/// Before fork(): stops new calls and waits (at most [`QUIESCE_TIMEOUT`]) until no other thread
/// is inside one.
pub fn prepare() {
    FORK_PENDING.store(true, Ordering::SeqCst);
    let own = CLAIM.try_with(Claim::slot).ok();
    let deadline = Instant::now() + QUIESCE_TIMEOUT;
    let mut quiet = true;
    for slot in SLOT_TABLE.iter().chain(std::iter::once(&OVERFLOW)) {
        if own.is_some_and(|own| std::ptr::eq(own, slot)) {
            continue;
        }
        while slot.busy.load(Ordering::SeqCst) != 0 {
            if Instant::now() >= deadline {
                quiet = false;
                break;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    QUIESCED.store(quiet, Ordering::SeqCst);
}

/// After fork(), in the parent: calls may go on.
pub fn parent() {
    FORK_PENDING.store(false, Ordering::SeqCst);
}

/// After fork(), in the child: a new generation, and the other threads' slots (their threads do
/// not exist here) are free again.
pub fn child() {
    GENERATION.fetch_add(1, Ordering::SeqCst);
    let own = CLAIM.try_with(Claim::slot).ok();
    for slot in SLOT_TABLE.iter().chain(std::iter::once(&OVERFLOW)) {
        if !own.is_some_and(|own| std::ptr::eq(own, slot)) {
            slot.busy.store(0, Ordering::SeqCst);
            slot.claimed.store(false, Ordering::SeqCst);
        }
    }
    FORK_PENDING.store(false, Ordering::SeqCst);
}

/// The process generation: 0 in a process that was not forked, one more in each child.
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// In a child: whether every call of the parent had finished when it forked, so that what the
/// child inherited (connections, caches) is at rest and may be closed safely.
pub fn inherited_state_is_clean() -> bool {
    QUIESCED.load(Ordering::Acquire)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    /// Slots and flags are process-wide; the tests below must not run at once.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn prepare_waits_for_running_calls_and_holds_new_ones() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let inside = Arc::new(AtomicBool::new(false));
        let release = Arc::new(AtomicBool::new(false));
        let worker = {
            let (inside, release) = (inside.clone(), release.clone());
            std::thread::spawn(move || {
                let _call = enter();
                inside.store(true, Ordering::SeqCst);
                while !release.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        };
        while !inside.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let preparing = std::thread::spawn(|| {
            let started = Instant::now();
            prepare();
            started.elapsed()
        });
        std::thread::sleep(Duration::from_millis(50));
        // A new call waits at the door while the fork is prepared.
        let entered = Arc::new(AtomicUsize::new(0));
        let newcomer = {
            let entered = entered.clone();
            std::thread::spawn(move || {
                let _call = enter();
                entered.fetch_add(1, Ordering::SeqCst);
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            entered.load(Ordering::SeqCst),
            0,
            "a call got past a pending fork"
        );
        release.store(true, Ordering::SeqCst);
        worker.join().ok();
        let waited = preparing.join().unwrap_or_default();
        assert!(
            waited >= Duration::from_millis(50),
            "prepare did not wait: {waited:?}"
        );
        assert!(inherited_state_is_clean());
        parent();
        newcomer.join().ok();
        assert_eq!(entered.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_pause_outside_the_door_does_not_hold_a_fork() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let paused = Arc::new(AtomicBool::new(false));
        let worker = {
            let paused = paused.clone();
            std::thread::spawn(move || {
                let _call = enter();
                outside(|| {
                    paused.store(true, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(300));
                });
            })
        };
        while !paused.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let started = Instant::now();
        prepare();
        let waited = started.elapsed();
        parent();
        worker.join().ok();
        assert!(
            waited < Duration::from_millis(200),
            "prepare waited {waited:?}"
        );
    }

    #[test]
    fn a_nested_call_and_the_forking_thread_itself_never_wait() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let _outer = enter();
        prepare(); // this thread is inside a call: prepare must not wait for itself
        let _inner = enter(); // nor may a re-entered call wait for the fork
        parent();
        assert!(inherited_state_is_clean());
    }
    // `child()` is exercised in real children by tests/fork.rs: here it would make every
    // other test of this process look like a forked child.
}
