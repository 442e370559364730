//! The registry client: tag existence against real registries (the shared ones of `crate::fixtures`, plain and
//! htpasswd, and some of the tests' own), and, with wiremock, what a real registry will not do on demand (Bearer
//! tokens, 429, 5xx, no digest header).

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use imgraph::config::Config;
use imgraph::registry::manifest::{Descriptor, ManifestPlatform, TagContent};
use imgraph::registry::{ClientOptions, Credentials, RegistryClient, RetryPolicy, TagState};
use sha2::{Digest as _, Sha256};
use wiremock::matchers::{basic_auth, bearer_token, headers, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::fixtures::{self, Cert, OwnRegistry};
use crate::harness::{TestTree, test_env};

const MANIFEST_PATH: &str = "/v2/ns/app/manifests/1";

/// A client for `registry` with the given config credentials, Docker config dir `docker_config` (an empty one
/// when `None`, so that the caller's own Docker credentials play no part) and fast retries.
fn client(registry: &str, user_password: Option<(&str, &str)>, docker_config: Option<&Path>) -> RegistryClient {
    let mut config = Config::defaults();
    config.registry = Some(registry.to_owned());
    if let Some((user, password)) = user_password {
        config.username = Some(user.to_owned());
        config.password = Some(password.to_owned());
    }
    client_for(&config, docker_config)
}

/// A client for `config`, as [`client`] makes them.
fn client_for(config: &Config, docker_config: Option<&Path>) -> RegistryClient {
    let empty = tempfile::tempdir().expect("temp dir");
    let options = ClientOptions {
        retry: RetryPolicy { tries: 3, first_delay: Duration::from_millis(10), max_delay: Duration::from_millis(50) },
        docker_config_dir: Some(docker_config.unwrap_or(empty.path()).to_owned()),
        ..ClientOptions::from_env()
    };
    RegistryClient::with_options(config, options).expect("client")
}

/// Pushes a config-only OCI image `name:tag` (linux/amd64) over the registry API; returns the manifest digest.
async fn push(registry: &str, auth: Option<(&str, &str)>, name: &str, tag: &str) -> String {
    push_to(&format!("http://{registry}/"), &reqwest::Client::new(), auth, name, tag).await
}

/// [`push`] to the registry at `base` (`https://…/` or `http://…/`), with `http`.
async fn push_to(base: &str, http: &reqwest::Client, auth: Option<(&str, &str)>, name: &str, tag: &str) -> String {
    push_for(base, http, auth, name, tag, "amd64").await
}

/// [`push_to`] an image whose config says linux/`architecture`.
async fn push_for(
    base: &str,
    http: &reqwest::Client,
    auth: Option<(&str, &str)>,
    name: &str,
    tag: &str,
    architecture: &str,
) -> String {
    let with_auth = |request: reqwest::RequestBuilder| match auth {
        Some((user, password)) => request.basic_auth(user, Some(password)),
        None => request,
    };
    let sha256 = |bytes: &[u8]| format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
    let base = reqwest::Url::parse(base).expect("registry url");

    let config =
        format!(r#"{{"architecture":"{architecture}","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}}}}"#);
    let config = config.as_bytes();
    let config_digest = sha256(config);
    let started = with_auth(http.post(base.join(&format!("v2/{name}/blobs/uploads/")).expect("url")))
        .send()
        .await
        .expect("start upload");
    assert_eq!(started.status(), 202, "start upload: {:?}", started.text().await);
    let location = started.headers()["location"].to_str().expect("location").to_owned();
    let mut upload = base.join(&location).expect("upload url");
    upload.query_pairs_mut().append_pair("digest", &config_digest);
    let uploaded = with_auth(http.put(upload))
        .header("content-type", "application/octet-stream")
        .body(config.to_vec())
        .send()
        .await
        .expect("upload blob");
    assert_eq!(uploaded.status(), 201, "upload blob: {:?}", uploaded.text().await);

    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [],
    })
    .to_string();
    let put = with_auth(http.put(base.join(&format!("v2/{name}/manifests/{tag}")).expect("url")))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.clone())
        .send()
        .await
        .expect("put manifest");
    assert_eq!(put.status(), 201, "put manifest: {:?}", put.text().await);
    sha256(manifest.as_bytes())
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[tokio::test]
async fn plain_registry_present_and_absent() {
    let env = test_env();
    let digest = push(&env.registry, None, "it/present", "1.0-1").await;
    let client = client(&env.registry, None, None);
    assert_eq!(
        client.tag_state(&env.registry, "it/present", "1.0-1").await.unwrap(),
        TagState::Present { digest: Some(digest) }
    );
    assert_eq!(client.tag_state(&env.registry, "it/present", "2.0").await.unwrap(), TagState::Absent);
    assert_eq!(client.tag_state(&env.registry, "it/never-pushed", "1.0").await.unwrap(), TagState::Absent);
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[tokio::test]
async fn an_index_is_put_under_every_tag_and_read_back_with_its_platforms() {
    let env = test_env();
    let creds = (env.auth_user.as_str(), env.auth_password.as_str());
    let registry = env.auth_registry.as_str();
    let base = format!("http://{registry}/");
    let http = reqwest::Client::new();
    let amd64 = push_for(&base, &http, Some(creds), "it/multi", "one-amd64", "amd64").await;
    let arm64 = push_for(&base, &http, Some(creds), "it/multi", "one-arm64", "arm64").await;
    let client = client(registry, Some(creds), None);

    let single = client.tag_content(registry, "it/multi", "one-arm64").await.unwrap().expect("pushed");
    let linux =
        |architecture: &str| ManifestPlatform { os: "linux".into(), architecture: architecture.into(), variant: None };
    assert_eq!(single, TagContent::Image { digest: arm64.clone(), platform: linux("arm64") });

    let mut manifests = Vec::new();
    for (digest, architecture) in [(&amd64, "amd64"), (&arm64, "arm64")] {
        let descriptor = client.descriptor(registry, "it/multi", digest).await.unwrap().expect("pushed");
        assert_eq!(descriptor.media_type, "application/vnd.oci.image.manifest.v1+json");
        assert!(descriptor.size > 100, "{descriptor:?}");
        manifests.push(Descriptor { platform: Some(linux(architecture)), ..descriptor });
    }
    let tags = ["2.0-1".to_owned(), "latest".to_owned()];
    let index = client.put_index(registry, "it/multi", &tags, &manifests).await.unwrap();
    for tag in &tags {
        let content = client.tag_content(registry, "it/multi", tag).await.unwrap().expect("put");
        assert_eq!(content, TagContent::Index { digest: index.clone(), manifests: manifests.clone() });
        assert_eq!(
            client.tag_state(registry, "it/multi", tag).await.unwrap(),
            TagState::Present { digest: Some(index.clone()) }
        );
    }
    assert_eq!(client.tag_content(registry, "it/multi", "never").await.unwrap(), None);
    let absent = format!("sha256:{}", "0".repeat(64));
    assert_eq!(client.descriptor(registry, "it/multi", &absent).await.unwrap(), None);
    // Without credentials the registry refuses the write.
    let anonymous = client_for(&Config::defaults(), None);
    let refused = anonymous.put_index(registry, "it/multi", &tags, &manifests).await.unwrap_err();
    assert!(refused.message.contains("401") || refused.message.contains("authentication"), "{refused:?}");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[tokio::test]
async fn auth_registry_with_config_credentials() {
    let env = test_env();
    let creds = (env.auth_user.as_str(), env.auth_password.as_str());
    let digest = push(&env.auth_registry, Some(creds), "it/config-creds", "1").await;
    let client = client(&env.auth_registry, Some(creds), None);
    for _ in 0..2 {
        assert_eq!(
            client.tag_state(&env.auth_registry, "it/config-creds", "1").await.unwrap(),
            TagState::Present { digest: Some(digest.clone()) }
        );
    }
    assert_eq!(client.tag_state(&env.auth_registry, "it/config-creds", "2").await.unwrap(), TagState::Absent);
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[tokio::test]
async fn auth_registry_with_docker_config_auths() {
    let env = test_env();
    let creds = (env.auth_user.as_str(), env.auth_password.as_str());
    push(&env.auth_registry, Some(creds), "it/docker-config", "1").await;
    let dir = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", env.auth_user, env.auth_password));
    let config = serde_json::json!({"auths": {env.auth_registry.clone(): {"auth": auth}}});
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    // The config's credentials are for another registry: Docker's config must be the one used.
    let client = client("other.example", Some(("nobody", "wrong")), Some(dir.path()));
    assert!(matches!(
        client.tag_state(&env.auth_registry, "it/docker-config", "1").await.unwrap(),
        TagState::Present { digest: Some(_) }
    ));
    assert_eq!(
        client.credentials(&env.auth_registry).await.unwrap(),
        Some(Credentials::Basic { username: env.auth_user.clone(), password: env.auth_password.clone() })
    );
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[tokio::test]
async fn auth_registry_refusals_are_errors() {
    let env = test_env();
    let wrong = client(&env.auth_registry, Some((&env.auth_user, "wrong password")), None);
    let err = wrong.tag_state(&env.auth_registry, "it/refused", "1").await.unwrap_err();
    assert!(err.message.starts_with("authentication failed (401 Unauthorized)"), "{err}");
    assert!(err.message.contains(&format!("docker login {}", env.auth_registry)), "{err}");
    assert_eq!(err.reference, format!("{}/it/refused:1", env.auth_registry));

    let anonymous = client(&env.auth_registry, None, None);
    let err = anonymous.tag_state(&env.auth_registry, "it/refused", "1").await.unwrap_err();
    assert!(err.message.starts_with("authentication required (401 Unauthorized)"), "{err}");
    assert!(err.message.contains("no credentials"), "{err}");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[tokio::test]
async fn identity_tokens_are_not_used_for_the_check() {
    let env = test_env();
    let dir = tempfile::tempdir().unwrap();
    let config = serde_json::json!({"auths": {env.auth_registry.clone(): {"identitytoken": "refresh-me"}}});
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let client = client(&env.auth_registry, None, Some(dir.path()));
    let err = client.tag_state(&env.auth_registry, "it/identity", "1").await.unwrap_err();
    assert!(err.message.contains("only an identity token"), "{err}");
    assert_eq!(
        client.credentials(&env.auth_registry).await.unwrap(),
        Some(Credentials::IdentityToken("refresh-me".into()))
    );
}

#[tokio::test]
async fn registry_down_is_an_error_after_retries() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let registry = format!("127.0.0.1:{port}");
    let err = client(&registry, None, None).tag_state(&registry, "ns/app", "1").await.unwrap_err();
    assert_eq!(
        err.message,
        format!("cannot connect to http://{registry}/v2/: connection refused (after 3 tries)"),
        "{err}"
    );
}

/// A manifest HEAD answered by a Bearer challenge whose realm is the mock's `/token`, service `reg`, then `extra`.
fn bearer_challenge(server: &MockServer, extra: &str) -> Mock {
    let challenge = format!(r#"Bearer realm="{}/token",service="reg"{extra}"#, server.uri());
    Mock::given(method("HEAD"))
        .and(path(MANIFEST_PATH))
        .respond_with(ResponseTemplate::new(401).insert_header("www-authenticate", challenge.as_str()))
}

#[tokio::test]
async fn bearer_token_is_fetched_once_and_reused() {
    let server = MockServer::start().await;
    let registry = server.address().to_string();
    Mock::given(method("HEAD"))
        .and(path(MANIFEST_PATH))
        .and(bearer_token("tok"))
        .and(headers(
            "accept",
            vec![
                "application/vnd.oci.image.index.v1+json",
                "application/vnd.oci.image.manifest.v1+json",
                "application/vnd.docker.distribution.manifest.list.v2+json",
                "application/vnd.docker.distribution.manifest.v2+json",
            ],
        ))
        .respond_with(ResponseTemplate::new(200).insert_header("docker-content-digest", "sha256:aa"))
        .with_priority(1)
        .expect(2)
        .mount(&server)
        .await;
    bearer_challenge(&server, r#",scope="repository:ns/app:pull""#).expect(1).mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .and(query_param("service", "reg"))
        .and(query_param("scope", "repository:ns/app:pull"))
        .and(basic_auth("u", "p"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"access_token": "tok"})))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&registry, Some(("u", "p")), None);
    for _ in 0..2 {
        assert_eq!(
            client.tag_state(&registry, "ns/app", "1").await.unwrap(),
            TagState::Present { digest: Some("sha256:aa".into()) }
        );
    }
}

#[tokio::test]
async fn token_endpoint_refusal_is_an_authentication_error() {
    let server = MockServer::start().await;
    let registry = server.address().to_string();
    bearer_challenge(&server, "").expect(1).mount(&server).await;
    Mock::given(method("GET")).and(path("/token")).respond_with(ResponseTemplate::new(401)).mount(&server).await;
    let err = client(&registry, Some(("u", "bad")), None).tag_state(&registry, "ns/app", "1").await.unwrap_err();
    assert!(
        err.message
            .starts_with(&format!("authentication failed (401 Unauthorized) at token endpoint {}/token", server.uri())),
        "{err}"
    );
}

#[tokio::test]
async fn rate_limit_is_retried() {
    let server = MockServer::start().await;
    let registry = server.address().to_string();
    Mock::given(method("HEAD"))
        .and(path(MANIFEST_PATH))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("HEAD"))
        .and(path(MANIFEST_PATH))
        .respond_with(ResponseTemplate::new(200).insert_header("docker-content-digest", "sha256:bb"))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(
        client(&registry, None, None).tag_state(&registry, "ns/app", "1").await.unwrap(),
        TagState::Present { digest: Some("sha256:bb".into()) }
    );
}

#[tokio::test]
async fn server_errors_are_errors_after_retries() {
    let server = MockServer::start().await;
    let registry = server.address().to_string();
    Mock::given(method("HEAD"))
        .and(path(MANIFEST_PATH))
        .respond_with(ResponseTemplate::new(500))
        .expect(3)
        .mount(&server)
        .await;
    let err = client(&registry, None, None).tag_state(&registry, "ns/app", "1").await.unwrap_err();
    assert_eq!(err.message, "registry answered 500 after 3 tries");
}

#[tokio::test]
async fn missing_digest_header_falls_back_to_get() {
    let server = MockServer::start().await;
    let registry = server.address().to_string();
    Mock::given(method("HEAD")).and(path(MANIFEST_PATH)).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    Mock::given(method("GET"))
        .and(path(MANIFEST_PATH))
        .respond_with(ResponseTemplate::new(200).insert_header("docker-content-digest", "sha256:cc"))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(
        client(&registry, None, None).tag_state(&registry, "ns/app", "1").await.unwrap(),
        TagState::Present { digest: Some("sha256:cc".into()) }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_checks_share_one_token() {
    let server = MockServer::start().await;
    let registry = server.address().to_string();
    Mock::given(method("HEAD"))
        .and(path(MANIFEST_PATH))
        .and(bearer_token("tok"))
        .respond_with(ResponseTemplate::new(404))
        .with_priority(1)
        .expect(40)
        .mount(&server)
        .await;
    bearer_challenge(&server, "").mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"token": "tok"})))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&registry, None, None);
    let checks: Vec<_> = (0..40)
        .map(|_| {
            let (client, registry) = (client.clone(), registry.clone());
            tokio::spawn(async move { client.tag_state(&registry, "ns/app", "1").await })
        })
        .collect();
    for check in checks {
        assert_eq!(check.await.unwrap().unwrap(), TagState::Absent);
    }
}

