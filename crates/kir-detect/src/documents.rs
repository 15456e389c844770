//! The documents of a rule file (shared with build.rs, which parses the built-in pack's
//! documents ahead of time: `crate::ruleset::BUILTIN_VALUES`).

/// Splits YAML on `---` lines, keeping each document's first line number.
pub fn documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        if line.trim_end() == "---" {
            docs.push((start, std::mem::take(&mut current)));
            start = i + 2;
        } else if line.trim_end() == "..." {
            continue;
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    docs.push((start, current));
    docs.into_iter()
        .filter(|(_, d)| d.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')))
        .collect()
}
