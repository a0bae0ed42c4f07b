//! Instance configuration, named after keepalived's `vrrp_instance` keywords.

use core::net::Ipv4Addr;
use core::time::Duration;

use crate::wire::Version;

/// Errors in an instance or sync-group configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `virtual_router_id` must be 1..=255.
    #[error("virtual_router_id must be 1..=255")]
    BadVrid,
    /// `priority` must be 1..=255.
    #[error("priority must be 1..=255")]
    BadPriority,
    /// `advert_int` out of range: whole seconds 1..=255 for v2, 10 ms..=40.95 s in
    /// centiseconds for v3.
    #[error("advert_int {0:?} cannot be encoded for this version")]
    BadAdvertInt(Duration),
    /// Authentication is a VRRPv2 feature (RFC 5798 removed it).
    #[error("authentication is only supported with VRRP version 2")]
    AuthWithV3,
    /// More than 255 virtual addresses.
    #[error("too many virtual_ipaddress entries")]
    TooManyAddresses,
    /// A tracked item is listed twice.
    #[error("track `{0}` listed twice")]
    DuplicateTrack(String),
    /// Two instances on one interface share a VRID.
    #[error("VRID {vrid} is used twice on interface {interface}")]
    DuplicateVrid {
        /// Interface name.
        interface: String,
        /// The VRID.
        vrid: u8,
    },
    /// An instance name is used twice.
    #[error("instance name `{0}` is used twice")]
    DuplicateName(String),
    /// A sync group names an instance that does not exist.
    #[error("sync group `{group}` names unknown instance `{instance}`")]
    UnknownInstance {
        /// Group name.
        group: String,
        /// Missing instance name.
        instance: String,
    },
    /// An instance belongs to two sync groups.
    #[error("instance `{0}` is in two sync groups")]
    InstanceInTwoGroups(String),
}

/// keepalived's `state`: the state the operator wishes at start.
///
/// As keepalived 2.2.7 does (measured in the lab), an instance that is not the address
/// owner starts in Backup whatever this says, and becomes Master only after
/// Master_Down_Interval without a better advertisement. The value is kept for reports
/// and for the keepalived importer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitialState {
    /// `state MASTER`.
    Master,
    /// `state BACKUP` (the default).
    #[default]
    Backup,
}

/// keepalived's `authentication { auth_type PASS auth_pass ... }` (VRRPv2 only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authentication {
    /// `auth_pass`: at most 8 bytes are used, as keepalived does.
    pub auth_pass: String,
}

/// A tracked interface or script (`track_interface`, `track_script`) with its weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// Name the daemon uses when it reports the item's state.
    pub name: String,
    /// keepalived's `weight`: 0 means the instance goes to FAULT while the item is down;
    /// a positive weight is added to the priority while the item is up; a negative weight
    /// is added while the item is down.
    pub weight: i32,
}

impl Track {
    /// A tracked item with the given weight.
    pub fn new(name: impl Into<String>, weight: i32) -> Self {
        Track {
            name: name.into(),
            weight,
        }
    }
}

/// Configuration of one VRRP instance (`vrrp_instance NAME { ... }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceConfig {
    /// Instance name (`vrrp_instance NAME`).
    pub name: String,
    /// `state MASTER|BACKUP`.
    pub state: InitialState,
    /// `interface`.
    pub interface: String,
    /// Primary IPv4 address of `interface`: the source of multicast adverts and the
    /// tie-break address (`mcast_src_ip` in keepalived).
    pub source_ip: Ipv4Addr,
    /// `virtual_router_id` (1..=255).
    pub virtual_router_id: u8,
    /// `priority` (1..=255, 255 = address owner; keepalived's default is 100).
    pub priority: u8,
    /// `advert_int` (default 1 s).
    pub advert_int: Duration,
    /// `nopreempt`.
    pub nopreempt: bool,
    /// `preempt_delay`: after startup, or after first seeing a lower-priority master, wait
    /// this long before preempting it (0 = preempt at once).
    pub preempt_delay: Duration,
    /// `authentication { auth_type PASS; auth_pass ... }` (v2 only).
    pub authentication: Option<Authentication>,
    /// `virtual_ipaddress`.
    pub virtual_ipaddress: Vec<Ipv4Addr>,
    /// `unicast_src_ip`: the source address of unicast adverts (default `source_ip`).
    pub unicast_src_ip: Option<Ipv4Addr>,
    /// `unicast_peer`: when not empty, adverts go to each peer instead of 224.0.0.18.
    pub unicast_peer: Vec<Ipv4Addr>,
    /// `track_interface`.
    pub track_interface: Vec<Track>,
    /// `track_script`: also how the daemon feeds a health-check quorum in.
    pub track_script: Vec<Track>,
    /// `version` (keepalived's `vrrp_version`, default 2).
    pub version: Version,
    /// `accept` / `no_accept`: v3 Accept_Mode — a non-owner Master accepts packets
    /// addressed to the VIPs (RFC 5798 §6.1). keepalived accepts unless `no_accept` or
    /// `vrrp_strict` is set, so the default here is true. Reported in
    /// [`crate::InstanceInfo`]; the daemon applies it.
    pub accept: bool,
    /// `use_vmac`: the daemon uses the virtual MAC 00-00-5E-00-01-VRID.
    pub use_vmac: bool,
    /// `garp_master_delay`: delay of the second GARP burst after becoming Master (default
    /// 5 s; 0 = no second burst).
    pub garp_master_delay: Duration,
    /// `garp_master_repeat`: GARPs per VIP in each burst after becoming Master (default 5).
    pub garp_master_repeat: u32,
    /// `garp_master_refresh`: interval of GARP refreshes while Master (default 0 = off).
    pub garp_master_refresh: Duration,
    /// `garp_master_refresh_repeat`: GARPs per VIP in each refresh (default 1).
    pub garp_master_refresh_repeat: u32,
}

