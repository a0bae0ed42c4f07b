//! The forwarding loop: ports, TX buffers, held frames, timers.

use super::{BackendCounters, Control, HandoverCounters};
use crate::worker::{Action, Frame, Worker, WorkerEvent};
use dpdk_sys::{Eal, Mbuf, MbufArray, Mempool, Port, RxQueue, TxQueue, BURST};
use std::net::Ipv4Addr;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

/// Period of the worker's timers (connection expiry, neighbor aging, ARP retries) and
/// of the port statistics refresh.
pub const TICK: Duration = Duration::from_millis(100);
/// Slots for frames held while their neighbor resolves (a power of two).
pub const PENDING_SLOTS: usize = 1024;
/// Ethernet header + ARP for IPv4.
const ARP_FRAME: usize = 42;

/// How a loop reaches a port: the whole port (queue 0, one loop) or its own queue pair
/// of a split port (one loop per queue pair).
#[derive(Debug)]
pub(super) enum Io {
    /// The whole port, polled on queue 0.
    Whole(Port<'static>),
    /// One receive and one transmit queue of a [`Port::split`] port.
    Split(RxQueue<'static>, TxQueue<'static>),
}

/// Something frames can be transmitted on.
trait TxPath {
    /// Transmits the front of `q`; returns how many the driver took.
    fn tx(&self, q: &mut MbufArray<'static>) -> usize;
}

impl TxPath for Port<'static> {
    fn tx(&self, q: &mut MbufArray<'static>) -> usize {
        self.tx_burst(0, q).unwrap_or(0)
    }
}

impl TxPath for Io {
    fn tx(&self, q: &mut MbufArray<'static>) -> usize {
        match self {
            Io::Whole(p) => p.tx_burst(0, q).unwrap_or(0),
            Io::Split(_, t) => t.tx_burst(q),
        }
    }
}

impl Io {
    fn rx(&self, q: &mut MbufArray<'static>) -> usize {
        match self {
            Io::Whole(p) => p.rx_burst(0, q).unwrap_or(0),
            Io::Split(r, _) => r.rx_burst(q),
        }
    }
}

/// A port, its twin and their TX buffers.
#[derive(Debug)]
pub(super) struct Lane {
    port: Io,
    twin: Option<Port<'static>>,
    tx: MbufArray<'static>,
    twin_tx: MbufArray<'static>,
    /// The port verifies IPv4 header checksums on receive: a frame whose mbuf says
    /// `RTE_MBUF_F_RX_IP_CKSUM_GOOD` skips the worker's software check.
    ip_csum: bool,
}

impl Lane {
    pub(super) fn new(port: Port<'static>, twin: Option<Port<'static>>) -> Lane {
        let ip_csum = port.info().is_ok_and(|i| i.rx_ipv4_checksum());
        Lane::with_io(Io::Whole(port), twin).with_ip_csum(ip_csum)
    }

    pub(super) fn with_io(port: Io, twin: Option<Port<'static>>) -> Lane {
        Lane {
            port,
            twin,
            tx: MbufArray::new(),
            twin_tx: MbufArray::new(),
            ip_csum: false,
        }
    }

    /// Whether the port reports IPv4 receive checksum verification
    /// ([`dpdk_sys::PortInfo::rx_ipv4_checksum`]).
    pub(super) fn with_ip_csum(mut self, on: bool) -> Lane {
        self.ip_csum = on;
        self
    }

    /// The whole port (not the queue handles of a split one) and the twin, for stopping.
    pub(super) fn into_ports(self) -> impl Iterator<Item = Port<'static>> {
        let whole = match self.port {
            Io::Whole(p) => Some(p),
            Io::Split(..) => None,
        };
        whole.into_iter().chain(self.twin)
    }
}

