//! The VRRP instances of one node: dispatch of received packets by interface and VRID,
//! and keepalived's sync groups (`vrrp_sync_group`).
//!
//! Sync-group semantics (keepalived `vrrp_sync.c`): when a member enters FAULT, the other
//! members follow into FAULT, and they all return to Backup once no member has a fault of
//! its own; when a member becomes Master, the members in Backup become Master too; when a
//! member leaves Master for Backup, the other Masters step down (sending priority 0 so the
//! peer group takes over after Skew_Time). A member whose Master_Down_Timer expires goes
//! Master only when every other member wants Master too (keepalived prefers Backup to
//! thrashing), and then the whole group goes Master together.

use core::net::Ipv4Addr;
use core::time::Duration;

use crate::config::{ConfigError, InstanceConfig};
use crate::instance::{DropReason, Event, Instance, State, Transmit};

/// Index of an instance in a [`Router`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId(pub usize);

/// Counters of packets no instance took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouterStats {
    /// Packets too short to carry a VRID.
    pub drop_truncated: u64,
    /// Packets for a VRID not configured on the interface.
    pub drop_not_mine: u64,
}

#[derive(Debug, Clone)]
struct SyncGroup {
    members: Vec<usize>,
}

/// The VRRP instances of a node (sans-IO).
#[derive(Debug, Clone, Default)]
pub struct Router {
    instances: Vec<Instance>,
    groups: Vec<SyncGroup>,
    group_of: Vec<Option<usize>>,
    stats: RouterStats,
}

/// Upper bound on sync propagation rounds (each round can only move members towards the
/// same state, so a handful suffices).
const MAX_SYNC_ROUNDS: usize = 16;

impl Router {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an instance. Names must be unique, and VRIDs unique per interface.
    pub fn add_instance(&mut self, cfg: InstanceConfig) -> Result<InstanceId, ConfigError> {
        for i in &self.instances {
            let c = i.config();
            if c.name == cfg.name {
                return Err(ConfigError::DuplicateName(cfg.name));
            }
            if c.interface == cfg.interface && c.virtual_router_id == cfg.virtual_router_id {
                return Err(ConfigError::DuplicateVrid {
                    interface: cfg.interface,
                    vrid: cfg.virtual_router_id,
                });
            }
        }
        self.instances.push(Instance::new(cfg)?);
        self.group_of.push(None);
        Ok(InstanceId(self.instances.len() - 1))
    }

    /// Adds a sync group (`vrrp_sync_group NAME { group { ... } }`) of named instances.
    pub fn add_sync_group(&mut self, name: &str, members: &[&str]) -> Result<(), ConfigError> {
        let mut idx = Vec::new();
        for m in members {
            let i = self
                .instances
                .iter()
                .position(|i| i.config().name == *m)
                .ok_or_else(|| ConfigError::UnknownInstance {
                    group: name.to_string(),
                    instance: (*m).to_string(),
                })?;
            if self.group_of.get(i).copied().flatten().is_some() || idx.contains(&i) {
                return Err(ConfigError::InstanceInTwoGroups((*m).to_string()));
            }
            idx.push(i);
        }
        let g = self.groups.len();
        for i in &idx {
            if let Some(slot) = self.group_of.get_mut(*i) {
                *slot = Some(g);
            }
            if let Some(inst) = self.instances.get_mut(*i) {
                inst.set_in_sync_group();
            }
        }
        self.groups.push(SyncGroup { members: idx });
        Ok(())
    }

    /// The instance with this id.
    pub fn instance(&self, id: InstanceId) -> Option<&Instance> {
        self.instances.get(id.0)
    }

    /// The id of the instance with this name.
    pub fn find(&self, name: &str) -> Option<InstanceId> {
        self.instances
            .iter()
            .position(|i| i.config().name == name)
            .map(InstanceId)
    }

    /// All instances, in id order.
    pub fn instances(&self) -> impl Iterator<Item = (InstanceId, &Instance)> {
        self.instances
            .iter()
            .enumerate()
            .map(|(i, x)| (InstanceId(i), x))
    }

