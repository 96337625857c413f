//! Images as byte streams: format by magic bytes, streaming decoders, sizes.
//!
//! An image is read once, front to back, and decoded on the fly: no
//! temporary file. xz uses liblzma's multi-threaded decoder (it splits work
//! by xz block, so files with several blocks decode on every core). A
//! decoder error or an early end becomes [`Error::Corrupt`] naming the image
//! and the byte offset in the file where reading stopped.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use copyunit_model::ImageFormat;

use crate::error::{Error, Result};

/// What a look at an image file tells, without decoding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub format: ImageFormat,
    /// Bytes of the file itself.
    pub file_size: u64,
    /// Bytes once decoded, when the container records it (raw, ISO, xz
    /// index, zstd frame header, zip entry); None for gzip and bzip2.
    pub content_size: Option<u64>,
    /// xz blocks: more than one means the decode runs in parallel.
    pub xz_blocks: Option<u64>,
}

fn display(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Format from the first bytes of a file (and an ISO 9660 descriptor at
/// 32 KiB): the one detection the store and the writer share.
pub fn format_of(head: &[u8]) -> ImageFormat {
    ImageFormat::detect(head)
}

fn read_at_most(f: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        match f.read_at(&mut buf[done..], offset + done as u64)? {
            0 => break,
            n => done += n,
        }
    }
    buf.truncate(done);
    Ok(buf)
}

fn varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for i in 0..9 {
        let c = *b.get(*pos)?;
        *pos += 1;
        v |= u64::from(c & 0x7F) << (7 * i);
        if c & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// `(uncompressed size, blocks)` from the index of a single-stream xz file.
fn xz_index(f: &File, size: u64) -> Option<(u64, u64)> {
    let mut end = size;
    // Stream padding: zero bytes in groups of four after the footer.
    while end >= 4 && read_at_most(f, end - 4, 4).ok()? == [0, 0, 0, 0] {
        end -= 4;
    }
    if end < 24 {
        return None;
    }
    let footer = read_at_most(f, end - 12, 12).ok()?;
    if footer.get(10..12)? != b"YZ" {
        return None;
    }
    let backward = u64::from(u32::from_le_bytes(footer[4..8].try_into().ok()?));
    let index_size = (backward + 1) * 4;
    let index_start = end.checked_sub(12 + index_size)?;
    let index = read_at_most(
        f,
        index_start,
        usize::try_from(index_size).ok()?.min(64 << 20),
    )
    .ok()?;
    if index.first() != Some(&0) {
        return None;
    }
    let mut pos = 1;
    let count = varint(&index, &mut pos)?;
    let (mut total, mut blocks_bytes) = (0u64, 0u64);
    for _ in 0..count {
        let unpadded = varint(&index, &mut pos)?;
        total = total.checked_add(varint(&index, &mut pos)?)?;
        blocks_bytes += unpadded.div_ceil(4) * 4;
    }
    // Only a single stream is summed: a concatenated file would be undercounted.
    (12 + blocks_bytes + index_size + 12 == end).then_some((total, count))
}

/// One regular file inside a zip archive: where its data starts and how it is stored.
struct ZipEntry {
    data_start: u64,
    compressed: u64,
    size: u64,
    crc32: u32,
    deflated: bool,
}

fn zip_entry(path: &Path, f: &File) -> Result<ZipEntry> {
    let image = display(path);
    let bad = |detail: String| Error::Unsupported {
        image: image.clone(),
        detail,
    };
    let clone = f.try_clone().map_err(Error::image(&image, "open"))?;
    let mut z =
        zip::ZipArchive::new(clone).map_err(|e| bad(format!("not a readable zip archive: {e}")))?;
    let files: Vec<usize> = (0..z.len())
        .filter(|i| z.by_index_raw(*i).map(|e| !e.is_dir()).unwrap_or(false))
        .collect();
    let [only] = files.as_slice() else {
        return Err(bad(format!(
            "zip archive holds {} files; expected exactly one image",
            files.len()
        )));
    };
    let e = z
        .by_index_raw(*only)
        .map_err(|e| bad(format!("zip entry: {e}")))?;
    let deflated = match e.compression() {
        zip::CompressionMethod::Stored => false,
        zip::CompressionMethod::Deflated => true,
        m => {
            return Err(bad(format!(
                "zip entry {} uses {m}; only stored and deflate are supported",
                e.name().unwrap_or_default()
            )));
        }
    };
    if e.encrypted() {
        return Err(bad(format!(
            "zip entry {} is encrypted",
            e.name().unwrap_or_default()
        )));
    }
    Ok(ZipEntry {
        data_start: e.data_start().unwrap_or(0),
        compressed: e.compressed_size(),
        size: e.size(),
        crc32: e.crc32(),
        deflated,
    })
}

/// Looks at an image: format, sizes, xz block count.
pub fn inspect(path: &Path) -> Result<ImageInfo> {
    let image = display(path);
    let f = File::open(path).map_err(Error::image(&image, "open"))?;
    let file_size = f.metadata().map_err(Error::image(&image, "stat"))?.len();
    let head =
        read_at_most(&f, 0, ImageFormat::DETECT_LEN).map_err(Error::image(&image, "read"))?;
    let format = format_of(&head);
    let (content_size, xz_blocks) = match format {
        ImageFormat::Raw | ImageFormat::Iso => (Some(file_size), None),
        ImageFormat::Xz => match xz_index(&f, file_size) {
            Some((s, b)) => (Some(s), Some(b)),
            None => (None, None),
        },
        ImageFormat::Zstd => (
            zstd::zstd_safe::get_frame_content_size(&head)
                .ok()
                .flatten(),
            None,
        ),
        ImageFormat::Zip => (Some(zip_entry(path, &f)?.size), None),
        ImageFormat::Gzip | ImageFormat::Bzip2 => (None, None),
    };
    Ok(ImageInfo {
        format,
        file_size,
        content_size,
        xz_blocks,
    })
}

/// Counts the bytes taken from the file, for error offsets.
struct Counting<R> {
    inner: R,
    pos: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Checks the CRC-32 of a zip entry once it is fully read.
struct Crc32Check<R> {
    inner: R,
    crc: flate2::Crc,
    want: u32,
    size: u64,
}

impl<R: Read> Read for Crc32Check<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(&buf[..n]);
        if n == 0 && !buf.is_empty() {
            if u64::from(self.crc.amount()) != self.size & 0xFFFF_FFFF {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "zip entry ends after {} of {} bytes",
                        self.crc.amount(),
                        self.size
                    ),
                ));
            }
            if self.crc.sum() != self.want {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "zip entry CRC-32 mismatch",
                ));
            }
        }
        Ok(n)
    }
}

