//! The port kinds nfv knows, by the name a topology gives in `kind:`. A new kind is its
//! folder and one line here; `nfv-control` learns everything else from the [`PortKind`].

use super::kind::PortKind;

/// Every registered port kind, in the order messages list them.
pub static PORT_KINDS: &[&dyn PortKind] = &[
    &super::tap::TapKind,
    &super::vhost::VhostUserKind,
    &super::null::NullKind,
    &super::generator::GeneratorKind,
];

/// The kind named `name`, if registered.
pub fn find(name: &str) -> Option<&'static dyn PortKind> {
    PORT_KINDS.iter().copied().find(|k| k.name() == name)
}

/// The names of every kind, in registry order.
pub fn names() -> Vec<&'static str> {
    PORT_KINDS.iter().map(|k| k.name()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Problems;

    #[test]
    fn kinds_have_unique_names_and_say_what_they_are() {
        let mut names = names();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PORT_KINDS.len(), "two kinds share a name");
        for k in PORT_KINDS {
            assert!(find(k.name()).is_some_and(|f| f.name() == k.name()));
            assert!(!k.about().is_empty(), "{} has no help line", k.name());
            // Each key is documented in the help line.
            for key in k.keys() {
                assert!(
                    k.about().contains(key),
                    "{}: `{key}` not in its about",
                    k.name()
                );
            }
        }
        assert!(find("vhost").is_none());
    }

    #[test]
    fn each_kind_declares_exactly_the_keys_its_schema_reads() {
        for k in PORT_KINDS {
            let mut p = Problems::default();
            let text = format!("{{ kind: {}, no-such-key: 1 }}", k.name());
            assert!(k.load("p", &text, &mut p).is_none());
            let message = p.0.first().map(|(_, m)| m.clone()).unwrap_or_default();
            let listed = message
                .split_once("expected ")
                .map(|(_, l)| l.trim_start_matches("one of ").replace('`', ""))
                .unwrap_or_default();
            let listed: Vec<&str> = listed.split(", ").collect();
            assert_eq!(listed, k.keys(), "{}: {message}", k.name());
        }
    }

    #[test]
    fn every_kind_loads_its_defaults_and_describes_itself() {
        for k in PORT_KINDS {
            // vhost-user needs a socket; the others need nothing.
            let text = match k.name() {
                "vhost-user" => "{ kind: vhost-user, socket: /run/nfv/p.sock }".to_string(),
                n => format!("{{ kind: {n} }}"),
            };
            let mut p = Problems::default();
            let spec = k.load("p", &text, &mut p);
            assert!(p.0.is_empty(), "{}: {:?}", k.name(), p.0);
            let spec = spec.unwrap_or_else(|| panic!("{} did not load", k.name()));
            assert_eq!(spec.kind().name(), k.name());
            assert!(
                spec.describe().starts_with(k.name()) || k.name() == "null",
                "{}: {}",
                k.name(),
                spec.describe()
            );
            assert!(!spec.location().is_empty());
        }
    }
}
