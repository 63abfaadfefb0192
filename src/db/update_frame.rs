//! The bytes of one monitor notification, envelope and all:
//! `{"id":null,"method":"update<N>","params":[<monitor id>,(<txn id>,)<body>]}`.
//!
//! Every session sharing a monitor id and an update body sends the same
//! bytes, so the Monitor actor encodes the frame once per commit and the
//! sessions only clone it (a fan-out to a thousand identical monitors would
//! otherwise encode the same envelope a thousand times). A session encodes
//! one itself only for the updates it merged while backlogged.

use crate::codec::jsonrpc::write_notification_raw;
use crate::db::monitor::MonitorVersion;
use bytes::{Bytes, BytesMut};
use serde_json::Value;
use uuid::Uuid;

/// The notification method of a monitor version.
pub fn update_method(version: MonitorVersion) -> &'static str {
    match version {
        MonitorVersion::V1 => "update",
        MonitorVersion::V2 => "update2",
        MonitorVersion::V3 => "update3",
    }
}

/// The whole notification of `body` (one encoded `<table-updates>`) for
/// monitor `monitor_id`, in ovsdb-server's format; `txn_id` appears in
/// `update3` only.
pub fn update_frame(
    version: MonitorVersion,
    monitor_id: &Value,
    txn_id: &Uuid,
    body: &[u8],
) -> Bytes {
    let mut out = BytesMut::new();
    let method = update_method(version);
    if version == MonitorVersion::V3 {
        let txn = Value::String(txn_id.hyphenated().to_string());
        write_notification_raw(&mut out, method, &[monitor_id, &txn], body);
    } else {
        write_notification_raw(&mut out, method, &[monitor_id], body);
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::framing::encode_message;
    use crate::codec::jsonrpc::{notification_bytes, update3_bytes};
    use bytes::BufMut;
    use serde_json::json;

    /// The envelope as `Session::deliver` wrote it per session before the
    /// Monitor actor shared one frame.
    fn per_session(
        version: MonitorVersion,
        monitor_id: &Value,
        txn_id: Uuid,
        body: &[u8],
    ) -> Bytes {
        let mut out = BytesMut::with_capacity(body.len() + 96);
        out.put_slice(b"{\"id\":null,\"method\":\"");
        out.put_slice(update_method(version).as_bytes());
        out.put_slice(b"\",\"params\":[");
        out.put_slice(&encode_message(monitor_id));
        out.put_u8(b',');
        if version == MonitorVersion::V3 {
            out.put_u8(b'"');
            out.put_slice(txn_id.to_string().as_bytes());
            out.put_slice(b"\",");
        }
        out.put_slice(body);
        out.put_slice(b"]}");
        out.freeze()
    }

    #[test]
    fn shared_frame_is_the_per_session_envelope_byte_for_byte() {
        let txn = Uuid::parse_str("1aff35b7-654f-4117-8460-dcdfc7f62ac5").unwrap();
        let body = br#"{"Logical_Switch":{"4c3a5f0e-1d4f-4a4e-9a57-6f0b1c2d3e4f":{"insert":{"name":"fan-\u0001"}}}}"#;
        let ids = [
            json!("fanout"),
            json!(null),
            json!(["a", 1, 2.5, {"k": "v\"/"}]),
            json!(1e300),
            json!("\u{7f}é\n"),
        ];
        for version in [MonitorVersion::V1, MonitorVersion::V2, MonitorVersion::V3] {
            for id in &ids {
                let shared = update_frame(version, id, &txn, body);
                assert_eq!(shared, per_session(version, id, txn, body));
                // And as the codec's own notification helpers write it.
                let codec = match version {
                    MonitorVersion::V3 => update3_bytes(id, &txn.to_string(), body),
                    v => notification_bytes(update_method(v), id, body),
                };
                assert_eq!(shared, codec);
            }
        }
    }

    #[test]
    fn an_empty_update3_carries_its_transaction_id() {
        let frame = update_frame(MonitorVersion::V3, &json!(7), &Uuid::nil(), b"{}");
        assert_eq!(
            &frame[..],
            br#"{"id":null,"method":"update3","params":[7,"00000000-0000-0000-0000-000000000000",{}]}"#
        );
    }
}
