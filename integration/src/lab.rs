//! Labs, nodes, links, switches, tracked processes and cleanup.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use serde_json::Value;

use crate::error::{LabError, Result};
use crate::route::{normalize_prefix, parse_routes_text, Route};
use crate::wait::wait_for;

/// Every lab namespace, run directory and detached lab starts with this.
pub const LAB_PREFIX: &str = "flab-";
/// Parent of every lab's run directory.
pub const RUN_ROOT: &str = "/tmp/flab";
/// The file every FRR ospfd writes on exit, whatever its instance.
pub const OSPFD_GR_JSON: &str = "/var/run/frr/ospfd-gr.json";

/// Where FRR daemons keep per-process crash-log buffers.
const FRR_TMP_DIR: &str = "/var/tmp/frr";

/// How long a SIGTERMed process gets before SIGKILL.
const TERM_GRACE: Duration = Duration::from_millis(1500);

static SEQ: AtomicU32 = AtomicU32::new(0);
static INIT: Once = Once::new();

fn registry() -> &'static Mutex<HashMap<String, Arc<LabInner>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Arc<LabInner>>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock must not prevent cleanup.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs a host command and returns its output (whatever its exit status).
pub fn run(args: &[&str]) -> Result<Output> {
    let (prog, rest) = args
        .split_first()
        .ok_or_else(|| LabError::Config("empty command".into()))?;
    Command::new(prog)
        .args(rest)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| LabError::Spawn {
            cmd: args.join(" "),
            source,
        })
}

/// Runs a host command, fails unless it exits 0, and returns its stdout.
pub fn run_ok(args: &[&str]) -> Result<String> {
    let out = run(args)?;
    check_output(args, out)
}

fn check_output(args: &[&str], out: Output) -> Result<String> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if stderr.is_empty() {
            stderr = String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        Err(LabError::Command {
            cmd: args.join(" "),
            status: out.status.to_string(),
            stderr,
        })
    }
}

/// Fails with [`LabError::NotRoot`] unless the effective uid is 0.
pub fn require_root() -> Result<()> {
    let euid = nix::unistd::geteuid().as_raw();
    if euid == 0 {
        Ok(())
    } else {
        Err(LabError::NotRoot(euid))
    }
}

fn valid_name(name: &str, max: usize) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.as_bytes().first().is_some_and(u8::is_ascii_lowercase);
    if ok {
        Ok(())
    } else {
        Err(LabError::Config(format!(
            "name {name:?} must be 1..={max} chars of [a-z0-9-] starting with a letter"
        )))
    }
}

/// True when `pid` names a live process (a zombie counts as dead).
pub fn pid_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the ")" that closes the command name.
            let state = stat
                .rfind(')')
                .and_then(|i| stat.get(i + 1..))
                .and_then(|s| s.split_whitespace().next())
                .unwrap_or("");
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

/// Pids whose command line contains `needle`.
pub fn pids_with_cmdline(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .map(|raw| {
                    let text: String = String::from_utf8_lossy(&raw).replace('\0', " ");
                    text.contains(needle)
                })
                .unwrap_or(false)
        })
        .collect()
}

