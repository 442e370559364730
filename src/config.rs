//! Configuration: docker-pkg's keys and defaults, read from `images.toml` or a docker-pkg YAML file, with the
//! user's file merged underneath, as docker-pkg does. Values are checked and parsed here, once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::engine::{BuilderKind, ContainerLimits};
use crate::files;
use crate::platform::Platform;

/// Config file names looked up in the current directory when `-c` is not given, in order; then
/// [`TREE_CONFIG_FILE`] in the tree's own directory.
pub const DEFAULT_CONFIG_FILES: [&str; 2] = ["images.toml", "config.yaml"];

/// The config file a tree may carry at its root.
pub const TREE_CONFIG_FILE: &str = "images.toml";

/// The user's own config, merged under the local one.
pub const USER_CONFIG_FILE: &str = "imgraph.toml";

/// Where logs go unless the config or `--log-dir` says otherwise (relative to the current directory).
pub const DEFAULT_LOG_DIR: &str = "imgraph-logs";

/// Keys that are never visible to templates.
const SECRET_KEYS: [&str; 2] = ["username", "password"];

/// The variables that carry `http_proxy` into builds (as build arguments) and verification scripts, as
/// docker-pkg passes them.
pub const PROXY_VARIABLES: [&str; 4] = ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"];

/// The merged configuration of one run.
#[derive(Debug, Clone)]
pub struct Config {
    /// `None` when the file says `registry:` with no value (docker-pkg: "no registry, no pulling").
    pub registry: Option<String>,
    pub namespace: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub base_images: Vec<String>,
    pub apt_options: String,
    pub http_proxy: Option<String>,
    /// Defaults to `http_proxy`.
    pub apt_only_proxy: Option<String>,
    pub scan_workers: usize,
    pub fallback_author: String,
    pub fallback_email: String,
    pub distribution: String,
    pub update_id: String,
    pub ca_bundle: Option<PathBuf>,
    pub force_numeric_user: bool,
    pub known_uid_mappings: BTreeMap<String, u64>,
    pub verify_command: String,
    pub verify_args: Vec<String>,
    pub container_limits: ContainerLimits,
    /// Registries (host[:port]) that may be reached over plain HTTP when they do not speak TLS; loopback
    /// registries always may.
    pub insecure_registries: Vec<String>,
    /// Where per-image build and verify logs go.
    pub log_dir: PathBuf,
    /// Tags `publish` pushes besides the version (docker-pkg: `latest`).
    pub publish_tags: Vec<String>,
    /// The platforms every image is built for unless its control file says otherwise: sorted, without
    /// duplicates; empty (the default) means the builder daemon's own platform.
    pub platforms: Vec<Platform>,
    /// The Docker endpoint that builds each platform: [`DEFAULT_ENDPOINT`], or `unix://`, `tcp://` or
    /// `ssh://` followed by an address.
    pub builders: BTreeMap<Platform, String>,
    /// The builder the daemons are asked to use.
    pub builder: BuilderKind,
    /// Every key templates see: the defaults, then the user file, then the local file (a shallow merge, local
    /// wins), unknown keys included, `username` and `password` removed.
    pub template_vars: BTreeMap<String, Value>,
    /// The files that were read, user file first.
    pub sources: Vec<PathBuf>,
}

/// The endpoint of `builders` that means the daemon imgraph reaches anyway (`DOCKER_HOST`, else the default
/// socket).
pub const DEFAULT_ENDPOINT: &str = "default";

/// The schemes of a Docker endpoint in `builders`, as `DOCKER_HOST` takes them.
const ENDPOINT_SCHEMES: [&str; 3] = ["unix://", "tcp://", "ssh://"];

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read config file: {source}", path.display())]
    Read { path: PathBuf, source: files::ReadError },
    #[error("{}:{line}:{column}: {message}", path.display())]
    Syntax { path: PathBuf, line: usize, column: usize, message: String },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

