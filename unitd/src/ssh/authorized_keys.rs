//! One `authorized_keys` line, read as OpenSSH's sshd reads it
//! (sshd(8), "AUTHORIZED_KEYS FILE FORMAT"): bytes, not text, so a comment
//! in Latin-1 is just a comment; `[options] keytype base64 [comment]`; a
//! line that is not a key, or whose options we cannot honour, is an error
//! for that line only.
//!
//! Options honoured: `from=` (address patterns with `*`/`?`, `!` negation
//! and CIDR, as sshd matches them with `UseDNS no`), `expiry-time=`,
//! `restrict`, `[no-]pty` (no dashboard), `command=` (a unitd command line,
//! or `internal-sftp`: SFTP only), and the forwarding options
//! (`[no-]port-forwarding`, `[no-]agent-forwarding`, `[no-]X11-forwarding`,
//! `permitopen=`, `permitlisten=`, `tunnel=`): unitd forwards nothing, so
//! they are kept for when it does. `[no-]user-rc` and `environment=` have
//! nothing to act on (sshd ignores `environment=` by default too).
//! Refused, with the line: `cert-authority`/`principals=` (no certificate
//! logins), `touch-required`/`verify-required` (russh does not let us see
//! a security key's flags), and any option we do not know.

use std::net::IpAddr;

use russh::keys::{Algorithm, PublicKey};

/// What a key line allows. `Default` is a line without options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOptions {
    /// `from=` patterns, as written.
    pub from: Option<String>,
    /// `expiry-time=`: seconds since the epoch after which the key is dead.
    pub expiry: Option<u64>,
    /// The dashboard (a pty) is allowed.
    pub pty: bool,
    pub port_forwarding: bool,
    pub agent_forwarding: bool,
    pub x11_forwarding: bool,
    /// `command=`: what runs whatever the client asked.
    pub command: Option<Forced>,
    pub permitopen: Vec<String>,
    pub permitlisten: Vec<String>,
}

impl Default for KeyOptions {
    fn default() -> Self {
        KeyOptions {
            from: None,
            expiry: None,
            pty: true,
            port_forwarding: true,
            agent_forwarding: true,
            x11_forwarding: true,
            command: None,
            permitopen: Vec::new(),
            permitlisten: Vec::new(),
        }
    }
}

/// A forced command (`command="..."`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forced {
    /// `internal-sftp` (or an `sftp-server` path): SFTP and nothing else.
    Sftp,
    /// A unitd command line, run instead of any exec, shell or subsystem.
    Command(String),
}

/// What an exec or shell request runs, after the key's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Run {
    /// The client's own request (a command line; `None`: the shell).
    Requested(Option<String>),
    /// The key's forced command (the client's request was logged).
    Forced(String),
    /// Not allowed for this key; the reason.
    Refused(&'static str),
}

impl KeyOptions {
    /// Whether a login from `ip` at `now` (seconds since the epoch) may use
    /// this line; the reason if not.
    pub fn permits(&self, ip: IpAddr, now: u64) -> Result<(), String> {
        if let Some(expiry) = self.expiry
            && now > expiry
        {
            return Err("the key's expiry-time has passed".into());
        }
        if let Some(from) = &self.from
            && !from_matches(from, ip)
        {
            return Err(format!("{ip} is not in the key's from=\"{from}\""));
        }
        Ok(())
    }

    /// What an exec (`requested` = its command line) or a shell (`None`)
    /// runs for this key.
    pub fn run(&self, requested: Option<&str>) -> Run {
        match &self.command {
            None => Run::Requested(requested.map(str::to_string)),
            Some(Forced::Command(c)) => Run::Forced(c.clone()),
            Some(Forced::Sftp) => Run::Refused("this key may only be used for SFTP"),
        }
    }

    /// Whether the `sftp` subsystem may start.
    pub fn sftp(&self) -> bool {
        matches!(self.command, None | Some(Forced::Sftp))
    }
}

/// One parsed key line.
#[derive(Debug, Clone)]
pub struct KeyLine {
    pub key: PublicKey,
    pub options: KeyOptions,
    /// The options as written (for `keys list`), lossy UTF-8.
    pub options_text: String,
    /// The comment, lossy UTF-8 (a Latin-1 "José" shows as "Jos�").
    pub comment: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("not a public key ({0})")]
    Key(String),
    #[error("bad options: {0}")]
    Syntax(String),
    #[error("option {0:?} is not supported by copyunit: the key is refused")]
    Unsupported(String),
    #[error("option {name}=\"{value}\": {why}")]
    Value {
        name: &'static str,
        value: String,
        why: String,
    },
}