/// Pids running inside network namespace `ns` (`ip netns pids`).
pub fn netns_pids(ns: &str) -> Vec<u32> {
    run(&["ip", "netns", "pids", ns])
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Names of all network namespaces (`ip netns list`).
pub fn netns_list() -> Vec<String> {
    run(&["ip", "netns", "list"])
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.split_whitespace().next().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn signal_pid(pid: u32, sig: Signal) {
    if let Ok(raw) = i32::try_from(pid) {
        if raw > 1 {
            let _ = kill(Pid::from_raw(raw), sig);
        }
    }
}

/// Reaps `pid` if it is our child (a daemon reparented to us as subreaper); harmless if not.
fn reap(pid: u32) {
    if let Ok(raw) = i32::try_from(pid) {
        if raw > 1 {
            let _ = waitpid(Pid::from_raw(raw), Some(WaitPidFlag::WNOHANG));
        }
    }
}

/// SIGTERM, wait up to the grace period, SIGKILL what is left, reap.
fn terminate(pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    for &pid in pids {
        signal_pid(pid, Signal::SIGTERM);
    }
    let start = Instant::now();
    while start.elapsed() < TERM_GRACE {
        for &pid in pids {
            reap(pid);
        }
        if pids.iter().all(|&p| !pid_alive(p)) {
            return;
        }
        thread::sleep(Duration::from_millis(10));
    }
    for &pid in pids {
        if pid_alive(pid) {
            signal_pid(pid, Signal::SIGKILL);
        }
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) && pids.iter().any(|&p| pid_alive(p)) {
        for &pid in pids {
            reap(pid);
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Removes every trace of the lab whose prefix is `prefix`: processes in its namespaces or
/// mentioning its run directory, the namespaces, and the run directory.
///
/// This is what `fulcrum-lab down` and the crash sweep use; a [`Lab`] does it on drop.
pub fn remove_lab(prefix: &str) {
    let ns_prefix = format!("{prefix}-");
    let namespaces: Vec<String> = netns_list()
        .into_iter()
        .filter(|n| n.starts_with(&ns_prefix))
        .collect();
    let run_dir = format!("{RUN_ROOT}/{prefix}/");
    let mut pids: Vec<u32> = namespaces.iter().flat_map(|n| netns_pids(n)).collect();
    pids.extend(pids_with_cmdline(&run_dir));
    pids.sort_unstable();
    pids.dedup();
    terminate(&pids);
    for ns in &namespaces {
        // Anything started between the listing and now.
        let late = netns_pids(ns);
        terminate(&late);
        let _ = run(&["ip", "netns", "del", ns]);
    }
    let _ = fs::remove_dir_all(Path::new(RUN_ROOT).join(prefix));
    remove_frr_buffers(&[]);
}

/// Extracts the owning pid from a crash-sweepable lab prefix `flab-<pid>-<seq>[-...]`.
pub fn owner_pid(name: &str) -> Option<(u32, String)> {
    let rest = name.strip_prefix(LAB_PREFIX)?;
    let mut parts = rest.splitn(3, '-');
    let pid: u32 = parts.next()?.parse().ok()?;
    let seq = parts.next()?;
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((pid, format!("{LAB_PREFIX}{pid}-{seq}")))
}

/// Removes leftovers of crashed runs: labs whose owning pid is dead. Detached labs (named,
/// not numbered) and labs of live processes are never touched.
pub fn sweep_stale() {
    let mut stale: Vec<String> = Vec::new();
    let mut names = netns_list();
    if let Ok(dir) = fs::read_dir(RUN_ROOT) {
        names.extend(
            dir.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str().map(str::to_string)),
        );
    }
    for name in names {
        if let Some((pid, prefix)) = owner_pid(&name) {
            if !pid_alive(pid) && !stale.contains(&prefix) {
                stale.push(prefix);
            }
        }
    }
    for prefix in stale {
        tracing::info!(%prefix, "sweeping leftovers of a dead lab");
        remove_lab(&prefix);
    }
}

fn init_once() {
    INIT.call_once(|| {
        // Daemons double-fork; make them our children so they are reaped (PID 1 of a
        // container may not reap orphans).
        let _ = nix::sys::prctl::set_child_subreaper(true);
        let _ = fs::create_dir_all(RUN_ROOT);
        sweep_stale();
        match signal_hook::iterator::Signals::new([libc::SIGINT, libc::SIGTERM]) {
            Ok(mut signals) => {
                let spawned = thread::Builder::new()
                    .name("flab-signals".into())
                    .spawn(move || {
                        if let Some(sig) = signals.forever().next() {
                            tracing::warn!(sig, "signal received: tearing down every lab");
                            teardown_all();
                            std::process::exit(128 + sig);
                        }
                    });
                if let Err(e) = spawned {
                    tracing::error!(%e, "cannot start the lab signal thread");
                }
            }
            Err(e) => tracing::error!(%e, "cannot install lab signal handlers"),
        }
    });
}

/// Tears down every live, non-kept lab of this process (used by the signal handler).
pub fn teardown_all() {
    let labs: Vec<Arc<LabInner>> = lock(registry()).values().cloned().collect();
    for lab in labs {
        lab.teardown();
    }
}

pub(crate) struct LabInner {
    prefix: String,
    run_dir: PathBuf,
    state: Mutex<LabState>,
}

#[derive(Default)]
pub(crate) struct LabState {
    namespaces: Vec<String>,
    children: HashMap<u32, Child>,
    daemons: Vec<(u32, String)>,
    used_frr: bool,
    torn_down: bool,
    keep: bool,
}

impl LabInner {
    pub(crate) fn state(&self) -> MutexGuard<'_, LabState> {
        lock(&self.state)
    }

    fn teardown(&self) {
        let mut st = self.state();
        if st.torn_down || st.keep {
            return;
        }
        st.torn_down = true;
        let mut pids: Vec<u32> = st.daemons.iter().map(|(p, _)| *p).collect();
        pids.extend(st.children.keys().copied());
        terminate(&pids);
        for child in st.children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        st.children.clear();
        remove_lab(&self.prefix);
        if st.used_frr {
            let _ = fs::remove_file(OSPFD_GR_JSON);
            remove_frr_buffers(&st.daemons);
        }
        drop(st);
        lock(registry()).remove(&self.prefix);
    }
}

impl LabState {
    pub(crate) fn check_live(&self, prefix: &str) -> Result<()> {
        if self.torn_down {
            Err(LabError::TornDown(prefix.to_string()))
        } else {
            Ok(())
        }
    }

    pub(crate) fn add_daemon(&mut self, pid: u32, what: String) {
        self.daemons.push((pid, what));
    }

    pub(crate) fn mark_frr(&mut self) {
        self.used_frr = true;
    }
}

/// FRR keeps `/var/tmp/frr/<daemon>.<launcher pid>/logbuf.<daemon pid>` while running and
/// removes it on a clean exit only; a daemon killed by a test leaves it behind.
fn remove_frr_buffers(daemons: &[(u32, String)]) {
    let Ok(dir) = fs::read_dir(FRR_TMP_DIR) else {
        return;
    };
    let dirs: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
    // Empty directories of dead FRR processes are garbage whoever made them (a daemon
    // killed while shutting down removes its buffer but not the directory).
    for d in &dirs {
        let dead_owner = d
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split_once('.'))
            .filter(|(daemon, _)| matches!(*daemon, "zebra" | "ospfd" | "bfdd"))
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
            .is_some_and(|pid| !pid_alive(pid));
        if dead_owner {
            // remove_dir fails on a non-empty directory, which is what we want.
            let _ = fs::remove_dir(d);
        }
    }
    for (pid, what) in daemons {
        let daemon = what.split('@').next().unwrap_or_default();
        if !matches!(daemon, "zebra" | "ospfd" | "bfdd") {
            continue;
        }
        let stem = format!("{daemon}.");
        for d in &dirs {
            let ours = d
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&stem))
                && d.join(format!("logbuf.{pid}")).exists();
            if ours {
                let _ = fs::remove_dir_all(d);
            }
        }
    }
}

