use std::path::Path;

use serde_json::{Value, json};

/// The objects of a recorded API server answer, as `kubectl get -o json` lists them: a list's
/// items each carry their `kind` (the API server leaves it out of list items), a single object
/// stands as it is. Panics on a missing or unreadable file: the recording is the test's own.
pub fn recorded_objects(path: impl AsRef<Path>, kind: &str) -> Vec<Value> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match v.get("items").and_then(Value::as_array) {
        Some(items) => items
            .iter()
            .cloned()
            .map(|mut item| {
                item["kind"] = json!(kind);
                item
            })
            .collect(),
        None => vec![v],
    }
}
