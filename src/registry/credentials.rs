//! Where a registry's credentials come from in Docker's own config: `config.json` (`credHelpers`, `credsStore`,
//! `auths`) and the `docker-credential-*` helpers it names.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use tokio::io::AsyncWriteExt as _;

use super::Credentials;

/// The key Docker uses for Docker Hub in `config.json` and with credential helpers.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// How long a credential helper may take (some unlock a keyring first).
const HELPER_TIMEOUT: Duration = Duration::from_secs(60);

/// `host[:port]` of a registry or a `config.json` key, lowercased, with Docker Hub's aliases folded into
/// `docker.io`, so that `https://index.docker.io/v1/`, `registry-1.docker.io` and `docker.io` compare equal.
pub(crate) fn normalize_host(key: &str) -> String {
    let key = key.trim();
    let key = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        _ => host,
    }
}

/// `$DOCKER_CONFIG`, else `~/.docker`, as the Docker CLI does.
pub(crate) fn docker_config_dir_from_env() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|home| PathBuf::from(home).join(".docker"))
}

/// The parts of Docker's `config.json` that hold credentials (everything else is ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerConfigFile {
    auths: Option<HashMap<String, AuthEntry>>,
    creds_store: Option<String>,
    cred_helpers: Option<HashMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

/// One place to look, in the order Docker looks.
#[derive(Debug, PartialEq, Eq)]
enum Source {
    /// Run `docker-credential-<name>`.
    Helper(String),
    /// Credentials written in `auths`.
    Entry(Credentials),
}

/// Credentials for `registry` from the Docker config in `dir`, `None` when it has none (or there is no file).
pub(crate) async fn from_docker_config(dir: &Path, registry: &str) -> Result<Option<Credentials>, String> {
    let path = dir.join("config.json");
    let text = match crate::files::read(&path, crate::files::CONFIG_LIMIT) {
        Ok(text) => text,
        Err(crate::files::ReadError::NotFound) => {
            tracing::info!(registry, config = %path.display(), "no Docker config, so no credentials from it");
            return Ok(None);
        }
        Err(e) => return Err(format!("cannot read Docker config {}: {e}", path.display())),
    };
    let config: DockerConfigFile =
        serde_json::from_slice(&text).map_err(|e| format!("cannot parse Docker config {}: {e}", path.display()))?;
    let host = normalize_host(registry);
    let server = if host == "docker.io" { DOCKER_HUB_KEY } else { registry };
    for source in sources(&config, &host, &path)? {
        match source {
            Source::Helper(name) => {
                let program = format!("docker-credential-{name}");
                if let Some(found) = run_helper(&program, server).await? {
                    tracing::info!(registry, source = %program, kind = found.kind(), "credentials found");
                    return Ok(Some(found));
                }
                tracing::info!(registry, source = %program, "the credential helper has nothing for this registry");
            }
            Source::Entry(found) => {
                tracing::info!(registry, source = %format!("auths in {}", path.display()), kind = found.kind(), "credentials found");
                return Ok(Some(found));
            }
        }
    }
    tracing::info!(registry, config = %path.display(), "no credentials for this registry in the Docker config");
    Ok(None)
}

/// Where to look for `host`'s credentials: `credHelpers[host]` alone (Docker then ignores the other stores),
/// else `credsStore` and then `auths[host]`.
fn sources(config: &DockerConfigFile, host: &str, path: &Path) -> Result<Vec<Source>, String> {
    let helper = config.cred_helpers.iter().flatten().find(|(key, _)| normalize_host(key) == host);
    if let Some((_, name)) = helper.filter(|(_, name)| !name.is_empty()) {
        return Ok(vec![Source::Helper(name.clone())]);
    }
    let mut sources = Vec::new();
    if let Some(store) = config.creds_store.as_ref().filter(|s| !s.is_empty()) {
        sources.push(Source::Helper(store.clone()));
    }
    let entry = config.auths.iter().flatten().find(|(key, _)| normalize_host(key) == host);
    if let Some((key, entry)) = entry
        && let Some(found) = entry_credentials(entry, key, path)?
    {
        sources.push(Source::Entry(found));
    }
    Ok(sources)
}