/// A lab: a set of network namespaces, links and daemons with a unique prefix and a run
/// directory `/tmp/flab/<prefix>/`. Everything is removed when it is dropped (also during
/// a panic) or when the process gets SIGINT/SIGTERM, unless [`Lab::keep`] was called.
pub struct Lab {
    inner: Arc<LabInner>,
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab")
            .field("prefix", &self.inner.prefix)
            .finish()
    }
}

impl Lab {
    /// A new lab with prefix `flab-<pid>-<seq>`. Also sweeps leftovers of crashed runs
    /// (once per process) and installs the signal handler.
    pub fn new(test_name: &str) -> Result<Lab> {
        require_root()?;
        init_once();
        let seq = SEQ.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("{LAB_PREFIX}{}-{seq}", std::process::id());
        let lab = Lab::create(prefix, false)?;
        let note = lab.inner.run_dir.join("lab.txt");
        fs::write(&note, format!("{test_name}\n"))
            .map_err(|e| LabError::io(format!("write {}", note.display()), e))?;
        tracing::info!(prefix = %lab.inner.prefix, test_name, "lab created");
        Ok(lab)
    }

    /// A detached lab named `flab-<name>` for the lab command: not swept as a crash
    /// leftover. It is torn down on drop until [`Lab::keep`] is called, so a failed `up`
    /// leaves nothing behind.
    pub fn detached(name: &str) -> Result<Lab> {
        require_root()?;
        valid_name(name, 8)?;
        init_once();
        let prefix = format!("{LAB_PREFIX}{name}");
        if Lab::detached_exists(name) {
            return Err(LabError::Config(format!(
                "lab {prefix} is already up; run `down {name}` first"
            )));
        }
        Lab::create(prefix, false)
    }

