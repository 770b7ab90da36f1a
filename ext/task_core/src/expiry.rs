//! When stored things lapse, by one rule on every store: the longest time to live a store is
//! given (Cassandra's limits, checked before anything is sent), and how a claim's lease becomes
//! a time to live that keeps others out for at least the lease.
//!
//! Leases. Cassandra counts a TTL in whole seconds from the current second of the node's
//! clock: a cell written at 12.9 s with TTL 1 lapses at 13.0 s. A claim's TTL is therefore
//! the lease rounded up plus two seconds (`lease_ttl_secs`): one for the second already under
//! way when the node took the request, one for the time the answer takes to come back (the
//! node stamps the TTL when the request reaches it, before the transaction's rounds). A call
//! that took longer than that second (`lease_covers` says) renews the claim at once. Every
//! store keeps the same rule (`lease_end`), so a claim keeps others out for at least the lease
//! after the call returns, and lapses at most `⌈lease⌉ + 2` seconds after it was made.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// The longest time to live Cassandra accepts: 20 years, in seconds.
pub const MAX_TTL_SECS: u64 = 630_720_000;

/// The last second (since the Unix epoch) an expiration may fall on: Cassandra (in its storage
/// format up to 4.x, which 5.0 keeps by default) refuses a TTL that ends later.
pub const LAST_EXPIRY_SECS: u64 = 2_147_483_646;

/// `LAST_EXPIRY_SECS` as messages show it.
pub const LAST_EXPIRY: &str = "2038-01-19T03:14:06Z";

/// Whole seconds the lease's time to live carries beyond the lease rounded up (see the module's
/// notes).
pub const LEASE_EXTRA_SECS: u64 = 2;

/// Seconds since the Unix epoch by this machine's clock.
fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

/// A time to live in whole seconds, as Cassandra takes it: rounded up, at least one.
pub fn ttl_secs(ttl: Duration) -> u64 {
    let whole = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    whole.max(1)
}

/// Checks a time to live (`name`: the option it came from, e.g. `ttl`) against what every
/// store holds: at most `MAX_TTL_SECS`, ending no later than `LAST_EXPIRY`.
pub fn check_ttl(name: &str, ttl: Duration) -> Result<()> {
    check_secs(name, ttl, ttl_secs(ttl), "")
}

/// Checks a claim's lease (`for:`) by the time to live it is written with.
pub fn check_lease(lease: Duration) -> Result<()> {
    check_secs(
        "for",
        lease,
        lease_ttl_secs(lease),
        " (a claim is kept 2 seconds beyond for:, rounded up)",
    )
}

fn check_secs(name: &str, given: Duration, secs: u64, note: &str) -> Result<()> {
    let given = given.as_secs_f64();
    if secs > MAX_TTL_SECS {
        return Err(Error::InvalidArgument(format!(
            "{name} of {given} seconds is too long{note}: a store keeps a time to live of at most \
             {MAX_TTL_SECS} seconds (20 years, Cassandra's limit)"
        )));
    }
    let now = unix_now().as_secs();
    if now.saturating_add(secs) > LAST_EXPIRY_SECS {
        return Err(Error::InvalidArgument(format!(
            "{name} of {given} seconds would end after {LAST_EXPIRY}{note}, the last expiration \
             Cassandra can keep (at most {} seconds from now)",
            LAST_EXPIRY_SECS.saturating_sub(now)
        )));
    }
    Ok(())
}

/// The whole-second time to live a claim of `lease` is written with.
pub fn lease_ttl_secs(lease: Duration) -> u64 {
    ttl_secs(lease) + LEASE_EXTRA_SECS
}

/// True when a claim (or renewal) of `lease`, written with `lease_ttl_secs(lease)` by a call
/// that began `elapsed` ago, is sure to keep others out for `lease` from now: the store counted
/// its TTL from a whole second at most one second before the call began.
pub fn lease_covers(lease: Duration, elapsed: Duration) -> bool {
    let ttl = Duration::from_secs(lease_ttl_secs(lease));
    ttl.saturating_sub(Duration::from_secs(1))
        .saturating_sub(elapsed)
        >= lease
}

/// When a claim of `lease` made now lapses on a store that keeps its own clock (the memory
/// store): `lease_ttl_secs(lease)` counted from the start of the current second, as Cassandra
/// counts it, so both stores keep a claim alike.
pub fn lease_end(lease: Duration) -> Instant {
    let into_second = Duration::from_nanos(u64::from(unix_now().subsec_nanos()));
    Instant::now() + Duration::from_secs(lease_ttl_secs(lease)) - into_second
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_to_whole_seconds() {
        assert_eq!(ttl_secs(Duration::from_millis(1)), 1);
        assert_eq!(ttl_secs(Duration::from_secs(1)), 1);
        assert_eq!(ttl_secs(Duration::from_millis(1001)), 2);
        assert_eq!(lease_ttl_secs(Duration::from_secs(1)), 3);
        assert_eq!(lease_ttl_secs(Duration::from_millis(1500)), 4);
    }

    #[test]
    fn limits_name_the_option_and_the_limit() {
        assert!(check_ttl("ttl", Duration::from_secs(3600)).is_ok());
        let e = check_ttl("ttl", Duration::from_secs(MAX_TTL_SECS + 1)).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
        assert!(
            e.message()
                .starts_with("ttl of 630720001 seconds is too long")
                && e.message().contains("630720000"),
            "{e}"
        );
        let left = LAST_EXPIRY_SECS - unix_now().as_secs();
        assert!(check_ttl("ttl", Duration::from_secs(left - 10)).is_ok());
        let e = check_ttl("default_ttl", Duration::from_secs(left + 10)).unwrap_err();
        assert!(
            e.message().starts_with("default_ttl of") && e.message().contains(LAST_EXPIRY),
            "{e}"
        );
        // A lease is checked by the TTL it is written with: 2 s more.
        assert!(check_lease(Duration::from_secs(left - 10)).is_ok());
        let e = check_lease(Duration::from_secs(left - 1)).unwrap_err();
        assert!(e.message().starts_with("for of"), "{e}");
    }

    #[test]
    fn a_lease_covers_only_what_the_call_left_of_it() {
        let one = Duration::from_secs(1);
        assert!(lease_covers(one, Duration::ZERO));
        assert!(lease_covers(one, Duration::from_millis(999)));
        assert!(lease_covers(one, one));
        assert!(!lease_covers(one, Duration::from_millis(1001)));
        let half = Duration::from_millis(500);
        assert!(lease_covers(half, Duration::from_millis(1500)));
        assert!(!lease_covers(half, Duration::from_millis(1501)));
    }

    #[test]
    fn a_memory_lease_ends_between_the_rounded_lease_plus_one_and_plus_two_seconds() {
        let before = Instant::now();
        let end = lease_end(Duration::from_millis(200));
        let left = end - before;
        assert!(
            left > Duration::from_secs(2) && left <= Duration::from_secs(3),
            "{left:?}"
        );
    }
}
