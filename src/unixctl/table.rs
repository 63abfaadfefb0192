//! The table of control commands and how one request is answered, as in
//! lib/unixctl.c: argument counts checked, string arguments only, the
//! built-in `list-commands` and `version`.

use futures_util::future::BoxFuture;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A command's answer: `Ok(text)` (printed by ovs-appctl, exit 0) or
/// `Err(text)` (printed to stderr, exit 2).
pub type Reply = Result<String, String>;

/// A command's implementation: given the arguments after the command name.
pub type Handler = Arc<dyn Fn(Vec<String>) -> BoxFuture<'static, Reply> + Send + Sync>;

/// What to do after the reply is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Nothing.
    Continue,
    /// Stop the server (`exit`).
    Exit,
}

struct Command {
    usage: &'static str,
    min: usize,
    max: usize,
    handler: Handler,
    after: After,
}

/// The registered commands.
pub struct Commands {
    commands: BTreeMap<String, Command>,
    version: String,
}

impl Commands {
    /// A table with `list-commands` and `version` (which answers `version`).
    pub fn new(version: String) -> Commands {
        Commands {
            commands: BTreeMap::new(),
            version,
        }
    }

    /// Registers `name`, taking `min..=max` arguments, shown by
    /// `list-commands` with `usage`.
    pub fn register<F, Fut>(
        &mut self,
        name: &str,
        usage: &'static str,
        min: usize,
        max: usize,
        f: F,
    ) where
        F: Fn(Vec<String>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Reply> + Send + 'static,
    {
        self.insert(name, usage, min, max, After::Continue, f);
    }

    /// Registers a command after whose reply the server stops.
    pub fn register_exit<F, Fut>(
        &mut self,
        name: &str,
        usage: &'static str,
        min: usize,
        max: usize,
        f: F,
    ) where
        F: Fn(Vec<String>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Reply> + Send + 'static,
    {
        self.insert(name, usage, min, max, After::Exit, f);
    }

    fn insert<F, Fut>(
        &mut self,
        name: &str,
        usage: &'static str,
        min: usize,
        max: usize,
        after: After,
        f: F,
    ) where
        F: Fn(Vec<String>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Reply> + Send + 'static,
    {
        let f = Arc::new(f);
        let handler: Handler = Arc::new(move |args| {
            let f = f.clone();
            Box::pin(async move { f(args).await })
        });
        self.commands.insert(
            name.to_string(),
            Command {
                usage,
                min,
                max,
                handler,
                after,
            },
        );
    }

    /// `list-commands`' text (lib/unixctl.c's layout).
    pub fn list(&self) -> String {
        let mut names: Vec<(&str, &str)> = self
            .commands
            .iter()
            .map(|(n, c)| (n.as_str(), c.usage))
            .chain([("list-commands", ""), ("version", "")])
            .collect();
        names.sort();
        let mut s = String::from("The available commands are:\n");
        for (name, usage) in names {
            s.push_str(&format!("  {name:<23} {usage}\n"));
        }
        s
    }

    /// Answers one request: `method` with JSON `params`.
    pub async fn dispatch(&self, method: &str, params: &Value) -> (Reply, After) {
        let args: &[Value] = match params {
            Value::Array(a) => a,
            _ => &[],
        };
        let builtin_max = |n: usize| {
            if n > 0 {
                Err(format!("\"{method}\" command takes at most 0 arguments"))
            } else {
                Ok(())
            }
        };
        match method {
            "list-commands" => {
                return (
                    builtin_max(args.len()).map(|()| self.list()),
                    After::Continue,
                );
            }
            "version" => {
                return (
                    builtin_max(args.len()).map(|()| self.version.clone()),
                    After::Continue,
                );
            }
            _ => {}
        }
        let Some(cmd) = self.commands.get(method) else {
            return (
                Err(format!(
                    "\"{method}\" is not a valid command (use \"list-commands\" to see a list of valid commands)"
                )),
                After::Continue,
            );
        };
        if args.len() < cmd.min {
            return (
                Err(format!(
                    "\"{method}\" command requires at least {} arguments",
                    cmd.min
                )),
                After::Continue,
            );
        }
        if args.len() > cmd.max {
            return (
                Err(format!(
                    "\"{method}\" command takes at most {} arguments",
                    cmd.max
                )),
                After::Continue,
            );
        }
        let mut strings = Vec::with_capacity(args.len());
        for a in args {
            match a {
                Value::String(s) => strings.push(s.clone()),
                _ => {
                    return (
                        Err(format!("\"{method}\" command has non-string argument")),
                        After::Continue,
                    )
                }
            }
        }
        let reply = (cmd.handler)(strings).await;
        let after = if reply.is_ok() {
            cmd.after
        } else {
            After::Continue
        };
        (reply, after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table() -> Commands {
        let mut t = Commands::new("oxsdb 0.1.0".into());
        t.register(
            "echo",
            "ARG...",
            1,
            2,
            |args| async move { Ok(args.join(" ")) },
        );
        t.register_exit("exit", "", 0, 0, |_| async { Ok(String::new()) });
        t
    }

    #[tokio::test]
    async fn answers_as_lib_unixctl() {
        let t = table();
        assert_eq!(
            t.dispatch("echo", &json!(["a", "b"])).await,
            (Ok("a b".into()), After::Continue)
        );
        assert_eq!(
            t.dispatch("nope", &json!([])).await.0,
            Err("\"nope\" is not a valid command (use \"list-commands\" to see a list of valid commands)".into())
        );
        assert_eq!(
            t.dispatch("echo", &json!([])).await.0,
            Err("\"echo\" command requires at least 1 arguments".into())
        );
        assert_eq!(
            t.dispatch("echo", &json!(["a", "b", "c"])).await.0,
            Err("\"echo\" command takes at most 2 arguments".into())
        );
        assert_eq!(
            t.dispatch("echo", &json!([1])).await.0,
            Err("\"echo\" command has non-string argument".into())
        );
        assert_eq!(
            t.dispatch("version", &json!(["x"])).await.0,
            Err("\"version\" command takes at most 0 arguments".into())
        );
        assert_eq!(
            t.dispatch("version", &json!([])).await.0,
            Ok("oxsdb 0.1.0".into())
        );
        assert_eq!(t.dispatch("exit", &json!([])).await.1, After::Exit);
    }

    fn json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            ".{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(".{0,4}", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Any method and parameters: an answer, never a panic.
        #[test]
        fn any_request_is_answered(method in "[a-z/-]{0,12}|echo|exit|version", params in json()) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let (reply, after) = rt.block_on(table().dispatch(&method, &params));
            if after == After::Exit {
                proptest::prop_assert!(reply.is_ok());
            }
        }
    }

    #[test]
    fn lists_commands_sorted_with_usage() {
        assert_eq!(
            table().list(),
            "The available commands are:\n  echo                    ARG...\n  exit                    \n  list-commands           \n  version                 \n"
        );
    }
}
