//! Execution: the per-image steps (pull what a build needs, build, verify, and for `publish` push) run by the
//! [`scheduler`] over the DAG, each image's output in its own log file, progress to the [`Reporter`].
//!
//! An image without declared platforms is one unit of work, as with docker-pkg. An image with declared
//! platforms is one unit per platform (built and verified by that platform's builder, needing only its
//! parents' builds for the same platform, so platforms proceed independently), plus, for `publish`, one that
//! pushes every platform and writes the index once all of them are verified ([`platforms`]).

mod platforms;
pub mod scheduler;
pub mod verify;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::analysis::Analysis;
use crate::definition::dockerfile::ReferenceKind;
use crate::engine::{BuildRequest, Builders, Engine};
use crate::fingerprint::{self, Fingerprints};
use crate::plan::{self, Planned, PullMode, State};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::registry::{RegistryClient, TagState};
use crate::report::ImageLine;
use crate::report::progress::{Finished, PlatformDigest, Reporter, Row, Step, Summary};
use crate::timestamp;
use crate::tree::{ImageId, Rendered};
use scheduler::Outcome;
use verify::Verification;

/// The label recording the registry digest of the base image a build used.
pub const BASE_DIGEST_LABEL: &str = "org.opencontainers.image.base.digest";

/// Lines of a failed step's output shown in the summary.
const TAIL_LINES: usize = 15;

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub jobs: usize,
    pub use_cache: bool,
    pub pull: PullMode,
    pub fail_fast: bool,
    pub verify_timeout: Duration,
    pub log_dir: PathBuf,
    /// `publish`: push every image (after verifying it) under its version and these extra tags.
    pub publish: Option<Vec<String>>,
}

/// A unit of work of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Node {
    /// An image without declared platforms: built for its daemon's own platform, verified, pushed.
    Image(ImageId),
    /// One declared platform (an index into the image's `platforms`): built and verified.
    Platform(ImageId, usize),
    /// `publish` of an image with declared platforms: every platform pushed, then the index.
    Publish(ImageId),
}

impl Node {
    fn image(self) -> ImageId {
        match self {
            Node::Image(i) | Node::Platform(i, _) | Node::Publish(i) => i,
        }
    }
}

/// A pull: the daemon's host and the reference, and the platform it is for.
type PullKey = (String, Option<Platform>);

/// Everything the image tasks share.
struct Run {
    analysis: Arc<Analysis>,
    parents: HashMap<ImageId, Vec<ImageId>>,
    plan: HashMap<ImageId, Planned>,
    builders: Builders,
    registry: RegistryClient,
    options: BuildOptions,
    reporter: Arc<Reporter>,
    revision: Option<String>,
    /// The content fingerprints of the tree's images, computed as builds need them.
    fingerprints: Arc<Fingerprints>,
    /// Pulls done (or failed) in this run, by reference: each is tried once, children wait for it.
    pulls: tokio::sync::Mutex<HashMap<PullKey, Result<(), String>>>,
    records: Mutex<HashMap<Node, Record>>,
    /// Images pushed by this run.
    pushed: Mutex<HashMap<ImageId, Pushed>>,
    /// Per image with declared platforms, when not publishing: platforms still to finish (the last one reports
    /// the image).
    remaining: Mutex<HashMap<ImageId, usize>>,
    /// The images whose end was reported.
    reported: Mutex<HashSet<ImageId>>,
}

/// An image `publish` pushed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pushed {
    pub name: String,
    pub tag: String,
    /// The full reference of the version tag.
    pub reference: String,
    pub digest: String,
    /// Every tag pushed: the version, then the configured extra tags.
    pub tags: Vec<String>,
    /// For several platforms: each one's manifest digest (`digest` is then the index's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformDigest>,
}

/// What an image's task recorded.
#[derive(Debug, Clone, Default)]
struct Record {
    /// How it ended, for a platform's work (whose image's end is told once all its platforms have ended).
    state: Option<State>,
    /// How long its work took, when it did any.
    duration: Option<Duration>,
    log: Option<PathBuf>,
    /// How it ended as it did.
    reason: String,
}

/// What a run ended with.
pub struct RunOutcome {
    pub rows: Vec<Row>,
    pub summary: Summary,
    pub interrupted: bool,
    /// What was pushed, in build order.
    pub pushed: Vec<Pushed>,
}

