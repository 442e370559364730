//! The plan: the state of every selected image before anything runs, from the registry and the local daemon,
//! classified exactly as docker-pkg does (both pull modes), plus `error` for what cannot be known or built and
//! `skipped` for what needs an image that cannot be built (neither is looked up).

pub mod platforms;

use std::collections::BTreeSet;

use futures_util::StreamExt;
use serde::Serialize;

use crate::analysis::{Analysis, Unbuildable};
use crate::engine::{Builders, EngineError, LocalImage};
use crate::registry::{RegistryClient, TagState};
use crate::tree::{Image, ImageId};

/// How many images are looked up at once (the registry client bounds its own requests further).
const LOOKUP_CONCURRENCY: usize = 32;

/// Where an image stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Its version tag is in the registry.
    Published,
    /// In the local daemon (and, for a plan, not in the registry).
    Built,
    /// Built and verified during this run.
    Verified,
    /// Needs building.
    ToBuild,
    /// Cannot be built or known (see the reason).
    Error,
    /// Not attempted because an image it depends on failed.
    Skipped,
    /// Not finished: the run was interrupted or stopped by `--fail-fast`.
    Cancelled,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Published => "published",
            State::Built => "built",
            State::Verified => "verified",
            State::ToBuild => "to-build",
            State::Error => "error",
            State::Skipped => "skipped",
            State::Cancelled => "cancelled",
        }
    }

    /// A state a run may end in and still succeed.
    pub fn is_success(self) -> bool {
        matches!(self, State::Published | State::Built | State::Verified)
    }
}

/// One image's planned state, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub image: ImageId,
    pub state: State,
    pub reason: String,
    /// What the daemon has under the image's label, when it was asked (not for images the registry has,
    /// unless `--no-pull` asks the daemon first).
    pub local: Option<LocalImage>,
    /// The manifest digest the registry serves for a published image, when it said.
    pub digest: Option<String>,
    /// Each declared platform's plan (empty for an image without declared platforms).
    pub platforms: Vec<platforms::PlatformPlan>,
}

/// docker-pkg's two ways of looking (`--no-pull` flips the order and trusts the daemon first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullMode {
    /// Registry first: published, else built if the daemon has it, else to-build.
    Pull,
    /// Daemon first: to-build if the daemon lacks it, else published if the registry has it, else built.
    NoPull,
}

/// Classifies `selected` images (in build order), looking them up concurrently. The result keeps the order of
/// `selected`. A daemon failure stops everything: without the daemon nothing can be known.
pub async fn classify(
    analysis: &Analysis,
    selected: &[ImageId],
    registry: &RegistryClient,
    builders: &Builders,
    mode: PullMode,
) -> Result<Vec<Planned>, EngineError> {
    let bases = platforms::BasePlatforms::default();
    let lookups = futures_util::stream::iter(selected.iter().copied())
        .map(|id| classify_one(analysis, id, &bases, registry, builders, mode))
        .buffered(LOOKUP_CONCURRENCY);
    let planned: Vec<Planned> = lookups.collect::<Vec<_>>().await.into_iter().collect::<Result<_, _>>()?;
    for p in &planned {
        let image = &analysis.tree[p.image];
        tracing::info!(image = image.name, tag = image.tag, state = p.state.as_str(), reason = p.reason, "planned");
    }
    Ok(planned)
}

