//! Claims on tasks (leases that lapse by themselves), attempts and failures: the types every
//! store shares. A claim is held by an owner for a time; each claim won counts an attempt; a
//! task with `max_attempts` attempts is dead until retried.

use std::time::Duration;

/// What a claim attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// This owner now holds the task; `attempts` counts this claim.
    Won { attempts: u32 },
    /// Another owner holds a live claim.
    Held,
    /// The task used up its attempts: it waits for a retry.
    Dead { attempts: u32 },
    /// The task is not stored (any more).
    Gone,
}

/// The claim state of one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimInfo {
    pub id: String,
    /// The holder of a live claim, if any.
    pub owner: Option<String>,
    pub attempts: u32,
    /// "Class: message" of the last failure recorded.
    pub last_error: Option<String>,
    /// Seconds until a live claim lapses (by the store's clock); `None` when none is held.
    pub expires_in: Option<u32>,
}

/// A claim request: who, and for how long.
#[derive(Debug, Clone)]
pub struct ClaimTerms {
    pub owner: String,
    pub lease: Duration,
}

/// Attempts after which a task is dead, unless the store is told otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 25;
