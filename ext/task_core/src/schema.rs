//! What `create_schema` makes and `tune_tables` changes: the keyspace's replication and the
//! table options for lists that churn (see the README, "Lists that churn").

use crate::error::{Error, Result};

/// How long a tombstone is kept before compaction may drop it, unless told otherwise: three
/// hours instead of Cassandra's ten days. A replica down for longer than this must be
/// repaired (or rebuilt) before it rejoins, or it can bring a completed task back, which then
/// runs again: at-least-once work tolerates that; it never loses a task.
pub const DEFAULT_GC_GRACE_SECONDS: u32 = 10_800;

/// Where the keyspace keeps its replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replication {
    /// `SimpleStrategy` with this many replicas: one datacenter.
    Simple(u32),
    /// `NetworkTopologyStrategy`: this many replicas in each named datacenter.
    ByDatacenter(Vec<(String, u32)>),
}

/// What `create_schema` creates, and with which options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    pub replication: Replication,
    /// Whether to create the claims table too.
    pub claims: bool,
    pub gc_grace_seconds: u32,
}

impl Default for Schema {
    fn default() -> Self {
        Schema {
            replication: Replication::Simple(1),
            claims: true,
            gc_grace_seconds: DEFAULT_GC_GRACE_SECONDS,
        }
    }
}

impl Replication {
    /// Refuses what Cassandra would refuse, before anything is created.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        match self {
            Replication::Simple(0) => bad("replication_factor must be at least 1".into()),
            Replication::Simple(_) => Ok(()),
            Replication::ByDatacenter(dcs) if dcs.is_empty() => {
                bad("replication must name at least one datacenter".into())
            }
            Replication::ByDatacenter(dcs) => {
                for (i, (dc, n)) in dcs.iter().enumerate() {
                    if dc.is_empty() || dc.chars().any(char::is_control) {
                        return bad(format!(
                            "replication: datacenter name {dc:?} must be non-empty text"
                        ));
                    }
                    if dcs[..i].iter().any(|(other, _)| other == dc) {
                        return bad(format!("replication names datacenter {dc:?} twice"));
                    }
                    if *n == 0 {
                        return bad(format!(
                            "replication: datacenter {dc:?} needs at least 1 replica \
                             (leave out a datacenter that should hold none)"
                        ));
                    }
                }
                Ok(())
            }
        }
    }

    /// The `replication = {...}` map of `CREATE KEYSPACE`.
    pub fn cql(&self) -> String {
        match self {
            Replication::Simple(n) => {
                format!("{{'class': 'SimpleStrategy', 'replication_factor': {n}}}")
            }
            Replication::ByDatacenter(dcs) => {
                let mut map = String::from("{'class': 'NetworkTopologyStrategy'");
                for (dc, n) in dcs {
                    map.push_str(&format!(", '{}': {n}", dc.replace('\'', "''")));
                }
                map.push('}');
                map
            }
        }
    }
}

/// The table options for queue-like churn, where every completed task leaves a tombstone:
/// tombstones purgeable after `gc_grace_seconds`, and size-tiered compaction that compacts an
/// sstable on its own once a tenth of it is purgeable tombstones (checked at most hourly),
/// even when its key ranges overlap other sstables.
pub fn churn_options(gc_grace_seconds: u32) -> String {
    format!(
        "gc_grace_seconds = {gc_grace_seconds} AND compaction = \
         {{'class': 'SizeTieredCompactionStrategy', 'unchecked_tombstone_compaction': 'true', \
         'tombstone_threshold': '0.1', 'tombstone_compaction_interval': '3600'}}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_maps() {
        assert_eq!(
            Replication::Simple(3).cql(),
            "{'class': 'SimpleStrategy', 'replication_factor': 3}"
        );
        let dcs = Replication::ByDatacenter(vec![("dc1".into(), 2), ("o'dc".into(), 1)]);
        assert_eq!(
            dcs.cql(),
            "{'class': 'NetworkTopologyStrategy', 'dc1': 2, 'o''dc': 1}"
        );
        assert!(dcs.validate().is_ok());
    }

    #[test]
    fn refuses_what_cassandra_would() {
        let msg = |r: Replication| r.validate().unwrap_err().message().to_string();
        assert!(msg(Replication::Simple(0)).contains("at least 1"));
        assert!(msg(Replication::ByDatacenter(vec![])).contains("at least one datacenter"));
        assert!(msg(Replication::ByDatacenter(vec![("dc1".into(), 0)])).contains("\"dc1\""));
        assert!(msg(Replication::ByDatacenter(vec![
            ("a".into(), 1),
            ("a".into(), 2)
        ]))
        .contains("twice"));
        assert!(msg(Replication::ByDatacenter(vec![("".into(), 1)])).contains("non-empty"));
    }

    #[test]
    fn churn_options_carry_the_grace_period() {
        assert!(churn_options(60).starts_with("gc_grace_seconds = 60 AND compaction = {"));
    }
}
