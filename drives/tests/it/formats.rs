//! Compressed images made with the real tools, and .bmap sidecars.

use std::path::Path;
use std::process::Command;

use copyunit_drives::{CancelToken, CopyPlan, ImageFormat, copy, inspect};

use crate::util::{Loop, TempDir, cmp, image_bytes, loops_allowed, quiet, run, write_file};

const LEN: usize = 10 << 20;

fn sh(cmd: &str) {
    let st = Command::new("sh").args(["-c", cmd]).status().expect("sh");
    assert!(st.success(), "{cmd}");
}

fn copy_ok(image: &Path, target: &Loop) -> copyunit_drives::CopyReport {
    let mut p = CopyPlan::new(image, vec![target.name.clone()]);
    p.discover = loops_allowed();
    let r = copy(&p, &CancelToken::new(), &quiet);
    assert!(r.all_done(), "{}: {r:#?}", image.display());
    r
}

#[test]
fn every_compressed_format_is_decoded_while_writing() {
    let dir = TempDir::new("formats");
    let raw = dir.path("disk.img");
    write_file(&raw, &image_bytes(LEN, 4));
    let d = dir.0.display();
    // Several xz blocks, so the decoder works in parallel.
    sh(&format!(
        "xz -T2 --block-size=1MiB -3 -k -c {d}/disk.img > {d}/disk.img.xz"
    ));
    sh(&format!("gzip -c {d}/disk.img > {d}/disk.img.gz"));
    sh(&format!("zstd -q -c {d}/disk.img > {d}/disk.img.zst"));
    sh(&format!("bzip2 -c {d}/disk.img > {d}/disk.img.bz2"));
    sh(&format!("cd {d} && zip -q disk.zip disk.img"));
    let target = Loop::new(&dir, 16 << 20, 4096);
    let cases = [
        ("disk.img.xz", ImageFormat::Xz, Some(LEN as u64)),
        ("disk.img.gz", ImageFormat::Gzip, None),
        ("disk.img.zst", ImageFormat::Zstd, Some(LEN as u64)),
        ("disk.img.bz2", ImageFormat::Bzip2, None),
        ("disk.zip", ImageFormat::Zip, Some(LEN as u64)),
        ("disk.img", ImageFormat::Raw, Some(LEN as u64)),
    ];
    let mut hash = None;
    for (name, format, content) in cases {
        let p = dir.path(name);
        let info = inspect(&p).expect("inspect");
        assert_eq!(
            (info.format, info.content_size),
            (format, content),
            "{name}"
        );
        if format == ImageFormat::Xz {
            assert!(info.xz_blocks.unwrap_or(0) > 1, "{info:?}");
        }
        // Scribble over the target so each copy is really written.
        sh(&format!(
            "dd if=/dev/urandom of={} bs=1M count=12 status=none",
            target.dev
        ));
        let r = copy_ok(&p, &target);
        assert_eq!(r.format, Some(format));
        assert_eq!(r.content_len, LEN as u64, "{name}");
        assert!(cmp(&raw, &target.dev, LEN as u64), "{name}");
        let h = r.content_sha256.expect("hash");
        assert_eq!(hash.get_or_insert(h.clone()), &h, "{name}");
    }
}

#[test]
fn a_zip_with_several_files_is_refused_by_name() {
    let dir = TempDir::new("zip2");
    write_file(&dir.path("a.img"), b"aaaa");
    write_file(&dir.path("b.img"), b"bbbb");
    sh(&format!(
        "cd {} && zip -q two.zip a.img b.img",
        dir.0.display()
    ));
    let err = inspect(&dir.path("two.zip")).expect_err("refused");
    assert!(
        err.to_string().contains("two.zip") && err.to_string().contains("2 files"),
        "{err}"
    );
}

#[test]
fn truncated_and_corrupt_images_fail_naming_image_and_offset() {
    let dir = TempDir::new("corrupt");
    let raw = dir.path("disk.img");
    write_file(&raw, &image_bytes(LEN, 5));
    let d = dir.0.display();
    sh(&format!("xz -T1 -3 -k -c {d}/disk.img > {d}/full.xz"));
    sh(&format!("gzip -c {d}/disk.img > {d}/full.gz"));
    sh(&format!("zstd -q -c {d}/disk.img > {d}/full.zst"));
    sh(&format!("bzip2 -c {d}/disk.img > {d}/full.bz2"));
    let target = Loop::new(&dir, 16 << 20, 512);
    for ext in ["xz", "gz", "zst", "bz2"] {
        let full = std::fs::read(dir.path(&format!("full.{ext}"))).expect("read");
        let cut = dir.path(&format!("cut.{ext}"));
        write_file(&cut, &full[..full.len() / 2]);
        let mut bad = full.clone();
        let mid = bad.len() / 2;
        for b in &mut bad[mid..mid + 64] {
            *b ^= 0x5A;
        }
        let broken = dir.path(&format!("broken.{ext}"));
        write_file(&broken, &bad);
        for img in [cut, broken] {
            let mut p = CopyPlan::new(&img, vec![target.name.clone()]);
            p.discover = loops_allowed();
            let r = copy(&p, &CancelToken::new(), &quiet);
            let e = r
                .source_error
                .clone()
                .unwrap_or_else(|| panic!("{} accepted: {r:#?}", img.display()));
            let name = img.file_name().and_then(|n| n.to_str()).expect("name");
            assert!(e.contains(name) && e.contains("at byte"), "{e}");
            assert!(
                r.targets
                    .iter()
                    .all(|t| t.phase == copyunit_drives::Phase::Failed),
                "{r:#?}"
            );
        }
    }
}

