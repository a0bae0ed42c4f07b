//! Scenario `two` (seed 000) built in a private lab: the switch gets ECMP over both
//! balancer nodes and the client reaches the VIP (needs root).

use std::time::Duration;

use integration::scenario::{self, VIP_TWO};
use integration::Lab;

#[test]
fn scenario_two_converges_to_ecmp() {
    let sc = scenario::by_name("two").expect("scenario two");
    let lab = Lab::new("scenario_two").expect("lab (needs root)");
    let run = scenario::build(&lab, &sc).expect("build");
    assert_eq!(run.frr.len(), 3);
    assert_eq!(run.nginx.len(), 2);
    scenario::wait_converged(&lab, &sc, Duration::from_secs(30)).expect("converged");

    let sw = run.node("sw").expect("sw");
    let vip = format!("{VIP_TWO}/32");
    let route = sw.route_to(&vip).expect("routes").expect("VIP route");
    let mut gws = route.gateways();
    gws.sort_unstable();
    assert_eq!(gws, vec!["10.20.30.45", "10.20.30.46"]);

    // Two hops: client -> sw -> a balancer node's lo, and back by the OSPF default.
    let client = run.node("client").expect("client");
    let ping = client
        .exec(&["ping", "-c", "1", "-W", "2", VIP_TWO])
        .expect("ping runs");
    assert!(ping.status.success(), "client cannot reach the VIP");

    // The real servers answer on the inner segment.
    let lb_a = run.node("lb-a").expect("lb-a");
    let body = lb_a
        .exec_ok(&["curl", "-sS", "--max-time", "5", "http://192.168.7.28/"])
        .expect("curl rs2");
    assert_eq!(body.trim(), "rs=192.168.7.28 client=192.168.7.82");

    // Status names both neighbors of the switch and the ECMP route.
    let status = scenario::status(&lab, &sc);
    assert!(
        status.contains("10.20.30.45") && status.contains("10.20.30.46"),
        "{status}"
    );
    assert!(status.contains("nexthop via 10.20.30.45"), "{status}");
    let hints = scenario::hints(&lab, &sc).join("\n");
    assert!(
        hints.contains(&format!("ip netns exec {} ping", client.netns())),
        "{hints}"
    );
    assert!(!hints.contains("{ns:"), "{hints}");

    // Withdrawing the VIP on lb-a leaves the switch with lb-b only.
    lb_a.del_addr("lo", &vip).expect("withdraw");
    let one = sw
        .wait_route(&vip, 1, Duration::from_secs(10))
        .expect("one next hop");
    assert_eq!(one.gateways(), vec!["10.20.30.46"]);
}
