//! Moves real frames through DPDK's `net_af_packet` PMD on a veth pair inside a private
//! network namespace: kernel -> DPDK (rx_burst) and DPDK (tx_burst) -> kernel, byte for
//! byte. Needs root (CI runs as root); fails, never skips, without it.
//!
//! EAL can be initialised once per process, so every EAL assertion is in one `#[test]`.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicUsize, Ordering};

use dpdk_sys::{
    ffi, pmd_path, Eal, Error, Mbuf, MbufArray, Mempool, Port, RxQueue, BURST, LAUNCH_PANICKED,
};

/// IEEE local experimental ethertype: the kernel stacks ignore it.
const ETHERTYPE: u16 = 0x88B5;
/// Frame lengths exercised (minimum frame up to a full 1514-byte frame).
const LENGTHS: [usize; 8] = [60, 64, 100, 128, 255, 512, 1000, 1514];
/// How long to wait for frames to cross the veth.
const WAIT: Duration = Duration::from_secs(5);

/// Runs `ip` and panics (after printing its stderr) if it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The namespace, its veth pair and the EAL runtime directory; removed on drop, which
/// also runs while a failed assertion unwinds.
struct Lab {
    ns: String,
    runtime: PathBuf,
}

impl Lab {
    fn new() -> Lab {
        let pid = std::process::id();
        // The guard exists before anything is created, so partial setups are removed.
        let lab = Lab {
            ns: format!("flab-dpdk-{pid}"),
            runtime: PathBuf::from(format!("/tmp/flab-dpdk-{pid}")),
        };
        std::fs::create_dir_all(&lab.runtime).expect("create runtime dir");
        ip(&["netns", "add", &lab.ns]);
        ip(&[
            "link", "add", "d0", "netns", &lab.ns, "type", "veth", "peer", "name", "p0", "netns",
            &lab.ns,
        ]);
        for dev in ["lo", "d0", "p0"] {
            ip(&["-n", &lab.ns, "link", "set", dev, "up"]);
        }
        lab
    }

    /// MAC address of `dev` as the kernel reports it.
    fn mac(&self, dev: &str) -> [u8; 6] {
        let out = Command::new("ip")
            .args(["-n", &self.ns, "-o", "link", "show", dev])
            .output()
            .expect("run ip link show");
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        let hex = text
            .split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .unwrap_or_else(|| panic!("no link/ether in {text}"));
        let mut mac = [0u8; 6];
        let parts: Vec<u8> = hex
            .split(':')
            .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
            .collect();
        mac.copy_from_slice(&parts);
        mac
    }

    /// Moves the calling thread into the namespace (threads it creates later inherit it).
    fn enter(&self) {
        let f = File::open(format!("/run/netns/{}", self.ns)).expect("open netns");
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = std::fs::remove_dir_all(&self.runtime);
    }
}

/// A raw AF_PACKET socket bound to one interface for [`ETHERTYPE`] frames.
struct RawSocket {
    fd: OwnedFd,
}

impl RawSocket {
    fn open(ifname: &str) -> RawSocket {
        let proto = ETHERTYPE.to_be();
        // SAFETY: plain socket(2) call; the result is checked.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        // SAFETY: fd is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let name = CString::new(ifname).expect("ifname");
        // SAFETY: name is a valid C string.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        assert!(ifindex > 0, "no interface {ifname}");
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = i32::try_from(ifindex).expect("ifindex");
        // SAFETY: sll is a valid sockaddr_ll of the size passed.
        let ret = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(ret, 0, "bind: {}", std::io::Error::last_os_error());
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        // SAFETY: tv is a valid timeval of the size passed.
        let ret = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            )
        };
        assert_eq!(ret, 0, "SO_RCVTIMEO: {}", std::io::Error::last_os_error());
        RawSocket { fd }
    }

    fn send(&self, frame: &[u8]) {
        // SAFETY: frame is a valid buffer of the length passed.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(
            n,
            frame.len() as isize,
            "send: {}",
            std::io::Error::last_os_error()
        );
    }

    /// Next frame the interface received (its own outgoing frames are skipped); `None`
    /// after the receive timeout.
    fn recv(&self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 2048];
        loop {
            // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            // SAFETY: buf and sll are valid for the sizes passed.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    (&mut sll as *mut libc::sockaddr_ll).cast(),
                    &mut len,
                )
            };
            if n < 0 {
                return None;
            }
            if sll.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            return Some(buf[..n as usize].to_vec());
        }
    }
}

