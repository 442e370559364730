//! Multi-platform images in the plan: each declared platform's state, from what the registry serves under the
//! tag (an index, or one image) and from that platform's image in the daemon that builds it; and the local
//! names those images go by.
//!
//! A daemon holds one image per name, and its classic builder takes a local `FROM` image whatever platform it
//! is for. So each platform's image of a multi-platform image, and each platform's pull of a base image, gets
//! a local name of its own under [`LOCAL_REGISTRY`], which nothing ever pushes; builds for a platform name
//! their parents by those names.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use crate::engine::{Builders, EngineError};
use crate::platform::Platform;
use crate::reference::Parts;
use crate::registry::manifest::{Descriptor, ManifestPlatform, TagContent};
use crate::registry::{RegistryClient, RegistryError};
use crate::tree::Image;

use super::{PullMode, State, repository_path};

/// The registry part of every local per-platform name: not a registry anyone runs, so a push by mistake
/// fails instead of publishing.
pub const LOCAL_REGISTRY: &str = "imgraph.local";

/// The local name of `reference` (`[registry/]path[:tag]`) for `platform`:
/// `imgraph.local/<platform>/<registry>/<path>:<tag>`.
pub fn local_reference(reference: &str, platform: &Platform) -> String {
    let parts = Parts::of(reference);
    let (registry, path) = match crate::reference::registry(reference) {
        Some(registry) => (registry, parts.repository[registry.len()..].trim_start_matches('/')),
        None => ("docker.io", parts.repository),
    };
    let tag = match (parts.tag, parts.digest) {
        (Some(tag), _) => tag.to_owned(),
        // A digest is not a tag: its hex, shortened, stands for it.
        (None, Some(digest)) => digest.rsplit(':').next().unwrap_or(digest).chars().take(32).collect(),
        (None, None) => "latest".to_owned(),
    };
    format!("{LOCAL_REGISTRY}/{}/{}/{path}:{tag}", platform.slug(), registry.replace(':', "-"))
}

/// One declared platform of an image, planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformPlan {
    pub platform: Platform,
    /// `Published` (the tag's index, or image, has it), `Built` (its builder has it), or `ToBuild`.
    pub state: State,
    pub reason: String,
    /// Its entry in the registry, kept when the index is written again.
    pub descriptor: Option<Descriptor>,
}

/// An image with declared platforms, planned: its overall state and reason, the digest its tag serves when
/// every platform is published, and each platform's plan.
pub(super) struct Classified {
    pub state: State,
    pub reason: String,
    pub digest: Option<String>,
    pub platforms: Vec<PlatformPlan>,
}