    /// Counters of packets no instance took.
    pub fn stats(&self) -> &RouterStats {
        &self.stats
    }

    /// Starts every instance.
    pub fn startup(&mut self, now: Duration) {
        for i in &mut self.instances {
            i.startup(now);
        }
        self.sync(now);
    }

    /// Stops every instance (Masters send priority 0).
    pub fn shutdown(&mut self, now: Duration) {
        for i in &mut self.instances {
            i.shutdown(now);
        }
        // Stopping is not a sync-group transition.
        for i in &mut self.instances {
            i.take_transitions();
        }
    }

    /// Stops one instance (Master sends priority 0). Its sync group does not follow.
    pub fn shutdown_instance(&mut self, now: Duration, id: InstanceId) {
        if let Some(i) = self.instances.get_mut(id.0) {
            i.shutdown(now);
            i.take_transitions();
        }
    }

    /// Handles a VRRP packet received on `interface` (IP payload, with the IP header's
    /// source, destination and TTL). Returns the instance that took it.
    pub fn handle_packet(
        &mut self,
        now: Duration,
        interface: &str,
        source: Ipv4Addr,
        destination: Ipv4Addr,
        ttl: u8,
        payload: &[u8],
    ) -> Result<InstanceId, DropReason> {
        let Some(&vrid) = payload.get(1) else {
            self.stats.drop_truncated += 1;
            return Err(DropReason::Truncated);
        };
        let Some(idx) = self.instances.iter().position(|i| {
            i.config().interface == interface && i.config().virtual_router_id == vrid
        }) else {
            self.stats.drop_not_mine += 1;
            return Err(DropReason::NotMine(vrid));
        };
        let r = match self.instances.get_mut(idx) {
            Some(i) => i.handle_packet(now, source, destination, ttl, payload),
            None => Err(DropReason::NotMine(vrid)),
        };
        self.sync(now);
        r.map(|()| InstanceId(idx))
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Duration) {
        for i in &mut self.instances {
            if i.poll_timeout().is_some_and(|t| t <= now) {
                i.handle_timeout(now);
            }
        }
        self.sync(now);
    }

    /// Reports the state of a tracked interface or script to every instance tracking it.
    /// Returns how many instances track `name`.
    pub fn set_track(&mut self, now: Duration, name: &str, up: bool) -> usize {
        let mut n = 0;
        for i in &mut self.instances {
            if i.set_track(now, name, up) {
                n += 1;
            }
        }
        self.sync(now);
        n
    }

    /// Next packet to send, with the instance that sends it.
    pub fn poll_transmit(&mut self) -> Option<(InstanceId, Transmit)> {
        self.instances
            .iter_mut()
            .enumerate()
            .find_map(|(n, i)| i.poll_transmit().map(|t| (InstanceId(n), t)))
    }

    /// Next event, with its instance.
    pub fn poll_event(&mut self) -> Option<(InstanceId, Event)> {
        self.instances
            .iter_mut()
            .enumerate()
            .find_map(|(n, i)| i.poll_event().map(|e| (InstanceId(n), e)))
    }

