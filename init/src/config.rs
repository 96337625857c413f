//! unit.toml: the settings a user may edit on the boot partition before first boot.
//!
//! PID 1 reads what it acts on (name, `[network]`, `store_label`) and ignores the rest; unitd
//! gets the rest (its own settings, which it checks strictly) through `for_unitd`.

use std::net::Ipv4Addr;

use serde::Deserialize;

/// The store's filesystem label when unit.toml names none.
pub const STORE_LABEL: &str = "COPYUNIT-STORE";

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default)]
pub struct Config {
    /// Host name, and the unit's name on the dashboard.
    pub name: String,
    pub network: Network,
    /// Filesystem label of the image store.
    pub store_label: String,
    /// How much unitd logs on the serial line: "info" (default), "debug" or "trace". The boot
    /// line's `copyunit.log=LEVEL` wins.
    pub log: Option<String>,
}

/// The keys of unit.toml that are PID 1's, not unitd's.
const INIT_KEYS: &[&str] = &["network", "store_label", "log"];

/// unit.toml without PID 1's keys: the settings file unitd is given.
pub fn for_unitd(text: &str) -> Result<String, String> {
    let mut table: toml::Table = text.parse().map_err(|e| format!("unit.toml: {e}"))?;
    for k in INIT_KEYS {
        table.remove(*k);
    }
    toml::to_string(&table).map_err(|e| format!("unit.toml: {e}"))
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Network {
    /// Static IPv4 address with prefix, e.g. "192.168.1.50/24"; DHCP when absent.
    pub address: Option<String>,
    pub gateway: Option<Ipv4Addr>,
    /// The NIC the static address goes on; the first wired NIC when absent.
    pub interface: Option<String>,
    pub dns: Vec<Ipv4Addr>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            name: "copyunit".into(),
            network: Network::default(),
            store_label: STORE_LABEL.into(),
            log: None,
        }
    }
}

impl Config {
    /// Parses unit.toml; a broken file is reported and the defaults are used (the unit must boot).
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| format!("unit.toml: {e}"))
    }
}

/// unitd's log level flags: the boot line's `copyunit.log=LEVEL` (`boot_line`), else
/// unit.toml's `log`, else info (no flag). An unknown level is reported and info is used.
pub fn unitd_log_flags(
    boot_line: Option<&str>,
    unit_toml: Option<&str>,
) -> (Vec<String>, Option<String>) {
    let (level, from) = match (boot_line, unit_toml) {
        (Some(l), _) => (l, "copyunit.log on the boot line"),
        (None, Some(l)) => (l, "log in unit.toml"),
        (None, None) => ("info", ""),
    };
    match level.trim().to_ascii_lowercase().as_str() {
        "info" | "" => (Vec::new(), None),
        "debug" => (vec!["-v".into()], None),
        "trace" => (vec!["-vv".into()], None),
        other => (
            Vec::new(),
            Some(format!(
                "{from}: unknown log level {other:?} (info, debug or trace): logging at info"
            )),
        ),
    }
}

/// "192.168.1.50/24" -> (address, netmask).
pub fn parse_cidr(s: &str) -> Result<(Ipv4Addr, Ipv4Addr), String> {
    let (addr, len) = s.split_once('/').unwrap_or((s, "24"));
    let addr: Ipv4Addr = addr.trim().parse().map_err(|_| {
        format!("network.address {s:?} is not an IPv4 address like 192.168.1.50/24")
    })?;
    let len: u32 = len
        .trim()
        .parse()
        .ok()
        .filter(|l| *l <= 32)
        .ok_or_else(|| format!("network.address {s:?} has a bad prefix length"))?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Ok((addr, Ipv4Addr::from(mask)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_static_address() {
        assert_eq!(Config::parse("").expect("empty is fine"), Config::default());
        let c = Config::parse(
            "name = \"bench-3\"\nunknown = 1\n[network]\naddress = \"10.1.2.3/16\"\ngateway = \"10.1.0.1\"\n[jobs]\nverify = true\n",
        )
        .expect("valid");
        assert_eq!(c.name, "bench-3");
        assert_eq!(c.store_label, STORE_LABEL);
        let (a, m) = parse_cidr(c.network.address.as_deref().unwrap_or_default()).expect("cidr");
        assert_eq!(a, Ipv4Addr::new(10, 1, 2, 3));
        assert_eq!(m, Ipv4Addr::new(255, 255, 0, 0));
        assert!(parse_cidr("10.1.2.3/40").is_err());
        assert!(Config::parse("name = 3").is_err());
        assert_eq!(
            Config::parse("log = \"debug\"\n")
                .expect("log")
                .log
                .as_deref(),
            Some("debug")
        );
        let rest = for_unitd("name = \"a\"\nstore_label = \"X\"\n[network]\naddress = \"1.2.3.4/8\"\n[limits]\nkeepalive_secs = 5\n")
            .expect("valid");
        assert_eq!(rest, "name = \"a\"\n\n[limits]\nkeepalive_secs = 5\n");
        assert_eq!(for_unitd("log = \"debug\"\n").expect("valid"), "");
    }

    /// Issue 15: the appliance logged at debug on the serial line (PID 1 always passed -v).
    #[test]
    fn appliance_logs_at_info_by_default_debug_from_unit_toml_or_boot_line() {
        let flags = |b, t| unitd_log_flags(b, t).0;
        assert!(flags(None, None).is_empty(), "info by default");
        assert_eq!(flags(None, Some("debug")), ["-v"]);
        assert_eq!(flags(Some("debug"), None), ["-v"]);
        assert_eq!(flags(Some("trace"), Some("info")), ["-vv"]);
        assert!(
            flags(Some("info"), Some("debug")).is_empty(),
            "the boot line wins"
        );
        let (f, warning) = unitd_log_flags(None, Some("loud"));
        assert!(f.is_empty());
        assert!(warning.is_some_and(|w| w.contains("loud")));
    }
}