/// Parses one line (without its newline). `Ok(None)`: blank or comment.
pub fn parse_line(line: &[u8]) -> Result<Option<KeyLine>, LineError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line); // edited on Windows
    let line = trim_start(line);
    if line.is_empty() || line[0] == b'#' {
        return Ok(None);
    }
    if let Some((key, comment)) = read_key(line)? {
        return Ok(Some(KeyLine {
            key,
            options: KeyOptions::default(),
            options_text: String::new(),
            comment,
        }));
    }
    let end = options_end(line)?;
    let (opts, rest) = line.split_at(end);
    let rest = trim_start(rest);
    // Without a key after it, the first word was no option list either:
    // say so rather than complain about its "options".
    let Some((key, comment)) = read_key(rest)? else {
        return Err(LineError::Key(format!(
            "no key type where one should be: {}",
            preview(line)
        )));
    };
    Ok(Some(KeyLine {
        key,
        options: parse_options(opts)?,
        options_text: String::from_utf8_lossy(opts).into_owned(),
        comment,
    }))
}

fn trim_start(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
    &s[n..]
}

/// The first word and the rest after its whitespace.
fn word(s: &[u8]) -> (&[u8], &[u8]) {
    let n = s.iter().take_while(|b| !matches!(b, b' ' | b'\t')).count();
    (&s[..n], trim_start(&s[n..]))
}

fn preview(s: &[u8]) -> String {
    let text = String::from_utf8_lossy(&s[..s.len().min(40)]).into_owned();
    if s.len() > 40 {
        format!("{text}...")
    } else {
        text
    }
}

/// `keytype base64 [comment]` at the start of `s`: `Ok(None)` when the first
/// word is no key type (then it must be options).
fn read_key(s: &[u8]) -> Result<Option<(PublicKey, String)>, LineError> {
    let (kind, rest) = word(s);
    let Ok(kind) = std::str::from_utf8(kind) else {
        return Ok(None);
    };
    let Ok(algorithm) = Algorithm::new(kind) else {
        return Ok(None);
    };
    if algorithm == Algorithm::Dsa {
        return Err(LineError::Key(
            "ssh-dss (DSA) keys are refused, as by OpenSSH 9.8 and later".into(),
        ));
    }
    let (blob, comment) = word(rest);
    let blob = std::str::from_utf8(blob)
        .map_err(|_| LineError::Key(format!("{kind}: the key is not base64")))?;
    if blob.is_empty() {
        return Err(LineError::Key(format!("{kind} without its key")));
    }
    let key = PublicKey::from_openssh(&format!("{kind} {blob}"))
        .map_err(|e| LineError::Key(format!("{kind}: {e}")))?;
    if key.algorithm() != algorithm {
        return Err(LineError::Key(format!(
            "the line says {kind} but the key is {}",
            key.algorithm()
        )));
    }
    let comment = String::from_utf8_lossy(comment).trim_end().to_string();
    Ok(Some((key, comment)))
}

/// Where the options end: the first space or tab outside double quotes
/// (`\"` inside quotes does not close them).
fn options_end(s: &[u8]) -> Result<usize, LineError> {
    let mut quoted = false;
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b' ' | b'\t' if !quoted => return Ok(i),
            b'\\' if quoted && s.get(i + 1) == Some(&b'"') => i += 1,
            b'"' => quoted = !quoted,
            _ => {}
        }
        i += 1;
    }
    if quoted {
        Err(LineError::Syntax("a quote is not closed".into()))
    } else {
        Err(LineError::Key(format!(
            "no key on the line: {}",
            preview(s)
        )))
    }
}

