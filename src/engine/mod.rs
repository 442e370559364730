//! The Docker engine, through bollard: connect as the Docker CLI does, inspect, pull, and build with the classic
//! builder or BuildKit (the `buildkit` module), streaming the context from disk.

mod buildkit;
mod context;
mod dockerignore;
mod limits;
mod ssh;

pub use limits::ContainerLimits;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::errors::Error as BollardError;
use bollard::models::{BuildInfoAux, ImageId};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, BuilderVersion, CreateImageOptionsBuilder, ListImagesOptionsBuilder,
    PushImageOptionsBuilder, RemoveImageOptionsBuilder, TagImageOptionsBuilder,
};
use futures_util::StreamExt;
use tokio::sync::{OnceCell, mpsc};

use crate::platform::Platform;
use crate::reference::Reference;
use crate::registry::Credentials;

/// What the Docker CLI connects to without `DOCKER_HOST`.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// Only the wait for response headers is bounded by it; builds and pulls stream past it.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(600);

/// A Docker engine, connected on first use: a run that never needs the daemon (every image is in the
/// registry) never talks to it.
#[derive(Debug, Clone)]
pub struct Engine {
    /// `None`: `DOCKER_HOST`, else the default socket.
    host: Option<String>,
    docker: Arc<OnceCell<Docker>>,
    /// The daemon's own platform, asked once.
    platform: Arc<OnceCell<String>>,
}

/// The engines a run builds with: the default one (`DOCKER_HOST`), and one per platform the config's
/// `builders` maps to another endpoint (e.g. a native arm64 machine for `linux/arm64`).
#[derive(Debug, Clone)]
pub struct Builders {
    default: Engine,
    by_platform: BTreeMap<Platform, Engine>,
}

impl Builders {
    /// `builders` maps platforms to endpoints; `default` (or the default engine's own host) means the default
    /// engine. Endpoints are connected to when first used.
    pub fn new(default: Engine, builders: &BTreeMap<Platform, String>) -> Self {
        let mut by_host: BTreeMap<&str, Engine> = BTreeMap::new();
        let by_platform = builders
            .iter()
            .filter(|(_, host)| host.as_str() != "default" && host.as_str() != default.host())
            .map(|(platform, host)| {
                // Platforms on one endpoint share its connection.
                let engine = by_host.entry(host).or_insert_with(|| Engine::lazy_to(Some(host.clone()))).clone();
                (platform.clone(), engine)
            })
            .collect();
        Self { default, by_platform }
    }

    /// The engine of images without declared platforms.
    pub fn default_engine(&self) -> &Engine {
        &self.default
    }

    /// The engine that builds for `platform`.
    pub fn for_platform(&self, platform: &Platform) -> &Engine {
        self.by_platform.get(platform).unwrap_or(&self.default)
    }
}

/// The engine failed or cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No daemon answers: a distinct exit code, and a hint.
    #[error("cannot connect to the Docker daemon at {host}: {message}\n{hint}")]
    Unreachable { host: String, message: String, hint: &'static str },
    /// The daemon answered with an error.
    #[error("{0}")]
    Api(String),
    /// The daemon's API is older than a feature needs (see [`Engine::require_api`]).
    #[error(
        "the Docker daemon at {host} speaks API {api}; {feature} need {}.{} or later (Docker {docker})",
        min.0,
        min.1
    )]
    TooOld { host: String, api: String, feature: &'static str, min: (usize, usize), docker: &'static str },
}

/// An Engine API version a feature needs, and the first Docker release that speaks it (named in the error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRequirement {
    /// What needs it, as the error names it (plural: "… need 1.39 or later").
    pub feature: &'static str,
    /// (major, minor), as bollard reports the negotiated version.
    pub min: (usize, usize),
    pub docker: &'static str,
}

/// Builds for a platform: the `platform` parameter of `POST /build` is read from API 1.32, but the Docker CLI
/// asks for 1.38 (`docker build --platform`), the first version where the daemon honours it without
/// experimental mode.
const PLATFORM_BUILDS: ApiRequirement =
    ApiRequirement { feature: "builds for a platform (declared Platforms)", min: (1, 38), docker: "18.06" };

/// Which builder runs the builds (the config's `builder`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BuilderKind {
    /// The classic builder, as docker-pkg builds.
    #[default]
    Classic,
    /// BuildKit, through the Engine API with a session of the client's (API 1.39+).
    BuildKit,
}

/// What the engine knows of a local image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalImage {
    pub id: String,
    pub labels: BTreeMap<String, String>,
    /// `repo@digest` references: the registry digests the daemon knows the image by.
    pub digests: Vec<String>,
    /// `os/architecture[/variant]`, as the image's config says.
    pub platform: String,
}

