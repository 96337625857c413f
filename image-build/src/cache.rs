//! Reusing a built image: only when every input has the same content as when it was built.
//!
//! The image's freshness is never judged by modification times (a key file older than the image
//! is still a different key): beside `unit.img` lies `unit.img.inputs`, the SHA-256 of every
//! input's bytes (lock file, both binaries, authorized_keys or "none", unit.toml or "none",
//! SOURCE_DATE_EPOCH, and the builder itself), followed by the SHA-256 of each output. The image
//! is reused only when both match.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Result, io};
use crate::{Built, Inputs};

/// Bump when the meaning of the inputs changes (a new input, a new layout).
const FORMAT: &str = "copyunit image inputs v1";

/// `unit.img` -> `unit.img.inputs`.
pub fn stamp_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".inputs");
    out.with_file_name(name)
}

/// The kernel and initramfs `build` writes beside the image.
fn outputs(out: &Path) -> [PathBuf; 3] {
    let dir = out.parent().unwrap_or(Path::new("."));
    [
        out.to_path_buf(),
        dir.join("unit-vmlinuz"),
        dir.join("unit-initrd.img"),
    ]
}

fn hash_file(h: &mut Sha256, label: &str, path: Option<&Path>) -> Result<()> {
    h.update(label.as_bytes());
    h.update([0]);
    match path {
        Some(p) => {
            let bytes = std::fs::read(p).map_err(io("reading", p))?;
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(&bytes);
        }
        None => h.update(b"none"),
    }
    h.update([0]);
    Ok(())
}

/// SHA-256 of the content of every input of `inp`, plus `builder` files (the program that
/// builds: its code is an input too).
pub fn inputs_key(inp: &Inputs, builder: &[PathBuf]) -> Result<String> {
    let mut h = Sha256::new();
    h.update(FORMAT.as_bytes());
    h.update(inp.epoch.to_le_bytes());
    hash_file(&mut h, "lock", Some(&inp.lock))?;
    hash_file(&mut h, "init", Some(&inp.init))?;
    hash_file(&mut h, "unitd", Some(&inp.unitd))?;
    hash_file(&mut h, "authorized_keys", inp.authorized_keys.as_deref())?;
    hash_file(&mut h, "unit.toml", inp.unit_toml.as_deref())?;
    for b in builder {
        hash_file(&mut h, "builder", Some(b))?;
    }
    Ok(hex::encode(h.finalize()))
}

/// The stamp for `key` and the outputs as they are now; `None` if an output is missing.
fn stamp(key: &str, out: &Path) -> Option<String> {
    let mut s = format!("{key}\n");
    for o in outputs(out) {
        let bytes = std::fs::read(&o).ok()?;
        s.push_str(&format!(
            "{}  {}\n",
            hex::encode(Sha256::digest(&bytes)),
            file_name(&o)
        ));
    }
    Some(s)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Builds the image, or reuses the one at `inp.out` when it was built from inputs with the same
/// content and is unchanged since (`force`: always build). Returns what was built and whether it
/// was reused.
pub fn build_cached(inp: &Inputs, builder: &[PathBuf], force: bool) -> Result<(Built, bool)> {
    let key = inputs_key(inp, builder)?;
    let stamp_file = stamp_path(&inp.out);
    if !force
        && let Ok(recorded) = std::fs::read_to_string(&stamp_file)
        && stamp(&key, &inp.out).is_some_and(|now| now == recorded)
    {
        let [image, kernel, initrd] = outputs(&inp.out);
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        return Ok((
            Built {
                image_bytes: size(&image),
                initrd_bytes: size(&initrd),
                image,
                kernel,
                initrd,
                cmdline: crate::CMDLINE.to_string(),
                kernel_version: "(unchanged)".into(),
                modules: 0,
                inputs_key: key,
            },
            true,
        ));
    }
    // No stamp while building: a build that fails half-way is never taken for a good one.
    match std::fs::remove_file(&stamp_file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io("removing", &stamp_file)(e));
        }
        _ => {}
    }
    let mut built = crate::build(inp)?;
    built.inputs_key = key.clone();
    let s = stamp(&key, &inp.out).ok_or_else(|| {
        crate::Error::Layout("the build left no image, kernel or initramfs".into())
    })?;
    std::fs::write(&stamp_file, s).map_err(io("writing", &stamp_file))?;
    Ok((built, false))
}
