//! The image store's own promises: one catalog writer, all-or-nothing
//! publishing, a unit that starts on a full store, decoded sizes recorded,
//! and interrupted uploads shown for the space they hold.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use copyunit_tests::*;

/// A small tmpfs as the store's filesystem, unmounted on drop.
fn small_store(size: &str) -> (tempfile::TempDir, Tmpfs) {
    let dir = tempfile::tempdir().unwrap();
    let fs = Tmpfs::new(&dir.path().join("small"), size);
    (dir, fs)
}

/// Names in `images --json` (images only).
fn names(unit: &Unit) -> Vec<String> {
    unit.images().into_iter().map(|i| i.0).collect()
}

/// Names the catalog file on disk lists.
fn catalog_names(unit: &Unit) -> Vec<String> {
    let text = fs::read(unit.store.join(".copyunit/catalog.json")).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&text).expect("the catalog is whole JSON");
    let mut names: Vec<String> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// Fills the filesystem holding `path` with a file there, to the last byte.
fn fill(path: &Path) {
    let mut f = fs::File::create(path).unwrap();
    let chunk = vec![0x5au8; 64 * 1024];
    loop {
        if f.write_all(&chunk).is_err() {
            break;
        }
    }
    // Whatever part of the last chunk fitted.
    let mut small = vec![0x5au8; 512];
    while f.write_all(&small).is_ok() {}
    small.truncate(1);
    while f.write_all(&small).is_ok() {}
    let _ = f.sync_all();
}