/// A local image and its references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReferences {
    pub id: String,
    /// `repo:tag` references.
    pub tags: Vec<String>,
    /// `repo@digest` references.
    pub digests: Vec<String>,
}

/// What a removal did, as the daemon reported it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    /// The references taken off.
    pub untagged: Vec<String>,
    /// The image ids deleted (the image itself and the unused layers of its build).
    pub deleted: Vec<String>,
}

/// One build: the image directory is the context, the rendered Dockerfile replaces any `Dockerfile` in it.
#[derive(Debug, Clone)]
pub struct BuildRequest<'a> {
    /// The tree's root, canonical: links in the context must resolve inside it.
    pub tree_root: &'a Path,
    pub context_dir: &'a Path,
    pub dockerfile: &'a str,
    /// The full reference to tag the result with.
    pub tag: &'a str,
    pub build_args: &'a BTreeMap<String, String>,
    pub labels: &'a BTreeMap<String, String>,
    pub no_cache: bool,
    /// docker-pkg's `container_limits` (memory, memswap, cpushares, cpusetcpus); BuildKit ignores them.
    pub limits: &'a ContainerLimits,
    /// `os/architecture[/variant]` to build for; `None`: the daemon's own platform.
    pub platform: Option<&'a str>,
    pub builder: BuilderKind,
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile's own failure, as the daemon reported it (e.g. a RUN that exited 1).
    #[error("{0}")]
    Failed(String),
    /// The context could not be read.
    #[error("{0}")]
    Context(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl Engine {
    /// Connects as the Docker CLI does and negotiates the API version: `DOCKER_HOST` (`unix://…`, `tcp://…`), else
    /// the default socket; for TCP hosts, TLS when `DOCKER_TLS_VERIFY` is non-empty (see [`Engine::connect_to`]).
    pub async fn connect() -> Result<Self, EngineError> {
        Self::connect_to(env_var("DOCKER_HOST").as_deref()).await
    }

    /// The engine [`Engine::connect`] reaches, connected when first used (then failing as it would).
    pub fn lazy() -> Self {
        Self::lazy_to(env_var("DOCKER_HOST"))
    }

    /// The engine at `host` (`unix://…`, `tcp://…`; `None`: the default socket), connected when first used.
    pub fn lazy_to(host: Option<String>) -> Self {
        Self { host, docker: Arc::default(), platform: Arc::default() }
    }

    /// Where this engine is, as the Docker CLI's `DOCKER_HOST` would say it.
    pub fn host(&self) -> &str {
        self.host.as_deref().unwrap_or(DEFAULT_HOST)
    }

    /// The daemon's own platform, `os/architecture` as it reports them (e.g. `linux/amd64`).
    pub async fn native_platform(&self) -> Result<&str, EngineError> {
        let platform = self
            .platform
            .get_or_try_init(|| async {
                let version = self
                    .docker()
                    .await?
                    .version()
                    .await
                    .map_err(|e| api_error("cannot ask the daemon its version", e))?;
                let os = version.os.unwrap_or_default();
                let architecture = version.arch.unwrap_or_default();
                if os.is_empty() || architecture.is_empty() {
                    return Err(EngineError::Api("the daemon did not say its OS and architecture".into()));
                }
                Ok(format!("{os}/{architecture}"))
            })
            .await?;
        Ok(platform)
    }

    /// The client, connecting first if this is the first use.
    async fn docker(&self) -> Result<&Docker, EngineError> {
        self.docker.get_or_try_init(|| open_and_check(self.host.as_deref())).await
    }

    /// Connects to `host` (`unix://…`, `tcp://…`; `None` = the default socket) and checks that it answers.
    ///
    /// TLS is set up as the Docker CLI does, from the environment: with `DOCKER_TLS_VERIFY` non-empty (or an
    /// `https://` host) the daemon's certificate is verified against `ca.pem` and the client presents `cert.pem` and
    /// `key.pem`, all three from `DOCKER_CERT_PATH` (default: `$DOCKER_CONFIG`, else `~/.docker`). A TCP host without
    /// a port gets 2376 with TLS and 2375 without.
    pub async fn connect_to(host: Option<&str>) -> Result<Self, EngineError> {
        let docker = open_and_check(host).await?;
        let engine = Self::lazy_to(host.map(str::to_owned));
        Ok(Self { docker: Arc::new(OnceCell::new_with(Some(docker))), ..engine })
    }

    /// Fails with [`EngineError::TooOld`] when the daemon's API is older than `need`. The version is the one
    /// negotiated when connecting: the daemon's, or bollard's own when the daemon is newer (then new enough).
    pub async fn require_api(&self, need: ApiRequirement) -> Result<(), EngineError> {
        let version = self.docker().await?.client_version();
        if (version.major_version, version.minor_version) >= need.min {
            return Ok(());
        }
        Err(EngineError::TooOld {
            host: self.host.as_deref().unwrap_or(DEFAULT_HOST).to_owned(),
            api: version.to_string(),
            feature: need.feature,
            min: need.min,
            docker: need.docker,
        })
    }
}

/// Opens a client for `host` (`None`: the default socket), negotiates the API version and pings.
async fn open_and_check(host: Option<&str>) -> Result<Docker, EngineError> {
    {
        let host = host.unwrap_or(DEFAULT_HOST);
        let tls = env_var("DOCKER_TLS_VERIFY").is_some();
        let started = std::time::Instant::now();
        let (target, docker) = open(host, tls)?;
        let docker = match docker.negotiate_version().await {
            Ok(docker) => docker,
            Err(e) => return Err(target.failure(e).await),
        };
        if let Err(e) = docker.ping().await {
            return Err(target.failure(e).await);
        }
        tracing::info!(
            host = target.host,
            tls = target.cert_dir.is_some(),
            api_version = %docker.client_version(),
            elapsed_ms = started.elapsed().as_millis(),
            "connected to the Docker daemon"
        );
        Ok(docker)
    }
}

impl Engine {
    /// The local image `reference`, if the daemon has it.
    pub async fn inspect(&self, reference: &str) -> Result<Option<LocalImage>, EngineError> {
        let started = std::time::Instant::now();
        let result = self.docker().await?.inspect_image(reference).await;
        let elapsed_ms = started.elapsed().as_millis();
        tracing::debug!(endpoint = "GET /images/{name}/json", reference, found = result.is_ok(), elapsed_ms, "daemon");
        match result {
            Ok(image) => {
                let platform = [image.os, image.architecture, image.variant]
                    .into_iter()
                    .flatten()
                    .filter(|part| !part.is_empty())
                    .collect::<Vec<_>>()
                    .join("/");
                Ok(Some(LocalImage {
                    id: image.id.unwrap_or_default(),
                    labels: image.config.and_then(|c| c.labels).unwrap_or_default().into_iter().collect(),
                    digests: without_none(image.repo_digests.unwrap_or_default()),
                    platform,
                }))
            }
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
            Err(e) => Err(api_error(&format!("cannot inspect {reference}"), e)),
        }
    }

    /// The local images with a reference in `repository` (the engine's `reference` filter), each with its
    /// references as listed. Some daemons list only the references that match the filter: [`Engine::references`]
    /// has them all.
    pub async fn images_of(&self, repository: &str) -> Result<Vec<ImageReferences>, EngineError> {
        let filters = HashMap::from([("reference", vec![repository])]);
        let options = ListImagesOptionsBuilder::default().filters(&filters).build();
        let images = self
            .docker()
            .await?
            .list_images(Some(options))
            .await
            .map_err(|e| api_error(&format!("cannot list the images of {repository}"), e))?;
        Ok(images
            .into_iter()
            .map(|i| ImageReferences {
                id: i.id,
                tags: without_none(i.repo_tags),
                digests: without_none(i.repo_digests),
            })
            .collect())
    }

    /// Every reference (tags and digests) of the local image `id`; `None` when it is gone.
    pub async fn references(&self, id: &str) -> Result<Option<ImageReferences>, EngineError> {
        match self.docker().await?.inspect_image(id).await {
            Ok(image) => Ok(Some(ImageReferences {
                id: image.id.unwrap_or_else(|| id.to_owned()),
                tags: without_none(image.repo_tags.unwrap_or_default()),
                digests: without_none(image.repo_digests.unwrap_or_default()),
            })),
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
            Err(e) => Err(api_error(&format!("cannot inspect {id}"), e)),
        }
    }

    /// `DELETE /images/{target}` without force. `target` is a reference (`repo:tag`, `repo@digest`) or an image id.
    /// A reference is untagged, and its image deleted when that was its last reference; an id deletes the image
    /// and its references, which the daemon refuses (409) when a container uses the image, when it has dependent
    /// child images, or when it has references in several repositories or several tags. The error is then the
    /// daemon's own message. A `target` that is already gone (404) counts as removed.
    pub async fn remove(&self, target: &str) -> Result<Removed, EngineError> {
        let options = RemoveImageOptionsBuilder::default().force(false).noprune(false).build();
        match self.docker().await?.remove_image(target, Some(options), None).await {
            Ok(items) => Ok(Removed {
                untagged: items.iter().filter_map(|i| i.untagged.clone()).collect(),
                deleted: items.into_iter().filter_map(|i| i.deleted).collect(),
            }),
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(Removed::default()),
            Err(BollardError::DockerResponseServerError { message, .. }) => {
                Err(EngineError::Api(message.trim().into()))
            }
            Err(e) => Err(api_error(&format!("cannot remove {target}"), e)),
        }
    }

    /// Tags the local image `id` (an id or a reference) as `reference`.
    pub async fn tag_reference(&self, id: &str, reference: &Reference) -> Result<(), EngineError> {
        let options = TagImageOptionsBuilder::default()
            .repo(reference.repository())
            .tag(reference.tag().unwrap_or("latest"))
            .build();
        self.docker()
            .await?
            .tag_image(id, Some(options))
            .await
            .map_err(|e| api_error(&format!("cannot tag {reference}"), e))
    }

    /// Pulls `reference`, for `platform` when given (else the daemon's own); status lines (not the byte-by-byte
    /// progress) go to `log`.
    pub async fn pull(
        &self,
        reference: &Reference,
        platform: Option<&str>,
        credentials: Option<&Credentials>,
        log: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(), EngineError> {
        // Always name the tag: a bare name makes the daemon pull every tag of the repository.
        let tag = reference.digest().or(reference.tag()).unwrap_or("latest");
        let options = CreateImageOptionsBuilder::default().from_image(reference.repository()).tag(tag);
        let options = match platform {
            Some(platform) => options.platform(platform),
            None => options,
        }
        .build();
        let credentials = credentials.map(|c| docker_credentials(c, registry_address(reference)));
        let context = format!("cannot pull {reference}");
        tracing::info!(endpoint = "POST /images/create", %reference, credentials = credentials.is_some(), "pulling");
        let mut stream = self.docker().await?.create_image(Some(options), None, credentials);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| api_error(&context, e))?;
            let progress = info.progress_detail.is_some_and(|p| p.current.is_some() || p.total.is_some());
            if let Some(status) = info.status.filter(|s| !s.is_empty() && !progress) {
                match info.id {
                    Some(id) => log(&format!("{id}: {status}")),
                    None => log(&status),
                }
            }
        }
        Ok(())
    }

    /// Pushes `reference` (`repo:tag`), reading the daemon's stream to its end: an error inside it (denied,
    /// unreachable registry) fails the push, where docker-pkg reported success. Returns the pushed manifest's
    /// digest when the daemon reported it.
    pub async fn push(
        &self,
        reference: &Reference,
        credentials: Option<&Credentials>,
        log: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Option<String>, EngineError> {
        let options = PushImageOptionsBuilder::default().tag(reference.tag().unwrap_or("latest")).build();
        let credentials = credentials.map(|c| docker_credentials(c, registry_address(reference)));
        let context = format!("cannot push {reference}");
        tracing::info!(endpoint = "POST /images/{name}/push", %reference, credentials = credentials.is_some(), "pushing");
        let mut stream = self.docker().await?.push_image(reference.repository(), Some(options), credentials);
        let mut digest = None;
        let mut failure = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    let progress = info.progress_detail.is_some_and(|p| p.current.is_some() || p.total.is_some());
                    if let Some(status) = info.status.filter(|s| !s.is_empty() && !progress) {
                        // The last line names the manifest: `TAG: digest: sha256:… size: N`.
                        if let Some(found) = status.split_whitespace().find(|w| w.starts_with("sha256:")) {
                            digest = Some(found.to_owned());
                        }
                        log(&status);
                    }
                }
                Err(e) => {
                    let error = api_error(&context, e);
                    log(&error.to_string());
                    failure.get_or_insert(error);
                }
            }
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(digest),
        }
    }

    /// Builds and tags an image with the builder the request names, streaming the context; build output lines (for
    /// BuildKit, its progress as `docker build --progress=plain` prints it) go to `log`. Returns the image id.
    pub async fn build(
        &self,
        request: &BuildRequest<'_>,
        log: &mut (dyn FnMut(&str) + Send),
    ) -> Result<String, BuildError> {
        let to_map = |m: &BTreeMap<String, String>| m.clone().into_iter().collect::<HashMap<_, _>>();
        let options = BuildImageOptionsBuilder::default()
            .dockerfile(context::DOCKERFILE)
            .t(request.tag)
            .nocache(request.no_cache)
            .rm(true)
            // Unlike docker-pkg: a failed RUN must not leave its container behind.
            .forcerm(true)
            .buildargs(&to_map(request.build_args));
        let options = match request.platform {
            Some(platform) => {
                self.require_api(PLATFORM_BUILDS).await?;
                options.platform(platform)
            }
            None => options,
        };
        let options = request.limits.apply(options);
        let (dockerfile, options) = match request.builder {
            BuilderKind::Classic => {
                let options = options.version(BuilderVersion::BuilderV1);
                // The classic builder turns each API label into a step of its own (a container each); one LABEL
                // line appended to the Dockerfile costs one step. Values it could not quote safely go through the
                // API.
                match label_instruction(request.labels) {
                    Some(line) => (format!("{}\n{line}\n", request.dockerfile), options),
                    None => (request.dockerfile.to_owned(), options.labels(&to_map(request.labels))),
                }
            }
            BuilderKind::BuildKit => {
                self.require_api(buildkit::API).await?;
                if *request.limits != ContainerLimits::default() {
                    log("warning: BuildKit does not apply container_limits (memory, memswap, cpushares, cpusetcpus)");
                }
                (request.dockerfile.to_owned(), buildkit::options(options, &to_map(request.labels)))
            }
        };
        let options = options.build();

        // A blocking thread walks and tars the context into a bounded channel: memory stays small whatever its size.
        let (tx, mut rx) = mpsc::channel(context::CHANNEL_CHUNKS);
        let (root, dir) = (request.tree_root.to_owned(), request.context_dir.to_owned());
        let producer = tokio::task::spawn_blocking(move || context::send(&root, &dir, &dockerfile, tx));
        let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));

        tracing::info!(
            endpoint = "POST /build",
            tag = request.tag,
            no_cache = request.no_cache,
            builder = ?request.builder,
            "building"
        );
        let mut stream = self.docker().await?.build_image(options, None, Some(bollard::body_try_stream(body)));
        let mut lines = String::new();
        let mut progress = buildkit::Progress::default();
        let mut image_id = None;
        let mut failure = None;
        // Drained to the end: the image id and the error may both come late.
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(text) = info.stream {
                        lines.push_str(&text);
                        while let Some(end) = lines.find('\n') {
                            log(lines[..end].trim_end_matches('\r'));
                            lines.drain(..=end);
                        }
                    }
                    match info.aux {
                        Some(BuildInfoAux::Default(ImageId { id: Some(id) })) => image_id = Some(id),
                        Some(BuildInfoAux::BuildKit(status)) => progress.update(status, log),
                        _ => {}
                    }
                }
                Err(BollardError::DockerStreamError { error }) => {
                    failure.get_or_insert(BuildError::Failed(error));
                }
                // bollard 0.21 can end a good stream with a spurious framing error (bollard #560).
                Err(e) if image_id.is_some() && failure.is_none() => log(&format!("warning: {e}")),
                Err(e) => {
                    failure.get_or_insert(BuildError::Engine(api_error("build failed", e)));
                }
            }
        }
        if !lines.is_empty() {
            log(&lines);
        }
        progress.finish(log);
        // Drops the request body, so a producer still blocked on the channel stops.
        drop(stream);
        // A context error comes first: it explains whatever the aborted upload made the daemon say.
        producer.await.map_err(|e| BuildError::Context(format!("the build context task failed: {e}")))??;
        if let Some(failure) = failure {
            return Err(failure);
        }
        image_id.ok_or_else(|| BuildError::Engine(EngineError::Api("the daemon reported no image id".into())))
    }
}

