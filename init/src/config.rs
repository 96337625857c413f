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
}

/// The keys of unit.toml that are PID 1's, not unitd's.
const INIT_KEYS: &[&str] = &["network", "store_label"];

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
        }
    }
}

impl Config {
    /// Parses unit.toml; a broken file is reported and the defaults are used (the unit must boot).
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| format!("unit.toml: {e}"))
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
        let rest = for_unitd("name = \"a\"\nstore_label = \"X\"\n[network]\naddress = \"1.2.3.4/8\"\n[limits]\nkeepalive_secs = 5\n")
            .expect("valid");
        assert_eq!(rest, "name = \"a\"\n\n[limits]\nkeepalive_secs = 5\n");
    }
}