/// The keys imgraph itself interprets, as written in one file (every key optional).
#[derive(Debug, Default, Deserialize)]
struct FileConfig {
    #[serde(default, deserialize_with = "present")]
    registry: Option<Option<String>>,
    namespace: Option<String>,
    username: Option<String>,
    password: Option<String>,
    base_images: Option<Vec<String>>,
    apt_options: Option<String>,
    http_proxy: Option<String>,
    apt_only_proxy: Option<String>,
    scan_workers: Option<usize>,
    fallback_author: Option<String>,
    fallback_email: Option<String>,
    distribution: Option<String>,
    /// docker-pkg treats `update_id:` with no value as an empty identifier.
    #[serde(default, deserialize_with = "present")]
    update_id: Option<Option<String>>,
    ca_bundle: Option<PathBuf>,
    force_numeric_user: Option<bool>,
    known_uid_mappings: Option<BTreeMap<String, u64>>,
    verify_command: Option<String>,
    verify_args: Option<Vec<String>>,
    container_limits: Option<String>,
    insecure_registries: Option<Vec<String>>,
    log_dir: Option<PathBuf>,
    publish_tags: Option<Vec<String>>,
    platforms: Option<Vec<Platform>>,
    builders: Option<Builders>,
    builder: Option<BuilderKind>,
}

/// `builders` as written: every key a platform, every value an endpoint, no two keys the same platform. The
/// checks run inside the deserializer, so that the error names the line of the key or value at fault (of the
/// mapping, for two keys naming one platform).
#[derive(Debug)]
struct Builders(BTreeMap<Platform, String>);

impl<'de> Deserialize<'de> for Builders {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Builders;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a mapping of platforms to Docker endpoints")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Builders, A::Error> {
                // Each platform with its key as written, for the message about two keys naming one platform.
                let mut builders: BTreeMap<Platform, (String, String)> = BTreeMap::new();
                while let Some((WrittenPlatform(text, platform), Endpoint(endpoint))) = map.next_entry()? {
                    if let Some((first, _)) = builders.get(&platform) {
                        return Err(serde::de::Error::custom(format!("`{text}` and `{first}` are both {platform}")));
                    }
                    builders.insert(platform, (text, endpoint));
                }
                Ok(Builders(builders.into_iter().map(|(platform, (_, endpoint))| (platform, endpoint)).collect()))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// `classic` or `buildkit`. Not derived: serde's enum errors speak of YAML tags and variants.
impl<'de> Deserialize<'de> for BuilderKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let parse = |text: &str| match text {
            "classic" => Ok(Self::Classic),
            "buildkit" => Ok(Self::BuildKit),
            _ => Err(format!("`{}` is not a builder: write classic or buildkit", text.escape_debug())),
        };
        deserializer.deserialize_str(CheckedStr("`classic` or `buildkit`", parse))
    }
}

/// A platform and how it was written.
struct WrittenPlatform(String, Platform);

impl<'de> Deserialize<'de> for WrittenPlatform {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let parse = |text: &str| Platform::parse(text).map(|platform| Self(text.to_owned(), platform));
        deserializer.deserialize_str(CheckedStr("a platform such as linux/amd64", parse))
    }
}

/// A Docker endpoint of `builders`.
struct Endpoint(String);

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let check = |endpoint: &str| {
            let address = ENDPOINT_SCHEMES.iter().find_map(|scheme| endpoint.strip_prefix(scheme));
            if endpoint != DEFAULT_ENDPOINT && address.is_none_or(str::is_empty) {
                return Err(format!(
                    "`{}` is not a Docker endpoint: write unix://PATH, tcp://HOST:PORT, ssh://[USER@]HOST[:PORT][/SOCKET] or \
                     {DEFAULT_ENDPOINT}",
                    endpoint.escape_debug()
                ));
            }
            if endpoint.starts_with("ssh://") {
                crate::engine::check_ssh_endpoint(endpoint)?;
            }
            Ok(Self(endpoint.to_owned()))
        };
        deserializer.deserialize_str(CheckedStr("a Docker endpoint", check))
    }
}

/// Visits a string and checks it while the deserializer visits it, so that YAML and TOML locate the error at
/// that string: what it expects, and the check.
struct CheckedStr<F>(&'static str, F);

impl<T, F: FnOnce(&str) -> Result<T, String>> serde::de::Visitor<'_> for CheckedStr<F> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<T, E> {
        (self.1)(text).map_err(E::custom)
    }
}

