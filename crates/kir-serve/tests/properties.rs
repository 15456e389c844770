//! The receivers' body cutting on outside input: never a panic, nothing invented, nothing lost.

use kir_serve::receive::split;
use proptest::prelude::*;

fn event(id: &str, stage: &str) -> String {
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"{id}","stage":"{stage}","requestURI":"/api/v1/pods","verb":"list","user":{{"username":"u"}},"objectRef":{{"resource":"pods"}},"requestReceivedTimestamp":"2026-01-01T00:00:00Z","stageTimestamp":"2026-01-01T00:00:01Z"}}"#
    )
}

proptest! {
    #[test]
    fn any_bytes_are_answered_without_a_panic(data in proptest::collection::vec(any::<u8>(), 0..2048), falco in any::<bool>()) {
        if let Ok(r) = split(&data, falco) {
            let text = std::str::from_utf8(&data).unwrap();
            for e in &r.events {
                prop_assert!(text.contains(e.body.as_str()));
            }
        }
    }

    #[test]
    fn every_event_of_a_list_is_kept_once_with_its_key(ids in proptest::collection::btree_set("[a-f0-9]{1,12}", 1..30), junk in "[^\\n]{0,40}") {
        let items: Vec<String> = ids.iter().map(|id| event(id, "ResponseComplete")).collect();
        let list = format!(r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{}]}}"#, items.join(","));
        let r = split(list.as_bytes(), false).unwrap();
        let keys: Vec<String> = r.events.iter().map(|e| e.key.clone()).collect();
        let expected: Vec<String> = ids.iter().map(|id| format!("{id}/ResponseComplete")).collect();
        prop_assert_eq!(keys, expected);
        // The same events as JSON lines, with a broken line among them: the events stay.
        let lines = format!("{}\n{junk}\n", items.join("\n"));
        let r = split(lines.as_bytes(), false).unwrap();
        {
            for id in &ids {
                let key = format!("{id}/ResponseComplete");
                prop_assert!(r.events.iter().any(|e| e.key == key), "{} kept", key);
            }
        }
    }
}
