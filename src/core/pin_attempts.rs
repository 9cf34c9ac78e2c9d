//! Exact PIN lockout, whatever the number of processes, threads and hosts (PKCS#11 3.0 §5.6:
//! `CKR_PIN_LOCKED`).
//!
//! A guess is *reserved* in the token record, in one write transaction, before the slow PIN
//! derivation runs, and *settled* in a second one after it. The reservation counts as a wrong
//! guess from the moment it is written, so:
//! - at most `max_pin_failures` guesses are ever evaluated between two successful logins: a
//!   reservation is granted only while the counter is below the limit, and each one raises it;
//! - a guess whose process dies (or whose settlement cannot be written) stays counted as wrong:
//!   killing the process after learning the answer does not hide a failure;
//! - a correct guess resets the counter to the number of guesses still being evaluated (each of
//!   them still counts until it settles), so a success never erases a concurrent failure.
//!
//! When the counter is at the limit only because guesses are still in flight, the outcome is not
//! known yet: a new attempt waits for them (at most [`ATTEMPT_TTL_MS`], after which an unsettled
//! guess is treated as wrong and stops blocking) rather than answering `CKR_PIN_LOCKED` for a
//! lock that may never happen.
//!
//! Expiry compares the reserving host's clock with the pruning host's: hosts sharing a store must
//! agree on the time to well within [`ATTEMPT_TTL_MS`] (NTP does).

use uuid::Uuid;

pub use super::token::PinAttempt;
use super::token::{PinOwner, TokenRecord};

/// How long a reserved guess may stay unsettled before it is treated as a wrong guess that
/// finished (its process died). Far above the slowest PIN derivation (`pin_kdf_log_n = 20`
/// takes a few seconds) plus a remote root-secret request.
pub const ATTEMPT_TTL_MS: i64 = 60_000;

/// What a reservation request found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// The guess may be evaluated; settle it with this id.
    Granted(String),
    /// The counter is at the limit because of guesses still in flight: try again shortly.
    Wait,
    /// The PIN is locked: only the SO (user PIN) or re-initialisation (SO PIN) unlocks it.
    Locked,
}

/// How a reserved guess ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Correct,
    Wrong,
    /// The derivation failed before an answer (a device or crypto error): nothing was learnt
    /// about the PIN, so the reservation is withdrawn.
    NotEvaluated,
}

/// What settling found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// A correct guess logs in.
    LoggedIn,
    /// The guess is recorded (wrong, or withdrawn).
    Recorded,
    /// The guess was correct, but it outlived its reservation and the lock was written
    /// meanwhile: it must not log in.
    Locked,
}

impl TokenRecord {
    /// Guesses of `owner`'s PIN being evaluated now.
    pub fn attempts(&self, owner: PinOwner) -> &[PinAttempt] {
        match owner {
            PinOwner::So => &self.so_attempts,
            PinOwner::User => &self.user_attempts,
        }
    }

    fn attempts_mut(&mut self, owner: PinOwner) -> &mut Vec<PinAttempt> {
        match owner {
            PinOwner::So => &mut self.so_attempts,
            PinOwner::User => &mut self.user_attempts,
        }
    }

    /// Drops reservations past their expiry; they stay counted as wrong guesses.
    fn prune_attempts(&mut self, owner: PinOwner, now_ms: i64) {
        self.attempts_mut(owner).retain(|a| a.expires_ms > now_ms);
    }

    /// Run inside the write transaction that reads and stores the record.
    pub fn reserve_attempt(&mut self, owner: PinOwner, max: u32, now_ms: i64) -> Reservation {
        self.prune_attempts(owner, now_ms);
        if self.failures(owner) >= max {
            return match self.attempts(owner).is_empty() {
                true => Reservation::Locked,
                false => Reservation::Wait,
            };
        }
        let id = Uuid::new_v4().to_string();
        *self.failures_mut(owner) += 1;
        self.attempts_mut(owner).push(PinAttempt {
            id: id.clone(),
            expires_ms: now_ms.saturating_add(ATTEMPT_TTL_MS),
        });
        Reservation::Granted(id)
    }

