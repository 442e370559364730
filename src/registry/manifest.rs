//! Manifests as multi-platform publishing needs them: what a tag holds (one image, or an index of images per
//! platform), and the index imgraph writes: a Docker manifest list when every image is a Docker manifest, as
//! the daemon pushes them, else an OCI image index.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The platform of an index entry or an image config, as the registry has it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ManifestPlatform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl std::fmt::Display for ManifestPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(variant) => write!(f, "/{variant}"),
            None => Ok(()),
        }
    }
}

/// A manifest as an index lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<ManifestPlatform>,
}

/// What a tag points to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagContent {
    /// One image, with the platform its config names.
    Image { digest: String, platform: ManifestPlatform },
    /// An index (or manifest list) of images; entries without a platform are left out.
    Index { digest: String, manifests: Vec<Descriptor> },
}

/// The parts of a manifest or index this module reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawManifest {
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    pub config: Option<RawConfigDescriptor>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawConfigDescriptor {
    pub digest: String,
}

/// The parts of an image config this module reads.
#[derive(Debug, Deserialize)]
pub(super) struct RawImageConfig {
    pub os: String,
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

/// The index listing `manifests`, and its media type: a Docker manifest list when they are all Docker image
/// manifests, else an OCI index. Entries are in the order given.
pub fn index(manifests: &[Descriptor]) -> (&'static str, Vec<u8>) {
    let docker = manifests.iter().all(|m| m.media_type == DOCKER_MANIFEST);
    let media_type = if docker { DOCKER_LIST } else { OCI_INDEX };
    let body = serde_json::json!({ "schemaVersion": 2, "mediaType": media_type, "manifests": manifests });
    // Serialising a JSON value of strings and numbers cannot fail.
    let bytes = serde_json::to_vec_pretty(&body).unwrap_or_default();
    (media_type, bytes)
}

/// `sha256:<hex>` of `bytes`: a manifest's digest when the registry does not say it.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Whether `media_type` is an index or manifest list.
pub fn is_index(media_type: &str) -> bool {
    media_type == DOCKER_LIST || media_type == OCI_INDEX
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor(media_type: &str, architecture: &str, variant: Option<&str>) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            size: 528,
            platform: Some(ManifestPlatform {
                os: "linux".into(),
                architecture: architecture.into(),
                variant: variant.map(str::to_owned),
            }),
        }
    }

    #[test]
    fn an_index_of_docker_manifests_is_a_manifest_list() {
        let manifests = [descriptor(DOCKER_MANIFEST, "amd64", None), descriptor(DOCKER_MANIFEST, "arm64", Some("v8"))];
        let (media_type, bytes) = index(&manifests);
        assert_eq!(media_type, DOCKER_LIST);
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["schemaVersion"], 2);
        assert_eq!(value["mediaType"], DOCKER_LIST);
        assert_eq!(
            value["manifests"][1]["platform"],
            serde_json::json!({"os": "linux", "architecture": "arm64", "variant": "v8"})
        );
        assert_eq!(value["manifests"][0]["platform"], serde_json::json!({"os": "linux", "architecture": "amd64"}));
        let parsed: RawManifest = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(parsed.manifests.unwrap(), manifests);
    }

    #[test]
    fn an_oci_manifest_makes_an_oci_index() {
        let (media_type, _) =
            index(&[descriptor(DOCKER_MANIFEST, "amd64", None), descriptor(OCI_MANIFEST, "arm64", None)]);
        assert_eq!(media_type, OCI_INDEX);
        assert!(is_index(OCI_INDEX) && is_index(DOCKER_LIST) && !is_index(DOCKER_MANIFEST));
    }

    #[test]
    fn digests_are_sha256_of_the_bytes() {
        assert_eq!(digest_of(b""), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