/// A digest (hex sha256) of what a build sends: the rendered Dockerfile and every context file left after
/// `.dockerignore`, links followed (path, type, mode, content hash), in a deterministic order. `tree_root` is the
/// tree's root, canonical.
pub fn context_digest(tree_root: &Path, context_dir: &Path, dockerfile: &str) -> Result<String, BuildError> {
    context::digest(tree_root, context_dir, dockerfile)
}

/// Where the symbolic links of a build context lead (canonical): what a build sends from outside the image
/// directory.
pub fn context_link_targets(tree_root: &Path, context_dir: &Path) -> Result<Vec<PathBuf>, BuildError> {
    context::link_targets(tree_root, context_dir)
}

/// `LABEL "k"="v" ...` for labels whose keys and values need no escaping (whatever the Dockerfile's escape
/// character); `None` when one would, or when there are none.
fn label_instruction(labels: &BTreeMap<String, String>) -> Option<String> {
    let plain = |s: &str| !s.contains(['"', '\\', '`', '\n', '\r', '$']);
    if labels.is_empty() || !labels.iter().all(|(k, v)| plain(k) && plain(v)) {
        return None;
    }
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("\"{k}\"=\"{v}\"")).collect();
    Some(format!("LABEL {}", pairs.join(" ")))
}