/// Distinguishes `registry:` (present, null) from an absent key.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// One parsed file: its typed keys and every key as a plain value.
struct ParsedFile {
    path: PathBuf,
    typed: FileConfig,
    values: serde_json::Map<String, Value>,
}

impl Config {
    /// docker-pkg's defaults, with no file read.
    pub fn defaults() -> Self {
        let known_uid_mappings =
            BTreeMap::from([("root".to_owned(), 0), ("www-data".to_owned(), 33), ("nobody".to_owned(), 65534)]);
        let mut config = Self {
            registry: Some(String::new()),
            namespace: String::new(),
            username: None,
            password: None,
            base_images: Vec::new(),
            apt_options: String::new(),
            http_proxy: None,
            apt_only_proxy: None,
            scan_workers: 8,
            fallback_author: "Author".into(),
            fallback_email: "email@domain".into(),
            distribution: "wikimedia".into(),
            update_id: "s".into(),
            ca_bundle: None,
            force_numeric_user: false,
            known_uid_mappings,
            verify_command: "/bin/bash".into(),
            verify_args: vec!["-c".into(), "{path}/test.sh {image}".into()],
            container_limits: ContainerLimits::default(),
            insecure_registries: Vec::new(),
            log_dir: PathBuf::from(DEFAULT_LOG_DIR),
            publish_tags: vec!["latest".into()],
            platforms: Vec::new(),
            builders: BTreeMap::new(),
            builder: BuilderKind::default(),
            template_vars: BTreeMap::new(),
            sources: Vec::new(),
        };
        config.template_vars = config.default_vars();
        config
    }

    /// Loads the configuration of a run: defaults, then the user file (if any), then `local`.
    ///
    /// `local` is the `-c` file; when it is `None`, the first of [`DEFAULT_CONFIG_FILES`] that exists in the
    /// current directory is used, else `tree/images.toml`, and when none exists the defaults stand.
    pub fn load(local: Option<&Path>, tree: Option<&Path>, user: Option<&Path>) -> Result<Self, ConfigError> {
        let local = match local {
            Some(path) => Some(path.to_owned()),
            None => DEFAULT_CONFIG_FILES
                .iter()
                .map(PathBuf::from)
                .chain(tree.map(|t| t.join(TREE_CONFIG_FILE)))
                .find(|p| p.is_file()),
        };
        let mut files = Vec::new();
        if let Some(user) = user.filter(|p| p.is_file()) {
            files.push(parse_file(user)?);
        }
        if let Some(local) = local {
            files.push(parse_file(&local)?);
        }
        Self::merge(files)
    }

    fn merge(files: Vec<ParsedFile>) -> Result<Self, ConfigError> {
        let mut config = Self::defaults();
        for file in files {
            config.apply(file)?;
        }
        if config.apt_only_proxy.is_none() {
            config.apt_only_proxy.clone_from(&config.http_proxy);
            if let Some(proxy) = &config.apt_only_proxy {
                config.template_vars.insert("apt_only_proxy".into(), Value::String(proxy.clone()));
            }
        }
        for key in SECRET_KEYS {
            config.template_vars.remove(key);
        }
        Ok(config)
    }

