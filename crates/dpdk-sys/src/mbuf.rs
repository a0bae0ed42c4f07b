//! Owned packet buffers and fixed-size bursts of them.

use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr::NonNull;

use crate::eal::Eal;
use crate::error::{Error, Result};
use crate::ffi;
use crate::mempool::Mempool;

/// Capacity of an [`MbufArray`]: the burst size of [`crate::rx_burst`] and
/// [`crate::tx_burst`].
pub const BURST: usize = 32;

/// An owned packet buffer (`*mut rte_mbuf`), freed with `rte_pktmbuf_free` on drop.
///
/// Same layout as the raw pointer (`repr(transparent)`), so bursts of `Mbuf`s are passed
/// to DPDK as `rte_mbuf **` without copying.
#[repr(transparent)]
pub struct Mbuf<'eal> {
    ptr: NonNull<ffi::rte_mbuf>,
    _eal: PhantomData<&'eal Eal>,
}

// SAFETY: an Mbuf owns its buffer exclusively; freeing it from another thread returns
// it to the pool through the thread-safe mempool operations.
unsafe impl Send for Mbuf<'_> {}
// SAFETY: `&Mbuf` only reads the buffer.
unsafe impl Sync for Mbuf<'_> {}

impl<'eal> Mbuf<'eal> {
    /// Allocates an empty mbuf (no data, default headroom) from `pool`.
    pub fn alloc(pool: &Mempool<'eal>) -> Result<Mbuf<'eal>> {
        // SAFETY: the pool is live for 'eal; allocation is thread-safe.
        let ptr = unsafe { ffi::rte_pktmbuf_alloc(pool.as_ptr()) };
        NonNull::new(ptr)
            .map(|ptr| Mbuf {
                ptr,
                _eal: PhantomData,
            })
            .ok_or(Error::NoMbuf)
    }

    /// Takes ownership of a raw mbuf; `None` for a null pointer.
    ///
    /// # Safety
    /// `ptr` must be a valid mbuf that nothing else owns or frees, allocated from a pool
    /// that lives at least as long as `'eal`.
    pub unsafe fn from_raw(ptr: *mut ffi::rte_mbuf) -> Option<Mbuf<'eal>> {
        NonNull::new(ptr).map(|ptr| Mbuf {
            ptr,
            _eal: PhantomData,
        })
    }

    /// Gives up ownership: the caller must free the mbuf (or hand it to DPDK).
    pub fn into_raw(self) -> *mut ffi::rte_mbuf {
        let ptr = self.ptr.as_ptr();
        std::mem::forget(self);
        ptr
    }

    /// The raw pointer, still owned by `self`.
    pub fn as_ptr(&self) -> *mut ffi::rte_mbuf {
        self.ptr.as_ptr()
    }

    fn head(&self) -> &ffi::rte_mbuf {
        // SAFETY: ptr is a valid mbuf owned by self; shared access through &self.
        unsafe { self.ptr.as_ref() }
    }

    /// The offload flags (`ol_flags`, `RTE_MBUF_F_*` bits) the driver set on receive.
    pub fn ol_flags(&self) -> u64 {
        self.head().ol_flags
    }

    /// Whether the driver verified the IPv4 header checksum and found it good
    /// (`RTE_MBUF_F_RX_IP_CKSUM_GOOD`; `UNKNOWN`, `BAD` and `NONE` give `false`).
    pub fn rx_ip_cksum_good(&self) -> bool {
        ip_cksum_good(self.ol_flags())
    }

    /// Total packet length over all segments (`pkt_len`).
    pub fn len(&self) -> usize {
        self.head().pkt_len as usize
    }

    /// Whether the packet holds no data.
    pub fn is_empty(&self) -> bool {
        self.head().pkt_len == 0
    }

    /// Number of segments (`nb_segs`).
    pub fn nb_segs(&self) -> u16 {
        self.head().nb_segs
    }

    /// Whether the whole packet is in the first segment, so [`Mbuf::data`] succeeds.
    pub fn is_contiguous(&self) -> bool {
        self.head().nb_segs == 1
    }

    /// The port the packet was received on (`port` field).
    pub fn port(&self) -> u16 {
        self.head().port
    }

    /// Free bytes in front of the data of the first segment.
    pub fn headroom(&self) -> usize {
        usize::from(self.head().data_off)
    }

