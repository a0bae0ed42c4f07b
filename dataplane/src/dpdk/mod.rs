//! The DPDK backend: real frames between DPDK ports through a [`Worker`].
//!
//! What it does:
//! - [`Backend::new`] initialises EAL from a [`BackendConfig`] (the caller's EAL
//!   arguments, one `--vdev` per virtual port, `-d` for each PMD plugin), creates one
//!   pktmbuf pool, finds and configures the ports (PCI or vdev), and gives every port that
//!   asks for one a kernel twin: a `net_tap` device carrying the port's MAC address, so
//!   what the kernel answers (ARP, ICMP, OSPF) is correct on the wire.
//! - [`Backend::run`] is the forwarding loop, on the calling thread (the main lcore), or
//!   [`Backend::launch`] on a worker lcore (`remote_launch`, stopped by [`Running::stop`]):
//!   rx burst from each port → [`Worker::process`](crate::worker::Worker::process) on
//!   the mbuf data, exposed with its headroom and tailroom so the core can prepend
//!   (IPIP) or append (TOA, PROXY) → the new data bounds written back to the mbuf → per
//!   port TX buffers flushed when full and once per poll round. `Punt` goes to the
//!   port's twin, what the twin (the kernel) sends leaves through the port, `Reply` and
//!   `Forward` are transmitted, `Drop` frees, `Pending` keeps the mbuf until the worker
//!   releases its ticket (neighbor resolved: destination MAC written, transmitted) or
//!   drops it. Timers ([`Worker::tick`](crate::worker::Worker::tick), ARP requests)
//!   run every [`TICK`]. Control commands arrive through a bounded queue polled once
//!   per round ([`control_queue`]); FIB swaps need no queue
//!   ([`FibHandle::store`](crate::fib::FibHandle::store) is already atomic).
//! - [`BackendCounters`]: per-port and loop counters (rx/tx packets and bytes, twin
//!   traffic, TX-full drops, imissed, pending evictions), single-writer atomics readable
//!   from any thread without locks. The worker's own counters stay in
//!   [`WorkerCounters`](crate::worker::WorkerCounters).
//!
//! - Several workers: [`Backend::with_queues`] configures `n` queue pairs per port
//!   (RSS where the driver has it; `net_af_packet` with `qpairs=n` spreads flows with
//!   the kernel's `PACKET_FANOUT_HASH`) and [`Backend::launch_workers`] runs one loop
//!   per lcore, each with its own [`Worker`] and its own queue pair of every port
//!   ([`dpdk_sys::Port::split`]). `Handover` frames travel to their owner through a
//!   bounded ring per ordered pair of workers (a full ring drops and counts) and are
//!   processed there before the ports; a frame the owner hands over again is an owner
//!   mismatch (counted, dropped). The twins belong to worker 0: it reads them and the
//!   other workers hand their punts to it (punts are rare, and a tap queue per worker
//!   would split one kernel interface's exception traffic over several loops for no
//!   gain). ARP senders seen by one worker are passed to the others' neighbor tables.
//!   [`HandoverCounters`] per worker.
//!
//! - Control messages besides service commands: neighbors, new timeouts, and
//!   connection-table snapshots ([`Control::Snapshot`], [`conn_snapshot`]: at most a
//!   requested number of rows, built on the lcore between bursts, only when asked).
//!
//! What it does not do: no multi-segment mbufs (counted drops), no offloads, no IPv6.
//! Workers do not share connection state: a frame whose connection lives on another
//! worker is handed over, never processed twice. It contains no `unsafe`: everything
//! goes through `dpdk-sys`.

mod lane;
mod snapshot;
mod workers;

pub use lane::{PENDING_SLOTS, TICK};
pub use snapshot::{
    conn_snapshot, ConnInfo, ConnSnapshot, SnapshotRequest, DEFAULT_SNAPSHOT_LIMIT,
};
pub use workers::{RunningSet, HANDOVER_RING};

use crate::conn::Timeouts;
use crate::service::{Command, Counter};
use crate::worker::Worker;
use dpdk_sys::{pmd_path, Eal, Mempool, Port};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

/// Data room of each mbuf: 2048 bytes of frame plus DPDK's default 128-byte headroom.
pub const MBUF_DATA_ROOM: u16 = 2048 + 128;
/// Per-lcore cache of the mbuf pool.
const POOL_CACHE: u32 = 256;

