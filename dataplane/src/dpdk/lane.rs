//! The forwarding loop: ports, TX buffers, held frames, timers.

use super::{BackendCounters, Control};
use crate::worker::{Action, Frame, Worker, WorkerEvent};
use dpdk_sys::{Eal, Mbuf, MbufArray, Mempool, Port, BURST};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

/// Period of the worker's timers (connection expiry, neighbor aging, ARP retries) and
/// of the port statistics refresh.
pub const TICK: Duration = Duration::from_millis(100);
/// Slots for frames held while their neighbor resolves (a power of two).
pub const PENDING_SLOTS: usize = 1024;
/// Ethernet header + ARP for IPv4.
const ARP_FRAME: usize = 42;

/// A port, its twin and their TX buffers.
#[derive(Debug)]
pub(super) struct Lane {
    port: Port<'static>,
    twin: Option<Port<'static>>,
    tx: MbufArray<'static>,
    twin_tx: MbufArray<'static>,
}

impl Lane {
    pub(super) fn new(port: Port<'static>, twin: Option<Port<'static>>) -> Lane {
        Lane {
            port,
            twin,
            tx: MbufArray::new(),
            twin_tx: MbufArray::new(),
        }
    }

    /// The port and the twin, for stopping.
    pub(super) fn into_ports(self) -> impl Iterator<Item = Port<'static>> {
        std::iter::once(self.port).chain(self.twin)
    }
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
    port: &Port<'static>,
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
    port: &Port<'static>,
    q: &mut MbufArray<'static>,
    (packets, bytes): (&super::Counter, &super::Counter),
    full: &super::Counter,
) {
    if q.is_empty() {
        return;
    }
    let all: usize = q.iter().map(Mbuf::len).sum();
    let sent = port.tx_burst(0, q).unwrap_or(0);
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

/// Gives `m` to the twin of lane `port`.
fn punt(lanes: &mut [Lane], c: &BackendCounters, port: usize, m: Mbuf<'static>) {
    let (Some(l), Some(pc)) = (lanes.get_mut(port), c.ports.get(port)) else {
        c.lcore.bad_port.add(1);
        return;
    };
    match &l.twin {
        Some(t) => {
            // Bytes of twin traffic are not counted separately: the counter is shared.
            let none = super::Counter::default();
            enqueue(t, &mut l.twin_tx, m, (&pc.twin_tx, &none), &pc.twin_drops);
        }
        None => pc.twin_drops.add(1),
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
        }
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
            }
        }
        let mut got = 0;
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
        }
    }

    /// Receives a burst from port `p` and runs it through the worker.
    fn poll_port(&mut self, p: usize, now: Duration) -> usize {
        let (Some(lane), Some(pc)) = (self.lanes.get(p), self.c.ports.get(p)) else {
            return 0;
        };
        let n = lane.port.rx_burst(0, &mut self.rx).unwrap_or(0);
        if n == 0 {
            return 0;
        }
        // The burst leaves `self` while its frames are dispatched (a move of 33 words).
        let mut rx = std::mem::take(&mut self.rx);
        let port = u16::try_from(p).unwrap_or(u16::MAX);
        let mut actions = [Action::Punt; BURST];
        {
            let mut frames: [Frame<'_>; BURST] = std::array::from_fn(|_| empty_frame());
            let mut bytes = 0;
            let first = self.seq;
            for (i, (m, f)) in rx.as_mut_slice().iter_mut().zip(&mut frames).enumerate() {
                bytes += m.len();
                match expand(m).and_then(|(s, l, buf)| Frame::new(buf, s, l, port)) {
                    Some(fr) => *f = fr,
                    // An empty frame: the worker drops it as malformed.
                    None => self.c.lcore.multi_segment.add(1),
                }
                f.ticket = first.wrapping_add(i as u32);
            }
            self.seq = first.wrapping_add(n as u32);
            pc.rx_packets.add(n as u64);
            pc.rx_bytes.add(bytes as u64);
            let k = n.min(BURST);
            self.worker
                .process(now, &mut frames[..k], &mut actions[..k]);
            // Bounds are read back below from the frames, which borrow the mbufs:
            // keep them in a plain array first.
            let mut bounds = [(0usize, 0usize, 0u32); BURST];
            for (b, f) in bounds.iter_mut().zip(&frames[..k]) {
                *b = (f.headroom(), f.len(), f.ticket);
            }
            for (i, m) in rx.drain().enumerate() {
                let (Some(&(start, len, ticket)), Some(&a)) = (bounds.get(i), actions.get(i))
                else {
                    continue;
                };
                self.dispatch(p, m, start, len, ticket, a);
            }
        }
        self.rx = rx;
        n
    }

    /// Carries out the worker's verdict on one frame.
    fn dispatch(
        &mut self,
        p: usize,
        mut m: Mbuf<'static>,
        start: usize,
        len: usize,
        ticket: u32,
        a: Action,
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
            Action::Punt => punt(&mut self.lanes, c, p, m),
            Action::Drop(_) => {}
            Action::Handover { .. } => c.lcore.handover_dropped.add(1),
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
            if let Ok(s) = l.port.stats() {
                pc.imissed.set(s.imissed);
                pc.rx_nombuf.set(s.rx_nombuf);
            }
        }
    }

    /// Frees held frames and the buffers; gives back the worker and the lanes.
    pub(super) fn finish(mut self) -> (Worker, Vec<Lane>) {
        let n = self.held.drain().count();
        self.c.lcore.pending_dropped.add(n as u64);
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
