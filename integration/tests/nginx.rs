//! nginx real-server self-tests: plain and PROXY-protocol listeners (needs root).

use integration::{Lab, NginxConfig};

#[test]
fn curl_gets_plain_and_proxy_protocol_replies() {
    let lab = Lab::new("nginx").expect("lab (needs root)");
    let client = lab.node("client").expect("client");
    let rs = lab.node("rs").expect("rs");
    lab.link(&client, "eth0", &rs, "eth0").expect("link");
    client.addr("eth0", "192.168.7.55/24").expect("addr");
    rs.addr("eth0", "192.168.7.27/24").expect("addr");
    let nginx = rs
        .nginx(
            &NginxConfig::default()
                .listen("192.168.7.27", 80, false)
                .listen("192.168.7.27", 8080, true),
        )
        .expect("nginx");
    assert!(nginx.pid() > 1);

    let plain = client
        .exec_ok(&["curl", "-sS", "--max-time", "5", "http://192.168.7.27/"])
        .expect("plain curl");
    assert_eq!(plain.trim(), "rs=192.168.7.27 client=192.168.7.55");

    // curl sends a PROXY v1 header naming its own connection: the echoed proxy address
    // is the client's.
    let proxied = client
        .exec_ok(&[
            "curl",
            "-sS",
            "--max-time",
            "5",
            "--haproxy-protocol",
            "http://192.168.7.27:8080/",
        ])
        .expect("proxy curl");
    assert_eq!(
        proxied.trim(),
        "rs=192.168.7.27 client=192.168.7.55 proxy=192.168.7.55"
    );

    // A PROXY listener refuses a request without the header.
    let refused = client
        .exec(&[
            "curl",
            "-sS",
            "--max-time",
            "5",
            "http://192.168.7.27:8080/",
        ])
        .expect("curl runs");
    let body = String::from_utf8_lossy(&refused.stdout);
    assert!(
        !refused.status.success() || !body.contains("rs="),
        "PROXY listener answered a request without header: {body}"
    );
}
