//! Cross-kind hooks: the settings of a kind that name another function, which the kind
//! cannot check alone and the loader resolves (see [`nfv_functions::kind::Spec::masquerade`]).
//!
//! There is one: a `nat` whose `masquerade` is `ROUTER.INTERFACE` takes the address of that
//! router interface ([`nfv_functions::kind::Spec::interface_address`]), and the plan marks
//! the interface as a NAT's outside on the router
//! ([`nfv_functions::kind::Spec::masqueraded_on`]).

use std::net::Ipv4Addr;

use nfv_functions::kind::schema::did_you_mean;
use nfv_functions::kind::Masquerade;

use super::{Function, RawTopology, Validator};

impl Validator<'_> {
    /// The address of the router interface `m` names (written at `key`), or `None` with
    /// the problem reported. A router whose settings were refused is reported there.
    pub(super) fn masquerade_address(
        &mut self,
        key: &str,
        m: &Masquerade,
        raw: &RawTopology,
        loaded: &[Function],
    ) -> Option<Ipv4Addr> {
        let (r, i) = (m.router.as_str(), m.interface.as_str());
        let written = format!("{r}.{i}");
        let is_router = |kind: Option<&str>| kind == Some("router");
        let routers = raw
            .functions
            .0
            .iter()
            .filter(|(_, rf)| is_router(rf.kind.as_deref()))
            .map(|(n, _)| n.as_str());
        let Some((_, rf)) = raw.functions.0.iter().find(|(n, _)| n == r) else {
            let hint = did_you_mean(r, routers);
            self.error(
                key,
                format!("`{written}`: no router named `{r}`; ROUTER.INTERFACE names an interface of a router under `functions`{hint}"),
            );
            return None;
        };
        if !is_router(rf.kind.as_deref()) {
            let hint = did_you_mean(r, routers);
            let what = rf.kind.as_deref().unwrap_or("function without a kind");
            self.error(
                key,
                format!("`{written}`: `{r}` is a {what}, not a router; ROUTER.INTERFACE names an interface of a router under `functions`{hint}"),
            );
            return None;
        }
        let spec = &loaded.iter().find(|f| f.name == r)?.settings.0;
        let names = spec.wiring().gates;
        let Some(address) = spec.interface_address(i) else {
            let hint = did_you_mean(i, names.iter().map(String::as_str));
            self.error(
                key,
                format!(
                    "`{written}`: router `{r}` has no interface `{i}` (its interfaces: {}){hint}",
                    names.join(", ")
                ),
            );
            return None;
        };
        Some(address)
    }
}
