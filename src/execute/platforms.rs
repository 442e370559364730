//! The work of images with declared platforms: one platform's build and verification, by the builder of that
//! platform, under the platform's local name; and publishing, once every platform is verified: each platform's
//! image pushed through its builder to the version tag (so that no other tag is left in the registry), then
//! one index listing exactly the declared platforms put under the version tag and every extra tag. An image
//! declaring one platform is pushed as a plain image, as an image without declared platforms is.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::definition::dockerfile::{self, ImageReference};
use crate::engine::Engine;
use crate::graph::Origin;
use crate::plan::platforms::local_reference;
use crate::plan::{State, repository_path};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::registry::manifest::{Descriptor, ManifestPlatform, TagContent};
use crate::report::progress::{PlatformDigest, Reporter, Row, Step};
use crate::timestamp;
use crate::tree::{ImageId, Rendered};

use super::scheduler::Outcome;
use super::{LogSink, Node, Pushed, Record, Run};

impl Run {
    /// One declared platform of an image: built unless its builder has it, verified unless published (or, when
    /// not publishing, built already).
    pub(super) async fn platform(self: Arc<Self>, id: ImageId, k: usize) -> Result<State, String> {
        let image = &self.analysis.tree[id];
        let Some(planned) = self.plan.get(&id) else { return Err("not planned".into()) };
        if planned.state == State::Error {
            return Err(planned.reason.clone());
        }
        let Some(own) = planned.platforms.get(k) else { return Err("platform not planned".into()) };
        let platform = &own.platform;
        let publishing = self.options.publish.is_some();
        let node = Node::Platform(id, k);
        if own.state != State::ToBuild && (own.state != State::Built || !publishing) {
            let reason = format!("already {}: {}", own.state.as_str(), own.reason);
            crate::lock(&self.records).insert(node, Record { state: Some(own.state), reason, ..Record::default() });
            self.platform_finished(id);
            return Ok(own.state);
        }
        let started = Instant::now();
        let log_path = self.options.log_dir.join(format!("{}.{}.log", image.name, platform.slug()));
        let result = async {
            let key = Reporter::key(&image.name, Some(&platform.to_string()));
            let mut log = LogSink::create(&log_path, &self.reporter, key)?;
            log.line(&format!("# {} for {platform} {}", image.label, timestamp::rfc3339(SystemTime::now())));
            if own.state == State::ToBuild {
                self.build(id, Some(platform), &mut log).await?;
            }
            self.verify(id, Some(platform), own.state, &mut log).await
        }
        .await;
        let (state, reason) = match &result {
            Ok(how) => (State::Verified, how.clone()),
            Err(why) => (State::Error, why.clone()),
        };
        let record = Record { state: Some(state), duration: Some(started.elapsed()), log: Some(log_path), reason };
        crate::lock(&self.records).insert(node, record);
        self.reporter.platform_done(&image.name, &platform.to_string());
        self.platform_finished(id);
        result.map(|_| State::Verified)
    }

    /// When not publishing, reports image `id` once its last platform has finished.
    fn platform_finished(&self, id: ImageId) {
        let last = match crate::lock(&self.remaining).get_mut(&id) {
            Some(count) => {
                *count = count.saturating_sub(1);
                *count == 0
            }
            None => false,
        };
        if !last {
            return;
        }
        let nodes: Vec<Node> = (0..self.analysis.tree[id].platforms.len()).map(|k| Node::Platform(id, k)).collect();
        let records = crate::lock(&self.records).clone();
        let from_records = |node: &Node| match records.get(node) {
            Some(Record { state: Some(State::Error), reason, .. }) => Some(Outcome::Failed(reason.clone())),
            Some(Record { state: Some(state), .. }) => Some(Outcome::Done(*state)),
            _ => None,
        };
        let (outcome, record) = combined(&nodes, from_records, &records, |n| self.node_name(n));
        let state = match outcome {
            Some(Outcome::Done(state)) => state,
            _ => State::Error,
        };
        let reason = match outcome {
            Some(Outcome::Failed(why)) => why,
            _ => record.reason,
        };
        self.report_finished(id, state, &reason, record.duration.unwrap_or_default(), record.log.as_deref());
    }