/// A sparse image: data at a few places, holes elsewhere.
fn sparse_image(path: &Path, len: u64) -> Vec<(u64, Vec<u8>)> {
    let f = std::fs::File::create(path).expect("create");
    f.set_len(len).expect("truncate");
    let pieces: Vec<(u64, Vec<u8>)> = vec![
        (0, image_bytes(256 << 10, 6)),
        (5 << 20, image_bytes(3 << 20, 7)),
        (len - (64 << 10), image_bytes(64 << 10, 8)),
    ];
    use std::os::unix::fs::FileExt;
    for (at, b) in &pieces {
        f.write_all_at(b, *at).expect("write");
    }
    pieces
}

#[test]
fn bmap_writes_only_mapped_ranges_and_verifies_them() {
    let dir = TempDir::new("bmap");
    let img = dir.path("sparse.img");
    let len = 24u64 << 20;
    let pieces = sparse_image(&img, len);
    let bmap = dir.path("sparse.bmap");
    run(
        "bmaptool",
        &[
            "-q",
            "create",
            "-o",
            bmap.to_str().expect("utf-8"),
            img.to_str().expect("utf-8"),
        ],
    );
    let d = dir.0.display();
    sh(&format!(
        "xz -T1 -1 -k -c {d}/sparse.img > {d}/sparse.img.xz"
    ));
    for image in [img.clone(), dir.path("sparse.img.xz")] {
        let target = Loop::new(&dir, 32 << 20, 512);
        let mut p = CopyPlan::new(&image, vec![target.name.clone()]);
        p.discover = loops_allowed();
        p.bmap = Some(bmap.clone());
        let r = copy(&p, &CancelToken::new(), &quiet);
        assert!(r.all_done(), "{r:#?}");
        assert!(r.targets[0].verified);
        let disk = target.contents();
        for (at, b) in &pieces {
            assert_eq!(
                &disk[*at as usize..*at as usize + b.len()],
                &b[..],
                "piece at {at}"
            );
        }
        // An unmapped range was skipped, not written with zeros.
        assert_eq!(disk[12 << 20], 0xEE, "hole at 12 MiB was written");
        assert!(
            r.targets[0].bytes_written < len / 2,
            "{}",
            r.targets[0].bytes_written
        );
    }
}

#[test]
fn an_image_that_disagrees_with_its_bmap_fails_as_a_source_error() {
    let dir = TempDir::new("bmapbad");
    let img = dir.path("sparse.img");
    sparse_image(&img, 16 << 20);
    let bmap = dir.path("sparse.bmap");
    run(
        "bmaptool",
        &[
            "-q",
            "create",
            "-o",
            bmap.to_str().expect("utf-8"),
            img.to_str().expect("utf-8"),
        ],
    );
    // Change a mapped byte after the bmap was made.
    sh(&format!(
        "printf X | dd of={} bs=1 seek=100 conv=notrunc status=none",
        img.display()
    ));
    let target = Loop::new(&dir, 32 << 20, 512);
    let mut p = CopyPlan::new(&img, vec![target.name.clone()]);
    p.discover = loops_allowed();
    p.bmap = Some(bmap);
    let r = copy(&p, &CancelToken::new(), &quiet);
    let e = r.source_error.clone().expect("source error");
    assert!(e.contains("sparse.img") && e.contains("bmap"), "{e}");
    assert_eq!(r.targets[0].phase, copyunit_drives::Phase::Failed);
    // Without read-back the source is still checked against the bmap.
    p.verify = false;
    let r = copy(&p, &CancelToken::new(), &quiet);
    assert!(r.source_error.is_some(), "{r:#?}");
    assert_eq!(r.targets[0].phase, copyunit_drives::Phase::Failed, "{r:#?}");
    assert!(
        r.targets[0].error.as_deref().unwrap_or("").contains("bmap"),
        "{r:#?}"
    );
}
