//! The DHCP server through relays: the subnet chosen by `giaddr`, replies to the relay
//! through the gateway (found with ARP), a relay on the server's own segment, NAKs, the
//! Relay Agent Information option, renewals from other subnets, and what is dropped.

use super::tests::{
    config, exchange, frame, ipa, mac, msg, parse_reply, t, Msg, POOL, RELAY_MAC, SRV_MAC,
};
use super::*;
use nfv_dataplane::testing::Harness;

const GW: &str = "10.0.0.1";

fn subnet(net: &str, first: &str, last: &str, router: &str) -> DhcpSubnet {
    DhcpSubnet {
        network: ipa(net),
        prefix_len: 24,
        pools: vec![(ipa(first), ipa(last))],
        router: Some(ipa(router)),
        dns: vec![ipa("10.1.0.53")],
        domain: Some("far.example".into()),
        lease: Duration::from_secs(300),
        renew: None,
        rebind: None,
        options: vec![],
    }
}

/// The server of `tests::config`, with a gateway and two relayed subnets.
fn relayed_config() -> DhcpConfig {
    let mut c = config();
    c.gateway = Some(ipa(GW));
    c.subnets = vec![
        subnet("10.1.0.0", "10.1.0.50", "10.1.0.52", "10.1.0.1"),
        subnet("10.2.0.0", "10.2.0.50", "10.2.0.52", "10.2.0.1"),
    ];
    c
}

fn server_with(cfg: DhcpConfig) -> (Harness, Arc<DhcpStats>) {
    let s = DhcpServer::new(cfg, vec![], None);
    let stats = s.stats();
    (Harness::new(Box::new(s), 1, POOL), stats)
}

