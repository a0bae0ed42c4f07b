//! Test helper: network namespaces named `flab-app-<pid>-<tag>`, removed on drop, and
//! closures run on a thread that entered one.

use std::process::Command;

/// A network namespace deleted (with its interfaces) when dropped.
pub struct Netns {
    /// Its name.
    pub name: String,
}

impl Netns {
    /// Creates `flab-app-<pid>-<tag>` with `lo` up.
    pub fn new(tag: &str) -> Netns {
        let name = format!("flab-app-{}-{tag}", std::process::id());
        // A leftover from a crashed run of the same pid is replaced.
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        sh(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// Runs `ip -n NAME ARGS…`, panicking on failure.
    pub fn ip(&self, args: &[&str]) {
        let mut v = vec!["ip", "-n", self.name.as_str()];
        v.extend_from_slice(args);
        sh(&v);
    }

    /// Output of `ip -n NAME ARGS…`.
    pub fn ip_output(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .arg("-n")
            .arg(&self.name)
            .args(args)
            .output()
            .expect("run ip");
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits (up to 20 s) until `dev` is operationally up with a real qdisc: the kernel's
    /// link watcher activates a new link asynchronously, and drops packets sent before.
    pub fn wait_up(&self, dev: &str) {
        let start = std::time::Instant::now();
        loop {
            let out = self.ip_output(&["-j", "link", "show", "dev", dev]);
            let v: serde_json::Value = serde_json::from_str(&out).expect("ip -j link");
            let link = &v[0];
            if link["operstate"] == "UP" && link["qdisc"] != "noop" {
                return;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(20),
                "{dev} in {} not up: {out}",
                self.name
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Runs `f` on a new thread that entered this namespace, inside a current-thread
    /// tokio runtime.
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T>>> + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("open netns");
            nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(f())
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn sh(args: &[&str]) {
    let st = Command::new(args[0])
        .args(&args[1..])
        .status()
        .expect("run command");
    assert!(st.success(), "{args:?} failed");
}

/// Panics with a clear message when not root (these tests need namespaces).
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test creates network namespaces and must run as root"
    );
}
