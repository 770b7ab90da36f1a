//! Adapter options as tables: one row per option, which reads it from keyword arguments into
//! the store's config and shows it in `#options` (`Opt`, `read`, `shown`: any store's config
//! type), the checks several stores share (`seconds`, `default_ttl`, `max_attempts`), and
//! `CassandraAdapter`'s table. Adding a Cassandra option: its field and default in
//! `task_core`'s `CassandraConfig` (with a check in `validated` if it can be wrong) and a row
//! here. A new store's table lives in its adapter file (`adapter/STORE.rs`).

use std::time::Duration;

use magnus::r_hash::ForEach;
use magnus::value::ReprValue;
use magnus::{Error, Float, Integer, IntoValue, RArray, RHash, RString, Ruby, Symbol, Value};
use task_core::cassandra::{Level, Serial};
use task_core::{consistency_name, parse_consistency, CassandraConfig};

use crate::{args, errors};

/// One option of a store whose config is `C`.
pub struct Opt<C: 'static> {
    pub name: &'static str,
    pub read: fn(&Ruby, &mut C, Value) -> Result<(), Error>,
    /// `None`: never shown (a password).
    pub show: Option<fn(&Ruby, &C) -> Value>,
}

/// Reads keyword options into `config` by `table`; unknown names are an error that lists the
/// known ones. `what` names the call in that error and `also_accepted` are further names the
/// caller reads itself.
pub fn read<C>(
    ruby: &Ruby,
    opts: RHash,
    what: &str,
    also_accepted: &[&str],
    table: &[Opt<C>],
    config: &mut C,
) -> Result<(), Error> {
    let accepted: Vec<&str> = also_accepted
        .iter()
        .copied()
        .chain(table.iter().map(|o| o.name))
        .collect();
    // Every name checked first, so that all the unknown ones are named together.
    args::options_by_name(ruby, opts, what, &accepted)?;
    opts.foreach(|k: Value, v: Value| {
        let key = match Symbol::from_value(k) {
            Some(s) => s.name()?.into_owned(),
            None => text(ruby, "option name", k)?,
        };
        // A name not in the table is one the caller reads itself (checked above).
        if let Some(opt) = table.iter().find(|o| o.name == key) {
            (opt.read)(ruby, config, v)?;
        }
        Ok(ForEach::Continue)
    })
}

/// The options of a config by `table`, as its adapter's `new` takes them (those with no
/// `show` left out).
pub fn shown<C>(ruby: &Ruby, config: &C, table: &[Opt<C>]) -> Result<RHash, Error> {
    let h = ruby.hash_new();
    for opt in table {
        if let Some(show) = opt.show {
            h.aset(ruby.to_symbol(opt.name), show(ruby, config))?;
        }
    }
    Ok(h)
}

