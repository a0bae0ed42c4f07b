//! Process-wide EAL initialisation.

use std::ffi::{c_char, c_int, c_void, CString};
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::error::{from_code, from_errno, Error, Result};
use crate::ffi;

/// Set by the first [`Eal::init`] call, successful or not: DPDK cannot be initialised
/// twice, nor again after `rte_eal_cleanup`.
static INITIALISED: AtomicBool = AtomicBool::new(false);

/// The initialised DPDK Environment Abstraction Layer.
///
/// Created once per process by [`Eal::init`]; dropping it calls `rte_eal_cleanup`. Pools,
/// ports and mbufs borrow it (`'eal`), so none can outlive the cleanup. It is `Sync` (its
/// methods only query) but not `Send`: it is cleaned up on the thread that created it,
/// the main lcore. A daemon that keeps DPDK for the life of the process can
/// `Box::leak` it to get `&'static Eal` for its lcore threads.
pub struct Eal {
    /// The argument strings handed to `rte_eal_init`, kept alive until after cleanup in
    /// case DPDK kept pointers into them.
    _args: Vec<CString>,
    /// Number of arguments `rte_eal_init` consumed.
    consumed: usize,
    /// Not `Send`.
    _not_send: PhantomData<*const ()>,
}

// SAFETY: `Eal` holds only owned, immutable argument strings; its `&self` methods call
// DPDK functions that are safe to call from any thread (they read EAL configuration).
unsafe impl Sync for Eal {}

impl Eal {
    /// Initialises the EAL with `args` (the first is the program name, as in `argv`).
    ///
    /// Must be called from the thread that becomes the main lcore; threads EAL creates
    /// inherit its network namespace. Returns [`Error::AlreadyInitialized`] on any call
    /// after the first (a failed first call included: DPDK cannot retry reliably), and
    /// an [`Error::Dpdk`] carrying `rte_errno` when `rte_eal_init` fails. EAL options
    /// such as `--help` make DPDK print and exit the process.
    pub fn init(args: &[String]) -> Result<Eal> {
        let owned = args
            .iter()
            .map(|a| CString::new(a.as_str()).map_err(|_| Error::NulByte(a.clone())))
            .collect::<Result<Vec<_>>>()?;
        let argc = c_int::try_from(owned.len()).map_err(|_| Error::InvalidConfig("argc"))?;
        if INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(Error::AlreadyInitialized);
        }
        // argv as C expects it: mutable pointers (getopt may permute them) and a NULL end.
        let mut argv: Vec<*mut c_char> = owned
            .iter()
            .map(|a| a.as_ptr().cast_mut())
            .chain(std::iter::once(std::ptr::null_mut()))
            .collect();
        // SAFETY: argv holds argc valid NUL-terminated strings followed by NULL; the
        // strings live in `owned`, which the returned Eal keeps until after cleanup.
        // rte_eal_init may reorder the pointer array but does not write the strings.
        // The INITIALISED flag guarantees a single call per process.
        let ret = unsafe { ffi::rte_eal_init(argc, argv.as_mut_ptr()) };
        if ret < 0 {
            let err = from_errno("rte_eal_init");
            // A half-done initialisation may still point into the strings: keep them.
            std::mem::forget(owned);
            return Err(err);
        }
        Ok(Eal {
            _args: owned,
            consumed: usize::try_from(ret).unwrap_or(0),
            _not_send: PhantomData,
        })
    }

    /// Number of EAL arguments `rte_eal_init` parsed, the program name not counted: the
    /// application's own arguments start at index `args_consumed() + 1`.
    pub fn args_consumed(&self) -> usize {
        self.consumed
    }

    /// The lcore id of the main lcore.
    pub fn main_lcore(&self) -> u32 {
        // SAFETY: reads EAL configuration, valid after rte_eal_init.
        unsafe { ffi::rte_get_main_lcore() }
    }

    /// Number of lcores EAL runs.
    pub fn lcore_count(&self) -> u32 {
        // SAFETY: reads EAL configuration, valid after rte_eal_init.
        unsafe { ffi::rte_lcore_count() }
    }

    /// The worker lcores (every EAL lcore but the main one), ascending.
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut lcores = Vec::new();
        // SAFETY: EAL is initialised; rte_get_next_lcore only reads its lcore table and
        // starts after `i` (UINT_MAX + 1 wraps to lcore 0, as RTE_LCORE_FOREACH does).
        let mut i = unsafe { ffi::rte_get_next_lcore(u32::MAX, 1, 0) };
        while i < ffi::RTE_MAX_LCORE {
            lcores.push(i);
            // SAFETY: as above.
            i = unsafe { ffi::rte_get_next_lcore(i, 1, 0) };
        }
        lcores
    }

    /// Whether `lcore` is a worker lcore (enabled and not the main lcore).
    fn is_worker(&self, lcore: u32) -> bool {
        // SAFETY: rte_lcore_is_enabled checks the bound before reading the lcore table.
        lcore < ffi::RTE_MAX_LCORE
            && unsafe { ffi::rte_lcore_is_enabled(lcore) } == 1
            && lcore != self.main_lcore()
    }

    /// Runs `f` on worker lcore `lcore` (a thread EAL created and pinned). The lcore
    /// must be idle: launched and then collected with [`Eal::wait_lcore`], or never
    /// launched. A panic in `f` is caught on the lcore and reported by `wait_lcore` as
    /// [`LAUNCH_PANICKED`].
    pub fn remote_launch<F>(&self, lcore: u32, f: F) -> Result<()>
    where
        F: FnOnce() -> i32 + Send + 'static,
    {
        if !self.is_worker(lcore) {
            return Err(Error::InvalidConfig("remote_launch needs a worker lcore"));
        }
        // rte_eal_remote_launch checks and then sets the lcore's state non-atomically:
        // two concurrent launches (Eal is Sync) must not interleave.
        let _serial = LAUNCH_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let job: Box<Job> = Box::new(Box::new(f));
        let arg = Box::into_raw(job).cast::<c_void>();
        // SAFETY: lcore is an enabled worker (checked above, so the index is in bounds);
        // trampoline takes back the box exactly once when the lcore runs it.
        let ret = unsafe { ffi::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
        if ret < 0 {
            // SAFETY: the launch failed, so DPDK did not keep arg: reclaim the box.
            drop(unsafe { Box::from_raw(arg.cast::<Job>()) });
            return Err(from_code("rte_eal_remote_launch", ret));
        }
        Ok(())
    }

    /// Waits until worker `lcore` is idle and gives the return value of the last
    /// function launched there (0 if none ever was); the lcore can then be launched
    /// again.
    pub fn wait_lcore(&self, lcore: u32) -> Result<i32> {
        if !self.is_worker(lcore) {
            return Err(Error::InvalidConfig("wait_lcore needs a worker lcore"));
        }
        // SAFETY: lcore is an enabled worker (in bounds).
        Ok(unsafe { ffi::rte_eal_wait_lcore(lcore) })
    }

    /// Registers the calling thread (one EAL did not create) with EAL: it gets an lcore
    /// id, so mempool per-lcore caches work from it, until the returned guard drops.
    /// The thread keeps its CPU affinity (a thread spawned from the main lcore inherits
    /// the main lcore's).
    pub fn register_thread(&self) -> Result<ThreadRegistration<'_>> {
        if lcore_id().is_some() {
            return Err(Error::InvalidConfig("thread already has an lcore id"));
        }
        // SAFETY: EAL is initialised; registers the calling thread only.
        let ret = unsafe { ffi::rte_thread_register() };
        if ret < 0 {
            return Err(from_errno("rte_thread_register"));
        }
        let lcore = lcore_id().ok_or(Error::InvalidConfig("registration gave no lcore id"))?;
        Ok(ThreadRegistration {
            lcore,
            _eal: PhantomData,
            _not_send: PhantomData,
        })
    }

    /// NUMA socket of the calling thread (`SOCKET_ID_ANY`, -1, when unknown).
    pub fn socket_id(&self) -> i32 {
        // SAFETY: reads the calling thread's per-lcore variable.
        let id = unsafe { ffi::rte_socket_id() };
        i32::try_from(id).unwrap_or(ffi::SOCKET_ID_ANY)
    }

    /// The time-stamp counter (`rte_rdtsc`).
    pub fn rdtsc(&self) -> u64 {
        // SAFETY: reads the CPU's time-stamp counter.
        unsafe { ffi::rte_rdtsc() }
    }

    /// Frequency of the time-stamp counter in Hz, as EAL calibrated it.
    pub fn tsc_hz(&self) -> u64 {
        // SAFETY: reads EAL's calibrated value, valid after rte_eal_init.
        unsafe { ffi::rte_get_tsc_hz() }
    }
}