/// Parses `opt,opt="value",...` as sshd does: names case-insensitive,
/// flags applied in order (`restrict,pty` allows a pty, `pty,restrict` not).
fn parse_options(mut s: &[u8]) -> Result<KeyOptions, LineError> {
    let mut o = KeyOptions::default();
    while !s.is_empty() {
        let name_len = s.iter().take_while(|b| !matches!(b, b',' | b'=')).count();
        let name = String::from_utf8_lossy(&s[..name_len]).to_ascii_lowercase();
        s = &s[name_len..];
        let value = if s.first() == Some(&b'=') {
            let (v, rest) = dequote(&s[1..], &name)?;
            s = rest;
            Some(v)
        } else {
            None
        };
        let (flag, on) = match name.strip_prefix("no-") {
            Some(f) => (f, false),
            None => (name.as_str(), true),
        };
        match (flag, on, value) {
            ("restrict", true, None) => {
                o.pty = false;
                o.port_forwarding = false;
                o.agent_forwarding = false;
                o.x11_forwarding = false;
            }
            ("pty", _, None) => o.pty = on,
            ("port-forwarding", _, None) => o.port_forwarding = on,
            ("agent-forwarding", _, None) => o.agent_forwarding = on,
            ("x11-forwarding", _, None) => o.x11_forwarding = on,
            // No rc files here; asking for less user presence is fine.
            ("user-rc", _, None) | ("touch-required" | "verify-required", false, None) => {}
            ("command", true, Some(v)) => o.command = Some(forced(v)?),
            ("from", true, Some(v)) => {
                check_patterns(&v)?;
                o.from = Some(v);
            }
            ("expiry-time", true, Some(v)) => {
                let t = parse_time(&v).ok_or_else(|| LineError::Value {
                    name: "expiry-time",
                    value: v.clone(),
                    why: "not YYYYMMDD[HHMM[SS]][Z]".into(),
                })?;
                o.expiry = Some(t);
            }
            ("permitopen", true, Some(v)) => o.permitopen.push(v),
            ("permitlisten", true, Some(v)) => o.permitlisten.push(v),
            ("tunnel", true, Some(v)) => {
                if v.parse::<u32>().is_err() && v != "any" {
                    return Err(LineError::Value {
                        name: "tunnel",
                        value: v,
                        why: "not a tunnel device number".into(),
                    });
                }
            }
            // sshd ignores it unless PermitUserEnvironment; so do we.
            ("environment", true, Some(v)) => {
                if !v.contains('=') {
                    return Err(LineError::Value {
                        name: "environment",
                        value: v,
                        why: "not NAME=value".into(),
                    });
                }
            }
            _ => return Err(LineError::Unsupported(name)),
        }
        match s.first() {
            None => break,
            Some(b',') if s.len() > 1 => s = &s[1..],
            Some(b',') => return Err(LineError::Syntax("the options end with a comma".into())),
            Some(_) => {
                return Err(LineError::Syntax(format!(
                    "unexpected {} after option {name}",
                    preview(s)
                )));
            }
        }
    }
    Ok(o)
}

/// `"value"` with `\"` for a quote; returns the value and what follows.
fn dequote<'a>(s: &'a [u8], name: &str) -> Result<(String, &'a [u8]), LineError> {
    if s.first() != Some(&b'"') {
        return Err(LineError::Syntax(format!(
            "the value of {name}= must be in double quotes"
        )));
    }
    let mut out = Vec::new();
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'\\' if s.get(i + 1) == Some(&b'"') => {
                out.push(b'"');
                i += 2;
                continue;
            }
            b'"' => {
                let v = String::from_utf8(out)
                    .map_err(|_| LineError::Syntax(format!("the value of {name}= is not UTF-8")))?;
                return Ok((v, &s[i + 1..]));
            }
            b => out.push(b),
        }
        i += 1;
    }
    Err(LineError::Syntax(format!(
        "the value of {name}= has no closing quote"
    )))
}

fn forced(v: String) -> Result<Forced, LineError> {
    let first = v.split_whitespace().next().unwrap_or("");
    if first == "internal-sftp" || first.ends_with("/sftp-server") {
        return Ok(Forced::Sftp);
    }
    match crate::commands::check(&v) {
        Ok(()) => Ok(Forced::Command(v)),
        Err(why) => Err(LineError::Value {
            name: "command",
            value: v,
            why: format!("not a copyunit command ({why}): the key is refused"),
        }),
    }
}

/// Checks `from=` patterns: none empty, CIDR masks consistent.
fn check_patterns(list: &str) -> Result<(), LineError> {
    for p in list.split(',') {
        let p = p.strip_prefix('!').unwrap_or(p);
        if p.is_empty() {
            return Err(LineError::Value {
                name: "from",
                value: list.to_string(),
                why: "an empty pattern".into(),
            });
        }
        if let Some(Err(why)) = cidr(p) {
            return Err(LineError::Value {
                name: "from",
                value: list.to_string(),
                why,
            });
        }
    }
    Ok(())
}

