//! Schema vectors: many small schemas, tables, columns and types, valid and
//! invalid, each wrapped into a whole schema and given to both the reference
//! (`ovsdb-tool create`, and for accepted ones a running `ovsdb-server`'s
//! `get_schema`) and oxsdb's schema parser. Both must make the same decision;
//! a refused schema must fail with the same error tag, details and `syntax`
//! JSON; an accepted one must be served as the same `get_schema` JSON.
//!
//! Vector files are data only, `tests/schema_vectors/*.json`:
//!
//! ```json
//! {"vectors": [
//!   {"name": "integer type", "type": "integer"},
//!   {"name": "immutable column", "column": {"type": "integer", "mutable": false}},
//!   {"name": "immutable table", "table": {"columns": {"c": {"type": "integer"}}, "mutable": false}},
//!   {"name": "two tables", "tables": {"A": {...}, "B": {...}}},
//!   {"name": "no name", "schema": {"tables": {}}}]}
//! ```
//!
//! A `type` becomes column `c` of table `T` of database `v`; a `column`
//! becomes column `c`; a `table` becomes table `T`; `tables` are the tables of
//! database `v`; a `schema` is used as it is. Numbers keep the text they are
//! written with (serde_json's `arbitrary_precision`), so `5.0` reaches both
//! sides as `5.0`.
//!
//! `OXSDB_SCHEMA_FILTER=substr` runs only the vectors whose "file: name"
//! contains substr.

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use oxsdb::data::json_text;
use oxsdb::schema::DatabaseSchema;
use serde_json::{json, Value};
use support::reference::ReferenceServer;
use support::tools::ovsdb_tool_create;

const MIN_VECTORS: usize = 150;
const THREADS: usize = 3;

struct Vector {
    label: String,
    schema: Value,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Wraps a vector's snippet into a whole schema.
fn wrap(file: &str, v: &Value) -> Vector {
    let name = v["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{file}: vector without a name: {v}"));
    let kinds = ["type", "column", "table", "tables", "schema"];
    let present: Vec<&str> = kinds
        .iter()
        .copied()
        .filter(|k| v.get(*k).is_some())
        .collect();
    assert_eq!(
        present.len(),
        1,
        "{file}: {name}: exactly one of {kinds:?} expected"
    );
    let body = v[present[0]].clone();
    let schema = match present[0] {
        "type" => json!({"name": "v", "tables": {"T": {"columns": {"c": {"type": body}}}}}),
        "column" => json!({"name": "v", "tables": {"T": {"columns": {"c": body}}}}),
        "table" => json!({"name": "v", "tables": {"T": body}}),
        "tables" => json!({"name": "v", "tables": body}),
        _ => body,
    };
    Vector {
        label: format!("{file}: {name}"),
        schema,
    }
}

fn load_vectors() -> Vec<Vector> {
    let dir = root().join("tests/schema_vectors");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    let mut labels = std::collections::HashSet::new();
    for f in files {
        let file = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{file}: {e}"));
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        for vector in v["vectors"]
            .as_array()
            .unwrap_or_else(|| panic!("{file}: \"vectors\" array expected"))
        {
            let w = wrap(&file, vector);
            assert!(labels.insert(w.label.clone()), "duplicate {}", w.label);
            out.push(w);
        }
    }
    if let Ok(filter) = std::env::var("OXSDB_SCHEMA_FILTER") {
        out.retain(|v| v.label.contains(&filter));
    }
    out
}

/// An error as `ovsdb-tool create` prints it:
/// `ovsdb-tool: [syntax "JSON": ]TAG: failed to parse "FILE" as ovsdb schema: DETAILS`.
#[derive(Debug, PartialEq)]
struct ToolError {
    tag: String,
    details: String,
    syntax: Option<String>,
}

fn parse_tool_error(stderr: &str) -> Option<ToolError> {
    let line = stderr.trim().strip_prefix("ovsdb-tool: ")?;
    let (head, details) = line.split_once(" as ovsdb schema: ")?;
    let head = &head[..head.rfind(": failed to parse \"")?];
    let (syntax, tag) = match head.strip_prefix("syntax \"") {
        Some(rest) => {
            let k = rest.rfind("\": ")?;
            (Some(rest[..k].to_string()), rest[k + 3..].to_string())
        }
        None => (None, head.to_string()),
    };
    Some(ToolError {
        tag,
        details: details.to_string(),
        syntax,
    })
}

/// JSON text compared as ovsdb-server would print it with sorted members.
fn canonical_json_text(s: &str) -> String {
    match serde_json::from_str::<Value>(s) {
        Ok(v) => json_text(&v),
        Err(_) => s.to_string(),
    }
}

/// What the reference does with a schema: its `get_schema` JSON, or its error.
enum RefOutcome {
    Accepted { file: Value, served: Value },
    Refused(String),
}

