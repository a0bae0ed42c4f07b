//! keepalived (VRRP only: the kernel here has no IPVS) in a lab node.

use std::fs;

use crate::error::{LabError, Result};
use crate::lab::{Node, Process};

impl Node {
    /// Writes `conf` under `<node dir>/keepalived` and runs `keepalived --vrrp -n -l -f
    /// conf -p pid -r vrrp_pid -c checkers_pid` as a tracked foreground process (its
    /// console log is [`Process::log_path`]).
    pub fn keepalived(&self, conf: &str) -> Result<Process> {
        let dir = self.dir().join("keepalived");
        fs::create_dir_all(&dir)
            .map_err(|e| LabError::io(format!("create {}", dir.display()), e))?;
        let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let conf_path = path("keepalived.conf");
        fs::write(&conf_path, conf).map_err(|e| LabError::io(format!("write {conf_path}"), e))?;
        let (pid, vrrp, checkers) = (
            path("keepalived.pid"),
            path("vrrp.pid"),
            path("checkers.pid"),
        );
        self.spawn(&[
            "keepalived",
            "--vrrp",
            "-n",
            "-l",
            "-f",
            &conf_path,
            "-p",
            &pid,
            "-r",
            &vrrp,
            "-c",
            &checkers,
        ])
    }
}
