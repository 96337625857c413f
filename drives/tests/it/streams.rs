//! Stream targets (disc burners) and stream sources (a source disc) in the
//! same fan-out as block drives.

use std::io::{Cursor, Read};
use std::sync::{Arc, Mutex};

use copyunit_drives::{
    CancelToken, ImageReader, Phase, StreamDone, StreamInput, StreamTarget, copy_from,
};
use sha2::{Digest, Sha256};

use crate::util::{Loop, TempDir, cmp, image_bytes, plan, quiet, write_file};

/// A stream target that keeps what it receives, reporting a drive buffer
/// fill as a burner does, and hashing it as a burner does.
fn collector(name: &str, into: Arc<Mutex<Vec<u8>>>) -> StreamTarget {
    StreamTarget {
        name: name.into(),
        write: Box::new(move |input: StreamInput<'_>| {
            let mut got = Vec::new();
            let mut buf = vec![0u8; 100_000];
            loop {
                let n = input.content.read(&mut buf).map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                (input.progress)(Phase::Write, got.len() as u64, input.size, Some(80));
            }
            (input.progress)(Phase::Close, 0, None, None);
            let sha = hex::encode(Sha256::digest(&got));
            let n = got.len() as u64;
            *into.lock().expect("lock") = got;
            Ok(StreamDone {
                bytes_written: n,
                verified: input.verify,
                sha256: Some(sha),
            })
        }),
    }
}

#[test]
fn a_stream_target_gets_the_same_content_as_the_drives() {
    let dir = TempDir::new("stream-fanout");
    let len = (9 << 20) + 2048;
    let img = dir.path("disc.iso");
    let bytes = image_bytes(len, 7);
    write_file(&img, &bytes);
    let a = Loop::new(&dir, 16 << 20, 512);
    let got = Arc::new(Mutex::new(Vec::new()));

    let phases = Mutex::new(Vec::<(usize, Phase, Option<u8>)>::new());
    let report = copy_from(
        &plan(&img, &[&a]),
        ImageReader::open(&img),
        vec![collector("sr1", got.clone())],
        &CancelToken::new(),
        &|u| {
            phases
                .lock()
                .expect("lock")
                .push((u.index, u.progress.phase, u.progress.buffer_fill))
        },
    );
    assert!(report.all_done(), "{report:#?}");
    assert_eq!(report.targets.len(), 2);
    assert_eq!(report.targets[1].drive, "sr1");
    assert!(report.targets[1].verified);
    assert_eq!(*got.lock().expect("lock"), bytes);
    assert!(cmp(&img, &a.dev, len as u64));
    // The stream's own phases and buffer fill reach the progress callback.
    let seen = phases.into_inner().expect("lock");
    let mut stream: Vec<Phase> = seen.iter().filter(|s| s.0 == 1).map(|s| s.1).collect();
    stream.dedup();
    assert_eq!(
        stream,
        [Phase::Prepare, Phase::Write, Phase::Close, Phase::Done]
    );
    assert!(seen.iter().any(|s| s.0 == 1 && s.2 == Some(80)));
}

#[test]
fn a_failing_stream_fails_alone_with_its_own_message() {
    let dir = TempDir::new("stream-fail");
    let len = 6 << 20;
    let img = dir.path("disc.iso");
    write_file(&img, &image_bytes(len, 8));
    let a = Loop::new(&dir, 8 << 20, 512);
    let failing = StreamTarget {
        name: "sr2".into(),
        write: Box::new(|input: StreamInput<'_>| {
            let mut buf = vec![0u8; 1 << 20];
            input.content.read(&mut buf).map_err(|e| e.to_string())?;
            Err("write error on sr2 at LBA 512: the disc may be damaged".into())
        }),
    };
    let got = Arc::new(Mutex::new(Vec::new()));
    let report = copy_from(
        &plan(&img, &[&a]),
        ImageReader::open(&img),
        vec![failing, collector("sr1", got.clone())],
        &CancelToken::new(),
        &quiet,
    );
    assert!(!report.all_done());
    assert_eq!(report.targets[0].phase, Phase::Done, "{report:#?}");
    assert_eq!(report.targets[1].phase, Phase::Failed);
    assert_eq!(
        report.targets[1].error.as_deref(),
        Some("write error on sr2 at LBA 512: the disc may be damaged")
    );
    assert_eq!(report.targets[2].phase, Phase::Done);
    assert_eq!(got.lock().expect("lock").len(), len);
    assert!(report.source_error.is_none());
}