/// The services a run talks to.
pub struct Services {
    pub builders: Builders,
    pub registry: RegistryClient,
}

/// Builds and verifies what the plan says is missing, in dependency order. `plan` covers the selected images
/// in build order; `outside_parents`, the published parents of those images that are not selected (`--only`). Images the plan skips (they need an image that cannot be built) are not run at all; an
/// image in error fails at once, and what depends on it is skipped.
pub async fn build(
    analysis: Arc<Analysis>,
    plan: Vec<Planned>,
    outside_parents: Vec<Planned>,
    services: Services,
    options: BuildOptions,
    reporter: Arc<Reporter>,
    cancel: &CancellationToken,
) -> RunOutcome {
    let order: Vec<ImageId> = plan.iter().map(|p| p.image).collect();
    // An image in error waits for nothing (a cycle's images would otherwise wait for each other forever).
    let parents = plan
        .iter()
        .map(|p| (p.image, if p.state == State::Error { Vec::new() } else { analysis.graph.parents(p.image) }))
        .collect();
    let revision = git_revision(&analysis.tree.root).await;
    let Services { builders, registry } = services;
    let publishing = options.publish.is_some();
    let runnable: Vec<Node> = plan
        .iter()
        .filter(|p| p.state != State::Skipped)
        .flat_map(|p| nodes_of(&analysis, p.image, publishing))
        .collect();
    let remaining = plan
        .iter()
        .filter(|p| !publishing && p.state != State::Error)
        .map(|p| (p.image, analysis.tree[p.image].platforms.len()))
        .filter(|&(_, count)| count > 0)
        .collect();
    let run = Arc::new(Run {
        analysis,
        parents,
        // Parents outside the selection (`--only`) are known, to be pulled, never run.
        plan: plan.into_iter().chain(outside_parents).map(|p| (p.image, p)).collect(),
        builders,
        registry,
        options,
        reporter,
        revision,
        fingerprints: Arc::new(Fingerprints::default()),
        pulls: tokio::sync::Mutex::new(HashMap::new()),
        records: Mutex::new(HashMap::new()),
        pushed: Mutex::new(HashMap::new()),
        remaining: Mutex::new(remaining),
        reported: Mutex::new(HashSet::new()),
    });
    let worker = run.clone();
    let (jobs, fail_fast) = (run.options.jobs, run.options.fail_fast);
    let waits_for = |node| run.waits_for(node);
    let name_of = |node| run.node_name(node);
    let outcomes = scheduler::run(&runnable, waits_for, name_of, jobs, fail_fast, cancel, move |node| {
        let run = worker.clone();
        Box::pin(async move { run.node(node).await })
    })
    .await;
    run.finish(&order, &outcomes, cancel.is_cancelled())
}

/// The units of work of image `id`, in order.
fn nodes_of(analysis: &Analysis, id: ImageId, publishing: bool) -> Vec<Node> {
    let count = analysis.tree[id].platforms.len();
    if count == 0 {
        return vec![Node::Image(id)];
    }
    let mut nodes: Vec<Node> = (0..count).map(|k| Node::Platform(id, k)).collect();
    if publishing {
        nodes.push(Node::Publish(id));
    }
    nodes
}

impl Run {
    /// What `node` waits for. A platform's build waits for its parents' builds for that platform (an image
    /// without declared platforms stands for its daemon's own); an image without declared platforms waits for
    /// its parents' whole work; publishing waits for the image's every platform and its parents' publishing.
    fn waits_for(&self, node: Node) -> Vec<Node> {
        let tree = &self.analysis.tree;
        let publishing = self.options.publish.is_some();
        let parents = self.parents.get(&node.image()).cloned().unwrap_or_default();
        let whole = |parent: ImageId| -> Vec<Node> {
            let declared = tree[parent].platforms.len();
            match (declared, publishing) {
                (0, _) => vec![Node::Image(parent)],
                (_, true) => vec![Node::Publish(parent)],
                (_, false) => (0..declared).map(|k| Node::Platform(parent, k)).collect(),
            }
        };
        match node {
            Node::Image(_) => parents.into_iter().flat_map(whole).collect(),
            Node::Platform(id, k) => {
                let platform = &tree[id].platforms[k];
                parents
                    .into_iter()
                    .flat_map(|parent| match tree[parent].platforms.iter().position(|p| p == platform) {
                        Some(same) => vec![Node::Platform(parent, same)],
                        // Without that platform (a definition error, or a parent without declared platforms):
                        // all of it.
                        None => whole(parent),
                    })
                    .collect()
            }
            Node::Publish(id) => {
                let own = (0..tree[id].platforms.len()).map(|k| Node::Platform(id, k));
                own.chain(parents.into_iter().flat_map(whole)).collect()
            }
        }
    }

