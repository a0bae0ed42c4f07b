//! Ethernet ports (ethdev) and the burst receive/transmit fast path.

use std::cell::Cell;
use std::ffi::{c_char, CStr, CString};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::eal::Eal;
use crate::error::{check, Error, Result};
use crate::ffi;
use crate::mbuf::MbufArray;
use crate::mempool::Mempool;

const MAX_PORTS: usize = ffi::RTE_MAX_ETHPORTS as usize;

/// Which port ids a [`Port`] handle holds: one handle per port, so two threads can never
/// poll the same queue through two handles.
static CLAIMED: [AtomicBool; MAX_PORTS] = [const { AtomicBool::new(false) }; MAX_PORTS];

/// Link state (`rte_eth_link`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// Link is up.
    pub up: bool,
    /// Speed in Mb/s (0 when unknown).
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
    /// Speed was auto-negotiated.
    pub autoneg: bool,
}

/// Basic port counters (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets transmitted.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes transmitted.
    pub obytes: u64,
    /// Packets dropped by the hardware because no receive descriptor was free.
    pub imissed: u64,
    /// Receive errors.
    pub ierrors: u64,
    /// Transmit errors.
    pub oerrors: u64,
    /// Receive mbuf allocation failures.
    pub rx_nombuf: u64,
}

/// What a port's driver reports about itself (`rte_eth_dev_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// Driver name (e.g. `net_af_packet`).
    pub driver: String,
    /// Most receive queues the port supports.
    pub max_rx_queues: u16,
    /// Most transmit queues the port supports.
    pub max_tx_queues: u16,
    /// RSS hash functions the port supports (`RTE_ETH_RSS_*` bits; 0 without RSS).
    pub rss_offloads: u64,
    /// Receive offloads the port supports (`RTE_ETH_RX_OFFLOAD_*` bits, `rx_offload_capa`).
    pub rx_offload_capa: u64,
}

/// `RTE_ETH_RX_OFFLOAD_IPV4_CKSUM` (`RTE_BIT64(1)` in `rte_ethdev.h`, a macro bindgen
/// does not expand): the port verifies IPv4 header checksums on receive.
pub const RX_OFFLOAD_IPV4_CKSUM: u64 = 1 << 1;

impl PortInfo {
    /// Whether the port can verify IPv4 header checksums on receive (its verdict is in
    /// each mbuf's offload flags, [`crate::Mbuf::rx_ip_cksum_good`]).
    pub fn rx_ipv4_checksum(&self) -> bool {
        self.rx_offload_capa & RX_OFFLOAD_IPV4_CKSUM != 0
    }
}

/// The claim of one port id in [`CLAIMED`], released when the last holder (the [`Port`],
/// its [`PortControl`] and every queue handle split off it) is gone.
#[derive(Debug)]
struct Claim(u16);

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(slot) = CLAIMED.get(usize::from(self.0)) {
            slot.store(false, Ordering::Release);
        }
    }
}

/// An ethdev port, held exclusively by this handle.
///
/// `Send` (it can move to the lcore thread that polls it) but not `Sync`: the burst
/// functions of one queue must not run on two threads at once, and only one handle per
/// port id exists at a time ([`Error::PortBusy`]). [`Port::split`] turns it into one
/// handle per queue, for several lcores.
pub struct Port<'eal> {
    id: u16,
    rx_queues: u16,
    tx_queues: u16,
    rss_hf: u64,
    claim: Arc<Claim>,
    _eal: PhantomData<&'eal Eal>,
    _not_sync: PhantomData<Cell<()>>,
}

impl<'eal> Port<'eal> {
    /// Number of ports DPDK probed and that are available.
    pub fn count(_eal: &Eal) -> u16 {
        // SAFETY: EAL is initialised; the call only reads the ethdev table.
        unsafe { ffi::rte_eth_dev_count_avail() }
    }

