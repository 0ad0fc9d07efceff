//! The closed set of reasons a packet is dropped. Every drop is counted under one of these,
//! per port or node, per worker; the names are the `reason` label later exported to metrics.

/// Why a packet was dropped. Adding a variant means documenting it and making a test make it
/// happen.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum DropReason {
    /// Shorter than an Ethernet header (14 bytes), or a VLAN tag cut off.
    Runt,
    /// Longer than the port's MTU allows (MTU + Ethernet header + one VLAN tag), or than a
    /// packet buffer holds.
    Oversize,
    /// A header field that is not allowed where it is, e.g. a multicast source MAC.
    BadHeader,
    /// The frame's VLAN is not allowed on the attachment it came in on or would go out of
    /// (a tagged frame on an access attachment, a VLAN outside a trunk's list, an untagged
    /// frame on a trunk without a native VLAN).
    VlanDenied,
    /// The destination was learned on the attachment the frame came in on; a switch never
    /// sends a frame back where it came from.
    Hairpin,
    /// A switch had nowhere to send the frame: no other attachment is in its VLAN.
    NoDestination,
    /// The packet pool was empty (receiving, or copying a frame to flood it).
    NoBuffers,
    /// The port's transmit queue was full (the kernel answered EAGAIN/ENOBUFS, or a ring was
    /// full).
    TxFull,
    /// The port is down or gone (its TAP device was deleted, or its link is down).
    PortDown,
    /// The port refused the frame for another reason (an unexpected error from the kernel).
    TxError,
    /// A node sent the packet to a gate that no link is wired to.
    Unwired,
    /// A node's input queue was full in one graph run (more than a burst queued for it).
    QueueFull,
    /// A node returned without giving the packet a verdict: a bug in nfv, counted so it
    /// cannot hide.
    Internal,
    /// An IPv4 header checksum did not verify.
    BadChecksum,
    /// The frame was not for this function: another unicast MAC address, or an IP packet to
    /// the function's own address that it does not serve (a protocol or port it has no
    /// service on).
    NotForUs,
    /// A router had no route to the destination (an ICMP destination unreachable is sent,
    /// within its rate limit), or a DHCP server without a `gateway` had a reply for another
    /// subnet.
    NoRoute,
    /// The packet's TTL ran out at a router (an ICMP time exceeded is sent, within its rate
    /// limit).
    TtlExceeded,
    /// The packet is larger than the outgoing interface's MTU and may not be fragmented
    /// (an ICMP fragmentation needed is sent, within its rate limit).
    TooBig,
    /// More packets waited for the same unresolved next hop than its ARP queue holds.
    ArpQueueFull,
    /// The next hop never answered ARP: the packets that waited for it are dropped (a
    /// router's, or a DHCP server's replies to a relay).
    ArpFailed,
    /// A DHCP server had no free address in its pool for a client (no offer is made).
    PoolExhausted,
    /// A firewall rule (or a direction's default) said `drop`.
    FwDenied,
    /// A firewall rule (or default) said `reject`: the packet is dropped and answered with a
    /// TCP RST or an ICMP port unreachable (within the firewall's rate limit for answers;
    /// past it, unanswered).
    FwRejected,
    /// A new connection found the connection tracker's table full (and no idle or
    /// half-open entry to evict), so it was not let through.
    ConntrackFull,
    /// A NAT had no free outside port (or ICMP identifier) left for a new flow.
    NatNoPorts,
    /// A NAT got a packet for one of its outside addresses that matches no session and no
    /// port forward (and the address is not a router's, which would take it).
    NatNoSession,
    /// A guest's descriptor could not be used: its buffer lies (partly) outside the memory
    /// the guest shared, it has the wrong direction (a device-writable buffer in a transmit
    /// chain, a read-only one in a receive chain), or it names an unusable indirect table. The
    /// chain goes back to the guest used with length 0.
    GuestBadDescriptor,
    /// A guest's descriptor chain is malformed: it loops, runs longer than its table, points
    /// outside its table, is shorter than its virtio-net header, or (without mergeable
    /// receive buffers) cannot hold the frame; or the ring's available index claims more
    /// entries than the ring has, so it cannot move. The chain goes back used with length 0.
    GuestBadChain,
    /// The packet had entered [`HOP_LIMIT`](crate::packet::HOP_LIMIT) more nodes after its
    /// graph run began counting hops, or the run had used up its work budget: it was going round a loop of
    /// switches (two links between the same switches, a ring), which nfv contains because it
    /// has no spanning tree. Counted at the node it was about to enter.
    HopLimit,
    /// A fragment a NAT or firewall held until its datagram's first fragment came (it
    /// came first, out of order) was still waiting when the datagram's entry expired: the
    /// first fragment never came in time.
    FragmentTimeout,
    /// A NAT's or firewall's fragment table had no room: for another datagram, or for
    /// another fragment held (out of order) for its datagram, or in all.
    FragmentsFull,
    /// A DHCP server got a request it serves no subnet for: relayed from a `giaddr` in none
    /// of its subnets, or from its own segment when it hands out no address there.
    NoSubnet,
    /// A DHCP relay got a request that had already crossed more than 16 relays (its `hops`
    /// field, RFC 1542 §4.1.1): relays sending it round in a loop.
    RelayHops,
}

