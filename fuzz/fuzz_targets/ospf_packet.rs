//! Decodes arbitrary bytes as an OSPF packet: must never panic. On success the packet is
//! re-emitted and re-parsed and must give the same representation; the §8.2 validator and
//! the authentication verifier run on the input too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ospf::auth::{self, AuthKey};
use ospf::packet::{Packet, Repr};
use ospf::{Ipv4Net, RxContext};
use std::net::Ipv4Addr;

fuzz_target!(|data: &[u8]| {
    let md5 = AuthKey::Md5 {
        key_id: 1,
        key: b"k".to_vec(),
    };
    let hmac = AuthKey::HmacSha256 {
        key_id: 1,
        key: b"k".to_vec(),
    };
    for key in [&AuthKey::Null, &AuthKey::simple("pw"), &md5, &hmac] {
        let _ = auth::verify(data, key, Some(5));
        let ctx = RxContext {
            router_id: Ipv4Addr::new(9, 9, 9, 9),
            area_id: Ipv4Addr::UNSPECIFIED,
            if_net: Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 1), 24).unwrap(),
            if_addr: Ipv4Addr::new(10, 0, 0, 1),
            point_to_point: false,
            dr_or_bdr: true,
            auth: key,
        };
        let _ = ospf::validate(
            &ctx,
            Ipv4Addr::new(10, 0, 0, 2),
            ospf::ALL_SPF_ROUTERS,
            data,
            |_, _| None,
        );
    }
    let Ok(p) = Packet::new_checked(data) else {
        return;
    };
    let Ok(repr) = Repr::parse(&p) else { return };
    let bytes = repr.to_bytes();
    let again = Repr::parse(&Packet::new_checked(&bytes[..]).expect("emitted packet fits"))
        .expect("emitted packet parses");
    // LSAs discarded on the first parse are not re-emitted
    let mut want = repr.clone();
    if let ospf::packet::Body::LsUpdate(u) = &mut want.body {
        u.discarded = 0;
    }
    assert_eq!(again, want);
});
