//! nginx as a real server: one `server` per listener answering who it is and who asked.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

use crate::error::{LabError, Result};
use crate::lab::Node;

/// One listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NginxListen {
    /// Address to bind.
    pub addr: String,
    /// Port.
    pub port: u16,
    /// Expect a PROXY protocol header (v1 or v2) and echo `$proxy_protocol_addr`.
    pub proxy_protocol: bool,
}

/// Configuration of an nginx real server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NginxConfig {
    /// Listeners.
    pub listen: Vec<NginxListen>,
    /// Raw lines appended inside `http { }`.
    pub extra_http: Vec<String>,
}

impl NginxConfig {
    /// Adds a listener.
    pub fn listen(mut self, addr: &str, port: u16, proxy_protocol: bool) -> Self {
        self.listen.push(NginxListen {
            addr: addr.to_string(),
            port,
            proxy_protocol,
        });
        self
    }

    /// Renders `nginx.conf` with every path under `dir`.
    ///
    /// Replies are `rs=$server_addr client=$remote_addr` and, on PROXY listeners,
    /// ` proxy=$proxy_protocol_addr`, one line.
    pub fn render(&self, dir: &str) -> Result<String> {
        if self.listen.is_empty() {
            return Err(LabError::Config("nginx needs at least one listener".into()));
        }
        let mut c = String::new();
        let _ = writeln!(
            c,
            "daemon on;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log;"
        );
        let _ = writeln!(
            c,
            "worker_processes 1;\nevents {{ worker_connections 1024; }}"
        );
        let _ = writeln!(c, "http {{");
        let _ = writeln!(c, "  access_log {dir}/access.log;");
        for (k, sub) in [
            ("client_body_temp_path", "body"),
            ("proxy_temp_path", "proxy"),
            ("fastcgi_temp_path", "fastcgi"),
            ("uwsgi_temp_path", "uwsgi"),
            ("scgi_temp_path", "scgi"),
        ] {
            let _ = writeln!(c, "  {k} {dir}/{sub};");
        }
        for l in &self.listen {
            if l.addr.is_empty() || l.addr.contains(|ch: char| ch.is_whitespace() || ch == ';') {
                return Err(LabError::Config(format!("bad nginx address {:?}", l.addr)));
            }
            let (pp, body) = if l.proxy_protocol {
                (
                    " proxy_protocol",
                    "rs=$server_addr client=$remote_addr proxy=$proxy_protocol_addr\\n",
                )
            } else {
                ("", "rs=$server_addr client=$remote_addr\\n")
            };
            let _ = writeln!(
                c,
                "  server {{ listen {}:{}{pp}; default_type text/plain; \
                 location / {{ return 200 \"{body}\"; }} }}",
                l.addr, l.port
            );
        }
        for line in &self.extra_http {
            let _ = writeln!(c, "  {line}");
        }
        let _ = writeln!(c, "}}");
        Ok(c)
    }
}

/// An nginx instance running in a node.
#[derive(Debug, Clone)]
pub struct Nginx {
    node: Node,
    dir: PathBuf,
    pid: u32,
}

impl Node {
    /// Writes the configuration under `<node dir>/nginx` and starts nginx there.
    pub fn nginx(&self, cfg: &NginxConfig) -> Result<Nginx> {
        let dir = self.dir().join("nginx");
        fs::create_dir_all(&dir)
            .map_err(|e| LabError::io(format!("create {}", dir.display()), e))?;
        let d = dir.to_string_lossy().into_owned();
        let conf = dir.join("nginx.conf");
        fs::write(&conf, cfg.render(&d)?)
            .map_err(|e| LabError::io(format!("write {}", conf.display()), e))?;
        let c = conf.to_string_lossy().into_owned();
        let err = format!("{d}/error.log");
        let pid = self.start_daemon(
            "nginx",
            &["nginx", "-p", &d, "-c", &c, "-e", &err],
            &dir.join("nginx.pid"),
            Some(&dir.join("error.log")),
        )?;
        Ok(Nginx {
            node: self.clone(),
            dir,
            pid,
        })
    }
}

impl Nginx {
    /// The node nginx runs in.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The master process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The directory holding its configuration and logs.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_plain_and_proxy_listeners() {
        let c = NginxConfig::default()
            .listen("10.0.0.2", 80, false)
            .listen("10.0.0.2", 81, true)
            .render("/run/x")
            .expect("renders");
        assert!(c.contains("pid /run/x/nginx.pid;"));
        assert!(c.contains("client_body_temp_path /run/x/body;"));
        assert!(c.contains(
            "listen 10.0.0.2:80; default_type text/plain; location / { return 200 \
             \"rs=$server_addr client=$remote_addr\\n\"; }"
        ));
        assert!(c.contains(
            "listen 10.0.0.2:81 proxy_protocol; default_type text/plain; location / { \
             return 200 \"rs=$server_addr client=$remote_addr proxy=$proxy_protocol_addr\\n\"; }"
        ));
        assert!(NginxConfig::default().render("/d").is_err());
        assert!(NginxConfig::default()
            .listen("1.2.3.4; evil", 80, false)
            .render("/d")
            .is_err());
    }
}
