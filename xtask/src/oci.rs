//! Reproducible OCI images, assembled without a container runtime.
//!
//! Every byte is a function of the inputs: tar entries sorted, mtimes, uids
//! and user names zeroed, gzip with a fixed header (no name, mtime 0, OS
//! "unknown"), and JSON with sorted keys (oci-spec keeps labels in a
//! `HashMap`, whose order would otherwise change from run to run).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use oci_spec::image::{
    ConfigBuilder, Descriptor, DescriptorBuilder, Digest, HistoryBuilder, ImageConfigurationBuilder,
    ImageIndexBuilder, ImageManifestBuilder, MediaType, RootFsBuilder,
};
use sha2::{Digest as _, Sha256};

/// The user every image runs as (distroless' "nonroot").
pub const NONROOT_UID: u32 = 65532;

/// One file or directory of a layer.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path inside the image, relative (`etc/passwd`), no trailing slash.
    pub path: String,
    pub mode: u32,
    /// `None` for a directory.
    pub data: Option<Vec<u8>>,
}

impl Entry {
    pub fn dir(path: &str, mode: u32) -> Entry {
        Entry {
            path: path.to_string(),
            mode,
            data: None,
        }
    }
    pub fn file(path: &str, mode: u32, data: Vec<u8>) -> Entry {
        Entry {
            path: path.to_string(),
            mode,
            data: Some(data),
        }
    }
}

/// Content with its digest, as stored under `blobs/sha256/`.
#[derive(Debug, Clone)]
pub struct Blob {
    pub media_type: MediaType,
    pub data: Vec<u8>,
    /// `sha256:<hex>`.
    pub digest: String,
}

impl Blob {
    fn new(media_type: MediaType, data: Vec<u8>) -> Blob {
        let digest = sha256(&data);
        Blob {
            media_type,
            data,
            digest,
        }
    }
    fn descriptor(&self) -> Result<Descriptor> {
        Ok(DescriptorBuilder::default()
            .media_type(self.media_type.clone())
            .digest(parse_digest(&self.digest)?)
            .size(self.data.len() as u64)
            .build()?)
    }
}

/// A gzip-compressed layer and the digest of its uncompressed tar.
#[derive(Debug, Clone)]
pub struct Layer {
    pub blob: Blob,
    pub diff_id: String,
    /// What the layer is, for the config's history.
    pub created_by: String,
}

pub fn sha256(data: &[u8]) -> String {
    let hash = Sha256::digest(data);
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in hash {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn parse_digest(d: &str) -> Result<Digest> {
    d.parse::<Digest>().with_context(|| format!("bad digest {d}"))
}

/// A tar of `entries` (sorted by path; parents must be listed), gzipped.
pub fn layer(mut entries: Vec<Entry>, created_by: &str) -> Result<Layer> {
    entries.sort_by(|a, b| a.path.split('/').cmp(b.path.split('/')));
    for pair in entries.windows(2) {
        if pair[0].path == pair[1].path {
            bail!("layer '{created_by}': {} is listed twice", pair[0].path);
        }
    }
    let tar = tar_of(&entries)?;
    let diff_id = sha256(&tar);
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), flate2::Compression::best());
    gz.write_all(&tar)?;
    let compressed = gz.finish()?;
    Ok(Layer {
        blob: Blob::new(MediaType::ImageLayerGzip, compressed),
        diff_id,
        created_by: created_by.to_string(),
    })
}

/// An uncompressed tar with zeroed owners and times.
fn tar_of(entries: &[Entry]) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for e in entries {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mode(e.mode);
        match &e.data {
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                builder
                    .append_data(&mut header, format!("{}/", e.path), std::io::empty())
                    .with_context(|| format!("tar entry {}", e.path))?;
            }
            Some(data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(data.len() as u64);
                builder
                    .append_data(&mut header, &e.path, data.as_slice())
                    .with_context(|| format!("tar entry {}", e.path))?;
            }
        }
    }
    Ok(builder.into_inner()?)
}

/// What goes into an image besides its layers.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// `amd64`, `arm64`.
    pub architecture: String,
    pub entrypoint: Vec<String>,
    pub env: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// RFC 3339, UTC.
    pub created: String,
    /// The tag written into index.json's `org.opencontainers.image.ref.name`.
    pub tag: String,
}

/// An assembled image: manifest, config and layers.
#[derive(Debug, Clone)]
pub struct Image {
    pub manifest: Blob,
    pub config: Blob,
    pub layers: Vec<Layer>,
    pub tag: String,
}

impl Image {
    /// The manifest digest: what a registry reports and what manifests pin.
    pub fn digest(&self) -> &str {
        &self.manifest.digest
    }

    /// Bytes a pull transfers (manifest, config, compressed layers).
    pub fn compressed_size(&self) -> u64 {
        (self.manifest.data.len()
            + self.config.data.len()
            + self.layers.iter().map(|l| l.blob.data.len()).sum::<usize>()) as u64
    }