    /// The port with device name `name` (e.g. `net_af_packet0` for
    /// `--vdev=net_af_packet0,...`, or a PCI address).
    pub fn by_name(eal: &'eal Eal, name: &str) -> Result<Port<'eal>> {
        let cname = CString::new(name).map_err(|_| Error::NulByte(name.to_owned()))?;
        let mut id = 0u16;
        // SAFETY: cname is a valid C string and id a valid out-pointer for the call.
        let ret = unsafe { ffi::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        if ret < 0 {
            return Err(Error::NoSuchPort(name.to_owned()));
        }
        Self::from_id(eal, id)
    }

    /// The port with id `id`.
    pub fn from_id(_eal: &'eal Eal, id: u16) -> Result<Port<'eal>> {
        // SAFETY: EAL is initialised; the call only checks the ethdev table.
        let valid = unsafe { ffi::rte_eth_dev_is_valid_port(id) } == 1;
        let slot = CLAIMED.get(usize::from(id)).filter(|_| valid);
        let slot = slot.ok_or(Error::InvalidPort(id))?;
        if slot.swap(true, Ordering::AcqRel) {
            return Err(Error::PortBusy(id));
        }
        Ok(Port {
            id,
            rx_queues: 0,
            tx_queues: 0,
            rss_hf: 0,
            claim: Arc::new(Claim(id)),
            _eal: PhantomData,
            _not_sync: PhantomData,
        })
    }

    /// Hot-plugs the virtual device `name` (e.g. `net_tap1`) with driver arguments
    /// `args` (e.g. `iface=dtap1`) and returns its port. The driver's plugin must have
    /// been loaded (`-d`).
    pub fn create_vdev(eal: &'eal Eal, name: &str, args: &str) -> Result<Port<'eal>> {
        let cname = CString::new(name).map_err(|_| Error::NulByte(name.to_owned()))?;
        let cargs = CString::new(args).map_err(|_| Error::NulByte(args.to_owned()))?;
        // SAFETY: both are valid C strings that DPDK copies.
        let ret = unsafe { ffi::rte_vdev_init(cname.as_ptr(), cargs.as_ptr()) };
        check("rte_vdev_init", ret)?;
        Self::by_name(eal, name)
    }

    /// Unplugs the virtual device behind this port (closing it); the port id becomes
    /// invalid. Fails for devices that are not virtual.
    pub fn remove_vdev(mut self) -> Result<()> {
        let name = self.name()?;
        let cname = CString::new(name.as_str()).map_err(|_| Error::NulByte(name.clone()))?;
        self.rx_queues = 0;
        self.tx_queues = 0;
        // SAFETY: valid C string; this handle holds the port exclusively and is
        // consumed, so no burst can run on it during or after the removal.
        let ret = unsafe { ffi::rte_vdev_uninit(cname.as_ptr()) };
        check("rte_vdev_uninit", ret).map(drop)
    }

    /// The port id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The device name of the port.
    pub fn name(&self) -> Result<String> {
        let mut buf = [0 as c_char; ffi::RTE_ETH_NAME_MAX_LEN as usize];
        // SAFETY: buf holds RTE_ETH_NAME_MAX_LEN bytes, the size the call writes at most.
        let ret = unsafe { ffi::rte_eth_dev_get_name_by_port(self.id, buf.as_mut_ptr()) };
        check("rte_eth_dev_get_name_by_port", ret)?;
        // SAFETY: on success the buffer holds a NUL-terminated name.
        let name = unsafe { CStr::from_ptr(buf.as_ptr()) };
        Ok(name.to_string_lossy().into_owned())
    }

    /// The driver's description of the port.
    pub fn info(&self) -> Result<PortInfo> {
        let mut info = ffi::rte_eth_dev_info::default();
        // SAFETY: valid port; info is a valid out-pointer.
        let ret = unsafe { ffi::rte_eth_dev_info_get(self.id, &mut info) };
        check("rte_eth_dev_info_get", ret)?;
        let driver = if info.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: non-null driver_name points to the driver's static C string.
            unsafe { CStr::from_ptr(info.driver_name) }
                .to_string_lossy()
                .into_owned()
        };
        Ok(PortInfo {
            driver,
            max_rx_queues: info.max_rx_queues,
            max_tx_queues: info.max_tx_queues,
            rss_offloads: info.flow_type_rss_offloads,
            rx_offload_capa: info.rx_offload_capa,
        })
    }

    /// NUMA socket of the device (`SOCKET_ID_ANY`, -1, when unknown).
    pub fn socket_id(&self) -> i32 {
        // SAFETY: id is a valid port.
        unsafe { ffi::rte_eth_dev_socket_id(self.id) }
    }

    /// Configures `rx_queues` receive queues of `rx_desc` descriptors filled from `pool`
    /// and `tx_queues` transmit queues of `tx_desc` descriptors, without offloads.
    /// With several receive queues, RSS spreads IP/TCP/UDP flows over them when the
    /// driver supports it ([`Port::rss_hash_functions`] tells what was enabled).
    /// Descriptor counts are adjusted to the driver's limits. The port must be stopped.
    pub fn configure(
        &mut self,
        rx_queues: u16,
        tx_queues: u16,
        rx_desc: u16,
        tx_desc: u16,
        pool: &Mempool<'eal>,
    ) -> Result<()> {
        if rx_queues == 0 && tx_queues == 0 {
            return Err(Error::InvalidConfig("a port needs at least one queue"));
        }
        let info = self.info()?;
        if rx_queues > info.max_rx_queues || tx_queues > info.max_tx_queues {
            return Err(Error::InvalidConfig("more queues than the port supports"));
        }
        let mut conf = ffi::rte_eth_conf::default();
        let rss_hf = rss_for(rx_queues, info.rss_offloads);
        if rss_hf != 0 {
            conf.rxmode.mq_mode = ffi::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
            // A null key selects the driver's default key.
            conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
        }
        // SAFETY: id is a valid port; conf is a plain configuration (RSS at most, no
        // offloads, null key) that DPDK copies. DPDK refuses (EBUSY) a started port.
        let ret = unsafe { ffi::rte_eth_dev_configure(self.id, rx_queues, tx_queues, &conf) };
        check("rte_eth_dev_configure", ret)?;
        // The old queues are gone; until every new one is set up no burst may touch
        // this port's queues.
        self.rx_queues = 0;
        self.tx_queues = 0;
        self.rss_hf = rss_hf;
        let (mut nb_rx, mut nb_tx) = (rx_desc, tx_desc);
        // SAFETY: valid port; the two out-pointers are valid for the call.
        let ret = unsafe { ffi::rte_eth_dev_adjust_nb_rx_tx_desc(self.id, &mut nb_rx, &mut nb_tx) };
        check("rte_eth_dev_adjust_nb_rx_tx_desc", ret)?;
        let socket = u32::try_from(self.socket_id()).unwrap_or(ffi::SOCKET_ID_ANY as u32);
        for q in 0..rx_queues {
            // SAFETY: valid configured port; NULL rx_conf selects the driver defaults;
            // the pool lives as long as 'eal, beyond any use by this port.
            let ret = unsafe {
                ffi::rte_eth_rx_queue_setup(
                    self.id,
                    q,
                    nb_rx,
                    socket,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            };
            check("rte_eth_rx_queue_setup", ret)?;
        }
        for q in 0..tx_queues {
            // SAFETY: valid configured port; NULL tx_conf selects the driver defaults.
            let ret =
                unsafe { ffi::rte_eth_tx_queue_setup(self.id, q, nb_tx, socket, std::ptr::null()) };
            check("rte_eth_tx_queue_setup", ret)?;
        }
        self.rx_queues = rx_queues;
        self.tx_queues = tx_queues;
        Ok(())
    }

    /// Number of configured receive queues.
    pub fn rx_queues(&self) -> u16 {
        self.rx_queues
    }

    /// The RSS hash functions enabled by [`Port::configure`] (`RTE_ETH_RSS_*` bits; 0 when
    /// RSS is off: one receive queue, or a driver without RSS).
    pub fn rss_hash_functions(&self) -> u64 {
        self.rss_hf
    }

    /// Number of configured transmit queues.
    pub fn tx_queues(&self) -> u16 {
        self.tx_queues
    }

    /// Starts the port.
    pub fn start(&mut self) -> Result<()> {
        // SAFETY: valid port.
        let ret = unsafe { ffi::rte_eth_dev_start(self.id) };
        check("rte_eth_dev_start", ret).map(drop)
    }

    /// Stops the port (bursts then return nothing until it is started again).
    pub fn stop(&mut self) -> Result<()> {
        // SAFETY: valid port.
        let ret = unsafe { ffi::rte_eth_dev_stop(self.id) };
        check("rte_eth_dev_stop", ret).map(drop)
    }

    /// Closes the port and releases its resources; the id becomes invalid.
    pub fn close(mut self) -> Result<()> {
        self.rx_queues = 0;
        self.tx_queues = 0;
        // SAFETY: valid port; self is consumed so it is not used afterwards.
        let ret = unsafe { ffi::rte_eth_dev_close(self.id) };
        check("rte_eth_dev_close", ret).map(drop)
    }

    /// The port's MAC address.
    pub fn mac_addr(&self) -> Result<[u8; 6]> {
        let mut mac = ffi::rte_ether_addr::default();
        // SAFETY: valid port; mac is a valid out-pointer.
        let ret = unsafe { ffi::rte_eth_macaddr_get(self.id, &mut mac) };
        check("rte_eth_macaddr_get", ret)?;
        Ok(mac.addr_bytes)
    }

    /// Enables or disables promiscuous mode.
    pub fn set_promiscuous(&mut self, on: bool) -> Result<()> {
        // SAFETY: valid port.
        let ret = unsafe {
            if on {
                ffi::rte_eth_promiscuous_enable(self.id)
            } else {
                ffi::rte_eth_promiscuous_disable(self.id)
            }
        };
        check("rte_eth_promiscuous_enable/disable", ret).map(drop)
    }

    /// Whether promiscuous mode is on.
    pub fn promiscuous(&self) -> Result<bool> {
        // SAFETY: valid port.
        let ret = unsafe { ffi::rte_eth_promiscuous_get(self.id) };
        check("rte_eth_promiscuous_get", ret).map(|v| v == 1)
    }

    /// The link state, without waiting for negotiation.
    pub fn link(&self) -> Result<Link> {
        let mut link = ffi::rte_eth_link::default();
        // SAFETY: valid port; link is a valid out-pointer.
        let ret = unsafe { ffi::rte_eth_link_get_nowait(self.id, &mut link) };
        check("rte_eth_link_get_nowait", ret)?;
        Ok(Link {
            up: link.link_status() == ffi::RTE_ETH_LINK_UP as u16,
            speed_mbps: link.link_speed,
            full_duplex: link.link_duplex() == ffi::RTE_ETH_LINK_FULL_DUPLEX as u16,
            autoneg: link.link_autoneg() == ffi::RTE_ETH_LINK_AUTONEG as u16,
        })
    }

    /// The port counters.
    pub fn stats(&self) -> Result<Stats> {
        let mut s = ffi::rte_eth_stats::default();
        // SAFETY: valid port; s is a valid out-pointer.
        let ret = unsafe { ffi::rte_eth_stats_get(self.id, &mut s) };
        check("rte_eth_stats_get", ret)?;
        Ok(Stats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    /// Resets the port counters.
    pub fn reset_stats(&mut self) -> Result<()> {
        // SAFETY: valid port.
        let ret = unsafe { ffi::rte_eth_stats_reset(self.id) };
        check("rte_eth_stats_reset", ret).map(drop)
    }

    /// Receives up to `bufs.spare()` packets from receive queue `queue` into the free
    /// slots of `bufs`; returns how many arrived. A stopped port receives nothing.
    pub fn rx_burst(&self, queue: u16, bufs: &mut MbufArray<'eal>) -> Result<usize> {
        if queue >= self.rx_queues {
            return Err(self.bad_queue(queue, self.rx_queues));
        }
        Ok(rx_queue(self.id, queue, bufs))
    }

    /// Transmits the mbufs of `bufs` on transmit queue `queue`, front first; returns how
    /// many the driver took. Those leave `bufs`; the unsent rest stays there, in order,
    /// owned by the caller (retry or drop them).
    pub fn tx_burst(&self, queue: u16, bufs: &mut MbufArray<'eal>) -> Result<usize> {
        if queue >= self.tx_queues {
            return Err(self.bad_queue(queue, self.tx_queues));
        }
        Ok(tx_queue(self.id, queue, bufs))
    }

    /// Splits the configured port into its control half and one handle per queue, so
    /// that several lcores can each poll their own queues: receive queue `i` is
    /// `rx[i]`, transmit queue `i` is `tx[i]`. Start the port before or after (through
    /// [`PortControl::into_port`] once the handles are gone); the port cannot be stopped,
    /// reconfigured or closed while any queue handle lives ([`Error::QueuesInUse`]), and
    /// the port id stays claimed ([`Error::PortBusy`]) until every part is dropped.
    pub fn split(self) -> (PortControl<'eal>, Vec<RxQueue<'eal>>, Vec<TxQueue<'eal>>) {
        let rx = (0..self.rx_queues)
            .map(|queue| RxQueue {
                port: self.id,
                queue,
                _claim: Arc::clone(&self.claim),
                _eal: PhantomData,
                _not_sync: PhantomData,
            })
            .collect();
        let tx = (0..self.tx_queues)
            .map(|queue| TxQueue {
                port: self.id,
                queue,
                _claim: Arc::clone(&self.claim),
                _eal: PhantomData,
                _not_sync: PhantomData,
            })
            .collect();
        (PortControl { port: self }, rx, tx)
    }

    fn bad_queue(&self, queue: u16, configured: u16) -> Error {
        Error::InvalidQueue {
            port: self.id,
            queue,
            configured,
        }
    }
}

impl std::fmt::Debug for Port<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Port")
            .field("id", &self.id)
            .field("rx_queues", &self.rx_queues)
            .field("tx_queues", &self.tx_queues)
            .finish()
    }
}

/// The RSS hash functions to enable: IP, TCP and UDP flows as far as the driver
/// supports them, and none for a single receive queue.
fn rss_for(rx_queues: u16, supported: u64) -> u64 {
    if rx_queues < 2 {
        return 0;
    }
    // SAFETY: the wrapper only returns a constant.
    let wanted = unsafe { ffi::fulcrum_rss_ip_tcp_udp() };
    wanted & supported
}

/// [`Port::rx_burst`] as a free function.
pub fn rx_burst<'eal>(port: &Port<'eal>, queue: u16, bufs: &mut MbufArray<'eal>) -> Result<usize> {
    port.rx_burst(queue, bufs)
}

/// [`Port::tx_burst`] as a free function.
pub fn tx_burst<'eal>(port: &Port<'eal>, queue: u16, bufs: &mut MbufArray<'eal>) -> Result<usize> {
    port.tx_burst(queue, bufs)
}

/// Receives up to `bufs.spare()` packets from `queue` of port `id`, which the caller
/// guarantees is set up and polled by it alone.
fn rx_queue<'eal>(id: u16, queue: u16, bufs: &mut MbufArray<'eal>) -> usize {
    let (slots, room) = bufs.spare_raw();
    if room == 0 {
        return 0;
    }
    // SAFETY: the queue is set up (the callers check it against the configured count,
    // and the port cannot be reconfigured while a handle to it lives) and polled only
    // through one !Sync handle; slots has room entries; DPDK writes at most room owned
    // mbuf pointers there.
    let n = unsafe { ffi::rte_eth_rx_burst(id, queue, slots, room) };
    let n = usize::from(n.min(room));
    // SAFETY: DPDK wrote n owned mbuf pointers into the spare slots.
    unsafe { bufs.commit_raw(n) };
    n
}

/// Transmits `bufs` on `queue` of port `id` (set up, used by the caller alone); returns
/// how many the driver took.
fn tx_queue<'eal>(id: u16, queue: u16, bufs: &mut MbufArray<'eal>) -> usize {
    let (pkts, n) = bufs.held_raw();
    if n == 0 {
        return 0;
    }
    // SAFETY: the queue is set up and used only through one !Sync handle; pkts holds n
    // owned mbuf pointers; DPDK takes ownership of the first `sent`.
    let sent = unsafe { ffi::rte_eth_tx_burst(id, queue, pkts, n) };
    let sent = usize::from(sent.min(n));
    // SAFETY: DPDK owns the first `sent` mbufs now.
    unsafe { bufs.consume_front_raw(sent) };
    sent
}

