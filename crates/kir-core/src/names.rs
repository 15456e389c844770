//! `NAMESPACE/NAME`, resource names and cluster names.

use std::fmt;

/// A namespaced object's name as people write it: `NAMESPACE/NAME`, or `NAME` alone where the
/// command has a namespace to fall back on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NamespacedName {
    pub namespace: String,
    pub name: String,
}

impl NamespacedName {
    /// Exactly one `/` with text on both sides (`a/b/c` is refused: no Kubernetes name holds a
    /// `/`), or, with `default_namespace`, a bare name. `what` names the object in the message.
    pub fn parse(text: &str, what: &str, default_namespace: Option<&str>) -> Result<Self, String> {
        let bad = || format!("write the {what} as NAMESPACE/NAME, not {text:?}");
        match text.split_once('/') {
            Some((namespace, name)) => {
                if namespace.is_empty() || name.is_empty() || name.contains('/') {
                    return Err(bad());
                }
                Ok(NamespacedName { namespace: namespace.into(), name: name.into() })
            }
            None => match default_namespace {
                Some(namespace) if !text.is_empty() && !namespace.is_empty() => {
                    Ok(NamespacedName { namespace: namespace.into(), name: text.into() })
                }
                _ => Err(bad()),
            },
        }
    }
}

impl fmt::Display for NamespacedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The singular of a Kubernetes resource name (`networkpolicies` → `networkpolicy`), for
/// messages and object references. Resources whose singular is their plural stay as they are;
/// a subresource keeps its name (`pods/log` → `pod/log`).
pub fn singular(resource: &str) -> String {
    if let Some((resource, subresource)) = resource.split_once('/') {
        return format!("{}/{subresource}", singular(resource));
    }
    // The API server's own singulars for the names that no rule below gets right.
    const SAME: &[&str] = &["endpoints"];
    if SAME.contains(&resource) {
        return resource.to_string();
    }
    if let Some(stem) = resource.strip_suffix("ies") {
        return format!("{stem}y");
    }
    // ingresses, storageclasses, priorityclasses, statuses
    for suffix in ["sses", "uses", "xes", "ches", "shes"] {
        if resource.ends_with(suffix) {
            return resource[..resource.len() - 2].to_string();
        }
    }
    resource.strip_suffix('s').unwrap_or(resource).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaced_names() {
        let p = |t: &str, d: Option<&str>| NamespacedName::parse(t, "pod", d);
        assert_eq!(p("shop/web", None).unwrap().to_string(), "shop/web");
        assert_eq!(p("web", Some("default")).unwrap().to_string(), "default/web");
        for bad in ["a/b/c", "/b", "a/", "", "web", "/"] {
            let e = p(bad, None).unwrap_err();
            assert!(e.contains("NAMESPACE/NAME"), "{bad}: {e}");
        }
        assert!(p("a/b/c", Some("default")).is_err());
        assert!(p("", Some("default")).is_err());
    }

    #[test]
    fn singulars() {
        for (plural, one) in [
            ("pods", "pod"),
            ("networkpolicies", "networkpolicy"),
            ("ingresses", "ingress"),
            ("storageclasses", "storageclass"),
            ("endpoints", "endpoints"),
            ("leases", "lease"),
            ("nodes", "node"),
            ("serviceaccounts", "serviceaccount"),
            ("clusterrolebindings", "clusterrolebinding"),
            ("podsecuritypolicies", "podsecuritypolicy"),
            ("volumesnapshots", "volumesnapshot"),
            ("configmaps", "configmap"),
            ("deployments", "deployment"),
            ("componentstatuses", "componentstatus"),
            ("pods/log", "pod/log"),
            ("pods/ephemeralcontainers", "pod/ephemeralcontainers"),
            ("nodes/proxy", "node/proxy"),
        ] {
            assert_eq!(singular(plural), one);
        }
    }
}

/// A cluster's name as kir labels events with it (`kir hunt --cluster`, `kir token create
/// --cluster`, `?cluster=` on the receivers): 1 to 63 letters, digits, `.`, `_` or `-`, starting
/// with a letter or digit, so that it is one word in a URL, a table and a group key.
pub fn cluster_name(text: &str) -> Result<&str, String> {
    let ok = !text.is_empty()
        && text.len() <= 63
        && text.as_bytes()[0].is_ascii_alphanumeric()
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(text)
    } else {
        Err(format!(
            "{text:?} is not a cluster name: 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit"
        ))
    }
}

#[cfg(test)]
mod cluster_tests {
    use super::cluster_name;

    #[test]
    fn cluster_names_are_one_word() {
        for good in ["prod-eu-1", "kind-kind", "gke_proj_europe-west1_c1", "a", "arn.aws.eks"] {
            assert_eq!(cluster_name(good), Ok(good));
        }
        for bad in ["", "-x", "a b", "a/b", "prod?x=1", "é", &"x".repeat(64)] {
            assert!(cluster_name(bad).is_err(), "{bad:?}");
        }
    }
}
