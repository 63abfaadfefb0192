//! JSON-RPC 1.0 messages as Open vSwitch's lib/jsonrpc.c defines them.
//!
//! A message is a JSON object with some of the members `method`, `params`,
//! `result`, `error` and `id`; a member whose value is `null` counts as
//! absent. Its type follows from which are present (`result`: reply, else
//! `error`: error, else `id`: request, else notification), and each type
//! requires some members and forbids the others:
//!
//! | type         | method | params (array) | result | error | id  |
//! |--------------|--------|----------------|--------|-------|-----|
//! | request      | yes    | yes            | no     | no    | yes |
//! | notification | yes    | yes            | no     | no    | no  |
//! | reply        | no     | no             | yes    | no    | yes |
//! | error        | no     | no             | no     | yes   | yes |
//!
//! [`Message::from_json`] applies exactly these rules, in lib/jsonrpc.c's
//! order, and its [`JsonRpcError`] carries the text ovsdb-server logs
//! (`received bad JSON-RPC message: <text>`) before it drops the connection.
//!
//! On output, ovsdb-server writes its envelopes with members in this order
//! (its hash order; clients do not depend on it, but [`Message::write`]
//! reproduces it so that captures compare byte for byte):
//!
//! ```text
//! request       {"id":<id>,"method":"<m>","params":<p>}
//! notification  {"id":null,"method":"<m>","params":<p>}
//! reply         {"id":<id>,"result":<r>,"error":null}
//! error         {"id":<id>,"error":<e>}          (no "result" member)
//! ```

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Map, Value};
use std::fmt;

use super::framing::{json_len_hint, write_json, write_str};

/// The four kinds of JSON-RPC message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// Has `method`, `params` and a non-null `id`.
    Request,
    /// Has `method` and `params`; `id` null or absent.
    Notification,
    /// Has a non-null `result` and `id`.
    Reply,
    /// Has a non-null `error` and `id`.
    Error,
}

impl MessageKind {
    /// The name lib/jsonrpc.c uses in its messages.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Request => "request",
            MessageKind::Notification => "notification",
            MessageKind::Reply => "reply",
            MessageKind::Error => "error",
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a JSON value is not a valid JSON-RPC message. The `Display` text is
/// exactly what ovsdb-server 3.1 logs after "received bad JSON-RPC message: ";
/// ovsdb-server then drops the connection without a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonRpcError {
    /// The value is not an object (e.g. a top-level array).
    #[error("message is not a JSON object")]
    NotObject,
    /// `method` is present but not a string (`null` included).
    #[error("method is not a JSON string")]
    MethodNotString,
    /// A member other than the five. When there are several, ovsdb-server
    /// names the first in its hash order; this names the first in the map's
    /// order.
    #[error("message has unexpected member \"{0}\"")]
    UnexpectedMember(String),
    /// `params` is present and not an array.
    #[error("\"params\" must be JSON array")]
    ParamsNotArray,
    /// A member required for the message's type is missing (null counts as missing).
    #[error("{kind} must have \"{member}\"")]
    Missing {
        /// The type the message was taken for.
        kind: MessageKind,
        /// The member.
        member: &'static str,
    },
    /// A member forbidden for the message's type is present.
    #[error("{kind} must not have \"{member}\"")]
    Forbidden {
        /// The type the message was taken for.
        kind: MessageKind,
        /// The member.
        member: &'static str,
    },
}

/// A JSON-RPC 1.0 message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request: expects a reply or an error with the same id.
    Request {
        /// The method.
        method: String,
        /// The parameters: always a JSON array when parsed.
        params: Value,
        /// The id: any non-null JSON value.
        id: Value,
    },
    /// A notification (`id` null or absent): expects nothing back.
    Notification {
        /// The method.
        method: String,
        /// The parameters: always a JSON array when parsed.
        params: Value,
    },
    /// A successful reply.
    Reply {
        /// The result: never null when parsed.
        result: Value,
        /// The id of the request replied to.
        id: Value,
    },
    /// An error reply.
    Error {
        /// The error: never null when parsed.
        error: Value,
        /// The id of the request replied to.
        id: Value,
    },
}

fn non_null(v: Option<Value>) -> Option<Value> {
    v.filter(|v| !v.is_null())
}

