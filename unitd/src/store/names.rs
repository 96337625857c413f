//! Image names: what a client may call a file in the store.
//!
//! The store is flat. A name is one path component that cannot escape the
//! store, hide itself, or upset a terminal. Clients send paths (`/x.img`,
//! `./x.img`, `x.img`); [`ImageName::from_client_path`] reduces them to a name
//! or says precisely why not.

use std::fmt;

/// Longest accepted name in bytes (ext4's NAME_MAX).
pub const MAX_NAME_LEN: usize = 255;

/// A validated name of a file in the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("empty file name")]
    Empty,
    #[error("file name longer than {MAX_NAME_LEN} bytes")]
    TooLong,
    #[error("`{0}` leaves the image store: only plain file names are accepted")]
    Escapes(String),
    #[error("`{0}`: the image store has no folders; upload to a plain file name")]
    Folder(String),
    #[error("file name contains a control character")]
    Control,
    #[error("`{0}`: names starting with a dot are reserved for the store")]
    Hidden(String),
    /// The client sent bytes that are not UTF-8 (russh-sftp hands them on as
    /// U+FFFD): storing them under a lossy name would make a file no client
    /// can name again.
    #[error(
        "file name is not valid UTF-8: rename the file, or set your client to send UTF-8 names"
    )]
    NotUtf8,
    #[error("file name contains an invisible direction or format character")]
    Invisible,
}

impl ImageName {
    /// Validates a bare name (no path separators at all).
    pub fn new(name: &str) -> Result<Self, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong);
        }
        if name == "." || name == ".." {
            return Err(NameError::Escapes(name.to_string()));
        }
        check_chars(name)?;
        if name.contains('/') || name.contains('\\') {
            return Err(NameError::Folder(name.to_string()));
        }
        if name.starts_with('.') {
            return Err(NameError::Hidden(name.to_string()));
        }
        Ok(ImageName(name.to_string()))
    }

    /// Reduces a client path to a name: `/a`, `./a`, `a`, `//a` are `a`.
    /// Returns `Ok(None)` for the store root itself (`/`, `.`, ``).
    pub fn from_client_path(path: &str) -> Result<Option<Self>, NameError> {
        check_chars(path)?;
        let mut parts = Vec::new();
        for part in path.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(NameError::Escapes(path.to_string())),
                p => parts.push(p),
            }
        }
        match parts.as_slice() {
            [] => Ok(None),
            [one] => Self::new(one).map(Some),
            _ => Err(NameError::Folder(path.to_string())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Refuses what cannot be shown or named again: control characters, the
/// replacement character a non-UTF-8 name arrives as, and the bidirectional
/// and zero-width format characters that make a listing lie.
fn check_chars(s: &str) -> Result<(), NameError> {
    for c in s.chars() {
        if c.is_control() {
            return Err(NameError::Control);
        }
        if c == char::REPLACEMENT_CHARACTER {
            return Err(NameError::NotUtf8);
        }
        if matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
        {
            return Err(NameError::Invisible);
        }
    }
    Ok(())
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(p: &str) -> Result<Option<String>, NameError> {
        ImageName::from_client_path(p).map(|n| n.map(|n| n.0))
    }

    #[test]
    fn client_paths_reduce_to_plain_names() {
        assert_eq!(client("/debian.iso"), Ok(Some("debian.iso".into())));
        assert_eq!(client("./debian.iso"), Ok(Some("debian.iso".into())));
        assert_eq!(client("//debian.iso"), Ok(Some("debian.iso".into())));
        assert_eq!(client("/"), Ok(None));
        assert_eq!(client("."), Ok(None));
        assert_eq!(client(""), Ok(None));
    }

    #[test]
    fn nothing_escapes_the_store() {
        assert!(matches!(
            client("../etc/passwd"),
            Err(NameError::Escapes(_))
        ));
        assert!(matches!(client("/../x"), Err(NameError::Escapes(_))));
        assert!(matches!(client("a/../../x"), Err(NameError::Escapes(_))));
        assert!(matches!(client("/etc/passwd"), Err(NameError::Folder(_))));
        assert!(matches!(ImageName::new(".."), Err(NameError::Escapes(_))));
    }

    #[test]
    fn control_characters_hidden_and_long_names_are_refused() {
        assert_eq!(client("a\u{1b}[2Jb"), Err(NameError::Control));
        assert_eq!(ImageName::new("a\nb"), Err(NameError::Control));
        assert!(matches!(
            ImageName::new(".copyunit"),
            Err(NameError::Hidden(_))
        ));
        assert_eq!(ImageName::new(&"x".repeat(256)), Err(NameError::TooLong));
        assert!(ImageName::new(&"x".repeat(255)).is_ok());
        assert!(ImageName::new("ubuntu 24.04 (desktop).iso").is_ok());
        assert!(ImageName::new("débian-ünïcode.img").is_ok());
    }

    #[test]
    fn a_non_utf8_name_is_refused_not_stored_lossily() {
        // What russh-sftp makes of the Latin-1 bytes `caf\xe9.img`.
        let lossy = String::from_utf8_lossy(b"caf\xe9.img").into_owned();
        assert_eq!(client(&lossy), Err(NameError::NotUtf8));
        assert_eq!(
            client(&format!("/{lossy}")),
            Err(NameError::NotUtf8),
            "a path too"
        );
        assert_eq!(
            ImageName::new("evil\u{202e}gmi.exe"),
            Err(NameError::Invisible)
        );
    }

    #[test]
    fn the_stores_own_metadata_cannot_be_named() {
        for p in [
            ".copyunit",
            "/.copyunit",
            ".copyunit/catalog.json",
            "/.copyunit/partial/x.img",
            "../.copyunit/catalog.json",
            "images/x.img",
            "..",
            "/..",
            ".catalog.json.tmp",
        ] {
            assert!(client(p).is_err(), "{p} must be refused");
        }
    }
}