// --- Registries of our own: TLS, addresses that are not loopback, insecure registries, token realms ----------

/// Whether `tools` are all installed: required when `CI=true`, else the test is skipped with a note.
/// Asserts that `tools` are installed (scripts/install-test-deps.sh installs them).
fn need(tools: &[&str]) {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|tool| !std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
        .collect();
    assert!(missing.is_empty(), "{missing:?} not installed: run scripts/install-test-deps.sh (or scripts/test.sh)");
}

/// An IPv4 address of this machine that is not loopback, so that a registry there is not insecure by dockerd's
/// rule and its certificate gets verified. Required when `CI=true`.
fn non_loopback_ipv4() -> Ipv4Addr {
    let mut found = None;
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list`, read only until freeifaddrs; entries without an address are skipped, and
    // an AF_INET address is a sockaddr_in.
    unsafe {
        if libc::getifaddrs(&mut list) == 0 {
            let mut entry = list;
            while let Some(ifa) = entry.as_ref() {
                if let Some(addr) = ifa.ifa_addr.as_ref()
                    && i32::from(addr.sa_family) == libc::AF_INET
                {
                    let sin = &*ifa.ifa_addr.cast::<libc::sockaddr_in>();
                    let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                    if !ip.is_loopback() && !ip.is_unspecified() && TcpListener::bind((ip, 0)).is_ok() {
                        found = Some(ip);
                        break;
                    }
                }
                entry = ifa.ifa_next;
            }
            libc::freeifaddrs(list);
        }
    }
    found.expect("this machine has no IPv4 address but loopback: the verified-TLS registry tests need one")
}

/// Runs `openssl ARGS` in `dir`, asserting success.
fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl");
    assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// A self-signed certificate `NAME.pem` (key `NAME.key`) in `dir` for the subjectAltName `san`, made the usual
/// way: `openssl req -x509`, which marks it CA:TRUE. For the tests of such certificates; others that need just some
/// certificate use rcgen ([`fixtures::self_signed`]).
fn openssl_self_signed(dir: &Path, name: &str, san: &str) -> Cert {
    let (cert, key, san) = (format!("{name}.pem"), format!("{name}.key"), format!("subjectAltName={san}"));
    let subject = format!("/CN={name}");
    let key_and_cert = ["-keyout", key.as_str(), "-out", cert.as_str()];
    let args = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", &subject, "-addext", &san];
    openssl(dir, &[&args[..], &key_and_cert].concat());
    Cert { cert: dir.join(cert), key: dir.join(key) }
}

/// A self-signed certificate marked CA:TRUE, as `openssl req -x509` makes them, for `ip`, valid from `start` to
/// `end` (year, month, day; `req -x509` cannot backdate before OpenSSL 3.4): made with rcgen.
fn ca_true_self_signed_for(dir: &Path, name: &str, ip: Ipv4Addr, start: (i32, u8, u8), end: (i32, u8, u8)) -> Cert {
    let mut params = fixtures::cert_params(name, &[&ip.to_string()]);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.not_before = rcgen::date_time_ymd(start.0, start.1, start.2);
    params.not_after = rcgen::date_time_ymd(end.0, end.1, end.2);
    fixtures::self_signed_from(dir, name, &params)
}

/// An HTTP client that trusts any certificate: for pushing test images, not under test.
fn trusting_client() -> reqwest::Client {
    reqwest::Client::builder().tls_danger_accept_invalid_certs(true).build().expect("client")
}

/// A client with `ca_bundle` and `insecure_registries` set, no credentials.
fn tls_client(ca_bundle: Option<&Path>, insecure: &[&str]) -> RegistryClient {
    let mut config = Config::defaults();
    config.ca_bundle = ca_bundle.map(Path::to_path_buf);
    config.insecure_registries = insecure.iter().map(|entry| (*entry).to_owned()).collect();
    client_for(&config, None)
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[tokio::test]
async fn a_ca_true_self_signed_certificate_in_ca_bundle_is_trusted() {
    need(&["docker-registry", "openssl"]);
    let ip = non_loopback_ipv4();
    let certs = tempfile::tempdir().unwrap();
    let cert = openssl_self_signed(certs.path(), "registry", &format!("DNS:registry.example,IP:{ip}"));
    let registry = OwnRegistry::start_on(ip.into(), Some((&cert.cert, &cert.key)));
    let digest = push_to(&format!("https://{}/", registry.address), &trusting_client(), None, "it/tls", "1.0").await;

    let client = tls_client(Some(&cert.cert), &[]);
    for _ in 0..2 {
        assert_eq!(
            client.tag_state(&registry.address, "it/tls", "1.0").await.unwrap(),
            TagState::Present { digest: Some(digest.clone()) }
        );
    }
    assert_eq!(client.tag_state(&registry.address, "it/tls", "2.0").await.unwrap(), TagState::Absent);
    // HTTP/2 is still negotiated: the TLS config is our own, and sets ALPN itself.
    let log = registry.log();
    assert!(log.contains(r#""HEAD /v2/it/tls/manifests/1.0 HTTP/2.0" 200"#), "{log}");
    assert!(log.contains(r#""HEAD /v2/it/tls/manifests/2.0 HTTP/2.0" 404"#), "{log}");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn status_trusts_a_self_signed_registry_certificate_in_ca_bundle() {
    let env = test_env();
    need(&["docker-registry", "openssl"]);
    let ip = non_loopback_ipv4();
    let certs = tempfile::tempdir().unwrap();
    let cert = openssl_self_signed(certs.path(), "registry", &format!("IP:{ip}"));
    let registry = OwnRegistry::start_on(ip.into(), Some((&cert.cert, &cert.key)));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(push_to(&format!("https://{}/", registry.address), &trusting_client(), None, "t-tls/app", "1.0"));
    let config = format!(
        "registry = \"{}\"\nnamespace = \"t-tls\"\nca_bundle = \"{}\"\n",
        registry.address,
        cert.cert.display()
    );
    let tree = TestTree::new()
        .file("images.toml", config)
        .image("app", "app", "1.0", &format!("FROM {}\n", env.base_image))
        .image("other", "other", "1.0", &format!("FROM {}\n", env.base_image));
    let status = tree.run(&["status", "."]).success();
    assert_eq!(
        status.stdout(),
        "app    1.0  published: 200 from registry\nother  1.0  to-build: 404 from registry, not in the daemon\n"
    );

    // The same registry, with a bundle that lacks its certificate: an error naming both.
    let other = fixtures::self_signed(certs.path(), "other", &[&ip.to_string()]);
    let config = format!(
        "registry = \"{}\"\nnamespace = \"t-tls\"\nca_bundle = \"{}\"\n",
        registry.address,
        other.cert.display()
    );
    let tree =
        TestTree::new().file("images.toml", config).image("app", "app", "1.0", &format!("FROM {}\n", env.base_image));
    let status = tree.run(&["status", "."]).expect_code(1);
    let line = status.stdout();
    assert!(line.starts_with(&format!("app  1.0  error: TLS error talking to {}: ", registry.address)), "{line}");
    assert!(line.contains(&format!("ca_bundle {}", other.cert.display())), "{line}");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[tokio::test]
async fn certificates_in_ca_bundle_are_still_checked() {
    need(&["docker-registry", "openssl"]);
    let ip = non_loopback_ipv4();
    let certs = tempfile::tempdir().unwrap();
    let dir = certs.path();
    let cases = [
        (openssl_self_signed(dir, "wrong-name", "DNS:registry.example,IP:192.0.2.254"), "not valid for name"),
        (ca_true_self_signed_for(dir, "expired", ip, (2020, 1, 1), (2020, 1, 2)), "expired"),
        (ca_true_self_signed_for(dir, "not-yet", ip, (2099, 1, 1), (2099, 1, 2)), "not valid yet"),
    ];
    for (cert, why) in &cases {
        let registry = OwnRegistry::start_on(ip.into(), Some((&cert.cert, &cert.key)));
        let err = tls_client(Some(&cert.cert), &[]).tag_state(&registry.address, "it/tls", "1").await.unwrap_err();
        let message = err.message.to_lowercase();
        assert!(message.starts_with(&format!("tls error talking to {}: ", registry.address)), "{err}");
        assert!(message.contains(why), "{why}: {err}");
        assert!(err.message.contains(&format!("ca_bundle {}", cert.cert.display())), "{err}");
    }
    // A self-signed certificate that is not in the bundle, or no bundle at all: nobody vouches for it.
    let presented = fixtures::self_signed(dir, "presented", &[&ip.to_string()]);
    let registry = OwnRegistry::start_on(ip.into(), Some((&presented.cert, &presented.key)));
    for bundle in [Some(cases[0].0.cert.as_path()), None] {
        let err = tls_client(bundle, &[]).tag_state(&registry.address, "it/tls", "1").await.unwrap_err();
        let start = format!("TLS error talking to {}: invalid peer certificate: UnknownIssuer", registry.address);
        assert!(err.message.starts_with(&start), "{err}");
        let trusted = bundle.map_or("(no ca_bundle set)".to_owned(), |b| format!("ca_bundle {}", b.display()));
        assert!(err.message.contains(&trusted), "{err}");
    }
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[tokio::test]
async fn a_loopback_tls_registry_is_insecure_as_dockerd_has_it() {
    need(&["docker-registry"]);
    let certs = tempfile::tempdir().unwrap();
    // Its certificate is for another name, and trusted by nobody: dockerd does not verify it at all.
    let cert = fixtures::self_signed(certs.path(), "loopback", &["elsewhere.example"]);
    let registry = OwnRegistry::start_on(Ipv4Addr::LOCALHOST.into(), Some((&cert.cert, &cert.key)));
    let port = registry.address.rsplit_once(':').map(|(_, port)| port.to_owned()).unwrap();
    let digest = push_to(&format!("https://{}/", registry.address), &trusting_client(), None, "it/loopback", "1").await;
    // 127.0.0.0/8 and ::1 by address, `localhost` because it resolves to them; with or without a ca_bundle.
    let other = fixtures::self_signed(certs.path(), "other", &["localhost"]);
    for (name, bundle) in [(registry.address.clone(), None), (format!("localhost:{port}"), Some(other.cert.as_path()))]
    {
        let client = tls_client(bundle, &[]);
        assert_eq!(
            client.tag_state(&name, "it/loopback", "1").await.unwrap(),
            TagState::Present { digest: Some(digest.clone()) },
            "{name}"
        );
        assert_eq!(client.tag_state(&name, "it/loopback", "2").await.unwrap(), TagState::Absent, "{name}");
    }
    // Over TLS (the registry's Go server speaks HTTP/2 only there), never plain HTTP.
    let log = registry.log();
    assert!(log.contains(r#""HEAD /v2/it/loopback/manifests/2 HTTP/2.0" 404"#), "{log}");
    assert!(!log.contains("HTTP/1.1"), "{log}");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[tokio::test]
async fn insecure_registries_entries_are_read_as_dockerd_reads_them() {
    need(&["docker-registry"]);
    let ip = non_loopback_ipv4();
    let certs = tempfile::tempdir().unwrap();
    let cert = fixtures::self_signed(certs.path(), "untrusted", &["elsewhere.example"]);
    let registry = OwnRegistry::start_on(ip.into(), Some((&cert.cert, &cert.key)));
    push_to(&format!("https://{}/", registry.address), &trusting_client(), None, "it/insecure", "1").await;
    let listed = |entries: &[&str]| tls_client(None, entries);
    // `host:port` as written, or a CIDR holding the address: HTTPS without verification.
    let cidr = format!("{ip}/32");
    for entries in [&[registry.address.as_str()][..], &[cidr.as_str()], &["https://0.0.0.0/0"]] {
        let state = listed(entries).tag_state(&registry.address, "it/insecure", "1").await;
        assert!(matches!(state, Ok(TagState::Present { .. })), "{entries:?}: {state:?}");
    }
    // Not listed, listed without its port (dockerd compares `host:port` exactly), or another address: verified.
    let bare = ip.to_string();
    for entries in [&[][..], &[bare.as_str()], &["192.0.2.254/32"]] {
        let err = listed(entries).tag_state(&registry.address, "it/insecure", "1").await.unwrap_err();
        assert!(err.message.starts_with(&format!("TLS error talking to {}: ", registry.address)), "{entries:?}: {err}");
    }
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[tokio::test]
async fn plain_http_registries_are_reached_when_insecure_only() {
    need(&["docker-registry"]);
    // On loopback: HTTPS gets no HTTP answer, so plain HTTP, as dockerd.
    let registry = OwnRegistry::start();
    push(&registry.address, None, "it/plain", "1").await;
    let client = tls_client(None, &[]);
    assert!(matches!(client.tag_state(&registry.address, "it/plain", "1").await, Ok(TagState::Present { .. })));
    assert_eq!(client.tag_state(&registry.address, "it/plain", "2").await.unwrap(), TagState::Absent);

    let ip = non_loopback_ipv4();
    let registry = OwnRegistry::start_on(ip.into(), None);
    push(&registry.address, None, "it/plain", "1").await;
    let state = tls_client(None, &[&registry.address]).tag_state(&registry.address, "it/plain", "1").await;
    assert!(matches!(state, Ok(TagState::Present { .. })), "{state:?}");
    // Not insecure: HTTPS only, and a server that does not speak TLS is an error.
    let err = tls_client(None, &[]).tag_state(&registry.address, "it/plain", "1").await.unwrap_err();
    assert!(err.message.starts_with(&format!("TLS error talking to {}: ", registry.address)), "{err}");
}

/// HTTPS in front of a wiremock server (which speaks plain HTTP only), on loopback, with `cert`: each request
/// read from a TLS connection is passed on over a connection of its own, and the answer sent back.
fn https_front(backend: SocketAddr, cert: &Cert) -> SocketAddr {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(&cert.cert).unwrap().collect::<Result<Vec<_>, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_file(&cert.key).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let config = config.clone();
            std::thread::spawn(move || {
                let Ok(connection) = rustls::ServerConnection::new(config) else { return };
                let mut tls = rustls::StreamOwned::new(connection, tcp);
                while let Some(request) = read_request(&mut tls) {
                    let mut answer = Vec::new();
                    let relayed = TcpStream::connect(backend)
                        .and_then(|mut upstream| {
                            upstream.write_all(&request).and_then(|()| upstream.read_to_end(&mut answer))
                        })
                        .and_then(|_| tls.write_all(&answer))
                        .and_then(|()| tls.flush());
                    if relayed.is_err() {
                        return;
                    }
                }
            });
        }
    });
    address
}

/// One HTTP/1.1 request, with `connection: close` so that the backend's answer ends with its connection.
fn read_request(stream: &mut impl std::io::Read) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).ok()?;
    let mut lines: Vec<&str> = head.trim_end().split("\r\n").collect();
    let header = |line: &str, name: &str| line.split_once(':').is_some_and(|(key, _)| key.eq_ignore_ascii_case(name));
    let length = lines
        .iter()
        .find(|line| header(line, "content-length"))
        .and_then(|line| line.split_once(':')?.1.trim().parse().ok())
        .unwrap_or(0);
    lines.retain(|line| !header(line, "connection"));
    let mut request = format!("{}\r\nconnection: close\r\n\r\n", lines.join("\r\n")).into_bytes();
    let mut body = vec![0; length];
    stream.read_exact(&mut body).ok()?;
    request.extend(body);
    Some(request)
}

/// The `authorization` headers of the requests `server` received.
async fn authorizations(server: &MockServer) -> Vec<String> {
    let requests = server.received_requests().await.expect("request recording");
    requests.iter().filter_map(|r| r.headers.get("authorization")?.to_str().ok().map(str::to_owned)).collect()
}

/// A manifest HEAD answered by a Bearer challenge for `realm`; and, with the token `tok`, by 200.
async fn mount_bearer_registry(server: &MockServer, realm: &str) {
    Mock::given(method("HEAD"))
        .and(path(MANIFEST_PATH))
        .and(bearer_token("tok"))
        .respond_with(ResponseTemplate::new(200).insert_header("docker-content-digest", "sha256:dd"))
        .with_priority(1)
        .mount(server)
        .await;
    let challenge = format!(r#"Bearer realm="{realm}",service="reg""#);
    Mock::given(method("HEAD"))
        .and(path(MANIFEST_PATH))
        .respond_with(ResponseTemplate::new(401).insert_header("www-authenticate", challenge.as_str()))
        .mount(server)
        .await;
}

#[tokio::test]
async fn an_https_realm_gets_the_credentials() {
    let certs = tempfile::tempdir().unwrap();
    let (registry_server, token_server) = (MockServer::start().await, MockServer::start().await);
    let front = https_front(*token_server.address(), &fixtures::self_signed(certs.path(), "realm", &["127.0.0.1"]));
    mount_bearer_registry(&registry_server, &format!("https://{front}/token")).await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .and(basic_auth("u", "p"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"token": "tok"})))
        .expect(1)
        .mount(&token_server)
        .await;
    let registry = registry_server.address().to_string();
    let state = client(&registry, Some(("u", "p")), None).tag_state(&registry, "ns/app", "1").await;
    assert_eq!(state.unwrap(), TagState::Present { digest: Some("sha256:dd".into()) });
}

#[tokio::test]
async fn an_http_realm_on_another_host_gets_no_credentials() {
    let (registry_server, token_server) = (MockServer::start().await, MockServer::start().await);
    // The registry is reached over plain HTTP at 127.0.0.1, the realm is another host name.
    let realm = format!("http://localhost:{}/token", token_server.address().port());
    mount_bearer_registry(&registry_server, &realm).await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"token": "tok"})))
        .expect(1)
        .mount(&token_server)
        .await;
    let registry = registry_server.address().to_string();
    // Anonymous pulls are allowed there: the check works without the credentials.
    let state = client(&registry, Some(("u", "p")), None).tag_state(&registry, "ns/app", "1").await;
    assert_eq!(state.unwrap(), TagState::Present { digest: Some("sha256:dd".into()) });
    assert_eq!(authorizations(&token_server).await, Vec::<String>::new());

    // Where they are not, the refusal says why.
    let token_server = MockServer::start().await;
    let realm = format!("http://localhost:{}/token", token_server.address().port());
    let registry_server = MockServer::start().await;
    mount_bearer_registry(&registry_server, &realm).await;
    Mock::given(method("GET")).and(path("/token")).respond_with(ResponseTemplate::new(401)).mount(&token_server).await;
    let registry = registry_server.address().to_string();
    let err = client(&registry, Some(("u", "p")), None).tag_state(&registry, "ns/app", "1").await.unwrap_err();
    assert_eq!(
        err.message,
        format!(
            "token endpoint {realm} refused access (401 Unauthorized) without credentials: the credentials for \
             {registry} were not sent to its token realm {realm}, as an http:// realm gets them only when the \
             registry itself is reached over plain HTTP and the realm is on the registry's host"
        )
    );
    assert_eq!(authorizations(&token_server).await, Vec::<String>::new());
}

#[tokio::test]
async fn an_http_realm_of_a_registry_reached_over_https_gets_no_credentials() {
    let certs = tempfile::tempdir().unwrap();
    let server = MockServer::start().await;
    // The registry answers HTTPS (through the front), its realm is plain HTTP on the same host.
    let front = https_front(*server.address(), &fixtures::self_signed(certs.path(), "registry", &["127.0.0.1"]));
    let realm = format!("{}/token", server.uri());
    mount_bearer_registry(&server, &realm).await;
    // An anonymous token that does not grant the pull.
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"token": "anonymous"})))
        .expect(1)
        .mount(&server)
        .await;
    let registry = front.to_string();
    let err = client(&registry, Some(("u", "p")), None).tag_state(&registry, "ns/app", "1").await.unwrap_err();
    assert_eq!(
        err.message,
        format!(
            "{registry} refused access (401 Unauthorized) without credentials: the credentials for {registry} were \
             not sent to its token realm {realm}, as an http:// realm gets them only when the registry itself is \
             reached over plain HTTP and the realm is on the registry's host"
        )
    );
    // The token request carried nothing; the registry got the anonymous token only.
    assert_eq!(authorizations(&server).await, ["Bearer anonymous"]);
}
