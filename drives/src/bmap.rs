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

/// The checks bmap-parser does not make (it would panic or wrap instead),
/// each with the line it concerns.
fn check_ranges(xml: &str) -> std::result::Result<(), String> {
    let image_size = number(xml, "ImageSize")?;
    let block_size = number(xml, "BlockSize")?;
    if block_size == 0 {
        let line = element(xml, "BlockSize").map_or(1, |e| e.1);
        return Err(format!("line {line}: <BlockSize> is 0"));
    }
    let mut prev_last: Option<u64> = None;
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
        if let Some(prev) = prev_last
            && first <= prev
        {
            return Err(bad("overlaps the range before it or is out of order".into()));
        }
        prev_last = Some(last);
    }
    Ok(())
}

impl BlockMap {
    /// Bytes that will be written.
    pub fn mapped_bytes(&self) -> u64 {
        self.ranges.iter().map(|r| r.len).sum()
    }

    /// Reads and checks a `.bmap` file (bmap format 2, SHA-256 checksums).
    pub fn load(path: &Path) -> Result<BlockMap> {
        let xml = std::fs::read_to_string(path).map_err(|e| Error::Bmap {
            path: path.to_owned(),
            detail: format!("cannot read: {e}"),
        })?;
        BlockMap::parse(&xml).map_err(|detail| Error::Bmap {
            path: path.to_owned(),
            detail,
        })
    }

    /// Parses and checks the text of a `.bmap` file. The file comes with
    /// the image (a client uploads it), so every number is checked: nothing
    /// in it can panic or wrap.
    pub fn parse(xml: &str) -> std::result::Result<BlockMap, String> {
        // First the checks that can name the line that is wrong.
        check_ranges(xml)?;
        let b: xml::Bmap =
            quick_xml::de::from_str(xml).map_err(|e| format!("cannot parse: {e}"))?;
        if !b.checksum_type.trim().eq_ignore_ascii_case("sha256") {
            return Err(format!(
                "checksum type `{}`: only sha256 bmaps (format 2) are supported",
                b.checksum_type.trim()
            ));
        }
        let number = |what: &str, text: &str| -> std::result::Result<u64, String> {
            text.trim()
                .parse()
                .map_err(|_| format!("{what} `{}` is not a number", text.trim()))
        };
        let image_size = number("ImageSize", &b.image_size)?;
        let block_size = number("BlockSize", &b.block_size)?;
        if block_size == 0 {
            return Err("BlockSize is 0".into());
        }
        let mut ranges = Vec::with_capacity(b.block_map.ranges.len());
        let mut end = 0;
        for r in &b.block_map.ranges {
            let text = r.range.trim();
            let (first, last) = match text.split_once('-') {
                Some((a, z)) => (number("Range", a)?, number("Range", z)?),
                None => {
                    let n = number("Range", text)?;
                    (n, n)
                }
            };
            let outside = || format!("range {text} overlaps or lies outside the image");
            let offset = first.checked_mul(block_size).ok_or_else(outside)?;
            let blocks = last
                .checked_sub(first)
                .ok_or_else(|| format!("range {text} ends before it starts"))?
                .checked_add(1)
                .ok_or_else(outside)?;
            // The last block may extend past the image end: clip it.
            let len = blocks
                .saturating_mul(block_size)
                .min(image_size.saturating_sub(offset));
            if offset < end || len == 0 {
                return Err(outside());
            }
            let mut sha256 = [0u8; 32];
            hex::decode_to_slice(r.chksum.trim(), &mut sha256)
                .map_err(|_| format!("range {text} has no SHA-256 checksum"))?;
            end = offset + len; // <= image_size: len was clipped to it
            ranges.push(MappedRange {
                offset,
                len,
                sha256,
            });
        }
        Ok(BlockMap { image_size, ranges })
    }
}

/// The XML as bmaptool writes it (the fields we use; the rest is ignored).
mod xml {
    #[derive(serde::Deserialize)]
    pub struct Bmap {
        #[serde(rename = "ImageSize")]
        pub image_size: String,
        #[serde(rename = "BlockSize")]
        pub block_size: String,
        #[serde(rename = "ChecksumType")]
        pub checksum_type: String,
        #[serde(rename = "BlockMap")]
        pub block_map: BlockMap,
    }

    #[derive(serde::Deserialize)]
    pub struct BlockMap {
        #[serde(rename = "Range", default)]
        pub ranges: Vec<Range>,
    }

    #[derive(serde::Deserialize)]
    pub struct Range {
        #[serde(rename = "@chksum")]
        pub chksum: String,
        #[serde(rename = "$text", default)]
        pub range: String,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";

