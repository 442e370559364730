//! `imgraph prune`: removes the local images of the tree's repositories that do not carry the current tag.
//!
//! The keep-rule is docker-pkg's (spec §9): for each selected image, children first, every local image of its
//! repository whose tags do not include the current label (`repository:tag`, or `repository:tag-ID` with
//! `--nightly ID`) goes; `latest` survives only on the current image. Unlike docker-pkg, which removes by id and
//! fails with 409 on an image carrying several tags, an old image is taken apart by reference: only this
//! repository's references are removed, so an image that another repository also tags stays (untagged here),
//! and an image that only this repository tags is deleted. Nothing is forced: when the daemon refuses (a
//! container uses the image, it has dependent child images), the image is left exactly as it was and the
//! daemon's message is reported. An image with declared platforms also has, per platform, the images its builder
//! keeps under the platform's local name (see [`crate::plan::platforms::local_reference`]): those repositories are
//! pruned the same way, in that platform's builder.

use std::io;

use serde::Serialize;

use crate::diagnostic::Diagnostic;
use crate::engine::{Builders, Engine, EngineError, ImageReferences};
use crate::plan::platforms::local_reference;
use crate::platform::Platform;
use crate::reference::{Parts, Reference};
use crate::tree::{ImageId, Tree};

/// One repository of a tree image to prune, with the label it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneTarget {
    pub image: ImageId,
    /// The image's repository, or its local one for `platform`.
    pub repository: String,
    /// The label whose image is kept.
    pub keep: String,
    /// For a platform's local images: which (they are in its builder).
    pub platform: Option<Platform>,
}

/// Sees each step of a prune as it happens (the report renders it).
pub trait Observer {
    /// `image`'s repository has old images; `keep` is the label kept.
    fn pruning(&mut self, image: &str, keep: &str) -> io::Result<()>;
    /// What happened to one reference.
    fn removal(&mut self, removal: &Removal) -> io::Result<()>;
}

/// What happened to one reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Taken off, and its image deleted.
    Removed,
    /// Taken off; the image stays because another repository tags it.
    Untagged,
    /// The daemon refused; the image is as it was.
    Failed,
    /// `--dry-run`: would be [`Action::Removed`].
    WouldRemove,
    /// `--dry-run`: would be [`Action::Untagged`].
    WouldUntag,
}

/// One reference and what happened to it: a line of `--json` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removal {
    /// The tree image whose repository this is.
    pub image: String,
    /// The label kept.
    pub keep: String,
    pub reference: String,
    /// The image id.
    pub id: String,
    pub action: Action,
    /// References of other repositories that keep the image.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept_by: Vec<String>,
    /// The daemon's message, when it refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Counts of references, for the summary and the exit code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub images: usize,
    pub removed: usize,
    pub untagged: usize,
    pub failed: usize,
}

/// Why a prune stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot write output: {0}")]
    Output(#[from] io::Error),
}

/// What to do with one local image of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// It carries the label kept (or no reference of the repository): left alone.
    Keep,
    /// Only this repository references the image: delete it. `references` are its tags here (`latest` first), or
    /// its digests when it has no tag.
    Remove { references: Vec<String> },
    /// Take this repository's references off; `kept_by` (other repositories) keep the image.
    Untag { references: Vec<String>, kept_by: Vec<String> },
}

/// Parses `--nightly ID`: the suffix itself (`20261122`), taken literally. docker-pkg passes it to strftime; a
/// `%` directive would make a label no image can carry, and so remove every image, so it is refused.
pub fn parse_nightly(id: &str) -> Result<String, String> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if id.is_empty() || !id.chars().all(legal) {
        return Err(format!(
            "`{id}` is not a nightly identifier: give the tag suffix itself, e.g. 20261122 (letters, digits, `_`, \
             `.`, `-`; strftime formats are not expanded)"
        ));
    }
    Ok(id.to_owned())
}

