//! `monitor_cond_change` requests decoded straight from their bytes into
//! [`RawRequests`], without a JSON tree (see `db::raw_condition` for why).
//!
//! Only a request of the plain shape is taken: exactly `id` (not null),
//! `method` and `params` members, no duplicate member, no number with a
//! fraction or exponent, each table's requests an array of `{}` or
//! `{"where": [...]}`, and clause arguments that are strings, integers,
//! booleans or arrays (`["uuid", U]`, `["set", ...]`, ...). Anything else
//! gives `None` and the request goes the ordinary way, which gives
//! ovsdb-server's answer to every malformed request.

use crate::codec::condition::ConditionSeed;
use crate::codec::envelope::{names_method, Envelope};
use crate::codec::framing::Frame;
use crate::db::raw_condition::{RawRequests, RawTableRequest};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::fmt;

/// A `monitor_cond_change` request, decoded.
#[derive(Debug)]
pub struct CondChange {
    /// The request id.
    pub id: Value,
    /// The monitor's current id.
    pub monitor_id: Value,
    /// Its new id.
    pub new_monitor_id: Value,
    /// The new conditions.
    pub requests: RawRequests,
}

/// The request in `frame`, if it is a `monitor_cond_change` of the plain
/// shape; `None` for every other message.
pub fn decode(frame: &Frame) -> Option<CondChange> {
    if frame.has_real {
        return None;
    }
    if !names_method(&frame.text, b"\"monitor_cond_change\"") {
        return None;
    }
    let env: Envelope = serde_json::from_str(frame.as_str().ok()?).ok()?;
    if env.method != "monitor_cond_change" || env.id.is_null() {
        return None;
    }
    let (monitor_id, new_monitor_id, Requests(requests)) =
        serde_json::from_str::<(Value, Value, Requests)>(env.params.get()).ok()?;
    Some(CondChange {
        id: env.id,
        monitor_id,
        new_monitor_id,
        requests,
    })
}

/// `<monitor-cond-change-requests>`.
struct Requests(RawRequests);

impl<'de> Deserialize<'de> for Requests {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Requests;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of tables")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Requests, A::Error> {
                let mut tables: Vec<(String, Vec<RawTableRequest>)> = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    if tables.iter().any(|(t, _)| *t == name) {
                        return Err(de::Error::custom("duplicate table"));
                    }
                    let reqs: Vec<TableRequest> = map.next_value()?;
                    tables.push((name, reqs.into_iter().map(|r| r.0).collect()));
                }
                Ok(Requests(RawRequests { tables }))
            }
        }
        d.deserialize_map(V)
    }
}

/// `{}` or `{"where": [...]}`.
struct TableRequest(RawTableRequest);

