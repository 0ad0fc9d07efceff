//! From a validated topology to what runs: the wiring of ports and function gates, the TAP
//! devices to create and the lab hosts to set up.
//!
//! Gates: a switch's named attachments take gates 0..n in the order they are declared;
//! every bare mention of the switch in `links` then adds one anonymous access attachment in
//! the switch's default VLAN (a switch in the middle of a chain gets one for each side).
//! A nat or firewall has two gates: 0 `inside`, 1 `outside`; in the middle of a chain the
//! wire to the left neighbour takes gate 0 and the wire to the right one gate 1.

use std::collections::HashMap;
use std::fmt::Write as _;

use nfv_dataplane::graph::GraphError;
use nfv_dataplane::port::PortSettings;
use nfv_dataplane::{Endpoint, Gate, MacAddr, NodeId, PortId};
use nfv_functions::kind::{BuildContext, Settings, Wiring};

use crate::lab::{netns_name, HostPlan, IfacePlan};
use crate::topology::{LinkEnd, Topology};

/// Directory of lease files when a dhcp-server names none.
pub use nfv_functions::dhcp::LEASE_DIR;

/// A stable, locally administered unicast MAC address for `parts` (topology, function and
/// interface names): the same names give the same address in every run, so hosts' ARP
/// caches and DHCP clients see the same router and server after a restart.
pub fn derived_mac(parts: &[&str]) -> MacAddr {
    nfv_functions::kind::derived_mac(parts)
}

/// One wire: two ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wire {
    /// Left end.
    pub a: Endpoint,
    /// Right end.
    pub b: Endpoint,
    /// The topology line of the link it comes from.
    pub line: usize,
}

/// A topology resolved into ports, functions, wires and lab hosts.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The topology's name.
    pub name: String,
    /// Ports in file order: `PortId(i)` is `ports[i]`. Each is its kind's settings
    /// (`nfv_dataplane::port::PortSpec`), which describe and build it; a TAP that moves into
    /// a lab host has been given the temporary device name it is created as
    /// ([`temp_tap_name`]).
    pub ports: Vec<(String, PortSettings)>,
    /// Functions in file order: `NodeId(i)` is `functions[i]`, with their settings completed
    /// ([`nfv_functions::kind::Spec::complete`]) and gates as their wiring names them.
    pub functions: Vec<(String, Settings)>,
    /// Wires.
    pub wires: Vec<Wire>,
    /// Lab hosts (network namespaces) with the TAP devices that move into them.
    pub hosts: Vec<HostPlan>,
    /// Every function's gates by name, indexed like `functions`, then by gate: the
    /// attachment, interface or side name where the topology gives one, else the name of
    /// what is at the far end of the gate's wire (`-` if nothing is).
    pub gate_names: Vec<Vec<String>>,
}

/// Why a valid topology could not be wired (cases the loader's rules do not cover).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A port or named attachment has one wire end but sits where it would need two.
    #[error("line {line}: `{name}` has a single wire end; it can only be the first or last end of a link")]
    SingleEnd {
        /// The end's name.
        name: String,
        /// The link's line.
        line: usize,
    },
    /// A nat or firewall named bare at the end of a link, where its side must be named.
    #[error("line {line}: `{name}` has two sides; at the end of a link write `{name}.inside` or `{name}.outside`")]
    SideNeeded {
        /// The function's name.
        name: String,
        /// The link's line.
        line: usize,
    },
    /// A link names something the topology does not have (the loader normally catches
    /// this first).
    #[error("line {line}: `{name}` does not exist")]
    Unknown {
        /// The name.
        name: String,
        /// The link's line.
        line: usize,
    },
    /// The graph refused a wire.
    #[error("line {line}: {source}")]
    Graph {
        /// The link's line.
        line: usize,
        /// What went wrong.
        source: GraphError,
    },
}