/// The images to prune, in the order given, each with the label it keeps. Images whose name or tag is not legal
/// are left out (no local image can carry their label; the scan already reported them). A nightly label that is
/// not a legal tag is an error naming the image.
pub fn targets(tree: &Tree, order: &[ImageId], nightly: Option<&str>) -> Result<Vec<PruneTarget>, Vec<Diagnostic>> {
    let mut targets = Vec::with_capacity(order.len());
    let mut problems = Vec::new();
    for &id in order {
        let image = &tree[id];
        let Some(label) = &image.reference else { continue };
        let kept = match nightly {
            Some(suffix) => label.with_tag(&format!("{}-{suffix}", image.tag)),
            None => Ok(label.clone()),
        };
        match kept {
            Ok(keep) => {
                let keep = keep.to_string();
                for platform in &image.platforms {
                    let local = local_reference(&keep, platform);
                    let repository = Parts::of(&local).repository.to_owned();
                    targets.push(PruneTarget { image: id, repository, keep: local, platform: Some(platform.clone()) });
                }
                targets.push(PruneTarget { image: id, repository: image.repository.clone(), keep, platform: None });
            }
            Err(why) => problems.push(Diagnostic::error(image.changelog_path(), why).for_image(&image.name)),
        }
    }
    if problems.is_empty() { Ok(targets) } else { Err(problems) }
}

/// docker-pkg's keep-rule for one local image of `repository`, applied reference by reference.
pub fn decide(repository: &str, keep: &str, image: &ImageReferences) -> Decision {
    let repository = familiar(repository);
    let keep = familiar(keep);
    if image.tags.iter().any(|t| familiar(t) == keep) {
        return Decision::Keep;
    }
    let here = |r: &&String| familiar(Parts::of(r).repository) == repository;
    let mut tags: Vec<String> = image.tags.iter().filter(here).cloned().collect();
    tags.sort_by_key(|t| (Parts::of(t).tag != Some("latest"), t.clone()));
    let references =
        if tags.is_empty() { image.digests.iter().filter(here).cloned().collect::<Vec<_>>() } else { tags };
    if references.is_empty() {
        return Decision::Keep;
    }
    let kept_by: Vec<String> = image.tags.iter().chain(&image.digests).filter(|r| !here(r)).cloned().collect();
    if kept_by.is_empty() { Decision::Remove { references } } else { Decision::Untag { references, kept_by } }
}

/// A reference as the daemon lists it: without `docker.io/` (or `index.docker.io/`), and without `library/`
/// before a one-component Docker Hub name.
fn familiar(reference: &str) -> String {
    let rest = reference
        .strip_prefix("docker.io/")
        .or_else(|| reference.strip_prefix("index.docker.io/"))
        .unwrap_or(reference);
    match rest.strip_prefix("library/") {
        Some(short) if !Parts::of(short).repository.contains('/') => short.to_owned(),
        _ => rest.to_owned(),
    }
}

/// Prunes `targets` (children first, as given), telling `observer` about each reference; with `dry_run`, only
/// says what would be done.
pub async fn prune(
    tree: &Tree,
    targets: &[PruneTarget],
    builders: &Builders,
    dry_run: bool,
    observer: &mut dyn Observer,
) -> Result<Tally, PruneError> {
    let images: std::collections::BTreeSet<ImageId> = targets.iter().map(|t| t.image).collect();
    let mut tally = Tally { images: images.len(), ..Tally::default() };
    for target in targets {
        let image = &tree[target.image];
        let engine = target.platform.as_ref().map_or(builders.default_engine(), |p| builders.for_platform(p));
        let mut plans = Vec::new();
        for listed in engine.images_of(&target.repository).await? {
            if decide(&target.repository, &target.keep, &listed) == Decision::Keep {
                continue;
            }
            // The list may show only this repository's references; the decision needs them all.
            let Some(full) = engine.references(&listed.id).await? else { continue };
            match decide(&target.repository, &target.keep, &full) {
                Decision::Keep => {}
                decision => plans.push((full.id, decision)),
            }
        }
        if plans.is_empty() {
            continue;
        }
        plans.sort_by(|a, b| first_reference(&a.1).cmp(first_reference(&b.1)));
        observer.pruning(&image.name, &target.keep)?;
        for (id, decision) in plans {
            let effects = if dry_run { dry_run_effects(decision) } else { apply(engine, &id, decision).await };
            for Effect { reference, action, kept_by, error } in effects {
                match action {
                    Action::Removed | Action::WouldRemove => tally.removed += 1,
                    Action::Untagged | Action::WouldUntag => tally.untagged += 1,
                    Action::Failed => tally.failed += 1,
                }
                let removal = Removal {
                    image: image.name.clone(),
                    keep: target.keep.clone(),
                    reference,
                    id: id.clone(),
                    action,
                    kept_by,
                    error,
                };
                observer.removal(&removal)?;
            }
        }
    }
    Ok(tally)
}

