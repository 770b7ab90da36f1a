//! Bounded retries of idempotent statements: the deadline a call (or a bulk call) keeps, and
//! the loop that retries, logs and reports attempts.

use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

use super::errors::unknown_outcome;
use crate::error::Error;
use crate::error::Result;
use crate::log::Level as LogLevel;

use super::CassandraStore;

/// When a call stops retrying. One call: its retry deadline after it began. A bulk call:
/// its retry deadline after the last of its writes that succeeded (or after it began), so a
/// long bulk call on a healthy cluster is never cut short, and one whose node stops
/// answering ends about a retry deadline (plus the request in flight) later.
pub struct Deadline {
    start: Instant,
    retry: Duration,
    /// Milliseconds from `start` to the last progress.
    progress_ms: AtomicU64,
}

impl Deadline {
    pub fn new(retry: Duration) -> Self {
        Deadline {
            start: Instant::now(),
            retry,
            progress_ms: AtomicU64::new(0),
        }
    }

    pub(super) fn at(&self) -> Instant {
        self.start + Duration::from_millis(self.progress_ms.load(Ordering::Relaxed)) + self.retry
    }

    /// True when waiting `pause` more would pass the deadline.
    pub(super) fn passed_after(&self, pause: Duration) -> bool {
        Instant::now() + pause >= self.at()
    }

    pub(super) fn progressed(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.progress_ms.fetch_max(ms, Ordering::Relaxed);
    }
}

impl CassandraStore {
    /// A deadline for one call beginning now.
    pub(super) fn deadline(&self) -> Deadline {
        Deadline::new(self.config.retry_deadline)
    }

    /// Runs an idempotent request, retrying transient failures with backoff until `deadline`.
    /// Non-transient errors come back at once. Every attempt is also bounded here, whatever
    /// the driver does: no call can hang.
    pub(super) async fn retrying<T, F, Fut>(
        &self,
        what: &(dyn Fn() -> String + Sync),
        is_write: bool,
        deadline: &Deadline,
        mut attempt: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut backoff = Duration::from_millis(50);
        let guard = self.config.request_timeout + self.config.connection.connect_timeout * 2;
        let started = Instant::now();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            // The driver's request future is several KB; boxed, it is built once on the heap
            // instead of being copied each time the futures around it move (into a task,
            // into the timeout): measured, those copies were a fifth of a bulk write's CPU.
            let outcome = match tokio::time::timeout(guard, Box::pin(attempt())).await {
                Ok(r) => r,
                Err(_) => Err(Error::Timeout(format!(
                    "{} on {} at {} did not finish within {:.1}s{}",
                    what(),
                    self.table,
                    self.hosts,
                    guard.as_secs_f64(),
                    unknown_outcome(is_write)
                ))),
            };
            match outcome {
                Err(e) if e.is_transient() && !deadline.passed_after(backoff) => {
                    self.log(LogLevel::Warn, || {
                        format!(
                            "{} failed (attempt {attempts}): {}; retrying in {} ms",
                            what(),
                            e.message(),
                            backoff.as_millis()
                        )
                    });
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                other => {
                    crate::log::note_attempts(attempts);
                    let took = started.elapsed().as_secs_f64();
                    match &other {
                        Ok(_) if attempts > 1 => self.log(LogLevel::Info, || {
                            format!(
                                "{} succeeded at attempt {attempts}, {took:.1} s after the first",
                                what()
                            )
                        }),
                        Err(e) if attempts > 1 || e.is_transient() => {
                            self.log(LogLevel::Error, || {
                                format!(
                                    "{} gave up after {attempts} attempts in {took:.1} s: {}",
                                    what(),
                                    e.message()
                                )
                            })
                        }
                        _ => {}
                    }
                    if let Some(slow) = self.config.slow_call {
                        if took > slow.as_secs_f64() {
                            self.log(LogLevel::Warn, || {
                                format!(
                                    "slow call: {} took {took:.3} s ({attempts} attempts)",
                                    what()
                                )
                            });
                        }
                    }
                    return other;
                }
            }
        }
    }
}