impl Message {
    /// A request.
    pub fn request(method: impl Into<String>, params: Value, id: Value) -> Message {
        Message::Request {
            method: method.into(),
            params,
            id,
        }
    }

    /// A notification.
    pub fn notification(method: impl Into<String>, params: Value) -> Message {
        Message::Notification {
            method: method.into(),
            params,
        }
    }

    /// A reply to the request with id `id`.
    pub fn reply(id: Value, result: Value) -> Message {
        Message::Reply { result, id }
    }

    /// An error reply to the request with id `id`.
    pub fn error(id: Value, error: Value) -> Message {
        Message::Error { error, id }
    }

    /// The message's kind.
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Request { .. } => MessageKind::Request,
            Message::Notification { .. } => MessageKind::Notification,
            Message::Reply { .. } => MessageKind::Reply,
            Message::Error { .. } => MessageKind::Error,
        }
    }

    /// The method, for requests and notifications.
    pub fn method(&self) -> Option<&str> {
        match self {
            Message::Request { method, .. } | Message::Notification { method, .. } => Some(method),
            _ => None,
        }
    }

    /// The id; `None` for notifications.
    pub fn id(&self) -> Option<&Value> {
        match self {
            Message::Request { id, .. } | Message::Reply { id, .. } | Message::Error { id, .. } => {
                Some(id)
            }
            Message::Notification { .. } => None,
        }
    }

    /// Whether this is the reply to ovsdb-server's own inactivity probe: a
    /// *reply* (not an error) whose id is the string `"echo"`. ovsdb-server
    /// (lib/jsonrpc.c, `jsonrpc_session_recv`) drops such a reply silently,
    /// whether or not it sent a probe; any other reply or error it receives
    /// is "unexpected" and drops the connection.
    pub fn is_echo_reply(&self) -> bool {
        matches!(self, Message::Reply { id: Value::String(s), .. } if s == "echo")
    }

    /// Parses a received JSON value with lib/jsonrpc.c's rules
    /// (`jsonrpc_msg_from_json` and `jsonrpc_msg_is_valid`), checked in
    /// their order: not an object; `method` not a string; members other than
    /// the five; `params` not an array; then, for the type the present
    /// members imply, a missing or forbidden `method`, `params`, `result`,
    /// `error`, `id`, in that order. Null members count as absent.
    pub fn from_json(v: Value) -> Result<Message, JsonRpcError> {
        let Value::Object(mut obj) = v else {
            return Err(JsonRpcError::NotObject);
        };
        let method = match obj.remove("method") {
            None => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => return Err(JsonRpcError::MethodNotString),
        };
        let params = non_null(obj.remove("params"));
        let result = non_null(obj.remove("result"));
        let error = non_null(obj.remove("error"));
        let id = non_null(obj.remove("id"));
        let kind = if result.is_some() {
            MessageKind::Reply
        } else if error.is_some() {
            MessageKind::Error
        } else if id.is_some() {
            MessageKind::Request
        } else {
            MessageKind::Notification
        };
        if let Some(name) = obj.keys().next() {
            return Err(JsonRpcError::UnexpectedMember(name.clone()));
        }
        if params.as_ref().is_some_and(|p| !p.is_array()) {
            return Err(JsonRpcError::ParamsNotArray);
        }

        // Which members the type requires: method, params, result, error, id.
        let pattern = match kind {
            MessageKind::Request => [true, true, false, false, true],
            MessageKind::Notification => [true, true, false, false, false],
            MessageKind::Reply => [false, false, true, false, true],
            MessageKind::Error => [false, false, false, true, true],
        };
        let present = [
            method.is_some(),
            params.is_some(),
            result.is_some(),
            error.is_some(),
            id.is_some(),
        ];
        const NAMES: [&str; 5] = ["method", "params", "result", "error", "id"];
        for i in 0..5 {
            if present[i] != pattern[i] {
                let member = NAMES[i];
                return Err(if pattern[i] {
                    JsonRpcError::Missing { kind, member }
                } else {
                    JsonRpcError::Forbidden { kind, member }
                });
            }
        }

        // The checks above guarantee that each unwrap below has a value.
        Ok(match kind {
            MessageKind::Request => Message::Request {
                method: method.unwrap_or_default(),
                params: params.unwrap_or_default(),
                id: id.unwrap_or_default(),
            },
            MessageKind::Notification => Message::Notification {
                method: method.unwrap_or_default(),
                params: params.unwrap_or_default(),
            },
            MessageKind::Reply => Message::Reply {
                result: result.unwrap_or_default(),
                id: id.unwrap_or_default(),
            },
            MessageKind::Error => Message::Error {
                error: error.unwrap_or_default(),
                id: id.unwrap_or_default(),
            },
        })
    }

    /// The message as a JSON object with the members ovsdb-server writes
    /// (`jsonrpc_msg_to_json`): notifications get `"id":null`, replies
    /// `"error":null`, and errors have no `result` member.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        match self {
            Message::Request { method, params, id } => {
                m.insert("id".into(), id.clone());
                m.insert("method".into(), Value::String(method.clone()));
                m.insert("params".into(), params.clone());
            }
            Message::Notification { method, params } => {
                m.insert("id".into(), Value::Null);
                m.insert("method".into(), Value::String(method.clone()));
                m.insert("params".into(), params.clone());
            }
            Message::Reply { result, id } => {
                m.insert("id".into(), id.clone());
                m.insert("result".into(), result.clone());
                m.insert("error".into(), Value::Null);
            }
            Message::Error { error, id } => {
                m.insert("id".into(), id.clone());
                m.insert("error".into(), error.clone());
            }
        }
        Value::Object(m)
    }

    /// Appends the message to `out` as ovsdb-server writes it: compact, with
    /// its member order (see the module documentation).
    pub fn write(&self, out: &mut BytesMut) {
        match self {
            Message::Request { method, params, id } => {
                out.extend_from_slice(b"{\"id\":");
                write_json(id, out);
                out.extend_from_slice(b",\"method\":");
                write_str(method, out);
                out.extend_from_slice(b",\"params\":");
                write_json(params, out);
                out.put_u8(b'}');
            }
            Message::Notification { method, params } => {
                out.extend_from_slice(b"{\"id\":null,\"method\":");
                write_str(method, out);
                out.extend_from_slice(b",\"params\":");
                write_json(params, out);
                out.put_u8(b'}');
            }
            Message::Reply { result, id } => {
                out.extend_from_slice(b"{\"id\":");
                write_json(id, out);
                out.extend_from_slice(b",\"result\":");
                write_json(result, out);
                out.extend_from_slice(b",\"error\":null}");
            }
            Message::Error { error, id } => {
                out.extend_from_slice(b"{\"id\":");
                write_json(id, out);
                out.extend_from_slice(b",\"error\":");
                write_json(error, out);
                out.put_u8(b'}');
            }
        }
    }

    /// The message encoded as ovsdb-server writes it.
    pub fn encode(&self) -> Bytes {
        let payload = match self {
            Message::Request { params, .. } | Message::Notification { params, .. } => params,
            Message::Reply { result, .. } => result,
            Message::Error { error, .. } => error,
        };
        // Sized once: a small transaction's reply fits in the 256 bytes
        // floor, a thousand-row one without regrowing.
        let mut out = BytesMut::with_capacity(json_len_hint(payload).max(192) + 64);
        self.write(&mut out);
        out.freeze()
    }
}

