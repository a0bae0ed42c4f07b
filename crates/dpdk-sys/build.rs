//! Generates bindings to the system DPDK (22.11) at build time.
//!
//! 1. Finds `libdpdk` with pkg-config and emits the `librte_*` link flags.
//! 2. Runs bindgen over `wrapper.h` with an allowlist (the EAL, ethdev, mbuf, mempool,
//!    lcore, ring, ether/ip headers, errno, cycles, launch, vdev hot-plug).
//! 3. `wrap_static_fns` turns DPDK's `static inline` fast-path functions into exported C
//!    wrappers (`<name>__extern`), compiled here with `cc` into `libdpdk_sys_wrappers.a`.
//! 4. Exports the PMD plugin directory as `DPDK_SYS_PMD_DIR` (read by `dpdk_sys::PMD_DIR`)
//!    and as `links` metadata (`DEP_RTE_EAL_PMD_DIR`) for dependent build scripts.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Minimum DPDK version the bindings and the safe layer are written against.
const MIN_VERSION: &str = "22.11";

/// Where Debian installs the PMD plugins when pkg-config does not say.
const PMD_GLOB_BASE: &str = "/usr/lib/x86_64-linux-gnu/dpdk";

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-env-changed=DPDK_PMD_DIR");

    let lib = match pkg_config::Config::new()
        .atleast_version(MIN_VERSION)
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(e) => {
            eprintln!(
                "error: DPDK >= {MIN_VERSION} not found by pkg-config ({e}).\n\
                 install libdpdk-dev: run scripts/setup.sh \
                 (Debian/Ubuntu: apt-get install libdpdk-dev dpdk clang libclang-dev)"
            );
            std::process::exit(1);
        }
    };

    // rte_vdev_init/uninit (hot-plug) live in the vdev bus driver, which the libdpdk
    // pkg-config file does not list; it sits beside the other librte_* libraries.
    println!("cargo:rustc-link-lib=dylib=rte_bus_vdev");

    let cflags = dpdk_cflags(&lib);
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let header = manifest.join("wrapper.h");
    let wrappers_stem = out.join("static_wrappers");

    let bindings = bindgen::Builder::default()
        .header(header.to_string_lossy())
        .clang_args(&cflags)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .allowlist_function(FUNCTIONS)
        .allowlist_type(TYPES)
        .allowlist_var(VARS)
        // Packed structs holding aligned ones: Rust rejects them (E0588).
        .opaque_type("rte_l2tpv2_combined_msg_hdr")
        .opaque_type("rte_gtp_psc_generic_hdr")
        // Markers are zero-sized arrays; keep them opaque-free but do not derive Debug
        // (unions and bitfields make derived Debug impossible for many structs).
        .derive_debug(false)
        .derive_default(true)
        .generate_comments(false)
        .layout_tests(true)
        .wrap_static_fns(true)
        .wrap_static_fns_path(&wrappers_stem)
        .generate();
    let bindings = match bindings {
        Ok(b) => b,
        Err(e) => {
            eprintln!(
                "error: bindgen failed on the DPDK headers: {e}\n\
                 (bindgen needs libclang: apt-get install clang libclang-dev, \
                 or run scripts/setup.sh)"
            );
            std::process::exit(1);
        }
    };
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("write bindings.rs into OUT_DIR");

    // Compile the generated C wrappers for the static inline functions.
    let c_file = wrappers_stem.with_extension("c");
    let mut build = cc::Build::new();
    build.file(&c_file).include(&manifest).opt_level(2);
    for flag in &cflags {
        build.flag(flag);
    }
    // Generated code calls deprecated/experimental inline functions: not our warnings.
    build.flag_if_supported("-Wno-deprecated-declarations");
    build.warnings(false);
    build.compile("dpdk_sys_wrappers");

    let pmd_dir = pmd_dir();
    println!("cargo:rustc-env=DPDK_SYS_PMD_DIR={}", pmd_dir.display());
    println!("cargo:rustc-env=DPDK_SYS_VERSION={}", lib.version);
    println!("cargo:pmd_dir={}", pmd_dir.display());
    println!("cargo:version={}", lib.version);
}

