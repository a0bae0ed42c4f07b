//! Packet-buffer pools.

use std::ffi::CString;
use std::marker::PhantomData;
use std::ptr::NonNull;

use crate::eal::Eal;
use crate::error::{from_errno, Error, Result};
use crate::ffi;

/// A pool of packet buffers (`rte_mempool` created by `rte_pktmbuf_pool_create`).
///
/// Dropping the handle does not free the pool: mbufs allocated from it may still be in
/// flight (in a port's rings, in an [`crate::MbufArray`]); its memory is released by
/// `rte_eal_cleanup` when the [`Eal`] is dropped. [`Mempool::free`] releases it earlier
/// for a caller that can prove no mbuf of the pool is alive.
pub struct Mempool<'eal> {
    ptr: NonNull<ffi::rte_mempool>,
    _eal: PhantomData<&'eal Eal>,
}

// SAFETY: the default pktmbuf pool uses the multi-producer/multi-consumer ring handler,
// so alloc/free/count may run on any thread concurrently.
unsafe impl Send for Mempool<'_> {}
// SAFETY: as above; `&Mempool` only allows thread-safe operations.
unsafe impl Sync for Mempool<'_> {}

impl<'eal> Mempool<'eal> {
    /// Creates a pool of `n` mbufs named `name` with a per-lcore cache of `cache` mbufs,
    /// `data_room` bytes of buffer each (headroom included, e.g.
    /// `RTE_MBUF_DEFAULT_BUF_SIZE`), on NUMA socket `socket_id` (`SOCKET_ID_ANY` = -1).
    ///
    /// Errors carry `rte_errno` (`EEXIST` for a name in use, `ENOMEM`, `EINVAL`, ...).
    pub fn pktmbuf(
        _eal: &'eal Eal,
        name: &str,
        n: u32,
        cache: u32,
        data_room: u16,
        socket_id: i32,
    ) -> Result<Mempool<'eal>> {
        let cname = CString::new(name).map_err(|_| Error::NulByte(name.to_owned()))?;
        // SAFETY: EAL is initialised (an &Eal exists); cname is a valid C string that
        // DPDK copies; other arguments are plain values DPDK validates.
        let ptr = unsafe {
            ffi::rte_pktmbuf_pool_create(cname.as_ptr(), n, cache, 0, data_room, socket_id)
        };
        NonNull::new(ptr)
            .map(|ptr| Mempool {
                ptr,
                _eal: PhantomData,
            })
            .ok_or_else(|| from_errno("rte_pktmbuf_pool_create"))
    }

    /// Number of free mbufs in the pool (per-lcore caches included).
    pub fn avail_count(&self) -> u32 {
        // SAFETY: ptr is a live pool; counting is thread-safe.
        unsafe { ffi::rte_mempool_avail_count(self.ptr.as_ptr()) }
    }

    /// Number of mbufs taken from the pool.
    pub fn in_use_count(&self) -> u32 {
        // SAFETY: ptr is a live pool; counting is thread-safe.
        unsafe { ffi::rte_mempool_in_use_count(self.ptr.as_ptr()) }
    }

    /// The raw pool pointer, for FFI calls this layer does not wrap.
    pub fn as_ptr(&self) -> *mut ffi::rte_mempool {
        self.ptr.as_ptr()
    }

    /// Frees the pool now instead of at EAL cleanup.
    ///
    /// # Safety
    /// No mbuf of this pool may be alive (owned by an [`crate::Mbuf`], held in a
    /// port's queues, or referenced through a raw pointer), and no port configured with
    /// it may be started or receive again.
    pub unsafe fn free(self) {
        // SAFETY: the caller guarantees nothing references the pool any more.
        unsafe { ffi::rte_mempool_free(self.ptr.as_ptr()) }
    }
}

impl std::fmt::Debug for Mempool<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mempool")
            .field("ptr", &self.ptr)
            .field("avail", &self.avail_count())
            .finish()
    }
}
