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
    if name.chars().any(|c| c.is_control()) {
        return Err(NameError::Control);
    }
    if name.contains('/') || name.contains('\\') {
        return Err(NameError::Folder(name.to_string()));
    }
    if name.starts_with('.') {
        return Err(NameError::Hidden(name.to_string()));
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