/// Functions the dataplane calls (exported ones and inline ones wrapped in C).
const FUNCTIONS: &str = "rte_eal_.*|rte_lcore_.*|rte_get_main_lcore|rte_get_next_lcore\
|rte_socket_id|rte_strerror|rte_exit|rte_eth_.*|rte_pktmbuf_.*|rte_mbuf_.*\
|rte_mempool_.*|rte_ring_.*|rte_ether_.*|rte_ipv4_.*|rte_ipv6_.*|rte_rdtsc.*|rte_get_tsc_.*\
|rte_get_timer_.*|rte_delay_.*|rte_dev_.*|rte_vdev_.*|rte_thread_register|rte_thread_unregister\
|fulcrum_rte_errno_.*|fulcrum_rss_ip_tcp_udp";

/// Types used directly (most come in as dependencies of the functions above).
const TYPES: &str = "rte_mbuf|rte_mempool|rte_ring|rte_eth_.*|rte_ether_.*|rte_ipv4_hdr\
|rte_ipv6_hdr|rte_lcore_.*|rte_proc_type_t|rte_rmt_call_main_t|lcore_function_t";

/// Constants (`#define`s bindgen can evaluate).
const VARS: &str = "RTE_MAX_ETHPORTS|RTE_MAX_LCORE|RTE_MBUF_DEFAULT_.*|RTE_PKTMBUF_HEADROOM\
|RTE_ETHER_.*|RTE_ETH_LINK_.*|RTE_ETH_SPEED_.*|SOCKET_ID_ANY|LCORE_ID_ANY|RTE_ETH_NAME_MAX_LEN\
|RTE_DEV_NAME_MAX_LEN|RTE_MEMPOOL_NAMESIZE|RTE_ETH_RX_OFFLOAD_.*|RTE_ETH_TX_OFFLOAD_.*\
|RTE_MBUF_F_.*|RTE_PTYPE_.*|E_RTE_.*|RTE_MIN_ERRNO|RTE_MAX_ERRNO";

/// The compiler flags `pkg-config --cflags libdpdk` reports (include dirs, `-include
/// rte_config.h`, `-march=...`), falling back to the include paths the crate found.
fn dpdk_cflags(lib: &pkg_config::Library) -> Vec<String> {
    let from_cmd = Command::new(env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".into()))
        .args(["--cflags", "libdpdk"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        });
    let mut flags = from_cmd.unwrap_or_else(|| {
        lib.include_paths
            .iter()
            .map(|p| format!("-I{}", p.display()))
            .collect()
    });
    // bindgen's clang needs SSSE3 for DPDK's x86 vector headers when no -march is given.
    if !flags.iter().any(|f| f.starts_with("-march")) {
        flags.push("-mssse3".into());
    }
    flags.push("-DALLOW_EXPERIMENTAL_API".into());
    flags
}

/// The directory holding the PMD plugins (`librte_net_*.so`, `librte_mempool_ring.so`).
fn pmd_dir() -> PathBuf {
    if let Ok(dir) = env::var("DPDK_PMD_DIR") {
        return PathBuf::from(dir);
    }
    let from_pc = Command::new(env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".into()))
        .args(["--variable=pmdsdir", "libdpdk"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty());
    if let Some(dir) = from_pc {
        return PathBuf::from(dir);
    }
    newest_pmds_dir(Path::new(PMD_GLOB_BASE)).unwrap_or_else(|| {
        println!(
            "cargo:warning=no DPDK PMD directory found under {PMD_GLOB_BASE}; \
             set DPDK_PMD_DIR"
        );
        PathBuf::from(PMD_GLOB_BASE)
    })
}

/// The lexically greatest `pmds-*` directory under `base`.
fn newest_pmds_dir(base: &Path) -> Option<PathBuf> {
    std::fs::read_dir(base)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("pmds-"))
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .max()
}
