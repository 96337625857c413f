//! unitd's settings: command-line flags and `unit.toml`, flags winning.
//!
//! Every setting can be given in both places under the same name (`--host-key`
//! is `host_key` in the file). Defaults suit the appliance: listen on port 22
//! everywhere, keep everything on the store disk.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

pub const DEFAULT_STORE: &str = "/store";

/// Command-line flags. Each `Option` left unset falls back to the config
/// file, then to the default.
#[derive(Debug, Parser, Default)]
#[command(
    name = "unitd",
    version,
    about = "copyunit: the copy unit daemon (SSH dashboard, image store, copy jobs)"
)]
pub struct Flags {
    /// Address and port of the SSH server [default: 0.0.0.0:22]
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Directory of the image store [default: /store]
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// OpenSSH authorized_keys file of the admin [default: STORE/.copyunit/authorized_keys]
    #[arg(long, value_name = "FILE")]
    pub authorized_keys: Option<PathBuf>,
    /// Ed25519 host key, generated on first start [default: STORE/.copyunit/ssh_host_ed25519_key]
    #[arg(long, value_name = "FILE")]
    pub host_key: Option<PathBuf>,
    /// TOML file with any of these settings
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Unit name shown in the dashboard [default: the hostname]
    #[arg(long)]
    pub name: Option<String>,
    /// Login name of the admin [default: admin]
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Offer loop devices as copy targets (tests and demos)
    #[arg(long)]
    pub allow_loop_devices: bool,
    /// Offer only loop devices over files under DIR (repeatable; implies
    /// --allow-loop-devices)
    #[arg(long, value_name = "DIR")]
    pub allow_loop_devices_under: Vec<PathBuf>,
    /// Running as the appliance under copyunit's init: poweroff/reboot commands
    /// signal PID 1
    #[arg(long)]
    pub appliance: bool,
    /// The store is in RAM: say so on every screen
    #[arg(long)]
    pub volatile_store: bool,
    /// Show the dashboard on this terminal too (the unit's screen: /dev/tty1)
    #[arg(long, value_name = "TTY")]
    pub console: Option<PathBuf>,
    /// Let the console dashboard start and cancel jobs (default: view only)
    #[arg(long)]
    pub console_control: bool,
    /// Leave a burned disc in the drive instead of opening the tray
    #[arg(long)]
    pub no_eject: bool,
    /// Simulated optical drives (demos and tests; nothing here can burn a
    /// real disc): a blank disc type per burner (cd-r, cd-rw, dvd-r, dvd-rw,
    /// dvd+r, dvd+rw, dvd-ram, bd-r, bd-re; TYPE:MIB for a smaller disc) or
    /// rom=FILE for a reader holding a pressed disc of FILE; comma-separated
    #[arg(long, value_name = "SPEC,...", value_delimiter = ',')]
    pub simulate_optical: Vec<String>,
    /// More log output (-v debug, -vv trace)
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The settings file. Unknown keys are an error, so a typo is not ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub store: Option<PathBuf>,
    pub authorized_keys: Option<PathBuf>,
    pub host_key: Option<PathBuf>,
    pub name: Option<String>,
    pub user: Option<String>,
    pub allow_loop_devices: Option<bool>,
    pub allow_loop_devices_under: Option<Vec<PathBuf>>,
    pub volatile_store: Option<bool>,
    pub console: Option<PathBuf>,
    pub console_control: Option<bool>,
    /// Open the tray after a burn (default true).
    pub eject_after_burn: Option<bool>,
    pub simulate_optical: Option<Vec<String>>,
    #[serde(default)]
    pub limits: LimitsFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    pub max_unauthenticated: Option<usize>,
    pub max_per_address: Option<usize>,
    pub login_grace_secs: Option<u64>,
    pub max_auth_attempts: Option<usize>,
    pub keepalive_secs: Option<u64>,
}

/// Connection limits of the SSH server (OpenSSH's MaxStartups,
/// LoginGraceTime, MaxAuthTries, ClientAliveInterval).
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_unauthenticated: usize,
    pub max_per_address: usize,
    pub login_grace: Duration,
    pub max_auth_attempts: usize,
    pub keepalive: Duration,
}

