//! What the user sees: the graph in its four formats ([`graph`]), the progress and results of a run
//! ([`progress`]), diagnostics, counts and suggestions.

pub mod graph;
pub mod progress;

use crate::diagnostic::Diagnostic;

pub use graph::GraphView;

/// Diagnostics, one per line (multi-line messages kept).
pub fn diagnostic_lines(diagnostics: &[Diagnostic]) -> String {
    diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

/// `1 error`, `3 errors`.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("{n} {noun}") } else { format!("{n} {noun}s") }
}

/// `; did you mean a, b?` or nothing.
pub fn did_you_mean(suggestions: &[String]) -> String {
    if suggestions.is_empty() { String::new() } else { format!("; did you mean {}?", suggestions.join(", ")) }
}

/// Up to three names close to `wanted`: containing it, or within a small edit distance.
pub fn close_names<'a>(wanted: &str, names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let limit = (wanted.chars().count() / 3).max(1);
    let mut scored: Vec<(usize, &str)> = names
        .filter_map(|name| {
            let distance = edit_distance(wanted, name);
            (distance <= limit || name.contains(wanted) || wanted.contains(name)).then_some((distance, name))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, name)| name.to_owned()).collect()
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous_diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous_diagonal + usize::from(ca != *cb);
            previous_diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_close_names() {
        let names = ["golang1.22", "golang1.25", "openjdk-8-jre", "python3"];
        assert_eq!(close_names("golang1.2", names.into_iter()), vec!["golang1.22", "golang1.25"]);
        assert_eq!(close_names("pyhton3", names.into_iter()), vec!["python3"]);
        assert!(close_names("zzz", names.into_iter()).is_empty());
    }
}