    fn apply(&mut self, file: ParsedFile) -> Result<(), ConfigError> {
        let ParsedFile { path, typed, values } = file;
        let t = typed;
        if let Some(registry) = t.registry {
            self.registry = registry;
        }
        set(&mut self.namespace, t.namespace);
        set_opt(&mut self.username, t.username);
        set_opt(&mut self.password, t.password);
        set(&mut self.base_images, t.base_images);
        set(&mut self.apt_options, t.apt_options);
        set_opt(&mut self.http_proxy, t.http_proxy);
        set_opt(&mut self.apt_only_proxy, t.apt_only_proxy);
        set(&mut self.scan_workers, t.scan_workers);
        set(&mut self.fallback_author, t.fallback_author);
        set(&mut self.fallback_email, t.fallback_email);
        set(&mut self.distribution, t.distribution);
        if let Some(id) = t.update_id {
            self.update_id = id.unwrap_or_default();
        }
        set_opt(&mut self.ca_bundle, t.ca_bundle);
        set(&mut self.force_numeric_user, t.force_numeric_user);
        set(&mut self.known_uid_mappings, t.known_uid_mappings);
        set(&mut self.verify_command, t.verify_command);
        set(&mut self.verify_args, t.verify_args);
        set(&mut self.insecure_registries, t.insecure_registries);
        set(&mut self.log_dir, t.log_dir);
        set(&mut self.publish_tags, t.publish_tags);
        if let Some(mut platforms) = t.platforms {
            // Duplicates after normalisation (`arm64`, `linux/aarch64`) are one platform, built once.
            platforms.sort();
            platforms.dedup();
            self.platforms = platforms;
        }
        set(&mut self.builders, t.builders.map(|builders| builders.0));
        set(&mut self.builder, t.builder);
        if let Some(bad) = self.publish_tags.iter().find_map(|tag| crate::reference::check_tag(tag).err()) {
            return Err(ConfigError::Invalid { path, message: format!("publish_tags: {bad}") });
        }
        if let Some(limits) = t.container_limits {
            self.container_limits = ContainerLimits::parse(&limits)
                .map_err(|message| ConfigError::Invalid { path: path.clone(), message })?;
        }
        if self.scan_workers == 0 {
            return Err(ConfigError::Invalid { path, message: "scan_workers must be at least 1".into() });
        }
        self.template_vars.extend(values);
        self.sources.push(path);
        Ok(())
    }

    /// The defaults as template variables (docker-pkg passes its whole config to templates).
    fn default_vars(&self) -> BTreeMap<String, Value> {
        let uid_map = self.known_uid_mappings.iter().map(|(k, v)| (k.clone(), Value::from(*v))).collect();
        BTreeMap::from([
            ("registry".into(), Value::from(self.registry.clone().unwrap_or_default())),
            ("namespace".into(), Value::from(self.namespace.clone())),
            ("base_images".into(), Value::Array(Vec::new())),
            ("apt_options".into(), Value::from(self.apt_options.clone())),
            ("http_proxy".into(), Value::Null),
            ("apt_only_proxy".into(), Value::Null),
            ("scan_workers".into(), Value::from(self.scan_workers)),
            ("fallback_author".into(), Value::from(self.fallback_author.clone())),
            ("fallback_email".into(), Value::from(self.fallback_email.clone())),
            ("distribution".into(), Value::from(self.distribution.clone())),
            ("update_id".into(), Value::from(self.update_id.clone())),
            ("ca_bundle".into(), Value::Null),
            ("force_numeric_user".into(), Value::Bool(false)),
            ("known_uid_mappings".into(), Value::Object(uid_map)),
            ("verify_command".into(), Value::from(self.verify_command.clone())),
            ("verify_args".into(), Value::from(self.verify_args.clone())),
        ])
    }

    /// The registry prefix of image names (`""` when there is none).
    pub fn registry(&self) -> &str {
        self.registry.as_deref().unwrap_or("")
    }

    /// `registry/namespace/name` with empty parts left out, as docker-pkg's `ImageLabel.name`.
    pub fn repository(&self, short_name: &str) -> String {
        [self.registry(), self.namespace.as_str(), short_name]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join("/")
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

fn set_opt<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

/// The user config path: `$XDG_CONFIG_HOME/imgraph.toml`, else `~/.config/imgraph.toml`.
pub fn user_config_path() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
    };
    Some(base.join(USER_CONFIG_FILE))
}

fn is_yaml(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

fn parse_file(path: &Path) -> Result<ParsedFile, ConfigError> {
    let bytes =
        files::read(path, files::CONFIG_LIMIT).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| ConfigError::Invalid { path: path.to_owned(), message: "the config is not valid UTF-8".into() })?;
    let (typed, values) = if is_yaml(path) { parse_yaml(path, &text)? } else { parse_toml(path, &text)? };
    Ok(ParsedFile { path: path.to_owned(), typed, values })
}

fn parse_toml(path: &Path, text: &str) -> Result<(FileConfig, serde_json::Map<String, Value>), ConfigError> {
    let syntax = |e: toml::de::Error| {
        let (line, column) = e.span().map_or((1, 1), |span| line_column(text, span.start));
        ConfigError::Syntax { path: path.to_owned(), line, column, message: e.message().to_owned() }
    };
    let values: serde_json::Map<String, Value> = toml::from_str(text).map_err(syntax)?;
    let typed: FileConfig = toml::from_str(text).map_err(syntax)?;
    Ok((typed, values))
}

