//! keepalived (VRRP) self-test: the higher priority takes the virtual address, and the
//! backup takes it over when the master's process is stopped (needs root).

use std::time::Duration;

use integration::{wait_until, Lab, Node};

fn conf(priority: u8) -> String {
    format!(
        "global_defs {{ router_id flab{priority} }}\n\
         vrrp_instance HA_INWEB {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 210\n  \
         priority {priority}\n  advert_int 1\n  authentication {{ auth_type PASS auth_pass devweb }}\n  \
         virtual_ipaddress {{ 192.168.7.210/32 dev eth0 }}\n}}\n"
    )
}

fn has_vip(node: &Node) -> integration::Result<bool> {
    Ok(node
        .ip(&["-4", "addr", "show", "dev", "eth0"])?
        .contains("192.168.7.210/32"))
}

#[test]
fn vrrp_master_holds_vip_and_backup_takes_over() {
    let lab = Lab::new("keepalived").expect("lab (needs root)");
    let a = lab.node("a").expect("a");
    let b = lab.node("b").expect("b");
    lab.link(&a, "eth0", &b, "eth0").expect("link");
    a.addr("eth0", "192.168.7.82/24").expect("addr");
    b.addr("eth0", "192.168.7.83/24").expect("addr");
    let ka = a.keepalived(&conf(150)).expect("keepalived a");
    let _kb = b.keepalived(&conf(100)).expect("keepalived b");
    let deadline = Duration::from_secs(15);
    wait_until(deadline, "a (priority 150) to hold the VIP", || has_vip(&a))
        .unwrap_or_else(|e| panic!("{e}; log: {:?}", std::fs::read_to_string(ka.log_path())));
    assert!(!has_vip(&b).expect("b addrs"), "both nodes hold the VIP");
    assert!(ka.is_running());
    // Stopping the master (dropping its handle) hands the VIP to the backup.
    drop(ka);
    wait_until(deadline, "b to take over the VIP", || has_vip(&b)).expect("takeover");
    assert!(
        !has_vip(&a).expect("a addrs"),
        "stopped master kept the VIP"
    );
}