/// The lowest CPU in this thread's affinity mask.
fn first_cpu() -> usize {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).expect("affinity");
    (0..nix::sched::CpuSet::count())
        .find(|&c| set.is_set(c).unwrap_or(false))
        .expect("some CPU is allowed")
}

/// A test frame: `dst`, `src`, [`ETHERTYPE`], a tag, the sequence number and a
/// position-dependent pattern up to `len` bytes.
fn frame(dst: [u8; 6], src: [u8; 6], tag: u8, seq: u32, len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ETHERTYPE.to_be_bytes());
    f.push(tag);
    f.extend_from_slice(&seq.to_be_bytes());
    while f.len() < len {
        f.push((f.len() as u8).wrapping_mul(7) ^ tag);
    }
    f
}

fn is_test_frame(data: &[u8]) -> bool {
    data.get(12..14) == Some(&ETHERTYPE.to_be_bytes()[..])
}

/// Receives test frames on each queue handle from its own thread until `want` arrived in
/// all or [`WAIT`] passed; returns each queue's frames in arrival order.
fn receive_on_queues(queues: Vec<RxQueue<'_>>, want: usize) -> Vec<Vec<Vec<u8>>> {
    let total = AtomicUsize::new(0);
    let total = &total;
    std::thread::scope(|s| {
        let handles: Vec<_> = queues
            .into_iter()
            .map(|q| {
                s.spawn(move || {
                    let mut got = Vec::new();
                    let mut burst = MbufArray::new();
                    let deadline = Instant::now() + WAIT;
                    while total.load(Ordering::Acquire) < want && Instant::now() < deadline {
                        if q.rx_burst(&mut burst) == 0 {
                            std::thread::sleep(Duration::from_millis(1));
                            continue;
                        }
                        for m in burst.drain() {
                            assert_eq!(m.port(), q.port());
                            let data = m.data().expect("single segment");
                            if is_test_frame(data) {
                                got.push(data.to_vec());
                                total.fetch_add(1, Ordering::AcqRel);
                            }
                        }
                    }
                    got
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("queue thread"))
            .collect()
    })
}

/// Receives with `rx_burst` from every receive queue until `want` test frames arrived or
/// [`WAIT`] passed.
fn receive_frames(port: &Port<'_>, want: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut burst = MbufArray::new();
    let deadline = Instant::now() + WAIT;
    while got.len() < want && Instant::now() < deadline {
        let mut n = 0;
        for q in 0..port.rx_queues() {
            n += dpdk_sys::rx_burst(port, q, &mut burst).expect("rx_burst");
        }
        if n == 0 {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        for m in burst.drain() {
            assert_eq!(m.port(), port.id());
            assert!(m.is_contiguous(), "{m:?}");
            let data = m.data().expect("single segment");
            assert_eq!(m.len(), data.len());
            if is_test_frame(data) {
                got.push(data.to_vec());
            }
        }
    }
    got
}

#[test]
fn frames_cross_af_packet_both_ways() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test needs root (namespaces, veth, AF_PACKET); CI runs as root"
    );

    let lab = Lab::new();
    lab.enter();
    let d0_mac = lab.mac("d0");
    let p0_mac = lab.mac("p0");
    let p0 = RawSocket::open("p0");

    std::env::set_var("RUNTIME_DIRECTORY", &lab.runtime);
    let prefix = lab.ns.clone();
    // Main lcore 0 and worker lcore 1, both on the first CPU this process may use, so the
    // test runs on any machine (one CPU, containers with a cpuset).
    let cpu = first_cpu();
    let lcore_map = format!("--lcores=0@{cpu},1@{cpu}");
    let args: Vec<String> = [
        "dpdk-sys-test",
        "--no-huge",
        "-m",
        "256",
        "--no-pci",
        "--file-prefix",
        &prefix,
        "--vdev=net_af_packet0,iface=d0",
        "-d",
        &pmd_path("net_af_packet").to_string_lossy(),
        "-d",
        &pmd_path("mempool_ring").to_string_lossy(),
        &lcore_map,
        "--log-level",
        "lib.eal:warning",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();

    let eal = Eal::init(&args).expect("rte_eal_init");
    assert_eq!(eal.args_consumed(), args.len() - 1);
    assert_eq!(Eal::init(&args).unwrap_err(), Error::AlreadyInitialized);
    assert_eq!(dpdk_sys::lcore_id(), Some(0));
    assert_eq!(eal.main_lcore(), 0);
    assert_eq!(eal.lcore_count(), 2);
    assert_eq!(eal.worker_lcores(), vec![1]);
    lcores(&eal);
    assert!(eal.tsc_hz() > 0);
    let t0 = eal.rdtsc();
    assert!(eal.rdtsc() >= t0);

    // Ports.
    assert_eq!(Port::count(&eal), 1);
    assert_eq!(
        Port::by_name(&eal, "net_nothing9").unwrap_err(),
        Error::NoSuchPort("net_nothing9".into())
    );
    assert_eq!(Port::from_id(&eal, 7).unwrap_err(), Error::InvalidPort(7));
    let mut port = Port::by_name(&eal, "net_af_packet0").expect("port by name");
    assert_eq!(
        Port::from_id(&eal, port.id()).unwrap_err(),
        Error::PortBusy(port.id())
    );
    assert_eq!(port.name().expect("name"), "net_af_packet0");
    assert_eq!(
        port.mac_addr().expect("mac"),
        d0_mac,
        "PMD reports d0's MAC"
    );

    let pool = Mempool::pktmbuf(
        &eal,
        "flab_pool",
        2047,
        32,
        ffi::RTE_MBUF_DEFAULT_BUF_SIZE as u16,
        ffi::SOCKET_ID_ANY,
    )
    .expect("pool");
    assert!(matches!(
        Mempool::pktmbuf(&eal, "flab_pool", 63, 0, 2176, ffi::SOCKET_ID_ANY),
        Err(Error::Dpdk { code, .. }) if code == libc::EEXIST
    ));

    mbuf_operations(&pool);
    registered_thread(&eal, &pool);

    // A burst holds BURST mbufs and gives the next one back.
    let in_use = pool.in_use_count();
    let mut full = MbufArray::new();
    while !full.is_full() {
        full.push(Mbuf::alloc(&pool).expect("alloc")).expect("room");
    }
    assert_eq!(full.len(), BURST);
    assert_eq!(pool.in_use_count(), in_use + BURST as u32);
    let extra = Mbuf::alloc(&pool).expect("alloc");
    let extra = full
        .push(extra)
        .expect_err("full burst gives the mbuf back");
    drop(extra);
    let mut taken = full.drain();
    let first = taken.next().expect("one");
    drop(taken); // frees the other 31
    assert!(full.is_empty());
    drop(first);
    assert_eq!(pool.in_use_count(), in_use, "all burst mbufs returned");

    // Configure and start.
    let info = port.info().expect("info");
    assert_eq!(info.driver, "net_af_packet");
    assert_eq!(
        (info.max_rx_queues, info.max_tx_queues),
        (1, 1),
        "qpairs=1 by default"
    );
    assert!(matches!(
        port.configure(0, 0, 512, 512, &pool),
        Err(Error::InvalidConfig(_))
    ));
    assert!(matches!(
        port.configure(2, 1, 512, 512, &pool),
        Err(Error::InvalidConfig(_))
    ));
    port.configure(1, 1, 512, 512, &pool).expect("configure");
    assert_eq!((port.rx_queues(), port.tx_queues()), (1, 1));
    assert!(matches!(
        port.rx_burst(1, &mut full),
        Err(Error::InvalidQueue {
            queue: 1,
            configured: 1,
            ..
        })
    ));
    assert!(matches!(
        port.tx_burst(3, &mut full),
        Err(Error::InvalidQueue { queue: 3, .. })
    ));
    port.start().expect("start");
    port.set_promiscuous(true).expect("promiscuous on");
    assert!(port.promiscuous().expect("promiscuous get"));
    let deadline = Instant::now() + WAIT;
    while !port.link().expect("link").up {
        assert!(Instant::now() < deadline, "link of d0 never came up");
        std::thread::sleep(Duration::from_millis(10));
    }
    port.reset_stats().expect("reset stats");
    let in_use = pool.in_use_count();

    // Kernel (p0) -> DPDK (d0).
    let sent: Vec<Vec<u8>> = LENGTHS
        .iter()
        .zip(0u32..)
        .map(|(&len, seq)| frame(d0_mac, p0_mac, 0x5a, seq, len))
        .collect();
    for f in &sent {
        p0.send(f);
    }
    let got = receive_frames(&port, sent.len());
    assert_eq!(got.len(), sent.len(), "frames received by rx_burst");
    assert_eq!(
        got, sent,
        "rx_burst delivers the frames byte for byte, in order"
    );

    // DPDK (d0) -> kernel (p0).
    let out: Vec<Vec<u8>> = LENGTHS
        .iter()
        .zip(100u32..)
        .map(|(&len, seq)| frame(p0_mac, d0_mac, 0xa5, seq, len))
        .collect();
    let mut burst = MbufArray::new();
    for f in &out {
        let mut m = Mbuf::alloc(&pool).expect("alloc");
        m.append(f.len()).expect("append").copy_from_slice(f);
        burst.push(m).expect("room");
    }
    let deadline = Instant::now() + WAIT;
    let mut transmitted = 0;
    while !burst.is_empty() {
        assert!(
            Instant::now() < deadline,
            "tx_burst kept {} frames",
            burst.len()
        );
        transmitted += dpdk_sys::tx_burst(&port, 0, &mut burst).expect("tx_burst");
    }
    assert_eq!(transmitted, out.len());
    let mut heard = Vec::new();
    let deadline = Instant::now() + WAIT;
    while heard.len() < out.len() && Instant::now() < deadline {
        if let Some(f) = p0.recv() {
            if is_test_frame(&f) {
                heard.push(f);
            }
        }
    }
    assert_eq!(
        heard, out,
        "p0 receives the tx_burst frames byte for byte, in order"
    );

    // Hot-plug a second af_packet port on p0: DPDK (d0) -> DPDK (p0).
    // Two queue pairs: af_packet spreads flows with PACKET_FANOUT_HASH (no RSS offload).
    let mut p1 = Port::create_vdev(&eal, "net_af_packet1", "iface=p0,qpairs=2").expect("hot-plug");
    assert_eq!(Port::count(&eal), 2);
    assert_eq!(p1.mac_addr().expect("mac"), p0_mac);
    let info = p1.info().expect("info");
    assert_eq!((info.max_rx_queues, info.max_tx_queues), (2, 2));
    p1.configure(2, 2, 256, 256, &pool).expect("configure p1");
    assert_eq!((p1.rx_queues(), p1.tx_queues()), (2, 2));
    assert_eq!(info.rss_offloads, 0, "af_packet has no RSS offload");
    assert_eq!(
        p1.rss_hash_functions(),
        0,
        "RSS stays off without driver support"
    );
    assert!(matches!(
        p1.rx_burst(2, &mut burst),
        Err(Error::InvalidQueue {
            queue: 2,
            configured: 2,
            ..
        })
    ));
    p1.start().expect("start p1");
    for f in &out {
        let mut m = Mbuf::alloc(&pool).expect("alloc");
        m.append(f.len()).expect("append").copy_from_slice(f);
        burst.push(m).expect("room");
    }
    let deadline = Instant::now() + WAIT;
    while !burst.is_empty() {
        assert!(
            Instant::now() < deadline,
            "tx_burst kept {} frames",
            burst.len()
        );
        port.tx_burst(0, &mut burst).expect("tx_burst");
    }
    // One handle per queue: each receive queue polled by its own thread.
    let (ctl, rxq, txq) = p1.split();
    assert_eq!((rxq.len(), txq.len()), (2, 2));
    assert_eq!(ctl.queues_in_use(), 4);
    assert_eq!(
        rxq.iter()
            .map(|q| (q.port(), q.queue()))
            .collect::<Vec<_>>(),
        [(ctl.id(), 0), (ctl.id(), 1)]
    );
    assert_eq!(
        Port::from_id(&eal, ctl.id()).unwrap_err(),
        Error::PortBusy(ctl.id()),
        "a split port stays claimed"
    );
    let got = receive_on_queues(rxq, out.len());
    let mut want = out.clone();
    want.sort();
    let mut got_all: Vec<Vec<u8>> = got.iter().flatten().cloned().collect();
    got_all.sort();
    assert_eq!(got_all, want, "DPDK to DPDK over the veth, byte for byte");
    for q in &got {
        let mut in_order = q.clone();
        in_order.sort_by_key(|f| f.get(15..19).map(<[u8]>::to_vec));
        assert_eq!(q, &in_order, "one queue keeps the order of its flow");
    }
    assert_eq!(
        ctl.queues_in_use(),
        2,
        "receive handles dropped by their threads"
    );
    // The transmit handle of queue 1 sends back to d0, from another thread.
    let back: Vec<Vec<u8>> = LENGTHS
        .iter()
        .zip(200u32..)
        .map(|(&len, seq)| frame(d0_mac, p0_mac, 0x3c, seq, len))
        .collect();
    let mut txq = txq.into_iter();
    let tx0 = txq.next().expect("tx queue 0");
    let tx1 = txq.next().expect("tx queue 1");
    let pool_ref = &pool;
    let back_ref = &back;
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut burst = MbufArray::new();
            for f in back_ref {
                let mut m = Mbuf::alloc(pool_ref).expect("alloc");
                m.append(f.len()).expect("append").copy_from_slice(f);
                burst.push(m).expect("room");
            }
            let deadline = Instant::now() + WAIT;
            while !burst.is_empty() {
                assert!(Instant::now() < deadline, "tx queue 1 kept frames");
                tx1.tx_burst(&mut burst);
            }
            assert_eq!(tx1.queue(), 1);
        });
    });
    let ctl = match ctl.into_port() {
        Ok(_) => panic!("tx queue 0 is still alive"),
        Err(ctl) => ctl,
    };
    let got = receive_frames(&port, back.len());
    assert_eq!(got, back, "frames sent on tx queue 1 arrive on d0");
    drop(tx0);
    assert_eq!(ctl.queues_in_use(), 0);
    let mut p1 = ctl.try_into_port().expect("whole again");
    p1.stop().expect("stop p1");
    p1.remove_vdev().expect("unplug");
    assert_eq!(Port::count(&eal), 1);

    let stats = port.stats().expect("stats");
    let in_bytes: usize = sent.iter().map(Vec::len).sum();
    let out_bytes: usize = out.iter().map(Vec::len).sum();
    assert!(stats.ipackets >= sent.len() as u64, "{stats:?}");
    assert!(stats.ibytes >= in_bytes as u64, "{stats:?}");
    assert_eq!(stats.opackets, 2 * out.len() as u64, "{stats:?}");
    assert_eq!(stats.obytes, 2 * out_bytes as u64, "{stats:?}");
    assert_eq!(stats.oerrors, 0, "{stats:?}");
    assert_eq!(stats.rx_nombuf, 0, "{stats:?}");
    assert_eq!(pool.in_use_count(), in_use, "no mbuf leaked by rx or tx");

    port.stop().expect("stop");
    port.close().expect("close");
    assert_eq!(Port::count(&eal), 0, "closed port is gone");
    drop((full, burst, pool));
    drop(eal);

    // Nothing left behind once the guard is gone.
    let ns = lab.ns.clone();
    let runtime = lab.runtime.clone();
    drop(lab);
    let list = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    assert!(
        !String::from_utf8_lossy(&list.stdout).contains(&ns),
        "namespace left behind"
    );
    assert!(!runtime.exists(), "runtime dir left behind");
    assert!(
        !PathBuf::from(format!("/var/run/dpdk/{prefix}")).exists(),
        "EAL files outside the runtime dir"
    );
}