/// A non-empty environment variable (the Docker CLI treats empty ones as unset).
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The hint of a daemon that does not answer, as the Docker CLI gives it.
const NOT_RUNNING: &str = "Docker is not running. Please start Docker and try again.";

/// The hint of an `ssh://` daemon that does not answer.
const SSH_HINT: &str = "Check that ssh reaches that machine without a prompt (a key or an agent, its host key in known \
                        hosts) and that the user can run `docker version` there.";

/// Checks an `ssh://[USER@]HOST[:PORT][/SOCKET]` endpoint, as the config names it.
pub fn check_ssh_endpoint(endpoint: &str) -> Result<(), String> {
    ssh::Destination::parse(endpoint).map(drop)
}

/// Where a client connects: the host as it was completed (the one to name in errors), and the certificate directory
/// when it uses TLS.
struct Daemon {
    host: String,
    cert_dir: Option<PathBuf>,
    /// For an `ssh://` host: what ssh said last (why it could not connect, when it could not).
    ssh_said: Option<Arc<ssh::Said>>,
}

/// A client for `host`, not yet contacted.
fn open(host: &str, tls: bool) -> Result<(Daemon, Docker), EngineError> {
    let timeout = CLIENT_TIMEOUT.as_secs();
    let version = bollard::API_DEFAULT_VERSION;
    if host.starts_with("unix://") {
        let target = Daemon { host: host.to_owned(), cert_dir: None, ssh_said: None };
        let docker = Docker::connect_with_unix(host, timeout, version).map_err(|e| target.error(e))?;
        return Ok((target, docker));
    }
    if host.starts_with("ssh://") {
        let (docker, said) = ssh::open(host, timeout, version).map_err(EngineError::Api)?;
        return Ok((Daemon { host: host.to_owned(), cert_dir: None, ssh_said: Some(said) }, docker));
    }
    let Some((address, tls)) = tcp_address(host, tls) else {
        return Err(EngineError::Api(format!("unsupported DOCKER_HOST `{host}` (expected unix://, tcp:// or ssh://)")));
    };
    if !tls {
        let target = Daemon { host: address, cert_dir: None, ssh_said: None };
        let docker = Docker::connect_with_http(&target.host, timeout, version).map_err(|e| target.error(e))?;
        return Ok((target, docker));
    }
    let dir = cert_dir().ok_or_else(|| {
        EngineError::Api(format!(
            "cannot connect to {address} with TLS: no certificate directory (set DOCKER_CERT_PATH, or HOME for ~/.docker)"
        ))
    })?;
    let [ca, cert, key] = tls_files(&address, &dir)?;
    let docker = Docker::connect_with_ssl(&address, &key, &cert, &ca, timeout, version)
        .map_err(|e| EngineError::Api(format!("cannot connect to {address} with TLS: {}", with_sources(&e))))?;
    Ok((Daemon { host: address, cert_dir: Some(dir), ssh_said: None }, docker))
}