    /// Run inside the write transaction that reads and stores the record.
    pub fn settle_attempt(
        &mut self,
        owner: PinOwner,
        id: &str,
        verdict: Verdict,
        max: u32,
        now_ms: i64,
    ) -> Settlement {
        let attempts = self.attempts_mut(owner);
        let before = attempts.len();
        attempts.retain(|a| a.id != id);
        let still_reserved = attempts.len() < before;
        self.prune_attempts(owner, now_ms);
        match verdict {
            Verdict::Wrong => Settlement::Recorded,
            Verdict::NotEvaluated => {
                if still_reserved {
                    let failures = self.failures_mut(owner);
                    *failures = failures.saturating_sub(1);
                }
                Settlement::Recorded
            }
            Verdict::Correct => {
                // A live reservation was granted below the limit, so the others cannot have
                // reached it without this one; an expired one was counted as wrong, and if that
                // completed the lock, the lock stands.
                if !still_reserved && self.failures(owner) >= max {
                    return Settlement::Locked;
                }
                let in_flight = u32::try_from(self.attempts(owner).len()).unwrap_or(u32::MAX);
                *self.failures_mut(owner) = in_flight;
                Settlement::LoggedIn
            }
        }
    }

    /// The SO unlocks `owner`'s PIN without changing it: past failures are forgiven, but each
    /// guess still in flight keeps counting until it settles (as after a correct guess).
    pub fn forgive_failures(&mut self, owner: PinOwner, now_ms: i64) {
        self.prune_attempts(owner, now_ms);
        let in_flight = u32::try_from(self.attempts(owner).len()).unwrap_or(u32::MAX);
        *self.failures_mut(owner) = in_flight;
    }