    /// True when namespaces or the run directory of detached lab `name` exist.
    pub fn detached_exists(name: &str) -> bool {
        let prefix = format!("{LAB_PREFIX}{name}");
        let ns_prefix = format!("{prefix}-");
        Path::new(RUN_ROOT).join(&prefix).exists()
            || netns_list().iter().any(|n| n.starts_with(&ns_prefix))
    }

    /// Opens an existing detached lab to inspect it; dropping the handle removes nothing.
    pub fn reopen(name: &str) -> Result<Lab> {
        require_root()?;
        valid_name(name, 8)?;
        let prefix = format!("{LAB_PREFIX}{name}");
        if !Lab::detached_exists(name) {
            return Err(LabError::Config(format!("lab {prefix} is not up")));
        }
        let inner = Arc::new(LabInner {
            run_dir: Path::new(RUN_ROOT).join(&prefix),
            prefix,
            state: Mutex::new(LabState {
                keep: true,
                ..LabState::default()
            }),
        });
        Ok(Lab { inner })
    }

    /// Removes detached lab `name` (namespaces, processes, run directory).
    pub fn destroy_detached(name: &str) -> Result<()> {
        require_root()?;
        valid_name(name, 8)?;
        remove_lab(&format!("{LAB_PREFIX}{name}"));
        let _ = fs::remove_file(OSPFD_GR_JSON);
        Ok(())
    }

    fn create(prefix: String, keep: bool) -> Result<Lab> {
        let run_dir = Path::new(RUN_ROOT).join(&prefix);
        fs::create_dir_all(&run_dir)
            .map_err(|e| LabError::io(format!("create {}", run_dir.display()), e))?;
        let inner = Arc::new(LabInner {
            prefix: prefix.clone(),
            run_dir,
            state: Mutex::new(LabState {
                keep,
                ..LabState::default()
            }),
        });
        lock(registry()).insert(prefix, Arc::clone(&inner));
        Ok(Lab { inner })
    }

    /// The unique prefix, e.g. `flab-1234-0`.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The run directory `/tmp/flab/<prefix>`.
    pub fn run_dir(&self) -> &Path {
        &self.inner.run_dir
    }

    /// Pids of the daemons and processes this lab started and still tracks.
    pub fn tracked_pids(&self) -> Vec<u32> {
        let st = self.inner.state();
        let mut pids: Vec<u32> = st.daemons.iter().map(|(p, _)| *p).collect();
        pids.extend(st.children.keys().copied());
        pids
    }

    /// Leaves everything running when the lab is dropped (detached mode for `fulcrum-lab
    /// up`); remove it later with [`Lab::destroy_detached`] or [`remove_lab`].
    pub fn keep(&self) {
        self.inner.state().keep = true;
        lock(registry()).remove(&self.inner.prefix);
    }

    /// Tears the lab down now (what drop does).
    pub fn teardown(&self) {
        self.inner.teardown();
    }

    /// A new node: a namespace `<prefix>-<name>` with `lo` up.
    pub fn node(&self, name: &str) -> Result<Node> {
        valid_name(name, 12)?;
        let ns = format!("{}-{name}", self.inner.prefix);
        {
            let mut st = self.inner.state();
            st.check_live(&self.inner.prefix)?;
            if st.namespaces.contains(&ns) {
                return Err(LabError::Config(format!("node {name} exists already")));
            }
            // Recorded before creation so a half-made namespace is still removed.
            st.namespaces.push(ns.clone());
            run_ok(&["ip", "netns", "add", &ns])?;
        }
        let node = self.existing_node(name);
        node.ip(&["link", "set", "lo", "up"])?;
        fs::create_dir_all(node.dir())
            .map_err(|e| LabError::io(format!("create {}", node.dir().display()), e))?;
        Ok(node)
    }

    /// A node with IPv4 forwarding on and per-flow (L4 hash) ECMP.
    pub fn router(&self, name: &str) -> Result<Node> {
        let node = self.node(name)?;
        node.sysctl("net.ipv4.ip_forward", "1")?;
        node.sysctl("net.ipv4.fib_multipath_hash_policy", "1")?;
        Ok(node)
    }

    /// A handle on node `name` of this lab without creating anything (for reopened labs).
    pub fn existing_node(&self, name: &str) -> Node {
        Node {
            lab: Arc::clone(&self.inner),
            name: name.to_string(),
            ns: format!("{}-{name}", self.inner.prefix),
        }
    }