    /// How logs name `node`: the image, with the platform for a platform's work.
    fn node_name(&self, node: Node) -> String {
        let image = &self.analysis.tree[node.image()];
        match node {
            Node::Platform(_, k) => format!("{} {}", image.name, image.platforms[k]),
            Node::Image(_) | Node::Publish(_) => image.name.clone(),
        }
    }

    async fn node(self: Arc<Self>, node: Node) -> Result<State, String> {
        match node {
            Node::Image(id) => self.image(id).await,
            Node::Platform(id, k) => self.platform(id, k).await,
            Node::Publish(id) => self.publish(id).await,
        }
    }

    /// One image's work: nothing for what is already there (or, when publishing, already published); build
    /// and verify what is missing; when publishing, verify what is only in the daemon, then push.
    async fn image(self: Arc<Self>, index: ImageId) -> Result<State, String> {
        let Some(planned) = self.plan.get(&index) else { return Err("not planned".into()) };
        let image = &self.analysis.tree[index];
        let publishing = self.options.publish.is_some();
        match planned.state {
            State::ToBuild => {}
            State::Built if publishing => {}
            State::Error => return Err(planned.reason.clone()),
            state => {
                let reason = format!("already {}: {}", state.as_str(), planned.reason);
                crate::lock(&self.records).insert(Node::Image(index), Record { reason, ..Record::default() });
            }
        }
        if planned.state != State::ToBuild && (planned.state != State::Built || !publishing) {
            return Ok(planned.state);
        }
        let started = Instant::now();
        let log_path = self.options.log_dir.join(format!("{}.log", image.name));
        let result = self.work(index, planned.state, &log_path).await;
        let (state, reason) = match &result {
            Ok((state, how)) => (*state, how.clone()),
            Err(why) => (State::Error, why.clone()),
        };
        let record = Record {
            state: Some(state),
            duration: Some(started.elapsed()),
            log: Some(log_path.clone()),
            reason: reason.clone(),
        };
        crate::lock(&self.records).insert(Node::Image(index), record);
        self.report_finished(index, state, &reason, started.elapsed(), Some(&log_path));
        result.map(|(state, _)| state)
    }

    /// Reports how image `index` ended, with what this run pushed of it.
    fn report_finished(&self, index: ImageId, state: State, reason: &str, took: Duration, log: Option<&Path>) {
        crate::lock(&self.reported).insert(index);
        let image = &self.analysis.tree[index];
        let pushed = crate::lock(&self.pushed).get(&index).cloned();
        self.reporter.finished(&Finished {
            image: ImageLine {
                name: &image.name,
                tag: &image.tag,
                label: &image.label,
                state,
                reason,
                platforms: Vec::new(),
            },
            seconds: took.as_secs_f64(),
            log,
            digest: pushed.as_ref().map(|p| p.digest.as_str()),
            platforms: pushed.as_ref().map_or(&[], |p| p.platforms.as_slice()),
        });
    }

    /// Builds (unless the daemon has the image already), verifies, and pushes when publishing; the state the
    /// image ends in and how it got there.
    async fn work(&self, index: ImageId, planned: State, log_path: &Path) -> Result<(State, String), String> {
        let image = &self.analysis.tree[index];
        let mut log = LogSink::create(log_path, &self.reporter, image.name.clone())?;
        log.line(&format!("# {} {}", image.label, timestamp::rfc3339(SystemTime::now())));
        if planned == State::ToBuild {
            self.build(index, None, &mut log).await?;
        }
        let how = self.verify(index, None, planned, &mut log).await?;
        let Some(extra_tags) = &self.options.publish else { return Ok((State::Verified, how)) };
        self.reporter.started(&image.name, None, Step::Push);
        let digest = self.push(index, extra_tags, &mut log).await.map_err(|why| log.failure(&why))?.digest;
        log.flush();
        Ok((State::Published, format!("{how}; pushed {digest}")))
    }