    /// Free bytes after the data of the last segment.
    pub fn tailroom(&self) -> usize {
        // SAFETY: ptr is a valid mbuf chain owned by self; lastseg only walks it.
        let last = unsafe { ffi::rte_pktmbuf_lastseg(self.ptr.as_ptr()) };
        // SAFETY: lastseg returns a valid segment of the chain.
        unsafe { usize::from(ffi::rte_pktmbuf_tailroom(last)) }
    }

    /// The data of the first segment (all of it for a single-segment packet).
    pub fn first_segment(&self) -> &[u8] {
        let m = self.head();
        if m.buf_addr.is_null() || m.data_len == 0 {
            return &[];
        }
        // SAFETY: DPDK keeps buf_addr + data_off .. + data_len inside the segment's
        // buffer; the mbuf is owned by self and borrowed shared for the slice lifetime.
        unsafe {
            std::slice::from_raw_parts(
                m.buf_addr.cast::<u8>().add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }

    /// Mutable data of the first segment.
    pub fn first_segment_mut(&mut self) -> &mut [u8] {
        // SAFETY: ptr is a valid mbuf owned exclusively by self (&mut self).
        let m = unsafe { self.ptr.as_mut() };
        if m.buf_addr.is_null() || m.data_len == 0 {
            return &mut [];
        }
        // SAFETY: as in first_segment, with exclusive access through &mut self.
        unsafe {
            std::slice::from_raw_parts_mut(
                m.buf_addr.cast::<u8>().add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }

    /// The packet data; [`Error::MultiSegment`] if it spans several segments.
    pub fn data(&self) -> Result<&[u8]> {
        match self.head().nb_segs {
            1 => Ok(self.first_segment()),
            n => Err(Error::MultiSegment(n)),
        }
    }

    /// The packet data, mutable; [`Error::MultiSegment`] if it spans several segments.
    pub fn data_mut(&mut self) -> Result<&mut [u8]> {
        match self.head().nb_segs {
            1 => Ok(self.first_segment_mut()),
            n => Err(Error::MultiSegment(n)),
        }
    }

    /// Appends `len` bytes at the end of the last segment and returns them. They hold
    /// whatever the buffer held before (stale packet bytes or the pool's initial zeroes);
    /// callers overwrite them.
    pub fn append(&mut self, len: usize) -> Result<&mut [u8]> {
        let room = self.tailroom();
        let n = u16::try_from(len)
            .ok()
            .filter(|_| len <= room)
            .ok_or(Error::NoRoom {
                op: "append",
                len,
                available: room,
            })?;
        // SAFETY: ptr is a valid mbuf owned exclusively; n fits the tailroom.
        let p = unsafe { ffi::rte_pktmbuf_append(self.ptr.as_ptr(), n) };
        if p.is_null() {
            return Err(Error::NoRoom {
                op: "append",
                len,
                available: room,
            });
        }
        // SAFETY: DPDK returned the start of the n bytes just added to the last segment,
        // inside its buffer; exclusive through &mut self.
        Ok(unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), len) })
    }

    /// Prepends `len` bytes in front of the data (into the headroom) and returns them.
    pub fn prepend(&mut self, len: usize) -> Result<&mut [u8]> {
        let room = self.headroom();
        let n = u16::try_from(len)
            .ok()
            .filter(|_| len <= room)
            .ok_or(Error::NoRoom {
                op: "prepend",
                len,
                available: room,
            })?;
        // SAFETY: ptr is a valid mbuf owned exclusively; n fits the headroom.
        let p = unsafe { ffi::rte_pktmbuf_prepend(self.ptr.as_ptr(), n) };
        if p.is_null() {
            return Err(Error::NoRoom {
                op: "prepend",
                len,
                available: room,
            });
        }
        // SAFETY: DPDK returned the new data start, n bytes inside the buffer.
        Ok(unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), len) })
    }

    /// Removes `len` bytes from the front of the first segment.
    pub fn adj(&mut self, len: usize) -> Result<()> {
        let have = usize::from(self.head().data_len);
        let n = u16::try_from(len)
            .ok()
            .filter(|_| len <= have)
            .ok_or(Error::NoRoom {
                op: "adj",
                len,
                available: have,
            })?;
        // SAFETY: ptr is a valid mbuf owned exclusively; n <= data_len.
        let p = unsafe { ffi::rte_pktmbuf_adj(self.ptr.as_ptr(), n) };
        if p.is_null() {
            return Err(Error::NoRoom {
                op: "adj",
                len,
                available: have,
            });
        }
        Ok(())
    }

    /// Removes `len` bytes from the end of the last segment.
    pub fn trim(&mut self, len: usize) -> Result<()> {
        // SAFETY: ptr is a valid mbuf chain owned by self; lastseg only walks it.
        let last = unsafe { ffi::rte_pktmbuf_lastseg(self.ptr.as_ptr()) };
        // SAFETY: lastseg returns a valid segment of the chain.
        let have = usize::from(unsafe { (*last).data_len });
        let n = u16::try_from(len)
            .ok()
            .filter(|_| len <= have)
            .ok_or(Error::NoRoom {
                op: "trim",
                len,
                available: have,
            })?;
        // SAFETY: ptr is a valid mbuf owned exclusively; n <= last segment's data_len.
        let ret = unsafe { ffi::rte_pktmbuf_trim(self.ptr.as_ptr(), n) };
        if ret != 0 {
            return Err(Error::NoRoom {
                op: "trim",
                len,
                available: have,
            });
        }
        Ok(())
    }
}

