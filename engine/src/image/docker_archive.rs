//! `docker save` and `skopeo copy ... docker-archive:` tarballs. The tarball's members are
//! indexed once (name, offset, size; symlinks between members followed inside it) and read
//! in place. One that holds an OCI layout (`docker save` since Docker 25) is read as one;
//! otherwise its `manifest.json` names the config and the layers, which are uncompressed
//! tars whose digests are the config's `diff_ids`. Such an image has no manifest of its
//! own: hermetic derives the OCI manifest a registry would hold for it (uncompressed
//! layers, fields in the order the OCI Go types write them), whose digest is the stored
//! image's identity.
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::BorrowedFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{ImageError, Refusal, Rule};
use super::import::{Blobs, Plan};
use super::layout::{self, LayoutBlobs, LayoutFiles};
use super::limits::ImageLimits;
use super::reference::{ImageDigest, Resolution};
use super::spec::{self, Config, Descriptor, Manifest};

const SOURCE: &str = "docker-archive";
/// Symlinks followed to reach one member.
const MAX_LINK_HOPS: usize = 8;

/// A tarball's members, indexed.
pub(super) struct DockerArchive {
    file: File,
    path: PathBuf,
    /// Regular files: data offset and size.
    files: BTreeMap<String, (u64, u64)>,
    /// Symlinks: their targets, as written.
    links: BTreeMap<String, String>,
}

/// A member's bytes, read in place.
struct MemberReader<'a> {
    file: &'a File,
    position: u64,
    end: u64,
}

impl Read for MemberReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.end - self.position).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.position)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the tarball ends inside a member",
            ));
        }
        self.position += n as u64;
        Ok(n)
    }
}