    /// Verifies what `index` built (for `platform`, under its local name there), logging to `log`; says how
    /// the image got to be verified.
    async fn verify(
        &self,
        index: ImageId,
        platform: Option<&Platform>,
        planned: State,
        log: &mut LogSink,
    ) -> Result<String, String> {
        let image = &self.analysis.tree[index];
        self.reporter.started(&image.name, platform.map(ToString::to_string).as_deref(), Step::Verify);
        log.line("# verify");
        let (reference, env) = match platform {
            None => (image.label.clone(), Vec::new()),
            Some(platform) => {
                let engine = self.builders.for_platform(platform);
                let env = vec![("IMGRAPH_PLATFORM", platform.to_string()), ("DOCKER_HOST", engine.host().to_owned())];
                (plan::platforms::local_reference(&image.label, platform), env)
            }
        };
        let verification = verify::verify(
            &self.analysis.tree.config,
            &image.dir,
            &reference,
            &env,
            self.options.verify_timeout,
            &mut |line| log.line(line),
        )
        .await;
        log.flush();
        Ok(match verification {
            Verification::Passed if planned == State::ToBuild => "built and verified".to_owned(),
            Verification::Passed => "verified".to_owned(),
            Verification::Skipped { missing } if planned == State::ToBuild => {
                format!("built; verification skipped: no {}", missing.display())
            }
            Verification::Skipped { missing } => format!("verification skipped: no {}", missing.display()),
            Verification::Failed(why) => return Err(log.failure(&why)),
        })
    }

    /// The tags an image is pushed under: its version, then the configured extra tags.
    fn push_tags(&self, index: ImageId, extra_tags: &[String]) -> Vec<String> {
        let image = &self.analysis.tree[index];
        let mut tags = vec![image.tag.clone()];
        tags.extend(extra_tags.iter().filter(|t| **t != image.tag).cloned());
        tags
    }

    /// Pushes the local image `source` of `engine` as `target`, through the daemon; the manifest digest the
    /// daemon reported.
    async fn push_as(
        &self,
        engine: &Engine,
        source: &str,
        target: &Reference,
        log: &mut LogSink,
    ) -> Result<Option<String>, String> {
        let host = self.analysis.tree.config.registry();
        let credentials = self.registry.credentials(host).await.map_err(|e| e.message)?;
        if source != target.to_string() {
            engine.tag_reference(source, target).await.map_err(|e| e.to_string())?;
        }
        log.line(&format!("# push {target}"));
        engine
            .push(target, credentials.as_ref(), &mut |line| log.line(line))
            .await
            .map_err(|e| with_login_hint(&e.to_string(), host))
    }

    /// Tags and pushes one image, then checks that the registry has it, with the digest it serves.
    async fn push(&self, index: ImageId, extra_tags: &[String], log: &mut LogSink) -> Result<Pushed, String> {
        let image = &self.analysis.tree[index];
        let Some(label) = &image.reference else { return Err(format!("{} is not a valid reference", image.label)) };
        let host = self.analysis.tree.config.registry();
        let tags = self.push_tags(index, extra_tags);
        let mut pushed_digest = None;
        for tag in &tags {
            let reference = label.with_tag(tag)?;
            let digest = self.push_as(self.builders.default_engine(), &image.label, &reference, log).await?;
            pushed_digest = pushed_digest.or(digest);
        }
        // Trust, but verify: the registry must serve the version tag now.
        let digest = match self.registry.tag_state(host, plan::repository_path(image, host), &image.tag).await {
            Ok(TagState::Present { digest }) => digest.or(pushed_digest).unwrap_or_else(|| "(no digest)".into()),
            Ok(TagState::Absent) => return Err(format!("pushed, but {host} does not have {} afterwards", image.label)),
            Err(e) => return Err(format!("pushed, but checking the registry failed: {}", e.message)),
        };
        log.line(&format!("# published {} {digest}", image.label));
        Ok(self.record_pushed(index, digest, tags, Vec::new()))
    }