fn parse_yaml(path: &Path, text: &str) -> Result<(FileConfig, serde_json::Map<String, Value>), ConfigError> {
    let syntax = |e: serde_norway::Error| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        // serde_norway appends " at line L column C" to its messages; the location is printed separately.
        let message = e.to_string();
        let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
        ConfigError::Syntax { path: path.to_owned(), line, column, message }
    };
    if let Some((line, column)) = too_deep_flow(text) {
        let message = format!("`[` and `{{` nested more than {MAX_FLOW_NESTING} deep");
        return Err(ConfigError::Syntax { path: path.to_owned(), line, column, message });
    }
    // An empty YAML document is an empty config, as in docker-pkg.
    let document: Value = serde_norway::from_str(text).map_err(syntax)?;
    let values = match document {
        Value::Null => serde_json::Map::new(),
        Value::Object(map) => map,
        _ => {
            return Err(ConfigError::Syntax {
                path: path.to_owned(),
                line: 1,
                column: 1,
                message: "the config must be a mapping of keys to values".into(),
            });
        }
    };
    let typed: FileConfig =
        if values.is_empty() { FileConfig::default() } else { serde_norway::from_str(text).map_err(syntax)? };
    Ok((typed, values))
}

/// How deeply YAML flow collections may nest. The parser stops at 128 anyway, but only after time that grows
/// with the square of the nesting (a minute for 100,000 `[`); no config nests a tenth of this.
const MAX_FLOW_NESTING: usize = 100;

/// Where `[`/`{` first nest deeper than [`MAX_FLOW_NESTING`] (1-based line and column), outside comments and
/// quoted scalars; approximate where YAML is odd, which only matters that deep.
fn too_deep_flow(text: &str) -> Option<(usize, usize)> {
    let mut depth = 0;
    for (index, line) in text.lines().enumerate() {
        let mut quote = None;
        let mut previous = ' ';
        for (column, c) in line.chars().enumerate() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == '#' && previous.is_whitespace() => break,
                None if (c == '"' || c == '\'') && (previous.is_whitespace() || "[{,:".contains(previous)) => {
                    quote = Some(c);
                }
                None if c == '[' || c == '{' => {
                    depth += 1;
                    if depth > MAX_FLOW_NESTING {
                        return Some((index + 1, column + 1));
                    }
                }
                None if c == ']' || c == '}' => depth = depth.saturating_sub(1),
                None => {}
            }
            previous = c;
        }
    }
    None
}