    /// A PIN set or reset by the SO, or a re-initialised token: no failure and nothing in flight.
    pub fn clear_attempts(&mut self, owner: PinOwner) {
        *self.failures_mut(owner) = 0;
        self.attempts_mut(owner).clear();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::crypto::kdf::ScryptParams;

    const MAX: u32 = 3;

    fn record() -> TokenRecord {
        let params = ScryptParams {
            log_n: 10,
            r: 8,
            p: 1,
        };
        TokenRecord::create(Uuid::new_v4(), 1, b"so-pin", params)
            .unwrap()
            .0
    }

    fn granted(r: Reservation) -> String {
        match r {
            Reservation::Granted(id) => id,
            other => panic!("expected a grant, got {other:?}"),
        }
    }

    #[test]
    fn concurrent_guesses_never_exceed_the_limit() {
        let mut r = record();
        let ids: Vec<String> = (0..MAX)
            .map(|_| granted(r.reserve_attempt(PinOwner::User, MAX, 0)))
            .collect();
        // The fourth concurrent guess is not evaluated while three are in flight.
        assert_eq!(r.reserve_attempt(PinOwner::User, MAX, 0), Reservation::Wait);
        for id in &ids {
            let s = r.settle_attempt(PinOwner::User, id, Verdict::Wrong, MAX, 1);
            assert_eq!(s, Settlement::Recorded);
        }
        assert_eq!(
            r.reserve_attempt(PinOwner::User, MAX, 2),
            Reservation::Locked
        );
        assert_eq!(r.user_failures, MAX);
        // The SO PIN is counted apart.
        granted(r.reserve_attempt(PinOwner::So, MAX, 2));
    }

    #[test]
    fn a_success_keeps_the_guesses_still_in_flight() {
        let mut r = record();
        let right = granted(r.reserve_attempt(PinOwner::User, MAX, 0));
        let wrong = granted(r.reserve_attempt(PinOwner::User, MAX, 0));
        assert_eq!(
            r.settle_attempt(PinOwner::User, &right, Verdict::Correct, MAX, 1),
            Settlement::LoggedIn
        );
        assert_eq!(r.user_failures, 1, "the guess in flight still counts");
        r.settle_attempt(PinOwner::User, &wrong, Verdict::Wrong, MAX, 2);
        assert_eq!(r.user_failures, 1);
        assert!(r.user_attempts.is_empty());
    }

    #[test]
    fn an_unsettled_guess_counts_as_wrong_and_stops_blocking_after_its_ttl() {
        let mut r = record();
        r.user_failures = MAX - 1;
        let _dead = granted(r.reserve_attempt(PinOwner::User, MAX, 0));
        assert_eq!(
            r.reserve_attempt(PinOwner::User, MAX, 10),
            Reservation::Wait
        );
        assert_eq!(
            r.reserve_attempt(PinOwner::User, MAX, ATTEMPT_TTL_MS + 1),
            Reservation::Locked
        );
    }

    #[test]
    fn a_correct_guess_that_outlived_its_reservation_does_not_beat_the_lock() {
        let mut r = record();
        r.user_failures = MAX - 1;
        let slow = granted(r.reserve_attempt(PinOwner::User, MAX, 0));
        // Its reservation expired and completed the lock.
        r.prune_attempts(PinOwner::User, ATTEMPT_TTL_MS + 1);
        assert_eq!(
            r.settle_attempt(
                PinOwner::User,
                &slow,
                Verdict::Correct,
                MAX,
                ATTEMPT_TTL_MS + 2
            ),
            Settlement::Locked
        );
        // Below the lock, a slow correct guess still logs in.
        let mut r = record();
        let slow = granted(r.reserve_attempt(PinOwner::User, MAX, 0));
        assert_eq!(
            r.settle_attempt(
                PinOwner::User,
                &slow,
                Verdict::Correct,
                MAX,
                ATTEMPT_TTL_MS + 2
            ),
            Settlement::LoggedIn
        );
        assert_eq!(r.user_failures, 0);
    }

    #[test]
    fn forgiving_unlocks_but_keeps_the_guesses_in_flight() {
        let mut r = record();
        for _ in 0..MAX {
            let id = granted(r.reserve_attempt(PinOwner::User, MAX, 0));
            r.settle_attempt(PinOwner::User, &id, Verdict::Wrong, MAX, 1);
        }
        assert_eq!(
            r.reserve_attempt(PinOwner::User, MAX, 2),
            Reservation::Locked
        );
        r.forgive_failures(PinOwner::User, 3);
        assert_eq!(r.user_failures, 0);
        let in_flight = granted(r.reserve_attempt(PinOwner::User, MAX, 4));
        r.forgive_failures(PinOwner::User, 5);
        assert_eq!(r.user_failures, 1, "the guess being evaluated still counts");
        r.settle_attempt(PinOwner::User, &in_flight, Verdict::Wrong, MAX, 6);
        assert_eq!(r.user_failures, 1);
        // An expired reservation is a finished wrong guess: forgiven too.
        granted(r.reserve_attempt(PinOwner::User, MAX, 7));
        r.forgive_failures(PinOwner::User, 8 + ATTEMPT_TTL_MS);
        assert_eq!(r.user_failures, 0);
    }

    #[test]
    fn a_guess_that_was_not_evaluated_is_withdrawn() {
        let mut r = record();
        let id = granted(r.reserve_attempt(PinOwner::So, MAX, 0));
        assert_eq!(r.so_failures, 1);
        r.settle_attempt(PinOwner::So, &id, Verdict::NotEvaluated, MAX, 1);
        assert_eq!(r.so_failures, 0);
        assert!(r.so_attempts.is_empty());
    }

    #[test]
    fn attempts_round_trip_and_old_records_read() {
        let mut r = record();
        granted(r.reserve_attempt(PinOwner::User, MAX, 5));
        let json = r.to_json().unwrap();
        assert_eq!(TokenRecord::from_json(&json).unwrap(), r);
        // A record written before attempts existed has none.
        let mut old = record().to_json().unwrap();
        old.as_object_mut().unwrap().remove("user_attempts");
        assert!(TokenRecord::from_json(&old)
            .unwrap()
            .user_attempts
            .is_empty());
    }
}
