//! The in-process store: what the Cassandra table holds, in ordered maps, for tests and demos.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::claims::{ClaimBatch, ClaimInfo, ClaimOutcome, ClaimTerms, DEFAULT_MAX_ATTEMPTS};

use crate::error::Result;
use crate::expiry::lease_end;
use crate::page::Page;
use crate::record::{check_list, TaskKey, TaskRecord};
use crate::store::{done, Backend, BoxFuture, Cursor, From, Mode, Store, StoreSpec};
use crate::Connector;

/// Task list -> (id, type) -> data (`None`: null, see `TaskRecord::data`).
type Lists = BTreeMap<String, Rows>;

/// One list: (id, type) -> what is stored.
type Rows = BTreeMap<(String, String), Stored>;

/// A row's data, when it was written (microseconds since the Unix epoch, as Cassandra's
/// `WRITETIME`; none for a null `data`, as there) and when it expires (a task saved with a
/// time to live).
#[derive(Clone)]
struct Stored {
    data: Option<String>,
    saved_at: Option<i64>,
    expires: Option<Instant>,
}

/// The clock's time in microseconds since the Unix epoch.
fn micros_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

impl Stored {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|t| t > now)
    }
}

/// The in-process store. It keeps what the Cassandra table keeps, ordered the way Cassandra
/// orders a partition (by id, then type, as UTF-8 bytes), so the two can be swapped in tests.
pub struct MemoryStore {
    lists: RwLock<Lists>,
    /// Rows per page of a scan.
    page_size: usize,
    /// Claims by (list, id). Taken after `lists` when both are needed.
    claims: Mutex<HashMap<(String, String), Claim>>,
    max_attempts: Option<u32>,
    /// Time to live of a task saved without one (None: forever).
    default_ttl: Option<Duration>,
}

#[derive(Default)]
struct Claim {
    owner: Option<(String, Instant)>,
    attempts: u32,
    last_error: Option<String>,
}

impl Claim {
    /// The owner of a claim that has not lapsed.
    fn live_owner(&self) -> Option<&str> {
        match &self.owner {
            Some((o, until)) if *until > Instant::now() => Some(o),
            _ => None,
        }
    }
}

/// How many rows a scan takes at a time unless told otherwise.
pub const DEFAULT_PAGE_SIZE: usize = 1000;

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_page_size(DEFAULT_PAGE_SIZE)
    }
}

