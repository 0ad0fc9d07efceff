//! Cross-kind hooks: the settings of a registered kind that name another function, which
//! the kind cannot check alone and the loader resolves (see
//! [`nfv_functions::kind::Spec::masquerade`]).
//!
//! There is one: a `nat` whose `masquerade` is `ROUTER.INTERFACE` takes the address of that
//! router interface, and the plan marks the interface as a NAT's outside on the router.

use std::net::Ipv4Addr;

use nfv_functions::kind::schema::{did_you_mean, parse_cidr};
use nfv_functions::kind::Masquerade;

use super::{RawFunction, RawTopology, Validator};

impl Validator<'_> {
    /// The address of the router interface `m` names (written at `key`), or `None` with
    /// the problem reported. A missing or bad interface address is reported at the router.
    pub(super) fn masquerade_address(
        &mut self,
        key: &str,
        m: &Masquerade,
        raw: &RawTopology,
    ) -> Option<Ipv4Addr> {
        let (r, i) = (m.router.as_str(), m.interface.as_str());
        let written = format!("{r}.{i}");
        let routers: Vec<&(String, RawFunction)> = raw
            .functions
            .0
            .iter()
            .filter(|(_, rf)| rf.kind.as_deref() == Some("router"))
            .collect();
        let Some((_, rf)) = routers.iter().find(|(n, _)| n == r) else {
            let hint = did_you_mean(r, routers.iter().map(|(n, _)| n.as_str()));
            let what = match raw.functions.0.iter().find(|(n, _)| n == r) {
                Some((_, other)) => format!(
                    "`{r}` is a {}, not a router",
                    other.kind.as_deref().unwrap_or("function without a kind")
                ),
                None => format!("no router named `{r}`"),
            };
            self.error(
                key,
                format!("`{written}`: {what}; ROUTER.INTERFACE names an interface of a router under `functions`{hint}"),
            );
            return None;
        };
        let names: Vec<&str> = rf.interfaces.0.iter().map(|(n, _)| n.as_str()).collect();
        let Some((_, ri)) = rf.interfaces.0.iter().find(|(n, _)| n == i) else {
            let hint = did_you_mean(i, names.iter().copied());
            self.error(
                key,
                format!(
                    "`{written}`: router `{r}` has no interface `{i}` (its interfaces: {}){hint}",
                    names.join(", ")
                ),
            );
            return None;
        };
        ri.address
            .as_deref()
            .and_then(|a| parse_cidr(a).ok())
            .map(|a| a.ip())
    }
}
