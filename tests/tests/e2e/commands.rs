//! Exec commands: output, JSON, exit statuses, upload from stdin.

use std::io::Write;
use std::process::Stdio;

use copyunit_tests::*;

#[test]
fn status_and_images_print_text_and_json() {
    let unit = Unit::start();
    let out = unit.ssh("status");
    assert!(out.status.success());
    assert!(stdout(&out).contains("testunit"), "{}", stdout(&out));
    let s = unit.json("status --json");
    assert_eq!(s["name"], "testunit");
    assert!(
        s["host_key_fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("SHA256:")
    );
    assert!(s["store"]["free_bytes"].as_u64().unwrap() > 0);
    assert_eq!(unit.json("images --json"), serde_json::json!([]));
    assert!(unit.json("keys list --json").as_array().unwrap().len() == 1);
}

#[test]
fn bad_commands_exit_2_with_usage_and_failures_exit_1() {
    let unit = Unit::start();
    let out = unit.ssh("frobnicate");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("Usage"), "{}", stderr(&out));
    let out = unit.ssh("images --bogus");
    assert_eq!(out.status.code(), Some(2));
    let out = unit.ssh("rm nothing.img");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("nothing.img"), "{}", stderr(&out));
    let out = unit.ssh("help");
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("upload"));
    let out = unit.ssh("poweroff");
    assert_eq!(out.status.code(), Some(1), "not the appliance: refuses");
}

#[test]
fn upload_reads_the_image_from_stdin_and_rm_removes_it() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "disc.iso", 5 * 1024 * 1024 + 7);
    let out = unit.ssh_stdin("upload disc.iso --json", &std::fs::read(&src).unwrap());
    assert!(out.status.success(), "{}", stderr(&out));
    let img: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(img["sha256"], sha256sum(&src));
    assert_eq!(unit.images()[0].2, sha256sum(&src));
    assert!(unit.ssh("rm disc.iso").status.success());
    assert!(unit.images().is_empty());
}

#[test]
fn an_upload_from_stdin_cut_off_before_eof_is_not_stored() {
    let unit = Unit::start();
    let mut child = unit
        .ssh_command(Some(&unit.key.private))
        .arg("upload cut.iso")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&vec![7u8; 3 << 20]).unwrap();
    let partial = unit.store.join(".copyunit/partial/cut.iso");
    unit.wait_for("bytes to arrive", || {
        std::fs::metadata(&partial)
            .map(|m| m.len() > 0)
            .unwrap_or(false)
    });
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    unit.wait_for("unitd to notice", || unit.log().contains("interrupted"));
    assert!(unit.images().is_empty());
}

#[test]
fn a_shell_without_a_terminal_explains_and_exits_0() {
    let unit = Unit::start();
    let out = unit
        .ssh_command(Some(&unit.key.private))
        .arg("-T")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("No terminal"), "{}", stdout(&out));
}