    /// Publishes an image with declared platforms, every platform verified: pushes what the registry lacks and
    /// writes the index (or, for one platform, the image itself) under every tag.
    pub(super) async fn publish(self: Arc<Self>, id: ImageId) -> Result<State, String> {
        let image = &self.analysis.tree[id];
        let Some(planned) = self.plan.get(&id) else { return Err("not planned".into()) };
        if planned.state == State::Error {
            return Err(planned.reason.clone());
        }
        let node = Node::Publish(id);
        if planned.state == State::Published {
            let reason = format!("already published: {}", planned.reason);
            let record = Record { state: Some(State::Published), reason, ..Record::default() };
            crate::lock(&self.records).insert(node, record);
            return Ok(State::Published);
        }
        let started = Instant::now();
        let log_path = self.options.log_dir.join(format!("{}.log", image.name));
        let result = async {
            let mut log = LogSink::create(&log_path, &self.reporter, image.name.clone())?;
            log.line(&format!("# publish {} {}", image.label, timestamp::rfc3339(SystemTime::now())));
            self.reporter.started(&image.name, None, Step::Push);
            self.push_platforms(id, &mut log).await.map_err(|why| log.failure(&why))
        }
        .await;
        let (state, reason) = match &result {
            Ok(pushed) => (State::Published, format!("pushed {}", pushed.digest)),
            Err(why) => (State::Error, why.clone()),
        };
        let record =
            Record { state: Some(state), duration: Some(started.elapsed()), log: Some(log_path.clone()), reason };
        let reason = record.reason.clone();
        crate::lock(&self.records).insert(node, record);
        self.report_finished(id, state, &reason, started.elapsed(), Some(&log_path));
        result.map(|_| State::Published)
    }

    async fn push_platforms(&self, id: ImageId, log: &mut LogSink) -> Result<Pushed, String> {
        let image = &self.analysis.tree[id];
        let Some(planned) = self.plan.get(&id) else { return Err("not planned".into()) };
        let Some(label) = &image.reference else { return Err(format!("{} is not a valid reference", image.label)) };
        let host = self.analysis.tree.config.registry();
        let path = repository_path(image, host);
        let tags = self.push_tags(id, self.options.publish.as_deref().unwrap_or_default());
        let mut manifests = Vec::new();
        for own in &planned.platforms {
            let platform = &own.platform;
            let manifest_platform = ManifestPlatform {
                os: platform.os.clone(),
                architecture: platform.architecture.clone(),
                variant: platform.oci_variant().map(str::to_owned),
            };
            if own.state == State::Published
                && let Some(descriptor) = &own.descriptor
            {
                log.line(&format!("# {platform}: in the registry already as {}", descriptor.digest));
                manifests.push(Descriptor { platform: Some(manifest_platform), ..descriptor.clone() });
                continue;
            }
            let engine = self.builders.for_platform(platform);
            let local = local_reference(&image.label, platform);
            // Pushed to the version tag itself (the index replaces it below), so that no other tag is left.
            let digest = self
                .push_as(engine, &local, label, log)
                .await?
                .ok_or_else(|| format!("{platform}: the daemon did not report the digest it pushed"))?;
            let descriptor = self
                .registry
                .descriptor(host, path, &digest)
                .await
                .map_err(|e| e.message)?
                .ok_or_else(|| format!("{platform}: pushed {digest}, but the registry does not have it"))?;
            log.line(&format!("# {platform}: pushed {digest}"));
            manifests.push(Descriptor { platform: Some(manifest_platform), ..descriptor });
        }
        self.tag_native(id, label, log).await;
        if let [only] = manifests.as_slice() {
            return self.push_single(id, &tags, only, log).await;
        }
        let digest = self.registry.put_index(host, path, &tags, &manifests).await.map_err(|e| e.message)?;
        // Trust, but verify: the version tag must now be that index.
        match self.registry.tag_content(host, path, &image.tag).await {
            Ok(Some(TagContent::Index { digest: served, .. })) if served == digest => {}
            Ok(other) => {
                return Err(format!("put the index {digest}, but the registry serves {other:?} under {}", image.tag));
            }
            Err(e) => return Err(format!("put the index, but checking the registry failed: {}", e.message)),
        }
        log.line(&format!("# published {} {digest} ({} platforms)", image.label, manifests.len()));
        let platforms = planned
            .platforms
            .iter()
            .zip(&manifests)
            .map(|(own, m)| PlatformDigest { platform: own.platform.to_string(), digest: m.digest.clone() })
            .collect();
        Ok(self.record_pushed(id, digest, tags, platforms))
    }

