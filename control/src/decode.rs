//! One-line summaries of frames for people (`nfv trace`), decoded with etherparse. Lax:
//! a frame cut short (a trace keeps only its first bytes) still gets what can be read.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use nfv_dataplane::MacAddr;

use etherparse::{
    ArpOperation, Icmpv4Type, LaxLinkExtSlice, LaxNetSlice, LaxSlicedPacket, LinkSlice,
    TransportSlice,
};

fn ipv4(b: &[u8]) -> String {
    <[u8; 4]>::try_from(b).map_or_else(|_| "?".to_string(), |a| Ipv4Addr::from(a).to_string())
}

/// `src > dst` MACs, VLAN, then ARP, or IPv4 with ICMP/UDP/TCP details.
pub fn summary(frame: &[u8]) -> String {
    let p = match LaxSlicedPacket::from_ethernet(frame) {
        Ok(p) => p,
        Err(_) => return format!("runt frame of {} bytes", frame.len()),
    };
    let mut s = String::new();
    if let Some(LinkSlice::Ethernet2(e)) = &p.link {
        let _ = write!(s, "{} > {}", MacAddr(e.source()), MacAddr(e.destination()));
    }
    for ext in &p.link_exts {
        if let LaxLinkExtSlice::Vlan(v) = ext {
            let _ = write!(s, " vlan {}", v.vlan_identifier().value());
        }
    }
    match &p.net {
        Some(LaxNetSlice::Arp(a)) => {
            let op = match a.operation() {
                ArpOperation::REQUEST => "request",
                ArpOperation::REPLY => "reply",
                _ => "other",
            };
            let _ = write!(
                s,
                ", ARP {op} {} > {}",
                ipv4(a.sender_protocol_addr()),
                ipv4(a.target_protocol_addr())
            );
        }
        Some(LaxNetSlice::Ipv4(ip)) => {
            let h = ip.header();
            let _ = write!(
                s,
                ", IPv4 {} > {} ttl {}",
                h.source_addr(),
                h.destination_addr(),
                h.ttl()
            );
            match &p.transport {
                Some(TransportSlice::Icmpv4(i)) => {
                    let what = match i.icmp_type() {
                        Icmpv4Type::EchoRequest(e) => {
                            format!("echo request id {} seq {}", e.id, e.seq)
                        }
                        Icmpv4Type::EchoReply(e) => format!("echo reply id {} seq {}", e.id, e.seq),
                        Icmpv4Type::DestinationUnreachable(d) => {
                            format!("destination unreachable ({d:?})")
                        }
                        Icmpv4Type::TimeExceeded(t) => format!("time exceeded ({t:?})"),
                        other => format!("{other:?}"),
                    };
                    let _ = write!(s, ", ICMP {what}");
                }
                Some(TransportSlice::Udp(u)) => {
                    let _ = write!(s, ", UDP {} > {}", u.source_port(), u.destination_port());
                }
                Some(TransportSlice::Tcp(t)) => {
                    let flags: String = [
                        (t.syn(), 'S'),
                        (t.fin(), 'F'),
                        (t.rst(), 'R'),
                        (t.psh(), 'P'),
                        (t.ack(), '.'),
                    ]
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, c)| *c)
                    .collect();
                    let _ = write!(
                        s,
                        ", TCP {} > {} [{flags}]",
                        t.source_port(),
                        t.destination_port()
                    );
                }
                _ => {
                    let _ = write!(s, ", protocol {}", h.protocol().0);
                }
            }
        }
        Some(LaxNetSlice::Ipv6(_)) => s.push_str(", IPv6"),
        None => {
            if let Some(LinkSlice::Ethernet2(e)) = &p.link {
                let _ = write!(s, ", ethertype 0x{:04x}", e.ether_type().0);
            }
        }
    }
    let _ = write!(s, ", {} bytes", frame.len());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_arp_and_junk_are_summarised() {
        let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .icmpv4_echo_request(7, 3);
        let mut f = Vec::new();
        b.write(&mut f, &[0u8; 56]).expect("build");
        let s = summary(&f);
        assert!(s.contains("02:00:00:00:00:01 > 02:00:00:00:00:02"), "{s}");
        assert!(s.contains("IPv4 10.0.0.1 > 10.0.0.2 ttl 64"), "{s}");
        assert!(s.contains("ICMP echo request id 7 seq 3"), "{s}");
        // Cut short, as a trace keeps it: still readable.
        assert!(summary(&f[..40]).contains("IPv4 10.0.0.1 > 10.0.0.2"));
        assert!(summary(&[1, 2, 3]).starts_with("runt"));
        let mut arp = vec![0xffu8; 6];
        arp.extend([2, 0, 0, 0, 0, 1, 0x08, 0x06]);
        arp.extend([0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1]);
        arp.extend([0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
        let s = summary(&arp);
        assert!(s.contains("ARP request 10.0.0.1 > 10.0.0.2"), "{s}");
    }
}
