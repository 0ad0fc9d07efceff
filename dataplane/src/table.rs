//! Tables that nodes show about their state (`nfv show macs`, `nfv show arp`, ...).
//!
//! A node answers [`crate::Node::show`] with a [`Table`]: named columns and rows of
//! [`Cell`]s. The dataplane knows nothing of any table's meaning; the control side adds the
//! function's name, renders tables for people and turns them into JSON for scripts. Showing
//! runs on the worker between bursts, so a table is a consistent snapshot; building one may
//! allocate (it is not the packet path).
//!
//! Conventions shared by every node:
//! - a column named `gate` holds a gate index ([`Cell::Int`]); the control side replaces it
//!   with the gate's name (a router interface, the port or function at the far end of a
//!   switch attachment);
//! - times are whole seconds, relative to the worker's clock, in columns ending in `_s`
//!   (`age_s`, `expires_s`);
//! - an absent value (no next hop, an unresolved MAC) is [`Cell::None`].

/// One value in a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    /// Text: addresses, states, names.
    Text(String),
    /// A count, an index, seconds.
    Int(u64),
    /// A signed number (seconds that may be past).
    Signed(i64),
    /// Yes or no.
    Bool(bool),
    /// No value.
    None,
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cell::Text(s) => f.write_str(s),
            Cell::Int(n) => write!(f, "{n}"),
            Cell::Signed(n) => write!(f, "{n}"),
            Cell::Bool(b) => f.write_str(if *b { "yes" } else { "no" }),
            Cell::None => f.write_str("-"),
        }
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Self {
        Cell::Text(s)
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Cell::Text(s.to_string())
    }
}

impl From<u64> for Cell {
    fn from(n: u64) -> Self {
        Cell::Int(n)
    }
}

impl From<u32> for Cell {
    fn from(n: u32) -> Self {
        Cell::Int(n.into())
    }
}

impl From<u16> for Cell {
    fn from(n: u16) -> Self {
        Cell::Int(n.into())
    }
}

impl From<u8> for Cell {
    fn from(n: u8) -> Self {
        Cell::Int(n.into())
    }
}

impl From<usize> for Cell {
    fn from(n: usize) -> Self {
        Cell::Int(n as u64)
    }
}

impl From<i64> for Cell {
    fn from(n: i64) -> Self {
        Cell::Signed(n)
    }
}

impl From<bool> for Cell {
    fn from(b: bool) -> Self {
        Cell::Bool(b)
    }
}

impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(v: Option<T>) -> Self {
        v.map_or(Cell::None, Into::into)
    }
}

/// Named columns and rows of cells; every row has one cell per column.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    /// Column names: lower case, `snake_case`, stable (scripts read them).
    pub columns: Vec<&'static str>,
    /// The rows.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// An empty table with these columns.
    pub fn new(columns: &[&'static str]) -> Self {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Add a row. A row of the wrong width is padded with [`Cell::None`] or cut, so a
    /// node's mistake cannot make a table that readers choke on.
    pub fn push(&mut self, mut row: Vec<Cell>) {
        row.resize(self.columns.len(), Cell::None);
        self.rows.push(row);
    }

    /// The index of column `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| *c == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_made_as_wide_as_the_columns() {
        let mut t = Table::new(&["a", "b"]);
        t.push(vec![1u64.into()]);
        t.push(vec!["x".into(), true.into(), Cell::None]);
        assert_eq!(t.rows[0], vec![Cell::Int(1), Cell::None]);
        assert_eq!(t.rows[1], vec![Cell::Text("x".into()), Cell::Bool(true)]);
        assert_eq!(t.column("b"), Some(1));
        assert_eq!(Cell::from(None::<u64>).to_string(), "-");
        assert_eq!(Cell::from(-3i64).to_string(), "-3");
    }
}
