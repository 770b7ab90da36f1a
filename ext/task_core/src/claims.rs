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

/// What claiming some tasks of one list at once came to (`Store::claim_many`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClaimBatch {
    /// One outcome per id asked for, in the order asked.
    pub outcomes: Vec<ClaimOutcome>,
    /// Conditions that failed: tasks another worker changed between this worker's read and
    /// its transaction (each counted once per transaction it made fail).
    pub collisions: u32,
    /// Transactions sent (a store that needs none counts one per call).
    pub transactions: u32,
    /// Transactions whose answer was lost (a timeout, contention), settled by a serial read.
    pub settled: u32,
}

/// The most tasks one `claim_many` takes.
pub const MAX_CLAIM_BATCH: usize = 500;
