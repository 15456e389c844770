//! Actor and name patterns: `*` stands for any run of characters (none included), anywhere, as
//! many times as written. Everything else matches itself, case-sensitively: Kubernetes user
//! names are case-sensitive.
//!
//! `system:serviceaccount:ci:*` (a prefix), `*@example.com` (a suffix) and
//! `system:serviceaccount:kube-system:*-controller` (both) mean the same in `kir hunt --actor`
//! and in the plan.

/// Whether `value` matches `pattern`.
pub fn glob(pattern: &str, value: &str) -> bool {
    let mut parts = pattern.split('*');
    // `split` always yields at least one part.
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = value.strip_prefix(first) else {
        return false;
    };
    let mut parts: Vec<&str> = parts.collect();
    let Some(last) = parts.pop() else {
        // No `*`: the whole value must be the pattern.
        return rest.is_empty();
    };
    for middle in parts {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn star_anywhere() {
        assert!(glob("alice", "alice"));
        assert!(!glob("alice", "alice2"));
        assert!(glob("system:serviceaccount:ci:*", "system:serviceaccount:ci:jenkins"));
        assert!(glob("*@example.com", "bob@example.com"));
        assert!(!glob("*@example.com", "bob@example.org"));
        assert!(glob(
            "system:serviceaccount:kube-system:*-controller",
            "system:serviceaccount:kube-system:job-controller"
        ));
        assert!(!glob("a*a", "a"), "the two ends may not overlap");
        assert!(glob("a*a", "aa"));
        assert!(glob("*", ""));
        assert!(glob("a**b*c", "a-b-c"));
        assert!(!glob("a*b*c", "a-c-b"));
        assert!(glob("é*", "ébène"));
    }
}
