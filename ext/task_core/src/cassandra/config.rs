//! What a Cassandra store is configured with: hosts, keyspace, table, timeouts, consistency.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::record::validate_identifier;

pub use scylla::frame::types::Consistency;

/// Everything that shapes a Cassandra store. Two adapters with equal configs share one store;
/// two with equal `connection` share one driver session.
///
/// Adding an option: a field here (in `ConnectionKey` when it changes how the cluster is
/// reached) with its default below, checked in `validated` if it can be wrong, and one row
/// in the binding's option table (`ext/task_native/src/options.rs`), which reads it from
/// keyword arguments and shows it in `#options`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CassandraConfig {
    pub connection: ConnectionKey,
    pub keyspace: String,
    pub table: String,
    pub consistency: Level,
    pub request_timeout: Duration,
    /// How long an idempotent request keeps being retried after transient failures.
    pub retry_deadline: Duration,
    pub page_size: i32,
    /// Claims after which a task is dead (None: never).
    pub max_attempts: Option<u32>,
    /// The consistency of claims' lightweight transactions.
    pub serial: Serial,
    /// Time to live of a task saved without one (None: forever, as task_rb).
    pub default_ttl: Option<Duration>,
    /// A call that takes longer is logged (at warn) when a logger is set; None: never.
    pub slow_call: Option<Duration>,
}

/// SERIAL (linearizable across all datacenters) or LOCAL_SERIAL (within the local one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Serial {
    Serial,
    LocalSerial,
}

/// Which cluster we talk to and how we reach it and log in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnectionKey {
    pub hosts: Vec<String>,
    pub port: u16,
    pub connect_timeout: Duration,
    pub local_datacenter: Option<String>,
    /// Whether requests may go to another datacenter's nodes once no node of the local one
    /// can take them (only with `local_datacenter`).
    pub datacenter_failover: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    /// TLS to the nodes, verifying their certificates against these CAs (a PEM file), or
    /// against the system's CAs when `tls` is set without a file.
    pub tls: bool,
    pub tls_ca_file: Option<String>,
}

/// A consistency level. The driver's `Consistency` has no Hash; its wire code names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level(pub Consistency);

impl std::hash::Hash for Level {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.0 as u16).hash(state);
    }
}

impl Default for ConnectionKey {
    fn default() -> Self {
        ConnectionKey {
            hosts: vec!["127.0.0.1".to_string()],
            port: 9042,
            connect_timeout: Duration::from_secs(5),
            local_datacenter: None,
            datacenter_failover: false,
            username: None,
            password: None,
            tls: false,
            tls_ca_file: None,
        }
    }
}

impl Default for CassandraConfig {
    fn default() -> Self {
        CassandraConfig {
            connection: ConnectionKey::default(),
            keyspace: "tasks".to_string(),
            table: "tasks".to_string(),
            consistency: Level(Consistency::LocalQuorum),
            request_timeout: Duration::from_secs(12),
            retry_deadline: Duration::from_secs(30),
            page_size: 5000,
            max_attempts: Some(crate::claims::DEFAULT_MAX_ATTEMPTS),
            serial: Serial::LocalSerial,
            default_ttl: None,
            slow_call: Some(Duration::from_secs(2)),
        }
    }
}

impl CassandraConfig {
    /// Checks the config and normalises identifiers the way CQL reads unquoted ones.
    /// What log lines about a store of this config name as their source: the qualified
    /// table and the hosts.
    pub fn log_source(&self) -> String {
        format!("{}@{}", self.qualified_table(), self.host_list())
    }