    /// Records that image `index` was published under `tags`, as `digest` (for several platforms, each one's).
    fn record_pushed(
        &self,
        index: ImageId,
        digest: String,
        tags: Vec<String>,
        platforms: Vec<PlatformDigest>,
    ) -> Pushed {
        let image = &self.analysis.tree[index];
        let pushed = Pushed {
            name: image.name.clone(),
            tag: image.tag.clone(),
            reference: image.label.clone(),
            digest,
            tags,
            platforms,
        };
        crate::lock(&self.pushed).insert(index, pushed.clone());
        pushed
    }

    /// Pulls what the build needs, then builds: for `platform` when given (its builder, its local name, its
    /// parents' and bases' images for it), else for the default daemon's own platform, as docker-pkg does.
    async fn build(&self, index: ImageId, platform: Option<&Platform>, log: &mut LogSink) -> Result<(), String> {
        let tree = &self.analysis.tree;
        let image = &tree[index];
        let rendered = match &self.analysis.rendered[index] {
            Some(rendered) => rendered.clone(),
            None => return Err("the template did not render (see `imgraph check`)".into()),
        };
        if tree.config.force_numeric_user && !rendered.has_numeric_user() {
            return Err("the last USER instruction is not numeric (force_numeric_user is set)".into());
        }
        let engine = platform.map_or(self.builders.default_engine(), |p| self.builders.for_platform(p));
        // The platform of the parents' images it is built on: its own, or its daemon's for an image without
        // declared platforms whose parents have some.
        let parents_platform = match platform {
            Some(platform) => Some(platform.clone()),
            None if self.has_declared_parent(index) => Some(self.native_platform(engine).await?),
            None => None,
        };
        let platform_text = platform.map(ToString::to_string);
        if self.options.pull == PullMode::Pull {
            self.reporter.started(&image.name, platform_text.as_deref(), Step::Pull);
            for (reference, pull_platform) in self.needed_pulls(index, &rendered, platform, parents_platform.as_ref()) {
                self.pull_once(engine, &reference, pull_platform.as_ref(), log)
                    .await
                    .map_err(|e| format!("cannot pull {reference}: {e}"))?;
            }
        }
        let dockerfile = match &parents_platform {
            Some(parents_platform) => self.dockerfile_for(index, &rendered, platform, parents_platform, engine).await?,
            None => rendered.dockerfile.clone(),
        };

        self.reporter.started(&image.name, platform_text.as_deref(), Step::Build);
        let build_args = fingerprint::build_args(tree.config.http_proxy.as_deref());
        let fingerprint = self.fingerprint(index).await?;
        let base_digest = self.base_digest(engine, &rendered, platform).await;
        let labels = self.labels(index, &rendered, &fingerprint, base_digest.as_deref());
        let tag = match platform {
            Some(platform) => plan::platforms::local_reference(&image.label, platform),
            None => image.label.clone(),
        };
        let request = BuildRequest {
            tree_root: &tree.canonical_root,
            context_dir: &image.dir,
            dockerfile: &dockerfile,
            tag: &tag,
            build_args: &build_args,
            labels: &labels,
            no_cache: !self.options.use_cache,
            limits: &tree.config.container_limits,
            platform: platform_text.as_deref(),
            builder: tree.config.builder,
        };
        let built = engine.build(&request, &mut |line| log.line(line)).await;
        if let Err(e) = built {
            let why = format!("build failed: {e}");
            return Err(log.failure(&with_emulation_hint(&why, platform_text.as_deref())));
        }
        if let Some(platform) = platform {
            self.check_built_platform(engine, &tag, platform).await?;
        }
        Ok(())
    }

    /// Whether a parent of `index` has declared platforms.
    fn has_declared_parent(&self, index: ImageId) -> bool {
        self.parents[&index].iter().any(|&p| !self.analysis.tree[p].platforms.is_empty())
    }