/// The decoded content of an image, read front to back.
pub struct ImageReader {
    inner: Box<dyn Read + Send>,
    /// The file itself for raw images, so bmap gaps are seeked over, not read.
    raw: Option<File>,
    image: String,
    file_pos: Arc<AtomicU64>,
    file_base: u64,
    decoded: u64,
    info: ImageInfo,
    /// A device read as a stream (a source disc): its errors are read
    /// errors, not a corrupt image, and it must deliver all of its size.
    stream: bool,
}

impl ImageReader {
    /// Opens `path` and sets up the decoder its magic bytes call for.
    pub fn open(path: &Path) -> Result<ImageReader> {
        let info = inspect(path)?;
        let image = display(path);
        let mut f = File::open(path).map_err(Error::image(&image, "open"))?;
        let file_pos = Arc::new(AtomicU64::new(0));
        let mut file_base = 0;
        let mut raw = None;
        let inner: Box<dyn Read + Send> = match info.format {
            ImageFormat::Raw | ImageFormat::Iso => {
                raw = Some(f.try_clone().map_err(Error::image(&image, "open"))?);
                Box::new(Counting {
                    inner: f,
                    pos: file_pos.clone(),
                })
            }
            ImageFormat::Xz => {
                let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
                let stream = liblzma::stream::MtStreamBuilder::new()
                    .threads(threads)
                    .memlimit_threading(256 << 20)
                    .memlimit_stop(u64::MAX)
                    .decoder()
                    .map_err(|e| Error::Unsupported {
                        image: image.clone(),
                        detail: format!("xz decoder: {e}"),
                    })?;
                let counted = Counting {
                    inner: f,
                    pos: file_pos.clone(),
                };
                Box::new(liblzma::bufread::XzDecoder::new_stream(
                    BufReader::with_capacity(1 << 20, counted),
                    stream,
                ))
            }
            ImageFormat::Gzip => {
                let counted = Counting {
                    inner: f,
                    pos: file_pos.clone(),
                };
                Box::new(flate2::bufread::MultiGzDecoder::new(
                    BufReader::with_capacity(1 << 20, counted),
                ))
            }
            ImageFormat::Zstd => {
                let counted = Counting {
                    inner: f,
                    pos: file_pos.clone(),
                };
                let d = zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(
                    1 << 20,
                    counted,
                ))
                .map_err(Error::image(&image, "zstd decoder"))?;
                Box::new(d)
            }
            ImageFormat::Bzip2 => {
                let counted = Counting {
                    inner: f,
                    pos: file_pos.clone(),
                };
                Box::new(bzip2::bufread::MultiBzDecoder::new(
                    BufReader::with_capacity(1 << 20, counted),
                ))
            }
            ImageFormat::Zip => {
                let e = zip_entry(path, &f)?;
                f.seek(SeekFrom::Start(e.data_start))
                    .map_err(Error::image(&image, "seek"))?;
                file_base = e.data_start;
                let counted = Counting {
                    inner: f.take(e.compressed),
                    pos: file_pos.clone(),
                };
                let body: Box<dyn Read + Send> = if e.deflated {
                    Box::new(flate2::bufread::DeflateDecoder::new(
                        BufReader::with_capacity(1 << 20, counted),
                    ))
                } else {
                    Box::new(counted)
                };
                Box::new(Crc32Check {
                    inner: body,
                    crc: flate2::Crc::new(),
                    want: e.crc32,
                    size: e.size,
                })
            }
        };
        Ok(ImageReader {
            inner,
            raw,
            image,
            file_pos,
            file_base,
            decoded: 0,
            info,
            stream: false,
        })
    }

    /// Content that is not a file in the store: `size` raw bytes from a
    /// device such as the disc in the source drive (disc-to-disc copies).
    pub fn from_stream(name: &str, inner: Box<dyn Read + Send>, size: u64) -> ImageReader {
        ImageReader {
            inner,
            raw: None,
            image: name.to_owned(),
            file_pos: Arc::new(AtomicU64::new(0)),
            file_base: 0,
            decoded: 0,
            info: ImageInfo {
                format: ImageFormat::Raw,
                file_size: size,
                content_size: Some(size),
                xz_blocks: None,
            },
            stream: true,
        }
    }

    pub fn info(&self) -> &ImageInfo {
        &self.info
    }
    /// Short name of the image for messages.
    pub fn name(&self) -> &str {
        &self.image
    }
    /// Decoded bytes handed out so far.
    pub fn position(&self) -> u64 {
        self.decoded
    }

    fn corrupt(&self, detail: String) -> Error {
        Error::Corrupt {
            image: self.image.clone(),
            offset: self.file_base + self.file_pos.load(Ordering::Relaxed),
            detail,
        }
    }

    /// Fills `buf` completely unless the content ends first; returns the
    /// bytes read (0 at the end). A short content (less than the container
    /// declared) is an error.
    pub fn read_full(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            // A decoder library that panics on a damaged stream must not take
            // the whole daemon with it: it becomes a corrupt-image error.
            let inner = &mut self.inner;
            let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                inner.read(&mut buf[done..])
            }))
            .unwrap_or_else(|_| {
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the decoder failed",
                ))
            });
            match got {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if self.stream => {
                    return Err(Error::Source(format!(
                        "reading {} at byte {}: {e}",
                        self.image,
                        self.decoded + done as u64
                    )));
                }
                Err(e) => {
                    let what = if e.kind() == io::ErrorKind::UnexpectedEof {
                        "ends early"
                    } else {
                        "decode error"
                    };
                    return Err(self.corrupt(format!(
                        "{what} after {} decoded bytes: {e}",
                        self.decoded + done as u64
                    )));
                }
            }
        }
        self.decoded += done as u64;
        if let Some(want) = self.info.content_size {
            if done < buf.len()
                && self.decoded < want
                && (self.info.format.is_compressed() || self.stream)
            {
                return Err(self.corrupt(format!(
                    "ends after {} of {want} decoded bytes",
                    self.decoded
                )));
            }
            if self.decoded > want {
                return Err(self.corrupt(format!(
                    "holds more than the {want} bytes its header declares"
                )));
            }
        }
        Ok(done)
    }

    /// Reads and drops `n` bytes (gaps of a bmap in a compressed image).
    pub fn skip(&mut self, mut n: u64, scratch: &mut [u8]) -> Result<()> {
        while n > 0 {
            let want = usize::try_from(n).unwrap_or(usize::MAX).min(scratch.len());
            let got = self.read_full(&mut scratch[..want])?;
            if got < want {
                return Err(self.corrupt(format!(
                    "ends at {} decoded bytes, inside the bmap's range",
                    self.decoded
                )));
            }
            n -= got as u64;
        }
        Ok(())
    }

    /// Moves forward to decoded offset `to` (bmap gaps): a seek for raw
    /// images, a read-through for compressed ones.
    pub fn seek_raw(&mut self, to: u64, scratch: &mut [u8]) -> Result<()> {
        if to < self.decoded {
            return Err(self.corrupt("bmap ranges out of order".into()));
        }
        match &mut self.raw {
            // The raw reader shares this file's offset (try_clone dups the fd).
            Some(f) => {
                f.seek(SeekFrom::Start(to))
                    .map_err(Error::image(&self.image, "seek"))?;
                self.file_pos.store(to, Ordering::Relaxed);
                self.decoded = to;
                Ok(())
            }
            // Decoders cannot seek: read through the gap.
            None => self.skip(to - self.decoded, scratch),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes() {
        assert_eq!(
            format_of(&[0xFD, b'7', b'z', b'X', b'Z', 0, 0]),
            ImageFormat::Xz
        );
        assert_eq!(format_of(&[0x1F, 0x8B, 8]), ImageFormat::Gzip);
        assert_eq!(format_of(&[0x28, 0xB5, 0x2F, 0xFD]), ImageFormat::Zstd);
        assert_eq!(format_of(b"BZh91AY"), ImageFormat::Bzip2);
        assert_eq!(format_of(b"PK\x03\x04"), ImageFormat::Zip);
        assert_eq!(format_of(b"BZhx"), ImageFormat::Raw);
        let mut iso = vec![0u8; 0x8010];
        iso[0x8001..0x8006].copy_from_slice(b"CD001");
        assert_eq!(format_of(&iso), ImageFormat::Iso);
    }
}