impl From<Message> for Value {
    fn from(m: Message) -> Value {
        m.to_json()
    }
}

impl TryFrom<Value> for Message {
    type Error = JsonRpcError;

    fn try_from(v: Value) -> Result<Message, JsonRpcError> {
        Message::from_json(v)
    }
}

/// Builds a reply `{"id":<id>,"result":<result>,"error":null}` around a result
/// encoded beforehand (e.g. a cached schema), without re-encoding it.
/// `result` must be one complete JSON value.
pub fn reply_bytes(id: &Value, result: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(result.len() + 32);
    begin_reply(id, &mut out);
    out.extend_from_slice(result);
    end_reply(&mut out);
    out.freeze()
}

/// Appends `{"id":<id>,"result":` to `out`: a result written next, then
/// [`end_reply`], makes a whole reply without copying the result into an
/// envelope afterwards (a 100,000-row initial reply is tens of MiB).
pub fn begin_reply(id: &Value, out: &mut BytesMut) {
    out.extend_from_slice(b"{\"id\":");
    write_json(id, out);
    out.extend_from_slice(b",\"result\":");
}

/// Ends a reply begun with [`begin_reply`].
pub fn end_reply(out: &mut BytesMut) {
    out.extend_from_slice(b",\"error\":null}");
}

/// Appends a notification `{"id":null,"method":"<method>","params":[<head>...,<body>]}`
/// whose last parameter, `body`, was encoded beforehand: the monitor fan-out
/// encodes a table-updates body once and wraps it for each session.
pub fn write_notification_raw(out: &mut BytesMut, method: &str, head: &[&Value], body: &[u8]) {
    out.reserve(body.len() + method.len() + 64);
    out.extend_from_slice(b"{\"id\":null,\"method\":");
    write_str(method, out);
    out.extend_from_slice(b",\"params\":[");
    for v in head {
        write_json(v, out);
        out.put_u8(b',');
    }
    out.extend_from_slice(body);
    out.extend_from_slice(b"]}");
}