    /// Writes the image as an `oci-archive` (a tar of an OCI image layout).
    pub fn write_oci_archive(&self, path: &Path) -> Result<()> {
        let index = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(vec![{
                let mut d = self.manifest.descriptor()?;
                d.set_annotations(Some(
                    [("org.opencontainers.image.ref.name".to_string(), self.tag.clone())].into(),
                ));
                d
            }])
            .build()?;
        let mut entries = vec![
            Entry::file("oci-layout", 0o644, br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
            Entry::file("index.json", 0o644, canonical_json(&index)?),
            Entry::dir("blobs", 0o755),
            Entry::dir("blobs/sha256", 0o755),
        ];
        let blobs = std::iter::once(&self.manifest)
            .chain(std::iter::once(&self.config))
            .chain(self.layers.iter().map(|l| &l.blob));
        for blob in blobs {
            let hex = blob.digest.trim_start_matches("sha256:");
            let path = format!("blobs/sha256/{hex}");
            // Two layers with the same content are one blob.
            if !entries.iter().any(|e| e.path == path) {
                entries.push(Entry::file(&path, 0o644, blob.data.clone()));
            }
        }
        entries.sort_by(|a, b| a.path.split('/').cmp(b.path.split('/')));
        let tar = tar_of(&entries)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(path, tar).with_context(|| format!("writing {}", path.display()))
    }
}

/// Builds config and manifest over `layers` (bottom first).
pub fn image(spec: &ImageSpec, layers: Vec<Layer>) -> Result<Image> {
    let labels: std::collections::HashMap<String, String> =
        spec.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let config = ConfigBuilder::default()
        .user(format!("{NONROOT_UID}:{NONROOT_UID}"))
        .entrypoint(spec.entrypoint.clone())
        .env(spec.env.clone())
        .working_dir("/".to_string())
        .labels(labels)
        .build()?;
    let history = layers
        .iter()
        .map(|l| {
            HistoryBuilder::default()
                .created(spec.created.clone())
                .created_by(l.created_by.clone())
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let configuration = ImageConfigurationBuilder::default()
        .created(spec.created.clone())
        .architecture(spec.architecture.as_str())
        .os("linux")
        .config(config)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers".to_string())
                .diff_ids(layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>())
                .build()?,
        )
        .history(history)
        .build()?;
    let config = Blob::new(MediaType::ImageConfig, canonical_json(&configuration)?);
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config.descriptor()?)
        .layers(
            layers
                .iter()
                .map(|l| l.blob.descriptor())
                .collect::<Result<Vec<_>>>()?,
        )
        .build()?;
    let manifest = Blob::new(MediaType::ImageManifest, canonical_json(&manifest)?);
    Ok(Image {
        manifest,
        config,
        layers,
        tag: spec.tag.clone(),
    })
}

/// JSON with object keys sorted at every level.
pub fn canonical_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    fn sort(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sort(v))).collect())
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.into_iter().map(sort).collect())
            }
            other => other,
        }
    }
    Ok(serde_json::to_vec(&sort(serde_json::to_value(value)?))?)
}

/// `1970-01-01T00:00:00Z` style UTC time for a Unix timestamp.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ImageSpec {
        ImageSpec {
            architecture: "amd64".into(),
            entrypoint: vec!["/app".into()],
            env: vec!["PATH=/".into()],
            labels: [
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), "2".to_string()),
            ]
            .into(),
            created: rfc3339(0),
            tag: "0.1.0".into(),
        }
    }

    fn sample() -> Image {
        let base = layer(
            vec![
                Entry::file("etc/passwd", 0o644, b"x\n".to_vec()),
                Entry::dir("etc", 0o755),
            ],
            "base",
        )
        .unwrap();
        let app = layer(vec![Entry::file("app", 0o755, vec![1, 2, 3])], "app").unwrap();
        image(&spec(), vec![base, app]).unwrap()
    }

    #[test]
    fn same_inputs_same_digest() {
        let (a, b) = (sample(), sample());
        assert_eq!(a.digest(), b.digest());
        assert_eq!(a.config.data, b.config.data);
        let mut other = spec();
        other.labels.insert("c".into(), "3".into());
        let app = layer(vec![Entry::file("app", 0o755, vec![1, 2, 3])], "app").unwrap();
        assert_ne!(image(&other, vec![app]).unwrap().digest(), a.digest());
    }

    #[test]
    fn tar_entries_sorted_and_zeroed() {
        let l = layer(
            vec![
                Entry::file("etc/ssl/certs/ca.crt", 0o644, b"c".to_vec()),
                Entry::dir("etc/ssl/certs", 0o755),
                Entry::dir("etc/ssl", 0o755),
                Entry::file("etc/passwd", 0o644, b"p".to_vec()),
                Entry::dir("etc", 0o755),
            ],
            "t",
        )
        .unwrap();
        let tar = flate2::read::GzDecoder::new(l.blob.data.as_slice());
        let mut archive = tar::Archive::new(tar);
        let mut seen = Vec::new();
        for e in archive.entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            assert_eq!(
                (h.mtime().unwrap(), h.uid().unwrap(), h.gid().unwrap()),
                (0, 0, 0)
            );
            seen.push(e.path().unwrap().to_string_lossy().into_owned());
        }
        assert_eq!(
            seen,
            [
                "etc/",
                "etc/passwd",
                "etc/ssl/",
                "etc/ssl/certs/",
                "etc/ssl/certs/ca.crt"
            ]
        );
    }

    #[test]
    fn duplicate_entry_is_an_error() {
        let err = layer(vec![Entry::dir("etc", 0o755), Entry::dir("etc", 0o755)], "dup").unwrap_err();
        assert!(err.to_string().contains("etc is listed twice"), "{err}");
    }

    #[test]
    fn config_carries_user_labels_and_diff_ids() {
        let img = sample();
        let config: serde_json::Value = serde_json::from_slice(&img.config.data).unwrap();
        assert_eq!(config["config"]["User"], "65532:65532");
        assert_eq!(config["config"]["Labels"]["b"], "2");
        assert_eq!(config["rootfs"]["diff_ids"][1], img.layers[1].diff_id);
        let manifest: serde_json::Value = serde_json::from_slice(&img.manifest.data).unwrap();
        assert_eq!(manifest["config"]["digest"], img.config.digest);
        assert_eq!(manifest["layers"][0]["size"], img.layers[0].blob.data.len());
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_764_237_462), "2025-11-27T09:57:42Z");
    }
}
