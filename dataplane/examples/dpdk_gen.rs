//! A small DPDK traffic generator for the forwarding benchmark (docs/dpdk.md): TCP
//! segments of `FLOWS` flows from 10.0.0.2 to a VIP, sent as fast as one lcore can over
//! one port. First one SYN per flow, then ACKs round-robin over the flows.
//!
//! Usage (EAL arguments after `--`): `dpdk_gen DST_MAC SECONDS FLOWS -- EAL...`; the
//! port is DPDK port 0 (e.g. `--vdev=net_af_packet0,iface=g0`).

use dpdk_sys::{Eal, Mbuf, MbufArray, Mempool, Port};
use std::time::{Duration, Instant};

const VIP: [u8; 4] = [10, 0, 0, 100];
const CLIENT: [u8; 4] = [10, 0, 0, 2];

/// RFC 1071 sum over `parts`, folded and complemented.
fn csum(parts: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    for p in parts {
        for w in p.chunks(2) {
            let hi = u32::from(w.first().copied().unwrap_or(0)) << 8;
            sum += hi | u32::from(w.get(1).copied().unwrap_or(0));
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A 60-byte Ethernet/IPv4/TCP frame (no payload, padded).
fn frame(dst: [u8; 6], src: [u8; 6], sport: u16, flags: u8, seq: u32) -> [u8; 60] {
    let mut f = [0u8; 60];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip = &mut f[14..34];
    ip.copy_from_slice(&[
        0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    ip[12..16].copy_from_slice(&CLIENT);
    ip[16..20].copy_from_slice(&VIP);
    let c = csum(&[ip]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut tcp = [0u8; 20];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&1u32.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    tcp[14..16].copy_from_slice(&29200u16.to_be_bytes());
    let pseudo = [&CLIENT[..], &VIP[..], &[0, 6, 0, 20]].concat();
    let c = csum(&[&pseudo, &tcp]);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    f[34..54].copy_from_slice(&tcp);
    f
}

/// Sends frames of `set` round-robin until `until` or `max` frames; returns how many
/// the driver took.
fn blast<'e>(
    port: &Port<'e>,
    pool: &Mempool<'e>,
    q: &mut MbufArray<'e>,
    set: &[[u8; 60]],
    until: Instant,
    max: u64,
) -> u64 {
    let (mut n, mut i) = (0u64, 0u64);
    while n < max && Instant::now() < until {
        while !q.is_full() && i < max {
            let Ok(mut m) = Mbuf::alloc(pool) else { break };
            let f = set.get((i % set.len().max(1) as u64) as usize);
            if let (Ok(buf), Some(f)) = (m.append(60), f) {
                buf.copy_from_slice(f);
            }
            i += 1;
            let _ = q.push(m);
        }
        n += port.tx_burst(0, q).unwrap_or(0) as u64;
    }
    n
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let split = args
        .iter()
        .position(|a| a == "--")
        .ok_or("missing -- EAL args")?;
    let mine = args.get(1..split).ok_or("usage")?;
    let [mac, secs, flows] = mine else {
        return Err("usage: dpdk_gen DST_MAC SECONDS FLOWS -- EAL...".into());
    };
    let dst: Vec<u8> = mac
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<_, _>>()?;
    let dst: [u8; 6] = dst.try_into().map_err(|_| "bad MAC")?;
    let secs: u64 = secs.parse()?;
    let flows: u16 = flows.parse()?;
    let mut eal_args = vec!["dpdk_gen".to_owned()];
    eal_args.extend(args.iter().skip(split + 1).cloned());
    let eal = Eal::init(&eal_args)?;
    let pool = Mempool::pktmbuf(&eal, "gen", 8191, 256, 2176, eal.socket_id())?;
    let mut port = Port::from_id(&eal, 0)?;
    port.configure(1, 1, 512, 1024, &pool)?;
    port.start()?;
    let src = port.mac_addr()?;
    let syns: Vec<[u8; 60]> = (0..flows)
        .map(|i| frame(dst, src, 10000 + i, 0x02, 1000))
        .collect();
    let acks: Vec<[u8; 60]> = (0..flows)
        .map(|i| frame(dst, src, 10000 + i, 0x10, 1001))
        .collect();
    let mut q = MbufArray::new();
    // SYNs in three rounds: the receiving af_packet ring may drop some of a burst, and
    // ACKs of a flow without a connection are dropped (NotSyn).
    let mut sent = 0;
    for _ in 0..3 {
        let until = Instant::now() + Duration::from_secs(1);
        sent += blast(&port, &pool, &mut q, &syns, until, u64::from(flows));
        std::thread::sleep(Duration::from_millis(100));
    }
    let t0 = Instant::now();
    sent += blast(
        &port,
        &pool,
        &mut q,
        &acks,
        t0 + Duration::from_secs(secs),
        u64::MAX,
    );
    let el = t0.elapsed().as_secs_f64();
    let st = port.stats()?;
    println!(
        "gen sent={sent} opackets={} oerrors={} elapsed={el:.2}s rate={:.0}pps",
        st.opackets,
        st.oerrors,
        sent as f64 / el
    );
    q.clear();
    port.stop()?;
    Ok(())
}
