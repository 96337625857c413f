//! `.bmap` sidecars: which ranges of an image hold data, and their SHA-256.
//!
//! The writer writes only the mapped ranges (in order) and verifies each
//! against its checksum, on the source while reading and on the drive after.

use std::path::Path;

use crate::error::{Error, Result};

/// A mapped byte range of the image and its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedRange {
    pub offset: u64,
    pub len: u64,
    pub sha256: [u8; 32],
}

/// A parsed bmap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockMap {
    pub image_size: u64,
    pub ranges: Vec<MappedRange>,
}

impl BlockMap {
    /// Bytes that will be written.
    pub fn mapped_bytes(&self) -> u64 {
        self.ranges.iter().map(|r| r.len).sum()
    }

    /// Reads and checks a `.bmap` file (bmap format 2, SHA-256 checksums).
    pub fn load(path: &Path) -> Result<BlockMap> {
        let bad = |detail: String| Error::Bmap {
            path: path.to_owned(),
            detail,
        };
        let xml = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read: {e}")))?;
        let b = bmap_parser::Bmap::from_xml(&xml).map_err(|e| bad(format!("cannot parse: {e}")))?;
        let image_size = b.image_size();
        let mut ranges = Vec::with_capacity(b.block_map().len());
        let mut end = 0;
        for r in b.block_map() {
            let sha256: [u8; 32] = r.checksum().as_slice().try_into().map_err(|_| {
                bad(format!(
                    "range at byte {} has no SHA-256 checksum",
                    r.offset()
                ))
            })?;
            // The last block may extend past the image end: clip it.
            let len = r.length().min(image_size.saturating_sub(r.offset()));
            if r.offset() < end || len == 0 {
                return Err(bad(format!(
                    "range at byte {} overlaps or lies outside the image",
                    r.offset()
                )));
            }
            end = r.offset() + len;
            ranges.push(MappedRange {
                offset: r.offset(),
                len,
                sha256,
            });
        }
        Ok(BlockMap { image_size, ranges })
    }
}
