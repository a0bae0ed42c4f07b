//! Several forwarding loops, one per lcore, each on its own queue pair of every port.

use super::lane::{Handed, Io, Lane, Loop, Peers};
use super::{
    Backend, BackendCounters, ControlRx, Error, HandoverCounters, LoopCounters, PortCounters,
    Result, StopHandle,
};
use crate::worker::Worker;
use dpdk_sys::{Eal, Mempool, Port, PortControl};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::Duration;

/// Frames (and messages) each hand-over ring holds; one ring per ordered pair of
/// workers.
pub const HANDOVER_RING: usize = 1024;

/// What one loop is given at launch.
struct Seat {
    lanes: Vec<Lane>,
    peers: Peers,
    counters: Arc<BackendCounters>,
}

/// Rings between every ordered pair of `n` workers: for each worker, its senders (by
/// target) and its receivers (with the source).
type Rings = (
    Vec<Vec<Option<SyncSender<Handed>>>>,
    Vec<Vec<(u16, Receiver<Handed>)>>,
);

/// Builds the rings between `n` workers.
fn rings(n: u16, capacity: usize) -> Rings {
    let mut to: Vec<Vec<Option<SyncSender<Handed>>>> =
        (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
    let mut from: Vec<Vec<(u16, Receiver<Handed>)>> = (0..n).map(|_| Vec::new()).collect();
    for src in 0..n {
        for dst in (0..n).filter(|&d| d != src) {
            let (tx, rx) = sync_channel(capacity);
            if let Some(slot) = to
                .get_mut(usize::from(src))
                .and_then(|v| v.get_mut(usize::from(dst)))
            {
                *slot = Some(tx);
            }
            if let Some(v) = from.get_mut(usize::from(dst)) {
                v.push((src, rx));
            }
        }
    }
    (to, from)
}

impl Backend {
    /// Runs one forwarding loop per lcore of `lcores`: loop `i` runs `workers[i]` (whose
    /// [`WorkerConfig`](crate::worker::WorkerConfig) must say `id: i` and `workers:
    /// workers.len()`), polls queue pair `i` of every port and `controls[i]`. The ports
    /// must have been configured with that many queue pairs ([`Backend::with_queues`]).
    /// Worker 0 holds the twins. [`RunningSet::stop`] ends every loop and gives the
    /// workers back.
    pub fn launch_workers(
        self,
        workers: Vec<Worker>,
        controls: Vec<ControlRx>,
        lcores: &[u32],
    ) -> Result<RunningSet> {
        let n = workers.len();
        if n == 0 || controls.len() != n || lcores.len() != n {
            return Err(Error::Config(
                "one control queue and one lcore per worker needed",
            ));
        }
        let n16 = u16::try_from(n).map_err(|_| Error::Config("too many workers"))?;
        if self
            .ports
            .iter()
            .any(|p| p.port.rx_queues() != n16 || p.port.tx_queues() != n16)
        {
            return Err(Error::Config(
                "ports need one queue pair per worker (Backend::with_queues)",
            ));
        }
        let Backend {
            eal,
            pool,
            ports,
            counters: _,
            stop,
            idle_sleep,
        } = self;
        let handover: Vec<Arc<HandoverCounters>> =
            (0..n).map(|_| Arc::new(HandoverCounters::new(n))).collect();
        let counters: Vec<Arc<BackendCounters>> = (0..n)
            .map(|_| {
                Arc::new(BackendCounters {
                    ports: ports.iter().map(|_| PortCounters::default()).collect(),
                    lcore: LoopCounters::default(),
                })
            })
            .collect();
        let (to, from) = rings(n16, HANDOVER_RING);
        let mut lanes: Vec<Vec<Lane>> = (0..n).map(|_| Vec::new()).collect();
        let mut port_controls = Vec::with_capacity(ports.len());
        for p in ports {
            let ip_csum = p.port.info().is_ok_and(|i| i.rx_ipv4_checksum());
            let (ctl, rxq, txq) = p.port.split();
            port_controls.push(ctl);
            let mut twin = p.twin;
            for ((w, r), t) in lanes.iter_mut().zip(rxq).zip(txq) {
                // The first worker takes the twin; the others have none.
                w.push(Lane::with_io(Io::Split(r, t), twin.take()).with_ip_csum(ip_csum));
            }
        }
        let pool = Arc::new(pool);
        let mut seats: Vec<Seat> = Vec::with_capacity(n);
        for (i, ((l, (to, from)), c)) in lanes
            .into_iter()
            .zip(to.into_iter().zip(from))
            .zip(&counters)
            .enumerate()
        {
            let hc = handover
                .get(i)
                .cloned()
                .unwrap_or_else(|| Arc::new(HandoverCounters::new(n)));
            seats.push(Seat {
                lanes: l,
                peers: Peers {
                    me: u16::try_from(i).unwrap_or(u16::MAX),
                    twin_owner: 0,
                    to,
                    from,
                    hc,
                },
                counters: Arc::clone(c),
            });
        }
        let mut set = RunningSet {
            eal,
            lcores: Vec::with_capacity(n),
            stop: stop.clone(),
            results: Vec::with_capacity(n),
            controls: port_controls,
            counters,
            handover,
            pool: Arc::clone(&pool),
        };
        for ((seat, (worker, control)), &lcore) in seats
            .into_iter()
            .zip(workers.into_iter().zip(controls))
            .zip(lcores)
        {
            let (tx, result) = sync_channel(1);
            let stop = stop.clone();
            let pool = Arc::clone(&pool);
            let launched = eal.remote_launch(lcore, move || {
                let r = run_seat(eal, &pool, seat, worker, &control, &stop, idle_sleep);
                let code = i32::from(r.is_err());
                let _ = tx.send(r);
                code
            });
            if let Err(e) = launched {
                // Stop what already runs before reporting the error.
                let _ = set.stop();
                return Err(Error::Dpdk(e));
            }
            set.lcores.push(lcore);
            set.results.push(result);
        }
        Ok(set)
    }
}

/// One loop of the set, until the stop handle fires; stops and closes the twins it holds.
fn run_seat(
    eal: &'static Eal,
    pool: &Mempool<'static>,
    seat: Seat,
    worker: Worker,
    control: &ControlRx,
    stop: &StopHandle,
    idle_sleep: Duration,
) -> Result<Worker> {
    let mut fwd = Loop::new(eal, pool, seat.lanes, worker, seat.counters)
        .with_peers(seat.peers)
        .with_idle_sleep(idle_sleep);
    while !stop.is_stopped() {
        fwd.round(&control.0);
    }
    let (worker, lanes) = fwd.finish();
    let mut first_err = None;
    for l in lanes {
        // Only twins come out: the split ports are closed by `RunningSet::stop`.
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

/// Forwarding loops running on several lcores ([`Backend::launch_workers`]).
#[derive(Debug)]
pub struct RunningSet {
    eal: &'static Eal,
    lcores: Vec<u32>,
    stop: StopHandle,
    results: Vec<Receiver<Result<Worker>>>,
    controls: Vec<PortControl<'static>>,
    counters: Vec<Arc<BackendCounters>>,
    handover: Vec<Arc<HandoverCounters>>,
    /// Kept until the ports are closed: their descriptors hold mbufs of the pool.
    pool: Arc<Mempool<'static>>,
}

impl RunningSet {
    /// The lcore of each loop, by worker index.
    pub fn lcores(&self) -> &[u32] {
        &self.lcores
    }

    /// Port and loop counters of each worker's loop (share the `Arc`s with readers).
    pub fn counters(&self) -> Vec<Arc<BackendCounters>> {
        self.counters.clone()
    }

    /// Hand-over counters of each worker's loop.
    pub fn handover_counters(&self) -> Vec<Arc<HandoverCounters>> {
        self.handover.clone()
    }

    /// Statistics of each port (all queues), in configuration order.
    pub fn port_stats(&self) -> Vec<Result<dpdk_sys::Stats>> {
        self.controls
            .iter()
            .map(|c| c.stats().map_err(Error::Dpdk))
            .collect()
    }

    /// Stops every loop, waits for the lcores, stops and closes the ports and gives the
    /// workers back in worker order (or the first error: a loop that panicked or could
    /// not close its twins, a port that could not be closed).
    pub fn stop(self) -> Result<Vec<Worker>> {
        self.stop.stop();
        let mut first_err = None;
        let mut workers = Vec::with_capacity(self.results.len());
        for (&lcore, result) in self.lcores.iter().zip(&self.results) {
            let r = match self.eal.wait_lcore(lcore) {
                Err(e) => Err(Error::Dpdk(e)),
                Ok(code) => match result.try_recv() {
                    Ok(r) => r,
                    Err(_) if code == dpdk_sys::LAUNCH_PANICKED => Err(Error::Loop("panicked")),
                    Err(_) => Err(Error::Loop("ended without a result")),
                },
            };
            match r {
                Ok(w) => workers.push(w),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        // Every loop has ended and dropped its queue handles: the ports are whole again.
        for ctl in self.controls {
            let r = ctl
                .try_into_port()
                .and_then(|mut p: Port<'static>| p.stop().and_then(|()| p.close()));
            if let Err(e) = r {
                first_err.get_or_insert(Error::Dpdk(e));
            }
        }
        drop(self.pool);
        match first_err {
            Some(e) => Err(e),
            None => Ok(workers),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpdk_sys::{RxQueue, TxQueue};

    #[test]
    fn what_moves_to_an_lcore_is_send() {
        fn send<T: Send>(_: Option<T>) -> bool {
            true
        }
        assert!(send::<RxQueue<'static>>(None));
        assert!(send::<TxQueue<'static>>(None));
        assert!(send::<Handed>(None));
        assert!(send::<RunningSet>(None));
    }

    #[test]
    fn rings_connect_every_ordered_pair_once() {
        let (to, from) = rings(3, 4);
        assert_eq!(to.len(), 3);
        for (src, targets) in to.iter().enumerate() {
            for (dst, t) in targets.iter().enumerate() {
                assert_eq!(t.is_some(), src != dst, "{src}->{dst}");
            }
        }
        for (dst, sources) in from.iter().enumerate() {
            let mut s: Vec<u16> = sources.iter().map(|(s, _)| *s).collect();
            s.sort_unstable();
            let want: Vec<u16> = (0..3).filter(|&x| usize::from(x) != dst).collect();
            assert_eq!(s, want);
        }
        // 0 -> 2 arrives at 2, tagged with its source, and the ring is bounded.
        let tx = to[0][2].as_ref().expect("ring 0->2");
        let ip = std::net::Ipv4Addr::new(10, 0, 0, 1);
        for i in 0..4u8 {
            assert!(tx.try_send(Handed::Neighbor(ip, [i; 6])).is_ok());
        }
        assert!(
            tx.try_send(Handed::Neighbor(ip, [9; 6])).is_err(),
            "bounded"
        );
        let (src, rx) = from[2].iter().find(|(s, _)| *s == 0).expect("ring from 0");
        assert_eq!(*src, 0);
        assert!(matches!(
            rx.try_recv(),
            Ok(Handed::Neighbor(_, [0, 0, 0, 0, 0, 0]))
        ));
        let (_, rx1) = from[2].iter().find(|(s, _)| *s == 1).expect("ring from 1");
        assert!(rx1.try_recv().is_err(), "nothing crossed from 1");
    }
}
