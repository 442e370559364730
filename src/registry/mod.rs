//! Registry client: "is `name:tag` published?", answered only by a 200 or a 404 to a manifest `HEAD`; anything
//! else (auth refused, 5xx after retries, TLS or connection failure) is an error, never "absent".
//!
//! Auth: a registry's first 401 tells its scheme, remembered for the client's life. Basic credentials are sent
//! only to registries that asked for Basic; for Bearer, a token per registry and scope
//! (`repository:<name>:pull`) is fetched from the challenge's realm and cached. Credentials come from the imgraph
//! config (for its `registry` only), then Docker's `config.json` and credential helpers; they are looked up only
//! when a registry asks. They never travel in cleartext where they would not already: they go to an `https://`
//! realm, and to an `http://` realm only when the registry itself is being reached over plain HTTP and the realm
//! is on the registry's host. Any other realm is asked for a token without them, and a refusal says why.
//!
//! Transport, as dockerd's: HTTPS, with certificates verified against the system's roots plus `ca_bundle`
//! (see [`tls`]). Registries dockerd calls insecure ([`transport::InsecureRegistries`]: loopback ones and
//! `insecure_registries`) get HTTPS without certificate verification, and plain HTTP when that gets no HTTP
//! answer at all.

mod auth;
mod credentials;
pub mod manifest;
mod tls;
mod transport;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{ACCEPT, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode, Url};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use tokio::sync::{OnceCell, Semaphore};

use crate::config::Config;
use crate::lock;
use crate::reference::{self, Reference};
use auth::{Challenge, TokenAnswer};
use credentials::normalize_host;
use manifest::{Descriptor, ManifestPlatform, RawImageConfig, RawManifest, TagContent};
use transport::InsecureRegistries;
pub use transport::RetryPolicy;

/// The manifest types asked for, so that the registry answers for what the tag points to (index or image).
const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// A registry's answer about one tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagState {
    /// 200: the manifest exists (with its digest when the registry sent one).
    Present { digest: Option<String> },
    /// 404: no such manifest (or repository).
    Absent,
}

/// Anything but a clean 200 or 404: never to be read as "absent".
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct RegistryError {
    /// `registry/repository:tag` asked about.
    pub reference: String,
    /// Why, for humans, e.g. "registry answered 500 after 3 tries".
    pub message: String,
}

/// Credentials for one registry, as the Docker daemon wants them for pulls and pushes.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Basic { username: String, password: String },
    IdentityToken(String),
}

impl Credentials {
    /// What kind of credential this is, for logs (never the secret).
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Basic { .. } => "username and password",
            Self::IdentityToken(_) => "identity token",
        }
    }
}

/// Secrets stay out of logs and panics.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Basic { username, .. } => write!(f, "Basic {{ username: {username:?}, password: <redacted> }}"),
            Self::IdentityToken(_) => write!(f, "IdentityToken(<redacted>)"),
        }
    }
}

/// Knobs of a [`RegistryClient`] that are not in the imgraph config.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub retry: RetryPolicy,
    /// Directory holding Docker's `config.json` (`None`: no Docker credentials).
    pub docker_config_dir: Option<PathBuf>,
    /// Requests in flight at once, over all registries.
    pub max_concurrent_requests: usize,
    pub connect_timeout: Duration,
    /// Whole-request limit.
    pub request_timeout: Duration,
}

impl ClientOptions {
    /// The defaults, with Docker's config directory from `$DOCKER_CONFIG`, else `~/.docker`.
    pub fn from_env() -> Self {
        Self {
            retry: RetryPolicy::default(),
            docker_config_dir: credentials::docker_config_dir_from_env(),
            max_concurrent_requests: 16,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// A registry client shared by a whole run (connection reuse, token cache, bounded concurrency).
#[derive(Debug, Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

struct Inner {
    /// Verifies certificates: the system's roots plus `ca_bundle`.
    http: reqwest::Client,
    /// Verifies no certificate: HTTPS to insecure registries, as dockerd.
    http_unverified: reqwest::Client,
    permits: Semaphore,
    retry: RetryPolicy,
    insecure: InsecureRegistries,
    /// What a TLS failure adds: the certificates trusted.
    trusted: String,
    /// dockerd's ping timeout, within the request timeout: for an insecure registry's HTTPS to answer before
    /// plain HTTP is tried, and for a registry's host name to resolve.
    ping_timeout: Duration,
    /// The config's registry (normalised) and its username/password.
    config_credentials: Option<(String, Credentials)>,
    docker_config_dir: Option<PathBuf>,
    /// Per normalised registry, looked up once.
    credentials: Mutex<HashMap<String, Arc<OnceCell<Option<Credentials>>>>>,
    /// Per `host[:port]` named only by a host name: whether dockerd would call it insecure, resolved once.
    insecure_hosts: Mutex<HashMap<String, Arc<OnceCell<bool>>>>,
    /// Per insecure registry host: whether it answered HTTPS (`true`) or plain HTTP only (`false`), learnt from
    /// the first request.
    answers_https: Mutex<HashMap<String, bool>>,
    /// Per `host[:port]` that could not be connected to after every retry: why. Later requests fail at once
    /// rather than each retrying a registry that is down or does not resolve.
    unreachable: Mutex<HashMap<String, String>>,
    /// Per registry as given: the scheme its last 401 asked for.
    challenges: Mutex<HashMap<String, Challenge>>,
    /// Per (registry, scope); the async lock makes concurrent checks share one token request.
    tokens: Mutex<HashMap<(String, String), TokenSlot>>,
}

/// One cached token, `None` until fetched.
type TokenSlot = Arc<tokio::sync::Mutex<Option<Token>>>;

/// A Bearer token, and the realm it came from when the registry's credentials were kept from that realm (so
/// that a refusal can say why).
#[derive(Clone)]
struct Token {
    value: String,
    withheld_from: Option<String>,
}

/// Hand-written so that no credential or token can reach a log.
impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("retry", &self.retry)
            .field("insecure", &self.insecure)
            .field("docker_config_dir", &self.docker_config_dir)
            .finish_non_exhaustive()
    }
}

/// What to send with a request.
#[derive(Clone)]
enum Auth {
    Anonymous,
    Basic { username: String, password: String },
    Bearer(Token),
}

impl Auth {
    fn apply(&self, request: RequestBuilder) -> RequestBuilder {
        match self {
            Self::Anonymous => request,
            Self::Basic { username, password } => request.basic_auth(username, Some(password)),
            Self::Bearer(token) => request.bearer_auth(&token.value),
        }
    }
}

/// One repository on one registry, with the address its API answers at.
struct Endpoint<'a> {
    registry: &'a str,
    /// `https://host[:port]`, or `http://…` for an insecure registry known to give no HTTPS answer (requests to an
    /// insecure registry not known yet find out, see `Inner::manifest`).
    origin: String,
    /// `host[:port]` of the API.
    host: String,
    /// Insecure (dockerd's rule): its certificate is not verified, and plain HTTP is tried when HTTPS gets no
    /// answer.
    insecure: bool,
    repository: String,
    /// Whether requests write (a token is then asked for `pull,push`).
    push: bool,
}