impl Drop for Mbuf<'_> {
    fn drop(&mut self) {
        // SAFETY: self owns the mbuf (chain) and it is not used again.
        unsafe { ffi::rte_pktmbuf_free(self.ptr.as_ptr()) }
    }
}

impl std::fmt::Debug for Mbuf<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mbuf")
            .field("ptr", &self.ptr)
            .field("len", &self.len())
            .field("nb_segs", &self.nb_segs())
            .finish()
    }
}

/// A burst of up to [`BURST`] owned mbufs in a fixed array: receiving and transmitting
/// through it allocates nothing per packet. Mbufs still inside are freed on drop.
pub struct MbufArray<'eal> {
    bufs: [MaybeUninit<Mbuf<'eal>>; BURST],
    len: usize,
}

impl<'eal> Default for MbufArray<'eal> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'eal> MbufArray<'eal> {
    /// An empty burst.
    pub const fn new() -> Self {
        MbufArray {
            bufs: [const { MaybeUninit::uninit() }; BURST],
            len: 0,
        }
    }

    /// Number of mbufs held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no mbuf is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether [`BURST`] mbufs are held.
    pub fn is_full(&self) -> bool {
        self.len == BURST
    }

    /// Free slots.
    pub fn spare(&self) -> usize {
        BURST - self.len
    }

    /// Adds an mbuf at the end; gives it back if the burst is full.
    pub fn push(&mut self, m: Mbuf<'eal>) -> std::result::Result<(), Mbuf<'eal>> {
        match self.bufs.get_mut(self.len) {
            Some(slot) => {
                slot.write(m);
                self.len += 1;
                Ok(())
            }
            None => Err(m),
        }
    }

    /// Removes the last mbuf.
    pub fn pop(&mut self) -> Option<Mbuf<'eal>> {
        let i = self.len.checked_sub(1)?;
        self.len = i;
        // SAFETY: slot i < old len was initialised; len now excludes it, so it is read
        // (moved out) exactly once.
        Some(unsafe { self.bufs.get(i)?.assume_init_read() })
    }