    /// A veth pair `a_if` in `a` ↔ `b_if` in `b`, both up.
    pub fn link(&self, a: &Node, a_if: &str, b: &Node, b_if: &str) -> Result<()> {
        self.inner.state().check_live(&self.inner.prefix)?;
        run_ok(&[
            "ip", "link", "add", a_if, "netns", &a.ns, "type", "veth", "peer", "name", b_if,
            "netns", &b.ns,
        ])?;
        a.ip(&["link", "set", a_if, "up"])?;
        b.ip(&["link", "set", b_if, "up"])?;
        Ok(())
    }

    /// A shared L2 segment: a namespace holding bridge `br0`.
    pub fn switch(&self, name: &str) -> Result<Switch> {
        let node = self.node(name)?;
        node.ip(&["link", "add", "br0", "type", "bridge"])?;
        node.ip(&["link", "set", "br0", "up"])?;
        Ok(Switch {
            node,
            ports: Arc::new(AtomicU32::new(0)),
        })
    }

    /// Connects `node`'s new interface `ifname` to `switch` (a veth whose switch end is a
    /// bridge port).
    pub fn attach(&self, node: &Node, ifname: &str, switch: &Switch) -> Result<()> {
        let port = format!("p{}", switch.ports.fetch_add(1, Ordering::SeqCst));
        self.link(node, ifname, &switch.node, &port)?;
        switch.node.ip(&["link", "set", &port, "master", "br0"])?;
        Ok(())
    }
}

/// Prints the last lines of every `*.log` under `dir` (two levels deep) to stderr.
fn dump_logs(dir: &Path, depth: u8) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() && depth > 0 {
            dump_logs(&path, depth - 1);
        } else if path.extension().is_some_and(|e| e == "log") {
            let text = fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines
                .get(lines.len().saturating_sub(15)..)
                .unwrap_or_default();
            eprintln!("--- {} (last {} lines)", path.display(), tail.len());
            for l in tail {
                eprintln!("{l}");
            }
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // A failing test loses its run directory with the lab: show the daemons' logs first
        // (the test harness prints them with the failure).
        if thread::panicking() && !self.inner.state().keep {
            eprintln!(
                "lab {} torn down after a panic; daemon logs:",
                self.inner.prefix
            );
            dump_logs(&self.inner.run_dir, 3);
        }
        self.inner.teardown();
    }
}

/// A bridge in its own namespace: a shared L2 segment.
#[derive(Clone, Debug)]
pub struct Switch {
    node: Node,
    ports: Arc<AtomicU32>,
}

impl Switch {
    /// The namespace holding the bridge (to run tcpdump on `br0`, for instance).
    pub fn node(&self) -> &Node {
        &self.node
    }
}

/// A network namespace of a lab.
#[derive(Clone)]
pub struct Node {
    pub(crate) lab: Arc<LabInner>,
    name: String,
    ns: String,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("ns", &self.ns).finish()
    }
}

impl Node {
    /// The node's short name (`r1`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace name (`flab-1234-0-r1`).
    pub fn netns(&self) -> &str {
        &self.ns
    }

    /// The node's run directory `/tmp/flab/<prefix>/<name>`.
    pub fn dir(&self) -> PathBuf {
        self.lab.run_dir.join(&self.name)
    }

    /// Runs `args` inside the namespace (`ip netns exec NS args...`), whatever its status.
    pub fn exec(&self, args: &[&str]) -> Result<Output> {
        run(&self.exec_argv(args))
    }

    /// Runs `args` inside the namespace; fails unless it exits 0; returns stdout.
    pub fn exec_ok(&self, args: &[&str]) -> Result<String> {
        run_ok(&self.exec_argv(args))
    }