/// A `tcp://` host completed as the Docker CLI does: `localhost` for an empty host name and, when no port is given,
/// 2376 with TLS and 2375 without; and whether to use TLS. `https://` hosts always use it, `http://` ones never.
/// `None` for other schemes.
fn tcp_address(host: &str, tls: bool) -> Option<(String, bool)> {
    let (scheme, rest) = host.split_once("://")?;
    let tls = match scheme {
        "tcp" => tls,
        "https" => true,
        "http" => false,
        _ => return None,
    };
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    // `[v6]:port`, `[v6]`, `name:port`, `name`, `:port`, ``.
    let (name, port) = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => (&authority[..i], &authority[i + 1..]),
        _ => (authority, ""),
    };
    let name = if name.is_empty() { "localhost" } else { name };
    let port = match port {
        "" if tls => "2376",
        "" => "2375",
        port => port,
    };
    Some((format!("{scheme}://{name}:{port}{path}"), tls))
}

/// Where the Docker CLI looks for `ca.pem`, `cert.pem` and `key.pem`.
fn cert_dir() -> Option<PathBuf> {
    let configured = env_var("DOCKER_CERT_PATH").or_else(|| env_var("DOCKER_CONFIG")).map(PathBuf::from);
    configured.or_else(|| std::env::home_dir().map(|home| home.join(".docker")))
}

