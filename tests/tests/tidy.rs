//! Tidy: ARCHITECTURE.md's invariants and the install lists, checked mechanically over the
//! source text, as rust-analyzer's tidy tests do. No build, no tools: it reads files.
//!
//! - every program a test, the image build or a bench runs is in `cargo xtask test`'s install
//!   list (`NEEDS` in xtask/src/test.rs), and every program `cargo xtask qemu` runs is in its
//!   own (`TOOLS` in xtask/src/qemu.rs and xtask/src/image.rs), or is always there ([`ALWAYS`]);
//! - `unsafe` only in the files ARCHITECTURE.md names, and `#![forbid(unsafe_code)]` at the
//!   root of every crate that has none of them;
//! - only unitd's ssh, sftp and dashboard use russh;
//! - model and tui do no I/O.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use copyunit_tests::workspace_root;

/// Programs every Debian 12 machine has: Essential packages (coreutils, dash, diffutils,
/// util-linux, dpkg, findutils, grep, sed, tar, gzip), the package manager that installs the
/// lists, and the toolchain that runs them.
const ALWAYS: &[&str] = &[
    // coreutils
    "cat",
    "chmod",
    "cp",
    "date",
    "dd",
    "echo",
    "false",
    "head",
    "ln",
    "ls",
    "mkdir",
    "mv",
    "rm",
    "sha256sum",
    "sleep",
    "stat",
    "sync",
    "tail",
    "tee",
    "touch",
    "true",
    "truncate",
    "wc",
    // dash, diffutils, findutils, grep, sed, tar, gzip
    "sh",
    "cmp",
    "diff",
    "find",
    "xargs",
    "grep",
    "sed",
    "tar",
    "gzip",
    // util-linux
    "blkid",
    "blockdev",
    "fallocate",
    "findmnt",
    "lsblk",
    "wipefs",
    "sfdisk",
    // dpkg and apt: what installs everything else
    "dpkg",
    "dpkg-deb",
    "apt-get",
    "apt-cache",
    // shell builtins in test scripts
    "cd",
    "printf",
    "exec",
    "export",
    "set",
    "test",
    "read",
    "exit",
    "wait",
    "trap",
    "kill",
    // the toolchain running the tests
    "cargo",
];

/// Where `unsafe` may appear (ARCHITECTURE.md, "Invariants"), each call wrapped once in a
/// small safe function.
const UNSAFE_ALLOWED: &[&str] = &[
    "drives/src/blockdev.rs",
    "optical/src/transport.rs",
    "init/src/sys.rs",
    "unitd/src/dashboard/console.rs",
];

/// The only places that may use russh or russh-sftp.
const RUSSH_ALLOWED: &[&str] = &[
    "unitd/src/ssh/",
    "unitd/src/sftp.rs",
    "unitd/src/dashboard/",
];