/// Classifies each of `image`'s declared platforms, registry first or (`--no-pull`) daemon first, as
/// docker-pkg classifies images; a registry that cannot answer is an error for the whole image. Registry first,
/// a platform to build that one of its `bases` (outside the tree) lacks is an error for the whole image.
pub(super) async fn classify(
    image: &Image,
    bases: &BTreeSet<&str>,
    known_bases: &BasePlatforms,
    host: &str,
    registry: &RegistryClient,
    builders: &Builders,
    mode: PullMode,
) -> Result<Result<Classified, RegistryError>, EngineError> {
    let published = if host.is_empty() {
        None
    } else {
        match registry_entries(image, host, registry).await {
            Ok(entries) => Some(entries),
            Err(e) => return Ok(Err(e)),
        }
    };
    let mut platforms = Vec::new();
    for platform in &image.platforms {
        let in_registry = published.as_ref().and_then(|p| p.entries.iter().find(|(p, _)| p == platform));
        let local = || async {
            let engine = builders.for_platform(platform);
            let found = engine.inspect(&local_reference(&image.label, platform)).await?;
            Ok::<_, EngineError>(found.is_some())
        };
        let registry_word = if host.is_empty() { "no registry" } else { "not in the registry" };
        let published =
            |descriptor: &Descriptor| (State::Published, "in the registry".to_owned(), Some(descriptor.clone()));
        let built = || (State::Built, format!("in its builder daemon, {registry_word}"), None);
        let (state, reason, descriptor) = match mode {
            PullMode::Pull => match in_registry {
                Some((_, descriptor)) => published(descriptor),
                None if local().await? => built(),
                None => (State::ToBuild, format!("{registry_word}, nor in its builder daemon"), None),
            },
            // Daemon first: what its builder lacks is built again, as docker-pkg does.
            PullMode::NoPull if !local().await? => (State::ToBuild, "not in its builder daemon".to_owned(), None),
            PullMode::NoPull => in_registry.map_or_else(built, |(_, descriptor)| published(descriptor)),
        };
        platforms.push(PlatformPlan { platform: platform.clone(), state, reason, descriptor });
    }
    let state = if platforms.iter().all(|p| p.state == State::Published) {
        State::Published
    } else if platforms.iter().any(|p| p.state == State::ToBuild) {
        State::ToBuild
    } else {
        State::Built
    };
    let to_build: Vec<&Platform> =
        platforms.iter().filter(|p| p.state == State::ToBuild).map(|p| &p.platform).collect();
    if mode == PullMode::Pull
        && let Some(missing) = missing_base_platform(bases, &to_build, known_bases, registry).await
    {
        return Ok(Ok(Classified { state: State::Error, reason: missing, digest: None, platforms }));
    }
    let reason = summarize(&platforms);
    let digest = published.and_then(|p| p.index_digest).filter(|_| state == State::Published);
    Ok(Ok(Classified { state, reason, digest, platforms }))
}

/// Why a base image outside the tree (`bases`) cannot give a platform of `to_build`, as its registry says:
/// checked before anything is built, where the pull would only fail mid-run. A registry that does not answer,
/// or does not have the image, gives no verdict (the pull will tell).
async fn missing_base_platform(
    bases: &BTreeSet<&str>,
    to_build: &[&Platform],
    known: &BasePlatforms,
    registry: &RegistryClient,
) -> Option<String> {
    if to_build.is_empty() {
        return None;
    }
    for base in bases {
        let Some(provided) = known.of(base, registry).await else { continue };
        let missing: Vec<String> = to_build.iter().filter(|p| !provided.contains(p)).map(ToString::to_string).collect();
        if !missing.is_empty() {
            let provided: Vec<String> = provided.iter().map(ToString::to_string).collect();
            return Some(format!(
                "its base image {base} has no {} image in its registry (it has {})",
                missing.join(", "),
                if provided.is_empty() { "none".to_owned() } else { provided.join(", ") }
            ));
        }
    }
    None
}

/// The platforms each base image's tag provides, asked of its registry once per plan, however many images use
/// it; `None` when the registry did not say.
#[derive(Default)]
pub(super) struct BasePlatforms(Mutex<HashMap<String, Arc<Lookup>>>);

/// One base image's platforms, once asked.
type Lookup = OnceCell<Option<Vec<Platform>>>;

impl BasePlatforms {
    async fn of(&self, base: &str, registry: &RegistryClient) -> Option<Vec<Platform>> {
        let cell = crate::lock(&self.0).entry(base.to_owned()).or_default().clone();
        cell.get_or_init(|| provided_platforms(base, registry)).await.clone()
    }
}

async fn provided_platforms(base: &str, registry: &RegistryClient) -> Option<Vec<Platform>> {
    let (host, path, manifest) = Parts::of(base).location();
    match registry.tag_content(host, path, manifest).await {
        Ok(Some(TagContent::Index { manifests, .. })) => {
            Some(manifests.iter().filter_map(|m| m.platform.as_ref().and_then(platform_of)).collect())
        }
        Ok(Some(TagContent::Image { platform, .. })) => Some(platform_of(&platform).into_iter().collect()),
        Ok(None) => None,
        Err(e) => {
            tracing::debug!(base, error = %e, "its platforms are not known before the pull");
            None
        }
    }
}