impl DropReason {
    /// Number of variants: the length of per-reason counter arrays.
    pub const COUNT: usize = 33;

    /// Every variant, in order of their indices.
    pub const ALL: [DropReason; Self::COUNT] = [
        DropReason::Runt,
        DropReason::Oversize,
        DropReason::BadHeader,
        DropReason::VlanDenied,
        DropReason::Hairpin,
        DropReason::NoDestination,
        DropReason::NoBuffers,
        DropReason::TxFull,
        DropReason::PortDown,
        DropReason::TxError,
        DropReason::Unwired,
        DropReason::QueueFull,
        DropReason::Internal,
        DropReason::BadChecksum,
        DropReason::NotForUs,
        DropReason::NoRoute,
        DropReason::TtlExceeded,
        DropReason::TooBig,
        DropReason::ArpQueueFull,
        DropReason::ArpFailed,
        DropReason::PoolExhausted,
        DropReason::FwDenied,
        DropReason::FwRejected,
        DropReason::ConntrackFull,
        DropReason::NatNoPorts,
        DropReason::NatNoSession,
        DropReason::GuestBadDescriptor,
        DropReason::GuestBadChain,
        DropReason::HopLimit,
        DropReason::FragmentTimeout,
        DropReason::FragmentsFull,
        DropReason::NoSubnet,
        DropReason::RelayHops,
    ];

    /// Index into a per-reason counter array.
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }

    /// The reason's name in snake case, as used in logs and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Runt => "runt",
            DropReason::Oversize => "oversize",
            DropReason::BadHeader => "bad_header",
            DropReason::VlanDenied => "vlan_denied",
            DropReason::Hairpin => "hairpin",
            DropReason::NoDestination => "no_destination",
            DropReason::NoBuffers => "no_buffers",
            DropReason::TxFull => "tx_full",
            DropReason::PortDown => "port_down",
            DropReason::TxError => "tx_error",
            DropReason::Unwired => "unwired",
            DropReason::QueueFull => "queue_full",
            DropReason::Internal => "internal",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::NotForUs => "not_for_us",
            DropReason::NoRoute => "no_route",
            DropReason::TtlExceeded => "ttl_exceeded",
            DropReason::TooBig => "too_big",
            DropReason::ArpQueueFull => "arp_queue_full",
            DropReason::ArpFailed => "arp_failed",
            DropReason::PoolExhausted => "pool_exhausted",
            DropReason::FwDenied => "fw_denied",
            DropReason::FwRejected => "fw_rejected",
            DropReason::ConntrackFull => "conntrack_full",
            DropReason::NatNoPorts => "nat_no_ports",
            DropReason::NatNoSession => "nat_no_session",
            DropReason::GuestBadDescriptor => "guest_bad_descriptor",
            DropReason::GuestBadChain => "guest_bad_chain",
            DropReason::HopLimit => "hop_limit",
            DropReason::FragmentTimeout => "fragment_timeout",
            DropReason::FragmentsFull => "fragments_full",
            DropReason::NoSubnet => "no_subnet",
            DropReason::RelayHops => "relay_hops",
        }
    }
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_variant_at_its_index() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r}");
        }
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
    }
}