/// The control half of a [`Port::split`] port: identity, link, statistics, and the way
/// back to a whole [`Port`] once every queue handle is dropped.
#[derive(Debug)]
pub struct PortControl<'eal> {
    port: Port<'eal>,
}

impl<'eal> PortControl<'eal> {
    /// The port id.
    pub fn id(&self) -> u16 {
        self.port.id
    }

    /// The device name of the port.
    pub fn name(&self) -> Result<String> {
        self.port.name()
    }

    /// The driver's description of the port.
    pub fn info(&self) -> Result<PortInfo> {
        self.port.info()
    }

    /// The port's MAC address.
    pub fn mac_addr(&self) -> Result<[u8; 6]> {
        self.port.mac_addr()
    }

    /// The link state, without waiting for negotiation.
    pub fn link(&self) -> Result<Link> {
        self.port.link()
    }

    /// The port counters (all queues together).
    pub fn stats(&self) -> Result<Stats> {
        self.port.stats()
    }

    /// Number of configured receive queues.
    pub fn rx_queues(&self) -> u16 {
        self.port.rx_queues
    }

    /// Number of configured transmit queues.
    pub fn tx_queues(&self) -> u16 {
        self.port.tx_queues
    }

    /// The RSS hash functions enabled when the port was configured.
    pub fn rss_hash_functions(&self) -> u64 {
        self.port.rss_hf
    }