/// What the registry serves under an image's tag, by platform.
struct Entries {
    entries: Vec<(Platform, Descriptor)>,
    /// The tag's digest when it is an index.
    index_digest: Option<String>,
}

async fn registry_entries(image: &Image, host: &str, registry: &RegistryClient) -> Result<Entries, RegistryError> {
    let path = repository_path(image, host);
    Ok(match registry.tag_content(host, path, &image.tag).await? {
        None => Entries { entries: Vec::new(), index_digest: None },
        Some(TagContent::Index { digest, manifests }) => {
            let mut entries = Vec::new();
            for manifest in manifests {
                let Some(platform) = manifest.platform.as_ref().and_then(platform_of) else { continue };
                // An index may name a manifest the registry lost (deleted by digest): that platform is missing.
                if image.platforms.contains(&platform)
                    && registry.descriptor(host, path, &manifest.digest).await?.is_some()
                {
                    entries.push((platform, manifest));
                }
            }
            Entries { entries, index_digest: Some(digest) }
        }
        Some(TagContent::Image { digest, platform }) => {
            let descriptor = registry.descriptor(host, path, &digest).await?;
            let entries = descriptor
                .zip(platform_of(&platform))
                .map(|(descriptor, p)| (p, Descriptor { platform: Some(platform), ..descriptor }))
                .into_iter()
                .collect();
            Entries { entries, index_digest: None }
        }
    })
}

/// The platform an index entry or image config names, normalised as declared platforms are.
fn platform_of(platform: &ManifestPlatform) -> Option<Platform> {
    Platform::parse(&platform.to_string()).ok()
}

/// `published: linux/amd64; to build: linux/arm64 (…)`: the platforms grouped by state, each with why.
fn summarize(platforms: &[PlatformPlan]) -> String {
    let mut groups: Vec<String> = Vec::new();
    for state in [State::Published, State::Built, State::ToBuild] {
        let members: Vec<String> = platforms
            .iter()
            .filter(|p| p.state == state)
            .map(|p| {
                if state == State::Published {
                    p.platform.to_string()
                } else {
                    format!("{} ({})", p.platform, p.reason)
                }
            })
            .collect();
        if !members.is_empty() {
            groups.push(format!("{}: {}", state.as_str(), members.join(", ")));
        }
    }
    groups.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(text: &str) -> Platform {
        Platform::parse(text).unwrap()
    }

    #[test]
    fn local_references_are_per_platform_and_never_in_a_real_registry() {
        let arm64 = platform("linux/arm64");
        assert_eq!(
            local_reference("127.0.0.1:5000/ns/app:1.0-1", &arm64),
            "imgraph.local/linux-arm64/127.0.0.1-5000/ns/app:1.0-1"
        );
        assert_eq!(local_reference("busybox", &arm64), "imgraph.local/linux-arm64/docker.io/busybox:latest");
        assert_eq!(
            local_reference(
                "reg.example/base@sha256:0123456789abcdef0123456789abcdef0123456789abcdef",
                &platform("linux/arm/v7")
            ),
            "imgraph.local/linux-arm-v7/reg.example/base:0123456789abcdef0123456789abcdef"
        );
        for reference in ["127.0.0.1:5000/ns/app:1.0-1", "busybox", "reg.example/a/b/c:x"] {
            let local = local_reference(reference, &arm64);
            assert!(crate::reference::Reference::parse(&local).is_ok(), "{local}");
        }
    }

    #[test]
    fn summaries_group_platforms_by_state() {
        let plan = |p: &str, state, reason: &str| PlatformPlan {
            platform: platform(p),
            state,
            reason: reason.into(),
            descriptor: None,
        };
        let platforms = [
            plan("linux/amd64", State::Published, "in the registry"),
            plan("linux/arm64", State::ToBuild, "not in the registry, nor in its builder daemon"),
        ];
        assert_eq!(
            summarize(&platforms),
            "published: linux/amd64; to-build: linux/arm64 (not in the registry, nor in its builder daemon)"
        );
    }
}