#[test]
fn a_stream_whose_content_hash_differs_fails_verification() {
    let dir = TempDir::new("stream-mismatch");
    let img = dir.path("disc.iso");
    write_file(&img, &image_bytes(3 << 20, 9));
    let liar = StreamTarget {
        name: "sr1".into(),
        write: Box::new(|input: StreamInput<'_>| {
            std::io::copy(input.content, &mut std::io::sink()).map_err(|e| e.to_string())?;
            Ok(StreamDone {
                bytes_written: 3 << 20,
                verified: true,
                sha256: Some("00".repeat(32)),
            })
        }),
    };
    let report = copy_from(
        &plan(&img, &[]),
        ImageReader::open(&img),
        vec![liar],
        &CancelToken::new(),
        &quiet,
    );
    let t = &report.targets[0];
    assert_eq!(t.phase, Phase::Failed);
    assert!(!t.verified);
    assert!(
        t.error
            .as_deref()
            .is_some_and(|e| e.contains("reads back different data")),
        "{t:?}"
    );
}

#[test]
fn a_device_stream_is_a_source_and_ending_short_fails_every_target_naming_it() {
    let dir = TempDir::new("stream-source");
    let bytes = image_bytes(5 << 20, 10);
    let a = Loop::new(&dir, 8 << 20, 4096);
    let got = Arc::new(Mutex::new(Vec::new()));
    let source = ImageReader::from_stream(
        "sr0",
        Box::new(Cursor::new(bytes.clone())),
        bytes.len() as u64,
    );
    let p = plan(std::path::Path::new("/dev/sr0"), &[&a]);
    let report = copy_from(
        &p,
        Ok(source),
        vec![collector("sr1", got.clone())],
        &CancelToken::new(),
        &quiet,
    );
    assert!(report.all_done(), "{report:#?}");
    assert_eq!(*got.lock().expect("lock"), bytes);
    assert_eq!(
        report.content_sha256.as_deref(),
        Some(hex::encode(Sha256::digest(&bytes)).as_str())
    );
    assert_eq!(crate::util::read_dev(&a.dev, bytes.len()), bytes);

    // The disc says it holds more than it delivers: no target is done.
    let short = ImageReader::from_stream(
        "sr0",
        Box::new(Cursor::new(bytes[..1 << 20].to_vec())),
        bytes.len() as u64,
    );
    let report = copy_from(
        &p,
        Ok(short),
        vec![collector("sr1", Arc::default())],
        &CancelToken::new(),
        &quiet,
    );
    let err = report.source_error.clone().expect("a source error");
    assert!(err.contains("sr0"), "{err}");
    assert!(
        report.targets.iter().all(|t| t.phase == Phase::Failed),
        "{report:#?}"
    );

    // A read error of the source is reported as such, not as a corrupt image.
    struct Unreadable(u64);
    impl Read for Unreadable {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("unreadable sector at LBA 640 of sr0"));
            }
            let n = out.len().min(self.0 as usize);
            out[..n].fill(1);
            self.0 -= n as u64;
            Ok(n)
        }
    }
    let report = copy_from(
        &p,
        Ok(ImageReader::from_stream(
            "sr0",
            Box::new(Unreadable(1 << 20)),
            4 << 20,
        )),
        vec![collector("sr1", Arc::default())],
        &CancelToken::new(),
        &quiet,
    );
    let err = report.source_error.clone().expect("a source error");
    assert!(err.contains("unreadable sector at LBA 640 of sr0"), "{err}");
    assert!(!err.contains("corrupt"), "{err}");
}