    /// A bmap as bmaptool 3.x writes it, with these ranges.
    fn bmap(image_size: u64, ranges: &[&str]) -> String {
        let ranges: String = ranges
            .iter()
            .map(|r| format!("        <Range chksum=\"{SHA}\"> {r} </Range>\n"))
            .collect();
        format!(
            "<?xml version=\"1.0\" ?>\n<!-- a comment -->\n<bmap version=\"2.0\">\n    \
             <ImageSize> {image_size} </ImageSize>\n    <BlockSize> 4096 </BlockSize>\n    \
             <BlocksCount> 256 </BlocksCount>\n    <MappedBlocksCount> 3 </MappedBlocksCount>\n    \
             <ChecksumType> sha256 </ChecksumType>\n    <BmapFileChecksum> {SHA} </BmapFileChecksum>\n    \
             <BlockMap>\n{ranges}    </BlockMap>\n</bmap>\n"
        )
    }

    /// Through a file, as `load` reads it (the fuzz target does the same).
    fn load(text: &str) -> Result<BlockMap> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("drives-bmap-{}-{n}.bmap", std::process::id()));
        std::fs::write(&path, text).unwrap();
        let map = BlockMap::load(&path);
        let _ = std::fs::remove_file(&path);
        map
    }

    fn refused(text: &str, why: &str) {
        match load(text) {
            Err(Error::Bmap { detail, .. }) => assert!(detail.contains(why), "{detail}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_bmaptool_map_gives_its_ranges_clipped_to_the_image() {
        let map = load(&bmap(10_000, &["0", "2"])).unwrap();
        assert_eq!(map.image_size, 10_000);
        let ranges: Vec<(u64, u64)> = map.ranges.iter().map(|r| (r.offset, r.len)).collect();
        assert_eq!(ranges, [(0, 4096), (8192, 10_000 - 8192)]);
        assert_eq!(map.ranges[0].sha256, [0xcd; 32]);
        assert_eq!(map.mapped_bytes(), 4096 + 10_000 - 8192);
        let map = load(&bmap(1 << 20, &["0-1", "100", "255"])).unwrap();
        assert_eq!(map.ranges[0].len, 8192);
        assert_eq!(map.ranges[2].offset, 255 * 4096);
    }

    // Found writing the bmap fuzz target: bmap-parser unwrapped the range
    // numbers and did unchecked block arithmetic (panics, or wrapped
    // lengths in a release build), on a file a client can upload.
    #[test]
    fn fuzz_bmap_range_that_is_not_a_number_is_refused_not_a_panic() {
        refused(&bmap(1 << 20, &["x-1"]), "line 11: range `x-1` is not");
        refused(&bmap(1 << 20, &["1-"]), "is not `first-last` block numbers");
        refused(&bmap(1 << 20, &[""]), "is not `first-last` block numbers");
    }

    #[test]
    fn fuzz_bmap_range_ending_before_it_starts_is_refused_not_a_panic() {
        refused(&bmap(1 << 20, &["5-3"]), "ends before it starts");
    }

    #[test]
    fn fuzz_bmap_block_numbers_past_the_image_or_u64_are_refused_not_a_panic() {
        refused(&bmap(1 << 20, &["256"]), "starts past the image");
        refused(
            &bmap(1 << 20, &["18446744073709551615"]),
            "starts past the image",
        );
        refused(&bmap(1 << 20, &["0-18446744073709551615"]), "is too long");
        refused(&bmap(1 << 20, &["5-9", "7"]), "overlaps");
        let zero = bmap(1 << 20, &["0"]).replace("<BlockSize> 4096", "<BlockSize> 0");
        refused(&zero, "<BlockSize> is 0");
    }

    #[test]
    fn a_bmap_without_sha256_checksums_is_refused() {
        let sha1 = bmap(8192, &["0"]).replace("sha256", "sha1");
        refused(&sha1, "only sha256");
        let short = bmap(8192, &["0"]).replace(SHA, "cdcd");
        refused(&short, "no SHA-256");
    }

    fn bmap_lines(ranges: &str) -> String {
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

    fn range_line(r: &str) -> String {
        format!(
            "        <Range chksum=\"{}\"> {r} </Range>\n",
            "ab".repeat(32)
        )
    }

    /// Issue 13, defect 10: bmap-parser unwraps the block numbers of a
    /// range, and the copy job's thread died on a malformed sidecar.
    #[test]
    fn a_malformed_bmap_sidecar_panics_the_copy_job() {
        let good = bmap_lines(&(range_line("0") + &range_line("2-3")));
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
            let xml = bmap_lines(&(range_line("0") + &range_line(r)));
            let got = validate_bmap(xml.as_bytes()).unwrap_err();
            assert!(got.starts_with(why), "{r}: {got}");
        }
        let no_sum = bmap_lines("        <Range> 0 </Range>\n");
        assert!(
            validate_bmap(no_sum.as_bytes())
                .unwrap_err()
                .contains("line 10")
        );
        assert!(validate_bmap(b"\xff\xfe").unwrap_err().contains("line 1"));
        assert!(validate_bmap(b"<bmap/>").is_err());
    }
}
