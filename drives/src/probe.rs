//! Cheap filesystem signatures: type and label from the first 64 KiB.
//!
//! Only what a person needs to recognise a stick in a list (ext2/3/4, FAT,
//! exFAT, NTFS, ISO 9660, swap); anything else stays unknown.

/// Bytes [`identify`] looks at.
pub const PROBE_LEN: usize = 64 * 1024;

fn text(b: &[u8]) -> Option<String> {
    let s: String = String::from_utf8_lossy(b)
        .trim_end_matches(['\0', ' '])
        .trim()
        .to_owned();
    (!s.is_empty() && s != "NO NAME").then_some(s)
}

/// `(fstype, label)` from the start of a partition or disk.
pub fn identify(head: &[u8]) -> Option<(String, Option<String>)> {
    let at = |o: usize, n: usize| head.get(o..o + n);
    if at(1080, 2) == Some(&[0x53, 0xEF]) {
        // ext superblock at 1024: feature flags tell ext4 from ext2/3.
        let incompat = at(1024 + 0x60, 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .unwrap_or(0);
        let compat = at(1024 + 0x5C, 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .unwrap_or(0);
        let t = if incompat & 0x2C0 != 0 {
            "ext4"
        } else if compat & 0x4 != 0 {
            "ext3"
        } else {
            "ext2"
        };
        return Some((t.into(), at(1024 + 120, 16).and_then(text)));
    }
    if at(32769, 5) == Some(b"CD001") {
        return Some(("iso9660".into(), at(32808, 32).and_then(text)));
    }
    if at(3, 8) == Some(b"EXFAT   ") {
        return Some(("exfat".into(), None));
    }
    if at(3, 8) == Some(b"NTFS    ") {
        return Some(("ntfs".into(), None));
    }
    if at(510, 2) == Some(&[0x55, 0xAA]) {
        if at(0x52, 5) == Some(b"FAT32") {
            return Some(("vfat".into(), at(0x47, 11).and_then(text)));
        }
        if at(0x36, 3) == Some(b"FAT") {
            return Some(("vfat".into(), at(0x2B, 11).and_then(text)));
        }
    }
    if at(4096 - 10, 10) == Some(b"SWAPSPACE2") {
        return Some(("swap".into(), at(1024 + 28, 16).and_then(text)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fat32_label() {
        let mut b = vec![0u8; 4096];
        b[510] = 0x55;
        b[511] = 0xAA;
        b[0x52..0x57].copy_from_slice(b"FAT32");
        b[0x47..0x52].copy_from_slice(b"RPI-BOOT   ");
        assert_eq!(identify(&b), Some(("vfat".into(), Some("RPI-BOOT".into()))));
    }

    #[test]
    fn nothing_known() {
        assert_eq!(identify(&[0u8; 8192]), None);
    }
}