    pub fn validated(mut self) -> Result<Self> {
        let conn = &mut self.connection;
        if conn.hosts.is_empty() {
            return Err(Error::InvalidArgument(
                "hosts must name at least one Cassandra contact host".into(),
            ));
        }
        // Every contact point is read now, so a typo is an error here and not a
        // NoHostAvailable once the driver has tried to connect for the whole retry deadline.
        for h in &conn.hosts {
            parse_host(h, conn.port)?;
        }
        if conn.port == 0 {
            return Err(Error::InvalidArgument("port must be 1-65535".into()));
        }
        validate_identifier("keyspace", &self.keyspace)?;
        validate_identifier("table", &self.table)?;
        self.keyspace = self.keyspace.to_ascii_lowercase();
        self.table = self.table.to_ascii_lowercase();
        if let Some(ttl) = self.default_ttl {
            crate::expiry::check_ttl("default_ttl", ttl)?;
        }
        if self.page_size < 1 {
            return Err(Error::InvalidArgument(format!(
                "page_size must be at least 1, got {}",
                self.page_size
            )));
        }
        for (name, d) in [
            ("request_timeout", self.request_timeout),
            ("connect_timeout", self.connection.connect_timeout),
        ] {
            if d.is_zero() {
                return Err(Error::InvalidArgument(format!("{name} must be positive")));
            }
        }
        let conn = &mut self.connection;
        if conn.datacenter_failover && conn.local_datacenter.is_none() {
            return Err(Error::InvalidArgument(
                "datacenter_failover needs local_datacenter: without one, requests go to every \
                 datacenter already"
                    .into(),
            ));
        }
        if let Some(ca) = &conn.tls_ca_file {
            if !std::path::Path::new(ca).is_file() {
                return Err(Error::InvalidArgument(format!(
                    "tls_ca_file {ca:?} is not a readable file"
                )));
            }
            conn.tls = true;
        }
        if conn.username.is_some() != conn.password.is_some() {
            return Err(Error::InvalidArgument(
                "username and password must be given together".into(),
            ));
        }
        Ok(self)
    }

    /// `keyspace.table_claims`: where claims and attempts live.
    pub fn qualified_claims_table(&self) -> String {
        format!("{}.{}_claims", self.keyspace, self.table)
    }

    /// `keyspace.table`, both already validated identifiers.
    pub fn qualified_table(&self) -> String {
        format!("{}.{}", self.keyspace, self.table)
    }

    /// "127.0.0.1:9042, 127.0.0.2:9042", for messages.
    pub fn host_list(&self) -> String {
        self.connection.host_list()
    }
}

/// The forms a contact host may take, for error messages.
const HOST_FORMS: &str =
    "hosts are \"host\", \"host:port\", an IPv6 address or \"[IPv6]:port\", port 1-65535";

/// A contact host as the driver takes it, `host:port` (`[IPv6]:port`): `entry` is `host`,
/// `host:port`, an IPv6 address (`::1`) or `[IPv6]` with or without `:port`; `port` is used
/// when it gives none. A host is an IPv4 address or a name of letters, digits, `-`, `.`, `_`.
pub fn parse_host(entry: &str, port: u16) -> Result<String> {
    let bad = |why: String| Error::InvalidArgument(format!("host {entry:?}: {why} ({HOST_FORMS})"));
    if entry.trim().is_empty() {
        return Err(Error::InvalidArgument(format!("host {entry:?} is empty")));
    }
    let port_of = |text: &str| -> Result<u16> {
        let ok = !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
        match text.parse::<u16>() {
            Ok(p) if ok && p >= 1 => Ok(p),
            _ => Err(bad(format!(
                "port {text:?} is not a number from 1 to 65535"
            ))),
        }
    };
    if let Some(rest) = entry.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return Err(bad("no closing ]".into()));
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad(format!("{addr:?} is not an IPv6 address")));
        }
        let port = match after {
            "" => port,
            _ => match after.strip_prefix(':') {
                Some(p) => port_of(p)?,
                None => return Err(bad("only :port may follow ]".into())),
            },
        };
        return Ok(format!("[{addr}]:{port}"));
    }
    if entry.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok(format!("[{entry}]:{port}"));
    }
    let (host, port) = match entry.rsplit_once(':') {
        Some((host, p)) => (host, port_of(p)?),
        None => (entry, port),
    };
    let name_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !name_ok {
        return Err(bad(format!("{host:?} is not a host name or IP address")));
    }
    Ok(format!("{host}:{port}"))
}

impl ConnectionKey {
    pub fn contact_points(&self) -> Vec<String> {
        self.hosts
            .iter()
            .map(|h| {
                // `validated` has parsed every host; the fallback only serves a config that
                // skipped it (the driver then reports the host it cannot use).
                parse_host(h, self.port).unwrap_or_else(|_| format!("{h}:{}", self.port))
            })
            .collect()
    }

    pub fn host_list(&self) -> String {
        self.contact_points().join(", ")
    }
}