    /// Number of queue handles split off this port that are still alive.
    pub fn queues_in_use(&self) -> usize {
        Arc::strong_count(&self.port.claim).saturating_sub(1)
    }

    /// The whole [`Port`] again (to stop, reconfigure or close it), once every queue
    /// handle is dropped; otherwise gives `self` back ([`Error::QueuesInUse`] names the
    /// reason for callers that turn it into an error).
    pub fn into_port(self) -> std::result::Result<Port<'eal>, PortControl<'eal>> {
        // Only holders can clone the claim and clones happen only in `split`, so a
        // count of one cannot grow again.
        if Arc::strong_count(&self.port.claim) == 1 {
            Ok(self.port)
        } else {
            Err(self)
        }
    }

    /// [`PortControl::into_port`] as a `Result` with [`Error::QueuesInUse`].
    pub fn try_into_port(self) -> Result<Port<'eal>> {
        let id = self.id();
        self.into_port().map_err(|_| Error::QueuesInUse(id))
    }
}

/// One receive queue of a [`Port::split`] port, for one polling thread: `Send` (it moves
/// to its lcore), not `Sync` (one queue is never polled by two threads at once).
///
/// ```compile_fail
/// fn sync<T: Sync>() {}
/// sync::<dpdk_sys::RxQueue<'static>>();
/// ```
#[derive(Debug)]
pub struct RxQueue<'eal> {
    port: u16,
    queue: u16,
    _claim: Arc<Claim>,
    _eal: PhantomData<&'eal Eal>,
    _not_sync: PhantomData<Cell<()>>,
}

