//! The per-remote settings ovsdb-server takes from a Connection-like row
//! (`max_backoff`, `inactivity_probe`, `read_only`, `role`,
//! `other_config:dscp`): how a remote's sessions behave.

use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// How a remote's connections are served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteOptions {
    /// Longest wait between reconnection attempts (active remotes); `None`: 8 s.
    pub max_backoff: Option<Duration>,
    /// The inactivity probe: `None` uses the server's default for the
    /// remote's kind, `Some(None)` (a row's 0) disables it.
    pub inactivity_probe: Option<Option<Duration>>,
    /// Only read operations allowed.
    pub read_only: bool,
    /// The RBAC role of the remote's sessions (`None`: unset or empty).
    pub role: Option<Arc<str>>,
    /// The DSCP of its TCP traffic: a row's `other_config:dscp`, else
    /// [`crate::remote::dscp::DSCP_DEFAULT`]; 0 for a remote given
    /// directly (ovsdb-server 3.1's default options).
    pub dscp: u8,
}

/// The single atom of an optional scalar column in OVSDB's JSON notation
/// (`x`, or `["set", [x]]`; `["set", []]` is none).
fn scalar(v: Option<&Value>) -> Option<&Value> {
    match v? {
        Value::Array(a) if a.first().and_then(Value::as_str) == Some("set") => {
            a.get(1)?.as_array()?.first()
        }
        other => Some(other),
    }
}

impl RemoteOptions {
    /// The target and options of a Connection-like row (as `select`
    /// returns it); `None` without a string `target`.
    pub fn from_row(row: &Map<String, Value>) -> Option<(String, RemoteOptions)> {
        let target = scalar(row.get("target"))?.as_str()?.to_string();
        let ms = |name: &str| {
            scalar(row.get(name))
                .and_then(Value::as_i64)
                .map(|v| Duration::from_millis(v.max(0) as u64))
        };
        let options = RemoteOptions {
            max_backoff: ms("max_backoff"),
            inactivity_probe: ms("inactivity_probe").map(|d| (!d.is_zero()).then_some(d)),
            read_only: scalar(row.get("read_only"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
            role: scalar(row.get("role"))
                .and_then(Value::as_str)
                .filter(|r| !r.is_empty())
                .map(Arc::from),
            dscp: crate::remote::dscp::parse(map_value(row.get("other_config"), "dscp")),
        };
        Some((target, options))
    }
}

/// The value of `key` in a string-to-string map column value (`["map", [[k, v], ...]]`).
fn map_value<'a>(v: Option<&'a Value>, key: &str) -> Option<&'a str> {
    let pairs = v?.as_array()?.get(1)?.as_array()?;
    pairs.iter().find_map(|p| {
        let p = p.as_array()?;
        (p.first()?.as_str()? == key).then(|| p.get(1)?.as_str())?
    })
}

/// The strings of a string or set-of-strings column value.
pub fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) if a.first().and_then(Value::as_str) == Some("set") => a
            .get(1)
            .and_then(Value::as_array)
            .map(|xs| {
                xs.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The UUIDs of a uuid or set-of-uuids column value.
pub fn uuids(v: Option<&Value>) -> Vec<String> {
    let one = |x: &Value| -> Option<String> {
        let a = x.as_array()?;
        (a.first()?.as_str()? == "uuid").then(|| a.get(1)?.as_str().map(str::to_string))?
    };
    match v {
        Some(Value::Array(a)) if a.first().and_then(Value::as_str) == Some("set") => a
            .get(1)
            .and_then(Value::as_array)
            .map(|xs| xs.iter().filter_map(one).collect())
            .unwrap_or_default(),
        Some(x) => one(x).into_iter().collect(),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_connection_row() {
        let row = json!({"target": "pssl:6642", "max_backoff": ["set", []],
            "inactivity_probe": 0, "read_only": true, "role": "ovn-controller"});
        let (t, o) = RemoteOptions::from_row(row.as_object().unwrap()).unwrap();
        assert_eq!(t, "pssl:6642");
        assert_eq!(o.max_backoff, None);
        assert_eq!(o.inactivity_probe, Some(None));
        assert!(o.read_only);
        assert_eq!(o.role.as_deref(), Some("ovn-controller"));
        assert_eq!(o.dscp, crate::remote::dscp::DSCP_DEFAULT);
        let row =
            json!({"target": "ptcp:1", "other_config": ["map", [["a", "b"], ["dscp", "10"]]]});
        let (_, o) = RemoteOptions::from_row(row.as_object().unwrap()).unwrap();
        assert_eq!(o.dscp, 10);
        let row = json!({"target": "ptcp:1", "role": "", "max_backoff": ["set", [3000]]});
        let (_, o) = RemoteOptions::from_row(row.as_object().unwrap()).unwrap();
        assert_eq!(o.role, None);
        assert_eq!(o.max_backoff, Some(Duration::from_secs(3)));
    }

    #[test]
    fn column_values() {
        assert_eq!(strings(Some(&json!("a"))), ["a"]);
        assert_eq!(strings(Some(&json!(["set", ["a", "b"]]))), ["a", "b"]);
        assert_eq!(uuids(Some(&json!(["uuid", "u1"]))), ["u1"]);
        assert_eq!(
            uuids(Some(&json!(["set", [["uuid", "u1"], ["uuid", "u2"]]]))),
            ["u1", "u2"]
        );
        assert!(uuids(Some(&json!(["set", []]))).is_empty());
    }
}
