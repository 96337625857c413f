//! Image names: what a client may call a file in the store.
//!
//! The store is flat. A name is one path component that cannot escape the
//! store, hide itself, or upset a terminal. Clients send paths (`/x.img`,
//! `./x.img`, `x.img`); [`ImageName::from_client_path`] reduces them to a name
//! or says precisely why not.

use std::fmt;

pub use copyunit_model::names::{MAX_NAME_LEN, NameError};

/// A validated name of a file in the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageName(String);

impl ImageName {
    /// Validates a bare name (no path separators at all).
    pub fn new(name: &str) -> Result<Self, NameError> {
        copyunit_model::names::check_image_name(name).map(|()| ImageName(name.to_string()))
    }

    /// Reduces a client path to a name: `/a`, `./a`, `a`, `//a` are `a`.
    /// Returns `Ok(None)` for the store root itself (`/`, `.`, ``).
    pub fn from_client_path(path: &str) -> Result<Option<Self>, NameError> {
        copyunit_model::names::check_chars(path)?;
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