impl InstanceConfig {
    /// A configuration with keepalived's defaults: v2, priority 100, advert_int 1 s,
    /// preempt on, accept mode on, GARP delay 5 s × 5, no refresh.
    pub fn new(
        name: impl Into<String>,
        interface: impl Into<String>,
        virtual_router_id: u8,
        source_ip: Ipv4Addr,
    ) -> Self {
        InstanceConfig {
            name: name.into(),
            state: InitialState::Backup,
            interface: interface.into(),
            source_ip,
            virtual_router_id,
            priority: 100,
            advert_int: Duration::from_secs(1),
            nopreempt: false,
            preempt_delay: Duration::ZERO,
            authentication: None,
            virtual_ipaddress: Vec::new(),
            unicast_src_ip: None,
            unicast_peer: Vec::new(),
            track_interface: Vec::new(),
            track_script: Vec::new(),
            version: Version::V2,
            accept: true,
            use_vmac: false,
            garp_master_delay: Duration::from_secs(5),
            garp_master_repeat: 5,
            garp_master_refresh: Duration::ZERO,
            garp_master_refresh_repeat: 1,
        }
    }

    /// The advertisement interval in the unit of the wire field: seconds for v2,
    /// centiseconds for v3.
    pub fn wire_interval(&self) -> Result<u16, ConfigError> {
        let bad = ConfigError::BadAdvertInt(self.advert_int);
        match self.version {
            Version::V2 => {
                if self.advert_int.subsec_nanos() != 0 {
                    return Err(bad);
                }
                match u16::try_from(self.advert_int.as_secs()) {
                    Ok(s @ 1..=255) => Ok(s),
                    _ => Err(bad),
                }
            }
            Version::V3 => {
                if self.advert_int.as_nanos() % 10_000_000 != 0 {
                    return Err(bad);
                }
                match u16::try_from(self.advert_int.as_millis() / 10) {
                    Ok(cs @ 1..=0x0fff) => Ok(cs),
                    _ => Err(bad),
                }
            }
        }
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.virtual_router_id == 0 {
            return Err(ConfigError::BadVrid);
        }
        if self.priority == 0 {
            return Err(ConfigError::BadPriority);
        }
        self.wire_interval()?;
        if self.authentication.is_some() && self.version == Version::V3 {
            return Err(ConfigError::AuthWithV3);
        }
        if self.virtual_ipaddress.len() > 255 {
            return Err(ConfigError::TooManyAddresses);
        }
        let mut names: Vec<&str> = Vec::new();
        for t in self.track_interface.iter().chain(&self.track_script) {
            if names.contains(&t.name.as_str()) {
                return Err(ConfigError::DuplicateTrack(t.name.clone()));
            }
            names.push(&t.name);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> InstanceConfig {
        InstanceConfig::new("VI_1", "eth0", 51, Ipv4Addr::new(10, 0, 0, 1))
    }

    #[test]
    fn intervals_per_version() {
        let mut c = cfg();
        assert_eq!(c.wire_interval(), Ok(1));
        c.advert_int = Duration::from_millis(1500);
        assert!(c.wire_interval().is_err());
        c.version = Version::V3;
        assert_eq!(c.wire_interval(), Ok(150));
        c.advert_int = Duration::from_millis(1505);
        assert!(c.wire_interval().is_err());
        c.advert_int = Duration::from_millis(40_950);
        assert_eq!(c.wire_interval(), Ok(4095));
        c.advert_int = Duration::from_millis(40_960);
        assert!(c.wire_interval().is_err());
        c.version = Version::V2;
        c.advert_int = Duration::from_secs(256);
        assert!(c.wire_interval().is_err());
        c.advert_int = Duration::ZERO;
        assert!(c.wire_interval().is_err());
    }

    #[test]
    fn validate_rejects_bad_values() {
        assert_eq!(cfg().validate(), Ok(()));
        let mut c = cfg();
        c.virtual_router_id = 0;
        assert_eq!(c.validate(), Err(ConfigError::BadVrid));
        let mut c = cfg();
        c.priority = 0;
        assert_eq!(c.validate(), Err(ConfigError::BadPriority));
        let mut c = cfg();
        c.version = Version::V3;
        c.authentication = Some(Authentication {
            auth_pass: "x".into(),
        });
        assert_eq!(c.validate(), Err(ConfigError::AuthWithV3));
        let mut c = cfg();
        c.track_interface.push(Track::new("eth1", 0));
        c.track_script.push(Track::new("eth1", -10));
        assert_eq!(
            c.validate(),
            Err(ConfigError::DuplicateTrack("eth1".into()))
        );
    }
}