/// The settled configuration unitd runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub store: PathBuf,
    pub authorized_keys: PathBuf,
    pub host_key: PathBuf,
    pub name: String,
    pub user: String,
    pub allow_loop_devices: bool,
    /// Only loop devices over files under these (canonical) directories.
    pub loop_devices_under: Vec<PathBuf>,
    pub appliance: bool,
    pub volatile_store: bool,
    pub console: Option<PathBuf>,
    pub console_control: bool,
    /// Open the tray when a burn is done, so the next blank can go in.
    pub eject_after_burn: bool,
    /// `--simulate-optical` specs (see [`crate::optical::Sim`]).
    pub simulate_optical: Vec<String>,
    pub limits: Limits,
    pub verbose: u8,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Merges flags over the config file (if any) over the defaults.
    pub fn resolve(flags: Flags) -> Result<Config, ConfigError> {
        let file = match &flags.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        let store = flags
            .store
            .or(file.store)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STORE));
        let meta = store.join(".copyunit");
        let user = flags.user.or(file.user).unwrap_or_else(|| "admin".into());
        if user.is_empty() || user.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(ConfigError::Invalid(format!(
                "user: `{user}` is not a valid login name"
            )));
        }
        let name = flags
            .name
            .or(file.name)
            .or_else(|| nix::unistd::gethostname().ok()?.into_string().ok())
            .unwrap_or_else(|| "copyunit".into());
        let l = file.limits;
        let limits = Limits {
            max_unauthenticated: l.max_unauthenticated.unwrap_or(16),
            max_per_address: l.max_per_address.unwrap_or(10),
            login_grace: Duration::from_secs(l.login_grace_secs.unwrap_or(60)),
            max_auth_attempts: l.max_auth_attempts.unwrap_or(6),
            keepalive: Duration::from_secs(l.keepalive_secs.unwrap_or(30)),
        };
        for (key, v) in [
            ("limits.max_unauthenticated", limits.max_unauthenticated),
            ("limits.max_per_address", limits.max_per_address),
            ("limits.max_auth_attempts", limits.max_auth_attempts),
        ] {
            if v == 0 {
                return Err(ConfigError::Invalid(format!("{key}: must be at least 1")));
            }
        }
        let simulate_optical = if flags.simulate_optical.is_empty() {
            file.simulate_optical.unwrap_or_default()
        } else {
            flags.simulate_optical
        };
        crate::optical::Optical::check_specs(&simulate_optical).map_err(ConfigError::Invalid)?;
        // The kernel names a loop device's backing file by its real path.
        let loop_devices_under: Vec<PathBuf> = if flags.allow_loop_devices_under.is_empty() {
            file.allow_loop_devices_under.unwrap_or_default()
        } else {
            flags.allow_loop_devices_under
        }
        .into_iter()
        .map(|d| std::fs::canonicalize(&d).unwrap_or(d))
        .collect();
        Ok(Config {
            listen: flags
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 22))),
            authorized_keys: flags
                .authorized_keys
                .or(file.authorized_keys)
                .unwrap_or_else(|| meta.join("authorized_keys")),
            host_key: flags
                .host_key
                .or(file.host_key)
                .unwrap_or_else(|| meta.join("ssh_host_ed25519_key")),
            store,
            name,
            user,
            allow_loop_devices: flags.allow_loop_devices
                || file.allow_loop_devices.unwrap_or(false)
                || !loop_devices_under.is_empty(),
            loop_devices_under,
            appliance: flags.appliance,
            volatile_store: flags.volatile_store || file.volatile_store.unwrap_or(false),
            console: flags.console.or(file.console),
            console_control: flags.console_control || file.console_control.unwrap_or(false),
            eject_after_burn: !flags.no_eject && file.eject_after_burn.unwrap_or(true),
            simulate_optical,
            limits,
            verbose: flags.verbose,
        })
    }
}

fn load_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().replace('\n', " "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> Result<Config, ConfigError> {
        let dir =
            std::env::temp_dir().join(format!("unitd-cfg-{}-{}", std::process::id(), text.len()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("unit.toml");
        std::fs::write(&path, text).unwrap();
        let r = Config::resolve(Flags {
            config: Some(path),
            ..Flags::default()
        });
        std::fs::remove_dir_all(&dir).unwrap();
        r
    }

    #[test]
    fn defaults_suit_the_appliance() {
        let c = Config::resolve(Flags::default()).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:22");
        assert_eq!(c.store, PathBuf::from("/store"));
        assert_eq!(
            c.host_key,
            PathBuf::from("/store/.copyunit/ssh_host_ed25519_key")
        );
        assert_eq!(c.user, "admin");
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = std::env::temp_dir().join(format!("unitd-cfg-flags-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("unit.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:2200\"\nuser = \"root\"\n").unwrap();
        let c = Config::resolve(Flags {
            config: Some(path),
            listen: Some("127.0.0.1:2300".parse().unwrap()),
            ..Flags::default()
        })
        .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(c.listen.port(), 2300);
        assert_eq!(c.user, "root");
    }

    #[test]
    fn loop_devices_under_a_directory_imply_loop_devices() {
        let c = Config::resolve(Flags {
            allow_loop_devices_under: vec!["/nonexistent/loops".into()],
            ..Flags::default()
        })
        .unwrap();
        assert!(c.allow_loop_devices);
        assert_eq!(c.loop_devices_under, [PathBuf::from("/nonexistent/loops")]);
        let c = file("allow_loop_devices_under = [\"/nonexistent/x\"]\n").unwrap();
        assert!(c.allow_loop_devices);
        assert!(
            !Config::resolve(Flags::default())
                .unwrap()
                .allow_loop_devices
        );
    }

    #[test]
    fn a_bad_key_is_named() {
        let e = file("lisen = \"0.0.0.0:22\"\n").unwrap_err().to_string();
        assert!(e.contains("lisen"), "{e}");
        let e = file("listen = \"nowhere\"\n").unwrap_err().to_string();
        assert!(e.contains("listen"), "{e}");
        let e = file("[limits]\nmax_per_address = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("limits.max_per_address"), "{e}");
    }
}