/// Errors of the DPDK backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A DPDK call (EAL, pool, port) failed.
    #[error("dpdk: {0}")]
    Dpdk(#[from] dpdk_sys::Error),
    /// The configuration cannot be used.
    #[error("invalid backend configuration: {0}")]
    Config(&'static str),
    /// The forwarding loop on a worker lcore ended abnormally.
    #[error("forwarding loop: {0}")]
    Loop(&'static str),
    /// A port or twin named in the configuration failed to come up.
    #[error("port {index} ({device}): {source}")]
    Port {
        /// Index of the port in the configuration.
        index: usize,
        /// Its device name.
        device: String,
        /// The DPDK error.
        source: dpdk_sys::Error,
    },
}

/// Result of the backend.
pub type Result<T> = std::result::Result<T, Error>;

/// One port of the appliance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// DPDK device name: a PCI address (`0000:03:00.0`) or a vdev name
    /// (`net_af_packet0`).
    pub device: String,
    /// Driver arguments of a virtual device (`iface=veth0`): the port is created with
    /// `--vdev=<device>,<devargs>`. `None` for a probed (PCI) device.
    pub devargs: Option<String>,
    /// Kernel interface name of the port's twin (`net_tap`, same MAC), the exception
    /// path; `None` for no twin (punted frames are then dropped and counted).
    pub twin: Option<String>,
}

/// Backend settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendConfig {
    /// EAL arguments after the program name (`-l 0`, `--file-prefix NAME`, `--no-huge`,
    /// `-m 512`, `--no-pci`, ...). `--vdev` and `-d` are added from `ports` and
    /// `plugins`.
    pub eal_args: Vec<String>,
    /// PMD plugins to load from [`dpdk_sys::PMD_DIR`] by driver name (`net_af_packet`);
    /// `net_tap` (when a twin is wanted) and `mempool_ring` are added when present.
    pub plugins: Vec<String>,
    /// The ports, in worker port order (index `i` is the worker's port `i`).
    pub ports: Vec<PortSpec>,
    /// Number of mbufs in the pool.
    pub mbufs: u32,
    /// Receive descriptors per queue.
    pub rx_desc: u16,
    /// Transmit descriptors per queue.
    pub tx_desc: u16,
    /// How long a loop sleeps after [`IDLE_ROUNDS_BEFORE_SLEEP`] rounds in a row found no
    /// frame (`Duration::ZERO`, the default: busy polling, as DPDK applications do). A
    /// few tens of microseconds give the CPU back on a node that shares cores with
    /// other work (labs, small VMs) at the cost of that much latency on the first frame
    /// after a quiet spell; the RX rings absorb what arrives meanwhile.
    pub idle_sleep: Duration,
}

/// Consecutive empty rounds before a loop with a non-zero
/// [`BackendConfig::idle_sleep`] starts sleeping between rounds.
pub const IDLE_ROUNDS_BEFORE_SLEEP: u32 = 256;

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig {
            eal_args: Vec::new(),
            plugins: Vec::new(),
            ports: Vec::new(),
            mbufs: 8191,
            rx_desc: 1024,
            tx_desc: 1024,
            idle_sleep: Duration::ZERO,
        }
    }
}

impl BackendConfig {
    /// The full EAL argument vector (program name first) [`Backend::new`] passes to
    /// `rte_eal_init`.
    pub fn eal_argv(&self) -> Vec<String> {
        let mut v = vec!["fulcrum".to_owned()];
        v.extend(self.eal_args.iter().cloned());
        for p in &self.ports {
            if let Some(a) = &p.devargs {
                v.push(format!("--vdev={},{}", p.device, a));
            }
        }
        let mut plugins = self.plugins.clone();
        let mut implied = vec!["mempool_ring"];
        if self.ports.iter().any(|p| p.twin.is_some()) {
            implied.push("net_tap");
        }
        for d in implied {
            if !plugins.iter().any(|p| p == d) && pmd_path(d).is_file() {
                plugins.push(d.to_owned());
            }
        }
        for d in plugins {
            v.push("-d".to_owned());
            v.push(pmd_path(&d).to_string_lossy().into_owned());
        }
        v
    }
}

/// `net_tap` driver arguments for a twin named `iface` carrying `mac`.
pub fn tap_devargs(iface: &str, mac: [u8; 6]) -> String {
    format!(
        "iface={iface},mac={:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
    )
}