    /// The held mbufs.
    pub fn as_slice(&self) -> &[Mbuf<'eal>] {
        // SAFETY: the first len slots are initialised; MaybeUninit<T> has T's layout.
        unsafe { std::slice::from_raw_parts(self.bufs.as_ptr().cast::<Mbuf<'eal>>(), self.len) }
    }

    /// The held mbufs, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf<'eal>] {
        // SAFETY: as in as_slice, with exclusive access.
        unsafe {
            std::slice::from_raw_parts_mut(self.bufs.as_mut_ptr().cast::<Mbuf<'eal>>(), self.len)
        }
    }

    /// Iterates over the held mbufs.
    pub fn iter(&self) -> std::slice::Iter<'_, Mbuf<'eal>> {
        self.as_slice().iter()
    }

    /// Removes all mbufs, front first; those not consumed are freed when the iterator
    /// is dropped.
    pub fn drain(&mut self) -> Drain<'_, 'eal> {
        let end = self.len;
        // Leak-safe: if the Drain is forgotten, the mbufs leak instead of being freed
        // twice.
        self.len = 0;
        Drain {
            array: self,
            next: 0,
            end,
        }
    }

    /// Frees all held mbufs.
    pub fn clear(&mut self) {
        let n = self.len;
        if n == 0 {
            return;
        }
        self.len = 0;
        // SAFETY: the first n slots hold owned mbufs (repr(transparent) over the raw
        // pointer); len is already 0 so they are not freed again; n <= BURST fits u32.
        unsafe {
            ffi::rte_pktmbuf_free_bulk(
                self.bufs.as_mut_ptr().cast::<*mut ffi::rte_mbuf>(),
                n as u32,
            )
        }
    }

    /// Pointer to the first free slot and the number of free slots, for a receive call
    /// that writes owned mbuf pointers there; commit them with [`Self::commit_raw`].
    pub(crate) fn spare_raw(&mut self) -> (*mut *mut ffi::rte_mbuf, u16) {
        let spare = self.spare();
        // SAFETY: len <= BURST, so the offset stays within (or one past) the array.
        let ptr = unsafe { self.bufs.as_mut_ptr().add(self.len) };
        (ptr.cast(), spare as u16)
    }

    /// Marks `n` more slots as holding owned mbufs.
    ///
    /// # Safety
    /// The `n` slots after the current length must hold valid owned mbuf pointers, and
    /// `n <= spare()`.
    pub(crate) unsafe fn commit_raw(&mut self, n: usize) {
        debug_assert!(n <= self.spare());
        self.len += n;
    }

    /// Pointer to the held mbufs and their count, for a transmit call; report how many
    /// it took with [`Self::consume_front_raw`].
    pub(crate) fn held_raw(&mut self) -> (*mut *mut ffi::rte_mbuf, u16) {
        (self.bufs.as_mut_ptr().cast(), self.len as u16)
    }

    /// Forgets the first `n` mbufs (their ownership went to DPDK) and moves the rest to
    /// the front.
    ///
    /// # Safety
    /// DPDK must have taken ownership of the first `n` held mbufs, `n <= len()`.
    pub(crate) unsafe fn consume_front_raw(&mut self, n: usize) {
        let n = n.min(self.len);
        let rest = self.len - n;
        // SAFETY: slots n..len are initialised; copying them to 0..rest (possibly
        // overlapping) moves them; slots 0..n are dropped without running Drop, as DPDK
        // owns those mbufs now.
        unsafe {
            std::ptr::copy(self.bufs.as_ptr().add(n), self.bufs.as_mut_ptr(), rest);
        }
        self.len = rest;
    }
}

impl Drop for MbufArray<'_> {
    fn drop(&mut self) {
        self.clear();
    }
}

impl std::fmt::Debug for MbufArray<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// Iterator returned by [`MbufArray::drain`].
pub struct Drain<'a, 'eal> {
    array: &'a mut MbufArray<'eal>,
    next: usize,
    end: usize,
}

impl<'eal> Iterator for Drain<'_, 'eal> {
    type Item = Mbuf<'eal>;

    fn next(&mut self) -> Option<Mbuf<'eal>> {
        if self.next >= self.end {
            return None;
        }
        let slot = self.array.bufs.get(self.next)?;
        self.next += 1;
        // SAFETY: slots next..end were initialised when drain began and each is read
        // exactly once (next advances past it).
        Some(unsafe { slot.assume_init_read() })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end - self.next;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Drain<'_, '_> {}

impl Drop for Drain<'_, '_> {
    fn drop(&mut self) {
        for m in self.by_ref() {
            drop(m);
        }
    }
}

/// `RTE_MBUF_F_RX_IP_CKSUM_GOOD` under `RTE_MBUF_F_RX_IP_CKSUM_MASK` in `ol_flags`.
fn ip_cksum_good(ol_flags: u64) -> bool {
    ol_flags & u64::from(ffi::RTE_MBUF_F_RX_IP_CKSUM_MASK)
        == u64::from(ffi::RTE_MBUF_F_RX_IP_CKSUM_GOOD)
}

#[cfg(test)]
mod ol_flags_tests {
    use super::*;

    #[test]
    fn only_the_good_verdict_counts() {
        let good = u64::from(ffi::RTE_MBUF_F_RX_IP_CKSUM_GOOD);
        let bad = u64::from(ffi::RTE_MBUF_F_RX_IP_CKSUM_BAD);
        assert!(ip_cksum_good(good));
        // Other flags beside the verdict do not matter.
        assert!(ip_cksum_good(good | 1 << 40));
        assert!(!ip_cksum_good(0), "unknown");
        assert!(!ip_cksum_good(bad));
        // NONE is both bits: the checksum is not valid in the packet.
        assert!(!ip_cksum_good(good | bad));
    }
}