/// What travels between two loops of a worker set.
#[derive(Debug)]
pub(super) enum Handed {
    /// A frame received on port `.0` that belongs to the receiving worker.
    Frame(u16, Mbuf<'static>),
    /// A frame to give to the twin of port `.0` (the receiving loop holds the twins).
    Punt(u16, Mbuf<'static>),
    /// A neighbor seen in an ARP frame on another loop's queue.
    Neighbor(Ipv4Addr, [u8; 6]),
}

/// The multi-worker side of a loop: its rings to and from the other loops.
#[derive(Debug)]
pub(super) struct Peers {
    /// This worker's index.
    pub(super) me: u16,
    /// Index of the loop that holds the twins.
    pub(super) twin_owner: u16,
    /// Ring to each other worker (`None` at `me`).
    pub(super) to: Vec<Option<SyncSender<Handed>>>,
    /// Rings from the other workers, with the sender's index.
    pub(super) from: Vec<(u16, Receiver<Handed>)>,
    /// Hand-over counters of this loop.
    pub(super) hc: Arc<HandoverCounters>,
}

impl Peers {
    /// Sends `h` to worker `w`; counts it as `ring_full` or `peer_gone` (and frees it)
    /// when it cannot go. Returns whether it went.
    fn send(&self, w: u16, h: Handed) -> bool {
        match self.to.get(usize::from(w)).and_then(Option::as_ref) {
            Some(tx) => match tx.try_send(h) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    self.hc.ring_full.add(1);
                    false
                }
                Err(TrySendError::Disconnected(_)) => {
                    self.hc.peer_gone.add(1);
                    false
                }
            },
            None => {
                self.hc.peer_gone.add(1);
                false
            }
        }
    }
}

/// The sender of an ARP frame for IPv4 over Ethernet (`None` for anything else).
pub(super) fn arp_sender(frame: &[u8]) -> Option<(Ipv4Addr, [u8; 6])> {
    if frame.get(12..14)? != [0x08, 0x06] || frame.get(14..20)? != [0, 1, 8, 0, 6, 4] {
        return None;
    }
    let mac: [u8; 6] = frame.get(22..28)?.try_into().ok()?;
    let ip: [u8; 4] = frame.get(28..32)?.try_into().ok()?;
    Some((Ipv4Addr::from(ip), mac))
}

/// Frames held for neighbor resolution, indexed by ticket: ticket `t` lives in slot
/// `t % N` and is only given back for the same ticket, so a slot reused by a newer frame
/// (the older one is evicted) never hands out the wrong buffer.
#[derive(Debug)]
pub(super) struct Held<T> {
    slots: Vec<Option<(u32, T)>>,
}

impl<T> Held<T> {
    /// `n` slots (rounded up to a power of two).
    pub(super) fn new(n: usize) -> Held<T> {
        let n = n.max(1).next_power_of_two();
        Held {
            slots: (0..n).map(|_| None).collect(),
        }
    }

    fn slot(&mut self, ticket: u32) -> Option<&mut Option<(u32, T)>> {
        let mask = self.slots.len() - 1;
        self.slots.get_mut(ticket as usize & mask)
    }

    /// Holds `v` under `ticket`; returns the evicted older entry, if any.
    pub(super) fn hold(&mut self, ticket: u32, v: T) -> Option<T> {
        let s = self.slot(ticket)?;
        s.replace((ticket, v)).map(|(_, old)| old)
    }

    /// Takes back the entry of `ticket` (none if it was evicted).
    pub(super) fn take(&mut self, ticket: u32) -> Option<T> {
        let s = self.slot(ticket)?;
        match s {
            Some((t, _)) if *t == ticket => s.take().map(|(_, v)| v),
            _ => None,
        }
    }

    /// Empties every slot.
    pub(super) fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.slots
            .iter_mut()
            .filter_map(|s| s.take().map(|(_, v)| v))
    }
}

/// Where a frame sits in its mbuf after processing: `(start, len)` inside a buffer of
/// `total` bytes; gives the bytes to cut at the front and at the back, or `None` when
/// the bounds do not fit.
pub(super) fn cuts(start: usize, len: usize, total: usize) -> Option<(usize, usize)> {
    let back = total.checked_sub(start)?.checked_sub(len)?;
    Some((start, back))
}

