//! Decodes arbitrary bytes as an LSA: must never panic. On success the typed LSA is
//! re-encoded (fresh checksum) and re-parsed and must give the same LSA; the LSDB
//! comparison and the SPF run on a database holding it must not panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ospf::lsa::Lsa;
use ospf::lsdb::{compare, Lsdb};
use ospf::packet::WireLsa;
use ospf::spf::{Spf, SpfInterface};
use std::net::Ipv4Addr;
use std::time::Duration;

fuzz_target!(|raw: &[u8]| {
    let _ = ospf::checksum::lsa_checksum_valid(raw);
    let _ = Lsa::parse(raw);
    // give the input a valid Fletcher checksum so that the body decoders are reached
    let mut fixed = raw.to_vec();
    if let Some(l) = fixed
        .get(18..20)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    {
        if (20..=fixed.len()).contains(&l) {
            let c = ospf::checksum::lsa_checksum(&fixed[..l]);
            fixed[16..18].copy_from_slice(&c.to_be_bytes());
        }
    }
    let data = &fixed[..];
    let Ok((lsa, n)) = Lsa::parse(data) else {
        return;
    };
    assert!(n <= data.len());
    let mut l2 = lsa.clone();
    let Ok(bytes) = l2.to_bytes() else { return };
    let (again, m) = Lsa::parse(&bytes).expect("re-encoded LSA parses");
    assert_eq!(m, bytes.len());
    assert_eq!(again.body, lsa.body);
    assert_eq!(again.key(), lsa.key());
    let _ = compare(&lsa.header, &again.header);
    let mut db = Lsdb::new();
    db.install(
        Duration::ZERO,
        WireLsa {
            lsa: lsa.clone(),
            bytes: data[..n].to_vec(),
        },
        None,
    );
    let ifs = [SpfInterface {
        ifindex: 1,
        addr: Ipv4Addr::new(10, 0, 0, 1),
        prefix_len: 24,
    }];
    let _ = Spf::new().full(lsa.header.adv_router, &db, Duration::from_secs(1), &ifs);
    let _ = Spf::new().full(
        Ipv4Addr::new(10, 0, 0, 1),
        &db,
        Duration::from_secs(1),
        &ifs,
    );
});