/// `CassandraAdapter`'s options, in the order error messages list them and `#options` shows
/// them.
pub const CASSANDRA: &[Opt<CassandraConfig>] = &[
    Opt {
        name: "hosts",
        read: |r, c, v| {
            c.connection.hosts = match RArray::from_value(v) {
                Some(a) => a
                    .into_iter()
                    .map(|h| text(r, "hosts entry", h))
                    .collect::<Result<_, _>>()?,
                None => text(r, "hosts", v)?
                    .split(',')
                    .map(|h| h.trim().to_string())
                    .collect(),
            };
            Ok(())
        },
        show: Some(|r, c| {
            r.ary_from_iter(c.connection.hosts.iter().map(|h| h.as_str()))
                .as_value()
        }),
    },
    Opt {
        name: "port",
        read: |r, c, v| {
            let port = args::integer_in(r, "port", v, 1, u16::MAX.into())?;
            c.connection.port = u16::try_from(port).unwrap_or(u16::MAX); // checked above
            Ok(())
        },
        show: Some(|r, c| c.connection.port.into_value_with(r)),
    },
    Opt {
        name: "keyspace",
        read: |r, c, v| {
            c.keyspace = text(r, "keyspace", v)?;
            Ok(())
        },
        show: Some(|r, c| c.keyspace.as_str().into_value_with(r)),
    },
    Opt {
        name: "tasks_table_name",
        read: |r, c, v| {
            c.table = text(r, "tasks_table_name", v)?;
            Ok(())
        },
        show: Some(|r, c| r.to_symbol(&c.table).as_value()),
    },
    Opt {
        name: "consistency",
        read: |r, c, v| {
            let level = parse_consistency(&text(r, "consistency", v)?)
                .map_err(|e| errors::from_core(r, e))?;
            c.consistency = Level(level);
            Ok(())
        },
        show: Some(|r, c| r.to_symbol(consistency_name(c.consistency.0)).as_value()),
    },
    Opt {
        name: "request_timeout",
        read: |r, c, v| {
            c.request_timeout = seconds(r, "request_timeout", v)?;
            Ok(())
        },
        show: Some(|r, c| c.request_timeout.as_secs_f64().into_value_with(r)),
    },
    Opt {
        name: "connect_timeout",
        read: |r, c, v| {
            c.connection.connect_timeout = seconds(r, "connect_timeout", v)?;
            Ok(())
        },
        show: Some(|r, c| {
            c.connection
                .connect_timeout
                .as_secs_f64()
                .into_value_with(r)
        }),
    },
    Opt {
        name: "retry_deadline",
        read: |r, c, v| {
            c.retry_deadline = seconds(r, "retry_deadline", v)?;
            Ok(())
        },
        show: Some(|r, c| c.retry_deadline.as_secs_f64().into_value_with(r)),
    },
    Opt {
        name: "page_size",
        read: |r, c, v| {
            let n = args::integer_in(r, "page_size", v, 1, i32::MAX.into())?;
            c.page_size = i32::try_from(n).unwrap_or(i32::MAX); // checked above
            Ok(())
        },
        show: Some(|r, c| c.page_size.into_value_with(r)),
    },
    Opt {
        name: "local_datacenter",
        read: |r, c, v| {
            c.connection.local_datacenter = optional_text(r, "local_datacenter", v)?;
            Ok(())
        },
        show: Some(|r, c| c.connection.local_datacenter.as_deref().into_value_with(r)),
    },
    Opt {
        name: "slow_call",
        read: |r, c, v| {
            c.slow_call = if v.is_nil() {
                None
            } else {
                Some(seconds(r, "slow_call", v)?)
            };
            Ok(())
        },
        show: Some(|r, c| c.slow_call.map(|d| d.as_secs_f64()).into_value_with(r)),
    },
    Opt {
        name: "datacenter_failover",
        read: |r, c, v| {
            c.connection.datacenter_failover = args::boolean(r, "datacenter_failover", v)?;
            Ok(())
        },
        show: Some(|r, c| c.connection.datacenter_failover.into_value_with(r)),
    },
    Opt {
        name: "username",
        read: |r, c, v| {
            c.connection.username = optional_text(r, "username", v)?;
            Ok(())
        },
        show: Some(|r, c| c.connection.username.as_deref().into_value_with(r)),
    },
    Opt {
        name: "password",
        read: |r, c, v| {
            c.connection.password = optional_text(r, "password", v)?;
            Ok(())
        },
        show: None,
    },
    Opt {
        name: "tls",
        read: |r, c, v| {
            // Not Ruby truthiness: `tls: "false"` must not turn TLS on.
            c.connection.tls = if v.is_nil() || v.is_kind_of(r.class_false_class()) {
                false
            } else if v.is_kind_of(r.class_true_class()) {
                true
            } else {
                return Err(errors::argument(
                    r,
                    format!("tls must be true, false or nil, got {}", v.inspect()),
                ));
            };
            Ok(())
        },
        show: Some(|r, c| c.connection.tls.into_value_with(r)),
    },
    Opt {
        name: "default_ttl",
        read: |r, c, v| {
            c.default_ttl = default_ttl(r, v)?;
            Ok(())
        },
        show: Some(|r, c| c.default_ttl.map(|t| t.as_secs_f64()).into_value_with(r)),
    },
    Opt {
        name: "max_attempts",
        read: |r, c, v| {
            c.max_attempts = max_attempts(r, v)?;
            Ok(())
        },
        show: Some(|r, c| c.max_attempts.into_value_with(r)),
    },
    Opt {
        name: "serial_consistency",
        read: |r, c, v| {
            c.serial = match text(r, "serial_consistency", v)?
                .to_ascii_lowercase()
                .as_str()
            {
                "serial" => Serial::Serial,
                "local_serial" => Serial::LocalSerial,
                other => {
                    return Err(errors::argument(
                        r,
                        format!(
                            "serial_consistency must be :serial or :local_serial, got {other:?}"
                        ),
                    ))
                }
            };
            Ok(())
        },
        show: Some(|r, c| {
            r.to_symbol(match c.serial {
                Serial::Serial => "serial",
                Serial::LocalSerial => "local_serial",
            })
            .as_value()
        }),
    },
    Opt {
        name: "tls_ca_file",
        read: |r, c, v| {
            c.connection.tls_ca_file = optional_text(r, "tls_ca_file", v)?;
            Ok(())
        },
        show: Some(|r, c| c.connection.tls_ca_file.as_deref().into_value_with(r)),
    },
];