/// Crates that do no I/O, and what they must not name.
const NO_IO_CRATES: &[&str] = &["model", "tui"];
const IO_PATHS: &[&str] = &[
    "std::fs",
    "std::net",
    "std::process",
    "std::os",
    "tokio",
    "nix",
    "libc",
    "russh",
    "File::open",
    "File::create",
];

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Every `.rs` file under `dir`, skipping build output and hidden folders.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name == "target" {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if name.ends_with(".rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The workspace's member crates (folders), from the top Cargo.toml.
fn members(root: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .expect("workspace members");
    line.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// A source file split into code and literals.
struct Lexed {
    /// The code with comments removed and every string literal's content blanked to `""`.
    code: String,
    /// String literals: (line, content without quotes, byte offset in `code` of the literal).
    strings: Vec<(usize, String, usize)>,
}

/// A small Rust lexer: enough to tell code from comments, strings and char literals.
fn lex(src: &str) -> Lexed {
    let b: Vec<char> = src.chars().collect();
    let mut code = String::with_capacity(src.len());
    let mut strings = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if b[i] == '\n' {
                        line += 1;
                        code.push('\n');
                    }
                    i += 1;
                }
            }
            continue;
        }
        // Raw strings: r"..", r#".."#, br"..".
        let ident_before = i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_');
        let raw_start = if !ident_before && c == 'r' {
            Some(i + 1)
        } else if !ident_before && c == 'b' && next == Some('r') {
            Some(i + 2)
        } else {
            None
        };
        if let Some(mut j) = raw_start {
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) == Some(&'"') {
                let start_line = line;
                let mut s = String::new();
                j += 1;
                loop {
                    if j >= b.len() {
                        break;
                    }
                    if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                        j += 1 + hashes;
                        break;
                    }
                    if b[j] == '\n' {
                        line += 1;
                    }
                    s.push(b[j]);
                    j += 1;
                }
                strings.push((start_line, s, code.len()));
                code.push_str("\"\"");
                i = j;
                continue;
            }
        }
        if c == '"' {
            let start_line = line;
            let mut s = String::new();
            let mut j = i + 1;
            while j < b.len() && b[j] != '"' {
                if b[j] == '\\' {
                    s.push(b[j]);
                    j += 1;
                }
                if let Some(&ch) = b.get(j) {
                    if ch == '\n' {
                        line += 1;
                    }
                    s.push(ch);
                }
                j += 1;
            }
            strings.push((start_line, s, code.len()));
            code.push_str("\"\"");
            i = j + 1;
            continue;
        }
        if c == '\'' {
            // A char literal ('x', '\n', '\''), else a lifetime.
            if next == Some('\\') {
                let mut j = i + 2;
                while j < b.len() && b[j] != '\'' {
                    j += 1;
                }
                code.push_str("' '");
                i = j + 1;
                continue;
            }
            if b.get(i + 2) == Some(&'\'') {
                code.push_str("' '");
                i += 3;
                continue;
            }
        }
        if c == '\n' {
            line += 1;
        }
        code.push(c);
        i += 1;
    }
    Lexed { code, strings }
}

/// The part of a file that is test code: all of it for files under a `tests/` folder or in
/// the tests crate; after the first `#[cfg(test)]` otherwise. What is not test code is blanked
/// to its newlines, so line numbers stay right.
fn test_part(rel: &str, src: &str) -> String {
    if rel.starts_with("tests/") || rel.contains("/tests/") || rel.contains("/benches/") {
        return src.to_string();
    }
    let cut = src.find("#[cfg(test)]").unwrap_or(src.len());
    let mut out: String = src[..cut].chars().filter(|c| *c == '\n').collect();
    out.push_str(&src[cut..]);
    out
}

/// The programs a piece of source runs, with the line of each: `Command::new("x")`, paths to
/// programs (`"/usr/sbin/x"`), runner helpers (`run("x", &[..])`) and the commands of shell
/// scripts (`sh -c "x .. | y .."`, `sh("..")`).
fn programs(src: &str) -> Vec<(usize, String)> {
    let lexed = lex(src);
    let code = &lexed.code;
    let mut out = Vec::new();
    let before = |at: usize, n: usize| -> &str {
        let start = at.saturating_sub(n);
        let start = (start..=at)
            .find(|i| code.is_char_boundary(*i))
            .unwrap_or(at);
        &code[start..at]
    };
    let mut shell_next = false;
    // Whether the previous literal was the `sh` of `Command::new("sh")`.
    let mut after_sh = false;
    for (line, s, at) in &lexed.strings {
        let prev_sh = std::mem::take(&mut after_sh);
        let ctx: String = before(*at, 40)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let (callee, path) = callee(&ctx);
        let is_shell = std::mem::take(&mut shell_next) || matches!(callee, "sh" | "time_sh");
        if s == "-c" {
            // After `Command::new("sh")` the next literal is the script (not so for
            // `ssh -c CIPHER` or `gzip -c`).
            shell_next = prev_sh;
            continue;
        }
        if callee == "new" && path.ends_with("Command::") {
            let p = base(s);
            after_sh = p == "sh" || p == "bash";
            out.push((*line, p));
        } else if callee == "run" && code[*at + 2..].trim_start().starts_with(',') {
            out.push((*line, base(s)));
        } else if is_shell {
            for p in shell_commands(s) {
                out.push((*line, p));
            }
        } else if let Some(p) = program_path(s)
            && (ctx.ends_with('[') || ctx.ends_with("\"\","))
        {
            // A list of places to find a program in: `["/usr/sbin/x", "/sbin/x"]`.
            out.push((*line, p));
        }
    }
    out.retain(|(_, p)| !p.is_empty());
    out
}