/// Serialises [`Eal::remote_launch`] calls.
static LAUNCH_LOCK: Mutex<()> = Mutex::new(());

/// Value [`Eal::wait_lcore`] returns when the launched closure panicked.
pub const LAUNCH_PANICKED: i32 = i32::MIN;

/// A closure launched on a worker lcore.
type Job = Box<dyn FnOnce() -> i32 + Send + 'static>;

/// Entry point EAL calls on the worker lcore for [`Eal::remote_launch`].
extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: arg is the Box<Job> leaked by remote_launch, passed to exactly one call.
    let job = unsafe { Box::from_raw(arg.cast::<Job>()) };
    // A panic must not unwind into C.
    std::panic::catch_unwind(AssertUnwindSafe(job)).unwrap_or(LAUNCH_PANICKED)
}

/// The lcore id of the calling thread; `None` for a thread EAL neither created nor
/// registered (and before EAL is initialised).
pub fn lcore_id() -> Option<u32> {
    // SAFETY: reads the calling thread's per-lcore variable, which starts at
    // LCORE_ID_ANY on every thread.
    let id = unsafe { ffi::rte_lcore_id() };
    (id != ffi::LCORE_ID_ANY).then_some(id)
}

/// Registration of a non-EAL thread ([`Eal::register_thread`]); unregisters on drop. Not
/// `Send`: it belongs to the thread it registered.
#[derive(Debug)]
pub struct ThreadRegistration<'eal> {
    lcore: u32,
    _eal: PhantomData<&'eal Eal>,
    _not_send: PhantomData<*const ()>,
}

impl ThreadRegistration<'_> {
    /// The lcore id the thread received.
    pub fn lcore(&self) -> u32 {
        self.lcore
    }
}

impl Drop for ThreadRegistration<'_> {
    fn drop(&mut self) {
        // SAFETY: runs on the registered thread (the guard is not Send), once.
        unsafe { ffi::rte_thread_unregister() }
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: called once (Eal is created once and dropped once); every DPDK object
        // of this layer borrows the Eal, so none is alive any more.
        let _ = unsafe { ffi::rte_eal_cleanup() };
    }
}

impl std::fmt::Debug for Eal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Eal")
            .field("args_consumed", &self.consumed)
            .finish_non_exhaustive()
    }
}
