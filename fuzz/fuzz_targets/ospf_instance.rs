//! Feeds arbitrary packet sequences into an `Instance` (one broadcast interface, null
//! authentication): the state machines must never panic. Each record of the input is
//! `[delay in 100 ms units][source host byte][length][bytes...]`; the OSPF checksum of
//! each packet is fixed up (and LSA checksums too) so that validation lets most packets
//! through to the protocol code.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ospf::checksum::{internet_checksum, lsa_checksum};
use ospf::{Instance, InstanceConfig, InterfaceConfig, Ipv4Net};
use std::net::Ipv4Addr;
use std::time::Duration;

fn fix(p: &mut [u8]) {
    if p.len() < 24 {
        return;
    }
    // router id must not be ours, version 2, area 0, AuType 0
    p[0] = 2;
    p[8..12].copy_from_slice(&[0, 0, 0, 0]);
    p[14] = 0;
    p[15] = 0;
    let len = (p.len() as u16).to_be_bytes();
    p[2] = len[0];
    p[3] = len[1];
    // Hellos: matching mask and timers so that neighbors form
    if p[1] == 1 && p.len() >= 44 {
        p[24..28].copy_from_slice(&[255, 255, 255, 0]);
        p[28..30].copy_from_slice(&[0, 1]);
        p[30] |= 0x02;
        p[32..36].copy_from_slice(&[0, 0, 0, 4]);
    }
    // LSAs in an LS Update: fix their checksums where the lengths make sense
    if p[1] == 4 && p.len() >= 28 {
        let mut at = 28;
        while at + 20 <= p.len() {
            let l = usize::from(u16::from_be_bytes([p[at + 18], p[at + 19]]));
            if l < 20 || at + l > p.len() {
                break;
            }
            let c = lsa_checksum(&p[at..at + l]);
            p[at + 16..at + 18].copy_from_slice(&c.to_be_bytes());
            at += l;
        }
    }
    p[12] = 0;
    p[13] = 0;
    let c = internet_checksum(&[&p[..16], &p[24..]]);
    p[12..14].copy_from_slice(&c.to_be_bytes());
}

fuzz_target!(|data: &[u8]| {
    let mut cfg = InstanceConfig::new(Ipv4Addr::new(10, 0, 0, 1));
    let mut i = InterfaceConfig::new(1, "eth0", Ipv4Addr::new(10, 0, 0, 1), 24);
    i.hello_interval = Duration::from_secs(1);
    i.dead_interval = Duration::from_secs(4);
    cfg.interfaces = vec![i];
    cfg.min_ls_interval = Duration::ZERO;
    let mut now = Duration::ZERO;
    let mut inst = Instance::new(cfg, now);
    inst.interface_up(now, 1);
    inst.announce(
        now,
        Ipv4Net::new(Ipv4Addr::new(192, 0, 2, 1), 32).unwrap(),
        0,
        None,
    );
    let mut rest = data;
    while rest.len() >= 3 {
        let delay = u64::from(rest[0]);
        let host = rest[1].max(2);
        let len = usize::from(rest[2]).min(rest.len() - 3);
        let mut pkt = rest[3..3 + len].to_vec();
        rest = &rest[3 + len..];
        now += Duration::from_millis(100 * delay);
        while let Some(t) = inst.poll_timeout() {
            if t > now {
                break;
            }
            inst.handle_timeout(t);
        }
        fix(&mut pkt);
        let dst = if host % 3 == 0 {
            Ipv4Addr::new(10, 0, 0, 1)
        } else {
            ospf::ALL_SPF_ROUTERS
        };
        inst.handle_packet(now, 1, Ipv4Addr::new(10, 0, 0, host), dst, &pkt);
        while inst.poll_transmit().is_some() {}
        while inst.poll_event().is_some() {}
        let _ = inst.routes();
        let _ = inst.neighbors(now);
        let _ = inst.database(now);
    }
    inst.shutdown(now);
    let _ = inst.poll_timeout();
});