/// `Mbuf` data operations against a real pool.
fn mbuf_operations(pool: &Mempool<'_>) {
    let before = pool.in_use_count();
    let mut m = Mbuf::alloc(pool).expect("alloc");
    assert_eq!(pool.in_use_count(), before + 1);
    assert!(m.is_empty());
    assert_eq!(m.data().expect("contiguous"), &[] as &[u8]);
    assert_eq!(m.headroom(), ffi::RTE_PKTMBUF_HEADROOM as usize);
    let room = m.tailroom();
    assert_eq!(room, 2048);

    m.append(6).expect("append").copy_from_slice(b"abcdef");
    assert_eq!(m.data().expect("data"), b"abcdef");
    m.prepend(2).expect("prepend").copy_from_slice(b"XY");
    assert_eq!(m.data().expect("data"), b"XYabcdef");
    assert_eq!(m.len(), 8);
    assert_eq!(m.headroom(), ffi::RTE_PKTMBUF_HEADROOM as usize - 2);
    m.adj(3).expect("adj");
    assert_eq!(m.data().expect("data"), b"bcdef");
    m.trim(2).expect("trim");
    assert_eq!(m.data().expect("data"), b"bcd");
    m.data_mut().expect("data_mut")[0] = b'B';
    assert_eq!(m.first_segment(), b"Bcd");

    assert_eq!(
        m.adj(4).unwrap_err(),
        Error::NoRoom {
            op: "adj",
            len: 4,
            available: 3
        }
    );
    assert_eq!(
        m.trim(4).unwrap_err(),
        Error::NoRoom {
            op: "trim",
            len: 4,
            available: 3
        }
    );
    let tail = m.tailroom();
    assert_eq!(
        m.append(tail + 1).unwrap_err(),
        Error::NoRoom {
            op: "append",
            len: tail + 1,
            available: tail
        }
    );
    assert!(matches!(m.append(70_000), Err(Error::NoRoom { .. })));
    let head = m.headroom();
    assert_eq!(
        m.prepend(head + 1).unwrap_err(),
        Error::NoRoom {
            op: "prepend",
            len: head + 1,
            available: head
        }
    );
    assert_eq!(m.data().expect("unchanged after errors"), b"Bcd");
    m.append(tail).expect("fill the tailroom exactly");
    assert_eq!(m.tailroom(), 0);
    assert_eq!(m.len(), 3 + tail);

    // Ownership round trip through a raw pointer.
    let raw = m.into_raw();
    assert_eq!(pool.in_use_count(), before + 1, "into_raw does not free");
    // SAFETY: raw came from into_raw above and nothing else owns it.
    let m = unsafe { Mbuf::from_raw(raw) }.expect("non-null");
    assert_eq!(m.first_segment().get(..3), Some(&b"Bcd"[..]));
    drop(m);
    assert_eq!(pool.in_use_count(), before, "drop frees");
    // SAFETY: a null pointer is rejected, not dereferenced.
    assert!(unsafe { Mbuf::from_raw(std::ptr::null_mut()) }.is_none());

    // Pool exhaustion is an error, not a panic.
    let mut all = Vec::new();
    loop {
        match Mbuf::alloc(pool) {
            Ok(m) => all.push(m),
            Err(e) => {
                assert_eq!(e, Error::NoMbuf);
                break;
            }
        }
        assert!(all.len() <= 4096, "pool of 2047 never ran dry");
    }
    assert_eq!(all.len() as u32, 2047 - before);
    assert_eq!(pool.avail_count(), 0);
    drop(all);
    assert_eq!(pool.in_use_count(), before);
}

