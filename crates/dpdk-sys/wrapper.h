/*
 * Input header for bindgen (see build.rs). It pulls in the DPDK 22.11 headers the
 * dataplane needs and adds two helpers for `rte_errno`, which is a macro over a
 * thread-local variable and so cannot be reached from Rust directly. The helpers are
 * `static inline`, so bindgen's `wrap_static_fns` emits exported C wrappers for them
 * exactly as it does for DPDK's own inline fast-path functions.
 */
#include <rte_config.h>
#include <rte_common.h>
#include <rte_errno.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_ring.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_ethdev.h>
#include <rte_dev.h>
#include <rte_bus_vdev.h>

/* Read the calling thread's rte_errno. */
static inline int fulcrum_rte_errno_get(void) { return rte_errno; }

/* Set the calling thread's rte_errno. */
static inline void fulcrum_rte_errno_set(int value) { rte_errno = value; }

/* The RSS hash functions the safe layer asks for (IP, TCP and UDP flows); the
 * RTE_ETH_RSS_* macros are built from RTE_BIT64() calls bindgen cannot evaluate. */
static inline uint64_t fulcrum_rss_ip_tcp_udp(void)
{
	return RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;
}
