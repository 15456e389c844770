//! `kir contain` and `kir collect` through the binary where no cluster is needed: the recorded
//! actions, refusals, and an unreachable API server named plainly. (The API calls themselves are
//! tested against a mock API server in crates/kir-cluster/tests.)

mod common;

use common::kir;

fn kubeconfig(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: \"https://127.0.0.1:9\"}\nusers:\n- name: u\n  user: {token: abc}\ncontexts:\n- name: lab\n  context: {cluster: c, user: u}\ncurrent-context: lab\n",
    )
    .unwrap();
    path
}

#[test]
fn actions_are_listed_and_unknown_ones_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("ir.db").display());
    kir().args(["contain", "list", "--store", &store]).assert().success();
    kir()
        .args(["contain", "undo", "act-0000000000", "--store", &store])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no recorded action act-0000000000"));
    kir()
        .args(["contain", "isolate", "pod", "just-a-name", "--store", &store])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("NAMESPACE/NAME"));
}

#[test]
fn an_unreachable_cluster_is_named_and_nothing_is_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path());
    let store = format!("sqlite:{}", dir.path().join("ir.db").display());
    kir()
        .args(["contain", "cordon", "node", "n1", "--store", &store, "--kubeconfig"])
        .arg(&kc)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("cannot reach the cluster"));
    let out = dir.path().join("evidence");
    kir()
        .args(["collect", "pod", "shop/web", "--out"])
        .arg(&out)
        .arg("--kubeconfig")
        .arg(&kc)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("cannot reach the cluster at https://127.0.0.1:9"));
    assert_eq!(std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0), 0, "no empty bundle left behind");
    // Nothing was recorded as done.
    let list = common::stdout_of(kir().args(["contain", "list", "--format", "json", "--store", &store]));
    assert_eq!(list.trim(), "");
}