fn run_reference(schema_path: &Path, dir: &Path) -> RefOutcome {
    let db = dir.join("v.db");
    if let Err(stderr) = ovsdb_tool_create(&db, schema_path) {
        return RefOutcome::Refused(stderr);
    }
    // The database file's second line is the schema as ovsdb-server keeps it.
    let text = std::fs::read_to_string(&db).unwrap_or_default();
    let file: Value = text
        .lines()
        .nth(1)
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    // ovsdb-tool creates a database whose name begins with "_", but
    // ovsdb-server refuses to serve it ("names beginning with "_" are
    // reserved"): only the schema in the file is compared for those.
    if file["name"].as_str().is_some_and(|n| n.starts_with('_')) {
        return RefOutcome::Accepted {
            served: file.clone(),
            file,
        };
    }
    let server = ReferenceServer::start(schema_path);
    let mut client = server.connect();
    let reply = client.request("get_schema", json!([server.db_name]));
    let served = reply.result().cloned().unwrap_or(Value::Null);
    RefOutcome::Accepted { file, served }
}

/// Checks one vector; `Err` describes the difference.
fn check(v: &Vector) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("v.ovsschema");
    std::fs::write(&path, serde_json::to_string(&v.schema).unwrap_or_default())
        .map_err(|e| e.to_string())?;
    let reference = run_reference(&path, dir.path());
    let ours = DatabaseSchema::from_json(&v.schema);
    match (reference, ours) {
        (RefOutcome::Accepted { file, served }, Ok(s)) => {
            let ours = json_text(&s.to_json());
            if json_text(&served) != ours {
                return Err(format!(
                    "get_schema differs:\n  reference: {}\n  oxsdb:     {ours}",
                    json_text(&served)
                ));
            }
            if json_text(&file) != ours {
                return Err(format!(
                    "schema in the database file differs:\n  reference: {}\n  oxsdb:     {ours}",
                    json_text(&file)
                ));
            }
            // What oxsdb serves must be a schema oxsdb reads back the same.
            match DatabaseSchema::from_json(&s.to_json()) {
                Ok(again) if again == s => Ok(()),
                Ok(_) => Err("to_json does not read back to the same schema".into()),
                Err(e) => Err(format!("to_json does not read back: {e}")),
            }
        }
        (RefOutcome::Accepted { served, .. }, Err(e)) => Err(format!(
            "reference accepts (get_schema {}), oxsdb refuses: {}",
            json_text(&served),
            json_text(&e.to_json())
        )),
        (RefOutcome::Refused(stderr), Ok(s)) => Err(format!(
            "reference refuses ({}), oxsdb accepts: {}",
            stderr.trim(),
            json_text(&s.to_json())
        )),
        (RefOutcome::Refused(stderr), Err(e)) => {
            let Some(r) = parse_tool_error(&stderr) else {
                return Err(format!("unexpected ovsdb-tool output: {}", stderr.trim()));
            };
            let ours = ToolError {
                tag: e.tag.clone(),
                details: e.details.clone().unwrap_or_default(),
                syntax: e.syntax.as_deref().map(canonical_json_text),
            };
            let theirs = ToolError {
                syntax: r.syntax.as_deref().map(canonical_json_text),
                ..r
            };
            if ours == theirs {
                Ok(())
            } else {
                Err(format!(
                    "errors differ:\n  reference: {theirs:?}\n  oxsdb:     {ours:?}"
                ))
            }
        }
    }
}

#[test]
fn tool_errors_are_parsed() {
    let e = parse_tool_error(
        "ovsdb-tool: syntax \"{\"type\":\"integer\",\"x\":1}\": syntax error: failed to parse \"/tmp/a b/v.ovsschema\" as ovsdb schema: Parsing schema for column c failed: Member 'x' is present but not allowed here.\n",
    );
    assert_eq!(
        e,
        Some(ToolError {
            tag: "syntax error".into(),
            details:
                "Parsing schema for column c failed: Member 'x' is present but not allowed here."
                    .into(),
            syntax: Some("{\"type\":\"integer\",\"x\":1}".into()),
        })
    );
    let e = parse_tool_error(
        "ovsdb-tool: syntax error: failed to parse \"s.json\" as ovsdb schema: column c key refers to undefined table Nope",
    );
    assert_eq!(
        e.map(|e| (e.tag, e.syntax)),
        Some(("syntax error".to_string(), None))
    );
}

/// Every vector: the same decision, error and served schema as ovsdb-server.
#[test]
fn schema_vectors_match_reference() {
    let vectors = load_vectors();
    if std::env::var("OXSDB_SCHEMA_FILTER").is_err() {
        assert!(
            vectors.len() >= MIN_VECTORS,
            "only {} vectors (want >= {MIN_VECTORS})",
            vectors.len()
        );
    }
    let next = AtomicUsize::new(0);
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let accepted = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(v) = vectors.get(i) else { break };
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(v)))
                    .unwrap_or_else(|_| Err("panicked".into()));
                match r {
                    Ok(()) => {
                        if DatabaseSchema::from_json(&v.schema).is_ok() {
                            accepted.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    Err(e) => {
                        if let Ok(mut f) = failures.lock() {
                            f.push(format!("{}\n  schema: {}\n  {e}", v.label, v.schema));
                        }
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap_or_default();
    for f in &failures {
        eprintln!("DIFF {f}");
    }
    eprintln!(
        "schema vectors: {} vectors, {} accepted by both, {} differ",
        vectors.len(),
        accepted.load(Ordering::SeqCst),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} schema vectors differ from ovsdb-server (see above)",
        failures.len()
    );
}