/// What happened to one reference of an image.
struct Effect {
    reference: String,
    action: Action,
    kept_by: Vec<String>,
    error: Option<String>,
}

impl Effect {
    fn new(reference: String, action: Action, kept_by: &[String]) -> Self {
        Self { reference, action, kept_by: kept_by.to_vec(), error: None }
    }

    fn failed(reference: String, kept_by: &[String], error: &str) -> Self {
        Self { error: Some(error.to_owned()), ..Self::new(reference, Action::Failed, kept_by) }
    }
}

fn first_reference(decision: &Decision) -> &str {
    match decision {
        Decision::Remove { references } | Decision::Untag { references, .. } => {
            references.first().map_or("", String::as_str)
        }
        Decision::Keep => "",
    }
}

fn dry_run_effects(decision: Decision) -> Vec<Effect> {
    match decision {
        Decision::Keep => Vec::new(),
        Decision::Remove { references } => {
            references.into_iter().map(|r| Effect::new(r, Action::WouldRemove, &[])).collect()
        }
        Decision::Untag { references, kept_by } => {
            references.into_iter().map(|r| Effect::new(r, Action::WouldUntag, &kept_by)).collect()
        }
    }
}

/// Carries out one decision. A removal takes off all but one of the image's tags here, then deletes the image by
/// id, so that the daemon checks containers and child images; if it refuses, the tags taken off are put back.
async fn apply(engine: &Engine, id: &str, decision: Decision) -> Vec<Effect> {
    match decision {
        Decision::Keep => Vec::new(),
        Decision::Untag { references, kept_by } => {
            let mut steps = Vec::with_capacity(references.len());
            for reference in references {
                steps.push(match engine.remove(&reference).await {
                    Ok(_) => Effect::new(reference, Action::Untagged, &kept_by),
                    Err(e) => Effect::failed(reference, &kept_by, &e.to_string()),
                });
            }
            steps
        }
        Decision::Remove { references } => {
            let tags = references.iter().filter(|r| Parts::of(r).digest.is_none()).count();
            let mut taken = Vec::new();
            let mut failure = None;
            for reference in references.iter().take(tags.saturating_sub(1)) {
                match engine.remove(reference).await {
                    Ok(_) => taken.push(reference),
                    Err(e) => {
                        failure = Some(e.to_string());
                        break;
                    }
                }
            }
            if failure.is_none()
                && let Err(e) = engine.remove(id).await
            {
                failure = Some(e.to_string());
            }
            let Some(mut error) = failure else {
                return references.into_iter().map(|r| Effect::new(r, Action::Removed, &[])).collect();
            };
            for reference in taken {
                let put_back = match Reference::parse(reference) {
                    Ok(parsed) => engine.tag_reference(id, &parsed).await.map_err(|e| e.to_string()),
                    Err(why) => Err(why),
                };
                if let Err(e) = put_back {
                    error.push_str(&format!("; and {reference} could not be put back: {e}"));
                }
            }
            references.into_iter().map(|r| Effect::failed(r, &[], &error)).collect()
        }
    }
}

