//! The namespace lab both DPDK root tests use: a client namespace, the balancer namespace
//! (af_packet ports on veths) and a real-server namespace running nginx, removed on drop
//! (also while a failure unwinds).
#![allow(dead_code)]

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;

pub const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const LB_CLIENT_SIDE: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
pub const LB_SERVER_SIDE: Ipv4Addr = Ipv4Addr::new(192, 168, 7, 1);
pub const LIP: Ipv4Addr = Ipv4Addr::new(192, 168, 7, 188);
pub const RS: Ipv4Addr = Ipv4Addr::new(192, 168, 7, 27);
/// Runs a command; returns its stdout, or an error with its stderr.
pub fn run(prog: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(prog)
        .args(args)
        .output()
        .map_err(|e| format!("{prog}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{prog} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Runs a command that must succeed.
pub fn must(prog: &str, args: &[&str]) -> String {
    run(prog, args).unwrap_or_else(|e| panic!("{e}"))
}

/// Namespaces, nginx and files; all removed on drop (also while a failure unwinds).
pub struct Lab {
    pub c: String,
    pub lb: String,
    pub rs: String,
    pub dir: PathBuf,
}

impl Lab {
    pub fn new(tag: &str) -> Lab {
        let pid = std::process::id();
        let base = format!("flab-{tag}-{pid}");
        let lab = Lab {
            c: format!("{base}-c"),
            lb: format!("{base}-lb"),
            rs: format!("{base}-rs"),
            dir: PathBuf::from(format!("/tmp/{base}")),
        };
        std::fs::create_dir_all(&lab.dir).expect("lab dir");
        for ns in [&lab.c, &lab.lb, &lab.rs] {
            must("ip", &["netns", "add", ns]);
            must("ip", &["-n", ns, "link", "set", "lo", "up"]);
        }
        must(
            "ip",
            &[
                "link", "add", "c0", "netns", &lab.c, "type", "veth", "peer", "name", "l0",
                "netns", &lab.lb,
            ],
        );
        must(
            "ip",
            &[
                "link", "add", "r0", "netns", &lab.rs, "type", "veth", "peer", "name", "l1",
                "netns", &lab.lb,
            ],
        );
        // The balancer's kernel must not answer on the DPDK ports itself: only through
        // the twins (strict reverse-path filter, no ARP for addresses of other devices).
        for (k, v) in [
            ("net.ipv6.conf.all.disable_ipv6", "1"),
            ("net.ipv6.conf.default.disable_ipv6", "1"),
            ("net.ipv4.conf.all.rp_filter", "1"),
            ("net.ipv4.conf.l0.arp_ignore", "8"),
            ("net.ipv4.conf.l1.arp_ignore", "8"),
        ] {
            must(
                "ip",
                &[
                    "netns",
                    "exec",
                    &lab.lb,
                    "sysctl",
                    "-qw",
                    &format!("{k}={v}"),
                ],
            );
        }
        for dev in ["l0", "l1"] {
            must("ip", &["-n", &lab.lb, "link", "set", dev, "up"]);
        }
        // Frames captured by af_packet carry whatever checksum the sender's stack left:
        // the end hosts compute theirs in software.
        for (ns, dev, addr) in [(&lab.c, "c0", CLIENT), (&lab.rs, "r0", RS)] {
            must(
                "ip",
                &["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev],
            );
            must("ip", &["-n", ns, "link", "set", dev, "up"]);
            must(
                "ip",
                &[
                    "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off", "tso", "off",
                ],
            );
        }
        // NAT mode: replies to the client go back through the balancer (its twin's
        // address answers the ARP for the gateway with the port's MAC).
        must(
            "ip",
            &[
                "-n",
                &lab.rs,
                "route",
                "add",
                "10.0.0.0/24",
                "via",
                "192.168.7.1",
            ],
        );
        lab.start_nginx();
        lab
    }

    pub fn start_nginx(&self) {
        let d = self.dir.display();
        let conf = format!(
            r#"daemon on;
pid {d}/nginx.pid;
error_log {d}/err.log;
worker_processes 1;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen {RS}:80;
    location / {{ return 200 "rs=$server_addr client=$remote_addr\n"; }}
  }}
  server {{
    listen {RS}:8080 proxy_protocol;
    location / {{ return 200 "rs=$server_addr client=$proxy_protocol_addr\n"; }}
  }}
}}
"#
        );
        let path = self.dir.join("nginx.conf");
        std::fs::write(&path, conf).expect("nginx.conf");
        must(
            "ip",
            &[
                "netns",
                "exec",
                &self.rs,
                "nginx",
                "-p",
                &d.to_string(),
                "-c",
                &path.to_string_lossy(),
                "-e",
                &format!("{d}/err.log"),
            ],
        );
    }

    /// Moves the calling thread into the balancer namespace.
    pub fn enter_lb(&self) {
        let f = File::open(format!("/run/netns/{}", self.lb)).expect("open netns");
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
    }

    /// MAC of `dev` in namespace `ns`.
    pub fn mac(ns: &str, dev: &str) -> Option<[u8; 6]> {
        let text = run("ip", &["-n", ns, "-o", "link", "show", dev]).ok()?;
        let hex = text
            .split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)?;
        let v: Vec<u8> = hex
            .split(':')
            .filter_map(|b| u8::from_str_radix(b, 16).ok())
            .collect();
        v.try_into().ok()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("nginx.pid")) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
        for ns in [&self.c, &self.lb, &self.rs] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