/// Counters of one port (written by the forwarding loop only).
#[derive(Debug, Default)]
pub struct PortCounters {
    /// Frames received from the port.
    pub rx_packets: Counter,
    /// Bytes received from the port.
    pub rx_bytes: Counter,
    /// Frames the port's driver accepted for transmission.
    pub tx_packets: Counter,
    /// Bytes the port's driver accepted.
    pub tx_bytes: Counter,
    /// Frames freed because the port's TX queue was full.
    pub tx_full: Counter,
    /// Frames received from the kernel twin (sent on the port).
    pub twin_rx: Counter,
    /// Frames the twin accepted (punted to the kernel).
    pub twin_tx: Counter,
    /// Punted frames freed because the twin's TX queue was full or there is no twin.
    pub twin_drops: Counter,
    /// Frames the port missed (no free descriptor; `imissed`, refreshed every tick).
    pub imissed: Counter,
    /// Receive mbuf allocation failures (`rx_nombuf`, refreshed every tick).
    pub rx_nombuf: Counter,
}

/// Counters of the forwarding loop.
#[derive(Debug, Default)]
pub struct LoopCounters {
    /// Poll rounds.
    pub rounds: Counter,
    /// Rounds that received nothing.
    pub idle_rounds: Counter,
    /// Sleeps taken after a run of idle rounds ([`BackendConfig::idle_sleep`]).
    pub idle_sleeps: Counter,
    /// Multi-segment frames freed (the core needs contiguous frames).
    pub multi_segment: Counter,
    /// Frames whose new bounds could not be written back to the mbuf (freed).
    pub bad_bounds: Counter,
    /// Frames for a port index the backend does not have (freed).
    pub bad_port: Counter,
    /// `Handover` frames freed (one worker: no peer to hand over to).
    pub handover_dropped: Counter,
    /// Frames held while a neighbor resolves.
    pub pending_held: Counter,
    /// Held frames transmitted after resolution.
    pub pending_sent: Counter,
    /// Held frames freed (resolution failed, or evicted by a newer one in their slot).
    pub pending_dropped: Counter,
    /// ARP requests sent.
    pub arp_requests: Counter,
    /// ARP requests not sent (no mbuf).
    pub arp_failed: Counter,
    /// Control messages applied.
    pub control_applied: Counter,
    /// Control messages the worker refused.
    pub control_errors: Counter,
}

/// Hand-over counters of one loop of a worker set (written by that loop only).
#[derive(Debug)]
pub struct HandoverCounters {
    /// Frames handed to the worker that owns their connection.
    pub sent: Counter,
    /// Frames handed to this worker by the others.
    pub received: Counter,
    /// Frames handed to each worker, by worker index.
    pub out_to: Vec<Counter>,
    /// Frames received from each worker, by worker index.
    pub in_from: Vec<Counter>,
    /// Frames or messages freed because the ring to their worker was full.
    pub ring_full: Counter,
    /// Frames or messages freed because their worker's loop had already ended (while
    /// the set stops) or does not exist.
    pub peer_gone: Counter,
    /// Frames handed to this worker that were still in its rings when its loop ended
    /// (freed).
    pub left_at_stop: Counter,
    /// Handed-over frames this worker handed over again: the two workers disagree on
    /// the owner (freed; stays 0 when ownership is consistent).
    pub owner_mismatch: Counter,
    /// Punted frames passed to the worker holding the twins.
    pub punts_out: Counter,
    /// Punted frames received for the twins.
    pub punts_in: Counter,
    /// Neighbors (ARP senders) passed to the other workers.
    pub neighbors_out: Counter,
    /// Neighbors learned from the other workers.
    pub neighbors_in: Counter,
}

impl HandoverCounters {
    /// Counters for a set of `workers` loops.
    pub fn new(workers: usize) -> HandoverCounters {
        HandoverCounters {
            sent: Counter::default(),
            received: Counter::default(),
            out_to: (0..workers).map(|_| Counter::default()).collect(),
            in_from: (0..workers).map(|_| Counter::default()).collect(),
            ring_full: Counter::default(),
            peer_gone: Counter::default(),
            left_at_stop: Counter::default(),
            owner_mismatch: Counter::default(),
            punts_out: Counter::default(),
            punts_in: Counter::default(),
            neighbors_out: Counter::default(),
            neighbors_in: Counter::default(),
        }
    }
}

