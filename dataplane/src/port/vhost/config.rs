//! A vhost-user port's settings: what the topology file says, checked. The settings are the
//! port's own [`VhostUserConfig`].

use std::path::PathBuf;

use serde::Deserialize;

use super::{SocketMode, VhostUserConfig, VhostUserPort};
use crate::config::Report;
use crate::port::kind::{self, BuildError, BuiltPort, Claim, PortKind, PortSpec, Traffic};

/// The keys, in the order of [`Raw`]'s fields.
pub(super) const KEYS: &[&str] = &["socket", "mode", "mtu"];

/// The keys as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    socket: Option<String>,
    mode: Option<String>,
    mtu: Option<u32>,
}

/// The longest path a Unix socket's address holds (`sun_path` less its terminating zero).
const MAX_SOCKET_PATH: usize = 107;

impl VhostUserConfig {
    /// Read and check the settings of vhost-user port `name`, reporting every problem (and
    /// keeping the default of a bad value); `None` only if they could not be read.
    pub fn load(name: &str, text: &str, report: &mut dyn Report) -> Option<VhostUserConfig> {
        let raw: Raw = kind::port_settings(&super::VhostUserKind, text, report)?;
        // A jumbo frame reaches a guest that negotiated mergeable receive buffers (Linux
        // and DPDK do); one the guest has no room for is counted and dropped.
        let mtu = kind::mtu(report, "mtu", raw.mtu);
        let mode = match raw.mode.as_deref() {
            None | Some("server") => SocketMode::Server,
            Some("client") => SocketMode::Client,
            Some(m) => {
                report.error("mode", format!("unknown mode `{m}`: expected `server` (nfv creates the socket, the VM connects) or `client` (the VM creates it, nfv connects and reconnects)"));
                SocketMode::Server
            }
        };
        let socket = match raw.socket.as_deref() {
            None => {
                report.error(
                    "socket",
                    "missing: a vhost-user port needs `socket`, the path of its Unix socket".into(),
                );
                PathBuf::new()
            }
            Some(s) if !s.starts_with('/') => {
                report.error("socket", format!("`{s}` is not an absolute path: give the socket's full path (QEMU is started with the same one)"));
                PathBuf::from(s)
            }
            Some(s) if s.len() > MAX_SOCKET_PATH => {
                report.error(
                    "socket",
                    format!(
                        "the path is {} bytes long; a Unix socket's path holds at most {MAX_SOCKET_PATH}",
                        s.len()
                    ),
                );
                PathBuf::from(s)
            }
            Some(s) => PathBuf::from(s),
        };
        Some(VhostUserConfig {
            name: name.to_string(),
            socket,
            mode,
            mtu: usize::from(mtu),
        })
    }

    fn mode_name(&self) -> &'static str {
        match self.mode {
            SocketMode::Server => "server",
            SocketMode::Client => "client",
        }
    }
}

impl PortSpec for VhostUserConfig {
    fn kind(&self) -> &'static dyn PortKind {
        &super::VhostUserKind
    }

    fn mtu(&self) -> u16 {
        u16::try_from(self.mtu).unwrap_or(u16::MAX)
    }

    fn describe(&self) -> String {
        format!(
            "vhost-user {} ({}), mtu {}",
            self.socket.display(),
            match self.mode {
                SocketMode::Server => "server: the VM connects",
                SocketMode::Client => "client: nfv connects to the VM",
            },
            self.mtu
        )
    }

    fn location(&self) -> String {
        format!("{} ({})", self.socket.display(), self.mode_name())
    }

    fn build(&self, _name: &str) -> Result<BuiltPort, BuildError> {
        VhostUserPort::new(self.clone())
            .map(BuiltPort::new)
            .map_err(|source| BuildError {
                action: format!("open vhost-user socket `{}`", self.socket.display()),
                source,
                hint: "",
            })
    }

    /// Its socket: two ports cannot serve one.
    fn claims(&self) -> Vec<Claim> {
        let s = self.socket.to_string_lossy();
        if !s.starts_with('/') || s.len() > MAX_SOCKET_PATH {
            return Vec::new();
        }
        vec![Claim {
            key: "socket",
            what: "socket",
            value: s.into_owned(),
        }]
    }

    fn traffic(&self) -> Traffic {
        Traffic::Guest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Problems;

    fn load(text: &str) -> (Option<VhostUserConfig>, Vec<(String, String)>) {
        let mut p = Problems::default();
        let c = VhostUserConfig::load("vm", text, &mut p);
        (c, p.0)
    }

    #[test]
    fn settings_are_read() {
        let (c, p) =
            load("{ kind: vhost-user, socket: /run/nfv/vm2.sock, mode: client, mtu: 1400 }");
        assert!(p.is_empty(), "{p:?}");
        let c = c.expect("loads");
        assert_eq!(
            c,
            VhostUserConfig {
                name: "vm".into(),
                socket: "/run/nfv/vm2.sock".into(),
                mode: SocketMode::Client,
                mtu: 1400
            }
        );
        assert_eq!(c.location(), "/run/nfv/vm2.sock (client)");
        assert_eq!(
            c.describe(),
            "vhost-user /run/nfv/vm2.sock (client: nfv connects to the VM), mtu 1400"
        );
        assert_eq!(c.claims()[0].value, "/run/nfv/vm2.sock");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named_by_key() {
        let (c, p) = load("{ kind: vhost-user, sokcet: /s }");
        assert!(c.is_none());
        assert_eq!(p[0].0, "", "serde names an unknown key at its mapping");
        assert!(p[0].1.ends_with("; did you mean `socket`?"), "{p:?}");
        let (c, p) = load("{ kind: vhost-user, socket: vm1.sock, mode: listen, host: h }");
        assert!(c.is_some_and(|c| c.claims().is_empty()));
        let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["host", "mode", "socket"], "{p:?}");
        assert!(p[1].1.starts_with("unknown mode `listen`"), "{p:?}");
        assert!(p[2].1.contains("is not an absolute path"), "{p:?}");
        let (_, p) = load("{ kind: vhost-user }");
        assert_eq!(p[0].0, "socket");
        assert!(p[0].1.contains("needs `socket`"), "{p:?}");
    }
}