/// Launching closures on the worker lcore.
fn lcores(eal: &Eal) {
    eal.remote_launch(1, || {
        dpdk_sys::lcore_id().map_or(-1, |id| id as i32 * 10 + 7)
    })
    .expect("launch on worker 1");
    assert_eq!(
        eal.wait_lcore(1).expect("wait"),
        17,
        "closure ran on lcore 1"
    );
    assert_eq!(
        eal.wait_lcore(1).expect("wait idle"),
        17,
        "last value, lcore idle"
    );
    // A panic stays on the lcore (resume_unwind skips the panic message).
    eal.remote_launch(1, || std::panic::resume_unwind(Box::new(())))
        .expect("launch");
    assert_eq!(eal.wait_lcore(1).expect("wait"), LAUNCH_PANICKED);
    // The lcore is usable again.
    eal.remote_launch(1, || 5).expect("relaunch");
    assert_eq!(eal.wait_lcore(1).expect("wait"), 5);
    for bad in [0, 2, 127, 128, u32::MAX] {
        assert!(
            matches!(eal.remote_launch(bad, || 0), Err(Error::InvalidConfig(_))),
            "lcore {bad}"
        );
        assert!(
            matches!(eal.wait_lcore(bad), Err(Error::InvalidConfig(_))),
            "lcore {bad}"
        );
    }
}

/// A std thread registered with EAL gets an lcore id and can allocate.
fn registered_thread(eal: &Eal, pool: &Mempool<'_>) {
    assert!(
        matches!(eal.register_thread(), Err(Error::InvalidConfig(_))),
        "main lcore"
    );
    let before = pool.in_use_count();
    std::thread::scope(|s| {
        s.spawn(|| {
            assert_eq!(dpdk_sys::lcore_id(), None);
            let reg = eal.register_thread().expect("register");
            assert_eq!(dpdk_sys::lcore_id(), Some(reg.lcore()));
            assert!(reg.lcore() > 1, "lcores 0 and 1 belong to EAL");
            let mut m = Mbuf::alloc(pool).expect("alloc on a registered thread");
            m.append(4).expect("append").copy_from_slice(b"lcor");
            assert_eq!(m.data().expect("data"), b"lcor");
            drop(m);
            drop(reg);
            assert_eq!(dpdk_sys::lcore_id(), None);
        })
        .join()
        .expect("registered thread");
    });
    assert_eq!(pool.in_use_count(), before);
}
