//! One page of a scan.

use crate::record::TaskRecord;

/// One page of a scan over a task list, and where the next page starts (`None`: no more).
#[derive(Debug)]
pub struct Page<C> {
    pub records: Vec<TaskRecord>,
    pub next: Option<C>,
}