#[test]
fn two_publishes_at_once_share_one_temp_file() {
    let mut unit = Unit::start();
    // 6 uploads and 3 removals at once: inside unitd's 10 connections per
    // address.
    let n = 6;
    let srcs: Vec<PathBuf> = (0..n)
        .map(|i| random_file(unit.dir.path(), &format!("src{i}"), (1 << 20) + i * 4096))
        .collect();
    let seed: String = srcs
        .iter()
        .enumerate()
        .map(|(i, s)| format!("put {} old{i}.img\n", s.display()))
        .collect();
    let out = unit.sftp(&seed);
    assert!(out.status.success(), "{}", stderr(&out));
    // Rounds of parallel uploads (real sftp closes at once), each with `rm`s
    // of earlier images running beside them.
    let mut expect: Vec<String> = (0..n).map(|i| format!("old{i}.img")).collect();
    for round in 0..4 {
        let uploads: Vec<(String, bool)>;
        let removes: Vec<(String, bool)>;
        let doomed: Vec<String> = expect.iter().take(n / 2).cloned().collect();
        (uploads, removes) = std::thread::scope(|s| {
            let ups: Vec<_> = (0..n)
                .map(|i| {
                    let (unit, src) = (&unit, &srcs[i]);
                    s.spawn(move || {
                        let name = format!("r{round}-{i}.img");
                        let out = unit.sftp(&format!("put {} {name}\n", src.display()));
                        (name, out.status.success())
                    })
                })
                .collect();
            let rms: Vec<_> = doomed
                .iter()
                .map(|name| {
                    let unit = &unit;
                    s.spawn(move || {
                        (
                            name.clone(),
                            unit.ssh(&format!("rm {name}")).status.success(),
                        )
                    })
                })
                .collect();
            (
                ups.into_iter().map(|h| h.join().unwrap()).collect(),
                rms.into_iter().map(|h| h.join().unwrap()).collect(),
            )
        });
        let listed = names(&unit);
        for (name, ok) in &uploads {
            assert_eq!(
                listed.contains(name),
                *ok,
                "round {round}: the client was told {} about {name}, but `images` {} it\n{}",
                if *ok { "success" } else { "failure" },
                if listed.contains(name) {
                    "lists"
                } else {
                    "does not list"
                },
                unit.log()
            );
            assert!(ok, "round {round}: upload of {name} failed\n{}", unit.log());
        }
        for (name, ok) in &removes {
            assert!(ok, "round {round}: rm {name} failed\n{}", unit.log());
            assert!(!listed.contains(name), "round {round}: {name} still listed");
        }
        expect.retain(|n| !doomed.contains(n));
        expect.extend(uploads.into_iter().map(|(n, _)| n));
        let mut want = expect.clone();
        want.sort();
        let mut got = listed.clone();
        got.sort();
        assert_eq!(got, want, "round {round}");
        assert_eq!(
            catalog_names(&unit),
            want,
            "round {round}: the catalog on disk"
        );
    }
    // No temp file left beside the catalog, and a restart finds the catalog
    // matching the files: nothing to hash again, nothing dropped.
    let leftovers: Vec<String> = fs::read_dir(unit.store.join(".copyunit"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let before = unit.images();
    unit.kill();
    let old_log = unit.log().len();
    unit.launch().unwrap();
    assert_eq!(unit.images(), before);
    let log = &unit.log()[old_log..];
    assert!(
        !log.contains("not in the catalog") && !log.contains("its file is gone"),
        "{log}"
    );
}

#[test]
fn unitd_refuses_to_start_on_a_full_store() {
    let (_dir, small) = small_store("16m");
    let mut unit = Unit::start_with(Options {
        store: Some(small.0.join("store")),
        ..Options::default()
    });
    let keep = random_file(unit.dir.path(), "keep.img", 2 << 20);
    let out = unit.sftp(&format!("put {} keep.img\n", keep.display()));
    assert!(out.status.success(), "{}", stderr(&out));
    unit.kill();
    // A file the catalog does not know (a crash between publishing and
    // saving the catalog), and it takes every byte left.
    let late = unit.store.join("images/late.img");
    fill(&late);
    let late_sha = sha256sum(&late);
    unit.launch()
        .expect("unitd starts on a full store, so the admin can free space");
    let status = unit.json("status --json");
    assert_eq!(status["store"]["full"], true, "{status}");
    let text = stdout(&unit.ssh("status"));
    assert!(text.contains("FULL"), "{text}");
    unit.wait_for("an event saying the store is full", || {
        stdout(&unit.ssh("events")).contains("the image store is full")
    });
    let mut images = unit.images();
    images.sort();
    assert_eq!(images.len(), 2, "{images:?}");
    assert!(images.contains(&("keep.img".into(), 2 << 20, sha256sum(&keep))));
    assert_eq!(images[0].0, "keep.img");
    assert_eq!(images[1].2, late_sha);
    // The admin frees space: the catalog is saved again.
    let rm = unit.ssh("rm late.img");
    assert!(rm.status.success(), "{}", stderr(&rm));
    assert_eq!(unit.json("status --json")["store"]["full"], false);
    assert_eq!(catalog_names(&unit), ["keep.img"]);
    assert_eq!(names(&unit), ["keep.img"]);
}

#[test]
fn an_upload_that_just_fits_is_reported_failed_but_published() {
    let (_dir, small) = small_store("16m");
    let mut unit = Unit::start_with(Options {
        store: Some(small.0.join("store")),
        ..Options::default()
    });
    let free = unit.json("status --json")["store"]["free_bytes"]
        .as_u64()
        .unwrap();
    // Exactly the room there is: the file fits, the catalog naming it not.
    let src = random_file(unit.dir.path(), "fits.img", free as usize);
    let out = unit.sftp(&format!("put {} fits.img\n", src.display()));
    let told_ok = out.status.success();
    let listed = names(&unit).contains(&"fits.img".to_string());
    assert_eq!(
        told_ok,
        listed,
        "the client was told {} but `images` {} it: {}",
        if told_ok { "success" } else { "failure" },
        if listed { "lists" } else { "does not list" },
        stderr(&out)
    );
    assert_eq!(
        catalog_names(&unit).contains(&"fits.img".to_string()),
        listed,
        "the catalog on disk agrees with `images`"
    );
    if !told_ok {
        // What is left is an interrupted upload, shown with what it holds.
        assert!(unit.log().contains("the image store is full"));
        let rows = unit.json("images --json");
        let row = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "fits.img")
            .unwrap_or_else(|| panic!("no interrupted upload row: {rows}"));
        assert_eq!(row["partial"], true);
        assert_eq!(row["size"].as_u64(), Some(free));
        let rm = unit.ssh("rm fits.img");
        assert!(rm.status.success(), "{}", stderr(&rm));
    }
    // After a restart, what is listed is still what the client was told.
    unit.kill();
    unit.launch().unwrap();
    assert_eq!(names(&unit).contains(&"fits.img".to_string()), told_ok);
    let small_img = random_file(unit.dir.path(), "small.img", 1 << 20);
    let out = unit.sftp(&format!("put {} small.img\n", small_img.display()));
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn the_store_never_records_the_decoded_size_of_compressed_images() {
    let mut unit = Unit::start();
    let raw_len = (3 << 20) + 12345;
    // Half random, half zeros: compressible, not trivial.
    let raw = random_file(unit.dir.path(), "disk.img", raw_len / 2);
    {
        let mut f = fs::OpenOptions::new().append(true).open(&raw).unwrap();
        f.write_all(&vec![0u8; raw_len - raw_len / 2]).unwrap();
    }
    let mut script = String::new();
    let mut expect = Vec::new();
    for (tool, ext) in [
        ("gzip", "gz"),
        ("bzip2", "bz2"),
        ("xz", "xz"),
        ("zstd", "zst"),
    ] {
        let out = Command::new(tool).arg("-kqf").arg(&raw).status().unwrap();
        assert!(out.success(), "{tool}");
        let packed = raw.with_extension(format!("img.{ext}"));
        assert!(packed.exists(), "{}", packed.display());
        script += &format!("put {} disk.img.{ext}\n", packed.display());
        expect.push(format!("disk.img.{ext}"));
    }
    // A damaged one: cut in half.
    let gz = fs::read(raw.with_extension("img.gz")).unwrap();
    let cut = unit.dir.path().join("cut.img.gz");
    fs::write(&cut, &gz[..gz.len() / 2]).unwrap();
    script += &format!("put {} cut.img.gz\n", cut.display());
    let out = unit.sftp(&script);
    assert!(out.status.success(), "{}", stderr(&out));
    let sizes = |unit: &Unit| -> Vec<(String, Option<u64>, String)> {
        let v = unit.json("images --json");
        v.as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["name"].as_str().unwrap().to_string(),
                    i["content_size"].as_u64(),
                    i["state"]["state"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    unit.wait_for("the decoded size of every compressed image", || {
        let got = sizes(&unit);
        expect.iter().all(|name| {
            got.iter()
                .any(|(n, size, _)| n == name && *size == Some(raw_len as u64))
        }) && got
            .iter()
            .any(|(n, _, state)| n == "cut.img.gz" && state == "corrupt")
    });
    // Recorded in the catalog: a restart knows them without decoding again.
    unit.kill();
    let old_log = unit.log().len();
    unit.launch().unwrap();
    let got = sizes(&unit);
    for name in &expect {
        assert!(
            got.contains(&(name.clone(), Some(raw_len as u64), "ok".into())),
            "{name}: {got:?}"
        );
    }
    assert!(
        !unit.log()[old_log..].contains("once decompressed"),
        "nothing is decoded twice"
    );
}

#[test]
fn interrupted_uploads_are_invisible_to_filezilla_and_winscp() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "x.img", 6 << 20);
    // What a cut connection leaves: the first 2 MiB.
    let partial_dir = unit.store.join(".copyunit/partial");
    fs::create_dir_all(&partial_dir).unwrap();
    fs::write(
        partial_dir.join("x.img"),
        &fs::read(&src).unwrap()[..2 << 20],
    )
    .unwrap();
    // `images`: its own section in text, a `partial: true` row in JSON.
    let text = stdout(&unit.ssh("images"));
    assert!(text.contains("interrupted uploads"), "{text}");
    assert!(text.contains("x.img") && text.contains("2.0 MiB"), "{text}");
    let rows = unit.json("images --json");
    assert_eq!(
        rows,
        serde_json::json!([{
            "name": "x.img",
            "partial": true,
            "size": 2 << 20,
            "added": rows[0]["added"],
        }])
    );
    assert!(unit.images().is_empty(), "not an image");
    // `status`: the bytes it holds.
    let status = unit.json("status --json");
    assert_eq!(status["store"]["partial_bytes"], 2 << 20, "{status}");
    assert!(stdout(&unit.ssh("status")).contains("held by interrupted uploads"));
    // SFTP listings show it with its bytes, so a client offers a resume...
    let ls = unit.sftp("ls -l\n");
    let line = stdout(&ls)
        .lines()
        .find(|l| l.contains("x.img"))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("not listed: {}", stdout(&ls)));
    assert!(line.contains(&(2u64 << 20).to_string()), "{line}");
    // ...but it is never a source: it cannot be read back or copied.
    let back = unit.dir.path().join("back");
    let get = unit.sftp(&format!("get x.img {}\n", back.display()));
    assert!(!get.status.success(), "a partial is not downloadable");
    let copy = unit.ssh("copy x.img all");
    assert!(!copy.status.success());
    // `rm NAME` clears it.
    let rm = unit.ssh("rm x.img");
    assert!(rm.status.success(), "{}", stderr(&rm));
    assert_eq!(unit.json("images --json"), serde_json::json!([]));
    assert_eq!(unit.json("status --json")["store"]["partial_bytes"], 0);
    assert!(!partial_dir.join("x.img").exists());
}