/// `sha256:0123456789abcdef…` → `0123456789ab`, as `docker images` shows it.
pub fn short_id(id: &str) -> &str {
    let hex = id.split_once(':').map_or(id, |(_, hex)| hex);
    hex.get(..12).unwrap_or(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(tags: &[&str], digests: &[&str]) -> ImageReferences {
        ImageReferences {
            id: "sha256:0123456789abcdef".into(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            digests: digests.iter().map(|d| (*d).to_owned()).collect(),
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|i| (*i).to_owned()).collect()
    }

    #[test]
    fn the_current_image_is_kept_with_latest() {
        let current = image(&["ns/app:2.0", "ns/app:latest", "other/x:1"], &[]);
        assert_eq!(decide("ns/app", "ns/app:2.0", &current), Decision::Keep);
    }

    #[test]
    fn an_old_image_tagged_only_here_is_removed_latest_first() {
        let old = image(&["ns/app:1.0", "ns/app:latest"], &["ns/app@sha256:aa"]);
        assert_eq!(
            decide("ns/app", "ns/app:2.0", &old),
            Decision::Remove { references: strings(&["ns/app:latest", "ns/app:1.0"]) }
        );
    }

    #[test]
    fn an_image_another_repository_tags_is_only_untagged() {
        let shared = image(&["ns/app:1.0", "ns/other:3"], &["ns/app@sha256:aa", "reg.example/x@sha256:bb"]);
        assert_eq!(
            decide("ns/app", "ns/app:2.0", &shared),
            Decision::Untag {
                references: strings(&["ns/app:1.0"]),
                kept_by: strings(&["ns/other:3", "reg.example/x@sha256:bb"])
            }
        );
    }

    #[test]
    fn an_image_with_only_digests_here_is_removed_by_its_digests() {
        let pulled = image(&[], &["ns/app@sha256:aa"]);
        assert_eq!(
            decide("ns/app", "ns/app:2.0", &pulled),
            Decision::Remove { references: strings(&["ns/app@sha256:aa"]) }
        );
    }

    #[test]
    fn a_repository_that_merely_shares_a_prefix_is_not_this_one() {
        let other = image(&["ns/app-extra:1"], &[]);
        assert_eq!(decide("ns/app", "ns/app:2.0", &other), Decision::Keep);
    }

    #[test]
    fn registry_ports_and_docker_hub_names_compare_as_the_daemon_lists_them() {
        let old = image(&["127.0.0.1:5000/ns/app:1.0"], &[]);
        assert_eq!(
            decide("127.0.0.1:5000/ns/app", "127.0.0.1:5000/ns/app:2.0", &old),
            Decision::Remove { references: strings(&["127.0.0.1:5000/ns/app:1.0"]) }
        );
        let hub = image(&["app:2.0"], &[]);
        assert_eq!(decide("docker.io/library/app", "docker.io/library/app:2.0", &hub), Decision::Keep);
        assert_eq!(familiar("docker.io/ns/app:1"), "ns/app:1");
        assert_eq!(familiar("docker.io/library/ns"), "ns");
        assert_eq!(familiar("library/app:1"), "app:1");
        assert_eq!(familiar("127.0.0.1:5000/library/app"), "127.0.0.1:5000/library/app");
    }

    #[test]
    fn nightly_identifiers_are_literal_tag_suffixes() {
        assert_eq!(parse_nightly("20261122"), Ok("20261122".into()));
        assert_eq!(parse_nightly("20261122-101500"), Ok("20261122-101500".into()));
        assert!(parse_nightly("%Y%m%d").is_err());
        assert!(parse_nightly("").is_err());
        assert!(parse_nightly("a/b").is_err());
    }

    #[test]
    fn short_ids_are_twelve_hex_digits() {
        assert_eq!(short_id("sha256:0123456789abcdef0123"), "0123456789ab");
        assert_eq!(short_id("abc"), "abc");
    }
}