/// The function a literal is the first argument of, and the path before its name:
/// `..Command::new(` -> ("new", "..Command::"), `sh(&format!(` -> ("sh", "").
fn callee(ctx: &str) -> (&str, &str) {
    let mut c = ctx;
    for wrapper in ["&format!(", "format!("] {
        if let Some(rest) = c.strip_suffix(wrapper) {
            c = rest;
        }
    }
    let Some(c) = c.strip_suffix('(') else {
        return ("", "");
    };
    let start = c
        .rfind(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
        .map_or(0, |i| i + 1);
    (&c[start..], &c[..start])
}

fn base(s: &str) -> String {
    s.rsplit('/').next().unwrap_or(s).to_string()
}

/// `/usr/sbin/x`, `/sbin/x`, `/usr/bin/x`, `/bin/x` -> `x`.
fn program_path(s: &str) -> Option<String> {
    for dir in ["/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"] {
        if let Some(name) = s.strip_prefix(dir)
            && !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c))
        {
            return Some(name.to_string());
        }
    }
    None
}

/// The command word of each pipeline element of a shell script (placeholders skipped).
fn shell_commands(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in script.split(['|', ';', '&', '\n']) {
        let mut words = part.split_whitespace();
        let Some(mut w) = words.next() else { continue };
        while w == "exec" || w.contains('=') {
            match words.next() {
                Some(n) => w = n,
                None => break,
            }
        }
        if w.starts_with(['{', '$', '>', '<', '(', '"', '\'']) || w.contains('{') {
            continue;
        }
        if w == "exec" || w.contains('=') || w.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        out.push(base(w));
    }
    out
}

/// The programs an install list names: every `("program", "package")` pair inside
/// `const NAME: &[(&str, &str)] = &[ ... ];` in `file`.
fn install_list(root: &Path, file: &str, name: &str) -> BTreeSet<String> {
    let src = std::fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let start = src
        .find(&format!("const {name}: &[(&str, &str)]"))
        .unwrap_or_else(|| panic!("{file} has no `const {name}: &[(&str, &str)]` list"));
    let body = &src[start..];
    let end = body.find("];").expect("the list ends");
    let lexed = lex(&body[..end]);
    let mut out = BTreeSet::new();
    // Pairs: the first of each two literals after the `= &[`.
    let mut it = lexed.strings.iter();
    while let (Some(prog), Some(_pkg)) = (it.next(), it.next()) {
        out.insert(prog.1.clone());
    }
    out
}

/// Finds programs in `files` (relative paths) not in `allowed`: "file:line: `prog`".
fn uncovered(
    root: &Path,
    files: &[PathBuf],
    allowed: &BTreeSet<String>,
    only_tests: bool,
) -> Vec<String> {
    let mut missing = Vec::new();
    for f in files {
        let r = rel(root, f);
        let src = std::fs::read_to_string(f).unwrap_or_default();
        let part = if only_tests { test_part(&r, &src) } else { src };
        for (line, p) in programs(&part) {
            if !allowed.contains(&p) && !ALWAYS.contains(&p.as_str()) {
                missing.push(format!("{r}:{line}: `{p}`"));
            }
        }
    }
    missing
}

