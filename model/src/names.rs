//! What an image in the store may be called: the one rule unitd's store,
//! its doors and the dashboard's name field all apply.
//!
//! The store is flat. A name is one path component that cannot escape the
//! store, hide itself, or upset a terminal, at most [`MAX_NAME_LEN`] bytes
//! (ext4's NAME_MAX).

/// Longest accepted name in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// Why a name is not a store name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong,
    Escapes(String),
    Folder(String),
    Control,
    Hidden(String),
    /// The client sent bytes that are not UTF-8 (they arrive as U+FFFD):
    /// storing them under a lossy name would make a file no client can name
    /// again.
    NotUtf8,
    /// A bidirectional or zero-width format character: it makes a listing lie.
    Invisible,
}

impl std::fmt::Display for NameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NameError::Empty => write!(f, "empty file name"),
            NameError::TooLong => write!(f, "file name longer than {MAX_NAME_LEN} bytes"),
            NameError::Escapes(n) => write!(
                f,
                "`{n}` leaves the image store: only plain file names are accepted"
            ),
            NameError::Folder(n) => write!(
                f,
                "`{n}`: the image store has no folders; upload to a plain file name"
            ),
            NameError::Control => write!(f, "file name contains a control character"),
            NameError::Hidden(n) => write!(
                f,
                "`{n}`: names starting with a dot are reserved for the store"
            ),
            NameError::NotUtf8 => write!(
                f,
                "file name is not valid UTF-8: rename the file, or set your client to send UTF-8 names"
            ),
            NameError::Invisible => {
                write!(
                    f,
                    "file name contains an invisible direction or format character"
                )
            }
        }
    }
}

impl std::error::Error for NameError {}

/// Checks a bare name (no path separators at all).
pub fn check_image_name(name: &str) -> Result<(), NameError> {
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
    Ok(())
}

/// Refuses what cannot be shown or named again: control characters, the
/// replacement character a non-UTF-8 name arrives as, and the bidirectional
/// and zero-width format characters that make a listing lie. Applies to
/// whole client paths as well as to names.
pub fn check_chars(s: &str) -> Result<(), NameError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 13: unitd allowed 255 bytes and the dashboard 128 characters.
    #[test]
    fn unitd_allows_255_bytes_and_the_dashboard_128() {
        assert_eq!(check_image_name(&"x".repeat(255)), Ok(()));
        assert_eq!(check_image_name(&"x".repeat(256)), Err(NameError::TooLong));
        // Bytes, not characters: 128 two-byte letters are 256 bytes.
        assert_eq!(check_image_name(&"é".repeat(128)), Err(NameError::TooLong));
        assert!(matches!(check_image_name(".."), Err(NameError::Escapes(_))));
        assert!(matches!(check_image_name("a/b"), Err(NameError::Folder(_))));
        assert!(matches!(check_image_name(".x"), Err(NameError::Hidden(_))));
        assert_eq!(check_image_name("a\nb"), Err(NameError::Control));
        assert_eq!(check_image_name(""), Err(NameError::Empty));
    }
}