/// All counters of a running backend, shared with readers (see [`Backend::counters`]).
#[derive(Debug)]
pub struct BackendCounters {
    /// Per port, in configuration order.
    pub ports: Vec<PortCounters>,
    /// The forwarding loop.
    pub lcore: LoopCounters,
}

/// Asks a running [`Backend::run`] to stop (at the end of its current round).
#[derive(Debug, Clone)]
pub struct StopHandle(Arc<AtomicBool>);

impl StopHandle {
    /// Requests the stop.
    pub fn stop(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether a stop was requested.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// A control-plane message for the forwarding loop.
#[derive(Debug)]
pub enum Control {
    /// A service-table command ([`Worker::apply`](crate::worker::Worker::apply)).
    Command(Box<Command>),
    /// A neighbor learned by the control plane (e.g. from the kernel twin's table).
    Neighbor(Ipv4Addr, [u8; 6]),
    /// New global timeouts (`[timeouts]` reloaded, `ipvsadm --set`):
    /// [`Worker::set_timeouts`](crate::worker::Worker::set_timeouts). They apply to
    /// connections from their next packet on.
    Timeouts(Box<Timeouts>),
    /// A connection-table snapshot ([`conn_snapshot`]), answered between bursts on the
    /// request's channel.
    Snapshot(SnapshotRequest),
}

/// Sending end of the control queue (single producer: not `Clone`).
#[derive(Debug)]
pub struct ControlTx(SyncSender<Control>);

impl ControlTx {
    /// Queues `msg`; gives it back when the queue is full or the loop has ended.
    pub fn send(&self, msg: Control) -> std::result::Result<(), Control> {
        self.0.try_send(msg).map_err(|e| match e {
            TrySendError::Full(m) | TrySendError::Disconnected(m) => m,
        })
    }
}

/// Receiving end of the control queue, handed to [`Backend::run`].
#[derive(Debug)]
pub struct ControlRx(Receiver<Control>);

impl ControlRx {
    /// The next queued message, if any (what a loop does once per round; for tests and
    /// for callers that drive a [`Worker`] themselves).
    pub fn try_recv(&self) -> Option<Control> {
        self.0.try_recv().ok()
    }
}

/// A bounded control queue of `capacity` messages (std's array channel: no lock on the
/// polling side, which only calls `try_recv` once per round).
pub fn control_queue(capacity: usize) -> (ControlTx, ControlRx) {
    let (tx, rx) = sync_channel(capacity.max(1));
    (ControlTx(tx), ControlRx(rx))
}

/// A port and its twin, configured and started.
#[derive(Debug)]
struct PortPair {
    port: Port<'static>,
    twin: Option<Port<'static>>,
    mac: [u8; 6],
}

/// The DPDK side of the appliance: EAL, the mbuf pool and the started ports (see the
/// module documentation).
#[derive(Debug)]
pub struct Backend {
    eal: &'static Eal,
    pool: Mempool<'static>,
    ports: Vec<PortPair>,
    counters: Arc<BackendCounters>,
    stop: StopHandle,
    idle_sleep: Duration,
}

impl Backend {
    /// Initialises EAL (once per process, on the thread that will run the loop), the pool,
    /// the ports and their twins, and starts them. The EAL handle is leaked: DPDK stays
    /// up for the life of the process.
    pub fn new(cfg: &BackendConfig) -> Result<Backend> {
        Backend::with_queues(cfg, 1)
    }

    /// [`Backend::new`] with `queues` receive and transmit queues per port, one pair for
    /// each worker of [`Backend::launch_workers`] (RSS spreads flows over the receive
    /// queues where the driver supports it; give `net_af_packet` ports `qpairs=<queues>`
    /// in their devargs). Twins keep one queue. [`Backend::run`] and [`Backend::launch`]
    /// (one loop) poll queue 0 only: use them with one queue.
    pub fn with_queues(cfg: &BackendConfig, queues: u16) -> Result<Backend> {
        if queues == 0 {
            return Err(Error::Config("no queues"));
        }
        if cfg.ports.is_empty() {
            return Err(Error::Config("no ports"));
        }
        if u16::try_from(cfg.ports.len()).is_err() {
            return Err(Error::Config("too many ports"));
        }
        let eal: &'static Eal = Box::leak(Box::new(Eal::init(&cfg.eal_argv())?));
        let pool = Mempool::pktmbuf(
            eal,
            "fulcrum_pkt",
            cfg.mbufs,
            POOL_CACHE.min(cfg.mbufs / 2),
            MBUF_DATA_ROOM,
            eal.socket_id(),
        )?;
        let mut ports = Vec::with_capacity(cfg.ports.len());
        for (index, spec) in cfg.ports.iter().enumerate() {
            let err = |source| Error::Port {
                index,
                device: spec.device.clone(),
                source,
            };
            let mut port = Port::by_name(eal, &spec.device).map_err(err)?;
            port.configure(queues, queues, cfg.rx_desc, cfg.tx_desc, &pool)
                .map_err(err)?;
            let mac = port.mac_addr().map_err(err)?;
            // Frames for VIPs, the twin and multicast (OSPF) all carry the port's MAC
            // or a group address; promiscuous mode is best effort (af_packet has it).
            let _ = port.set_promiscuous(true);
            port.start().map_err(err)?;
            let twin = match &spec.twin {
                None => None,
                Some(iface) => {
                    let name = format!("net_tap{index}");
                    let mut t =
                        Port::create_vdev(eal, &name, &tap_devargs(iface, mac)).map_err(err)?;
                    t.configure(1, 1, cfg.rx_desc.min(512), cfg.tx_desc.min(512), &pool)
                        .map_err(err)?;
                    t.start().map_err(err)?;
                    Some(t)
                }
            };
            ports.push(PortPair { port, twin, mac });
        }
        let counters = Arc::new(BackendCounters {
            ports: (0..ports.len()).map(|_| PortCounters::default()).collect(),
            lcore: LoopCounters::default(),
        });
        Ok(Backend {
            eal,
            pool,
            ports,
            counters,
            stop: StopHandle(Arc::new(AtomicBool::new(false))),
            idle_sleep: cfg.idle_sleep,
        })
    }

    /// The EAL handle.
    pub fn eal(&self) -> &'static Eal {
        self.eal
    }

    /// The MAC address of each port, in configuration order (for
    /// [`PortConfig::mac`](crate::worker::PortConfig::mac)).
    pub fn port_macs(&self) -> Vec<[u8; 6]> {
        self.ports.iter().map(|p| p.mac).collect()
    }

    /// The DPDK port id of each port, in configuration order.
    pub fn port_ids(&self) -> Vec<u16> {
        self.ports.iter().map(|p| p.port.id()).collect()
    }

    /// The counters (share the `Arc` with readers).
    pub fn counters(&self) -> Arc<BackendCounters> {
        Arc::clone(&self.counters)
    }

    /// A handle that stops [`Backend::run`].
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Runs [`Backend::run`] on worker lcore `lcore` (an EAL thread pinned by `-l` or
    /// `--lcores`), leaving the calling thread to the control plane; [`Running::stop`]
    /// ends it and gives back the worker.
    pub fn launch(self, worker: Worker, control: ControlRx, lcore: u32) -> Result<Running> {
        let eal = self.eal;
        let stop = self.stop.clone();
        let (tx, result) = sync_channel(1);
        eal.remote_launch(lcore, move || {
            let r = self.run(worker, control);
            let code = i32::from(r.is_err());
            let _ = tx.send(r);
            code
        })?;
        Ok(Running {
            eal,
            lcore,
            stop,
            result,
        })
    }

    /// Runs the forwarding loop with `worker` on the calling thread until the stop handle
    /// fires, then frees held frames and stops and closes the ports and twins. The
    /// worker's ports must be the backend's, in the same order.
    pub fn run(self, worker: Worker, control: ControlRx) -> Result<Worker> {
        let Backend {
            eal,
            pool,
            ports,
            counters,
            stop,
            idle_sleep,
        } = self;
        let mut lanes = Vec::with_capacity(ports.len());
        for p in ports {
            lanes.push(lane::Lane::new(p.port, p.twin));
        }
        let mut fwd =
            lane::Loop::new(eal, &pool, lanes, worker, counters).with_idle_sleep(idle_sleep);
        while !stop.is_stopped() {
            fwd.round(&control.0);
        }
        let (worker, lanes) = fwd.finish();
        let mut first_err = None;
        for l in lanes {
            for mut p in l.into_ports() {
                let r = p.stop().and_then(|()| p.close());
                if let (Err(e), None) = (r, &first_err) {
                    first_err = Some(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(Error::Dpdk(e)),
            None => Ok(worker),
        }
    }
}

/// A forwarding loop running on a worker lcore ([`Backend::launch`]).
#[derive(Debug)]
pub struct Running {
    eal: &'static Eal,
    lcore: u32,
    stop: StopHandle,
    result: Receiver<Result<Worker>>,
}

impl Running {
    /// The lcore the loop runs on.
    pub fn lcore(&self) -> u32 {
        self.lcore
    }

    /// Stops the loop, waits for the lcore and gives back the worker (or the error that
    /// ended the loop: closing the ports, a panic on the lcore).
    pub fn stop(self) -> Result<Worker> {
        self.stop.stop();
        let code = self.eal.wait_lcore(self.lcore)?;
        match self.result.try_recv() {
            Ok(r) => r,
            Err(_) if code == dpdk_sys::LAUNCH_PANICKED => Err(Error::Loop("panicked")),
            Err(_) => Err(Error::Loop("ended without a result")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eal_argv_adds_vdevs_and_plugins() {
        let cfg = BackendConfig {
            eal_args: vec!["-l".into(), "0".into()],
            plugins: vec!["net_af_packet".into()],
            ports: vec![
                PortSpec {
                    device: "net_af_packet0".into(),
                    devargs: Some("iface=l0".into()),
                    twin: Some("ftap0".into()),
                },
                PortSpec {
                    device: "0000:03:00.0".into(),
                    devargs: None,
                    twin: None,
                },
            ],
            ..Default::default()
        };
        let v = cfg.eal_argv();
        assert_eq!(
            &v[..4],
            ["fulcrum", "-l", "0", "--vdev=net_af_packet0,iface=l0"]
        );
        assert!(!v.iter().any(|a| a.contains("0000:03:00.0")));
        let plugins: Vec<&String> = v
            .iter()
            .zip(v.iter().skip(1))
            .filter(|(a, _)| *a == "-d")
            .map(|(_, p)| p)
            .collect();
        assert_eq!(
            plugins.first().map(|p| p.as_str()),
            Some(pmd_path("net_af_packet").to_string_lossy().as_ref())
        );
        // The lab's DPDK ships both plugins: a twin pulls in net_tap, every pool the ring.
        assert!(plugins.iter().any(|p| p.ends_with("librte_net_tap.so")));
        assert!(plugins
            .iter()
            .any(|p| p.ends_with("librte_mempool_ring.so")));
        assert_eq!(plugins.len(), 3);
    }

    #[test]
    fn no_twin_no_tap_plugin() {
        let cfg = BackendConfig {
            ports: vec![PortSpec {
                device: "net_af_packet0".into(),
                devargs: Some("iface=l0".into()),
                twin: None,
            }],
            ..Default::default()
        };
        assert!(!cfg.eal_argv().iter().any(|a| a.contains("net_tap")));
    }

    #[test]
    fn tap_devargs_carry_the_mac() {
        assert_eq!(
            tap_devargs("ftap0", [0x02, 0, 0xab, 0x10, 0xff, 0x01]),
            "iface=ftap0,mac=02:00:ab:10:ff:01"
        );
    }

    #[test]
    fn control_queue_is_bounded_and_gives_back() {
        let (tx, rx) = control_queue(1);
        let ip = Ipv4Addr::new(10, 0, 0, 9);
        assert!(tx.send(Control::Neighbor(ip, [2; 6])).is_ok());
        match tx.send(Control::Neighbor(ip, [3; 6])) {
            Err(Control::Neighbor(_, m)) => assert_eq!(m, [3; 6]),
            other => panic!("queue of 1 accepted a second message: {other:?}"),
        }
        assert!(matches!(
            rx.0.try_recv(),
            Ok(Control::Neighbor(_, [2, 2, 2, 2, 2, 2]))
        ));
        drop(rx);
        assert!(tx.send(Control::Neighbor(ip, [4; 6])).is_err());
    }

    #[test]
    fn stop_handle_is_shared() {
        let s = StopHandle(Arc::new(AtomicBool::new(false)));
        let t = s.clone();
        assert!(!s.is_stopped());
        t.stop();
        assert!(s.is_stopped());
    }
}