/// `default_ttl:`: seconds, or nil to keep tasks until they are completed.
pub fn default_ttl(ruby: &Ruby, v: Value) -> Result<Option<Duration>, Error> {
    if v.is_nil() {
        return Ok(None);
    }
    let ttl = seconds(ruby, "default_ttl", v)?;
    task_core::expiry::check_ttl("default_ttl", ttl).map_err(|e| errors::from_core(ruby, e))?;
    Ok(Some(ttl))
}

/// `max_attempts:`: a positive Integer, or nil for no limit.
pub fn max_attempts(ruby: &Ruby, v: Value) -> Result<Option<u32>, Error> {
    if v.is_nil() {
        return Ok(None);
    }
    let n = args::integer_in(ruby, "max_attempts", v, 1, u32::MAX.into())?;
    Ok(Some(u32::try_from(n).unwrap_or(u32::MAX))) // in range: checked above
}

pub fn text(ruby: &Ruby, name: &str, v: Value) -> Result<String, Error> {
    if let Some(s) = Symbol::from_value(v) {
        return Ok(s.name()?.into_owned());
    }
    match RString::from_value(v) {
        Some(s) => s.to_string(),
        None => Err(errors::argument(
            ruby,
            format!("{name} must be a String, got {}", v.inspect()),
        )),
    }
}

pub fn optional_text(ruby: &Ruby, name: &str, v: Value) -> Result<Option<String>, Error> {
    if v.is_nil() {
        Ok(None)
    } else {
        text(ruby, name, v).map(Some)
    }
}

pub fn seconds(ruby: &Ruby, name: &str, v: Value) -> Result<Duration, Error> {
    // An Integer or Float only: f64::try_convert would also take a Rational, and the
    // message should not suggest that a String of digits might do.
    let x = if let Some(f) = Float::from_value(v) {
        Some(f.to_f64())
    } else {
        Integer::from_value(v).and_then(|i| i.to_i64().ok().map(|n| n as f64))
    };
    let x = match x {
        Some(x) if x > 0.0 && x.is_finite() => x,
        _ => {
            return Err(errors::argument(
                ruby,
                format!(
                    "{name} must be a positive, finite Integer or Float of seconds, got {}",
                    v.inspect()
                ),
            ))
        }
    };
    // Duration::from_secs_f64 panics beyond its range; no wait needs to be this long.
    if x >= 1e9 {
        return Err(errors::argument(
            ruby,
            format!("{name} of {x} seconds is too long (at most 1e9)"),
        ));
    }
    Ok(Duration::from_secs_f64(x))
}

/// Reads `CassandraAdapter.new(hosts:, port:, ...)` options; unknown ones are an error.
/// `what` names the call in that error and `also_accepted` are further names the caller
/// reads itself (Interface.new's `:adapter`).
pub fn cassandra_config(
    ruby: &Ruby,
    opts: Option<RHash>,
    what: &str,
    also_accepted: &[&str],
) -> Result<CassandraConfig, Error> {
    let mut c = CassandraConfig::default();
    if let Some(opts) = opts {
        if opts.get(ruby.to_symbol("client")).is_some() {
            return Err(errors::argument(
                ruby,
                format!(
                    "{what} takes no client: (task_rb's Cassava client over the cassandra-driver \
                     gem); give it hosts:, port:, keyspace: (and credentials) and it connects by \
                     itself: see README.md, \"Migrating from task_rb\""
                ),
            ));
        }
        read(ruby, opts, what, also_accepted, CASSANDRA, &mut c)?;
    }
    c.validated().map_err(|e| errors::from_core(ruby, e))
}

/// The options of a Cassandra config, as `CassandraAdapter.new` takes them (the password left
/// out).
pub fn cassandra_shown(ruby: &Ruby, c: &CassandraConfig) -> Result<RHash, Error> {
    shown(ruby, c, CASSANDRA)
}