async fn classify_one(
    analysis: &Analysis,
    id: ImageId,
    bases: &platforms::BasePlatforms,
    registry: &RegistryClient,
    builders: &Builders,
    mode: PullMode,
) -> Result<Planned, EngineError> {
    let tree = &analysis.tree;
    let image = &tree[id];
    let planned = |state, reason: &str, local, digest| Planned {
        image: id,
        state,
        reason: reason.into(),
        local,
        digest,
        platforms: Vec::new(),
    };
    match analysis.unbuildable(id) {
        Some(Unbuildable::Broken(why)) => return Ok(planned(State::Error, why, None, None)),
        Some(Unbuildable::Blocked(by)) => {
            let reason = format!("needs {}, which cannot be built", tree[by].name);
            return Ok(planned(State::Skipped, &reason, None, None));
        }
        None => {}
    }
    let host = tree.config.registry();
    if !image.platforms.is_empty() {
        tracing::debug!(image = image.name, ?mode, "asking the registry and each platform's builder");
        return Ok(
            match platforms::classify(image, &own_bases(analysis, id), bases, host, registry, builders, mode).await? {
                Ok(c) => Planned { platforms: c.platforms, ..planned(c.state, &c.reason, None, c.digest) },
                Err(e) => planned(State::Error, &e.message, None, None),
            },
        );
    }
    let engine = builders.default_engine();
    let ask_registry = || async {
        if host.is_empty() {
            None
        } else {
            Some(registry.tag_state(host, repository_path(image, host), &image.tag).await)
        }
    };
    tracing::debug!(image = image.name, ?mode, "asking the registry and the daemon");
    Ok(match mode {
        // Registry first; the daemon is asked only about what the registry lacks (a no-op run of a published
        // tree then costs one HEAD per image and nothing else).
        PullMode::Pull => match ask_registry().await {
            Some(Err(e)) => planned(State::Error, &e.message, None, None),
            Some(Ok(TagState::Present { digest })) => planned(State::Published, "200 from registry", None, digest),
            answer => match (engine.inspect(&image.label).await?, answer.is_some()) {
                (Some(local), true) => planned(State::Built, "in the daemon, not in the registry", Some(local), None),
                (Some(local), false) => planned(State::Built, "in the daemon (no registry)", Some(local), None),
                (None, true) => planned(State::ToBuild, "404 from registry, not in the daemon", None, None),
                (None, false) => planned(State::ToBuild, "not in the daemon (no registry)", None, None),
            },
        },
        PullMode::NoPull => match engine.inspect(&image.label).await? {
            None => planned(State::ToBuild, "not in the daemon", None, None),
            Some(local) => match ask_registry().await {
                Some(Err(e)) => planned(State::Error, &e.message, Some(local), None),
                Some(Ok(TagState::Present { digest })) => {
                    planned(State::Published, "200 from registry", Some(local), digest)
                }
                Some(Ok(TagState::Absent)) => {
                    planned(State::Built, "in the daemon, not in the registry", Some(local), None)
                }
                None => planned(State::Built, "in the daemon (no registry)", Some(local), None),
            },
        },
    })
}

/// The images outside the tree that image `id` builds on for its own platform: not those only named by a
/// `FROM --platform=…`, which are for the platform that line names.
pub(crate) fn own_bases(analysis: &Analysis, id: ImageId) -> BTreeSet<&str> {
    let references = analysis.rendered[id].as_ref().map_or(&[][..], |r| &r.references[..]);
    analysis.deps.external[id]
        .iter()
        .map(String::as_str)
        .filter(|base| references.iter().any(|r| r.reference == *base && !r.pinned_platform))
        .collect()
}

/// The repository path inside the registry: the label's repository without `host/`.
pub fn repository_path<'a>(image: &'a Image, host: &str) -> &'a str {
    image.repository.strip_prefix(host).and_then(|rest| rest.strip_prefix('/')).unwrap_or(&image.repository)
}

/// Which of `selected` need publishing, asking the registry only (no daemon): every image it does not serve,
/// and every image that cannot be built (its job then says why). A registry error counts as "needs work"
/// (the job asks again), with a warning.
pub async fn unpublished(analysis: &Analysis, selected: &[ImageId], registry: &RegistryClient) -> Vec<ImageId> {
    let tree = &analysis.tree;
    let host = tree.config.registry();
    let lookups = futures_util::stream::iter(selected.iter().copied())
        .map(|id| async move {
            let image = &tree[id];
            if analysis.unbuildable(id).is_some() || host.is_empty() {
                return (id, true);
            }
            match registry.tag_state(host, repository_path(image, host), &image.tag).await {
                Ok(TagState::Present { .. }) => (id, false),
                Ok(TagState::Absent) => (id, true),
                Err(e) => {
                    tracing::warn!(image = image.name, error = %e, "the registry did not say; the image gets a job");
                    (id, true)
                }
            }
        })
        .buffered(LOOKUP_CONCURRENCY);
    lookups.collect::<Vec<_>>().await.into_iter().filter(|(_, work)| *work).map(|(id, _)| id).collect()
}
