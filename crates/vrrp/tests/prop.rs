//! Property tests: codec round trip, and the state machine under arbitrary input.

use core::net::Ipv4Addr;
use core::time::Duration;

use proptest::prelude::*;
use vrrp::wire::MULTICAST_ADDR;
use vrrp::{Auth, InstanceConfig, Router, State, Track, Version, VrrpPacket, VrrpRepr};

fn repr() -> impl Strategy<Value = VrrpRepr> {
    (
        any::<bool>(),
        any::<u8>(),
        any::<u8>(),
        any::<u16>(),
        proptest::option::of(any::<[u8; 8]>()),
        proptest::collection::vec(any::<u32>(), 0..20),
    )
        .prop_map(|(v3, vrid, priority, interval, auth, addrs)| {
            let version = if v3 { Version::V3 } else { Version::V2 };
            VrrpRepr {
                version,
                vrid,
                priority,
                interval: if v3 {
                    interval & 0x0fff
                } else {
                    interval & 0xff
                },
                auth: match (v3, auth) {
                    (false, Some(a)) => Auth::Simple(a),
                    _ => Auth::None,
                },
                addresses: addrs.into_iter().map(Ipv4Addr::from).collect(),
            }
        })
}

proptest! {
    #[test]
    fn emit_then_parse_is_identity(r in repr(), src in any::<u32>(), dst in any::<u32>()) {
        let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
        let bytes = r.to_bytes(src, dst).unwrap();
        prop_assert_eq!(bytes.len(), r.buffer_len());
        let p = VrrpPacket::new_checked(&bytes[..]).unwrap();
        prop_assert_eq!(VrrpRepr::parse(&p, src, dst).unwrap(), r);
    }

    #[test]
    fn router_survives_arbitrary_input(
        inputs in proptest::collection::vec(
            (0u64..5_000, any::<u8>(), proptest::collection::vec(any::<u8>(), 0..64), any::<bool>()),
            0..200,
        )
    ) {
        let mut router = Router::new();
        for (n, vrid) in [(1u8, 51u8), (2, 52)] {
            let mut c = InstanceConfig::new(format!("VI_{n}"), "eth0", vrid, Ipv4Addr::new(10, 0, 0, 1));
            c.version = if n == 1 { Version::V2 } else { Version::V3 };
            c.track_interface.push(Track::new("eth1", 0));
            router.add_instance(c).unwrap();
        }
        router.add_sync_group("G", &["VI_1", "VI_2"]).unwrap();
        router.startup(Duration::ZERO);
        let mut now = Duration::ZERO;
        for (dt, ttl, mut payload, flip) in inputs {
            now += Duration::from_millis(dt);
            router.handle_timeout(now);
            // No timer is left overdue.
            prop_assert!(router.poll_timeout().map_or(true, |t| t > now));
            if flip {
                router.set_track(now, "eth1", ttl % 2 == 0);
            }
            // Steer half the inputs to a configured VRID and a valid version.
            if payload.len() >= 2 && ttl % 3 == 0 {
                payload[0] = 0x21;
                payload[1] = 51;
            }
            let _ = router.handle_packet(now, "eth0", Ipv4Addr::new(10, 0, 0, 2), MULTICAST_ADDR, ttl, &payload);
            while router.poll_transmit().is_some() {}
            while router.poll_event().is_some() {}
            // A sync group is never split between Master and FAULT.
            let states: Vec<State> = router.instances().map(|(_, i)| i.state()).collect();
            prop_assert!(!(states.contains(&State::Master) && states.contains(&State::Fault)), "{:?}", states);
        }
    }
}