#[test]
fn every_program_the_tests_run_is_in_the_install_list() {
    let root = workspace_root();
    let needs = install_list(&root, "xtask/src/test.rs", "NEEDS");
    // What the test command runs: every crate's tests (tests/ folders, #[cfg(test)] code),
    // the image build (its tests build images), and the benches.
    let mut test_files = Vec::new();
    let mut build_files = Vec::new();
    for m in members(&root) {
        for f in rust_files(&root.join(&m)) {
            let r = rel(&root, &f);
            if r.starts_with("image-build/src/") || r.starts_with("xtask/src/bench") {
                build_files.push(f);
            } else {
                test_files.push(f);
            }
        }
    }
    let mut missing = uncovered(&root, &test_files, &needs, true);
    missing.extend(uncovered(&root, &build_files, &needs, false));
    assert!(
        missing.is_empty(),
        "these programs are run by tests, the image build or benches, but `cargo xtask test` \
         does not install them: add (\"program\", \"debian-package\") to NEEDS in \
         xtask/src/test.rs:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn every_program_xtask_qemu_runs_is_in_its_install_list() {
    let root = workspace_root();
    let mut tools = install_list(&root, "xtask/src/qemu.rs", "TOOLS");
    tools.extend(install_list(&root, "xtask/src/image.rs", "TOOLS"));
    let mut files: Vec<PathBuf> = ["qemu.rs", "image.rs", "util.rs", "main.rs"]
        .iter()
        .map(|f| root.join("xtask/src").join(f))
        .collect();
    files.extend(rust_files(&root.join("image-build/src")));
    // Only the code that runs: the image builder's own unit tests are the test command's.
    let mut missing = Vec::new();
    for f in &files {
        let r = rel(&root, f);
        let src = std::fs::read_to_string(f).unwrap_or_default();
        let live = src.split("#[cfg(test)]").next().unwrap_or_default();
        for (line, p) in programs(live) {
            if !tools.contains(&p) && !ALWAYS.contains(&p.as_str()) {
                missing.push(format!("{r}:{line}: `{p}`"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "`cargo xtask qemu` runs these programs but does not install them: add \
         (\"program\", \"debian-package\") to TOOLS in xtask/src/qemu.rs (or image.rs):\n  {}",
        missing.join("\n  ")
    );
}

/// The files of the workspace that contain `unsafe` code (not in comments or strings).
fn unsafe_files(root: &Path) -> BTreeMap<String, usize> {
    let mut found = BTreeMap::new();
    for m in members(root) {
        for f in rust_files(&root.join(&m)) {
            let src = std::fs::read_to_string(&f).unwrap_or_default();
            let code = lex(&src).code;
            let n = words(&code).filter(|w| *w == "unsafe").count();
            if n > 0 {
                found.insert(rel(root, &f), n);
            }
        }
    }
    found
}

/// Identifier-like words of some code.
fn words(code: &str) -> impl Iterator<Item = &str> {
    code.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
}

#[test]
fn unsafe_only_where_architecture_md_says() {
    let root = workspace_root();
    let arch = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let rule = arch
        .lines()
        .find(|l| l.contains("`unsafe` only in"))
        .expect("ARCHITECTURE.md states where `unsafe` may be");
    let mut rule_text = rule.to_string();
    // The rule may wrap over the next lines of its bullet.
    let mut after = arch.split(rule).nth(1).unwrap_or_default().lines();
    for l in after.by_ref().skip(1) {
        if l.trim_start().starts_with('-') || l.trim().is_empty() {
            break;
        }
        rule_text.push(' ');
        rule_text.push_str(l.trim());
    }
    for allowed in UNSAFE_ALLOWED {
        // drives/src/blockdev.rs -> drives::blockdev
        let module = allowed
            .trim_end_matches(".rs")
            .replace("/src/", "::")
            .replace('/', "::");
        assert!(
            rule_text.contains(&format!("`{module}`")),
            "ARCHITECTURE.md's unsafe rule does not name `{module}`: {rule_text}"
        );
    }
    let found = unsafe_files(&root);
    let stray: Vec<String> = found
        .iter()
        .filter(|(f, _)| !UNSAFE_ALLOWED.contains(&f.as_str()))
        .map(|(f, n)| format!("{f} ({n})"))
        .collect();
    assert!(
        stray.is_empty(),
        "`unsafe` outside the places ARCHITECTURE.md names ({}): {}",
        UNSAFE_ALLOWED.join(", "),
        stray.join(", ")
    );
}

/// The root files of every crate target: src/lib.rs, src/main.rs, src/bin/*.rs, tests/*.rs,
/// tests/*/main.rs, benches/*.rs.
fn crate_roots(root: &Path, member: &str) -> Vec<PathBuf> {
    let dir = root.join(member);
    let mut out = Vec::new();
    for f in ["src/lib.rs", "src/main.rs"] {
        let p = dir.join(f);
        if p.exists() {
            out.push(p);
        }
    }
    for sub in ["src/bin", "tests", "benches"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.join("main.rs").exists() {
                    out.push(p.join("main.rs"));
                }
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_crate_without_an_unsafe_place_forbids_unsafe() {
    let root = workspace_root();
    let mut missing = Vec::new();
    for m in members(&root) {
        let prefix = format!("{m}/src/");
        let has_place = UNSAFE_ALLOWED.iter().any(|a| a.starts_with(&prefix));
        for f in crate_roots(&root, &m) {
            let r = rel(&root, &f);
            // A crate with an unsafe place: its library or binary holds it; its test and
            // bench targets are crates of their own and forbid it.
            if has_place && r.starts_with(&prefix) && (r.ends_with("lib.rs") || !has_lib(&root, &m))
            {
                continue;
            }
            let src = std::fs::read_to_string(&f).unwrap_or_default();
            if !lex(&src).code.contains("#![forbid(unsafe_code)]") {
                missing.push(r);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "these crate roots lack #![forbid(unsafe_code)]:\n  {}",
        missing.join("\n  ")
    );
}

fn has_lib(root: &Path, member: &str) -> bool {
    root.join(member).join("src/lib.rs").exists()
}

#[test]
fn only_unitd_ssh_sftp_and_dashboard_use_russh() {
    let root = workspace_root();
    let mut stray = Vec::new();
    for m in members(&root) {
        for f in rust_files(&root.join(&m)) {
            let r = rel(&root, &f);
            if RUSSH_ALLOWED.iter().any(|a| r.starts_with(a)) {
                continue;
            }
            let src = std::fs::read_to_string(&f).unwrap_or_default();
            if words(&lex(&src).code).any(|w| w == "russh" || w == "russh_sftp") {
                stray.push(r);
            }
        }
        let manifest =
            std::fs::read_to_string(root.join(&m).join("Cargo.toml")).unwrap_or_default();
        if m != "unitd"
            && manifest
                .lines()
                .any(|l| l.trim_start().starts_with("russh"))
        {
            stray.push(format!("{m}/Cargo.toml"));
        }
    }
    assert!(
        stray.is_empty(),
        "russh outside unitd's ssh, sftp and dashboard: {}",
        stray.join(", ")
    );
}

#[test]
fn model_and_tui_do_no_io() {
    let root = workspace_root();
    let mut found = Vec::new();
    for m in NO_IO_CRATES {
        for f in rust_files(&root.join(m).join("src")) {
            let r = rel(&root, &f);
            let src = std::fs::read_to_string(&f).unwrap_or_default();
            let code = lex(&src).code;
            let flat: String = code.chars().filter(|c| !c.is_whitespace()).collect();
            for bad in IO_PATHS {
                let hit = if bad.contains("::") {
                    flat.contains(bad)
                } else {
                    words(&code).any(|w| w == *bad)
                };
                if hit {
                    found.push(format!("{r}: {bad}"));
                }
            }
        }
        let manifest = std::fs::read_to_string(root.join(m).join("Cargo.toml")).unwrap_or_default();
        let deps = manifest
            .split("[dependencies]")
            .nth(1)
            .unwrap_or_default()
            .split("\n[")
            .next()
            .unwrap_or_default();
        for dep in ["tokio", "nix", "libc", "russh", "mio", "crossterm"] {
            if deps
                .lines()
                .any(|l| l.split(['=', ' ']).next() == Some(dep))
            {
                found.push(format!("{m}/Cargo.toml depends on {dep}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "model and tui must do no I/O (ARCHITECTURE.md):\n  {}",
        found.join("\n  ")
    );
}

/// The tidy checks themselves: the lexer and the program finder on known text.
#[test]
fn tidy_finds_programs_and_ignores_comments_and_strings() {
    let src = r#####"
        // Command::new("commented") is not run
        let a = Command::new("depmod").arg("-b");
        let b = Command::new("/usr/sbin/mkfs.ext4");
        let c = ["/sbin/losetup", "/usr/share/OVMF/x.fd"];
        a.add("/bin/unitd", 0o755);
        run("blkid", &["-p"]);
        run(cmd.clone());
        Command::new("sh").args(["-c", "xz -c a | zstd -d > b; exec cpio -o"]);
        Command::new("ssh").args(["-q", "-c", "aes128-ctr"]);
        sh(&format!("{tool} -c {} | gzip > x", a));
        let s = "unsafe { not code }"; let ch = '"'; let l: &'static str = "";
        /* unsafe { also not code } */
    "#####;
    let progs: Vec<String> = programs(src).into_iter().map(|(_, p)| p).collect();
    assert_eq!(
        progs,
        [
            "depmod",
            "mkfs.ext4",
            "losetup",
            "blkid",
            "sh",
            "xz",
            "zstd",
            "cpio",
            "ssh",
            "gzip"
        ]
    );
    assert!(!words(&lex(src).code).any(|w| w == "unsafe"));
    assert!(!lex(src).code.contains("commented"));
}