/// A message of client `n` relayed by `giaddr` (one hop) to the server.
fn relayed(ty: DhcpMessageType, n: u8, giaddr: &'static str) -> Msg<'static> {
    let mut m = msg(ty, n);
    m.giaddr = giaddr;
    m.hops = 1;
    m.dst_ip = "10.0.0.2";
    m
}

/// `ip` (at `mac`) asks the server for its MAC: the server learns it.
fn announce(h: &mut Harness, mac: MacAddr, ip: &str, now: Timestamp) -> Vec<Vec<u8>> {
    let f = arp::request(mac, u32::from(ipa(ip)), u32::from(ipa("10.0.0.2")));
    h.send(0, &f, now);
    h.recv(0)
}

fn is_arp_request_for(f: &[u8], ip: &str) -> bool {
    arp::parse(f).is_ok_and(|a| a.op == arp::REQUEST && a.tpa == u32::from(ipa(ip)))
}

/// The one DHCP reply among `out` (the rest ARP).
fn the_reply(out: &[Vec<u8>]) -> super::tests::Reply {
    let dhcp: Vec<&Vec<u8>> = out.iter().filter(|f| f[12..14] == [8, 0]).collect();
    assert_eq!(dhcp.len(), 1, "{out:?}");
    parse_reply(dhcp[0])
}

#[test]
fn a_relayed_discover_is_served_from_the_giaddr_subnet_and_answered_to_the_relay() {
    let (mut h, stats) = server_with(relayed_config());
    h.send(
        0,
        &frame(&relayed(DhcpMessageType::Discover, 1, "10.1.0.1")),
        t(0),
    );
    // The gateway's MAC is not known yet: the offer waits for ARP.
    let out = h.recv(0);
    assert_eq!(out.len(), 1);
    assert!(is_arp_request_for(&out[0], GW), "{out:?}");
    assert_eq!(stats.arp_requests.get(), 1);
    let offer = the_reply(&announce(&mut h, RELAY_MAC, GW, t(0)));
    assert_eq!(offer.ty, u8::from(DhcpMessageType::Offer));
    assert_eq!(offer.eth_dst, RELAY_MAC, "to the gateway's MAC");
    assert_eq!(
        (offer.ip_src, offer.ip_dst, offer.udp_dst),
        (ipa("10.0.0.2"), ipa("10.1.0.1"), 67),
        "from the server to the relay's port 67"
    );
    assert_eq!(offer.yiaddr, ipa("10.1.0.50"), "from the giaddr's pool");
    assert_eq!((offer.giaddr, offer.hops), (ipa("10.1.0.1"), 0));
    let o = &offer.options;
    assert_eq!(o[&1], vec![255, 255, 255, 0]);
    assert_eq!(o[&3], vec![10, 1, 0, 1], "the subnet's router");
    assert_eq!(o[&6], vec![10, 1, 0, 53]);
    assert_eq!(o[&15], b"far.example".to_vec());
    assert_eq!(o[&51], 300u32.to_be_bytes().to_vec(), "the subnet's lease");
    assert_eq!(o[&54], vec![10, 0, 0, 2]);
    assert!(!o.contains_key(&42), "the server's own subnet's option");
    // The REQUEST: acknowledged at once, the gateway now known.
    let mut req = relayed(DhcpMessageType::Request, 1, "10.1.0.1");
    req.requested = Some("10.1.0.50");
    req.server = Some("10.0.0.2");
    let ack = exchange(&mut h, &req, t(1)).expect("ack");
    assert_eq!((ack.ty, ack.yiaddr), (5, ipa("10.1.0.50")));
    assert_eq!(
        (ack.eth_dst, ack.ip_dst, ack.udp_dst),
        (RELAY_MAC, ipa("10.1.0.1"), 67)
    );
    // Another relayed subnet, and the server's own segment, each from its own pool.
    let r = exchange(
        &mut h,
        &relayed(DhcpMessageType::Discover, 2, "10.2.0.1"),
        t(2),
    );
    assert_eq!(r.expect("offer").yiaddr, ipa("10.2.0.50"));
    let r = exchange(&mut h, &msg(DhcpMessageType::Discover, 3), t(3)).expect("offer");
    assert_eq!(
        (r.yiaddr, r.udp_dst, r.giaddr),
        (ipa("10.0.0.100"), 68, ipa("0.0.0.0"))
    );
    assert_eq!(r.options[&3], vec![10, 0, 0, 1]);
    assert_eq!(stats.relayed.get(), 3);
    assert_eq!(stats.arp_requests.get(), 1);
    assert_eq!(h.pool().available(), POOL);
}

#[test]
fn a_relay_on_no_served_subnet_is_dropped_as_no_subnet() {
    let (mut h, stats) = server_with(relayed_config());
    let m = relayed(DhcpMessageType::Discover, 1, "10.9.0.1");
    assert!(exchange(&mut h, &m, t(0)).is_none());
    assert_eq!(h.node_drops(DropReason::NoSubnet), 1);
    assert_eq!((stats.relayed.get(), stats.discovers.get()), (1, 0));
    assert_eq!(h.pool().available(), POOL);
}

#[test]
fn a_relay_on_the_servers_own_segment_is_answered_directly() {
    // What perfdhcp does: it relays from its own address, next to the server.
    let (mut h, _stats) = server_with(config());
    h.send(
        0,
        &frame(&relayed(DhcpMessageType::Discover, 1, "10.0.0.7")),
        t(0),
    );
    let out = h.recv(0);
    assert!(is_arp_request_for(&out[0], "10.0.0.7"), "the relay itself");
    let relay = MacAddr([0x02, 0, 0, 0, 0, 0x77]);
    let offer = the_reply(&announce(&mut h, relay, "10.0.0.7", t(0)));
    assert_eq!(
        (offer.eth_dst, offer.ip_dst, offer.udp_dst),
        (relay, ipa("10.0.0.7"), 67)
    );
    assert_eq!(offer.yiaddr, ipa("10.0.0.100"));
    assert_eq!(offer.options[&42], vec![10, 0, 0, 1]);
}

#[test]
fn a_nak_through_a_relay_has_the_broadcast_bit_and_goes_to_the_relay() {
    let (mut h, stats) = server_with(relayed_config());
    announce(&mut h, RELAY_MAC, GW, t(0));
    // INIT-REBOOT with an address of another subnet: the client moved.
    let mut m = relayed(DhcpMessageType::Request, 1, "10.1.0.1");
    m.requested = Some("10.2.0.50");
    let nak = exchange(&mut h, &m, t(1)).expect("nak");
    assert_eq!(nak.ty, 6);
    assert!(nak.broadcast, "the relay broadcasts it (RFC 2131 4.3.2)");
    assert_eq!(
        (nak.eth_dst, nak.ip_dst, nak.udp_dst),
        (RELAY_MAC, ipa("10.1.0.1"), 67)
    );
    assert_eq!(stats.naks.get(), 1);
}

#[test]
fn a_relays_agent_information_comes_back_as_the_last_option() {
    let (mut h, _stats) = server_with(relayed_config());
    announce(&mut h, RELAY_MAC, GW, t(0));
    let info = [1u8, 4, b'p', b'o', b'r', b't', 2, 2, 0, 7];
    let mut m = relayed(DhcpMessageType::Discover, 1, "10.1.0.1");
    m.relay_info = Some(&info);
    let offer = exchange(&mut h, &m, t(1)).expect("offer");
    assert_eq!(offer.options[&82], info.to_vec());
    assert_eq!(offer.order.last(), Some(&82), "{:?}", offer.order);
    // Even when the server's options fill the client's 576 bytes, the relay's fits behind.
    let mut cfg = relayed_config();
    cfg.subnets[0].options = vec![(200, vec![7; 200]), (201, vec![8; 40])];
    let (mut h, _stats) = server_with(cfg);
    announce(&mut h, RELAY_MAC, GW, t(0));
    let big = [9u8; 255];
    m.relay_info = Some(&big);
    let offer = exchange(&mut h, &m, t(1)).expect("offer");
    assert_eq!(offer.options[&82], big.to_vec());
}

#[test]
fn a_client_renewing_from_another_subnet_is_answered_through_the_gateway() {
    let (mut h, _stats) = server_with(relayed_config());
    announce(&mut h, RELAY_MAC, GW, t(0));
    let offer = exchange(
        &mut h,
        &relayed(DhcpMessageType::Discover, 1, "10.1.0.1"),
        t(1),
    );
    let a = offer.expect("offer").yiaddr.to_string();
    let mut req = relayed(DhcpMessageType::Request, 1, "10.1.0.1");
    req.requested = Some(&a);
    req.server = Some("10.0.0.2");
    exchange(&mut h, &req, t(1)).expect("ack");
    // RENEWING: unicast from the client's address, no relay on the way.
    let mut renew = msg(DhcpMessageType::Request, 1);
    renew.ciaddr = &a;
    renew.dst_ip = "10.0.0.2";
    let ack = exchange(&mut h, &renew, t(150)).expect("ack");
    assert_eq!((ack.ty, ack.yiaddr), (5, ipa(&a)));
    assert_eq!(
        (ack.eth_dst, ack.ip_dst, ack.udp_dst),
        (RELAY_MAC, ipa(&a), 68),
        "to the client's address, through the gateway"
    );
    assert_eq!(
        ack.options[&51],
        300u32.to_be_bytes().to_vec(),
        "its subnet's lease"
    );
}

#[test]
fn without_a_gateway_a_reply_to_another_subnet_is_no_route() {
    let mut cfg = relayed_config();
    cfg.gateway = None;
    let (mut h, _stats) = server_with(cfg);
    assert!(exchange(
        &mut h,
        &relayed(DhcpMessageType::Discover, 1, "10.1.0.1"),
        t(0)
    )
    .is_none());
    assert_eq!(h.node_drops(DropReason::NoRoute), 1);
    assert_eq!(h.pool().available(), POOL);
}

#[test]
fn a_gateway_that_never_answers_leaves_the_reply_dropped_as_arp_failed() {
    let (mut h, stats) = server_with(relayed_config());
    h.send(
        0,
        &frame(&relayed(DhcpMessageType::Discover, 1, "10.1.0.1")),
        t(0),
    );
    // A second reply waits behind the first; neither asks again.
    h.send(
        0,
        &frame(&relayed(DhcpMessageType::Discover, 2, "10.1.0.1")),
        t(0),
    );
    assert_eq!(h.recv(0).len(), 1, "one ARP request");
    for s in 1..=4 {
        h.tick(t(s));
    }
    let retries = h.recv(0);
    assert!(retries.iter().all(|f| is_arp_request_for(f, GW)));
    assert_eq!(retries.len(), 2, "three requests in all");
    assert_eq!(stats.arp_requests.get(), 3);
    assert_eq!(h.node_drops(DropReason::ArpFailed), 2);
    assert_eq!(h.pool().available(), POOL);
}

#[test]
fn a_server_of_relayed_subnets_only_serves_no_one_on_its_own_segment() {
    let mut cfg = relayed_config();
    cfg.own.pools.clear();
    cfg.reservations.clear();
    let (mut h, _stats) = server_with(cfg);
    assert!(exchange(&mut h, &msg(DhcpMessageType::Discover, 1), t(0)).is_none());
    assert_eq!(h.node_drops(DropReason::NoSubnet), 1);
    announce(&mut h, RELAY_MAC, GW, t(0));
    let r = exchange(
        &mut h,
        &relayed(DhcpMessageType::Discover, 1, "10.1.0.1"),
        t(1),
    );
    assert_eq!(r.expect("offer").yiaddr, ipa("10.1.0.50"));
}

#[test]
fn leases_in_relayed_subnets_are_kept_across_a_restart() {
    let lease = |ip: &str, n: u8| Lease {
        mac: mac(n),
        client_id: None,
        ip: ipa(ip),
        expires_unix: 1_700_000_000 + 10_000,
        hostname: None,
    };
    let known = vec![lease("10.1.0.50", 1), lease("10.9.0.5", 2)];
    let s = DhcpServer::new(relayed_config(), known, None);
    assert_eq!(
        s.leases().iter().map(|l| l.ip).collect::<Vec<_>>(),
        [ipa("10.1.0.50")],
        "a lease in no subnet served is dropped"
    );
    let mut h = Harness::new(Box::new(s), 1, POOL);
    announce(&mut h, RELAY_MAC, GW, t(0));
    // Another client does not get it; its owner does.
    let r = exchange(
        &mut h,
        &relayed(DhcpMessageType::Discover, 3, "10.1.0.1"),
        t(1),
    );
    assert_eq!(r.expect("offer").yiaddr, ipa("10.1.0.51"));
    let r = exchange(
        &mut h,
        &relayed(DhcpMessageType::Discover, 1, "10.1.0.1"),
        t(2),
    );
    assert_eq!(r.expect("offer").yiaddr, ipa("10.1.0.50"));
}

#[test]
fn a_reservation_applies_in_its_own_subnet_only() {
    let mut cfg = relayed_config();
    cfg.reservations = vec![(mac(9), ipa("10.1.0.60"))];
    let (mut h, _stats) = server_with(cfg);
    announce(&mut h, RELAY_MAC, GW, t(0));
    let r = exchange(
        &mut h,
        &relayed(DhcpMessageType::Discover, 9, "10.1.0.1"),
        t(1),
    );
    assert_eq!(r.expect("offer").yiaddr, ipa("10.1.0.60"));
    let r = exchange(&mut h, &msg(DhcpMessageType::Discover, 9), t(2)).expect("offer");
    assert_eq!(
        r.yiaddr,
        ipa("10.0.0.100"),
        "on the server's own segment: its pool"
    );
    let r = exchange(
        &mut h,
        &relayed(DhcpMessageType::Discover, 9, "10.2.0.1"),
        t(3),
    );
    assert_eq!(r.expect("offer").yiaddr, ipa("10.2.0.50"));
    // Its INIT-REBOOT in the other subnet is not held against the reservation.
    let mut m = relayed(DhcpMessageType::Request, 9, "10.2.0.1");
    m.requested = Some("10.2.0.50");
    assert_eq!(exchange(&mut h, &m, t(4)).expect("ack").ty, 5);
}

#[test]
fn arp_for_the_server_is_answered_and_what_is_not_for_it_is_not_learned() {
    let (mut h, _stats) = server_with(relayed_config());
    // A request between two others teaches nothing (RFC 826 learns only what is for us).
    let f = arp::request(RELAY_MAC, u32::from(ipa(GW)), u32::from(ipa("10.0.0.9")));
    h.send(0, &f, t(0));
    assert!(h.recv(0).is_empty());
    h.send(
        0,
        &frame(&relayed(DhcpMessageType::Discover, 1, "10.1.0.1")),
        t(0),
    );
    let out = h.recv(0);
    assert!(is_arp_request_for(&out[0], GW), "still unknown");
    // Its reply (addressed to the server) resolves it.
    let mut reply = arp::request(RELAY_MAC, u32::from(ipa(GW)), u32::from(ipa("10.0.0.2")));
    reply[21] = 2;
    reply[32..38].copy_from_slice(&SRV_MAC.0);
    h.send(0, &reply, t(0));
    let offer = the_reply(&h.recv(0));
    assert_eq!(offer.eth_dst, RELAY_MAC);
    assert_eq!(h.node_drops(DropReason::NotForUs), 1);
}