/// 1-based line and column of byte `offset` in `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn empty_yaml_gives_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "config.yaml", "");
        let config = Config::load(Some(&path), None, None).unwrap();
        assert_eq!(config.scan_workers, 8);
        assert_eq!(config.verify_command, "/bin/bash");
        assert_eq!(config.known_uid_mappings.get("www-data"), Some(&33));
        assert_eq!(config.template_vars.get("registry"), Some(&Value::from("")));
    }

    #[test]
    fn deeply_nested_yaml_is_refused_before_parsing() {
        let dir = tempfile::tempdir().unwrap();
        let load = |text: &str| Config::load(Some(&write(dir.path(), "config.yaml", text)), None, None);
        let n = 100_000;
        for text in [format!("deep: {}{}\n", "[".repeat(n), "]".repeat(n)), format!("a: 1\nb: {}1\n", "{a: ".repeat(n))]
        {
            let started = std::time::Instant::now();
            let error = load(&text).unwrap_err().to_string();
            assert!(error.contains("nested more than 100 deep"), "{error}");
            assert!(error.contains("config.yaml:"), "{error}");
            assert!(started.elapsed() < std::time::Duration::from_secs(5), "refused before parsing");
        }
        // Brackets in comments and quoted scalars are not nesting.
        let brackets = "[".repeat(200);
        let config = load(&format!("namespace: '{brackets}' # {brackets}\nregistry: \"r{brackets}\"\n")).unwrap();
        assert_eq!(config.namespace, brackets);
        let nested = load("a: [[b, [c]], {d: [e]}]\n").unwrap();
        assert_eq!(nested.template_vars["a"][1]["d"][0], Value::from("e"));
    }

    #[test]
    fn local_overrides_user_shallowly_and_secrets_are_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let user =
            write(dir.path(), "imgraph.toml", "namespace = \"u\"\nknown_uid_mappings = { a = 1, b = 2 }\ncustom = 1\n");
        let local = write(
            dir.path(),
            "config.yaml",
            "known_uid_mappings: {c: 3}\nusername: bob\npassword: secret\nhttp_proxy: http://p:3128\n",
        );
        let config = Config::load(Some(&local), None, Some(&user)).unwrap();
        assert_eq!(config.namespace, "u");
        assert_eq!(config.known_uid_mappings, BTreeMap::from([("c".to_owned(), 3)]));
        assert_eq!(config.username.as_deref(), Some("bob"));
        assert!(!config.template_vars.contains_key("username"));
        assert!(!config.template_vars.contains_key("password"));
        assert_eq!(config.template_vars["custom"], Value::from(1));
        assert_eq!(config.apt_only_proxy.as_deref(), Some("http://p:3128"));
        assert_eq!(config.template_vars["apt_only_proxy"], Value::from("http://p:3128"));
    }

    #[test]
    fn explicit_null_registry_is_kept_apart_from_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "c.yaml", "registry:\n");
        assert_eq!(Config::load(Some(&path), None, None).unwrap().registry, None);
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "images.toml", "registry = \"r\"\nscan_workers = \"many\"\n");
        let err = Config::load(Some(&path), None, None).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}:2:16: ", path.display())), "{err}");
        let path = write(dir.path(), "bad.yaml", "registry: r\n  base_images: [\n");
        let err = Config::load(Some(&path), None, None).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}:2:", path.display())), "{err}");
    }

    #[test]
    fn container_limits_are_parsed_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let good = write(dir.path(), "good.yaml", "container_limits: memory=1g, cpushares=512\n");
        assert_ne!(Config::load(Some(&good), None, None).unwrap().container_limits, ContainerLimits::default());
        let bad = write(dir.path(), "bad.yaml", "container_limits: swap=1\n");
        let err = Config::load(Some(&bad), None, None).unwrap_err().to_string();
        assert!(err.contains("bad.yaml") && err.contains("unknown key `swap`"), "{err}");
    }

    #[test]
    fn platforms_builders_and_builder() {
        let dir = tempfile::tempdir().unwrap();
        let platform = |text: &str| Platform::parse(text).unwrap();
        let defaults = Config::load(Some(&write(dir.path(), "empty.yaml", "")), None, None).unwrap();
        assert_eq!((defaults.platforms.len(), defaults.builders.len()), (0, 0));
        assert_eq!(defaults.builder, BuilderKind::Classic);
        let yaml = "platforms: [arm64, linux/amd64, linux/aarch64]\nbuilder: buildkit\nbuilders:\n  \
                    aarch64: ssh://builder@arm.example\n  linux/amd64: default\n  linux/arm/v7: tcp://10.0.0.7:2375\n";
        let toml = "platforms = [\"arm64\", \"linux/amd64\", \"linux/aarch64\"]\nbuilder = \"buildkit\"\n\
                    [builders]\naarch64 = \"ssh://builder@arm.example\"\n\"linux/amd64\" = \"default\"\n\
                    \"linux/arm/v7\" = \"tcp://10.0.0.7:2375\"\n";
        for (name, text) in [("c.yaml", yaml), ("images.toml", toml)] {
            let config = Config::load(Some(&write(dir.path(), name, text)), None, None).unwrap();
            assert_eq!(config.platforms, [platform("linux/amd64"), platform("linux/arm64")], "{name}");
            assert_eq!(config.builder, BuilderKind::BuildKit, "{name}");
            let builders = BTreeMap::from([
                (platform("linux/amd64"), "default".to_owned()),
                (platform("linux/arm/v7"), "tcp://10.0.0.7:2375".to_owned()),
                (platform("linux/arm64"), "ssh://builder@arm.example".to_owned()),
            ]);
            assert_eq!(config.builders, builders, "{name}");
        }
    }

    #[test]
    fn bad_platforms_builders_and_builder_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("a.yaml", "registry: r\nplatforms:\n  - linux/amd64\n  - linux\n", "4:", "`linux` is an OS without"),
            (
                "a.toml",
                "registry = \"r\"\nplatforms = [\"linux/amd64\", \"linux/&\"]\n",
                "2:",
                "`linux/&` is not a valid platform",
            ),
            ("b.yaml", "platforms: linux/amd64\n", "1:", "expected a sequence"),
            ("c.yaml", "builder: docker\n", "1:", "builder: `docker` is not a builder: write classic or buildkit"),
            ("c.toml", "\n\nbuilder = \"BuildKit\"\n", "3:", "`BuildKit` is not a builder"),
            ("h.yaml", "builder: [buildkit]\n", "1:", "invalid type: sequence, expected `classic` or `buildkit`"),
            (
                "d.yaml",
                "builders:\n  linux/amd64: default\n  arm64: http://x\n",
                "3:",
                "`http://x` is not a Docker endpoint",
            ),
            (
                "d.toml",
                "[builders]\n\"linux/amd64\" = \"default\"\narm64 = \"unix://\"\n",
                "3:",
                "`unix://` is not a Docker endpoint",
            ),
            (
                "g.toml",
                "[builders]\narm64 = \"ssh://builder@arm.example:22x\"\n",
                "2:",
                "`ssh://builder@arm.example:22x` is not an ssh:// Docker endpoint: `22x` is not a port number",
            ),
            (
                "e.yaml",
                "builders:\n  linux/amd64: default\n  linux/amd65/v8/x: default\n",
                "3:",
                "builders: `linux/amd65/v8/x` is not a valid platform",
            ),
            ("e.toml", "[builders]\nwindows = \"default\"\n", "2:", "`windows` is not a valid platform"),
            (
                "f.yaml",
                "builders:\n  arm64: default\n  linux/aarch64: default\n",
                "2:",
                "builders: `linux/aarch64` and `arm64` are both linux/arm64",
            ),
            (
                "f.toml",
                "[builders]\narm64 = \"default\"\n\"linux/arm64/v8\" = \"default\"\n",
                "1:",
                "`linux/arm64/v8` and `arm64` are both linux/arm64",
            ),
            ("g.yaml", "builders: [default]\n", "1:", "a mapping of platforms to Docker endpoints"),
        ];
        for (name, text, line, message) in cases {
            let path = write(dir.path(), name, text);
            let error = Config::load(Some(&path), None, None).unwrap_err().to_string();
            assert!(error.starts_with(&format!("{}:{line}", path.display())), "{name}: {error}");
            assert!(error.contains(message), "{name}: {error}");
        }
    }

    #[test]
    fn repository_leaves_out_empty_parts() {
        let mut config = Config::defaults();
        assert_eq!(config.repository("foo"), "foo");
        config.namespace = "ns".into();
        assert_eq!(config.repository("foo"), "ns/foo");
        config.registry = Some("reg:5000".into());
        assert_eq!(config.repository("foo"), "reg:5000/ns/foo");
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::*;

        const TOKENS: &[&str] = &[
            "registry",
            "namespace",
            "base_images",
            "scan_workers",
            "container_limits",
            "publish_tags",
            "builder",
            "buildkit",
            "known_uid_mappings",
            "platforms",
            "builders",
            "builder",
            "linux/amd64",
            "arm64",
            "ssh://h",
            "buildkit",
            ": ",
            " = ",
            "\"",
            "'",
            "[",
            "]",
            "{",
            "}",
            "- ",
            "memory=1g",
            "0",
            "-1",
            "true",
            "null",
            "~",
            "&a",
            "*a",
            "!!",
            "\n  ",
        ];

        proptest! {
            #[test]
            fn loading_never_panics(text in crate::fuzz::text(TOKENS)) {
                let dir = tempfile::tempdir().unwrap();
                for name in ["images.toml", "config.yaml"] {
                    let path = write(dir.path(), name, &text);
                    let _ = Config::load(Some(&path), None, None);
                }
            }
        }
    }
}
