//! Writes a PROXY protocol header to stdout, for checking against a real peer (nginx):
//! `proxy_header v1|v2 SRC_IP SRC_PORT DST_IP DST_PORT`. Used by `lab/proxy_nginx_check.sh`.

use std::io::Write;
use std::net::{IpAddr, SocketAddrV4, SocketAddrV6};
use std::process::ExitCode;

use wire::{ProxyAddresses, ProxyCommand, ProxyTransport, ProxyV1Repr, ProxyV2Repr};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let parsed = (|| -> Option<(String, IpAddr, u16, IpAddr, u16)> {
        Some((
            args.get(1)?.clone(),
            args.get(2)?.parse().ok()?,
            args.get(3)?.parse().ok()?,
            args.get(4)?.parse().ok()?,
            args.get(5)?.parse().ok()?,
        ))
    })();
    let Some((version, s, sp, d, dp)) = parsed else {
        eprintln!("usage: proxy_header v1|v2 SRC_IP SRC_PORT DST_IP DST_PORT");
        return ExitCode::from(2);
    };
    let addresses = match (s, d) {
        (IpAddr::V4(s), IpAddr::V4(d)) => ProxyAddresses::Ipv4 {
            src: SocketAddrV4::new(s, sp),
            dst: SocketAddrV4::new(d, dp),
        },
        (IpAddr::V6(s), IpAddr::V6(d)) => ProxyAddresses::Ipv6 {
            src: SocketAddrV6::new(s, sp, 0, 0),
            dst: SocketAddrV6::new(d, dp, 0, 0),
        },
        _ => {
            eprintln!("both addresses must be of the same family");
            return ExitCode::from(2);
        }
    };
    let mut buf = [0u8; 128];
    let n = match version.as_str() {
        "v1" => ProxyV1Repr { addresses }.emit(&mut buf),
        "v2" => ProxyV2Repr {
            command: ProxyCommand::Proxy,
            transport: ProxyTransport::Stream,
            addresses,
            tlvs: &[],
        }
        .emit(&mut buf),
        _ => {
            eprintln!("version must be v1 or v2");
            return ExitCode::from(2);
        }
    };
    match n {
        Ok(n) if std::io::stdout().write_all(&buf[..n]).is_ok() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("emit: {e}");
            ExitCode::FAILURE
        }
    }
}