/// `{"id":null,"method":"<method>","params":[<monitor_id>,<body>]}`: an
/// `update` (monitor) or `update2` (monitor_cond) notification around a body
/// encoded once. `body` must be one complete JSON value.
pub fn notification_bytes(method: &str, monitor_id: &Value, body: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    write_notification_raw(&mut out, method, &[monitor_id], body);
    out.freeze()
}

/// `{"id":null,"method":"update3","params":[<monitor_id>,"<last_txn_id>",<body>]}`:
/// a monitor_cond_since notification around a body encoded once.
pub fn update3_bytes(monitor_id: &Value, last_txn_id: &str, body: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    let txn = Value::String(last_txn_id.to_owned());
    write_notification_raw(&mut out, "update3", &[monitor_id, &txn], body);
    out.freeze()
}

/// A monitor notification (`update`, `update2` or `update3`) around a body
/// encoded once and shared (cheaply cloned [`Bytes`]) by every session of a
/// monitor. Sent through [`super::JsonCodec`], it is written straight into
/// the connection's output buffer: the body is copied once per session and
/// never re-encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateNotification {
    /// `"update"`, `"update2"` or `"update3"`.
    pub method: &'static str,
    /// The monitor id the client chose (any JSON value).
    pub monitor_id: Value,
    /// For `update3`: the last transaction id, a UUID string.
    pub last_txn_id: Option<String>,
    /// The table-updates object, encoded.
    pub body: Bytes,
}

impl UpdateNotification {
    /// Appends the notification to `out`.
    pub fn write(&self, out: &mut BytesMut) {
        match &self.last_txn_id {
            Some(txn) => {
                let txn = Value::String(txn.clone());
                write_notification_raw(out, self.method, &[&self.monitor_id, &txn], &self.body)
            }
            None => write_notification_raw(out, self.method, &[&self.monitor_id], &self.body),
        }
    }

    /// The notification, encoded.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.body.len() + 64);
        self.write(&mut out);
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::framing::{encode_message, JsonCodec};
    use proptest::prelude::*;
    use serde_json::json;
    use tokio_util::codec::Decoder;

    fn err(v: Value) -> String {
        Message::from_json(v).unwrap_err().to_string()
    }