/// One `auths` entry: `identitytoken`, else `auth` (base64 of `user:password`), else `username`/`password`.
fn entry_credentials(entry: &AuthEntry, key: &str, path: &Path) -> Result<Option<Credentials>, String> {
    let non_empty = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
    if let Some(token) = non_empty(&entry.identitytoken) {
        return Ok(Some(Credentials::IdentityToken(token)));
    }
    if let Some(auth) = non_empty(&entry.auth) {
        let invalid = || format!("{}: auths[\"{key}\"].auth is not base64 of user:password", path.display());
        let engine = base64::engine::general_purpose::STANDARD;
        let decoded = engine
            .decode(auth.trim())
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(auth.trim()))
            .map_err(|_| invalid())?;
        let decoded = String::from_utf8(decoded).map_err(|_| invalid())?;
        let (username, password) = decoded.split_once(':').ok_or_else(invalid)?;
        return Ok(Some(Credentials::Basic { username: username.into(), password: password.into() }));
    }
    match (non_empty(&entry.username), non_empty(&entry.password)) {
        (Some(username), Some(password)) => Ok(Some(Credentials::Basic { username, password })),
        _ => Ok(None),
    }
}

/// Runs `program get` with `server` on stdin, as Docker does; `None` when the helper has nothing for it.
pub(crate) async fn run_helper(program: &str, server: &str) -> Result<Option<Credentials>, String> {
    let mut child = tokio::process::Command::new(program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("credential helper {program} is not in PATH"),
            _ => format!("cannot run credential helper {program}: {e}"),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading says why in its output and exit status, checked below.
        let _ = stdin.write_all(server.as_bytes()).await;
    }
    let output = tokio::time::timeout(HELPER_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| format!("credential helper {program} did not answer within {} s", HELPER_TIMEOUT.as_secs()))?
        .map_err(|e| format!("credential helper {program} failed: {e}"))?;
    if !output.status.success() {
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        // The helpers' protocol message for "nothing stored for this server".
        if text.contains("credentials not found") {
            return Ok(None);
        }
        return Err(format!("credential helper {program} failed ({}): {}", output.status, text.trim()));
    }
    parse_helper_answer(&output.stdout, program)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

/// `{"Username","Secret"}`; the username `<token>` marks an identity token.
fn parse_helper_answer(stdout: &[u8], program: &str) -> Result<Option<Credentials>, String> {
    let answer: HelperAnswer = serde_json::from_slice(stdout).map_err(|e| {
        format!("credential helper {program} answered something other than {{\"Username\",\"Secret\"}}: {e}")
    })?;
    Ok(match answer {
        HelperAnswer { secret, .. } if secret.is_empty() => None,
        HelperAnswer { username, secret } if username == "<token>" => Some(Credentials::IdentityToken(secret)),
        HelperAnswer { username, secret } => Some(Credentials::Basic { username, password: secret }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(username: &str, password: &str) -> Credentials {
        Credentials::Basic { username: username.into(), password: password.into() }
    }

    fn sources_of(json: &str, registry: &str) -> Result<Vec<Source>, String> {
        let config: DockerConfigFile = serde_json::from_str(json).unwrap();
        sources(&config, &normalize_host(registry), Path::new("/c/config.json"))
    }

    #[test]
    fn hub_aliases_and_schemes_fold() {
        for key in ["https://index.docker.io/v1/", "docker.io", "registry-1.docker.io", "INDEX.docker.io"] {
            assert_eq!(normalize_host(key), "docker.io", "{key}");
        }
        assert_eq!(normalize_host("https://reg.example:5000/v2/"), "reg.example:5000");
        assert_eq!(normalize_host("reg.example"), "reg.example");
    }

    #[test]
    fn auths_variants() {
        let json = r#"{"auths": {
            "a.example": {"auth": "dXNlcjpwYTpzcw=="},
            "https://b.example/v1/": {"username": "bob", "password": "pw"},
            "c.example": {"identitytoken": "tok", "auth": "dXNlcjpwYXNz"},
            "d.example": {},
            "e.example": {"auth": "not base64!"},
            "https://index.docker.io/v1/": {"auth": "aHViOnB3"}
        }}"#;
        assert_eq!(sources_of(json, "a.example").unwrap(), [Source::Entry(basic("user", "pa:ss"))]);
        assert_eq!(sources_of(json, "b.example").unwrap(), [Source::Entry(basic("bob", "pw"))]);
        assert_eq!(sources_of(json, "c.example").unwrap(), [Source::Entry(Credentials::IdentityToken("tok".into()))]);
        assert_eq!(sources_of(json, "d.example").unwrap(), []);
        assert_eq!(sources_of(json, "unknown.example").unwrap(), []);
        assert_eq!(sources_of(json, "docker.io").unwrap(), [Source::Entry(basic("hub", "pw"))]);
        let err = sources_of(json, "e.example").unwrap_err();
        assert!(err.contains("/c/config.json") && err.contains("e.example"), "{err}");
    }

    #[test]
    fn cred_helpers_win_then_store_then_auths() {
        let json = r#"{"credsStore": "desktop", "credHelpers": {"h.example": "pass"},
                       "auths": {"h.example": {"auth": "dTpw"}, "s.example": {"auth": "dTpw"}}}"#;
        assert_eq!(sources_of(json, "h.example").unwrap(), [Source::Helper("pass".into())]);
        assert_eq!(
            sources_of(json, "s.example").unwrap(),
            [Source::Helper("desktop".into()), Source::Entry(basic("u", "p"))]
        );
        assert_eq!(sources_of(r#"{"auths": null}"#, "x").unwrap(), []);
    }

    #[test]
    fn helper_answers() {
        let parse = |s: &str| parse_helper_answer(s.as_bytes(), "docker-credential-x");
        assert_eq!(parse(r#"{"ServerURL":"s","Username":"u","Secret":"p"}"#).unwrap(), Some(basic("u", "p")));
        assert_eq!(
            parse(r#"{"Username":"<token>","Secret":"t"}"#).unwrap(),
            Some(Credentials::IdentityToken("t".into()))
        );
        assert_eq!(parse(r#"{"Username":"u","Secret":""}"#).unwrap(), None);
        assert!(parse("oops").unwrap_err().contains("docker-credential-x"));
    }

    #[tokio::test]
    async fn helpers_are_run_with_the_server_on_stdin() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let script = |name: &str, body: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            path.to_string_lossy().into_owned()
        };
        let echo = script("echo", r#"read server; printf '{"Username":"%s","Secret":"s"}' "$server""#);
        assert_eq!(run_helper(&echo, "reg:5000").await.unwrap(), Some(basic("reg:5000", "s")));
        let missing = script("missing", "echo 'credentials not found in native keychain'; exit 1");
        assert_eq!(run_helper(&missing, "reg").await.unwrap(), None);
        let broken = script("broken", "echo boom >&2; exit 3");
        let err = run_helper(&broken, "reg").await.unwrap_err();
        assert!(err.contains("boom"), "{err}");
        let err = run_helper("docker-credential-imgraph-none", "reg").await.unwrap_err();
        assert!(err.contains("not in PATH"), "{err}");
    }

    #[tokio::test]
    async fn config_file_is_optional_but_must_parse() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(from_docker_config(dir.path(), "r").await.unwrap(), None);
        std::fs::write(dir.path().join("config.json"), "{").unwrap();
        assert!(from_docker_config(dir.path(), "r").await.unwrap_err().contains("config.json"));
        std::fs::write(dir.path().join("config.json"), r#"{"auths":{"r:1":{"auth":"dTpw"}}}"#).unwrap();
        assert_eq!(from_docker_config(dir.path(), "r:1").await.unwrap(), Some(basic("u", "p")));
    }
}