/// `ca.pem`, `cert.pem` and `key.pem` in `dir`, each checked to be readable PEM of the right kind. bollard reads the
/// client's pair only during the handshake, and silently sends none when it cannot: the daemon would then only say
/// that the handshake failed.
fn tls_files(address: &str, dir: &Path) -> Result<[PathBuf; 3], EngineError> {
    const CERTIFICATE: &[&str] = &["CERTIFICATE"];
    // What rustls can load: PKCS#8, PKCS#1 (RSA) and SEC1 (EC) keys, not encrypted ones.
    const KEY: &[&str] = &["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"];
    let files = [
        ("ca.pem", "CA certificate", CERTIFICATE),
        ("cert.pem", "client certificate", CERTIFICATE),
        ("key.pem", "client key", KEY),
    ];
    for (name, what, labels) in files {
        let path = dir.join(name);
        let fail = |problem: String| {
            EngineError::Api(format!(
                "cannot connect to {address} with TLS: {problem} (DOCKER_CERT_PATH must name the directory holding \
                 ca.pem, cert.pem and key.pem)"
            ))
        };
        let text = crate::files::read(&path, crate::files::PEM_LIMIT)
            .map_err(|e| fail(format!("cannot read the {what} {}: {e}", path.display())))?;
        if !holds_pem(&String::from_utf8_lossy(&text), labels) {
            return Err(fail(format!("the {what} {} holds no PEM {}", path.display(), labels.join(" or "))));
        }
    }
    Ok(["ca.pem", "cert.pem", "key.pem"].map(|name| dir.join(name)))
}

