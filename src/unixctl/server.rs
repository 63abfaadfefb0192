//! The control socket: a Unix socket speaking JSON-RPC 1.0 as
//! lib/unixctl.c does. Each request `{"method": COMMAND, "params":
//! [ARGS...], "id": N}` gets `{"result": TEXT, "error": null, "id": N}` or
//! `{"result": null, "error": TEXT, "id": N}`; requests on one connection
//! are answered in order; anything but a request closes the connection.

use super::table::{After, Commands};
use crate::codec::framing::JsonCodec;
use crate::codec::jsonrpc::Message;
use futures_util::StreamExt;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Notify;
use tokio_util::codec::FramedRead;

/// Largest request accepted: commands and their arguments are short.
pub const MAX_REQUEST: usize = 1 << 20;

/// Why the control socket could not be made.
#[derive(Debug, thiserror::Error)]
#[error("{path}: could not initialize control socket: {source} (check the run directory exists and is writable, or give --unixctl=PATH)")]
pub struct ControlSocketError {
    /// The socket's path.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

/// A listening control socket; its file is removed on drop.
pub struct ControlServer {
    path: PathBuf,
}

impl ControlServer {
    /// The control socket at `path` (none for `--unixctl=none`). A socket
    /// at the default place (`explicit` false) that cannot be made is a
    /// warning, not an error: the run directory may not exist where oxsdb
    /// runs as a plain process.
    pub fn start_configured(
        path: Option<&Path>,
        explicit: bool,
        commands: Arc<Commands>,
        exit: Arc<Notify>,
    ) -> Result<Option<ControlServer>, ControlSocketError> {
        let Some(path) = path else { return Ok(None) };
        match ControlServer::start(path, commands, exit) {
            Ok(c) => Ok(Some(c)),
            Err(e) if !explicit => {
                tracing::warn!("{e}; running without a control socket");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Listens on `path` (replacing a stale socket file) and serves
    /// `commands` on the current actix arbiter; `exit` is notified after an
    /// `exit` command's reply is sent.
    pub fn start(
        path: &Path,
        commands: Arc<Commands>,
        exit: Arc<Notify>,
    ) -> Result<ControlServer, ControlSocketError> {
        let err = |source| ControlSocketError {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(e)),
        }
        let listener = UnixListener::bind(path).map_err(err)?;
        // On the server's own thread (a LocalSet): commands start actors.
        actix::spawn(accept_loop(listener, commands, exit));
        Ok(ControlServer {
            path: path.to_path_buf(),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn accept_loop(listener: UnixListener, commands: Arc<Commands>, exit: Arc<Notify>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                actix::spawn(serve(stream, commands.clone(), exit.clone()));
            }
            Err(e) => {
                // Out of descriptors, say: back off instead of spinning.
                tracing::warn!("control socket: accept failed: {e}; retrying in 100 ms");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// A non-empty reply ends with a newline, as lib/unixctl.c makes it
/// (ovs-appctl prints replies as they are).
pub fn line_ended(mut text: String) -> String {
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

async fn serve(stream: UnixStream, commands: Arc<Commands>, exit: Arc<Notify>) {
    let (read, mut write) = stream.into_split();
    let mut framed = FramedRead::new(read, JsonCodec::with_max_size(MAX_REQUEST));
    while let Some(item) = framed.next().await {
        let value = match item {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("control connection: {e}");
                return;
            }
        };
        let (method, params, id) = match Message::try_from(value) {
            Ok(Message::Request { method, params, id }) => (method, params, id),
            Ok(other) => {
                tracing::warn!(
                    "control connection: received unexpected {} message",
                    other.kind().as_str()
                );
                return;
            }
            Err(e) => {
                tracing::warn!("control connection: {e}");
                return;
            }
        };
        tracing::debug!(%method, "control request");
        let (reply, after) = commands.dispatch(&method, &params).await;
        let msg = match reply {
            Ok(text) => Message::reply(id, Value::String(line_ended(text))),
            Err(text) => Message::error(id, Value::String(line_ended(text))),
        };
        let bytes = crate::codec::framing::encode_message(&Value::from(msg));
        if write.write_all(&bytes).await.is_err() {
            return;
        }
        if after == After::Exit {
            exit.notify_one();
        }
    }
}
