//! Newtypes, one per id space, so that a port index is never used as a node index.

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub $inner);

        impl $name {
            /// The id as an index into a table.
            #[inline]
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A port of the dataplane (TAP, ring, null, ...), an index into the graph's port table.
    PortId(u16)
);
id_type!(
    /// A node (function) of the graph, an index into the graph's node table.
    NodeId(u16)
);
id_type!(
    /// A numbered input/output of a node: packets enter a node on a gate and leave on one.
    /// Gates are bidirectional: a wire joins one gate to one gate (or port).
    Gate(u16)
);
id_type!(
    /// A worker thread.
    WorkerId(u16)
);
