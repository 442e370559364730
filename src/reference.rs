//! Docker image reference grammar: legal names and tags, and splitting `repo[:tag][@digest]` (stub, being written).

/// Checks a repository path (`registry[:port]/ns/name` or `name`) against Docker's grammar.
pub fn check_repository(_repository: &str) -> Result<(), String> {
    Ok(())
}

/// Checks a tag against Docker's grammar `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn check_tag(_tag: &str) -> Result<(), String> {
    Ok(())
}

/// A reference split into its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reference<'a> {
    pub repository: &'a str,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

/// Splits `repo[:tag][@digest]`, keeping a registry's `:port` in the repository.
pub fn split(reference: &str) -> Reference<'_> {
    Reference { repository: reference, tag: None, digest: None }
}