    fn s(b: Bytes) -> String {
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[test]
    fn parses_the_four_kinds() {
        assert_eq!(
            Message::from_json(json!({"method":"echo","params":[1],"id":"x"})).unwrap(),
            Message::request("echo", json!([1]), json!("x"))
        );
        assert_eq!(
            Message::from_json(json!({"method":"update","params":[],"id":null})).unwrap(),
            Message::notification("update", json!([]))
        );
        assert_eq!(
            Message::from_json(json!({"method":"update","params":[]})).unwrap(),
            Message::notification("update", json!([]))
        );
        assert_eq!(
            Message::from_json(json!({"result":{},"error":null,"id":3})).unwrap(),
            Message::reply(json!(3), json!({}))
        );
        assert_eq!(
            Message::from_json(json!({"result":null,"error":"boom","id":3})).unwrap(),
            Message::error(json!(3), json!("boom"))
        );
        assert_eq!(
            Message::from_json(json!({"error":"boom","id":[1,{"a":2}]})).unwrap(),
            Message::error(json!([1, {"a": 2}]), json!("boom"))
        );
    }

    /// Each text below is what ovsdb-server 3.1 logged ("received bad JSON-RPC
    /// message: ...") for the same input before dropping the connection.
    #[test]
    fn rejections_match_ovsdb_server() {
        assert_eq!(err(json!([1, 2])), "message is not a JSON object");
        assert_eq!(
            err(json!({"method":5,"params":[],"id":1})),
            "method is not a JSON string"
        );
        assert_eq!(
            err(json!({"method":null,"params":[],"id":1})),
            "method is not a JSON string"
        );
        assert_eq!(
            err(json!({"method":"echo","params":[],"id":1,"extra":2})),
            "message has unexpected member \"extra\""
        );
        assert_eq!(
            err(json!({"method":"echo","params":{},"id":1})),
            "\"params\" must be JSON array"
        );
        assert_eq!(
            err(json!({"method":"echo","params":5,"id":1})),
            "\"params\" must be JSON array"
        );
        assert_eq!(
            err(json!({"method":"echo","params":{"a":1},"id":null})),
            "\"params\" must be JSON array"
        );
        assert_eq!(
            err(json!({"method":"echo","params":null,"id":1})),
            "request must have \"params\""
        );
        assert_eq!(
            err(json!({"method":"echo","id":1})),
            "request must have \"params\""
        );
        assert_eq!(
            err(json!({"params":[],"id":1})),
            "request must have \"method\""
        );
        assert_eq!(err(json!({})), "notification must have \"method\"");
        assert_eq!(
            err(json!({"result":1,"error":"x","id":1})),
            "reply must not have \"error\""
        );
        assert_eq!(
            err(json!({"result":null,"error":null,"id":1})),
            "request must have \"method\""
        );
        assert_eq!(err(json!({"result":1})), "reply must have \"id\"");
        assert_eq!(err(json!({"error":1})), "error must have \"id\"");
        assert_eq!(
            err(json!({"method":"x","params":[],"result":1,"id":1})),
            "reply must not have \"method\""
        );
        assert_eq!(
            err(json!({"params":[],"result":1,"id":1})),
            "reply must not have \"params\""
        );
        assert_eq!(
            err(json!({"method":"x","params":[],"error":1,"id":1})),
            "error must not have \"method\""
        );
    }

    #[test]
    fn envelopes_as_ovsdb_server_writes_them() {
        // All four captured from ovsdb-server 3.1.
        assert_eq!(
            s(Message::reply(json!(1), json!([1, 2.0, 0.1, 1e300])).encode()),
            r#"{"id":1,"result":[1,2,0.1,1e+300],"error":null}"#
        );
        assert_eq!(
            s(Message::error(json!(1), json!("unknown method")).encode()),
            r#"{"id":1,"error":"unknown method"}"#
        );
        assert_eq!(
            s(Message::request("echo", json!([]), json!("echo")).encode()),
            r#"{"id":"echo","method":"echo","params":[]}"#
        );
        assert_eq!(
            s(Message::notification("update2", json!(["m1", {}])).encode()),
            r#"{"id":null,"method":"update2","params":["m1",{}]}"#
        );
    }

    #[test]
    fn to_json_members() {
        assert_eq!(
            Message::error(json!(1), json!("unknown method")).to_json(),
            json!({"id":1,"error":"unknown method"})
        );
        assert_eq!(
            Message::reply(json!(1), json!([])).to_json(),
            json!({"id":1,"result":[],"error":null})
        );
        assert_eq!(
            Message::notification("locked", json!(["L"])).to_json(),
            json!({"id":null,"method":"locked","params":["L"]})
        );
    }

    #[test]
    fn pre_encoded_notifications() {
        let body = encode_message(
            &json!({"NB_Global":{"1aff35b7-654f-4117-8460-dcdfc7f62ac5":{"insert":{"name":"x\u{1}y"}}}}),
        );
        // As captured from ovsdb-server 3.1.
        assert_eq!(
            s(notification_bytes("update2", &json!("m1"), &body)),
            r#"{"id":null,"method":"update2","params":["m1",{"NB_Global":{"1aff35b7-654f-4117-8460-dcdfc7f62ac5":{"insert":{"name":"x\u0001y"}}}}]}"#
        );
        assert_eq!(
            s(update3_bytes(
                &json!("m2"),
                "00000000-0000-0000-0000-000000000000",
                &body
            )),
            r#"{"id":null,"method":"update3","params":["m2","00000000-0000-0000-0000-000000000000",{"NB_Global":{"1aff35b7-654f-4117-8460-dcdfc7f62ac5":{"insert":{"name":"x\u0001y"}}}}]}"#
        );
        // The same through the codec, and as a Message: identical bytes.
        let n = UpdateNotification {
            method: "update3",
            monitor_id: json!(["a", 1]),
            last_txn_id: Some("t".into()),
            body: body.clone(),
        };
        let mut out = BytesMut::new();
        tokio_util::codec::Encoder::encode(&mut JsonCodec::new(), &n, &mut out).unwrap();
        let as_message = Message::notification(
            "update3",
            json!([
                ["a", 1],
                "t",
                serde_json::from_slice::<Value>(&body).unwrap()
            ]),
        );
        assert_eq!(out.freeze(), as_message.encode());
        assert_eq!(n.encode(), as_message.encode());
        // And it parses back as a notification.
        let mut codec = JsonCodec::new();
        let mut buf = BytesMut::from(&n.encode()[..]);
        let v = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(Message::from_json(v).unwrap(), as_message);
    }

    #[test]
    fn reply_around_pre_encoded_result() {
        assert_eq!(
            s(reply_bytes(&json!(7), br#"{"name":"x"}"#)),
            r#"{"id":7,"result":{"name":"x"},"error":null}"#
        );
        assert_eq!(
            reply_bytes(&json!("q"), br#"[1,"a"]"#),
            Message::reply(json!("q"), json!([1, "a"])).encode()
        );
    }

    #[test]
    fn echo_reply_detection() {
        assert!(Message::reply(json!("echo"), json!([])).is_echo_reply());
        assert!(!Message::error(json!("echo"), json!("x")).is_echo_reply());
        assert!(!Message::reply(json!(1), json!([])).is_echo_reply());
    }

    fn arb_leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[a-z\"\\\\{}]{0,8}".prop_map(Value::String),
        ]
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        prop_oneof![Just(Value::Null), arb_leaf()].prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,5}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn arb_non_null() -> impl Strategy<Value = Value> {
        arb_json().prop_filter("non-null", |v| !v.is_null())
    }

    fn arb_params() -> impl Strategy<Value = Value> {
        prop::collection::vec(arb_json(), 0..4).prop_map(Value::Array)
    }

    fn arb_msg() -> impl Strategy<Value = Message> {
        prop_oneof![
            ("[a-z_]{1,10}", arb_params(), arb_non_null())
                .prop_map(|(m, p, i)| Message::request(m, p, i)),
            ("[a-z_]{1,10}", arb_params()).prop_map(|(m, p)| Message::notification(m, p)),
            (arb_non_null(), arb_non_null()).prop_map(|(i, r)| Message::reply(i, r)),
            (arb_non_null(), arb_non_null()).prop_map(|(i, e)| Message::error(i, e)),
        ]
    }

    proptest! {
        #[test]
        fn message_round_trips(m in arb_msg()) {
            prop_assert_eq!(Message::from_json(m.to_json()).unwrap(), m.clone());
            // The wire form parses back to the same message and equals to_json.
            let bytes = m.encode();
            let mut codec = JsonCodec::new();
            let mut buf = BytesMut::from(&bytes[..]);
            let v = codec.decode(&mut buf).unwrap().unwrap();
            prop_assert_eq!(&v, &m.to_json());
            prop_assert_eq!(Message::from_json(v).unwrap(), m);
        }

        #[test]
        fn from_json_never_panics(
            members in prop::collection::btree_map(
                prop::sample::select(vec!["method", "params", "result", "error", "id", "x"]),
                arb_json(),
                0..6,
            )
        ) {
            let v = Value::Object(members.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
            if let Ok(m) = Message::from_json(v) {
                // Anything accepted re-parses from its own JSON.
                prop_assert_eq!(Message::from_json(m.to_json()).unwrap(), m);
            }
        }
    }
}
