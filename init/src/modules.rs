//! Kernel modules: the depmod index in the initramfs, loading by name and by device modalias.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::glob;

/// What depmod wrote for one kernel, read once.
pub struct Index {
    dir: PathBuf,
    /// module name -> (path relative to `dir`, every module it needs, in modules.dep order)
    deps: HashMap<String, (String, Vec<String>)>,
    /// (pattern, module name) from modules.alias
    aliases: Vec<(String, String)>,
    builtin: HashSet<String>,
    loaded: HashSet<String>,
}

/// `kernel/drivers/ata/libata.ko` -> `libata`; `usb-storage` -> `usb_storage`.
pub fn module_name(path_or_name: &str) -> String {
    let base = path_or_name.rsplit('/').next().unwrap_or(path_or_name);
    let base = base.split(".ko").next().unwrap_or(base);
    base.replace('-', "_")
}

impl Index {
    /// Reads modules.dep, modules.alias and modules.builtin under `dir` (/lib/modules/VERSION).
    pub fn load(dir: &Path) -> std::io::Result<Index> {
        let dep = std::fs::read_to_string(dir.join("modules.dep"))?;
        let alias = std::fs::read_to_string(dir.join("modules.alias")).unwrap_or_default();
        let builtin = std::fs::read_to_string(dir.join("modules.builtin")).unwrap_or_default();
        let mut index = Index::parse(&dep, &alias, &builtin);
        index.dir = dir.to_path_buf();
        Ok(index)
    }

    /// An index with no modules: built-in drivers only.
    pub fn empty() -> Index {
        Index::parse("", "", "")
    }

    fn parse(dep: &str, alias: &str, builtin: &str) -> Index {
        let mut deps = HashMap::new();
        for line in dep.lines() {
            let Some((path, needs)) = line.split_once(':') else {
                continue;
            };
            let needs = needs.split_whitespace().map(module_name).collect();
            deps.insert(module_name(path), (path.to_string(), needs));
        }
        let aliases = alias
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                match (w.next(), w.next(), w.next()) {
                    (Some("alias"), Some(pat), Some(name)) => {
                        Some((pat.to_string(), module_name(name)))
                    }
                    _ => None,
                }
            })
            .collect();
        let builtin = builtin.lines().map(module_name).collect();
        Index {
            dir: PathBuf::new(),
            deps,
            aliases,
            builtin,
            loaded: HashSet::new(),
        }
    }

    /// The modules whose alias patterns match a device's modalias.
    pub fn for_alias(&self, modalias: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .aliases
            .iter()
            .filter(|(pat, _)| glob::matches(pat.as_bytes(), modalias.as_bytes()))
            .map(|(_, name)| name.clone())
            .collect();
        names.dedup();
        names
    }

    /// Loads a module and everything it needs. Unknown and built-in modules are fine (Ok(false)).
    pub fn load_module(&mut self, name: &str) -> Result<bool, String> {
        let name = module_name(name);
        if self.loaded.contains(&name) || self.builtin.contains(&name) {
            return Ok(false);
        }
        let Some((path, needs)) = self.deps.get(&name).cloned() else {
            return Ok(false);
        };
        // Mark first so a dependency cycle (which depmod forbids anyway) cannot recurse forever.
        self.loaded.insert(name.clone());
        // modules.dep lists dependencies with the deepest last: load from the end.
        for need in needs.iter().rev() {
            self.load_module(need)?;
        }
        let file = File::open(self.dir.join(&path)).map_err(|e| format!("module {name}: {e}"))?;
        match nix::kmod::finit_module(&file, c"", nix::kmod::ModuleInitFlags::empty()) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(true),
            // The hardware is not there (crc32c_intel on a CPU without SSE4.2): nothing to do.
            Err(nix::errno::Errno::ENODEV) => Ok(false),
            Err(e) => Err(format!("module {name}: {e}")),
        }
    }

    /// Loads every module matching `modalias`; returns the names loaded now.
    pub fn load_alias(&mut self, modalias: &str) -> Vec<String> {
        let mut now = Vec::new();
        for name in self.for_alias(modalias) {
            match self.load_module(&name) {
                Ok(true) => now.push(name),
                Ok(false) => {}
                // A driver that refuses a device (missing firmware, wrong variant) is not fatal.
                Err(e) => crate::say!("{e}"),
            }
        }
        now
    }
}

/// Every `modalias` under /sys/devices: the coldplug pass for devices present at boot.
pub fn sysfs_modaliases(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            // Symlinks in sysfs point back up the tree: following them would loop.
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file()
                && e.file_name() == "modalias"
                && let Ok(s) = std::fs::read_to_string(e.path())
            {
                let s = s.trim();
                if !s.is_empty() {
                    out.push(s.to_string());
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_depmod_output() {
        let dep = "kernel/drivers/ata/ahci.ko: kernel/drivers/ata/libahci.ko kernel/drivers/ata/libata.ko\n\
                   kernel/drivers/ata/libahci.ko: kernel/drivers/ata/libata.ko\n\
                   kernel/drivers/ata/libata.ko:\n\
                   kernel/drivers/usb/storage/usb-storage.ko:\n";
        let alias = "# Aliases extracted from modules themselves.\n\
                     alias pci:v*d*sv*sd*bc01sc06i01* ahci\n\
                     alias usb:v*p*d*dc*dsc*dp*ic08isc06ip50in* usb_storage\n";
        let idx = Index::parse(dep, alias, "kernel/fs/ext4/ext4.ko\n");
        assert_eq!(idx.deps["ahci"].1, vec!["libahci", "libata"]);
        assert_eq!(
            idx.for_alias("pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01"),
            vec!["ahci"]
        );
        assert_eq!(
            idx.for_alias("usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00"),
            vec!["usb_storage"]
        );
        assert!(idx.builtin.contains("ext4"));
        assert!(idx.deps.contains_key("usb_storage"));
    }

    #[test]
    fn names_are_normalised() {
        assert_eq!(
            module_name("kernel/drivers/usb/storage/usb-storage.ko"),
            "usb_storage"
        );
        assert_eq!(module_name("sd_mod"), "sd_mod");
        assert_eq!(module_name("x/y.ko.xz"), "y");
    }
}