/// Whether `text` has a PEM block labelled one of `labels` (`-----BEGIN LABEL-----`).
fn holds_pem(text: &str, labels: &[&str]) -> bool {
    text.lines().any(|line| {
        let label = line.trim().strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----"));
        label.is_some_and(|label| labels.contains(&label))
    })
}

impl Daemon {
    /// [`Daemon::error`], and for an `ssh://` host what ssh said (why it could not connect, as a rule).
    async fn failure(&self, error: BollardError) -> EngineError {
        let Some(said) = &self.ssh_said else { return self.error(error) };
        let said = said.last_line().await;
        let message = with_sources(&error);
        let message = if said.is_empty() { message } else { format!("{message}; ssh said: {said}") };
        EngineError::Unreachable { host: self.host.clone(), message, hint: SSH_HINT }
    }

    /// A failure to reach the daemon, or to talk to it at all. A daemon that is not there is
    /// [`EngineError::Unreachable`]; one that wants TLS, fails the TLS handshake or drops the TLS connection is an
    /// error of its own (it is there, and another hint helps).
    fn error(&self, error: BollardError) -> EngineError {
        let host = &self.host;
        match &error {
            // What a Go TLS server answers to plain HTTP.
            BollardError::DockerResponseServerError { status_code: 400, message }
                if message.contains("HTTPS server") =>
            {
                return EngineError::Api(format!(
                    "cannot connect to the Docker daemon at {host}: it expects TLS ({}); set DOCKER_TLS_VERIFY=1 and \
                     DOCKER_CERT_PATH to the directory holding ca.pem, cert.pem and key.pem",
                    message.trim()
                ));
            }
            _ => {}
        }
        let message = with_sources(&error);
        let unreachable = |message| EngineError::Unreachable { host: host.to_owned(), message, hint: NOT_RUNNING };
        let Some(dir) = &self.cert_dir else { return unreachable(message) };
        if sources(&error).any(is_tls_failure) {
            return EngineError::Api(format!(
                "TLS with the Docker daemon at {host} failed ({message}); check ca.pem, cert.pem and key.pem in {}",
                dir.display()
            ));
        }
        // With TLS 1.3 a daemon checks the client certificate after the handshake and may then just close the
        // connection: hyper reports a cancelled request with no I/O error (refused connections and DNS failures
        // carry one).
        if matches!(error, BollardError::HyperLegacyError { .. }) && !sources(&error).any(|e| e.is::<std::io::Error>())
        {
            return EngineError::Api(format!(
                "the Docker daemon at {host} closed the TLS connection ({message}); does it accept the client \
                 certificate {}?",
                dir.join("cert.pem").display()
            ));
        }
        unreachable(message)
    }
}

/// `error` and its sources (bollard's own message often stops at "client error (Connect)").
fn with_sources(error: &BollardError) -> String {
    let mut message = String::new();
    for e in sources(error) {
        let text = e.to_string();
        if !message.contains(&text) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&text);
        }
    }
    message
}

/// tokio-rustls reports TLS failures (a bad certificate, an alert from the daemon) as an InvalidData I/O error, which
/// hyper-rustls wraps in another I/O error during the handshake.
fn is_tls_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut error = error;
    while let Some(io) = error.downcast_ref::<std::io::Error>() {
        if io.kind() == std::io::ErrorKind::InvalidData {
            return true;
        }
        match io.get_ref() {
            Some(inner) => error = inner,
            None => break,
        }
    }
    false
}

fn sources<'a>(error: &'a BollardError) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error as &(dyn std::error::Error + 'static)), |e| e.source())
}

/// The daemon's own message when it sent one, with what we were doing.
fn api_error(context: &str, error: BollardError) -> EngineError {
    let message = match error {
        BollardError::DockerResponseServerError { message, .. } => message,
        BollardError::DockerStreamError { error } => error,
        e => e.to_string(),
    };
    EngineError::Api(format!("{context}: {}", message.trim()))
}

/// Old daemons list `<none>:<none>` and `<none>@<none>` for an image without references.
fn without_none(references: Vec<String>) -> Vec<String> {
    references.into_iter().filter(|r| !r.starts_with("<none>")).collect()
}

/// The registry of a reference, as the daemon keys credentials: Docker Hub's index address when it names none.
fn registry_address(reference: &Reference) -> &str {
    reference.registry().unwrap_or("https://index.docker.io/v1/")
}