    /// Each push left the version tag in its builder on the platform pushed last there: in the default daemon,
    /// it goes back to the image of the daemon's own platform (what `docker run` of the tag there should run),
    /// when that platform is declared and built there.
    async fn tag_native(&self, id: ImageId, label: &Reference, log: &mut LogSink) {
        let image = &self.analysis.tree[id];
        let engine = self.builders.default_engine();
        let Ok(native) = self.native_platform(engine).await else { return };
        if !image.platforms.contains(&native) || !std::ptr::eq(self.builders.for_platform(&native), engine) {
            return;
        }
        let local = local_reference(&image.label, &native);
        match engine.tag_reference(&local, label).await {
            Ok(()) => log.line(&format!("# {label} in the local daemon: its {native} image")),
            Err(e) => log.line(&format!("# could not tag {local} as {label}: {e}")),
        }
    }

    /// An image declaring one platform: a plain image under every tag, as an image without declared platforms.
    async fn push_single(
        &self,
        id: ImageId,
        tags: &[String],
        manifest: &Descriptor,
        log: &mut LogSink,
    ) -> Result<Pushed, String> {
        let image = &self.analysis.tree[id];
        let Some(label) = &image.reference else { return Err(format!("{} is not a valid reference", image.label)) };
        let platform = &image.platforms[0];
        let engine = self.builders.for_platform(platform);
        let local = local_reference(&image.label, platform);
        for tag in tags.iter().filter(|t| **t != image.tag) {
            self.push_as(engine, &local, &label.with_tag(tag)?, log).await?;
        }
        log.line(&format!("# published {} {}", image.label, manifest.digest));
        Ok(self.record_pushed(id, manifest.digest.clone(), tags.to_vec(), Vec::new()))
    }

    /// The Dockerfile to build `index` with, its tree parents with declared platforms named by their images for
    /// `parents_platform`, and, when building for a `platform`, its base images by their pulls for it.
    pub(super) async fn dockerfile_for(
        &self,
        index: ImageId,
        rendered: &Rendered,
        platform: Option<&Platform>,
        parents_platform: &Platform,
        engine: &Engine,
    ) -> Result<String, String> {
        let tree = &self.analysis.tree;
        let mut replacements: HashMap<String, String> = HashMap::new();
        for (&parent, origins) in &self.analysis.deps.parents[index] {
            let parent_image = &tree[parent];
            let written = origins.iter().filter_map(|origin| match origin {
                Origin::Dockerfile { reference, .. } => Some(reference.clone()),
                _ => None,
            });
            if parent_image.platforms.is_empty() {
                // It builds for its daemon's platform only.
                let native = self.native_platform(engine).await?;
                if native != *parents_platform {
                    return Err(format!(
                        "needs {parents_platform} of {}, which builds only its daemon's platform ({native}); declare \
                         Platforms in its control file",
                        parent_image.name
                    ));
                }
                continue;
            }
            if !parent_image.platforms.contains(parents_platform) {
                return Err(format!(
                    "needs {parents_platform} of {}, which builds only {}",
                    parent_image.name,
                    list(&parent_image.platforms)
                ));
            }
            for reference in written {
                replacements.insert(reference, local_reference(&parent_image.label, parents_platform));
            }
        }
        let external = &self.analysis.deps.external[index];
        if let Some(platform) = platform {
            for reference in crate::plan::own_bases(&self.analysis, index) {
                if let Some(local) = self.base_for(engine, reference, platform).await? {
                    replacements.insert(reference.to_owned(), local);
                }
            }
        }
        let replaced = dockerfile::replace_references(&rendered.dockerfile, |r: &ImageReference| {
            // `FROM --platform=… image` outside the tree: the daemon fetches it for the platform the line names.
            if r.pinned_platform && external.contains(&r.reference) {
                return None;
            }
            replacements.get(&r.reference).cloned()
        });
        replaced.map_err(|e| format!("{}: {e}", tree[index].template_path().display()))
    }

    /// The local name of the base image `reference` for `platform` in `engine`: its pull for that platform, or
    /// the daemon's own image of that name when it is for that platform. `None` when the daemon has neither
    /// (the build then fetches it for the platform).
    async fn base_for(&self, engine: &Engine, reference: &str, platform: &Platform) -> Result<Option<String>, String> {
        let local = local_reference(reference, platform);
        if engine.inspect(&local).await.map_err(|e| e.to_string())?.is_some() {
            return Ok(Some(local));
        }
        let Some(found) = engine.inspect(reference).await.map_err(|e| e.to_string())? else { return Ok(None) };
        match Platform::parse(&found.platform) {
            Ok(actual) if actual == *platform => {
                let target = crate::reference::Reference::parse(&local)?;
                engine.tag_reference(reference, &target).await.map_err(|e| e.to_string())?;
                Ok(Some(local))
            }
            _ => Err(format!(
                "the daemon's {reference} is for {}, not {platform}: list it in base_images so that imgraph pulls it \
                 for each platform",
                found.platform
            )),
        }
    }