    /// The earliest timer of all instances.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.instances
            .iter()
            .filter_map(Instance::poll_timeout)
            .min()
    }

    /// A group is in FAULT while any member has a fault of its own (keepalived
    /// vrrp_sync_fault); then every member is held in FAULT. Returns whether anything moved.
    fn settle_faults(&mut self, now: Duration) -> bool {
        let mut moved = false;
        for g in &self.groups {
            let fault = g
                .members
                .iter()
                .any(|m| self.instances.get(*m).is_some_and(Instance::own_fault));
            for m in &g.members {
                if let Some(i) = self.instances.get_mut(*m) {
                    if i.group_fault() != fault {
                        i.set_group_fault(now, fault);
                        moved = true;
                    }
                }
            }
        }
        moved
    }

    /// Moves to Master every group whose members all want Master (or already are).
    /// Returns whether any group moved.
    fn promote_groups(&mut self, now: Duration) -> bool {
        let mut moved = false;
        for g in &self.groups {
            let members = || g.members.iter().filter_map(|m| self.instances.get(*m));
            let any_wants = members().any(Instance::wants_master);
            let all_ready = members().all(|i| i.state() == State::Master || i.wants_master());
            if any_wants && all_ready {
                for m in &g.members {
                    if let Some(i) = self.instances.get_mut(*m) {
                        i.force_master(now);
                    }
                }
                moved = true;
            }
        }
        moved
    }

    /// Applies sync-group semantics to the transitions of the last input.
    fn sync(&mut self, now: Duration) {
        for _ in 0..MAX_SYNC_ROUNDS {
            let mut actions: Vec<(usize, State, State)> = Vec::new();
            for (n, i) in self.instances.iter_mut().enumerate() {
                for (from, to) in i.take_transitions() {
                    actions.push((n, from, to));
                }
            }
            if actions.is_empty() {
                if !self.settle_faults(now) && !self.promote_groups(now) {
                    return;
                }
                continue;
            }
            for (n, from, to) in actions {
                let Some(g) = self.group_of.get(n).copied().flatten() else {
                    continue;
                };
                let Some(members) = self.groups.get(g).map(|g| g.members.clone()) else {
                    continue;
                };
                let others = members.iter().filter(|m| **m != n).copied();
                match (from, to) {
                    (_, State::Master) => {
                        for m in others {
                            if let Some(i) = self.instances.get_mut(m) {
                                i.force_master(now);
                            }
                        }
                    }
                    (State::Master, State::Backup) => {
                        for m in others {
                            if let Some(i) = self.instances.get_mut(m) {
                                i.force_backup(now);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        // Give up propagating; drop what is left so that it does not leak into the next
        // input.
        for i in &mut self.instances {
            i.take_transitions();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(name: &str, vrid: u8) -> InstanceConfig {
        InstanceConfig::new(name, "eth0", vrid, Ipv4Addr::new(10, 0, 0, 1))
    }

    #[test]
    fn config_errors() {
        let mut r = Router::new();
        r.add_instance(cfg("a", 1)).unwrap();
        assert_eq!(
            r.add_instance(cfg("a", 2)),
            Err(ConfigError::DuplicateName("a".into()))
        );
        assert!(matches!(
            r.add_instance(cfg("b", 1)),
            Err(ConfigError::DuplicateVrid { .. })
        ));
        let mut other_if = cfg("b", 1);
        other_if.interface = "eth1".into();
        r.add_instance(other_if).unwrap();
        assert!(matches!(
            r.add_sync_group("g", &["a", "zz"]),
            Err(ConfigError::UnknownInstance { .. })
        ));
        r.add_sync_group("g", &["a", "b"]).unwrap();
        assert_eq!(
            r.add_sync_group("h", &["a"]),
            Err(ConfigError::InstanceInTwoGroups("a".into()))
        );
    }

    #[test]
    fn dispatch_by_interface_and_vrid() {
        let mut r = Router::new();
        r.add_instance(cfg("a", 1)).unwrap();
        let m = crate::wire::MULTICAST_ADDR;
        let src = Ipv4Addr::new(10, 0, 0, 2);
        assert_eq!(
            r.handle_packet(Duration::ZERO, "eth0", src, m, 255, &[0x21]),
            Err(DropReason::Truncated)
        );
        assert_eq!(
            r.handle_packet(Duration::ZERO, "eth0", src, m, 255, &[0x21, 9, 0, 0]),
            Err(DropReason::NotMine(9))
        );
        assert_eq!(
            r.handle_packet(Duration::ZERO, "eth1", src, m, 255, &[0x21, 1, 0, 0]),
            Err(DropReason::NotMine(1))
        );
        assert_eq!(
            r.stats(),
            &RouterStats {
                drop_truncated: 1,
                drop_not_mine: 2
            }
        );
    }
}