/// Where the next page of a memory scan starts: after this (id, type).
pub type MemoryCursor = (String, String);

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_page_size(page_size: usize) -> Self {
        Self::with_options(page_size, Some(DEFAULT_MAX_ATTEMPTS))
    }

    /// `max_attempts`: claims after which a task is dead (None: never).
    pub fn with_options(page_size: usize, max_attempts: Option<u32>) -> Self {
        MemoryStore {
            lists: RwLock::default(),
            page_size: page_size.max(1),
            claims: Mutex::default(),
            max_attempts,
            default_ttl: None,
        }
    }

    /// The same store with every task saved without a time to live given one of `ttl`.
    pub fn with_default_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.default_ttl = ttl;
        self
    }

    pub fn max_attempts(&self) -> Option<u32> {
        self.max_attempts
    }

    fn claims(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Claim>> {
        self.claims.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn claim_key(key: &TaskKey) -> (String, String) {
        (key.task_list.clone(), key.id.clone())
    }

    /// Claims a stored task for `terms.owner` unless another owner holds a live claim or
    /// its attempts are used up; a claim already held by the same owner is renewed.
    pub fn claim(&self, key: &TaskKey, terms: &ClaimTerms) -> ClaimOutcome {
        let lists = self.read();
        let mut claims = self.claims();
        self.claim_in(&lists, &mut claims, key, terms)
    }

    /// Claims some tasks of one list at once, under one hold of the store's locks: one outcome
    /// per id, in order.
    pub fn claim_many(&self, task_list: &str, ids: &[String], terms: &ClaimTerms) -> ClaimBatch {
        let lists = self.read();
        let mut claims = self.claims();
        let outcomes = ids
            .iter()
            .map(|id| {
                let key = TaskKey {
                    task_list: task_list.to_string(),
                    id: id.clone(),
                };
                self.claim_in(&lists, &mut claims, &key, terms)
            })
            .collect();
        ClaimBatch {
            outcomes,
            collisions: 0,
            transactions: 1,
            settled: 0,
        }
    }

    /// Releases the claims `owner` still holds among `held` (id, attempts it was won with),
    /// uncounting their attempts; how many were.
    pub fn give_back(&self, task_list: &str, held: &[(String, u32)], owner: &str) -> u32 {
        let mut claims = self.claims();
        let mut n = 0;
        for (id, attempts) in held {
            if let Some(c) = claims.get_mut(&(task_list.to_string(), id.clone())) {
                if c.live_owner() == Some(owner) {
                    c.owner = None;
                    if c.attempts == *attempts {
                        c.attempts = attempts.saturating_sub(1);
                    }
                    n += 1;
                }
            }
        }
        n
    }

    fn claim_in(
        &self,
        lists: &Lists,
        claims: &mut HashMap<(String, String), Claim>,
        key: &TaskKey,
        terms: &ClaimTerms,
    ) -> ClaimOutcome {
        let now = Instant::now();
        let stored = lists.get(&key.task_list).is_some_and(|rows| {
            rows.range((key.id.clone(), String::new())..)
                .take_while(|((id, _), _)| *id == key.id)
                .any(|(_, s)| s.live(now))
        });
        if !stored {
            claims.remove(&Self::claim_key(key));
            return ClaimOutcome::Gone;
        }
        let c = claims.entry(Self::claim_key(key)).or_default();
        let until = lease_end(terms.lease);
        match c.live_owner() {
            Some(o) if o == terms.owner => {
                c.owner = Some((terms.owner.clone(), until));
                return ClaimOutcome::Won {
                    attempts: c.attempts,
                };
            }
            Some(_) => return ClaimOutcome::Held,
            None => {}
        }
        if self.max_attempts.is_some_and(|m| c.attempts >= m) {
            return ClaimOutcome::Dead {
                attempts: c.attempts,
            };
        }
        c.attempts += 1;
        c.owner = Some((terms.owner.clone(), until));
        ClaimOutcome::Won {
            attempts: c.attempts,
        }
    }

    /// Extends a live claim held by `terms.owner`; false otherwise.
    pub fn renew(&self, key: &TaskKey, terms: &ClaimTerms) -> bool {
        let mut claims = self.claims();
        match claims.get_mut(&Self::claim_key(key)) {
            Some(c) if c.live_owner() == Some(terms.owner.as_str()) => {
                c.owner = Some((terms.owner.clone(), lease_end(terms.lease)));
                true
            }
            _ => false,
        }
    }

    /// Ends a live claim held by `owner`, recording `error` when given; false otherwise.
    pub fn release(&self, key: &TaskKey, owner: &str, error: Option<&str>) -> bool {
        let mut claims = self.claims();
        match claims.get_mut(&Self::claim_key(key)) {
            Some(c) if c.live_owner() == Some(owner) => {
                c.owner = None;
                if let Some(e) = error {
                    c.last_error = Some(e.to_string());
                }
                true
            }
            _ => false,
        }
    }

    /// The claim state of one task (`None`: never claimed).
    pub fn claim_info(&self, key: &TaskKey) -> Option<ClaimInfo> {
        self.claims()
            .get(&Self::claim_key(key))
            .map(|c| Self::info(&key.id, c))
    }

    fn info(id: &str, c: &Claim) -> ClaimInfo {
        ClaimInfo {
            id: id.to_string(),
            owner: c.live_owner().map(str::to_string),
            attempts: c.attempts,
            last_error: c.last_error.clone(),
            expires_in: match &c.owner {
                Some((_, until)) if *until > Instant::now() => {
                    let left = until.saturating_duration_since(Instant::now());
                    Some(left.as_secs_f64().ceil() as u32)
                }
                _ => None,
            },
        }
    }

    /// The claim states of a list's tasks, in id order.
    pub fn claim_infos(&self, task_list: &str) -> Vec<ClaimInfo> {
        let mut out: Vec<ClaimInfo> = self
            .claims()
            .iter()
            .filter(|((list, _), _)| list == task_list)
            .map(|((_, id), c)| Self::info(id, c))
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Makes a dead (or failing) task claimable again: attempts and last error cleared.
    pub fn retry(&self, key: &TaskKey) {
        if let Some(c) = self.claims().get_mut(&Self::claim_key(key)) {
            c.attempts = 0;
            c.last_error = None;
        }
    }

    pub fn page_size(&self) -> usize {
        self.page_size
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Lists> {
        // A panic while holding the lock cannot leave a half-written map (each write is one
        // insert or removal), so a poisoned lock is still safe to use.
        self.lists.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Lists> {
        self.lists.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn store(&self, record: &TaskRecord) -> Result<()> {
        record.validate()?;
        self.put_row(record);
        Ok(())
    }

    /// Writes the row as given, checking only the key columns (for migrations and tests that
    /// need rows the gem itself would not write).
    pub fn store_raw(&self, record: &TaskRecord) -> Result<()> {
        record.validate_columns()?;
        self.put_row(record);
        Ok(())
    }

    /// Writes a row already checked (see `Store`), with the default time to live.
    pub(crate) fn put_row(&self, record: &TaskRecord) {
        self.put_ttl(record, None);
    }

    /// Writes a row already checked that expires after `ttl` (or the default).
    pub fn put_ttl(&self, record: &TaskRecord, ttl: Option<Duration>) {
        let expires = self.expiry(ttl);
        Self::put_in(&mut self.write(), record, expires);
    }

    fn expiry(&self, ttl: Option<Duration>) -> Option<Instant> {
        ttl.or(self.default_ttl).map(|t| Instant::now() + t)
    }

    fn put_in(lists: &mut Lists, record: &TaskRecord, expires: Option<Instant>) {
        lists.entry(record.task_list.clone()).or_default().insert(
            (record.id.clone(), record.type_name.clone()),
            Stored {
                data: record.data.clone(),
                saved_at: record.data.as_ref().map(|_| micros_now()),
                expires,
            },
        );
    }

    /// Writes rows already checked, under one lock.
    pub fn put_many(&self, records: &[TaskRecord]) -> Vec<Result<()>> {
        let expires = self.expiry(None);
        let mut lists = self.write();
        records
            .iter()
            .map(|r| {
                Self::put_in(&mut lists, r, expires);
                Ok(())
            })
            .collect()
    }

    /// The first row under (list, id), as Cassandra's `LIMIT 1` would return it.
    pub fn find(&self, key: &TaskKey) -> Option<TaskRecord> {
        let lists = self.read();
        let rows = lists.get(&key.task_list)?;
        let start = (key.id.clone(), String::new());
        let now = Instant::now();
        let ((id, type_name), stored) = rows
            .range(start..)
            .take_while(|((id, _), _)| *id == key.id)
            .find(|(_, s)| s.live(now))?;
        Some(TaskRecord {
            task_list: key.task_list.clone(),
            id: id.clone(),
            type_name: type_name.clone(),
            data: stored.data.clone(),
            saved_at: stored.saved_at,
        })
    }

    /// Deletes every type stored under (list, id). Deleting what is not there is fine.
    pub fn delete(&self, key: &TaskKey) {
        Self::delete_in(&mut self.write(), key);
        self.claims().remove(&Self::claim_key(key));
    }

    /// Deletes each key, under one lock.
    pub fn delete_many(&self, keys: &[TaskKey]) -> Vec<Result<()>> {
        let mut lists = self.write();
        let mut claims = self.claims();
        keys.iter()
            .map(|k| {
                Self::delete_in(&mut lists, k);
                claims.remove(&Self::claim_key(k));
                Ok(())
            })
            .collect()
    }

    /// Deletes a whole task list.
    pub fn delete_list(&self, task_list: &str) {
        self.write().remove(task_list);
        self.claims().retain(|(list, _), _| list != task_list);
    }

    /// The rows under one id are adjacent (the map is ordered by id, then type): found by a
    /// range, not a walk over the list.
    fn delete_in(lists: &mut Lists, key: &TaskKey) {
        let Some(rows) = lists.get_mut(&key.task_list) else {
            return;
        };
        let types: Vec<(String, String)> = rows
            .range((key.id.clone(), String::new())..)
            .take_while(|((id, _), _)| *id == key.id)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &types {
            rows.remove(k);
        }
        if rows.is_empty() {
            lists.remove(&key.task_list);
        }
    }

    /// How many rows the list holds.
    pub fn count(&self, task_list: &str) -> u64 {
        let now = Instant::now();
        self.read().get(task_list).map_or(0, |rows| {
            rows.values().filter(|s| s.live(now)).count() as u64
        })
    }

    /// Up to `limit` list names after `after`, in name order, and whether more follow.
    pub fn lists_page(&self, after: Option<&str>, limit: usize) -> (Vec<String>, bool) {
        let lists = self.read();
        let from = match after {
            Some(a) => std::ops::Bound::Excluded(a.to_string()),
            None => std::ops::Bound::Unbounded,
        };
        let mut names: Vec<String> = lists
            .range::<String, _>((from, std::ops::Bound::Unbounded))
            .take(limit.max(1) + 1)
            .map(|(name, _)| name.clone())
            .collect();
        let more = names.len() > limit.max(1);
        names.truncate(limit.max(1));
        (names, more)
    }

    /// Up to `limit` rows of the list after `after`, so a scan holds one page at a time and
    /// sees a consistent order even while others write.
    pub fn page(
        &self,
        task_list: &str,
        after: Option<&MemoryCursor>,
        limit: usize,
    ) -> Result<Page<MemoryCursor>> {
        check_list(task_list)?;
        let lists = self.read();
        let Some(rows) = lists.get(task_list) else {
            return Ok(Page {
                records: Vec::new(),
                next: None,
            });
        };
        let limit = limit.max(1);
        let from = match after {
            Some(a) => std::ops::Bound::Excluded(a.clone()),
            None => std::ops::Bound::Unbounded,
        };
        let iter = rows.range::<(String, String), _>((from, std::ops::Bound::Unbounded));
        let mut records = Vec::with_capacity(limit.min(rows.len()));
        let mut more = false;
        let now = Instant::now();
        for ((id, type_name), stored) in iter.filter(|(_, s)| s.live(now)) {
            if records.len() == limit {
                more = true;
                break;
            }
            records.push(TaskRecord {
                task_list: task_list.to_string(),
                id: id.clone(),
                type_name: type_name.clone(),
                data: stored.data.clone(),
                saved_at: stored.saved_at,
            });
        }
        let next = if more {
            records.last().map(|r| (r.id.clone(), r.type_name.clone()))
        } else {
            None
        };
        Ok(Page { records, next })
    }

    pub fn len(&self, task_list: &str) -> usize {
        self.read().get(task_list).map_or(0, |r| r.len())
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    pub fn clear(&self) {
        self.write().clear();
        self.claims().clear();
    }
}

/// A memory store's spec is the store itself: every adapter made from it, in every thread,
/// shares it (a forked child gets a copy, as it does of all its memory).
pub struct MemorySpec(pub Arc<MemoryStore>);

impl StoreSpec for MemorySpec {
    fn open(&self, _connector: &Connector) -> Result<Store> {
        Ok(Store::new(self.0.clone()))
    }

    fn max_attempts(&self) -> Option<u32> {
        self.0.max_attempts()
    }

    fn clear(&self) -> bool {
        self.0.clear();
        true
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Where the next page of list names starts: after this name.
struct ListsAfter(String);

/// Every call is done when it is made: the futures are ready at once.
impl Backend for MemoryStore {
    fn mode(&self) -> Mode {
        Mode::Ready
    }

    fn put<'a>(
        &'a self,
        record: &'a TaskRecord,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>> {
        self.put_ttl(record, ttl);
        done(Ok(()))
    }

    fn put_many(
        &self,
        records: Arc<[TaskRecord]>,
        _concurrency: usize,
        _batched: bool,
    ) -> BoxFuture<'_, Result<Vec<Result<()>>>> {
        done(Ok(MemoryStore::put_many(self, &records)))
    }

    fn find<'a>(&'a self, key: &'a TaskKey) -> BoxFuture<'a, Result<Option<TaskRecord>>> {
        done(Ok(MemoryStore::find(self, key)))
    }

    fn delete<'a>(&'a self, key: &'a TaskKey) -> BoxFuture<'a, Result<()>> {
        MemoryStore::delete(self, key);
        done(Ok(()))
    }

    fn delete_many(
        &self,
        keys: Arc<[TaskKey]>,
        _concurrency: usize,
        _batched: bool,
    ) -> BoxFuture<'_, Result<Vec<Result<()>>>> {
        done(Ok(MemoryStore::delete_many(self, &keys)))
    }

    fn delete_list<'a>(&'a self, task_list: &'a str) -> BoxFuture<'a, Result<()>> {
        MemoryStore::delete_list(self, task_list);
        done(Ok(()))
    }

    fn page<'a>(
        &'a self,
        task_list: &'a str,
        cursor: Option<&'a Cursor>,
    ) -> BoxFuture<'a, Result<Page<Cursor>>> {
        let after_id;
        let after = match Cursor::read::<MemoryCursor>(cursor, "scan") {
            Err(e) => return done(Err(e)),
            Ok(From::Start) => None,
            Ok(From::At(a)) => Some(a),
            Ok(From::AfterId(id)) => {
                // Past every type stored under the id (type names are class names).
                after_id = (id.to_string(), char::MAX.to_string());
                Some(&after_id)
            }
        };
        done(
            MemoryStore::page(self, task_list, after, self.page_size()).map(|page| Page {
                records: page.records,
                next: page.next.map(Cursor::at),
            }),
        )
    }

    fn lists_page<'a>(
        &'a self,
        cursor: Option<&'a Cursor>,
    ) -> BoxFuture<'a, Result<(Vec<String>, Option<Cursor>)>> {
        let after = match Cursor::read::<ListsAfter>(cursor, "list") {
            Err(e) => return done(Err(e)),
            Ok(From::At(ListsAfter(a))) => Some(a.as_str()),
            Ok(_) => None,
        };
        let (names, more) = MemoryStore::lists_page(self, after, self.page_size());
        let next = match (more, names.last()) {
            (true, Some(last)) => Some(Cursor::at(ListsAfter(last.clone()))),
            _ => None,
        };
        done(Ok((names, next)))
    }

    fn count<'a>(&'a self, task_list: &'a str) -> BoxFuture<'a, Result<u64>> {
        done(Ok(MemoryStore::count(self, task_list)))
    }

    fn claim<'a>(
        &'a self,
        key: &'a TaskKey,
        terms: &'a ClaimTerms,
    ) -> BoxFuture<'a, Result<ClaimOutcome>> {
        done(Ok(MemoryStore::claim(self, key, terms)))
    }

    fn claim_many<'a>(
        &'a self,
        task_list: &'a str,
        ids: &'a [String],
        terms: &'a ClaimTerms,
    ) -> BoxFuture<'a, Result<ClaimBatch>> {
        done(Ok(MemoryStore::claim_many(self, task_list, ids, terms)))
    }

    fn give_back<'a>(
        &'a self,
        task_list: &'a str,
        held: &'a [(String, u32)],
        owner: &'a str,
    ) -> BoxFuture<'a, Result<u32>> {
        done(Ok(MemoryStore::give_back(self, task_list, held, owner)))
    }

    fn renew<'a>(&'a self, key: &'a TaskKey, terms: &'a ClaimTerms) -> BoxFuture<'a, Result<bool>> {
        done(Ok(MemoryStore::renew(self, key, terms)))
    }

    fn release<'a>(
        &'a self,
        key: &'a TaskKey,
        owner: &'a str,
        error: Option<&'a str>,
    ) -> BoxFuture<'a, Result<bool>> {
        done(Ok(MemoryStore::release(self, key, owner, error)))
    }

    fn retry<'a>(&'a self, key: &'a TaskKey) -> BoxFuture<'a, Result<()>> {
        MemoryStore::retry(self, key);
        done(Ok(()))
    }

    fn claim_info<'a>(&'a self, key: &'a TaskKey) -> BoxFuture<'a, Result<Option<ClaimInfo>>> {
        done(Ok(MemoryStore::claim_info(self, key)))
    }

    fn claim_infos<'a>(&'a self, task_list: &'a str) -> BoxFuture<'a, Result<Vec<ClaimInfo>>> {
        done(Ok(MemoryStore::claim_infos(self, task_list)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(list: &str, id: &str, ty: &str) -> TaskRecord {
        TaskRecord {
            task_list: list.into(),
            id: id.into(),
            type_name: ty.into(),
            data: Some(format!("{{\"id\":\"{id}\"}}")),
            saved_at: None,
        }
    }

    #[test]
    fn upsert_find_delete() {
        let s = MemoryStore::new();
        s.store(&rec("l", "b", "T")).unwrap();
        s.store(&rec("l", "b", "T")).unwrap();
        let before = micros_now();
        s.store(&rec("l", "b", "A")).unwrap();
        assert_eq!(s.len("l"), 2);
        let key = TaskKey::new("l", "b").unwrap();
        let found = s.find(&key).unwrap();
        assert_eq!(found.type_name, "A");
        assert!(found
            .saved_at
            .is_some_and(|t| t >= before && t <= micros_now()));
        assert!(s.find(&TaskKey::new("l", "a").unwrap()).is_none());
        s.delete(&key);
        assert!(s.find(&key).is_none());
        s.delete(&key);
        assert!(s.is_empty());
    }

    #[test]
    fn pages_in_id_order_without_gaps() {
        let s = MemoryStore::new();
        for i in (0..25).rev() {
            s.store(&rec("l", &format!("{i:03}"), "T")).unwrap();
        }
        s.store(&rec("other", "x", "T")).unwrap();
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = s.page("l", after.as_ref(), 10).unwrap();
            assert!(page.records.len() <= 10);
            seen.extend(page.records.into_iter().map(|r| r.id));
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let want: Vec<String> = (0..25).map(|i| format!("{i:03}")).collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn rejects_bad_records_and_keeps_what_was_stored() {
        let s = MemoryStore::new();
        s.store(&rec("l", "1", "T")).unwrap();
        let mut bad = rec("l", "1", "T");
        bad.data = Some("not json".into());
        assert!(s.store(&bad).is_err());
        assert_eq!(
            s.find(&TaskKey::new("l", "1").unwrap())
                .unwrap()
                .data
                .as_deref(),
            Some("{\"id\":\"1\"}")
        );
    }
}