/// `ADDR` or `ADDR/BITS`: `None` when it is no address (then it is a
/// wildcard pattern), an error when the mask does not fit the address.
fn cidr(p: &str) -> Option<Result<(IpAddr, u8), String>> {
    let (addr, bits) = match p.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (p, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        None => max,
        Some(b) => match b.parse::<u8>() {
            Ok(b) if b <= max => b,
            _ => return Some(Err(format!("{p}: bad mask length"))),
        },
    };
    if masked(addr, bits) != addr {
        return Some(Err(format!(
            "{p}: host bits set (inconsistent mask length)"
        )));
    }
    Some(Ok((addr, bits)))
}

fn masked(addr: IpAddr, bits: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

/// sshd's `from=`: a negated pattern that matches refuses, else any match
/// admits. Patterns are CIDR blocks, addresses, or wildcards over the
/// address text (no DNS: as sshd's default `UseDNS no`).
pub fn from_matches(list: &str, ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    let text = ip.to_string();
    let mut admitted = false;
    for p in list.split(',') {
        let (neg, p) = match p.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, p),
        };
        let hit = match cidr(p) {
            Some(Ok((net, bits))) => net.is_ipv4() == ip.is_ipv4() && masked(ip, bits) == net,
            Some(Err(_)) => return false,
            None => !p.is_empty() && wildcard(p.as_bytes(), text.as_bytes()),
        };
        if hit && neg {
            return false;
        }
        admitted |= hit;
    }
    admitted
}

/// `*` and `?` glob, ASCII case-insensitive; linear backtracking.
fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p].eq_ignore_ascii_case(&text[t])) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|b| *b == b'*')
}

