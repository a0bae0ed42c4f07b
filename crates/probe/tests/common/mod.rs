//! Helpers shared by the probe tests: a scratch [`TempDir`], and a two-namespace lab: a
//! client namespace where probes run and a server namespace with nginx, UDP echo and
//! TCP listeners, joined by a veth pair (10.77.0.1/24 client, 10.77.0.2/24 server).
//! Everything is removed on drop, also when the test panics.

#![allow(dead_code)]

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};

pub const CLIENT_IP: &str = "10.77.0.1";
pub const SERVER_IP: &str = "10.77.0.2";
/// On the connected /24 but assigned to nobody: ARP never resolves, probes time out.
pub const BLACKHOLE_IP: &str = "10.77.0.99";
/// IPv6 addresses of the same veth pair, added by [`Lab::add_ipv6`] (fd00:77::/64).
pub const CLIENT_IP6: &str = "fd00:77::1";
pub const SERVER_IP6: &str = "fd00:77::2";
/// On the connected /64 but assigned to nobody: neighbour discovery never resolves.
pub const BLACKHOLE_IP6: &str = "fd00:77::99";

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn run(args: &[&str]) -> std::process::Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    out
}

fn run_ok(args: &[&str]) {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub struct Lab {
    pub client: String,
    pub server: String,
    pub dir: PathBuf,
    nginx: Vec<PathBuf>,
    stops: Vec<Arc<AtomicBool>>,
}

impl Lab {
    pub fn new() -> Lab {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let base = format!("flab-probe-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(&base);
        let lab = Lab {
            client: format!("{base}c"),
            server: format!("{base}s"),
            dir,
            nginx: Vec::new(),
            stops: Vec::new(),
        };
        // From here on, Drop cleans whatever was created.
        fs::create_dir_all(&lab.dir).unwrap();
        run_ok(&["ip", "netns", "add", &lab.client]);
        run_ok(&["ip", "netns", "add", &lab.server]);
        run_ok(&[
            "ip",
            "link",
            "add",
            "vc",
            "netns",
            &lab.client,
            "type",
            "veth",
            "peer",
            "name",
            "vs",
            "netns",
            &lab.server,
        ]);
        lab.add_addrs(CLIENT_IP, SERVER_IP, 24, &[]);
        for (ns, dev) in [(&lab.client, "vc"), (&lab.server, "vs")] {
            run_ok(&["ip", "-n", ns, "link", "set", dev, "up"]);
            run_ok(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        lab.client_sysctl("net.ipv4.ping_group_range=0 2147483647");
        lab
    }

    /// Sets `key=value` with sysctl in the client namespace.
    pub fn client_sysctl(&self, key_value: &str) {
        run_ok(&[
            "ip",
            "netns",
            "exec",
            &self.client,
            "sysctl",
            "-qw",
            key_value,
        ]);
    }

    /// Adds `client_ip` and `server_ip` (`/prefix`) to the two ends of the veth pair,
    /// with `flags` after the device.
    fn add_addrs(&self, client_ip: &str, server_ip: &str, prefix: u8, flags: &[&str]) {
        for (ns, dev, ip) in [
            (&self.client, "vc", client_ip),
            (&self.server, "vs", server_ip),
        ] {
            let cidr = format!("{ip}/{prefix}");
            let mut args = vec!["ip", "-n", ns, "addr", "add", &cidr, "dev", dev];
            args.extend_from_slice(flags);
            run_ok(&args);
        }
    }

    /// Adds [`CLIENT_IP6`] and [`SERVER_IP6`] to the veth pair, without duplicate
    /// address detection, and waits until both ends have joined their solicited-node
    /// multicast group (the kernel does that from a work queue after the address is
    /// added; until then neighbour solicitations for the address are dropped, and the
    /// next one is only sent a second later).
    pub fn add_ipv6(&self) {
        self.add_addrs(CLIENT_IP6, SERVER_IP6, 64, &["nodad"]);
        for (ns, dev, ip) in [
            (&self.client, "vc", CLIENT_IP6),
            (&self.server, "vs", SERVER_IP6),
        ] {
            let s = ip.parse::<std::net::Ipv6Addr>().unwrap().segments();
            let group = format!("inet6 ff02::1:ff{:02x}:{:x}", s[6] & 0xff, s[7]);
            wait_for(
                || {
                    let out = run(&["ip", "-n", ns, "-6", "maddr", "show", "dev", dev]);
                    String::from_utf8_lossy(&out.stdout).contains(&group)
                },
                &group,
            );
        }
    }

    /// Runs `f` on a fresh thread inside namespace `ns`, with a current-thread tokio
    /// runtime; panics propagate.
    pub fn block_on_in<F, Fut>(ns: &str, f: F) -> Fut::Output
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future,
        Fut::Output: Send + 'static,
    {
        let path = format!("/var/run/netns/{ns}");
        let h = thread::spawn(move || {
            let f_ns = fs::File::open(&path).unwrap();
            setns(&f_ns, CloneFlags::CLONE_NEWNET).unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(f())
        });
        match h.join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        }
    }

    /// Runs `f` in the client namespace.
    pub fn client<F, Fut>(&self, f: F) -> Fut::Output
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future,
        Fut::Output: Send + 'static,
    {
        Self::block_on_in(&self.client, f)
    }

    fn nginx_dir(&self, name: &str) -> PathBuf {
        self.dir.join(format!("nginx-{name}"))
    }

    /// Writes an nginx instance listening on SERVER_IP:port with `/ok` (200, "ok\n")
    /// and `/bad` (500), optionally TLS on port+1000; starts it.
    pub fn nginx(&mut self, name: &str, port: u16, tls: bool) -> PathBuf {
        let d = self.nginx_dir(name);
        fs::create_dir_all(&d).unwrap();
        let ds = d.display();
        let mut tls_server = String::new();
        if tls {
            run_ok(&[
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=rs.test",
                "-keyout",
                &format!("{ds}/key.pem"),
                "-out",
                &format!("{ds}/cert.pem"),
            ]);
            tls_server = format!(
                "server {{ listen {SERVER_IP}:{} ssl; ssl_certificate {ds}/cert.pem; \
                 ssl_certificate_key {ds}/key.pem; \
                 location = /ok {{ return 200 \"tls ok $ssl_server_name\\n\"; }} }}",
                port + 1000
            );
        }
        let conf = format!(
            "daemon on; pid {ds}/nginx.pid; error_log {ds}/error.log; worker_processes 1;\n\
             events {{ worker_connections 1024; }}\n\
             http {{ access_log off; client_body_temp_path {ds}/body; proxy_temp_path {ds}/proxy;\n\
             fastcgi_temp_path {ds}/fastcgi; uwsgi_temp_path {ds}/uwsgi; scgi_temp_path {ds}/scgi;\n\
             server {{ listen {SERVER_IP}:{port};\n\
               location = /ok {{ return 200 \"ok\\n\"; }}\n\
               location = /bad {{ return 500 \"bad\\n\"; }}\n\
               location = /host {{ return 200 \"host=$host\\n\"; }} }}\n\
             {tls_server} }}\n"
        );
        fs::write(d.join("nginx.conf"), conf).unwrap();
        self.nginx.push(d.clone());
        self.start_nginx(name);
        d
    }

    pub fn start_nginx(&self, name: &str) {
        let d = self.nginx_dir(name);
        let ds = d.display().to_string();
        run_ok(&[
            "ip",
            "netns",
            "exec",
            &self.server,
            "nginx",
            "-p",
            &ds,
            "-c",
            &format!("{ds}/nginx.conf"),
            "-e",
            &format!("{ds}/error.log"),
        ]);
        wait_for(|| d.join("nginx.pid").exists(), "nginx pid file");
    }

    /// Stops nginx `name` (SIGTERM: fast shutdown) and waits for it to exit; returns
    /// when the signal was sent.
    pub fn stop_nginx(&self, name: &str) -> Instant {
        stop_nginx_dir(&self.nginx_dir(name))
    }

    /// A UDP echo in the server namespace on SERVER_IP:port answering "PONG " + data.
    pub fn udp_echo(&mut self, port: u16) {
        let stop = Arc::new(AtomicBool::new(false));
        self.stops.push(stop.clone());
        let path = format!("/var/run/netns/{}", self.server);
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let f = fs::File::open(&path).unwrap();
            setns(&f, CloneFlags::CLONE_NEWNET).unwrap();
            let s = UdpSocket::bind(SocketAddr::new(SERVER_IP.parse().unwrap(), port)).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            tx.send(()).unwrap();
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((n, from)) = s.recv_from(&mut buf) {
                    let mut reply = b"PONG ".to_vec();
                    reply.extend_from_slice(&buf[..n]);
                    let _ = s.send_to(&reply, from);
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
    }
}

/// Whether process `pid` exists and is not a zombie.
pub fn running(pid: &str) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.rsplit(") ").next().is_some_and(|r| r.starts_with('Z')),
        Err(_) => false,
    }
}

fn stop_nginx_dir(d: &Path) -> Instant {
    let sent = Instant::now();
    let pidfile = d.join("nginx.pid");
    if let Ok(pid) = fs::read_to_string(&pidfile) {
        let pid = pid.trim().to_owned();
        let _ = run(&["kill", "-TERM", &pid]);
        let t0 = Instant::now();
        while (pidfile.exists() || running(&pid)) && t0.elapsed() < Duration::from_secs(5) {
            thread::sleep(Duration::from_millis(10));
        }
        if running(&pid) {
            let _ = run(&["kill", "-KILL", &pid]);
        }
    }
    sent
}

/// A scratch directory removed on drop, also when the test fails.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("probe-{tag}-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub fn wait_for(mut cond: impl FnMut() -> bool, what: &str) {
    let t0 = Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for s in &self.stops {
            s.store(true, Ordering::Relaxed);
        }
        for d in &self.nginx {
            stop_nginx_dir(d);
        }
        let _ = run(&["ip", "netns", "del", &self.client]);
        let _ = run(&["ip", "netns", "del", &self.server]);
        let _ = fs::remove_dir_all(&self.dir);
    }
}
