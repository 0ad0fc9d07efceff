//! Where each key path of a YAML document is: `ports.a.host` -> (line, column).
//!
//! serde_yaml gives values but no positions; the semantic checks need the line of the key
//! they complain about. This walks yaml-rust2's marked events once and records the position
//! of every mapping key and every sequence element under its path.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, next: usize },
}

/// Key path -> (line, column), both 1-based.
#[derive(Debug, Default)]
pub struct LineIndex {
    at: HashMap<String, (usize, usize)>,
    /// Keys that appear a second time in their mapping: where they do.
    again: HashMap<String, (usize, usize)>,
}

struct Walker {
    stack: Vec<Frame>,
    index: LineIndex,
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl Walker {
    /// The path of the value that starts now, consuming the pending key or sequence slot.
    fn value_path(&mut self, mark: Marker) -> Option<String> {
        let p = match self.stack.last_mut()? {
            Frame::Map { path, key } => join(path, &key.take()?),
            Frame::Seq { path, next } => {
                let p = format!("{path}[{next}]");
                *next += 1;
                self.index
                    .at
                    .entry(p.clone())
                    .or_insert((mark.line(), mark.col() + 1));
                p
            }
        };
        Some(p)
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(value, ..) => {
                if let Some(Frame::Map { path, key }) = self.stack.last_mut() {
                    if key.is_none() {
                        let p = join(path, &value);
                        let here = (mark.line(), mark.col() + 1);
                        match self.index.at.entry(p) {
                            Entry::Occupied(o) => {
                                self.index.again.entry(o.key().clone()).or_insert(here);
                            }
                            Entry::Vacant(v) => {
                                v.insert(here);
                            }
                        }
                        *key = Some(value);
                        return;
                    }
                }
                let _ = self.value_path(mark);
            }
            Event::MappingStart(..) => {
                let path = if self.stack.is_empty() {
                    Some(String::new())
                } else {
                    self.value_path(mark)
                };
                self.stack.push(Frame::Map {
                    path: path.unwrap_or_default(),
                    key: None,
                });
            }
            Event::SequenceStart(..) => {
                let path = self.value_path(mark).unwrap_or_default();
                self.stack.push(Frame::Seq { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Alias(_) => {
                let _ = self.value_path(mark);
            }
            _ => {}
        }
    }
}

impl LineIndex {
    /// Index `text`; a document that does not parse gives an empty index (serde_yaml then
    /// reports the syntax error with its position).
    pub fn new(text: &str) -> Self {
        let mut w = Walker {
            stack: Vec::new(),
            index: LineIndex::default(),
        };
        let mut parser = Parser::new_from_str(text);
        let _ = parser.load(&mut w, false);
        w.index
    }

    /// Position of `path`, or of its nearest ancestor that has one; (1, 0) for none.
    pub fn find(&self, path: &str) -> (usize, usize) {
        let mut p = path;
        loop {
            if let Some(&at) = self.at.get(p) {
                return at;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return (1, 0),
            }
        }
    }

    /// Position of the second occurrence of key `path` in its mapping, if it has one.
    pub fn repeated(&self, path: &str) -> Option<(usize, usize)> {
        self.again.get(path).copied()
    }

    /// Position of `path` itself, if recorded.
    pub fn get(&self, path: &str) -> Option<(usize, usize)> {
        self.at.get(path).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_and_sequence_elements() {
        let text = "name: x\nports:\n  a: { kind: tap, host: h }\n  b:\n    kind: null\nlinks:\n  - [a, sw]\n  - - b\n    - sw.x\n";
        let idx = LineIndex::new(text);
        assert_eq!(idx.get("name"), Some((1, 1)));
        assert_eq!(idx.get("ports.a"), Some((3, 3)));
        assert_eq!(idx.get("ports.a.host").map(|p| p.0), Some(3));
        assert_eq!(idx.get("ports.b.kind"), Some((5, 5)));
        assert_eq!(idx.get("links[0][1]").map(|p| p.0), Some(7));
        assert_eq!(idx.get("links[1][1]").map(|p| p.0), Some(9));
        assert_eq!(idx.find("ports.b.kind.deeper").0, 5);
        assert_eq!(idx.find("nothing.here"), (1, 0));
        let dup = LineIndex::new("a:\n  x: 1\n  x: 2\n");
        assert_eq!(dup.get("a.x"), Some((2, 3)));
        assert_eq!(dup.repeated("a.x"), Some((3, 3)));
    }
}