impl DockerArchive {
    pub(super) fn open(path: &Path, limits: &ImageLimits) -> Result<Self, ImageError> {
        let read_error = |source| ImageError::ReadSource {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(read_error)?;
        let mut files = BTreeMap::new();
        let mut links = BTreeMap::new();
        {
            let mut archive = tar::Archive::new(&file);
            for (count, member) in archive.entries().map_err(read_error)?.enumerate() {
                if count as u64 >= limits.max_entries {
                    return Err(ImageError::Refused {
                        image: format!("in {}", path.display()),
                        refusal: Refusal::new(
                            Rule::Limit,
                            None,
                            format!("more than {} members in the tarball", limits.max_entries),
                        ),
                    });
                }
                let member = member.map_err(|source| {
                    ImageError::Usage(format!(
                        "{} is not a tar archive (a compressed one must be decompressed first): {source}",
                        path.display()
                    ))
                })?;
                let name = normalize(&String::from_utf8_lossy(&member.path_bytes()));
                match member.header().entry_type() {
                    tar::EntryType::Regular => {
                        files.insert(name, (member.raw_file_position(), member.size()));
                    }
                    tar::EntryType::Symlink => {
                        if let Some(target) = member.link_name_bytes() {
                            links.insert(name, String::from_utf8_lossy(&target).into_owned());
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(Self {
            file,
            path: path.to_owned(),
            files,
            links,
        })
    }

    /// The regular file `path` names, following symlinks inside the tarball.
    fn resolve(&self, path: &str) -> Option<(u64, u64)> {
        let mut path = normalize(path);
        for _ in 0..MAX_LINK_HOPS {
            if let Some(&found) = self.files.get(&path) {
                return Some(found);
            }
            let target = self.links.get(&path)?;
            let base = path.rsplit_once('/').map_or("", |(dir, _)| dir);
            path = join_relative(base, target)?;
        }
        None
    }

    /// Resolves the tarball's image to the manifest to unpack, and where its blobs are.
    pub(super) fn plan(
        &self,
        tag: Option<&str>,
        limits: &ImageLimits,
    ) -> Result<(Plan, Box<dyn Blobs + '_>), ImageError> {
        let shown = self.path.display().to_string();
        if self.resolve("index.json").is_some() && self.resolve("oci-layout").is_some() {
            let plan = layout::plan(self, tag, &shown, SOURCE, limits)?;
            return Ok((plan, Box::new(LayoutBlobs(self))));
        }
        self.plan_legacy(tag, &shown, limits)
    }

    fn plan_legacy(
        &self,
        tag: Option<&str>,
        shown: &str,
        limits: &ImageLimits,
    ) -> Result<(Plan, Box<dyn Blobs + '_>), ImageError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Saved {
            config: String,
            #[serde(default)]
            repo_tags: Option<Vec<String>>,
            layers: Vec<String>,
        }
        let refused = |refusal: Refusal| ImageError::Refused {
            image: format!("in {shown}"),
            refusal,
        };
        let listing = layout::read_small(self, "manifest.json", shown, limits)?;
        let saved: Vec<Saved> = serde_json::from_slice(&listing)
            .map_err(|error| refused(Refusal::document("manifest.json", error.to_string())))?;
        let tags_of = |image: &Saved| image.repo_tags.clone().unwrap_or_default();
        let chosen: Vec<&Saved> = saved
            .iter()
            .filter(|image| match tag {
                None => true,
                Some(tag) => tags_of(image).iter().any(|name| {
                    name == tag || name.rsplit_once(':').is_some_and(|(_, t)| t == tag)
                }),
            })
            .collect();
        let image = match chosen.as_slice() {
            [one] => *one,
            [] if tag.is_some() => {
                return Err(ImageError::Usage(format!(
                    "{shown} has no image tagged {:?}",
                    tag.unwrap_or_default()
                )))
            }
            [] => {
                return Err(refused(Refusal::document(
                    "manifest.json",
                    "it lists no image",
                )))
            }
            _ => {
                return Err(ImageError::Usage(format!(
                    "{shown} holds several images: name one with --tag"
                )))
            }
        };
        let config_bytes = layout::read_small(self, &image.config, shown, limits)?;
        let config = Config::parse(&config_bytes).map_err(refused)?;
        if config.rootfs.diff_ids.len() != image.layers.len() {
            return Err(refused(Refusal::document(
                "manifest.json",
                format!(
                    "{} layers for the config's {} diff_ids",
                    image.layers.len(),
                    config.rootfs.diff_ids.len()
                ),
            )));
        }
        let config_digest = ImageDigest::of(&config_bytes);
        let mut paths = BTreeMap::from([(config_digest.clone(), image.config.clone())]);
        let mut layers = Vec::new();
        for (path, diff_id) in image.layers.iter().zip(&config.rootfs.diff_ids) {
            let (_, size) = self.resolve(path).ok_or_else(|| {
                refused(Refusal::document(
                    path,
                    "a layer manifest.json names is missing",
                ))
            })?;
            paths.insert(diff_id.clone(), path.clone());
            layers.push(DerivedDescriptor {
                media_type: spec::OCI_LAYER_TAR,
                digest: diff_id.to_string(),
                size,
            });
        }
        let derived = DerivedManifest {
            schema_version: 2,
            media_type: spec::OCI_MANIFEST,
            config: DerivedDescriptor {
                media_type: spec::OCI_CONFIG,
                digest: config_digest.to_string(),
                size: config_bytes.len() as u64,
            },
            layers,
        };
        let manifest_bytes = serde_json::to_vec(&derived).expect("a manifest serializes");
        let manifest: Manifest =
            serde_json::from_slice(&manifest_bytes).expect("the derived manifest is a manifest");
        let digest = ImageDigest::of(&manifest_bytes);
        let plan = Plan {
            manifest_bytes,
            manifest_digest: digest.clone(),
            media_type: spec::OCI_MANIFEST.to_owned(),
            manifest,
            resolution: Resolution {
                reference: match tag {
                    Some(tag) => format!("{shown}:{tag}"),
                    None => shown.to_owned(),
                },
                tag: tag.map(str::to_owned),
                resolved: digest.clone(),
                manifest: digest,
            },
            source: SOURCE,
        };
        Ok((
            plan,
            Box::new(SavedBlobs {
                archive: self,
                paths,
            }),
        ))
    }
}

impl LayoutFiles for DockerArchive {
    fn open_file(&self, path: &str) -> Result<Option<Box<dyn Read + '_>>, ImageError> {
        Ok(self.resolve(path).map(|(offset, size)| {
            Box::new(MemberReader {
                file: &self.file,
                position: offset,
                end: offset + size,
            }) as Box<dyn Read>
        }))
    }
}

/// A legacy tarball's blobs, by the digest the derived manifest gives them.
struct SavedBlobs<'a> {
    archive: &'a DockerArchive,
    paths: BTreeMap<ImageDigest, String>,
}

impl Blobs for SavedBlobs<'_> {
    fn open(
        &self,
        descriptor: &Descriptor,
        _scratch: BorrowedFd<'_>,
    ) -> Result<Box<dyn Read + '_>, ImageError> {
        let path = self.paths.get(&descriptor.digest);
        path.and_then(|path| self.archive.open_file(path).transpose())
            .transpose()?
            .ok_or_else(|| ImageError::Refused {
                image: descriptor.digest.to_string(),
                refusal: Refusal::document("manifest.json", "a blob it names is missing"),
            })
    }
}

/// The OCI manifest of a legacy tarball's image, fields in the OCI Go types' order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DerivedManifest {
    schema_version: u32,
    media_type: &'static str,
    config: DerivedDescriptor,
    layers: Vec<DerivedDescriptor>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DerivedDescriptor {
    media_type: &'static str,
    digest: String,
    size: u64,
}

/// A member name without a leading `./` or `/` and trailing `/`.
fn normalize(name: &str) -> String {
    let name = name.trim_start_matches("./").trim_start_matches('/');
    name.trim_end_matches('/').to_owned()
}

/// `target` resolved against directory `base` inside the tarball; None when it climbs out.
fn join_relative(base: &str, target: &str) -> Option<String> {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        base.split('/').filter(|part| !part.is_empty()).collect()
    };
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_between_members_resolve_inside_the_tarball() {
        assert_eq!(
            join_relative("abc", "../blobs/sha256/x").as_deref(),
            Some("blobs/sha256/x")
        );
        assert_eq!(join_relative("", "../x"), None);
        assert_eq!(normalize("./a/b/"), "a/b");
    }
}