/// `YYYYMMDD[HHMM[SS]][Z]` as seconds since the epoch. Without `Z` sshd
/// takes local time; the unit's clock is UTC, so both mean UTC here.
pub fn parse_time(s: &str) -> Option<u64> {
    let s = s.strip_suffix(['Z', 'z']).unwrap_or(s);
    if !s.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&s.len()) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|d| d.parse::<u32>().ok());
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, sec) = match s.len() {
        8 => (0, 0, 0),
        12 => (num(8..10)?, num(10..12)?, 0),
        _ => (num(8..10)?, num(10..12)?, num(12..14)?),
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if y < 1970 || !(1..=12).contains(&mo) || d == 0 || d > month_days[mo as usize - 1] {
        return None;
    }
    if h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, mo, d) = (i64::from(y), i64::from(mo), i64::from(d));
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(sec);
    u64::try_from(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOB: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    fn line(s: &str) -> Result<Option<KeyLine>, LineError> {
        parse_line(s.as_bytes())
    }

    fn opts(o: &str) -> KeyOptions {
        line(&format!("{o} ssh-ed25519 {BLOB} c"))
            .unwrap_or_else(|e| panic!("{o}: {e}"))
            .unwrap()
            .options
    }

    fn refused(o: &str) -> LineError {
        line(&format!("{o} ssh-ed25519 {BLOB} c")).unwrap_err()
    }

    #[test]
    fn blank_and_comment_lines_are_no_key() {
        for l in ["", "   ", "\t", "# a comment", "  # indented", "\r"] {
            assert!(line(l).unwrap().is_none(), "{l:?}");
        }
    }

    #[test]
    fn a_latin1_comment_is_a_comment() {
        let mut l = format!("ssh-ed25519 {BLOB} Jos").into_bytes();
        l.push(0xe9); // é in ISO-8859-1
        let k = parse_line(&l).unwrap().unwrap();
        assert_eq!(k.comment, "Jos\u{fffd}");
        assert_eq!(k.options, KeyOptions::default());
        // Windows line ends, leading blanks, comments with spaces.
        let k = line(&format!("  ssh-ed25519 {BLOB} alice at home\r"))
            .unwrap()
            .unwrap();
        assert_eq!(k.comment, "alice at home");
    }

    #[test]
    fn lines_that_are_not_keys_are_errors_of_their_own() {
        for l in [
            "hello world",
            "ssh-ed25519",
            "ssh-ed25519 AAAA",
            "ssh-ed25519 not-base64!",
            &format!("ssh-rsa {BLOB}"),
            &format!("ssh-dss {BLOB}"),
            &format!("no-pty,\"unclosed ssh-ed25519 {BLOB}"),
            &format!("no-pty, ssh-ed25519 {BLOB}"),
        ] {
            assert!(line(l).is_err(), "{l:?}");
        }
    }

    #[test]
    fn options_with_quoted_spaces_commas_and_escapes() {
        let o = opts(r#"command="status --json",from="127.0.0.1,10.0.0.0/8""#);
        assert_eq!(o.command, Some(Forced::Command("status --json".into())));
        assert_eq!(o.from.as_deref(), Some("127.0.0.1,10.0.0.0/8"));
        let o = opts(r#"command="images \"--json\"""#);
        assert_eq!(o.command, Some(Forced::Command("images \"--json\"".into())));
        assert_eq!(
            opts("command=\"internal-sftp\"").command,
            Some(Forced::Sftp)
        );
        assert!(
            !opts("command=\"internal-sftp\"")
                .run(Some("status"))
                .eq(&Run::Requested(None))
        );
        assert!(opts("command=\"internal-sftp\"").sftp());
        assert!(!opts("command=\"status\"").sftp());
    }

    #[test]
    fn restrict_and_flags() {
        let o = opts("restrict");
        assert!(!o.pty && !o.port_forwarding && !o.agent_forwarding && !o.x11_forwarding);
        let o = opts("restrict,pty");
        assert!(o.pty && !o.port_forwarding, "pty re-allows after restrict");
        assert!(!opts("pty,restrict").pty, "in order, as sshd");
        assert!(opts("no-touch-required,no-verify-required").pty);
        let o = opts("NO-PTY,no-agent-forwarding,no-X11-forwarding,no-port-forwarding,no-user-rc");
        assert!(!o.pty && !o.agent_forwarding && !o.x11_forwarding && !o.port_forwarding);
        let o =
            opts(r#"permitopen="localhost:80",permitlisten="8080",tunnel="0",environment="A=b""#);
        assert_eq!(o.permitopen, ["localhost:80"]);
        assert_eq!(o.permitlisten, ["8080"]);
    }

    #[test]
    fn options_we_cannot_honour_refuse_the_line() {
        for o in [
            "frobnicate",
            "cert-authority",
            r#"principals="alice""#,
            "touch-required",
            "verify-required",
            "no-frobnicate",
            r#"command="/usr/bin/rrsync /backup""#,
            r#"command="status --no-such-flag""#,
            r#"from="10.0.0.1/8""#,
            r#"from="!""#,
            r#"expiry-time="2026-01-01""#,
            r#"expiry-time="20261301""#,
            "command=status",
        ] {
            let e = refused(o);
            assert!(!e.to_string().is_empty(), "{o}");
        }
        assert_eq!(
            refused("frobnicate"),
            LineError::Unsupported("frobnicate".into())
        );
        assert!(matches!(
            line("this line is no key"),
            Err(LineError::Key(_))
        ));
    }

    #[test]
    fn from_patterns_match_as_sshd_does() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(from_matches("127.0.0.1", ip("127.0.0.1")));
        assert!(from_matches("10.0.0.0/8,127.0.0.0/8", ip("127.0.0.1")));
        assert!(!from_matches("10.0.0.0/8", ip("127.0.0.1")));
        assert!(from_matches("127.0.0.*", ip("127.0.0.1")));
        assert!(from_matches("127.?.0.1", ip("127.0.0.1")));
        assert!(!from_matches("!127.0.0.1,*", ip("127.0.0.1")));
        assert!(from_matches("!10.0.0.1,*", ip("127.0.0.1")));
        assert!(!from_matches("*,!127.0.0.0/8", ip("127.0.0.1")));
        assert!(from_matches("::1", ip("::1")));
        assert!(from_matches("127.0.0.1", ip("::ffff:127.0.0.1")));
        assert!(!from_matches("::/0", ip("127.0.0.1")));
        assert!(from_matches("0.0.0.0/0", ip("192.168.1.9")));
        assert!(!from_matches("", ip("127.0.0.1")));
        assert!(!wildcard(b"a*a*a*a*a*a*b", &[b'a'; 60]));
    }

    #[test]
    fn expiry_time() {
        assert_eq!(parse_time("19700101"), Some(0));
        assert_eq!(parse_time("20000301Z"), Some(951_868_800));
        assert_eq!(parse_time("202001020304"), Some(1_577_934_240));
        assert_eq!(parse_time("20200102030405"), Some(1_577_934_245));
        assert_eq!(parse_time("20240229"), Some(1_709_164_800));
        assert_eq!(parse_time("20230229"), None);
        assert_eq!(parse_time("2020010203"), None);
        let o = opts(r#"expiry-time="20200101""#);
        let ip = "127.0.0.1".parse().unwrap();
        assert!(o.permits(ip, 1_577_836_800).is_ok());
        assert!(o.permits(ip, 1_577_836_801).is_err());
        let o = opts(r#"from="10.0.0.0/8""#);
        assert!(o.permits(ip, 0).is_err());
    }
}