fn docker_credentials(credentials: &Credentials, serveraddress: &str) -> DockerCredentials {
    let serveraddress = Some(serveraddress.to_owned());
    match credentials {
        Credentials::Basic { username, password } => DockerCredentials {
            username: Some(username.clone()),
            password: Some(password.clone()),
            serveraddress,
            ..Default::default()
        },
        Credentials::IdentityToken(token) => {
            DockerCredentials { identitytoken: Some(token.clone()), serveraddress, ..Default::default() }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_become_one_instruction_unless_they_need_quoting() {
        let mut labels = BTreeMap::from([("a.b".to_owned(), "1.0".to_owned()), ("c".to_owned(), "x y".to_owned())]);
        assert_eq!(label_instruction(&labels).as_deref(), Some(r#"LABEL "a.b"="1.0" "c"="x y""#));
        labels.insert("d".into(), "say \"hi\"".into());
        assert_eq!(label_instruction(&labels), None);
        assert_eq!(label_instruction(&BTreeMap::new()), None);
    }

    #[test]
    fn registry_of_a_repository() {
        let address = |r: &str| registry_address(&Reference::parse(r).unwrap()).to_owned();
        assert_eq!(address("127.0.0.1:5000/a/b"), "127.0.0.1:5000");
        assert_eq!(address("docker-registry.wikimedia.org/bullseye"), "docker-registry.wikimedia.org");
        assert_eq!(address("localhost/a"), "localhost");
        assert_eq!(address("library/debian"), "https://index.docker.io/v1/");
        assert_eq!(address("debian:12"), "https://index.docker.io/v1/");
    }

    #[test]
    fn tcp_hosts_are_completed_as_the_docker_cli_does() {
        let address = |host, tls| tcp_address(host, tls).map(|(a, tls)| format!("{a} tls={tls}"));
        assert_eq!(address("tcp://10.0.0.1", false).as_deref(), Some("tcp://10.0.0.1:2375 tls=false"));
        assert_eq!(address("tcp://10.0.0.1", true).as_deref(), Some("tcp://10.0.0.1:2376 tls=true"));
        assert_eq!(address("tcp://10.0.0.1:1234", true).as_deref(), Some("tcp://10.0.0.1:1234 tls=true"));
        assert_eq!(address("tcp://", false).as_deref(), Some("tcp://localhost:2375 tls=false"));
        assert_eq!(address("tcp://:2380", true).as_deref(), Some("tcp://localhost:2380 tls=true"));
        assert_eq!(address("tcp://[::1]", true).as_deref(), Some("tcp://[::1]:2376 tls=true"));
        assert_eq!(address("tcp://[::1]:99/base", false).as_deref(), Some("tcp://[::1]:99/base tls=false"));
        assert_eq!(address("https://docker.example", false).as_deref(), Some("https://docker.example:2376 tls=true"));
        assert_eq!(address("http://docker.example", true).as_deref(), Some("http://docker.example:2375 tls=false"));
        assert_eq!(address("ssh://docker.example", true), None);
        assert_eq!(address("docker.example", true), None);
    }

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const KEY: &str = "-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n";

    fn tls_error(dir: &Path) -> String {
        match tls_files("tcp://h:2376", dir) {
            Err(EngineError::Api(message)) => message,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn tls_files_are_checked_and_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let error = tls_error(dir.path());
        let ca = dir.path().join("ca.pem");
        assert!(error.contains(&format!("cannot read the CA certificate {}", ca.display())), "{error}");
        assert!(error.contains("DOCKER_CERT_PATH"), "{error}");

        std::fs::write(dir.path().join("ca.pem"), CERT).unwrap();
        std::fs::write(dir.path().join("cert.pem"), CERT).unwrap();
        let error = tls_error(dir.path());
        assert!(error.contains(&format!("the client key {}", dir.path().join("key.pem").display())), "{error}");

        std::fs::write(dir.path().join("key.pem"), CERT).unwrap();
        let error = tls_error(dir.path());
        assert!(error.contains("key.pem holds no PEM PRIVATE KEY or RSA PRIVATE KEY"), "{error}");

        std::fs::write(dir.path().join("key.pem"), KEY).unwrap();
        let files = tls_files("tcp://h:2376", dir.path()).expect("all three");
        assert_eq!(files, ["ca.pem", "cert.pem", "key.pem"].map(|f| dir.path().join(f)));
    }

    /// rustls picks its crypto provider from its crate features only when exactly one is compiled in (bollard's
    /// `aws-lc-rs`, as reqwest's); with two, building a TLS client would panic.
    #[test]
    fn a_tls_client_can_be_built() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("ca.pem"), "").unwrap();
        let file = |name| dir.path().join(name);
        let docker = Docker::connect_with_ssl(
            "tcp://127.0.0.1:2376",
            &file("key.pem"),
            &file("cert.pem"),
            &file("ca.pem"),
            1,
            bollard::API_DEFAULT_VERSION,
        );
        assert!(docker.is_ok(), "{docker:?}");
    }
}