/// Parses a consistency level by its CQL name (`"LOCAL_QUORUM"`, `:one`, ...).
pub fn parse_consistency(name: &str) -> Result<Consistency> {
    let c = match name.to_ascii_uppercase().as_str() {
        "ANY" => Consistency::Any,
        "ONE" => Consistency::One,
        "TWO" => Consistency::Two,
        "THREE" => Consistency::Three,
        "QUORUM" => Consistency::Quorum,
        "ALL" => Consistency::All,
        "LOCAL_QUORUM" => Consistency::LocalQuorum,
        "EACH_QUORUM" => Consistency::EachQuorum,
        "LOCAL_ONE" => Consistency::LocalOne,
        _ => {
            return Err(Error::InvalidArgument(format!(
                "consistency {name:?} is not one of ANY, ONE, TWO, THREE, QUORUM, ALL, LOCAL_QUORUM, EACH_QUORUM, LOCAL_ONE"
            )))
        }
    };
    Ok(c)
}

/// The CQL name of a consistency level, lower case (`local_quorum`).
pub fn consistency_name(c: Consistency) -> &'static str {
    match c {
        Consistency::Any => "any",
        Consistency::One => "one",
        Consistency::Two => "two",
        Consistency::Three => "three",
        Consistency::Quorum => "quorum",
        Consistency::All => "all",
        Consistency::LocalQuorum => "local_quorum",
        Consistency::EachQuorum => "each_quorum",
        Consistency::LocalOne => "local_one",
        _ => "serial",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let c = CassandraConfig::default().validated().unwrap();
        assert_eq!(c.qualified_table(), "tasks.tasks");
        assert_eq!(c.consistency, Level(Consistency::LocalQuorum));
        assert_eq!(c.host_list(), "127.0.0.1:9042");

        let bad = CassandraConfig {
            table: "tasks; DROP TABLE x".into(),
            ..Default::default()
        };
        let e = bad.validated().unwrap_err();
        assert!(e.message().contains("table name"), "{e}");

        let mut bad = CassandraConfig::default();
        bad.connection.hosts = vec![];
        assert!(bad.validated().unwrap_err().message().contains("hosts"));

        let c = CassandraConfig {
            keyspace: "My_Tasks".into(),
            ..Default::default()
        };
        assert_eq!(c.validated().unwrap().keyspace, "my_tasks");
    }

    #[test]
    fn contact_points() {
        let mut c = CassandraConfig::default();
        c.connection.hosts = vec![
            "127.0.0.1".into(),
            "127.0.0.2:9999".into(),
            "::1".into(),
            "[::1]".into(),
            "[fe80::1]:9999".into(),
            "db-1.example.com".into(),
            "host_2:65535".into(),
        ];
        c.connection.port = 9043;
        let c = c.validated().unwrap();
        assert_eq!(
            c.connection.contact_points(),
            vec![
                "127.0.0.1:9043",
                "127.0.0.2:9999",
                "[::1]:9043",
                "[::1]:9043",
                "[fe80::1]:9999",
                "db-1.example.com:9043",
                "host_2:65535"
            ]
        );
    }

    #[test]
    fn bad_hosts_are_refused_naming_them() {
        for (host, why) in [
            (
                "127.0.0.1:abc",
                "port \"abc\" is not a number from 1 to 65535",
            ),
            ("host:0", "port \"0\" is not a number"),
            ("host:99999", "port \"99999\" is not a number"),
            ("host:+1", "port \"+1\" is not a number"),
            ("host:", "port \"\" is not a number"),
            ("db 1", "\"db 1\" is not a host name or IP address"),
            ("1:2:3", "\"1:2\" is not a host name"),
            (":9042", "\"\" is not a host name"),
            ("[::1", "no closing ]"),
            ("[::1]:x", "port \"x\""),
            ("[::1]9042", "only :port may follow ]"),
            ("[db1]:9042", "\"db1\" is not an IPv6 address"),
        ] {
            let mut c = CassandraConfig::default();
            c.connection.hosts = vec!["127.0.0.1".into(), host.into()];
            let e = c.validated().unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{host}: {e}");
            assert!(
                e.message().starts_with(&format!("host {host:?}: {why}")),
                "{host}: {e}"
            );
        }
        for host in ["", "  "] {
            let e = parse_host(host, 9042).unwrap_err();
            assert_eq!(e.message(), format!("host {host:?} is empty"));
        }
    }

    #[test]
    fn consistency_names() {
        assert_eq!(
            parse_consistency("local_quorum").unwrap(),
            Consistency::LocalQuorum
        );
        assert_eq!(parse_consistency("ONE").unwrap(), Consistency::One);
        assert!(parse_consistency("most")
            .unwrap_err()
            .message()
            .contains("\"most\""));
    }
}
