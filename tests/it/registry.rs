//! The registry client: tag existence against the real registries of `with-test-env.sh` (plain and htpasswd),
//! and, with wiremock, what a real registry will not do on demand (Bearer tokens, 429, 5xx, no digest header).

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use imgraph::config::Config;
use imgraph::registry::{ClientOptions, Credentials, RegistryClient, RetryPolicy, TagState};
use sha2::{Digest as _, Sha256};
use wiremock::matchers::{basic_auth, bearer_token, headers, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::test_env;

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
    let empty = tempfile::tempdir().expect("temp dir");
    let options = ClientOptions {
        retry: RetryPolicy { tries: 3, first_delay: Duration::from_millis(10), max_delay: Duration::from_millis(50) },
        docker_config_dir: Some(docker_config.unwrap_or(empty.path()).to_owned()),
        ..ClientOptions::from_env()
    };
    RegistryClient::with_options(&config, options).expect("client")
}

/// Pushes a config-only OCI image `name:tag` over the registry API; returns the manifest digest.
async fn push(registry: &str, auth: Option<(&str, &str)>, name: &str, tag: &str) -> String {
    let http = reqwest::Client::new();
    let with_auth = |request: reqwest::RequestBuilder| match auth {
        Some((user, password)) => request.basic_auth(user, Some(password)),
        None => request,
    };
    let sha256 = |bytes: &[u8]| format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
    let base = reqwest::Url::parse(&format!("http://{registry}/")).expect("registry url");

    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
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