    /// References to pull into the builder before building `index` (for `platform`), as docker-pkg does: its
    /// published parents (whether or not the daemon has them), and the base images it uses, refreshed. A
    /// published parent with declared platforms is pulled by the digest of its image for `parents_platform`.
    /// Each with the platform to pull for.
    fn needed_pulls(
        &self,
        index: ImageId,
        rendered: &Rendered,
        platform: Option<&Platform>,
        parents_platform: Option<&Platform>,
    ) -> Vec<(String, Option<Platform>)> {
        let tree = &self.analysis.tree;
        let mut pulls: Vec<(String, Option<Platform>)> = Vec::new();
        for planned in self.parents[&index].iter().filter_map(|p| self.plan.get(p)) {
            let parent = &tree[planned.image];
            if parent.platforms.is_empty() {
                if planned.state == State::Published {
                    pulls.push((parent.label.clone(), None));
                }
                continue;
            }
            let published = planned
                .platforms
                .iter()
                .filter(|p| p.state == State::Published && Some(&p.platform) == parents_platform)
                .find_map(|p| Some((p.platform.clone(), p.descriptor.as_ref()?.digest.clone())));
            if let Some((platform, digest)) = published {
                pulls.push((format!("{}@{digest}", parent.repository), Some(platform)));
            }
        }
        pulls.extend(
            rendered
                .references
                .iter()
                // A `FROM --platform=…` image is for the platform its line names, not this build's: the build
                // fetches it for that platform.
                .filter(|r| !(r.pinned_platform && platform.is_some()))
                .map(|r| &r.reference)
                .filter(|r| tree.config.base_images.contains(r))
                .map(|r| (r.clone(), platform.cloned())),
        );
        pulls.sort();
        pulls.dedup();
        pulls
    }

    /// Pulls `name` (for `platform`) into `engine` once per run: children wait for it. For a platform, the
    /// image then also gets its local name for that platform (see [`plan::platforms::local_reference`]).
    async fn pull_once(
        &self,
        engine: &Engine,
        name: &str,
        platform: Option<&Platform>,
        log: &mut LogSink,
    ) -> Result<(), String> {
        let mut pulls = self.pulls.lock().await;
        let key = (format!("{} {name}", engine.host()), platform.cloned());
        if let Some(done) = pulls.get(&key) {
            return done.clone();
        }
        let result = self.pull(engine, name, platform, log).await;
        pulls.insert(key, result.clone());
        result
    }

