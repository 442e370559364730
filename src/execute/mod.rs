//! Execution: the per-image steps (pull what a build needs, build, verify, and for `publish` push) run by the
//! [`scheduler`] over the DAG, each image's output in its own log file, progress to the [`Reporter`].

pub mod scheduler;
pub mod verify;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::analysis::Analysis;
use crate::definition::dockerfile::ReferenceKind;
use crate::engine::{BuildRequest, Engine};
use crate::fingerprint::{self, Fingerprints};
use crate::plan::{self, Planned, PullMode, State};
use crate::reference::Reference;
use crate::registry::{RegistryClient, TagState};
use crate::report::ImageLine;
use crate::report::progress::{Finished, Reporter, Row, Step, Summary};
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

/// Everything the image tasks share.
struct Run {
    analysis: Arc<Analysis>,
    parents: HashMap<ImageId, Vec<ImageId>>,
    plan: HashMap<ImageId, Planned>,
    engine: Engine,
    registry: RegistryClient,
    options: BuildOptions,
    reporter: Arc<Reporter>,
    revision: Option<String>,
    /// The content fingerprints of the tree's images, computed as builds need them.
    fingerprints: Arc<Fingerprints>,
    /// Pulls done (or failed) in this run, by reference: each is tried once, children wait for it.
    pulls: tokio::sync::Mutex<HashMap<String, Result<(), String>>>,
    records: Mutex<HashMap<ImageId, Record>>,
    /// Images pushed by this run.
    pushed: Mutex<HashMap<ImageId, Pushed>>,
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
}

/// What an image's task recorded.
#[derive(Debug, Clone, Default)]
struct Record {
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
    pub engine: Engine,
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
    let runnable: Vec<ImageId> = plan.iter().filter(|p| p.state != State::Skipped).map(|p| p.image).collect();
    // An image in error waits for nothing (a cycle's images would otherwise wait for each other forever).
    let parents = plan
        .iter()
        .map(|p| (p.image, if p.state == State::Error { Vec::new() } else { analysis.graph.parents(p.image) }))
        .collect();
    let revision = git_revision(&analysis.tree.root).await;
    let Services { engine, registry } = services;
    let run = Arc::new(Run {
        analysis,
        parents,
        // Parents outside the selection (`--only`) are known, to be pulled, never run.
        plan: plan.into_iter().chain(outside_parents).map(|p| (p.image, p)).collect(),
        engine,
        registry,
        options,
        reporter,
        revision,
        fingerprints: Arc::new(Fingerprints::default()),
        pulls: tokio::sync::Mutex::new(HashMap::new()),
        records: Mutex::new(HashMap::new()),
        pushed: Mutex::new(HashMap::new()),
    });
    let worker = run.clone();
    let parents_of = |i: ImageId| run.parents.get(&i).cloned().unwrap_or_default();
    let name_of = |i: ImageId| run.analysis.tree[i].name.clone();
    let (jobs, fail_fast) = (run.options.jobs, run.options.fail_fast);
    let outcomes = scheduler::run(&runnable, parents_of, name_of, jobs, fail_fast, cancel, move |i| {
        let run = worker.clone();
        Box::pin(async move { run.image(i).await })
    })
    .await;
    run.finish(&order, &outcomes, cancel.is_cancelled())
}

