//! `imgraph outdated`: the published images that no longer match what they should be, which version tags alone
//! hide. Two reasons:
//!
//! * `changed`: the tree's fingerprint of the image (see [`crate::fingerprint`]) differs from the
//!   `dev.imgraph.fingerprint` label of the published image, read from its config in the registry: its content
//!   changed and its version was not bumped;
//! * `base`: the base image it was built on (the `org.opencontainers.image.base.name` label, outside the tree)
//!   now has another digest in its registry than the one recorded when it was built
//!   (`org.opencontainers.image.base.digest`): it is stale.
//!
//! An image whose fingerprint differs only because a parent's did is not listed itself: it is among that
//! parent's dependents. Images without those labels (built by another tool) cannot be judged and are left out,
//! said at `-v`.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures_util::StreamExt;
use serde::Serialize;

use crate::analysis::Analysis;
use crate::execute::BASE_DIGEST_LABEL;
use crate::fingerprint::{self, Fingerprints};
use crate::plan;
use crate::reference::Parts;
use crate::registry::{RegistryClient, RegistryError, TagState};
use crate::tree::ImageId;

/// The label naming the base image a build used.
pub const BASE_NAME_LABEL: &str = "org.opencontainers.image.base.name";

/// How many images are looked at once.
const CONCURRENCY: usize = 16;

/// Why a published image is outdated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    Changed,
    Base,
}

/// One published image that no longer matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outdated {
    pub image: ImageId,
    pub reason: Reason,
    /// What differs, for humans.
    pub detail: String,
    /// For [`Reason::Base`]: the base, its digest when built, and its digest now.
    pub base: Option<(String, String, String)>,
}

/// The outdated images among `selected` (in build order), every reason of each.
pub async fn find(
    analysis: &Arc<Analysis>,
    selected: &[ImageId],
    registry: &RegistryClient,
) -> Result<Vec<Outdated>, RegistryError> {
    let fingerprints = Arc::new(Fingerprints::default());
    let checks = futures_util::stream::iter(selected.iter().copied())
        .map(|id| check(analysis, id, registry, &fingerprints))
        .buffered(CONCURRENCY);
    let found: Vec<Outdated> =
        checks.collect::<Vec<_>>().await.into_iter().collect::<Result<Vec<_>, _>>()?.into_iter().flatten().collect();
    // A fingerprint includes the parents' fingerprints: a changed parent changes its dependents' too. Those are
    // the parent's dependents, not changes of their own.
    let changed: BTreeSet<ImageId> = found.iter().filter(|o| o.reason == Reason::Changed).map(|o| o.image).collect();
    let below_a_change = |id: ImageId| {
        let mut ancestors = analysis.graph.with_ancestors(&BTreeSet::from([id]));
        ancestors.remove(&id);
        ancestors.iter().any(|a| changed.contains(a))
    };
    Ok(found.into_iter().filter(|o| o.reason != Reason::Changed || !below_a_change(o.image)).collect())
}

async fn check(
    analysis: &Arc<Analysis>,
    id: ImageId,
    registry: &RegistryClient,
    fingerprints: &Arc<Fingerprints>,
) -> Result<Vec<Outdated>, RegistryError> {
    let tree = &analysis.tree;
    let image = &tree[id];
    let host = tree.config.registry();
    if analysis.unbuildable(id).is_some() || host.is_empty() {
        return Ok(Vec::new());
    }
    let Some(labels) = registry.image_labels(host, plan::repository_path(image, host), &image.tag).await? else {
        tracing::info!(image = image.name, "not published: nothing to compare");
        return Ok(Vec::new());
    };
    let mut outdated = Vec::new();
    match labels.get(fingerprint::LABEL) {
        None => tracing::info!(image = image.name, "no fingerprint label (built by another tool): not judged"),
        Some(published) => {
            let (analysis, fingerprints) = (analysis.clone(), fingerprints.clone());
            let tree_fingerprint = tokio::task::spawn_blocking(move || fingerprints.of(&analysis, id))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r);
            match tree_fingerprint {
                Ok(current) if current != *published => outdated.push(Outdated {
                    image: id,
                    reason: Reason::Changed,
                    detail: format!("published fingerprint {published}, the tree's is {current}"),
                    base: None,
                }),
                Ok(_) => {}
                Err(why) => tracing::warn!(image = tree[id].name, why, "cannot compute the fingerprint"),
            }
        }
    }
    if let (Some(base), Some(built_on)) = (labels.get(BASE_NAME_LABEL), labels.get(BASE_DIGEST_LABEL))
        && !is_tree_image(analysis, base)
        && let Some(now) = current_digest(registry, base).await?
        && now != *built_on
    {
        outdated.push(Outdated {
            image: id,
            reason: Reason::Base,
            detail: format!("base {base} moved from {built_on} to {now}"),
            base: Some((base.clone(), built_on.clone(), now)),
        });
    }
    Ok(outdated)
}

/// Whether `reference` names an image of the tree (those are rebuilt through their own fingerprints).
fn is_tree_image(analysis: &Analysis, reference: &str) -> bool {
    let repository = Parts::of(reference).repository;
    analysis.tree.images().any(|(_, image)| image.repository == repository)
}

/// The digest `reference` has in its registry now; `None` when the registry no longer has it.
async fn current_digest(registry: &RegistryClient, reference: &str) -> Result<Option<String>, RegistryError> {
    let (host, path, manifest) = Parts::of(reference).location();
    match registry.tag_state(host, path, manifest).await? {
        TagState::Present { digest } => Ok(digest),
        TagState::Absent => Ok(None),
    }
}

/// The images depending on `id`, transitively, in build order, by name.
pub fn dependents(analysis: &Analysis, id: ImageId) -> Vec<String> {
    let mut all = analysis.graph.with_descendants(&BTreeSet::from([id]));
    all.remove(&id);
    analysis.graph.in_order(&all).into_iter().map(|d| analysis.tree[d].name.clone()).collect()
}