/// Name of the temporary root-namespace device of the `index`th host TAP of process `pid`
/// (at most 15 bytes: `nfv` + 7-digit pid + `.` + index).
pub fn temp_tap_name(pid: u32, index: usize) -> String {
    format!("nfv{}.{}", pid % 10_000_000, index % 1000)
}

impl Plan {
    /// Resolve `topo`; host TAPs get temporary device names derived from `pid`.
    pub fn new(topo: &Topology, pid: u32) -> Result<Plan, PlanError> {
        let port_ids: HashMap<&str, PortId> = topo
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.as_str(), PortId(i as u16)))
            .collect();
        let node_ids: HashMap<&str, NodeId> = topo
            .functions
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.as_str(), NodeId(i as u16)))
            .collect();

        // Named attachments first, then one anonymous attachment per bare mention per side.
        let mut functions: Vec<(String, Settings)> = Vec::new();
        let mut named: HashMap<(&str, String), Gate> = HashMap::new();
        // Each function's wiring as completed (a bare mention adds a gate below but changes
        // none of its other fields): computed once, not once per link end.
        let mut wirings = Vec::with_capacity(topo.functions.len());
        for f in &topo.functions {
            let mut settings = f.settings.clone();
            settings.0.complete(&BuildContext {
                topology: &topo.name,
                function: &f.name,
                leases: None,
            });
            let wiring = settings.0.wiring();
            for (g, gate) in wiring
                .gates
                .iter()
                .enumerate()
                .filter(|(_, g)| !g.is_empty())
            {
                named.insert((f.name.as_str(), gate.clone()), Gate(g as u16));
            }
            wirings.push(wiring);
            functions.push((f.name.clone(), settings));
        }
        // The cross-kind hook: a router interface a nat masquerades to is that nat's outside.
        for f in &topo.functions {
            let Some(m) = f.settings.0.masquerade() else {
                continue;
            };
            let (router, iface) = (&m.router, &m.interface);
            let unknown = || PlanError::Unknown {
                name: format!("{router}.{iface}"),
                line: f.line,
            };
            let id = node_ids.get(router.as_str()).ok_or_else(unknown)?;
            if !functions[id.index()].1 .0.masqueraded_on(iface) {
                return Err(unknown());
            }
        }
        let mut wires = Vec::new();
        for link in &topo.links {
            let n = link.ends.len();
            let unknown = |name: &str| {
                let e = PlanError::Unknown {
                    name: name.to_string(),
                    line: link.line,
                };
                move || e
            };
            // The endpoint of end `i` facing the wire to its right neighbour (`right`) or to
            // its left one.
            let resolve =
                |end: &LinkEnd, i: usize, right: bool, functions: &mut Vec<(String, Settings)>| {
                    let middle = i > 0 && i + 1 < n;
                    match end {
                        LinkEnd::Port(p) => {
                            if middle {
                                return Err(PlanError::SingleEnd {
                                    name: p.clone(),
                                    line: link.line,
                                });
                            }
                            port_ids
                                .get(p.as_str())
                                .map(|&id| Endpoint::Port(id))
                                .ok_or_else(unknown(p))
                        }
                        LinkEnd::Function {
                            name,
                            attachment: Some(a),
                        } => {
                            if middle {
                                return Err(PlanError::SingleEnd {
                                    name: format!("{name}.{a}"),
                                    line: link.line,
                                });
                            }
                            let id = node_ids.get(name.as_str()).ok_or_else(unknown(name))?;
                            let gate = named
                                .get(&(name.as_str(), a.clone()))
                                .ok_or_else(unknown(&format!("{name}.{a}")))?;
                            Ok(Endpoint::Node(*id, *gate))
                        }
                        LinkEnd::Function {
                            name,
                            attachment: None,
                        } => {
                            let id = *node_ids.get(name.as_str()).ok_or_else(unknown(name))?;
                            let settings = &mut functions[id.index()].1;
                            let wiring = &wirings[id.index()];
                            if wiring.single {
                                Ok(Endpoint::Node(id, Gate(0)))
                            } else if wiring.grows {
                                Ok(Endpoint::Node(id, Gate(settings.0.add_gate())))
                            } else {
                                match wiring.through {
                                    Some((left, right_gate)) if middle => Ok(Endpoint::Node(
                                        id,
                                        Gate(if right { right_gate } else { left }),
                                    )),
                                    // Linked by gate name only (a router's interfaces).
                                    None => Err(PlanError::SingleEnd {
                                        name: name.clone(),
                                        line: link.line,
                                    }),
                                    _ => Err(PlanError::SideNeeded {
                                        name: name.clone(),
                                        line: link.line,
                                    }),
                                }
                            }
                        }
                    }
                };
            for i in 0..n.saturating_sub(1) {
                let a = resolve(&link.ends[i], i, true, &mut functions)?;
                let b = resolve(&link.ends[i + 1], i + 1, false, &mut functions)?;
                wires.push(Wire {
                    a,
                    b,
                    line: link.line,
                });
            }
        }

        let mut ports = Vec::new();
        let mut host_index = 0;
        let mut tap_device = HashMap::new();
        for p in &topo.ports {
            let mut plan = p.settings.clone();
            // The lab's hook: a host's TAP is created under a temporary name, then moved
            // into the host and renamed; a root TAP is created under its own.
            if let Some(tap) = plan.0.tap_mut() {
                if tap.host.is_some() {
                    tap.device = temp_tap_name(pid, host_index);
                    host_index += 1;
                }
                tap_device.insert(p.name.as_str(), tap.device.clone());
            }
            ports.push((p.name.clone(), plan));
        }

        let mtu_of: HashMap<&str, u16> = topo
            .ports
            .iter()
            .map(|p| (p.name.as_str(), p.settings.0.mtu()))
            .collect();
        let ipv6 = topo.ipv6();
        let hosts = topo
            .hosts
            .iter()
            .map(|h| HostPlan {
                name: h.name.clone(),
                netns: h
                    .netns
                    .clone()
                    .unwrap_or_else(|| netns_name(&topo.name, &h.name)),
                gateway: h.gateway,
                gateway6: h.gateway6,
                ipv6: h.ipv6.unwrap_or(ipv6),
                interfaces: h
                    .interfaces
                    .iter()
                    .map(|i| IfacePlan {
                        tap: tap_device.get(i.port.as_str()).cloned().unwrap_or_default(),
                        ifname: i.ifname.clone(),
                        mtu: mtu_of
                            .get(i.port.as_str())
                            .copied()
                            .unwrap_or(nfv_dataplane::port::kind::DEFAULT_MTU),
                        mac: i.mac,
                        address: i.address,
                        addresses6: i.addresses6.clone(),
                    })
                    .collect(),
            })
            .collect();

        let mut gate_names: Vec<Vec<String>> = functions
            .iter()
            .map(|(_, f)| vec![String::new(); f.gates()])
            .collect();
        for ((function, gate_name), gate) in &named {
            if let Some(slot) = node_ids
                .get(function)
                .and_then(|n| gate_names.get_mut(n.index()))
                .and_then(|g| g.get_mut(gate.index()))
            {
                slot.clone_from(gate_name);
            }
        }
        for w in &wires {
            for (end, far) in [(w.a, w.b), (w.b, w.a)] {
                let Endpoint::Node(n, g) = end else { continue };
                let far_name = match far {
                    Endpoint::Port(p) => ports.get(p.index()).map(|(n, _)| n.clone()),
                    Endpoint::Node(m, _) => functions.get(m.index()).map(|(n, _)| n.clone()),
                };
                if let Some(slot) = gate_names
                    .get_mut(n.index())
                    .and_then(|gs| gs.get_mut(g.index()))
                {
                    if slot.is_empty() {
                        *slot = far_name.unwrap_or_default();
                    }
                }
            }
        }
        for slot in gate_names.iter_mut().flatten() {
            if slot.is_empty() {
                *slot = "-".to_string();
            }
        }

        Ok(Plan {
            name: topo.name.clone(),
            ports,
            functions,
            wires,
            hosts,
            gate_names,
        })
    }

    /// Check the wires as the graph will: every end exists and has at most one wire.
    pub fn check_wires(&self) -> Result<(), PlanError> {
        let mut seen = std::collections::HashSet::new();
        for w in &self.wires {
            for e in [w.a, w.b] {
                let exists = match e {
                    Endpoint::Port(p) => p.index() < self.ports.len(),
                    Endpoint::Node(n, g) => self
                        .functions
                        .get(n.index())
                        .is_some_and(|(_, f)| g.index() < f.gates()),
                };
                let source = if !exists {
                    GraphError::NoSuchEndpoint(e)
                } else if !seen.insert(e) {
                    GraphError::AlreadyWired(e)
                } else {
                    continue;
                };
                return Err(PlanError::Graph {
                    line: w.line,
                    source,
                });
            }
        }
        Ok(())
    }

    /// The name of gate `gate` of function `node` (see [`Plan::gate_names`]).
    pub fn gate_name(&self, node: NodeId, gate: Gate) -> String {
        self.gate_names
            .get(node.index())
            .and_then(|g| g.get(gate.index()))
            .cloned()
            .unwrap_or_else(|| gate.to_string())
    }

    /// The wire end an operator names: a port (`lan1`), or a function's gate by name or
    /// number (`gw.lan`, `nat.outside`, `sw.2`). `None` if there is no such thing.
    pub fn find_end(&self, name: &str) -> Option<Endpoint> {
        if let Some(i) = self.ports.iter().position(|(n, _)| n == name) {
            return Some(Endpoint::Port(PortId(i as u16)));
        }
        let (function, gate) = name.split_once('.')?;
        let n = self.functions.iter().position(|(f, _)| f == function)?;
        let gates = self.gate_names.get(n)?;
        let g = match gates.iter().position(|g| g == gate) {
            Some(g) => g,
            None => gate.parse::<usize>().ok().filter(|&g| g < gates.len())?,
        };
        Some(Endpoint::Node(NodeId(n as u16), Gate(g as u16)))
    }

    /// The port named `name`.
    pub fn port_id(&self, name: &str) -> Option<PortId> {
        self.ports
            .iter()
            .position(|(n, _)| n == name)
            .map(|i| PortId(i as u16))
    }

    /// A wire end for people: `lan1`, `gw.lan`.
    pub fn end_label(&self, e: Endpoint) -> String {
        match e {
            Endpoint::Port(p) => self
                .ports
                .get(p.index())
                .map_or_else(|| p.to_string(), |(n, _)| n.clone()),
            Endpoint::Node(n, g) => format!(
                "{}.{}",
                self.functions
                    .get(n.index())
                    .map_or_else(|| n.to_string(), |(f, _)| f.clone()),
                self.gate_name(n, g)
            ),
        }
    }

    /// Names of the namespaces this plan creates.
    pub fn netns_names(&self) -> Vec<String> {
        self.hosts.iter().map(|h| h.netns.clone()).collect()
    }

    /// TAP devices that stay in the root namespace: (port name, device, MTU).
    fn root_taps(&self) -> impl Iterator<Item = (&String, &String, u16)> {
        self.ports.iter().filter_map(|(name, p)| {
            let tap = p.0.tap().filter(|t| t.host.is_none())?;
            Some((name, &tap.device, tap.mtu))
        })
    }

    /// Names of TAP devices that stay in the root namespace.
    pub fn root_devices(&self) -> Vec<(String, u16)> {
        self.root_taps()
            .map(|(_, device, mtu)| (device.clone(), mtu))
            .collect()
    }

    /// Root-namespace TAP devices of the ports that are not in `kept` (by port name).
    pub fn root_devices_outside(&self, kept: &std::collections::HashSet<String>) -> Vec<String> {
        self.root_taps()
            .filter(|(name, ..)| !kept.contains(*name))
            .map(|(_, device, _)| device.clone())
            .collect()
    }

    /// End `e` as `describe` writes it; `wirings` holds each function's wiring.
    fn end_name(&self, e: Endpoint, wirings: &[Wiring]) -> String {
        match e {
            Endpoint::Port(p) => self.ports[p.index()].0.clone(),
            Endpoint::Node(n, g) => {
                let name = &self.functions[n.index()].0;
                let wiring = &wirings[n.index()];
                // Fixed gates by name (`nat[inside]`); those the settings declare (a
                // router's interfaces, a switch's attachments) or a bare mention added by
                // index, as the gate list above numbers them.
                if wiring.grows || wiring.single || wiring.declared_under.is_some() {
                    format!("{name}[{g}]")
                } else {
                    let gate = wiring.gates.get(g.index()).map_or("?", String::as_str);
                    format!("{name}[{gate}]")
                }
            }
        }
    }

    /// The graph, for people: hosts, ports, functions with their gates, and wires.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "topology {}", self.name);
        if !self.hosts.is_empty() {
            let _ = writeln!(s, "hosts:");
            for h in &self.hosts {
                let gw: String = h
                    .gateway
                    .map(|g| g.to_string())
                    .into_iter()
                    .chain(h.gateway6.map(|g| g.to_string()))
                    .map(|g| format!(" gateway {g}"))
                    .collect();
                let v6 = if h.ipv6 { ", ipv6" } else { "" };
                let _ = writeln!(s, "  {:<12} netns {}{}{v6}", h.name, h.netns, gw);
                for i in &h.interfaces {
                    let addrs: Vec<String> = i
                        .address
                        .map(|a| a.to_string())
                        .into_iter()
                        .chain(i.addresses6.iter().map(|a| a.to_string()))
                        .collect();
                    let addr = if addrs.is_empty() {
                        "-".to_string()
                    } else {
                        addrs.join(" ")
                    };
                    let _ = writeln!(s, "    {:<6} {:<18} mtu {}", i.ifname, addr, i.mtu);
                }
            }
        }
        let _ = writeln!(s, "ports:");
        for (i, (name, p)) in self.ports.iter().enumerate() {
            let what = p.0.describe();
            let _ = writeln!(s, "  {i:<3} {name:<12} {what}");
        }
        let _ = writeln!(s, "functions:");
        let wirings: Vec<Wiring> = self.functions.iter().map(|(_, f)| f.0.wiring()).collect();
        for (i, (name, settings)) in self.functions.iter().enumerate() {
            // The kind's first line of description, its gates, then the rest.
            let spec = &settings.0;
            let describe = spec.describe();
            let mut lines = describe.lines();
            let first = lines.next().unwrap_or_default();
            let _ = writeln!(s, "  {i:<3} {name:<12} {first}");
            // A single wire end has no gate to speak of.
            let wiring = &wirings[i];
            for g in (0..wiring.gates.len()).filter(|_| !wiring.single) {
                let _ = writeln!(s, "        [{g}] {}", spec.gate_label(g));
            }
            for line in lines {
                let _ = writeln!(s, "        {line}");
            }
        }
        let _ = writeln!(s, "wires:");
        for w in &self.wires {
            let _ = writeln!(
                s,
                "  {} <-> {}   (line {})",
                self.end_name(w.a, &wirings),
                self.end_name(w.b, &wirings),
                w.line
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfv_functions::firewall::FirewallConfig;
    use nfv_functions::nat::NatSpec;
    use nfv_functions::router::RouterSpec;
    use nfv_functions::switch::{SwitchConfig, SwitchSpec, VlanMode as SwitchVlan};

    /// The node configuration of function `i`, a switch.
    fn switch(p: &Plan, i: usize) -> SwitchConfig {
        p.functions[i]
            .1
             .0
            .as_any()
            .downcast_ref::<SwitchSpec>()
            .map(SwitchSpec::config)
            .unwrap_or_else(|| panic!("function {i} is not a switch"))
    }
    use std::path::Path;

    fn plan(text: &str) -> Result<Plan, PlanError> {
        let topo =
            crate::topology::load_str(text, Path::new("t.yaml")).unwrap_or_else(|e| panic!("{e}"));
        Plan::new(&topo, 4321)
    }

    const LAB: &str = "\
name: p
hosts:
  h1: { address: 10.0.0.1/24 }
ports:
  a: { kind: tap, host: h1 }
  b: { kind: tap, ifname: nfvb }
  c: { kind: null }
functions:
  sw:
    kind: switch
    vlan: 5
    attachments:
      up: { trunk: [5, 6] }
  sw2: { kind: switch }
links:
  - [a, sw]
  - [b, sw2, sw.up]
  - [c, sw2]
";

    #[test]
    fn named_attachments_come_first_then_one_gate_per_bare_mention() {
        let p = plan(LAB).unwrap_or_else(|e| panic!("{e}"));
        let (n_sw, n_sw2) = (NodeId(0), NodeId(1));
        assert_eq!(
            p.wires.iter().map(|w| (w.a, w.b)).collect::<Vec<_>>(),
            vec![
                (Endpoint::Port(PortId(0)), Endpoint::Node(n_sw, Gate(1))),
                (Endpoint::Port(PortId(1)), Endpoint::Node(n_sw2, Gate(0))),
                (
                    Endpoint::Node(n_sw2, Gate(1)),
                    Endpoint::Node(n_sw, Gate(0))
                ),
                (Endpoint::Port(PortId(2)), Endpoint::Node(n_sw2, Gate(2))),
            ]
        );
        let sw = switch(&p, 0);
        assert_eq!(
            sw.attachments,
            vec![
                SwitchVlan::Trunk {
                    allowed: vec![5, 6],
                    native: None
                },
                SwitchVlan::Access(5),
            ]
        );
        let sw2 = switch(&p, 1);
        assert_eq!(sw2.attachments, vec![SwitchVlan::Access(1); 3]);
    }

    #[test]
    fn host_taps_get_temporary_names_and_root_taps_keep_theirs() {
        let p = plan(LAB).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(temp_tap_name(4321, 0), "nfv4321.0");
        assert!(temp_tap_name(u32::MAX, 999).len() <= 15);
        assert_eq!(p.hosts[0].netns, "nfv-p-h1");
        assert_eq!(p.hosts[0].interfaces[0].tap, "nfv4321.0");
        assert_eq!(p.hosts[0].interfaces[0].ifname, "eth0");
        assert_eq!(p.root_devices(), vec![("nfvb".to_string(), 1500)]);
        assert_eq!(p.netns_names(), vec!["nfv-p-h1".to_string()]);
        let text = p.describe();
        assert!(text.contains("b <-> sw2[0]"), "{text}");
        assert!(text.contains("[0] trunk vlans 5,6"), "{text}");
    }

    const GATEWAY: &str = "\
name: g
ports:
  lan: { kind: null }
  wan: { kind: null }
  dmz: { kind: null }
functions:
  gw:
    kind: router
    interfaces:
      lan: { address: 192.168.1.1/24 }
      wan: { address: 203.0.113.2/24 }
  nat: { kind: nat, masquerade: gw.wan, forwards: [{ proto: tcp, port: 8080, to: 192.168.1.10:80 }] }
  fw: { kind: firewall }
  fw2: { kind: firewall }
  sw: { kind: switch }
links:
  - [lan, gw.lan]
  - [gw.wan, nat, fw, wan]
  - [fw2.outside, dmz]
  - [sw, fw2.inside]
";

    #[test]
    fn two_sided_functions_take_inside_from_the_left_and_outside_to_the_right() {
        let p = plan(GATEWAY).unwrap_or_else(|e| panic!("{e}"));
        let (gw, nat, fw, fw2, sw) = (NodeId(0), NodeId(1), NodeId(2), NodeId(3), NodeId(4));
        let node = |n, g| Endpoint::Node(n, Gate(g));
        assert_eq!(
            p.wires.iter().map(|w| (w.a, w.b)).collect::<Vec<_>>(),
            vec![
                (Endpoint::Port(PortId(0)), node(gw, 0)),
                (node(gw, 1), node(nat, 0)),
                (node(nat, 1), node(fw, 0)),
                (node(fw, 1), Endpoint::Port(PortId(1))),
                (node(fw2, 1), Endpoint::Port(PortId(2))),
                (node(sw, 0), node(fw2, 0)),
            ]
        );
        assert_eq!(
            p.functions
                .iter()
                .map(|(_, f)| f.gates())
                .collect::<Vec<_>>(),
            vec![2, 2, 2, 2, 1]
        );
        let Some(r) = p.functions[0].1 .0.as_any().downcast_ref::<RouterSpec>() else {
            panic!("not a router")
        };
        assert_eq!(
            r.interfaces
                .iter()
                .map(|i| i.nat_outside)
                .collect::<Vec<_>>(),
            vec![false, true]
        );
        let n = p.functions[1].1 .0.as_any().downcast_ref::<NatSpec>();
        let n = n.map(|n| &n.config).unwrap_or_else(|| panic!("not a nat"));
        assert_eq!(n.addresses, vec![std::net::Ipv4Addr::new(203, 0, 113, 2)]);
        assert_eq!(
            p.functions[2]
                .1
                 .0
                .as_any()
                .downcast_ref::<FirewallConfig>(),
            Some(&FirewallConfig::default())
        );
        let text = p.describe();
        for part in [
            "gw[1] <-> nat[inside]",
            "nat[outside] <-> fw[inside]",
            "fw[outside] <-> wan",
            "sw[0] <-> fw2[inside]",
            "nat to 203.0.113.2, ports 1024-65535, 1 forward(s)",
            "forward tcp 203.0.113.2:8080 -> 192.168.1.10:80",
            "inbound: 1 rule(s), default drop",
            "allow state established,related",
            ", nat outside",
        ] {
            assert!(text.contains(part), "no {part:?} in\n{text}");
        }
    }

    #[test]
    fn a_bare_two_sided_function_at_a_link_end_is_refused() {
        // The loader refuses this too; the plan must not trust it blindly.
        let mut topo = crate::topology::load_str(GATEWAY, Path::new("t.yaml"))
            .unwrap_or_else(|e| panic!("{e}"));
        topo.links[2].ends[0] = LinkEnd::Function {
            name: "fw2".into(),
            attachment: None,
        };
        match Plan::new(&topo, 1) {
            Err(e @ PlanError::SideNeeded { .. }) => assert_eq!(
                e.to_string(),
                "line 19: `fw2` has two sides; at the end of a link write `fw2.inside` or `fw2.outside`"
            ),
            other => panic!("expected SideNeeded, got {other:?}"),
        }
    }

    #[test]
    fn a_single_wire_end_in_the_middle_of_a_chain_is_refused() {
        // The loader refuses this too; the plan must not trust it blindly.
        let text = "name: p\nports:\n  a: { kind: null }\n  b: { kind: null }\nfunctions:\n  s: { kind: switch }\nlinks:\n  - [a, s]\n  - [b, s]\n";
        let mut topo =
            crate::topology::load_str(text, Path::new("t.yaml")).unwrap_or_else(|e| panic!("{e}"));
        topo.links[0].ends.insert(1, LinkEnd::Port("b".into()));
        match Plan::new(&topo, 1) {
            Err(PlanError::SingleEnd { name, line }) => assert_eq!((name.as_str(), line), ("b", 8)),
            other => panic!("expected SingleEnd, got {other:?}"),
        }
    }
}
