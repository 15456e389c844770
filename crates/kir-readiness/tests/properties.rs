//! Outside input never panics readiness: any text as a dump, a manifest or a policy, and any
//! objects (wrong types in every field) through every check.

use kir_readiness::{AuditPolicy, Flags, Input, Inventory, assess};
use proptest::prelude::*;
use serde_json::{Value, json};

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-z*:/.-]{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "*",
            "secrets",
            "pods",
            "cluster-admin",
            "NodePort",
            "system:anonymous",
            "ServiceAccount",
            ""
        ])
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "kind",
                    "metadata",
                    "name",
                    "namespace",
                    "spec",
                    "subjects",
                    "roleRef",
                    "rules",
                    "verbs",
                    "apiGroups",
                    "resources",
                    "containers",
                    "securityContext",
                    "privileged",
                    "type",
                    "selector",
                    "labels",
                    "items",
                    "volumes",
                    "hostPath",
                    "path",
                    "template",
                    "image",
                ])
                .prop_map(str::to_string),
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const KINDS: &[&str] = &[
    "Pod",
    "Service",
    "Ingress",
    "ClusterRoleBinding",
    "RoleBinding",
    "ClusterRole",
    "DaemonSet",
    "Deployment",
    "CronJob",
];

proptest! {
    #[test]
    fn any_text_is_a_dump_or_an_error(text in ".{0,200}") {
        let _ = Inventory::from_json(&text);
        let _ = Flags::parse(&text);
        let _ = AuditPolicy::parse(&text);
    }

    #[test]
    fn any_objects_go_through_every_check(objects in prop::collection::vec((prop::sample::select(KINDS.to_vec()), any_json()), 0..8)) {
        let items: Vec<Value> = objects
            .into_iter()
            .map(|(kind, mut v)| {
                if let Some(o) = v.as_object_mut() {
                    o.insert("kind".into(), json!(kind));
                }
                v
            })
            .collect();
        let text = json!({"kind": "List", "items": items}).to_string();
        let (inv, _) = Inventory::from_json(&text).unwrap();
        let report = assess(&Input { inventory: Some(&inv), ..Default::default() });
        prop_assert!(report.score <= 100);
        for c in &report.checks {
            for o in &c.objects {
                prop_assert!(o.split('/').count() >= 2, "{o}");
            }
        }
    }
}