impl<'de> Deserialize<'de> for TableRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TableRequest;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a monitor-cond-change request")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TableRequest, A::Error> {
                let mut condition = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key != "where" || condition.is_some() {
                        return Err(de::Error::custom("not a plain request"));
                    }
                    condition = Some(map.next_value_seed(ConditionSeed)?);
                }
                Ok(TableRequest(RawTableRequest { condition }))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::raw_condition::{RawArg, RawClause};
    use bytes::Bytes;
    use serde_json::json;

    fn frame(v: &Value) -> Frame {
        Frame {
            text: Bytes::from(serde_json::to_vec(v).expect("json")),
            has_real: false,
        }
    }

    fn text(s: &str) -> Frame {
        Frame {
            text: Bytes::copy_from_slice(s.as_bytes()),
            has_real: false,
        }
    }

    #[test]
    fn plain_requests_come_back_as_sent() {
        let requests = json!({
            "Port_Binding": [{"where": [
                ["datapath", "==", ["uuid", "01234567-89ab-cdef-0123-456789abcdef"]],
                ["datapath", "==", ["uuid", "01234567-89AB-cdef-0123-456789abcdef"]],
                ["logical_port", "==", "lp1"],
                ["type", "includes", ["set", ["a", "b"]]],
                true,
            ]}],
            "Chassis": [{}],
            "Encap": [{"where": []}, {"where": [false]}],
        });
        let msg = json!({"id": 7, "method": "monitor_cond_change",
                         "params": [["m", 1], "m2", requests]});
        let c = decode(&frame(&msg)).expect("plain");
        assert_eq!(c.id, json!(7));
        assert_eq!(c.monitor_id, json!(["m", 1]));
        assert_eq!(c.new_monitor_id, json!("m2"));
        assert_eq!(c.requests.to_json(), requests);
        let pb = &c
            .requests
            .tables
            .iter()
            .find(|(t, _)| t == "Port_Binding")
            .expect("pb")
            .1;
        let cond = pb[0].condition.as_ref().expect("where");
        assert_eq!(cond.names, vec!["datapath", "logical_port", "type"]);
        assert!(matches!(
            cond.clauses[0],
            RawClause::Compare {
                arg: RawArg::Uuid(_),
                ..
            }
        ));
        // Upper case is kept as sent.
        assert!(matches!(
            cond.clauses[1],
            RawClause::Compare {
                arg: RawArg::Json(_),
                ..
            }
        ));
    }

    #[test]
    fn other_messages_and_odd_shapes_go_the_ordinary_way() {
        let ok = r#"{"id":1,"method":"monitor_cond_change","params":[1,2,{"T":[{"where":[["c","==","x"]]}]}]}"#;
        assert!(decode(&text(ok)).is_some());
        let int = r#"{"id":1,"method":"monitor_cond_change","params":[1,2,{"T":[{"where":[["c","<",-1],["d","==",7]]}]}]}"#;
        let c = decode(&text(int)).expect("integer arguments");
        assert_eq!(
            c.requests.to_json(),
            json!({"T": [{"where": [["c", "<", -1], ["d", "==", 7]]}]})
        );
        for s in [
            // Not this method, or a notification.
            r#"{"id":1,"method":"transact","params":["monitor_cond_change"]}"#,
            r#"{"id":null,"method":"monitor_cond_change","params":[1,2,{}]}"#,
            // Extra, missing or duplicate members.
            r#"{"id":1,"method":"monitor_cond_change","params":[1,2,{}],"x":1}"#,
            r#"{"method":"monitor_cond_change","params":[1,2,{}]}"#,
            r#"{"id":1,"id":2,"method":"monitor_cond_change","params":[1,2,{}]}"#,
            // Wrong parameter counts or shapes.
            r#"{"id":1,"method":"monitor_cond_change","params":[1,2]}"#,
            r#"{"id":1,"method":"monitor_cond_change","params":[1,2,{},3]}"#,
            r#"{"id":1,"method":"monitor_cond_change","params":[1,2,[]]}"#,
            r#"{"id":1,"method":"monitor_cond_change","params":[1,2,{"T":{"where":[]}}]}"#,
            r#"{"id":1,"method":"monitor_cond_change","params":[1,2,{"T":[{"columns":[]}]}]}"#,
            r#"{"id":1,"method":"monitor_cond_change","params":[1,2,{"T":[{"where":null}]}]}"#,
            r#"{"id":1,"method":"monitor_cond_change","params":[1,2,{"T":[],"T":[]}]}"#,
            // Clauses it leaves to the ordinary parser.
            r#"{"id":1,"method":"monitor_cond_change","params":[1,2,{"T":[{"where":[["c","~","x"]]}]}]}"#,
            r#"{"id":1,"method":"monitor_cond_change","params":[1,2,{"T":[{"where":[["c","==",{}]]}]}]}"#,
            r#"{"id":1,"method":"monitor_cond_change","params":[1,2,{"T":[{"where":[["c","=="]]}]}]}"#,
            r#"{"id":1,"method":"monitor_cond_change","params":[1,2,{"T":[{"where":[["c","==","x",1]]}]}]}"#,
            r#"{"id":1,"method":"monitor_cond_change","params":[1,2,{"T":[{"where":[null]}]}]}"#,
        ] {
            assert!(decode(&text(s)).is_none(), "{s}");
        }
        // The method is found however the members are spaced or ordered
        // before the params.
        let spaced = r#"{ "method" : "monitor_cond_change", "id": 1, "params": [1, 2, {}] }"#;
        assert!(decode(&text(spaced)).is_some());
        const CC: &[u8] = b"\"monitor_cond_change\"";
        assert!(!names_method(
            br#"{"id":1,"method":"transact","params":[]}"#,
            CC
        ));
        assert!(!names_method(br#"{"id":"\"method\"","#, CC));
        let mut real = text(ok);
        real.has_real = true;
        assert!(decode(&real).is_none());
    }
}