    /// Checks that the image built as `tag` is for `platform`: the classic builder takes a local base image
    /// whatever its platform.
    pub(super) async fn check_built_platform(
        &self,
        engine: &Engine,
        tag: &str,
        platform: &Platform,
    ) -> Result<(), String> {
        let built = engine.inspect(tag).await.map_err(|e| e.to_string())?;
        let actual = built.map(|b| b.platform).unwrap_or_default();
        match Platform::parse(&actual) {
            Ok(actual) if actual == *platform => Ok(()),
            _ => Err(format!("built {tag} for {actual}, not {platform}: a base image it uses is for another platform")),
        }
    }

    /// How each platform of image `id` ended: none for an image without declared platforms, nor for one whose
    /// platforms never came to be scheduled (in error or skipped from the plan on: its own row says why).
    pub(super) fn platform_rows(
        &self,
        id: ImageId,
        nodes: &[Node],
        outcomes: &BTreeMap<Node, Outcome<State, Node>>,
        records: &HashMap<Node, Record>,
    ) -> Vec<Row> {
        let image = &self.analysis.tree[id];
        let planned_out = self.plan.get(&id).is_none_or(|p| matches!(p.state, State::Error | State::Skipped));
        let scheduled = nodes.iter().any(|n| matches!(n, Node::Platform(..)) && outcomes.contains_key(n));
        if planned_out || !scheduled {
            return Vec::new();
        }
        nodes
            .iter()
            .filter_map(|&node| match node {
                Node::Platform(_, k) => Some((node, &image.platforms[k])),
                _ => None,
            })
            .map(|(node, platform)| {
                let record = records.get(&node).cloned().unwrap_or_default();
                let (state, reason) = self.ending(outcomes.get(&node), record.reason);
                Row {
                    name: platform.to_string(),
                    tag: image.tag.clone(),
                    state,
                    reason,
                    duration: record.duration,
                    log: record.log,
                    platforms: Vec::new(),
                }
            })
            .collect()
    }

    /// The platform of `engine`'s daemon.
    pub(super) async fn native_platform(&self, engine: &Engine) -> Result<Platform, String> {
        let text = engine.native_platform().await.map_err(|e| e.to_string())?;
        Platform::parse(text)
    }
}

/// How an image with declared platforms ended, from how each of its platforms did (`outcome_of`), when not
/// publishing: failed if one failed (saying which), skipped if one was, and otherwise done. With the record
/// that tells it (every platform's reason, the longest time, the first log).
pub(super) fn combined(
    nodes: &[Node],
    outcome_of: impl Fn(&Node) -> Option<Outcome<State, Node>>,
    records: &HashMap<Node, Record>,
    name: impl Fn(Node) -> String,
) -> (Option<Outcome<State, Node>>, Record) {
    let mut failed = Vec::new();
    let mut skipped = None;
    let mut unfinished = false;
    let mut states = Vec::new();
    for &node in nodes {
        match outcome_of(&node) {
            Some(Outcome::Done(state)) => states.push(state),
            Some(Outcome::Failed(why)) => failed.push(format!("{}: {why}", name(node))),
            Some(Outcome::Skipped { because }) => skipped = skipped.or(Some(because)),
            Some(Outcome::Cancelled) | None => unfinished = true,
        }
    }
    let outcome = if !failed.is_empty() {
        Outcome::Failed(failed.join("\n"))
    } else if let Some(because) = skipped {
        Outcome::Skipped { because }
    } else if unfinished {
        Outcome::Cancelled
    } else if states.contains(&State::Verified) {
        Outcome::Done(State::Verified)
    } else if states.contains(&State::Built) {
        Outcome::Done(State::Built)
    } else {
        Outcome::Done(State::Published)
    };
    let own: Vec<(Node, &Record)> = nodes.iter().filter_map(|n| Some((*n, records.get(n)?))).collect();
    let record = Record {
        state: None,
        duration: own.iter().filter_map(|(_, r)| r.duration).max(),
        log: own.iter().find_map(|(_, r)| r.log.clone()),
        reason: own.iter().map(|(n, r)| format!("{}: {}", name(*n), r.reason)).collect::<Vec<_>>().join("; "),
    };
    (Some(outcome), record)
}

/// `linux/amd64, linux/arm64`.
fn list(platforms: &[Platform]) -> String {
    platforms.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}
