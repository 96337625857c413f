//! `.bmap` sidecars: which ranges of an image hold data, and their SHA-256.
//!
//! The writer writes only the mapped ranges (in order) and verifies each
//! against its checksum, on the source while reading and on the drive after.
//! A sidecar is checked when it arrives ([`validate_bmap`]): a bad one is
//! refused naming the line that is wrong, and nothing in it can panic the
//! parser later (bmap-parser unwraps and subtracts what a file says).

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

/// Checks a `.bmap` sidecar as it arrives: `Err` says what is wrong and on
/// which line ("line 12: range `40-30` ends before it starts").
pub fn validate_bmap(bytes: &[u8]) -> std::result::Result<(), String> {
    let xml = std::str::from_utf8(bytes).map_err(|e| {
        let line = line_of(&bytes[..e.valid_up_to()], e.valid_up_to());
        format!("line {line}: not UTF-8 text")
    })?;
    BlockMap::parse(xml).map(drop)
}

/// 1-based line of byte `at` in `text`.
fn line_of(text: &[u8], at: usize) -> usize {
    text[..at.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The text of the first `<tag>...</tag>` and its line.
fn element<'a>(xml: &'a str, tag: &str) -> Option<(&'a str, usize)> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some((xml[start..end].trim(), line_of(xml.as_bytes(), start)))
}

fn number(xml: &str, tag: &str) -> std::result::Result<u64, String> {
    let (text, line) = element(xml, tag).ok_or_else(|| format!("no <{tag}> element"))?;
    text.parse()
        .map_err(|_| format!("line {line}: <{tag}> `{text}` is not a whole number"))
}

/// One `<Range chksum="...">a-b</Range>`: its line, checksum and blocks.
struct RangeLine {
    line: usize,
    first: u64,
    last: u64,
}

/// The checks bmap-parser does not make (it would panic or wrap instead),
/// each with the line it concerns.
fn check_ranges(xml: &str) -> std::result::Result<Vec<RangeLine>, String> {
    let image_size = number(xml, "ImageSize")?;
    let block_size = number(xml, "BlockSize")?;
    if block_size == 0 {
        let line = element(xml, "BlockSize").map_or(1, |e| e.1);
        return Err(format!("line {line}: <BlockSize> is 0"));
    }
    let mut out = Vec::new();
    let mut rest = 0;
    while let Some(at) = xml[rest..].find("<Range") {
        let start = rest + at;
        let line = line_of(xml.as_bytes(), start);
        let Some(gt) = xml[start..].find('>') else {
            return Err(format!("line {line}: unterminated <Range"));
        };
        let tag = &xml[start..start + gt];
        let body_start = start + gt + 1;
        let Some(close) = xml[body_start..].find("</Range>") else {
            return Err(format!("line {line}: <Range> without </Range>"));
        };
        let body = xml[body_start..body_start + close].trim();
        rest = body_start + close;
        let bad = |why: String| format!("line {line}: range `{body}` {why}");
        let sum = tag
            .split("chksum=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or("");
        if sum.len() != 64 || !sum.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad("has no SHA-256 chksum (64 hex digits)".into()));
        }
        let parse = |s: &str| s.trim().parse::<u64>().ok();
        let (first, last) = match body.split_once('-') {
            Some((a, b)) => (parse(a), parse(b)),
            None => (parse(body), parse(body)),
        };
        let (Some(first), Some(last)) = (first, last) else {
            return Err(bad("is not `first-last` block numbers".into()));
        };
        if last < first {
            return Err(bad("ends before it starts".into()));
        }
        if first
            .checked_mul(block_size)
            .is_none_or(|o| o >= image_size)
        {
            return Err(bad(format!("starts past the image's {image_size} bytes")));
        }
        if (last - first)
            .checked_add(1)
            .and_then(|n| n.checked_mul(block_size))
            .is_none()
        {
            return Err(bad("is too long".into()));
        }
        if let Some(prev) = out.last().map(|r: &RangeLine| r.last)
            && first <= prev
        {
            return Err(bad("overlaps the range before it or is out of order".into()));
        }
        out.push(RangeLine { line, first, last });
    }
    Ok(out)
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
        let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read: {e}")))?;
        let xml = std::str::from_utf8(&bytes).map_err(|_| bad("not UTF-8 text".into()))?;
        BlockMap::parse(xml).map_err(bad)
    }

    /// Parses bmap XML; `Err` names the line that is wrong where it can.
    pub fn parse(xml: &str) -> std::result::Result<BlockMap, String> {
        let lines = check_ranges(xml)?;
        // Checked above for what it would panic on; caught anyway, so a
        // case not thought of fails this sidecar and not the job's thread.
        let parsed = std::panic::catch_unwind(|| bmap_parser::Bmap::from_xml(xml))
            .map_err(|_| "cannot parse (the bmap parser gave up)".to_string())?;
        let b = parsed.map_err(|e| format!("cannot parse: {e}"))?;
        let image_size = b.image_size();
        let mut ranges = Vec::with_capacity(b.block_map().len());
        let mut end = 0;
        for (i, r) in b.block_map().enumerate() {
            let at = lines.get(i).map_or_else(
                || format!("range at byte {}", r.offset()),
                |l| format!("line {}: range `{}-{}`", l.line, l.first, l.last),
            );
            let sha256: [u8; 32] = r
                .checksum()
                .as_slice()
                .try_into()
                .map_err(|_| format!("{at} has no SHA-256 checksum"))?;
            // The last block may extend past the image end: clip it.
            let len = r.length().min(image_size.saturating_sub(r.offset()));
            if r.offset() < end || len == 0 {
                return Err(format!("{at} overlaps or lies outside the image"));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn bmap(ranges: &str) -> String {
        format!(
            r#"<?xml version="1.0" ?>
<bmap version="2.0">
    <ImageSize> 16384 </ImageSize>
    <BlockSize> 4096 </BlockSize>
    <BlocksCount> 4 </BlocksCount>
    <MappedBlocksCount> 2 </MappedBlocksCount>
    <ChecksumType> sha256 </ChecksumType>
    <BmapFileChecksum> {zero} </BmapFileChecksum>
    <BlockMap>
{ranges}    </BlockMap>
</bmap>
"#,
            zero = "0".repeat(64)
        )
    }

    fn range(r: &str) -> String {
        format!(
            "        <Range chksum=\"{}\"> {r} </Range>\n",
            "ab".repeat(32)
        )
    }

    /// Issue 13, defect 10: bmap-parser unwraps the block numbers of a
    /// range, and the copy job's thread died on a malformed sidecar.
    #[test]
    fn a_malformed_bmap_sidecar_panics_the_copy_job() {
        let good = bmap(&(range("0") + &range("2-3")));
        assert!(validate_bmap(good.as_bytes()).is_ok());
        assert_eq!(BlockMap::parse(&good).unwrap().mapped_bytes(), 3 * 4096);
        for (r, why) in [
            (
                "x-2",
                "line 11: range `x-2` is not `first-last` block numbers",
            ),
            ("3-1", "line 11: range `3-1` ends before it starts"),
            (
                "9",
                "line 11: range `9` starts past the image's 16384 bytes",
            ),
            ("0", "line 11: range `0` overlaps the range before it"),
        ] {
            let xml = bmap(&(range("0") + &range(r)));
            let got = validate_bmap(xml.as_bytes()).unwrap_err();
            assert!(got.starts_with(why), "{r}: {got}");
        }
        let no_sum = bmap("        <Range> 0 </Range>\n");
        assert!(
            validate_bmap(no_sum.as_bytes())
                .unwrap_err()
                .contains("line 10")
        );
        assert!(validate_bmap(b"\xff\xfe").unwrap_err().contains("line 1"));
        assert!(validate_bmap(b"<bmap/>").is_err());
    }
}