impl<'eal> RxQueue<'eal> {
    /// The port id.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The queue id.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Receives up to `bufs.spare()` packets into the free slots of `bufs`; returns how
    /// many arrived. A stopped port receives nothing.
    pub fn rx_burst(&self, bufs: &mut MbufArray<'eal>) -> usize {
        rx_queue(self.port, self.queue, bufs)
    }
}

/// One transmit queue of a [`Port::split`] port, for one thread: `Send`, not `Sync`.
///
/// ```compile_fail
/// fn sync<T: Sync>() {}
/// sync::<dpdk_sys::TxQueue<'static>>();
/// ```
#[derive(Debug)]
pub struct TxQueue<'eal> {
    port: u16,
    queue: u16,
    _claim: Arc<Claim>,
    _eal: PhantomData<&'eal Eal>,
    _not_sync: PhantomData<Cell<()>>,
}

impl<'eal> TxQueue<'eal> {
    /// The port id.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The queue id.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Transmits the mbufs of `bufs`, front first; returns how many the driver took.
    /// Those leave `bufs`; the unsent rest stays there, in order.
    pub fn tx_burst(&self, bufs: &mut MbufArray<'eal>) -> usize {
        tx_queue(self.port, self.queue, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RTE_ETH_RSS_IPV4, RTE_ETH_RSS_NONFRAG_IPV4_TCP, RTE_ETH_RSS_NONFRAG_IPV6_UDP
    /// (bits 2, 4 and 11 of rte_ethdev.h).
    const IPV4: u64 = 1 << 2;
    const IPV4_TCP: u64 = 1 << 4;
    const IPV6_UDP: u64 = 1 << 11;
    /// RTE_ETH_RSS_L2_PAYLOAD (bit 14): supported by some NICs, not asked for.
    const L2_PAYLOAD: u64 = 1 << 14;

    #[test]
    fn rss_asks_for_ip_tcp_udp_within_driver_support() {
        let all = rss_for(4, u64::MAX);
        assert_eq!(
            all & (IPV4 | IPV4_TCP | IPV6_UDP),
            IPV4 | IPV4_TCP | IPV6_UDP
        );
        assert_eq!(all & L2_PAYLOAD, 0);
        assert_eq!(rss_for(4, IPV4_TCP | L2_PAYLOAD), IPV4_TCP);
        assert_eq!(rss_for(4, 0), 0, "driver without RSS");
        assert_eq!(rss_for(1, u64::MAX), 0, "one queue needs no RSS");
        assert_eq!(rss_for(0, u64::MAX), 0);
    }
}
