//! Sidecar files that travel with images: checksums and block maps.
//!
//! `foo.img.sha256` (a bare hash or `sha256sum` output) and `SHA256SUMS`
//! (many lines) say what an image's SHA-256 should be; `foo.img.bmap` (or
//! `foo.bmap` for `foo.img.xz`) is bmaptool's block map. They are stored like
//! any file but not listed as images.

/// What a stored file is, judged by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileRole {
    Image,
    /// Checksums for one or more images.
    Checksums,
    /// A bmaptool block map.
    Bmap,
}

impl FileRole {
    pub fn of(name: &str) -> FileRole {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".sha256")
            || lower.ends_with(".sha256sum")
            || lower == "sha256sums"
            || lower.ends_with(".sha256sums")
            || lower == "sha256sums.txt"
        {
            FileRole::Checksums
        } else if lower.ends_with(".bmap") {
            FileRole::Bmap
        } else {
            FileRole::Image
        }
    }
}

/// Checks a sidecar's content as it arrives, before it is published: a
/// `.bmap` must be one the writer can use, or it is refused naming the line
/// that is wrong (and the file is removed, so nothing half-valid stays).
/// Other files pass.
pub fn check_content(name: &str, file: &std::path::Path) -> std::io::Result<()> {
    if FileRole::of(name) != FileRole::Bmap {
        return Ok(());
    }
    let bytes = std::fs::read(file)?;
    copyunit_drives::validate_bmap(&bytes).map_err(|e| {
        let _ = std::fs::remove_file(file);
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not a usable bmap, refused: {e}"),
        )
    })
}

/// One claim from a checksum file: `name` should hash to `sha256`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub name: String,
    pub sha256: String,
}

/// Parses `sha256sum` output (`HASH  name`, `HASH *name`), BSD style
/// (`SHA256 (name) = HASH`), or a bare hash. A bare hash (or a line whose name
/// is missing) is a claim about `default_name`: the checksum file's own name
/// without its `.sha256` suffix. Unparseable lines are skipped.
pub fn parse_checksums(text: &str, default_name: Option<&str>) -> Vec<Claim> {
    let mut claims = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("SHA256 (") {
            if let Some((name, hash)) = rest.rsplit_once(") = ")
                && is_sha256(hash.trim())
            {
                claims.push(Claim {
                    name: name.to_string(),
                    sha256: hash.trim().to_ascii_lowercase(),
                });
            }
            continue;
        }
        let (hash, name) = match line.split_once(char::is_whitespace) {
            Some((h, n)) => (h, n.trim_start().trim_start_matches('*').trim()),
            None => (line, ""),
        };
        if !is_sha256(hash) {
            continue;
        }
        let name = if name.is_empty() {
            match default_name {
                Some(d) => d,
                None => continue,
            }
        } else {
            // Checksum files often name paths (`./x.iso`, `images/x.iso`).
            name.rsplit('/').next().unwrap_or(name)
        };
        claims.push(Claim {
            name: name.to_string(),
            sha256: hash.to_ascii_lowercase(),
        });
    }
    claims
}

/// The image a checksum or bmap file named `sidecar` belongs to by default.
pub fn default_subject(sidecar: &str) -> Option<String> {
    let lower = sidecar.to_ascii_lowercase();
    for suffix in [".sha256sum", ".sha256", ".bmap"] {
        if lower.ends_with(suffix) && sidecar.len() > suffix.len() {
            return Some(sidecar[..sidecar.len() - suffix.len()].to_string());
        }
    }
    None
}

/// True when a bmap sidecar `bmap` belongs to `image`: `x.img.bmap` for
/// `x.img`, and for a compressed `x.img.xz` also `x.img.bmap` and `x.bmap`.
pub fn bmap_matches(bmap: &str, image: &str) -> bool {
    let Some(stem) = default_subject(bmap) else {
        return false;
    };
    if stem == image {
        return true;
    }
    let mut base = image;
    for ext in [".xz", ".gz", ".zst", ".bz2", ".zip"] {
        if let Some(b) = image.strip_suffix(ext) {
            base = b;
        }
    }
    stem == base || base.rsplit_once('.').is_some_and(|(b, _)| b == stem)
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    const H: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn roles_follow_names() {
        assert_eq!(FileRole::of("debian.iso"), FileRole::Image);
        assert_eq!(FileRole::of("debian.iso.sha256"), FileRole::Checksums);
        assert_eq!(FileRole::of("SHA256SUMS"), FileRole::Checksums);
        assert_eq!(FileRole::of("pi.img.bmap"), FileRole::Bmap);
    }

    #[test]
    fn sha256sum_bsd_and_bare_formats_parse() {
        let text = format!("{H}  a.iso\n{H} *b.img\nSHA256 (c.img) = {H}\n# comment\ngarbage\n");
        let names: Vec<_> = parse_checksums(&text, None)
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, ["a.iso", "b.img", "c.img"]);
        let bare = parse_checksums(&format!("{}\n", H.to_uppercase()), Some("x.iso"));
        assert_eq!(
            bare,
            vec![Claim {
                name: "x.iso".into(),
                sha256: H.into()
            }]
        );
        assert_eq!(
            parse_checksums(&format!("{H}  ./dir/x.iso"), None)[0].name,
            "x.iso"
        );
    }

    #[test]
    fn sidecars_find_their_images() {
        assert_eq!(default_subject("x.iso.sha256").as_deref(), Some("x.iso"));
        assert!(bmap_matches("pi.img.bmap", "pi.img"));
        assert!(bmap_matches("pi.img.bmap", "pi.img.xz"));
        assert!(bmap_matches("pi.bmap", "pi.img.xz"));
        assert!(!bmap_matches("other.bmap", "pi.img"));
    }
}