/// A request body: its media type and bytes.
struct Body {
    media_type: &'static str,
    bytes: bytes::Bytes,
}

impl RegistryClient {
    /// Builds the client from the config (credentials, `ca_bundle`, `insecure_registries`, `http_proxy`).
    pub fn new(config: &Config) -> Result<Self, RegistryError> {
        Self::with_options(config, ClientOptions::from_env())
    }

    /// As [`RegistryClient::new`], with explicit options.
    pub fn with_options(config: &Config, options: ClientOptions) -> Result<Self, RegistryError> {
        let error = |message: String| RegistryError { reference: config.registry().to_owned(), message };
        let insecure = InsecureRegistries::new(&config.insecure_registries).map_err(error)?;
        let (bundle, trusted) = match &config.ca_bundle {
            Some(path) => {
                (read_ca_bundle(path).map_err(error)?, format!("the system's roots and ca_bundle {}", path.display()))
            }
            None => (Vec::new(), "the system's roots (no ca_bundle set)".to_owned()),
        };
        let verifying = tls::verifying(bundle).map_err(|e| {
            error(match &config.ca_bundle {
                Some(path) => format!("cannot use ca_bundle {}: {e}", path.display()),
                None => format!("cannot set up TLS: {e}"),
            })
        })?;
        let unverified = tls::unverified().map_err(|e| error(format!("cannot set up TLS: {e}")))?;
        // As docker-pkg: the proxy is for HTTPS registries (plain HTTP ones are loopback or explicitly local).
        let proxy = match config.http_proxy.as_deref().filter(|p| !p.is_empty()) {
            Some(proxy) => Some(
                reqwest::Proxy::https(proxy)
                    .map_err(|e| error(format!("invalid http_proxy {proxy}: {e}")))?
                    .no_proxy(reqwest::NoProxy::from_string("localhost,127.0.0.0/8,::1")),
            ),
            None => None,
        };
        let client = |tls: rustls::ClientConfig| {
            let mut builder = reqwest::Client::builder()
                .user_agent(concat!("imgraph/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(options.connect_timeout)
                .timeout(options.request_timeout)
                .tls_backend_preconfigured(tls);
            if let Some(proxy) = &proxy {
                builder = builder.proxy(proxy.clone());
            }
            builder.build().map_err(|e| error(format!("cannot set up the HTTP client: {}", error_chain(&e))))
        };
        let (http, http_unverified) = (client(verifying)?, client(unverified)?);
        let config_credentials = match (config.registry(), &config.username, &config.password) {
            (registry, Some(username), Some(password)) if !registry.is_empty() => Some((
                normalize_host(registry),
                Credentials::Basic { username: username.clone(), password: password.clone() },
            )),
            _ => None,
        };
        let inner = Inner {
            http,
            http_unverified,
            permits: Semaphore::new(options.max_concurrent_requests.max(1)),
            retry: options.retry,
            insecure,
            trusted,
            ping_timeout: PING_TIMEOUT.min(options.request_timeout),
            config_credentials,
            docker_config_dir: options.docker_config_dir,
            credentials: Mutex::default(),
            insecure_hosts: Mutex::default(),
            answers_https: Mutex::default(),
            unreachable: Mutex::default(),
            challenges: Mutex::default(),
            tokens: Mutex::default(),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Asks `registry` whether `repository:tag` exists. `repository` has no registry prefix (`ns/name`).
    pub async fn tag_state(&self, registry: &str, repository: &str, tag: &str) -> Result<TagState, RegistryError> {
        let reference = format!("{registry}/{repository}:{tag}");
        self.inner.tag_state(registry, repository, tag).await.map_err(|message| RegistryError { reference, message })
    }

    /// The labels of the image `repository:tag` in `registry` (for an index, of its `linux/amd64` image, else
    /// its first); `None` when the registry does not have it.
    pub async fn image_labels(
        &self,
        registry: &str,
        repository: &str,
        tag: &str,
    ) -> Result<Option<BTreeMap<String, String>>, RegistryError> {
        let reference = format!("{registry}/{repository}:{tag}");
        self.inner.image_labels(registry, repository, tag).await.map_err(|message| RegistryError { reference, message })
    }

    /// What `repository:tag` holds in `registry`: one image, with the platform of its config, or an index;
    /// `None` when the registry does not have it.
    pub async fn tag_content(
        &self,
        registry: &str,
        repository: &str,
        tag: &str,
    ) -> Result<Option<TagContent>, RegistryError> {
        let reference = format!("{registry}/{repository}:{tag}");
        self.inner.tag_content(registry, repository, tag).await.map_err(|message| RegistryError { reference, message })
    }

    /// The descriptor (media type, size) of the manifest `digest` of `repository`, without a platform; `None`
    /// when the registry does not have it.
    pub async fn descriptor(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
    ) -> Result<Option<Descriptor>, RegistryError> {
        let reference = format!("{registry}/{repository}@{digest}");
        self.inner
            .descriptor(registry, repository, digest)
            .await
            .map_err(|message| RegistryError { reference, message })
    }

    /// Puts one index listing `manifests` (which the repository must hold) under each of `tags`, in order;
    /// returns the index digest.
    pub async fn put_index(
        &self,
        registry: &str,
        repository: &str,
        tags: &[String],
        manifests: &[Descriptor],
    ) -> Result<String, RegistryError> {
        let reference = format!("{registry}/{repository}");
        self.inner
            .put_index(registry, repository, tags, manifests)
            .await
            .map_err(|message| RegistryError { reference, message })
    }

    /// The credentials to use for `registry` (config first, then the Docker config), if any.
    pub async fn credentials(&self, registry: &str) -> Result<Option<Credentials>, RegistryError> {
        self.inner
            .credentials(registry)
            .await
            .map_err(|message| RegistryError { reference: registry.to_owned(), message })
    }
}

/// Every message of an error's source chain, joined.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(source) = cause {
        text.push_str(": ");
        text.push_str(&source.to_string());
        cause = source.source();
    }
    text
}

/// The certificates of the PEM file `path` (other PEM sections are ignored).
fn read_ca_bundle(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = crate::files::read(path, crate::files::PEM_LIMIT)
        .map_err(|e| format!("cannot read ca_bundle {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("ca_bundle {} is not a PEM certificate bundle: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("ca_bundle {} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// How long an insecure registry's HTTPS may take to answer before plain HTTP is tried: dockerd's ping timeout
/// (moby `PingV2Registry`).
const PING_TIMEOUT: Duration = Duration::from_secs(15);

/// The realm rule: whether the registry's credentials may go to the token `realm` of `target`. Over HTTPS, yes.
/// Over plain HTTP only where they travel in cleartext already: the registry itself is being reached over plain
/// HTTP (`plain_http`), and the realm is on its host.
fn credentials_may_go_to(realm: &Url, target: &Endpoint<'_>, plain_http: bool) -> bool {
    match realm.scheme() {
        "https" => true,
        "http" => {
            plain_http
                && Url::parse(&format!("http://{}", target.host))
                    .is_ok_and(|origin| origin.host().is_some() && origin.host() == realm.host())
        }
        _ => false,
    }
}

/// Why a token asked for without the registry's credentials (the realm rule) was refused, by `at` with `status`.
fn withheld(status: StatusCode, at: &str, realm: &str, registry: &str) -> String {
    format!(
        "{at} refused access ({status}) without credentials: the credentials for {registry} were not sent to its \
         token realm {realm}, as an http:// realm gets them only when the registry itself is reached over plain HTTP \
         and the realm is on the registry's host"
    )
}

/// `host[:port]` of `url`, the port only when it is explicit.
fn authority(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// Reference parts that go into a URL path, each checked on its own against Docker's grammar, so that odd input
/// cannot reach another endpoint: `tag` may also be a digest (a tag never holds a `:`).
fn validate(registry: &str, repository: &str, tag: &str) -> Result<(), String> {
    reference::check_registry(registry)?;
    let repository = format!("{registry}/{repository}");
    reference::check_repository(&repository)?;
    let separator = if tag.contains(':') { '@' } else { ':' };
    Reference::parse(&format!("{repository}{separator}{tag}")).map(drop)
}

/// A manifest or blob as fetched.
struct Fetched {
    media_type: Option<String>,
    /// The registry's `Docker-Content-Digest`, else the sha256 of the bytes.
    digest: String,
    bytes: bytes::Bytes,
}

/// The response's media type, without parameters.
fn content_type(response: &Response) -> Option<String> {
    let value = response.headers().get(reqwest::header::CONTENT_TYPE)?.to_str().ok()?;
    let media_type = value.split(';').next()?.trim();
    (!media_type.is_empty()).then(|| media_type.to_owned())
}

fn digest_header(response: &Response) -> Option<String> {
    let value = response.headers().get("docker-content-digest")?.to_str().ok()?.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// Why `at` refused with `status`, given the credentials `found` for `registry`.
fn auth_refused(status: StatusCode, at: &str, registry: &str, found: Option<&Credentials>) -> String {
    match (status, found) {
        (StatusCode::UNAUTHORIZED, Some(Credentials::Basic { .. })) => format!(
            "authentication failed ({status}) at {at}: check username/password in the config or run docker login {registry}"
        ),
        (StatusCode::UNAUTHORIZED, Some(Credentials::IdentityToken(_))) => format!(
            "authentication required ({status}) at {at} and Docker's config has only an identity token for \
             {registry}, which cannot be used for this check: set username/password in the config"
        ),
        (StatusCode::UNAUTHORIZED, None) => format!(
            "authentication required ({status}) at {at} and no credentials found: set username/password in the \
             config or run docker login {registry}"
        ),
        _ => format!("access denied ({status}) at {at}: the credentials used lack pull access"),
    }
}

impl Inner {
    async fn tag_state(&self, registry: &str, repository: &str, tag: &str) -> Result<TagState, String> {
        validate(registry, repository, tag)?;
        let target = self.target(registry, repository).await;
        let url = Url::parse(&format!("{}/v2/{}/manifests/{tag}", target.origin, target.repository))
            .map_err(|e| format!("invalid registry address `{registry}`: {e}"))?;
        let (response, auth) = self.authorized(reqwest::Method::HEAD, &url, &target, None).await?;
        match response.status() {
            StatusCode::OK => {
                let digest = match digest_header(&response) {
                    Some(digest) => Some(digest),
                    None => self.digest_by_get(&url, &target, &auth).await,
                };
                Ok(TagState::Present { digest })
            }
            StatusCode::NOT_FOUND => Ok(TagState::Absent),
            status @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => match &auth {
                Auth::Bearer(Token { withheld_from: Some(realm), .. }) => {
                    Err(withheld(status, registry, realm, registry))
                }
                _ => Err(auth_refused(status, registry, registry, self.credentials(registry).await?.as_ref())),
            },
            status => Err(format!("registry answered {status} (expected 200 or 404)")),
        }
    }

    async fn image_labels(
        &self,
        registry: &str,
        repository: &str,
        tag: &str,
    ) -> Result<Option<BTreeMap<String, String>>, String> {
        validate(registry, repository, tag)?;
        let target = self.target(registry, repository).await;
        let api = format!("{}/v2/{}", target.origin, target.repository);
        let url =
            |path: &str| Url::parse(&format!("{api}/{path}")).map_err(|e| format!("invalid URL {api}/{path}: {e}"));
        let Some(mut manifest) =
            self.get_json::<serde_json::Value>(&target, &url(&format!("manifests/{tag}"))?).await?
        else {
            return Ok(None);
        };
        // An index: the linux/amd64 image, else the first.
        if let Some(manifests) = manifest.get("manifests").and_then(serde_json::Value::as_array) {
            let platform = |m: &serde_json::Value, key: &str| m["platform"][key].as_str().map(str::to_owned);
            let chosen = manifests
                .iter()
                .find(|m| {
                    platform(m, "os").as_deref() == Some("linux")
                        && platform(m, "architecture").as_deref() == Some("amd64")
                })
                .or_else(|| manifests.first());
            let Some(digest) = chosen.and_then(|m| m["digest"].as_str()) else {
                return Err(format!("the index of {repository}:{tag} lists no image"));
            };
            manifest = self
                .get_json::<serde_json::Value>(&target, &url(&format!("manifests/{digest}"))?)
                .await?
                .ok_or_else(|| format!("the index of {repository}:{tag} names {digest}, which the registry lacks"))?;
        }
        let Some(config) = manifest["config"]["digest"].as_str() else {
            return Err(format!("the manifest of {repository}:{tag} names no config"));
        };
        let config = self
            .get_json::<serde_json::Value>(&target, &url(&format!("blobs/{config}"))?)
            .await?
            .ok_or_else(|| format!("the config blob {config} of {repository}:{tag} is missing"))?;
        let labels = config["config"]["Labels"].as_object().into_iter().flatten();
        Ok(Some(labels.filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect()))
    }

    /// GETs `url` as JSON with the registry's auth: `None` on 404.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        target: &Endpoint<'_>,
        url: &Url,
    ) -> Result<Option<T>, String> {
        let Some(fetched) = self.get(target, url).await? else { return Ok(None) };
        serde_json::from_slice(&fetched.bytes).map(Some).map_err(|e| format!("{url} is not what was expected: {e}"))
    }

    /// GETs `url` with the registry's auth: `None` on 404.
    async fn get(&self, target: &Endpoint<'_>, url: &Url) -> Result<Option<Fetched>, String> {
        let (response, _) = self.authorized(reqwest::Method::GET, url, target, None).await?;
        match response.status() {
            StatusCode::OK => {
                let digest = digest_header(&response);
                let media_type = content_type(&response);
                let bytes = response.bytes().await.map_err(|e| format!("reading {url}: {e}"))?;
                let digest = digest.unwrap_or_else(|| manifest::digest_of(&bytes));
                Ok(Some(Fetched { media_type, digest, bytes }))
            }
            StatusCode::NOT_FOUND => Ok(None),
            status => Err(format!("registry answered {status} to GET {url}")),
        }
    }

    async fn tag_content(&self, registry: &str, repository: &str, tag: &str) -> Result<Option<TagContent>, String> {
        validate(registry, repository, tag)?;
        let target = self.target(registry, repository).await;
        let api = format!("{}/v2/{}", target.origin, target.repository);
        let url =
            |path: &str| Url::parse(&format!("{api}/{path}")).map_err(|e| format!("invalid URL {api}/{path}: {e}"));
        let Some(fetched) = self.get(&target, &url(&format!("manifests/{tag}"))?).await? else { return Ok(None) };
        let raw: RawManifest =
            serde_json::from_slice(&fetched.bytes).map_err(|e| format!("the manifest of {repository}:{tag}: {e}"))?;
        let media_type = raw.media_type.clone().or(fetched.media_type).unwrap_or_default();
        if let Some(manifests) = raw.manifests.filter(|_| manifest::is_index(&media_type) || raw.config.is_none()) {
            let manifests = manifests.into_iter().filter(|m| m.platform.is_some()).collect();
            return Ok(Some(TagContent::Index { digest: fetched.digest, manifests }));
        }
        let Some(config) = raw.config else {
            return Err(format!("the manifest of {repository}:{tag} is neither an image nor an index"));
        };
        let config: RawImageConfig = self
            .get_json(&target, &url(&format!("blobs/{}", config.digest))?)
            .await?
            .ok_or_else(|| format!("the config blob {} of {repository}:{tag} is missing", config.digest))?;
        let platform = ManifestPlatform { os: config.os, architecture: config.architecture, variant: config.variant };
        Ok(Some(TagContent::Image { digest: fetched.digest, platform }))
    }

    async fn descriptor(&self, registry: &str, repository: &str, digest: &str) -> Result<Option<Descriptor>, String> {
        Reference::parse(&format!("{registry}/{repository}@{digest}"))?;
        let target = self.target(registry, repository).await;
        let url = format!("{}/v2/{}/manifests/{digest}", target.origin, target.repository);
        let url = Url::parse(&url).map_err(|e| format!("invalid URL {url}: {e}"))?;
        let (response, _) = self.authorized(reqwest::Method::HEAD, &url, &target, None).await?;
        match response.status() {
            StatusCode::OK => {
                let media_type = content_type(&response).ok_or("the registry sent no Content-Type")?;
                let size = response
                    .headers()
                    .get(reqwest::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok()?.parse().ok())
                    .ok_or("the registry sent no Content-Length")?;
                Ok(Some(Descriptor { media_type, digest: digest.to_owned(), size, platform: None }))
            }
            StatusCode::NOT_FOUND => Ok(None),
            status => Err(format!("registry answered {status} to HEAD {url}")),
        }
    }

    async fn put_index(
        &self,
        registry: &str,
        repository: &str,
        tags: &[String],
        manifests: &[Descriptor],
    ) -> Result<String, String> {
        for tag in tags {
            validate(registry, repository, tag)?;
        }
        let target = Endpoint { push: true, ..self.target(registry, repository).await };
        let (media_type, bytes) = manifest::index(manifests);
        let body = Body { media_type, bytes: bytes.into() };
        let digest = manifest::digest_of(&body.bytes);
        for tag in tags {
            let url = format!("{}/v2/{}/manifests/{tag}", target.origin, target.repository);
            let url = Url::parse(&url).map_err(|e| format!("invalid URL {url}: {e}"))?;
            let (response, _) = self.authorized(reqwest::Method::PUT, &url, &target, Some(&body)).await?;
            let status = response.status();
            if !status.is_success() {
                let text = response.text().await.unwrap_or_default();
                let text: String = text.chars().take(500).collect();
                return Err(format!("registry answered {status} to PUT {url}: {}", text.trim()));
            }
            tracing::info!(registry, repository, tag, digest, media_type, "index put");
        }
        Ok(digest)
    }

    async fn target<'a>(&self, registry: &'a str, repository: &str) -> Endpoint<'a> {
        // Docker Hub's API lives at registry-1.docker.io, and its official images under `library/`.
        let (host, repository) = if normalize_host(registry) == "docker.io" {
            let repository =
                if repository.contains('/') { repository.to_owned() } else { format!("library/{repository}") };
            ("registry-1.docker.io", repository)
        } else {
            (registry, repository.to_owned())
        };
        let insecure = self.is_insecure(registry).await;
        let target =
            Endpoint { registry, origin: String::new(), host: host.to_owned(), insecure, repository, push: false };
        let scheme = if self.plain_http(&target) { "http" } else { "https" };
        Endpoint { origin: format!("{scheme}://{host}"), ..target }
    }

    /// Whether `target` is known to be reached over plain HTTP: an insecure registry that gave no HTTPS answer.
    fn plain_http(&self, target: &Endpoint<'_>) -> bool {
        target.insecure && lock(&self.answers_https).get(&target.host) == Some(&false)
    }

    /// Whether dockerd would call `registry` (`host[:port]`) insecure; see [`InsecureRegistries`]. Docker Hub
    /// never is (moby `lookupV2Endpoints`). A host name is resolved once; one that does not resolve is secure.
    async fn is_insecure(&self, registry: &str) -> bool {
        if normalize_host(registry) == "docker.io" {
            return false;
        }
        if let Some(insecure) = self.insecure.by_name(registry) {
            return insecure;
        }
        let cell = lock(&self.insecure_hosts).entry(registry.to_owned()).or_default().clone();
        *cell
            .get_or_init(|| async {
                let lookup = tokio::net::lookup_host((transport::host_of(registry), 0));
                match tokio::time::timeout(self.ping_timeout, lookup).await {
                    Ok(Ok(addresses)) => addresses.into_iter().any(|address| self.insecure.covers(address.ip())),
                    _ => false,
                }
            })
            .await
    }

    /// The client for requests to a host that is `insecure` or not.
    fn client(&self, insecure: bool) -> &reqwest::Client {
        if insecure { &self.http_unverified } else { &self.http }
    }

    /// A request to the registry API with the auth the registry asks for: what it asked for before, else what
    /// its 401 asks for (then sent again once). Returns the response and the auth it was given.
    async fn authorized(
        &self,
        method: reqwest::Method,
        url: &Url,
        target: &Endpoint<'_>,
        body: Option<&Body>,
    ) -> Result<(Response, Auth), String> {
        let mut auth = self.known_auth(target).await?;
        let mut response = self.call(method.clone(), url, target, &auth, body).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            auth = self.answer_challenge(target, &response, &auth).await?;
            response = self.call(method, url, target, &auth, body).await?;
        }
        Ok((response, auth))
    }

    /// A request to the registry API (manifests, blobs), with retries.
    ///
    /// An insecure registry is reached as dockerd reaches it (moby `lookupV2Endpoints`, then `PingV2Registry`):
    /// HTTPS first, and plain HTTP only when HTTPS got no HTTP answer at all (the server does not speak TLS,
    /// refused, timed out). The first request finds out, so no separate probe costs a round trip; the others
    /// follow what it learnt.
    async fn call(
        &self,
        method: reqwest::Method,
        url: &Url,
        target: &Endpoint<'_>,
        auth: &Auth,
        body: Option<&Body>,
    ) -> Result<Response, String> {
        let make = |http: &reqwest::Client, url: &Url| {
            let request = auth.apply(http.request(method.clone(), url.clone()).header(ACCEPT, MANIFEST_TYPES));
            match body {
                Some(body) => request.header(reqwest::header::CONTENT_TYPE, body.media_type).body(body.bytes.clone()),
                None => request,
            }
        };
        let mut url = url.clone();
        let known = target.insecure.then(|| lock(&self.answers_https).get(&target.host).copied());
        match known {
            None | Some(Some(true)) => {}
            Some(Some(false)) => url.set_scheme("http").map_err(|()| format!("cannot reach {url} over HTTP"))?,
            Some(None) => {
                let request = make(&self.http_unverified, &url).timeout(self.ping_timeout);
                let answer = {
                    let _permit = self.permits.acquire().await.map_err(|e| format!("registry client stopped: {e}"))?;
                    request.send().await
                };
                let https = answer.is_ok();
                lock(&self.answers_https).insert(target.host.clone(), https);
                match answer {
                    Ok(response) => {
                        let status = response.status();
                        tracing::info!(%method, url = %crate::logging::redact_url(url.as_str()), %status, "registry answered over HTTPS");
                        // 429 and 5xx go through the retries below.
                        if status != StatusCode::TOO_MANY_REQUESTS && !status.is_server_error() {
                            return Ok(response);
                        }
                    }
                    Err(e) => {
                        tracing::info!(host = target.host, error = %e, "no HTTPS answer from an insecure registry: plain HTTP, as dockerd");
                        url.set_scheme("http").map_err(|()| format!("cannot reach {url} over HTTP"))?;
                    }
                }
            }
        }
        let address = format!("{}://{}/v2/", url.scheme(), target.host);
        self.send("registry", &address, target.insecure, |http| make(http, &url)).await
    }

    /// The digest by GET, for registries that leave it out of HEAD answers; best effort, as presence is known.
    async fn digest_by_get(&self, url: &Url, target: &Endpoint<'_>, auth: &Auth) -> Option<String> {
        let response = self.call(reqwest::Method::GET, url, target, auth, None).await.ok()?;
        (response.status() == StatusCode::OK).then(|| digest_header(&response)).flatten()
    }

    /// Sends the request `make` builds with the client for an `insecure` host or not, retrying 429, 5xx and
    /// connection failures per the retry policy. `who` names the server in messages, `address` is where
    /// connection failures say they were going.
    async fn send(
        &self,
        who: &str,
        address: &str,
        insecure: bool,
        make: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, String> {
        let tries = self.retry.tries.max(1);
        let after = |n: u32| if n > 1 { format!(" after {n} tries") } else { String::new() };
        let mut attempt = 1;
        loop {
            let request =
                make(self.client(insecure)).build().map_err(|e| format!("cannot make a request to {address}: {e}"))?;
            let (method, url) = (request.method().clone(), request.url().clone());
            let server = authority(&url);
            // The scheme only: the credential itself never reaches a log.
            let auth = request
                .headers()
                .get(reqwest::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split_whitespace().next())
                .unwrap_or("none")
                .to_owned();
            let started = std::time::Instant::now();
            let result = {
                let _permit = self.permits.acquire().await.map_err(|e| format!("registry client stopped: {e}"))?;
                if let Some(failure) = lock(&self.unreachable).get(&server) {
                    return Err(failure.clone());
                }
                self.client(insecure).execute(request).await
            };
            let elapsed_ms = started.elapsed().as_millis();
            let url = crate::logging::redact_url(url.as_str());
            match &result {
                Ok(response) => {
                    let status = response.status().as_u16();
                    tracing::info!(%method, url, status, elapsed_ms, auth, attempt, "{who} answered {status}");
                }
                Err(e) => tracing::info!(%method, url, elapsed_ms, auth, attempt, error = %e, "{who} did not answer"),
            }
            let (failure, retry_after) = match result {
                Ok(response) if response.status() == StatusCode::TOO_MANY_REQUESTS => {
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(transport::parse_retry_after);
                    (format!("{who} answered 429{} (rate limited)", after(attempt)), retry_after)
                }
                Ok(response) if response.status().is_server_error() => {
                    (format!("{who} answered {}{}", response.status().as_u16(), after(attempt)), None)
                }
                Ok(response) => return Ok(response),
                Err(err) => {
                    let mut failure = transport::describe(&err, address);
                    if failure.tls && !insecure {
                        failure.message.push_str(&format!(" (certificates trusted: {})", self.trusted));
                    }
                    if !failure.retryable {
                        return Err(failure.message);
                    }
                    let note = if attempt > 1 { format!(" ({})", after(attempt).trim_start()) } else { String::new() };
                    let message = format!("{}{note}", failure.message);
                    if attempt >= tries && (err.is_connect() || err.is_timeout()) {
                        lock(&self.unreachable).insert(server, message.clone());
                    }
                    (message, None)
                }
            };
            if attempt >= tries {
                return Err(failure);
            }
            let delay = self.retry.delay(attempt, retry_after);
            tracing::warn!(attempt, of = tries, delay_ms = delay.as_millis(), "{failure}; trying again");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// What to send before any 401, from what this registry asked for earlier.
    async fn known_auth(&self, target: &Endpoint<'_>) -> Result<Auth, String> {
        let challenge = lock(&self.challenges).get(target.registry).cloned();
        match challenge {
            None => Ok(Auth::Anonymous),
            Some(Challenge::Basic) => Ok(self.basic_auth(target.registry).await?.unwrap_or(Auth::Anonymous)),
            Some(Challenge::Bearer { realm, service }) => {
                Ok(Auth::Bearer(self.token(target, &realm, service.as_deref(), None).await?))
            }
        }
    }

    /// What to send after a 401 carrying `response`'s challenge, given that `sent` was refused.
    async fn answer_challenge(&self, target: &Endpoint<'_>, response: &Response, sent: &Auth) -> Result<Auth, String> {
        let headers = response.headers().get_all(WWW_AUTHENTICATE).iter().filter_map(|v| v.to_str().ok());
        let Some(challenge) = auth::pick_challenge(headers) else {
            return Err(format!(
                "registry answered {} without a Basic or Bearer WWW-Authenticate challenge",
                StatusCode::UNAUTHORIZED
            ));
        };
        tracing::info!(
            registry = target.registry,
            scheme = challenge.scheme(),
            "the registry asked for authentication"
        );
        lock(&self.challenges).insert(target.registry.to_owned(), challenge.clone());
        match challenge {
            // Basic credentials just refused are not sent again (some registries lock accounts).
            Challenge::Basic => match self.basic_auth(target.registry).await? {
                Some(auth) if !matches!(sent, Auth::Basic { .. }) => Ok(auth),
                _ => {
                    let found = self.credentials(target.registry).await?;
                    Err(auth_refused(StatusCode::UNAUTHORIZED, target.registry, target.registry, found.as_ref()))
                }
            },
            Challenge::Bearer { realm, service } => {
                let stale = match sent {
                    Auth::Bearer(token) => Some(token.value.as_str()),
                    _ => None,
                };
                Ok(Auth::Bearer(self.token(target, &realm, service.as_deref(), stale).await?))
            }
        }
    }

    /// The cached token for `target`'s scope (pull, or pull and push) unless it is `stale` (just refused), else a
    /// new one.
    async fn token(
        &self,
        target: &Endpoint<'_>,
        realm: &str,
        service: Option<&str>,
        stale: Option<&str>,
    ) -> Result<Token, String> {
        let access = if target.push { "pull,push" } else { "pull" };
        let scope = format!("repository:{}:{access}", target.repository);
        let slot = lock(&self.tokens).entry((target.registry.to_owned(), scope.clone())).or_default().clone();
        let mut cached = slot.lock().await;
        if let Some(token) = cached.as_ref()
            && Some(token.value.as_str()) != stale
        {
            tracing::debug!(registry = target.registry, scope, "token from the cache");
            return Ok(token.clone());
        }
        let token = self.fetch_token(target, realm, service, &scope).await?;
        tracing::info!(
            registry = target.registry,
            realm = %crate::logging::redact_url(realm),
            scope,
            credentials_withheld = token.withheld_from.is_some(),
            refreshed = stale.is_some(),
            "token fetched"
        );
        *cached = Some(token.clone());
        Ok(token)
    }

    async fn fetch_token(
        &self,
        target: &Endpoint<'_>,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<Token, String> {
        let mut url = Url::parse(realm).map_err(|e| format!("registry sent an invalid token realm `{realm}`: {e}"))?;
        if url.scheme() != "https" && url.scheme() != "http" {
            return Err(format!(
                "registry sent a token realm that is neither https:// nor http:// ({realm}); not using it"
            ));
        }
        let credentials = self.basic_auth(target.registry).await?;
        let plain_http = self.plain_http(target);
        let withheld_from =
            (credentials.is_some() && !credentials_may_go_to(&url, target, plain_http)).then(|| realm.to_owned());
        let auth = match credentials {
            Some(auth) if withheld_from.is_none() => auth,
            _ => Auth::Anonymous,
        };
        url.query_pairs_mut().extend_pairs(service.map(|s| ("service", s))).append_pair("scope", scope);
        let insecure = url.scheme() == "https" && self.is_insecure(&authority(&url)).await;
        let who = format!("token endpoint {realm}");
        let response = self.send(&who, realm, insecure, |http| auth.apply(http.get(url.clone()))).await?;
        match response.status() {
            StatusCode::OK => {
                let answer: TokenAnswer =
                    response.json().await.map_err(|e| format!("{who} answered something that is not a token: {e}"))?;
                let value = answer.into_token().ok_or_else(|| format!("{who} answered without a token"))?;
                Ok(Token { value, withheld_from })
            }
            status @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => match withheld_from {
                Some(_) => Err(withheld(status, &who, realm, target.registry)),
                None => {
                    Err(auth_refused(status, &who, target.registry, self.credentials(target.registry).await?.as_ref()))
                }
            },
            status => Err(format!("{who} answered {status}")),
        }
    }

    /// Basic credentials for requests: identity tokens cannot be used against the registry API directly.
    async fn basic_auth(&self, registry: &str) -> Result<Option<Auth>, String> {
        Ok(match self.credentials(registry).await? {
            Some(Credentials::Basic { username, password }) => Some(Auth::Basic { username, password }),
            Some(Credentials::IdentityToken(_)) | None => None,
        })
    }

    async fn credentials(&self, registry: &str) -> Result<Option<Credentials>, String> {
        let host = normalize_host(registry);
        let cell = lock(&self.credentials).entry(host.clone()).or_default().clone();
        let found = cell
            .get_or_try_init(|| async {
                if let Some((config_host, credentials)) = &self.config_credentials
                    && *config_host == host
                {
                    tracing::info!(registry, source = "the config's username and password", "credentials found");
                    return Ok(Some(credentials.clone()));
                }
                match &self.docker_config_dir {
                    Some(dir) => credentials::from_docker_config(dir, registry).await,
                    None => Ok(None),
                }
            })
            .await?;
        Ok(found.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_header_is_valid() {
        assert!(reqwest::header::HeaderValue::from_str(MANIFEST_TYPES).is_ok());
        assert_eq!(MANIFEST_TYPES.split(", ").count(), 4);
    }

    #[test]
    fn references_are_validated() {
        assert!(validate("127.0.0.1:5000", "ns/name", "1.0-1").is_ok());
        assert!(validate("reg", "Name", "t").is_err());
        assert!(validate("reg", "a//b", "t").is_err());
        assert!(validate("reg", "a/../b?x", "t").is_err());
        assert!(validate("reg/x", "a", "t").is_err());
        assert!(validate("", "a", "t").is_err());
        assert!(validate("reg", "a", ".t").is_err());
        assert!(validate("reg", "a", "t/x").is_err());
        assert!(validate("reg", "a", &format!("sha256:{}", "0f".repeat(32))).is_ok());
        assert!(validate("reg", "a", "sha256:0f/../x").is_err());
        assert!(validate("reg", "a:b", &format!("sha256:{}", "0f".repeat(32))).is_err());
        assert!(validate("reg", "a@sha256:00", "t").is_err());
        assert!(validate("reg", "a", &"t".repeat(129)).is_err());
    }

    #[tokio::test]
    async fn docker_hub_is_reached_at_its_api_host() {
        let client = RegistryClient::new(&Config::defaults()).unwrap();
        let target = client.inner.target("docker.io", "alpine").await;
        assert_eq!(
            (target.origin.as_str(), target.repository.as_str()),
            ("https://registry-1.docker.io", "library/alpine")
        );
    }

    /// A loopback server that speaks plain HTTP/1.1 only, answering 404 to everything; returns its port and how
    /// many connections it got.
    fn plain_http_server() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        plain_http_server_on(std::net::TcpListener::bind("127.0.0.1:0").unwrap())
    }

    fn plain_http_server_on(listener: std::net::TcpListener) -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::{Read, Write};
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = connections.clone();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buffer = [0; 4096];
                let _ = stream.read(&mut buffer);
                let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            }
        });
        (port, connections)
    }

    #[tokio::test]
    async fn a_loopback_registry_without_tls_is_reached_over_http_after_one_https_attempt() {
        let (port, connections) = plain_http_server();
        let client = RegistryClient::new(&Config::defaults()).unwrap();
        let registry = format!("localhost:{port}");
        // Optimistic: HTTPS until the registry shows it does not speak it.
        assert_eq!(client.inner.target(&registry, "ns/a").await.origin, format!("https://localhost:{port}"));
        assert_eq!(client.tag_state(&registry, "ns/a", "1").await.unwrap(), TagState::Absent);
        assert_eq!(client.inner.target(&registry, "ns/a").await.origin, format!("http://localhost:{port}"));
        let after_first = connections.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(after_first, 2, "one HTTPS attempt, then plain HTTP");
        // Known now: plain HTTP straight away.
        assert_eq!(client.tag_state(&registry, "ns/b", "1").await.unwrap(), TagState::Absent);
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), after_first + 1);
    }

    #[tokio::test]
    async fn a_registry_that_cannot_be_connected_to_is_not_tried_again_in_the_run() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut options = ClientOptions::from_env();
        options.retry.first_delay = Duration::from_millis(1);
        let client = RegistryClient::with_options(&Config::defaults(), options).unwrap();
        let registry = format!("127.0.0.1:{port}");
        let first = client.tag_state(&registry, "ns/a", "1").await.unwrap_err();
        assert!(first.message.contains("after 3 tries"), "{first:?}");
        // The registry comes up: this run has given up on it anyway, every other image fails at once.
        let (_, connections) = plain_http_server_on(std::net::TcpListener::bind(("127.0.0.1", port)).unwrap());
        let second = client.tag_state(&registry, "ns/b", "1").await.unwrap_err();
        assert_eq!(second.message, first.message);
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[test]
    fn a_ca_bundle_must_be_a_regular_file() {
        let mut config = Config::defaults();
        config.ca_bundle = Some(PathBuf::from("/dev/zero"));
        let Err(error) = RegistryClient::new(&config) else { panic!("/dev/zero is no bundle") };
        assert!(error.message.contains("cannot read ca_bundle /dev/zero: not a regular file"), "{error:?}");
    }

    #[test]
    fn realm_rule() {
        let may = |realm: &str, origin: &str| {
            let (scheme, host) = origin.split_once("://").unwrap();
            let target = Endpoint {
                registry: "reg.example:5000",
                origin: origin.to_owned(),
                host: host.to_owned(),
                insecure: true,
                repository: "ns/a".into(),
                push: false,
            };
            credentials_may_go_to(&Url::parse(realm).unwrap(), &target, scheme == "http")
        };
        assert!(may("https://auth.example/token", "https://reg.example:5000"));
        assert!(may("https://auth.example/token", "http://reg.example:5000"));
        // The registry is reached over plain HTTP: its own host (any port) may have them, nobody else.
        assert!(may("http://reg.example:5000/token", "http://reg.example:5000"));
        assert!(may("http://REG.example:5001/token", "http://reg.example:5000"));
        assert!(!may("http://auth.example/token", "http://reg.example:5000"));
        assert!(!may("http://127.0.0.1:5000/token", "http://localhost:5000"));
        // The registry is reached over HTTPS: an http:// realm would be the only cleartext hop.
        assert!(!may("http://reg.example:5000/token", "https://reg.example:5000"));
        assert!(!may("ftp://reg.example/token", "http://reg.example:5000"));
    }

    #[test]
    fn insecure_registries_entries_are_checked() {
        let mut config = Config::defaults();
        config.insecure_registries = vec!["ftp://reg.example".into()];
        let err = RegistryClient::new(&config).unwrap_err();
        assert!(err.message.contains("insecure_registries entry `ftp://reg.example`"), "{err}");
    }

    #[test]
    fn bad_ca_bundles_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::defaults();
        for (name, text) in [("empty.pem", Some("not a certificate")), ("missing.pem", None)] {
            let path = dir.path().join(name);
            if let Some(text) = text {
                std::fs::write(&path, text).unwrap();
            }
            config.ca_bundle = Some(path.clone());
            let err = RegistryClient::new(&config).unwrap_err();
            assert!(err.message.contains(&path.display().to_string()), "{err}");
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let credentials = Credentials::Basic { username: "u".into(), password: "hunter2".into() };
        assert!(!format!("{credentials:?}").contains("hunter2"));
        let mut config = Config::defaults();
        config.registry = Some("reg".into());
        config.username = Some("u".into());
        config.password = Some("hunter2".into());
        let client = RegistryClient::new(&config).unwrap();
        assert!(!format!("{client:?}").contains("hunter2"));
    }
}