/// Exposes the whole buffer of a single-segment mbuf as its data (headroom and tailroom
/// included); returns the frame's start and length in it and the buffer.
fn expand<'m>(m: &'m mut Mbuf<'static>) -> Option<(usize, usize, &'m mut [u8])> {
    if !m.is_contiguous() {
        return None;
    }
    let start = m.headroom();
    let len = m.len();
    m.prepend(start).ok()?;
    let tail = m.tailroom();
    m.append(tail).ok()?;
    let buf = m.data_mut().ok()?;
    Some((start, len, buf))
}

/// Writes the frame bounds the worker left back into the (expanded) mbuf.
fn shrink(m: &mut Mbuf<'static>, start: usize, len: usize) -> bool {
    let Some((front, back)) = cuts(start, len, m.len()) else {
        return false;
    };
    m.adj(front).is_ok() && m.trim(back).is_ok()
}

/// Queues `m` on `q`, flushing it to `port` first when full; counts what cannot go.
fn enqueue(
    port: &impl TxPath,
    q: &mut MbufArray<'static>,
    m: Mbuf<'static>,
    sent: (&super::Counter, &super::Counter),
    full: &super::Counter,
) {
    if q.is_full() {
        flush(port, q, sent, full);
    }
    if let Err(m) = q.push(m) {
        drop(m);
        full.add(1);
    }
}

/// Transmits `q` on `port`; frees and counts what the driver did not take.
fn flush(
    port: &impl TxPath,
    q: &mut MbufArray<'static>,
    (packets, bytes): (&super::Counter, &super::Counter),
    full: &super::Counter,
) {
    if q.is_empty() {
        return;
    }
    let all: usize = q.iter().map(Mbuf::len).sum();
    let sent = port.tx(q);
    let left: usize = q.iter().map(Mbuf::len).sum();
    packets.add(sent as u64);
    bytes.add(all.saturating_sub(left) as u64);
    if !q.is_empty() {
        full.add(q.len() as u64);
        q.clear();
    }
}

/// Sends `m` on lane `port` (counted as a bad port when there is no such lane).
fn send(lanes: &mut [Lane], c: &BackendCounters, port: usize, m: Mbuf<'static>) {
    match (lanes.get_mut(port), c.ports.get(port)) {
        (Some(l), Some(pc)) => enqueue(
            &l.port,
            &mut l.tx,
            m,
            (&pc.tx_packets, &pc.tx_bytes),
            &pc.tx_full,
        ),
        _ => c.lcore.bad_port.add(1),
    }
}

/// Gives `m` to the twin of lane `port`, or to the loop holding the twins.
fn punt(
    lanes: &mut [Lane],
    c: &BackendCounters,
    peers: Option<&Peers>,
    port: usize,
    m: Mbuf<'static>,
) {
    let (Some(l), Some(pc)) = (lanes.get_mut(port), c.ports.get(port)) else {
        c.lcore.bad_port.add(1);
        return;
    };
    match (&l.twin, peers) {
        (Some(t), _) => {
            // Bytes of twin traffic are not counted separately: the counter is shared.
            let none = super::Counter::default();
            enqueue(t, &mut l.twin_tx, m, (&pc.twin_tx, &none), &pc.twin_drops);
        }
        (None, Some(peers)) if peers.twin_owner != peers.me => {
            let p = u16::try_from(port).unwrap_or(u16::MAX);
            if peers.send(peers.twin_owner, Handed::Punt(p, m)) {
                peers.hc.punts_out.add(1);
            }
        }
        (None, _) => pc.twin_drops.add(1),
    }
}

/// Builds an ARP request for `target` on `port` and queues it.
fn arp(
    worker: &Worker,
    pool: &Mempool<'static>,
    lanes: &mut [Lane],
    c: &BackendCounters,
    port: u16,
    target: std::net::Ipv4Addr,
) {
    let built = Mbuf::alloc(pool).ok().and_then(|mut m| {
        let buf = m.append(ARP_FRAME).ok()?;
        worker.arp_request(port, target, buf)?;
        Some(m)
    });
    match built {
        Some(m) => {
            c.lcore.arp_requests.add(1);
            send(lanes, c, usize::from(port), m);
        }
        None => c.lcore.arp_failed.add(1),
    }
}