    fn exec_argv<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut argv = vec!["ip", "netns", "exec", self.ns.as_str()];
        argv.extend_from_slice(args);
        argv
    }

    /// Runs `ip -n NS args...` and returns stdout.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut argv = vec!["ip", "-n", self.ns.as_str()];
        argv.extend_from_slice(args);
        run_ok(&argv)
    }

    /// Adds an address (`10.0.0.1/30`) to an interface.
    pub fn addr(&self, ifname: &str, cidr: &str) -> Result<()> {
        self.ip(&["addr", "add", cidr, "dev", ifname]).map(drop)
    }

    /// Removes an address from an interface.
    pub fn del_addr(&self, ifname: &str, cidr: &str) -> Result<()> {
        self.ip(&["addr", "del", cidr, "dev", ifname]).map(drop)
    }

    /// Adds (replaces) a route given as `ip route` arguments: `"0.0.0.0/0 via 10.0.0.2"`.
    pub fn route(&self, spec: &str) -> Result<()> {
        let mut argv = vec!["route", "replace"];
        argv.extend(spec.split_whitespace());
        self.ip(&argv).map(drop)
    }

    /// Sets a sysctl inside the namespace (`net.ipv4.ip_forward`, `1`).
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        let kv = format!("{key}={value}");
        self.exec_ok(&["sysctl", "-qw", &kv]).map(drop)
    }

    /// The kernel main table as JSON (`ip -j route`).
    pub fn routes_json(&self) -> Result<Value> {
        let text = self.ip(&["-j", "route"])?;
        if text.trim().is_empty() {
            return Ok(Value::Array(Vec::new()));
        }
        serde_json::from_str(&text).map_err(|e| LabError::Parse {
            what: format!("ip -j route in {}", self.ns),
            detail: e.to_string(),
        })
    }

    /// The kernel main table, parsed.
    pub fn routes(&self) -> Result<Vec<Route>> {
        parse_routes_text(&self.ip(&["-j", "route"])?)
    }

    /// The route for exactly `prefix` (`3.3.3.3/32`, `3.3.3.3` or `default`), if any.
    pub fn route_to(&self, prefix: &str) -> Result<Option<Route>> {
        let want = normalize_prefix(prefix);
        Ok(self.routes()?.into_iter().find(|r| r.dst == want))
    }

    /// The gateways of the route for `prefix` (empty when there is no such route).
    pub fn nexthops(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self
            .route_to(prefix)?
            .map(|r| r.gateways().into_iter().map(str::to_string).collect())
            .unwrap_or_default())
    }

    /// Waits until the kernel has a route for `prefix` with exactly `nexthops` next hops.
    pub fn wait_route(&self, prefix: &str, nexthops: usize, deadline: Duration) -> Result<Route> {
        let what = format!("{nexthops}-nexthop route {prefix} in {}", self.ns);
        wait_for(deadline, &what, || {
            Ok(match self.route_to(prefix)? {
                Some(r) if r.nexthops.len() == nexthops => Ok(r),
                Some(r) => Err(format!("route present with {:?}", r.nexthops)),
                None => Err(format!("no route {prefix}")),
            })
        })
    }

    /// Waits until the kernel has no route for `prefix`.
    pub fn wait_no_route(&self, prefix: &str, deadline: Duration) -> Result<()> {
        let what = format!("route {prefix} to leave {}", self.ns);
        wait_for(deadline, &what, || {
            Ok(match self.route_to(prefix)? {
                None => Ok(()),
                Some(r) => Err(format!("still present: {r:?}")),
            })
        })
    }

    /// Blackholes the node without stopping anything: an nftables table drops every
    /// packet in and out (hooks at priority -500), as a frozen machine would.
    pub fn freeze(&self) -> Result<()> {
        let rules = "table inet flab_freeze {\n\
                     chain in { type filter hook input priority -500; policy drop; }\n\
                     chain out { type filter hook output priority -500; policy drop; }\n}\n";
        let path = self.dir().join("freeze.nft");
        fs::write(&path, rules)
            .map_err(|e| LabError::io(format!("write {}", path.display()), e))?;
        self.exec_ok(&["nft", "-f", &path.to_string_lossy()])
            .map(drop)
    }

    /// Undoes [`Node::freeze`].
    pub fn thaw(&self) -> Result<()> {
        self.exec_ok(&["nft", "delete", "table", "inet", "flab_freeze"])
            .map(drop)
    }

    /// Starts `args` inside the namespace as a tracked child; stdout and stderr go to
    /// `<node dir>/<program>.<pid>.log`. The process is killed when the returned handle
    /// or the lab is dropped.
    pub fn spawn(&self, args: &[&str]) -> Result<Process> {
        let prog = args
            .first()
            .ok_or_else(|| LabError::Config("empty command".into()))?;
        let base = Path::new(prog)
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("proc")
            .to_string();
        let seq = SEQ.fetch_add(1, Ordering::SeqCst);
        let log_path = self.dir().join(format!("{base}.{seq}.log"));
        let log = fs::File::create(&log_path)
            .map_err(|e| LabError::io(format!("create {}", log_path.display()), e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| LabError::io("clone log handle", e))?;
        let argv = self.exec_argv(args);
        let mut st = self.lab.state();
        st.check_live(&self.lab.prefix)?;
        let child = Command::new("ip")
            .args(argv.get(1..).unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|source| LabError::Spawn {
                cmd: argv.join(" "),
                source,
            })?;
        let pid = child.id();
        st.children.insert(pid, child);
        Ok(Process {
            lab: Arc::clone(&self.lab),
            pid,
            name: base,
            log: log_path,
        })
    }

    /// Runs a daemonizing launcher (`zebra -d ...`) in the namespace, waits for its pid
    /// file and tracks the daemon.
    pub(crate) fn start_daemon(
        &self,
        daemon: &str,
        args: &[&str],
        pid_file: &Path,
        log_file: Option<&Path>,
    ) -> Result<u32> {
        let mut st = self.lab.state();
        st.check_live(&self.lab.prefix)?;
        let _ = fs::remove_file(pid_file);
        let fail = |detail: String| {
            let tail = log_file
                .and_then(|p| fs::read_to_string(p).ok())
                .map(|t| {
                    let lines: Vec<&str> = t.lines().collect();
                    lines[lines.len().saturating_sub(8)..].join("\n")
                })
                .unwrap_or_default();
            LabError::Daemon {
                daemon: daemon.to_string(),
                node: self.ns.clone(),
                detail: if tail.is_empty() {
                    detail
                } else {
                    format!("{detail}; log tail:\n{tail}")
                },
            }
        };
        let out = self.exec(args)?;
        if !out.status.success() {
            return Err(fail(format!(
                "launcher exited {}: {}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                String::from_utf8_lossy(&out.stdout).trim()
            )));
        }
        let start = Instant::now();
        loop {
            if let Some(pid) = fs::read_to_string(pid_file)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
            {
                if pid_alive(pid) {
                    st.add_daemon(pid, format!("{daemon}@{}", self.name));
                    return Ok(pid);
                }
            }
            if start.elapsed() > Duration::from_secs(5) {
                return Err(fail(format!("no live pid in {}", pid_file.display())));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A process started by [`Node::spawn`]; killed (SIGTERM, then SIGKILL) when dropped.
pub struct Process {
    lab: Arc<LabInner>,
    pid: u32,
    name: String,
    log: PathBuf,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("name", &self.name)
            .field("pid", &self.pid)
            .finish()
    }
}

impl Process {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The file receiving its stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// True while the process runs (false once it exited or the lab was torn down).
    pub fn is_running(&self) -> bool {
        let mut st = self.lab.state();
        match st.children.get_mut(&self.pid) {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Sends a signal to the process.
    pub fn signal(&self, sig: Signal) {
        if self.is_running() {
            signal_pid(self.pid, sig);
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let child = self.lab.state().children.remove(&self.pid);
        if let Some(mut child) = child {
            if matches!(child.try_wait(), Ok(None)) {
                terminate(&[self.pid]);
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_only_for_numbered_labs() {
        assert_eq!(
            owner_pid("flab-1234-7-r1"),
            Some((1234, "flab-1234-7".to_string()))
        );
        assert_eq!(
            owner_pid("flab-1234-7"),
            Some((1234, "flab-1234-7".to_string()))
        );
        assert_eq!(owner_pid("flab-two-sw"), None);
        assert_eq!(owner_pid("flab-12-x-r1"), None);
        assert_eq!(owner_pid("other-12-3"), None);
        assert_eq!(owner_pid("flab-"), None);
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_name("r1", 12).is_ok());
        assert!(valid_name("lb-a", 12).is_ok());
        assert!(valid_name("", 12).is_err());
        assert!(valid_name("1r", 12).is_err());
        assert!(valid_name("R1", 12).is_err());
        assert!(valid_name("a/b", 12).is_err());
        assert!(valid_name("abcdefghijklm", 12).is_err());
    }

    #[test]
    fn liveness_of_self_and_of_nothing() {
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(u32::MAX));
    }
}