    async fn pull(
        &self,
        engine: &Engine,
        name: &str,
        platform: Option<&Platform>,
        log: &mut LogSink,
    ) -> Result<(), String> {
        let reference = Reference::parse(name)?;
        let credentials = match reference.registry() {
            Some(host) => self.registry.credentials(host).await.map_err(|e| e.message)?,
            None => None,
        };
        let platform_text = platform.map(ToString::to_string);
        let suffix = platform_text.as_ref().map(|p| format!(" for {p}")).unwrap_or_default();
        log.line(&format!("# pull {reference}{suffix}"));
        engine
            .pull(&reference, platform_text.as_deref(), credentials.as_ref(), &mut |line| log.line(line))
            .await
            .map_err(|e| e.to_string())?;
        if let Some(platform) = platform {
            let local = Reference::parse(&plan::platforms::local_reference(name, platform))?;
            engine.tag_reference(name, &local).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The image's content fingerprint (see [`crate::fingerprint`]), computed on a blocking thread.
    async fn fingerprint(&self, index: ImageId) -> Result<String, String> {
        let (analysis, fingerprints) = (self.analysis.clone(), self.fingerprints.clone());
        tokio::task::spawn_blocking(move || fingerprints.of(&analysis, index))
            .await
            .map_err(|e| format!("fingerprint: {e}"))?
    }

    /// The registry digest of the final stage's base image, as the daemon has it (after the pulls), when the
    /// daemon knows one: `outdated` compares it with the base's digest in its registry later.
    async fn base_digest(&self, engine: &Engine, rendered: &Rendered, platform: Option<&Platform>) -> Option<String> {
        let base = rendered.references.iter().rev().find(|r| r.kind == ReferenceKind::From)?;
        let name = match platform {
            Some(platform) => plan::platforms::local_reference(&base.reference, platform),
            None => base.reference.clone(),
        };
        let local = engine.inspect(&name).await.ok()??;
        let repository = crate::reference::Parts::of(&base.reference).repository;
        local.digests.iter().find_map(|d| d.strip_prefix(repository)?.strip_prefix('@')).map(str::to_owned)
    }

    fn labels(
        &self,
        index: ImageId,
        rendered: &Rendered,
        fingerprint: &str,
        base_digest: Option<&str>,
    ) -> BTreeMap<String, String> {
        let image = &self.analysis.tree[index];
        let mut labels = BTreeMap::from([
            ("org.opencontainers.image.version".to_owned(), image.tag.clone()),
            ("org.opencontainers.image.created".to_owned(), timestamp::rfc3339(SystemTime::now())),
            (fingerprint::LABEL.to_owned(), fingerprint.to_owned()),
        ]);
        if let Some(revision) = &self.revision {
            labels.insert("org.opencontainers.image.revision".into(), revision.clone());
        }
        // The final stage's base: the last FROM that names an image.
        if let Some(base) = rendered.references.iter().rev().find(|r| r.kind == ReferenceKind::From) {
            labels.insert("org.opencontainers.image.base.name".into(), base.reference.clone());
        }
        if let Some(digest) = base_digest {
            labels.insert(BASE_DIGEST_LABEL.into(), digest.to_owned());
        }
        labels
    }

    /// How a unit ended, and why: `done_reason` is what it said when it finished.
    fn ending(&self, outcome: Option<&Outcome<State, Node>>, done_reason: String) -> (State, String) {
        match outcome {
            Some(Outcome::Done(state)) => (*state, done_reason),
            Some(Outcome::Failed(why)) => (State::Error, why.clone()),
            Some(Outcome::Skipped { because }) => {
                (State::Skipped, format!("not attempted: {} failed", self.node_name(*because)))
            }
            Some(Outcome::Cancelled) | None => (State::Cancelled, "not finished".to_owned()),
        }
    }

    fn finish(
        &self,
        order: &[ImageId],
        outcomes: &BTreeMap<Node, Outcome<State, Node>>,
        interrupted: bool,
    ) -> RunOutcome {
        let tree = &self.analysis.tree;
        let mut summary = Summary { images: order.len(), ..Summary::default() };
        let records = crate::lock(&self.records);
        let publishing = self.options.publish.is_some();
        let rows = order
            .iter()
            .map(|&i| {
                let image = &tree[i];
                let nodes = nodes_of(&self.analysis, i, publishing);
                // The node that says how the image ended: its publishing, or its one node; else its platforms.
                let last = nodes.last().copied().unwrap_or(Node::Image(i));
                let (outcome, record) = match last {
                    Node::Platform(..) => {
                        platforms::combined(&nodes, |n| outcomes.get(n).cloned(), &records, |n| self.node_name(n))
                    }
                    _ => (outcomes.get(&last).cloned(), records.get(&last).cloned().unwrap_or_default()),
                };
                let Record { duration, log, reason, .. } = record;
                let skipped_by_plan = self.plan.get(&i).filter(|p| p.state == State::Skipped);
                let (state, reason, duration, log) = match (skipped_by_plan, outcome) {
                    (Some(planned), _) => (State::Skipped, planned.reason.clone(), duration, log),
                    // One of the image's own platforms failed: its publishing was never attempted.
                    (None, Some(Outcome::Skipped { because: because @ Node::Platform(own, _) })) if own == i => {
                        let record = records.get(&because).cloned().unwrap_or_default();
                        let why = match outcomes.get(&because) {
                            Some(Outcome::Failed(why)) => why.clone(),
                            _ => "not finished".to_owned(),
                        };
                        (State::Error, format!("{}: {why}", self.node_name(because)), record.duration, record.log)
                    }
                    (None, outcome) => {
                        let (state, reason) = self.ending(outcome.as_ref(), reason);
                        (state, reason, duration, log)
                    }
                };
                match state {
                    s if s.is_success() => summary.succeeded += 1,
                    State::Skipped => summary.skipped += 1,
                    State::Cancelled => summary.cancelled += 1,
                    _ => summary.failed += 1,
                }
                // The ends no task reported: skipped, or failed without its own unit running (in error from the
                // start, or a platform failed so that publishing never ran).
                let unreported = !crate::lock(&self.reported).contains(&i);
                if state == State::Skipped || (state == State::Error && unreported) {
                    self.report_finished(i, state, &reason, duration.unwrap_or_default(), log.as_deref());
                }
                let platforms = self.platform_rows(i, &nodes, outcomes, &records);
                Row { name: image.name.clone(), tag: image.tag.clone(), state, reason, duration, log, platforms }
            })
            .collect();
        let pushed = crate::lock(&self.pushed);
        let pushed = order.iter().filter_map(|i| pushed.get(i).cloned()).collect();
        RunOutcome { rows, summary, interrupted, pushed }
    }
}

/// An image's log file (or one platform's), mirrored to the reporter, keeping the last lines for failure
/// messages.
struct LogSink {
    file: BufWriter<File>,
    reporter: Arc<Reporter>,
    /// What the reporter shows the lines under (see [`Reporter::key`]).
    key: String,
    tail: Vec<String>,
}

impl LogSink {
    /// A new log at `path` (replacing an older one).
    fn create(path: &Path, reporter: &Arc<Reporter>, key: String) -> Result<Self, String> {
        let file = File::create(path).map_err(|e| format!("cannot create log {}: {e}", path.display()))?;
        Ok(Self { file: BufWriter::new(file), reporter: reporter.clone(), key, tail: Vec::new() })
    }

    fn line(&mut self, line: &str) {
        // A log write failure must not fail the build; the log path is reported either way.
        let _ = writeln!(self.file, "{line}");
        self.reporter.output(&self.key, line);
        if self.tail.len() == TAIL_LINES {
            self.tail.remove(0);
        }
        self.tail.push(line.to_owned());
    }

    fn flush(&mut self) {
        let _ = self.file.flush();
    }

    /// `why`, followed by the last lines of output.
    fn failure(&mut self, why: &str) -> String {
        self.flush();
        let tail: Vec<&str> = self.tail.iter().map(String::as_str).filter(|l| !l.starts_with("# ")).collect();
        if tail.is_empty() { why.to_owned() } else { format!("{why}\n--- last output:\n{}", tail.join("\n")) }
    }
}

/// A push error, with the fix when the registry refused the credentials.
fn with_login_hint(message: &str, host: &str) -> String {
    let lower = message.to_ascii_lowercase();
    let refused = ["unauthorized", "authentication required", "denied", "no basic auth credentials", "401"];
    if refused.iter().any(|word| lower.contains(word)) {
        format!(
            "{message}\nhint: the registry refused the credentials: run `docker login {host}`, or check `username` and \
             `password` in the config"
        )
    } else {
        message.to_owned()
    }
}

/// A failed build for a platform the host cannot run: how to make it able to.
fn with_emulation_hint(message: &str, platform: Option<&str>) -> String {
    match platform {
        Some(platform) if message.contains("exec format error") => format!(
            "{message}\nhint: this machine cannot run {platform} programs: install QEMU user emulation \
             (`apt-get install qemu-user-static binfmt-support`, with binfmt_misc mounted), or map {platform} to a \
             native machine in the config's `builders`"
        ),
        _ => message.to_owned(),
    }
}

/// The tree's git commit, when it is in a git work tree.
async fn git_revision(root: &Path) -> Option<String> {
    let output =
        tokio::process::Command::new("git").arg("-C").arg(root).args(["rev-parse", "HEAD"]).output().await.ok()?;
    let revision = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !revision.is_empty()).then_some(revision)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_format_errors_say_how_to_emulate() {
        let failed = "build failed: The command '/bin/sh -c true' returned: exec format error";
        let hinted = with_emulation_hint(failed, Some("linux/arm64"));
        assert!(hinted.starts_with(failed) && hinted.contains("qemu-user-static") && hinted.contains("builders"));
        assert_eq!(with_emulation_hint(failed, None), failed);
        assert_eq!(with_emulation_hint("build failed: no space", Some("linux/arm64")), "build failed: no space");
    }

    #[test]
    fn refused_pushes_say_how_to_fix_them() {
        let denied = with_login_hint("cannot push r:5000/a:1: unauthorized: authentication required", "r:5000");
        assert!(denied.ends_with("run `docker login r:5000`, or check `username` and `password` in the config"));
        let refused = with_login_hint("cannot push r:5000/a:1: connection refused", "r:5000");
        assert_eq!(refused, "cannot push r:5000/a:1: connection refused");
    }
}