/// The forwarding loop's state.
pub(super) struct Loop<'p> {
    eal: &'static Eal,
    pool: &'p Mempool<'static>,
    lanes: Vec<Lane>,
    worker: Worker,
    c: Arc<BackendCounters>,
    rx: MbufArray<'static>,
    held: Held<Mbuf<'static>>,
    events: Vec<WorkerEvent>,
    /// Ticket of the next received frame.
    seq: u32,
    tsc0: u64,
    /// Nanoseconds per TSC cycle in 32.32 fixed point (no division per round).
    ns_per_cycle: u128,
    next_tick: Duration,
    /// The other loops of a worker set (`None` for a single loop).
    peers: Option<Peers>,
    /// Handed-over frames waiting to be processed, per port.
    handed: Vec<MbufArray<'static>>,
    /// Sleep between rounds once idle ([`super::BackendConfig::idle_sleep`]).
    idle_sleep: Duration,
    /// Rounds in a row that found no frame.
    idle_streak: u32,
}

impl<'p> Loop<'p> {
    pub(super) fn new(
        eal: &'static Eal,
        pool: &'p Mempool<'static>,
        lanes: Vec<Lane>,
        worker: Worker,
        c: Arc<BackendCounters>,
    ) -> Loop<'p> {
        Loop {
            eal,
            pool,
            lanes,
            worker,
            c,
            rx: MbufArray::new(),
            held: Held::new(PENDING_SLOTS),
            events: Vec::with_capacity(256),
            seq: 0,
            tsc0: eal.rdtsc(),
            ns_per_cycle: (1_000_000_000u128 << 32) / u128::from(eal.tsc_hz().max(1)),
            next_tick: Duration::ZERO,
            peers: None,
            handed: Vec::new(),
            idle_sleep: Duration::ZERO,
            idle_streak: 0,
        }
    }

    /// Sleeps `d` between rounds after [`super::IDLE_ROUNDS_BEFORE_SLEEP`] empty rounds
    /// in a row (zero: busy polling).
    pub(super) fn with_idle_sleep(mut self, d: Duration) -> Loop<'p> {
        self.idle_sleep = d;
        self
    }

    /// Makes this loop one of a worker set.
    pub(super) fn with_peers(mut self, peers: Peers) -> Loop<'p> {
        self.handed = (0..self.lanes.len()).map(|_| MbufArray::new()).collect();
        self.peers = Some(peers);
        self
    }

    /// Time since the loop started, from the TSC.
    fn now(&self) -> Duration {
        let cycles = u128::from(self.eal.rdtsc().wrapping_sub(self.tsc0));
        let nanos = (cycles * self.ns_per_cycle) >> 32;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// One poll round: control messages, every port and twin, timers, TX flush.
    pub(super) fn round(&mut self, control: &Receiver<Control>) {
        let now = self.now();
        while let Ok(msg) = control.try_recv() {
            match msg {
                Control::Command(cmd) => match self.worker.apply(*cmd) {
                    Ok(()) => self.c.lcore.control_applied.add(1),
                    Err(_) => self.c.lcore.control_errors.add(1),
                },
                Control::Neighbor(ip, mac) => {
                    self.worker.learn_neighbor(ip, mac, now);
                    self.c.lcore.control_applied.add(1);
                }
                Control::Timeouts(t) => {
                    self.worker.set_timeouts(*t);
                    self.c.lcore.control_applied.add(1);
                }
                Control::Snapshot(req) => {
                    let id = self.peers.as_ref().map_or(0, |p| p.me);
                    let snap = super::conn_snapshot(&self.worker, id, now, req.limit);
                    // The requester may have given up: nothing to do then.
                    let _ = req.reply.try_send(snap);
                    self.c.lcore.control_applied.add(1);
                }
            }
        }
        // Frames handed over by the other loops first: their connection already waits.
        let mut got = self.poll_peers(now);
        for p in 0..self.lanes.len() {
            got += self.poll_port(p, now);
            got += self.poll_twin(p);
        }
        self.release();
        if now >= self.next_tick {
            self.next_tick = now + TICK;
            self.tick(now);
        }
        for (l, pc) in self.lanes.iter_mut().zip(&self.c.ports) {
            flush(
                &l.port,
                &mut l.tx,
                (&pc.tx_packets, &pc.tx_bytes),
                &pc.tx_full,
            );
            if let Some(t) = &l.twin {
                let none = super::Counter::default();
                flush(t, &mut l.twin_tx, (&pc.twin_tx, &none), &pc.twin_drops);
            }
        }
        self.c.lcore.rounds.add(1);
        if got == 0 {
            self.c.lcore.idle_rounds.add(1);
            self.idle_streak = self.idle_streak.saturating_add(1);
            if !self.idle_sleep.is_zero() && self.idle_streak >= super::IDLE_ROUNDS_BEFORE_SLEEP {
                self.c.lcore.idle_sleeps.add(1);
                std::thread::sleep(self.idle_sleep);
            }
        } else {
            self.idle_streak = 0;
        }
    }

    /// Receives a burst from port `p` and runs it through the worker.
    fn poll_port(&mut self, p: usize, now: Duration) -> usize {
        let (Some(lane), Some(pc)) = (self.lanes.get(p), self.c.ports.get(p)) else {
            return 0;
        };
        let n = lane.port.rx(&mut self.rx);
        if n == 0 {
            return 0;
        }
        let bytes: usize = self.rx.iter().map(Mbuf::len).sum();
        pc.rx_packets.add(n as u64);
        pc.rx_bytes.add(bytes as u64);
        if let Some(peers) = &self.peers {
            // Every loop keeps its own neighbor table: share what ARP tells this one.
            for m in self.rx.iter() {
                if let Some((ip, mac)) = m.data().ok().and_then(arp_sender) {
                    for w in (0..peers.to.len()).filter_map(|w| u16::try_from(w).ok()) {
                        if w != peers.me && peers.send(w, Handed::Neighbor(ip, mac)) {
                            peers.hc.neighbors_out.add(1);
                        }
                    }
                }
            }
        }
        // The burst leaves `self` while its frames are dispatched (a move of 33 words).
        let mut rx = std::mem::take(&mut self.rx);
        self.process_burst(p, &mut rx, now, false);
        self.rx = rx;
        n
    }

    /// Drains the rings from the other loops: neighbors, punts for the twins, and frames
    /// of this worker's connections (processed in per-port bursts).
    fn poll_peers(&mut self, now: Duration) -> usize {
        let rings = self.peers.as_ref().map_or(0, |p| p.from.len());
        let mut got = 0;
        let mut handed = std::mem::take(&mut self.handed);
        for r in 0..rings {
            // At most a few bursts per ring and round, so a busy peer cannot starve the
            // ports.
            for _ in 0..4 * BURST {
                let Some((src, Ok(h))) = self
                    .peers
                    .as_ref()
                    .and_then(|p| p.from.get(r))
                    .map(|(src, ring)| (*src, ring.try_recv()))
                else {
                    break;
                };
                got += 1;
                let Some(hc) = self.peers.as_ref().map(|p| Arc::clone(&p.hc)) else {
                    break;
                };
                match h {
                    Handed::Neighbor(ip, mac) => {
                        hc.neighbors_in.add(1);
                        self.worker.learn_neighbor(ip, mac, now);
                    }
                    Handed::Punt(port, m) => {
                        hc.punts_in.add(1);
                        punt(&mut self.lanes, &self.c, None, usize::from(port), m);
                    }
                    Handed::Frame(port, m) => {
                        hc.received.add(1);
                        if let Some(c) = hc.in_from.get(usize::from(src)) {
                            c.add(1);
                        }
                        let p = usize::from(port);
                        let Some(q) = handed.get_mut(p) else {
                            self.c.lcore.bad_port.add(1);
                            continue;
                        };
                        if q.is_full() {
                            self.process_burst(p, q, now, true);
                        }
                        if let Err(m) = q.push(m) {
                            drop(m);
                            hc.ring_full.add(1);
                        }
                    }
                }
            }
        }
        for (p, q) in handed.iter_mut().enumerate() {
            if !q.is_empty() {
                self.process_burst(p, q, now, true);
            }
        }
        self.handed = handed;
        got
    }

    /// Runs the frames of `rx` (received on port `p`, or handed over when `handed`)
    /// through the worker and carries out its verdicts; empties `rx`.
    fn process_burst(
        &mut self,
        p: usize,
        rx: &mut MbufArray<'static>,
        now: Duration,
        handed: bool,
    ) {
        let port = u16::try_from(p).unwrap_or(u16::MAX);
        let n = rx.len();
        let mut actions = [Action::Punt; BURST];
        let mut frames: [Frame<'_>; BURST] = std::array::from_fn(|_| empty_frame());
        let first = self.seq;
        let ip_csum = self.lanes.get(p).is_some_and(|l| l.ip_csum);
        for (i, (m, f)) in rx.as_mut_slice().iter_mut().zip(&mut frames).enumerate() {
            // The NIC's IPv4 checksum verdict, read before the buffer is lent out.
            let good = ip_csum && m.rx_ip_cksum_good();
            match expand(m).and_then(|(s, l, buf)| Frame::new(buf, s, l, port)) {
                Some(mut fr) => {
                    fr.ip_csum_ok = good;
                    *f = fr;
                }
                // An empty frame: the worker drops it as malformed.
                None => self.c.lcore.multi_segment.add(1),
            }
            f.ticket = first.wrapping_add(i as u32);
        }
        self.seq = first.wrapping_add(n as u32);
        let k = n.min(BURST);
        self.worker
            .process(now, &mut frames[..k], &mut actions[..k]);
        // Bounds are read back below from the frames, which borrow the mbufs: keep them
        // in a plain array first.
        let mut bounds = [(0usize, 0usize, 0u32); BURST];
        for (b, f) in bounds.iter_mut().zip(&frames[..k]) {
            *b = (f.headroom(), f.len(), f.ticket);
        }
        for (i, m) in rx.drain().enumerate() {
            let (Some(&(start, len, ticket)), Some(&a)) = (bounds.get(i), actions.get(i)) else {
                continue;
            };
            self.dispatch(p, m, (start, len), ticket, a, handed);
        }
    }

    /// Carries out the worker's verdict on one frame.
    fn dispatch(
        &mut self,
        p: usize,
        mut m: Mbuf<'static>,
        (start, len): (usize, usize),
        ticket: u32,
        a: Action,
        handed: bool,
    ) {
        if let Action::Drop(_) = a {
            return;
        }
        if !shrink(&mut m, start, len) {
            self.c.lcore.bad_bounds.add(1);
            return;
        }
        let c = &*self.c;
        match a {
            Action::Forward { port } | Action::Reply { port } => {
                send(&mut self.lanes, c, usize::from(port), m);
            }
            Action::Punt => punt(&mut self.lanes, c, self.peers.as_ref(), p, m),
            Action::Drop(_) => {}
            Action::Handover { worker } => match (&self.peers, handed) {
                // A frame handed to its owner must be processed there: a second hand-over
                // means two workers disagree on the owner.
                (Some(peers), true) => peers.hc.owner_mismatch.add(1),
                (Some(peers), false) => {
                    let port = u16::try_from(p).unwrap_or(u16::MAX);
                    if peers.send(worker, Handed::Frame(port, m)) {
                        peers.hc.sent.add(1);
                        if let Some(c) = peers.hc.out_to.get(usize::from(worker)) {
                            c.add(1);
                        }
                    }
                }
                (None, _) => c.lcore.handover_dropped.add(1),
            },
            Action::Pending {
                port,
                neighbor,
                request,
            } => {
                c.lcore.pending_held.add(1);
                if self.held.hold(ticket, m).is_some() {
                    c.lcore.pending_dropped.add(1);
                }
                if request {
                    arp(&self.worker, self.pool, &mut self.lanes, c, port, neighbor);
                }
            }
        }
    }

    /// Frames from the kernel twin of port `p` leave through the port.
    fn poll_twin(&mut self, p: usize) -> usize {
        let (Some(lane), Some(pc)) = (self.lanes.get_mut(p), self.c.ports.get(p)) else {
            return 0;
        };
        let Some(twin) = &lane.twin else {
            return 0;
        };
        let n = twin.rx_burst(0, &mut self.rx).unwrap_or(0);
        pc.twin_rx.add(n as u64);
        for m in self.rx.drain() {
            enqueue(
                &lane.port,
                &mut lane.tx,
                m,
                (&pc.tx_packets, &pc.tx_bytes),
                &pc.tx_full,
            );
        }
        n
    }

    /// Transmits held frames whose neighbor resolved.
    fn release(&mut self) {
        let Loop {
            worker,
            held,
            lanes,
            c,
            ..
        } = self;
        worker.drain_released(|ticket, port, mac| {
            let Some(mut m) = held.take(ticket) else {
                return;
            };
            match m.data_mut().ok().and_then(|d| d.get_mut(..6)) {
                Some(dst) => {
                    dst.copy_from_slice(&mac);
                    c.lcore.pending_sent.add(1);
                    send(lanes, c, usize::from(port), m);
                }
                None => c.lcore.bad_bounds.add(1),
            }
        });
    }

    /// Worker timers, ARP retries, port statistics.
    fn tick(&mut self, now: Duration) {
        let events = &mut self.events;
        events.clear();
        self.worker.tick(now, |e| events.push(e));
        for i in 0..self.events.len() {
            match self.events.get(i).copied() {
                Some(WorkerEvent::ArpRequest { port, target }) => {
                    arp(
                        &self.worker,
                        self.pool,
                        &mut self.lanes,
                        &self.c,
                        port,
                        target,
                    );
                }
                Some(WorkerEvent::DropTicket(t)) => {
                    let freed = self.held.take(t).is_some();
                    self.c.lcore.pending_dropped.add(u64::from(freed));
                }
                None => {}
            }
        }
        for (l, pc) in self.lanes.iter().zip(&self.c.ports) {
            let Io::Whole(port) = &l.port else {
                // A split port's statistics are the worker set's (`PortControl`).
                continue;
            };
            if let Ok(s) = port.stats() {
                pc.imissed.set(s.imissed);
                pc.rx_nombuf.set(s.rx_nombuf);
            }
        }
    }

    /// Frees held frames and the buffers; gives back the worker and the lanes.
    pub(super) fn finish(mut self) -> (Worker, Vec<Lane>) {
        let n = self.held.drain().count();
        self.c.lcore.pending_dropped.add(n as u64);
        if let Some(peers) = &self.peers {
            // What the others sent after this loop's last round: freed, but counted so
            // that every hand-over stays accounted for.
            for (_, ring) in &peers.from {
                while let Ok(h) = ring.try_recv() {
                    if let Handed::Frame(..) = h {
                        peers.hc.left_at_stop.add(1);
                    }
                }
            }
        }
        for (l, pc) in self.lanes.iter_mut().zip(&self.c.ports) {
            flush(
                &l.port,
                &mut l.tx,
                (&pc.tx_packets, &pc.tx_bytes),
                &pc.tx_full,
            );
            l.twin_tx.clear();
        }
        (self.worker, self.lanes)
    }
}

/// A placeholder frame (no bytes) for unused burst slots.
fn empty_frame() -> Frame<'static> {
    let empty: &'static mut [u8] = &mut [];
    // Constant arguments, not wire data: 0 + 0 always fits an empty buffer.
    Frame::new(empty, 0, 0, 0).expect("an empty frame fits an empty buffer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arp_sender_reads_ipv4_over_ethernet_only() {
        // ARP reply from 192.168.7.27 (02:00:00:00:00:1b) to 192.168.7.1.
        let mut f = [
            0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x1b, 0x08, 0x06, // Ethernet
            0, 1, 0x08, 0, 6, 4, 0, 2, // hw, proto, lengths, op=reply
            0x02, 0, 0, 0, 0, 0x1b, 192, 168, 7, 27, // sender
            0x02, 0, 0, 0, 0, 0x01, 192, 168, 7, 1, // target
        ];
        assert_eq!(
            arp_sender(&f),
            Some((Ipv4Addr::new(192, 168, 7, 27), [2, 0, 0, 0, 0, 0x1b]))
        );
        assert_eq!(arp_sender(&f[..31]), None, "truncated sender address");
        f[19] = 16; // protocol address length other than 4
        assert_eq!(arp_sender(&f), None);
        f[19] = 4;
        f[12..14].copy_from_slice(&[0x08, 0x00]); // IPv4, not ARP
        assert_eq!(arp_sender(&f), None);
        assert_eq!(arp_sender(&[]), None);
    }

    #[test]
    fn held_gives_back_by_ticket_and_evicts_on_reuse() {
        let mut h: Held<&str> = Held::new(4);
        assert_eq!(h.hold(1, "a"), None);
        assert_eq!(h.hold(2, "b"), None);
        // Ticket 5 shares slot 1 with ticket 1: the older frame is evicted.
        assert_eq!(h.hold(5, "c"), Some("a"));
        assert_eq!(h.take(1), None, "an evicted ticket gives nothing");
        assert_eq!(h.take(5), Some("c"));
        assert_eq!(h.take(5), None, "taken once");
        assert_eq!(h.take(2), Some("b"));
        let _ = h.hold(3, "d");
        // Wrapped tickets keep working (slot 0).
        let _ = h.hold(u32::MAX - 3, "e");
        let mut rest: Vec<&str> = h.drain().collect();
        rest.sort_unstable();
        assert_eq!(rest, ["d", "e"]);
        assert_eq!(h.take(3), None);
    }

    #[test]
    fn held_rounds_to_a_power_of_two() {
        let mut h: Held<u8> = Held::new(3);
        assert_eq!(h.hold(0, 1), None);
        // Four slots: ticket 4 collides with ticket 0, ticket 3 does not.
        assert_eq!(h.hold(3, 2), None);
        assert_eq!(h.hold(4, 3), Some(1));
    }

    #[test]
    fn cuts_restore_the_frame_bounds() {
        // 2176-byte buffer, frame of 60 at 128: cut 128 in front and 1988 behind.
        assert_eq!(cuts(128, 60, 2176), Some((128, 1988)));
        // The worker prepended 20 bytes (IPIP) and the frame grew.
        assert_eq!(cuts(108, 80, 2176), Some((108, 1988)));
        // TOA appended 8 bytes.
        assert_eq!(cuts(128, 68, 2176), Some((128, 1980)));
        assert_eq!(cuts(0, 2176, 2176), Some((0, 0)));
        assert_eq!(cuts(128, 2049, 2176), None);
        assert_eq!(cuts(2177, 0, 2176), None);
    }

    #[test]
    fn empty_frames_are_dropped_as_malformed_by_the_core() {
        use crate::fib::{Fib, FibHandle};
        use crate::worker::{DropReason, PortConfig, WorkerConfig};
        let fib = Arc::new(FibHandle::new(Fib::build(&[]).expect("empty fib")));
        let mut w = Worker::new(
            WorkerConfig {
                id: 0,
                workers: 1,
                ports: vec![PortConfig {
                    mac: [2, 0, 0, 0, 0, 1],
                    addrs: vec![],
                    mtu: 1500,
                }],
                conn_capacity: 16,
                seed: 1,
                timeouts: crate::conn::Timeouts::dpvs(),
                neigh_capacity: 4,
            },
            fib,
        );
        let mut f = empty_frame();
        assert_eq!(f.len(), 0);
        assert_eq!(
            w.process_one(Duration::ZERO, &mut f),
            Action::Drop(DropReason::Malformed)
        );
    }
}