impl Run {
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
                crate::lock(&self.records).insert(index, Record { reason, ..Record::default() });
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
        let record = Record { duration: Some(started.elapsed()), log: Some(log_path.clone()), reason: reason.clone() };
        crate::lock(&self.records).insert(index, record);
        let digest = crate::lock(&self.pushed).get(&index).map(|p| p.digest.clone());
        self.reporter.finished(&Finished {
            image: ImageLine { name: &image.name, tag: &image.tag, label: &image.label, state, reason: &reason },
            seconds: started.elapsed().as_secs_f64(),
            log: Some(&log_path),
            digest: digest.as_deref(),
        });
        result.map(|(state, _)| state)
    }

    /// Builds (unless the daemon has the image already), verifies, and pushes when publishing; the state the
    /// image ends in and how it got there.
    async fn work(&self, index: ImageId, planned: State, log_path: &Path) -> Result<(State, String), String> {
        let image = &self.analysis.tree[index];
        let file = File::create(log_path).map_err(|e| format!("cannot create log {}: {e}", log_path.display()))?;
        let mut log =
            LogSink { file: BufWriter::new(file), reporter: &self.reporter, name: &image.name, tail: Vec::new() };
        log.line(&format!("# {} {}", image.label, timestamp::rfc3339(SystemTime::now())));
        if planned == State::ToBuild {
            self.build(index, &mut log).await?;
        }
        self.reporter.started(&image.name, Step::Verify);
        log.line("# verify");
        let verification = verify::verify(
            &self.analysis.tree.config,
            &image.dir,
            &image.label,
            self.options.verify_timeout,
            &mut |line| log.line(line),
        )
        .await;
        log.flush();
        let how = match verification {
            Verification::Passed if planned == State::ToBuild => "built and verified".to_owned(),
            Verification::Passed => "verified".to_owned(),
            Verification::Skipped { missing } if planned == State::ToBuild => {
                format!("built; verification skipped: no {}", missing.display())
            }
            Verification::Skipped { missing } => format!("verification skipped: no {}", missing.display()),
            Verification::Failed(why) => return Err(log.failure(&why)),
        };
        let Some(extra_tags) = &self.options.publish else { return Ok((State::Verified, how)) };
        self.reporter.started(&image.name, Step::Push);
        let digest = self.push(index, extra_tags, &mut log).await.map_err(|why| log.failure(&why))?.digest;
        log.flush();
        Ok((State::Published, format!("{how}; pushed {digest}")))
    }

    /// Tags and pushes one image, then checks that the registry has it, with the digest it serves.
    async fn push(&self, index: ImageId, extra_tags: &[String], log: &mut LogSink<'_>) -> Result<Pushed, String> {
        let image = &self.analysis.tree[index];
        let Some(label) = &image.reference else { return Err(format!("{} is not a valid reference", image.label)) };
        let host = self.analysis.tree.config.registry();
        let credentials = self.registry.credentials(host).await.map_err(|e| e.message)?;
        let mut tags = vec![image.tag.clone()];
        tags.extend(extra_tags.iter().filter(|t| **t != image.tag).cloned());
        let mut pushed_digest = None;
        for tag in &tags {
            let reference = label.with_tag(tag)?;
            if reference != *label {
                self.engine.tag_reference(&image.label, &reference).await.map_err(|e| e.to_string())?;
            }
            log.line(&format!("# push {reference}"));
            let digest = self
                .engine
                .push(&reference, credentials.as_ref(), &mut |line| log.line(line))
                .await
                .map_err(|e| with_login_hint(&e.to_string(), host))?;
            pushed_digest = pushed_digest.or(digest);
        }
        // Trust, but verify: the registry must serve the version tag now.
        let digest = match self.registry.tag_state(host, plan::repository_path(image, host), &image.tag).await {
            Ok(TagState::Present { digest }) => digest.or(pushed_digest).unwrap_or_else(|| "(no digest)".into()),
            Ok(TagState::Absent) => return Err(format!("pushed, but {host} does not have {} afterwards", image.label)),
            Err(e) => return Err(format!("pushed, but checking the registry failed: {}", e.message)),
        };
        log.line(&format!("# published {} {digest}", image.label));
        let pushed =
            Pushed { name: image.name.clone(), tag: image.tag.clone(), reference: image.label.clone(), digest, tags };
        crate::lock(&self.pushed).insert(index, pushed.clone());
        Ok(pushed)
    }

    /// Pulls what the build needs, then builds.
    async fn build(&self, index: ImageId, log: &mut LogSink<'_>) -> Result<(), String> {
        let tree = &self.analysis.tree;
        let image = &tree[index];
        let rendered = match &self.analysis.rendered[index] {
            Some(rendered) => rendered.clone(),
            None => return Err("the template did not render (see `imgraph check`)".into()),
        };
        if tree.config.force_numeric_user && !rendered.has_numeric_user() {
            return Err("the last USER instruction is not numeric (force_numeric_user is set)".into());
        }
        if self.options.pull == PullMode::Pull {
            self.reporter.started(&image.name, Step::Pull);
            for reference in self.needed_pulls(index, &rendered) {
                self.pull_once(&reference, log).await.map_err(|e| format!("cannot pull {reference}: {e}"))?;
            }
        }

        self.reporter.started(&image.name, Step::Build);
        let build_args = fingerprint::build_args(tree.config.http_proxy.as_deref());
        let fingerprint = self.fingerprint(index).await?;
        let base_digest = self.base_digest(&rendered).await;
        let labels = self.labels(index, &rendered, &fingerprint, base_digest.as_deref());
        let request = BuildRequest {
            tree_root: &tree.canonical_root,
            context_dir: &image.dir,
            dockerfile: &rendered.dockerfile,
            tag: &image.label,
            build_args: &build_args,
            labels: &labels,
            no_cache: !self.options.use_cache,
            limits: &tree.config.container_limits,
            builder: tree.config.builder,
        };
        let built = self.engine.build(&request, &mut |line| log.line(line)).await;
        if let Err(e) = built {
            return Err(log.failure(&format!("build failed: {e}")));
        }
        Ok(())
    }

    /// References to pull before building `index`, as docker-pkg does: its published parents (whether or not
    /// the daemon has them), and the base images it uses, refreshed.
    fn needed_pulls(&self, index: ImageId, rendered: &Rendered) -> Vec<String> {
        let tree = &self.analysis.tree;
        let mut pulls: Vec<String> = self.parents[&index]
            .iter()
            .filter_map(|p| self.plan.get(p))
            .filter(|p| p.state == State::Published)
            .map(|p| tree[p.image].label.clone())
            .collect();
        pulls.extend(
            rendered.references.iter().map(|r| &r.reference).filter(|r| tree.config.base_images.contains(r)).cloned(),
        );
        pulls.sort();
        pulls.dedup();
        pulls
    }

    async fn pull_once(&self, name: &str, log: &mut LogSink<'_>) -> Result<(), String> {
        let mut pulls = self.pulls.lock().await;
        if let Some(done) = pulls.get(name) {
            return done.clone();
        }
        let result = self.pull(name, log).await;
        pulls.insert(name.to_owned(), result.clone());
        result
    }

    async fn pull(&self, name: &str, log: &mut LogSink<'_>) -> Result<(), String> {
        let reference = Reference::parse(name)?;
        let credentials = match reference.registry() {
            Some(host) => self.registry.credentials(host).await.map_err(|e| e.message)?,
            None => None,
        };
        log.line(&format!("# pull {reference}"));
        self.engine.pull(&reference, credentials.as_ref(), &mut |line| log.line(line)).await.map_err(|e| e.to_string())
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
    async fn base_digest(&self, rendered: &Rendered) -> Option<String> {
        let base = rendered.references.iter().rev().find(|r| r.kind == ReferenceKind::From)?;
        let local = self.engine.inspect(&base.reference).await.ok()??;
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

    fn finish(
        &self,
        order: &[ImageId],
        outcomes: &BTreeMap<ImageId, Outcome<State, ImageId>>,
        interrupted: bool,
    ) -> RunOutcome {
        let tree = &self.analysis.tree;
        let mut summary = Summary { images: order.len(), ..Summary::default() };
        let records = crate::lock(&self.records);
        let rows = order
            .iter()
            .map(|&i| {
                let image = &tree[i];
                let Record { duration, log, reason } = records.get(&i).cloned().unwrap_or_default();
                let skipped_by_plan = self.plan.get(&i).filter(|p| p.state == State::Skipped);
                let (state, reason) = match (skipped_by_plan, outcomes.get(&i)) {
                    (Some(planned), _) => (State::Skipped, planned.reason.clone()),
                    (None, Some(Outcome::Done(state))) => (*state, reason.clone()),
                    (None, Some(Outcome::Failed(why))) => (State::Error, why.clone()),
                    (None, Some(Outcome::Skipped { because })) => {
                        (State::Skipped, format!("not attempted: {} failed", tree[*because].name))
                    }
                    (None, Some(Outcome::Cancelled) | None) => (State::Cancelled, "not finished".into()),
                };
                match state {
                    s if s.is_success() => summary.succeeded += 1,
                    State::Skipped => summary.skipped += 1,
                    State::Cancelled => summary.cancelled += 1,
                    _ => summary.failed += 1,
                }
                if matches!(state, State::Skipped) || (state == State::Error && duration.is_none()) {
                    self.reporter.finished(&Finished {
                        image: ImageLine {
                            name: &image.name,
                            tag: &image.tag,
                            label: &image.label,
                            state,
                            reason: &reason,
                        },
                        seconds: 0.0,
                        log: None,
                        digest: None,
                    });
                }
                Row { name: image.name.clone(), tag: image.tag.clone(), state, reason, duration, log }
            })
            .collect();
        let pushed = crate::lock(&self.pushed);
        let pushed = order.iter().filter_map(|i| pushed.get(i).cloned()).collect();
        RunOutcome { rows, summary, interrupted, pushed }
    }
}

/// An image's log file, mirrored to the reporter, keeping the last lines for failure messages.
struct LogSink<'a> {
    file: BufWriter<File>,
    reporter: &'a Reporter,
    name: &'a str,
    tail: Vec<String>,
}

impl LogSink<'_> {
    fn line(&mut self, line: &str) {
        // A log write failure must not fail the build; the log path is reported either way.
        let _ = writeln!(self.file, "{line}");
        self.reporter.output(self.name, line);
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
    fn refused_pushes_say_how_to_fix_them() {
        let denied = with_login_hint("cannot push r:5000/a:1: unauthorized: authentication required", "r:5000");
        assert!(denied.ends_with("run `docker login r:5000`, or check `username` and `password` in the config"));
        let refused = with_login_hint("cannot push r:5000/a:1: connection refused", "r:5000");
        assert_eq!(refused, "cannot push r:5000/a:1: connection refused");
    }
}
