#![allow(missing_docs)]
//! Checksum and TCP parse throughput. Run with short settings on the shared machine:
//! `cargo bench -p wire -- --warm-up-time 1 --measurement-time 2`.

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use wire::{
    checksum, Ipv4Packet, TcpFlags, TcpOption, TcpOptions, TcpPacket, TcpRepr, TcpSeqNumber,
};

const S: Ipv4Addr = Ipv4Addr::new(10, 99, 1, 1);
const D: Ipv4Addr = Ipv4Addr::new(10, 99, 2, 2);

/// The naive RFC 1071 loop (16-bit words into a u32), the reference the fast loop is
/// measured against.
fn naive_sum(data: &[u8]) -> u16 {
    let mut acc: u32 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from(c[0]) << 8
        };
        acc += u32::from(w);
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

fn bench_checksum(c: &mut Criterion) {
    let mut g = c.benchmark_group("checksum");
    for size in [20usize, 64, 1500] {
        let data: Vec<u8> = (0..size).map(|i| (i * 7 + 3) as u8).collect();
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("fast", size), &data, |b, d| {
            b.iter(|| checksum::data(black_box(d)))
        });
        g.bench_with_input(BenchmarkId::new("naive", size), &data, |b, d| {
            b.iter(|| naive_sum(black_box(d)))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("checksum_update");
    g.throughput(Throughput::Elements(1));
    g.bench_function("update32", |b| {
        b.iter(|| {
            checksum::update32(
                black_box(0x1234),
                black_box(0x0a63_0101),
                black_box(0xc0a8_07bc),
            )
        })
    });
    g.finish();
}

fn syn_segment() -> Vec<u8> {
    let options = TcpOptions::from_options(&[
        TcpOption::MaxSegmentSize(1460),
        TcpOption::SackPermitted,
        TcpOption::Timestamps { tsval: 1, tsecr: 0 },
        TcpOption::NoOperation,
        TcpOption::WindowScale(7),
    ])
    .expect("options fit");
    let r = TcpRepr {
        src_port: 40000,
        dst_port: 80,
        seq_number: TcpSeqNumber(1),
        ack_number: TcpSeqNumber(0),
        flags: TcpFlags::SYN,
        window_len: 64240,
        urgent_pointer: 0,
        options,
        payload_len: 0,
    };
    let mut b = vec![0u8; r.buffer_len()];
    r.emit(&mut TcpPacket::new_unchecked(&mut b[..]), S, D)
        .expect("emit");
    b
}

fn bench_tcp(c: &mut Criterion) {
    let seg = syn_segment();
    let mut g = c.benchmark_group("tcp");
    g.throughput(Throughput::Elements(1));
    g.bench_function("view_and_options", |b| {
        b.iter(|| {
            let p = TcpPacket::new_checked(black_box(&seg[..])).expect("valid");
            let mut mss = 0;
            for o in p.options_iter() {
                if let Ok(TcpOption::MaxSegmentSize(m)) = o {
                    mss = m;
                }
            }
            (p.src_port(), p.dst_port(), p.flags(), mss)
        })
    });
    g.bench_function("repr_parse", |b| {
        b.iter(|| {
            TcpRepr::parse(
                &TcpPacket::new_checked(black_box(&seg[..])).expect("valid"),
                S,
                D,
            )
        })
    });
    // FullNAT rewrite of an IPv4+TCP packet in place: addresses, ports, seq, with
    // incremental checksums.
    let mut pkt = vec![0u8; 20 + seg.len()];
    pkt[0] = 0x45;
    pkt[2..4].copy_from_slice(&((20 + seg.len()) as u16).to_be_bytes());
    pkt[8] = 64;
    pkt[9] = 6;
    pkt[12..16].copy_from_slice(&S.octets());
    pkt[16..20].copy_from_slice(&D.octets());
    pkt[20..].copy_from_slice(&seg);
    Ipv4Packet::new_unchecked(&mut pkt[..]).fill_checksum();
    g.bench_function("fnat_rewrite_in_place", |b| {
        b.iter(|| {
            let (ip_bytes, tcp_bytes) = pkt.split_at_mut(20);
            let mut ip = Ipv4Packet::new_unchecked(ip_bytes);
            let old_s = ip.rewrite_src_addr(Ipv4Addr::new(192, 168, 7, 188));
            let old_d = ip.rewrite_dst_addr(Ipv4Addr::new(192, 168, 7, 27));
            let mut t = TcpPacket::new_unchecked(tcp_bytes);
            t.update_checksum_for_addr(old_s, Ipv4Addr::new(192, 168, 7, 188));
            t.update_checksum_for_addr(old_d, Ipv4Addr::new(192, 168, 7, 27));
            t.rewrite_src_port(black_box(5001));
            t.rewrite_seq_number(t.seq_number() + 1000);
            // Undo, so every iteration does the same work.
            ip.rewrite_src_addr(old_s);
            ip.rewrite_dst_addr(old_d);
            t.update_checksum_for_addr(Ipv4Addr::new(192, 168, 7, 188), old_s);
            t.update_checksum_for_addr(Ipv4Addr::new(192, 168, 7, 27), old_d);
            t.rewrite_src_port(40000);
            t.rewrite_seq_number(t.seq_number() - 1000);
        })
    });
    g.finish();
}

criterion_group!(benches, bench_checksum, bench_tcp);
criterion_main!(benches);
