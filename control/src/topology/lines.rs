//! Where each key path of a YAML document is: `ports.a.host` -> (line, column).
//!
//! serde_yaml gives values but no positions; the semantic checks need the line of the key
//! they complain about. This walks yaml-rust2's marked events once and records the position
//! of every mapping key and every sequence element under its path. Mapping keys are
//! recorded where the key starts (`ports.a.mtu` is the line of `mtu:`); sequence elements
//! where the element starts (`links[2][1]` is the line of that scalar).
//!
//! When the text does not parse, the index keeps what it saw before the error and the path
//! being read when it stopped ([`LineIndex::open_path`]), so that a syntax error can still
//! name a key.

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
    /// Where a second YAML document starts, if the text has one.
    second_document: Option<(usize, usize)>,
    /// The path being read when the parser stopped at a syntax error.
    open_path: Option<String>,
    /// Where the parser stopped at a syntax error.
    stopped_at: Option<(usize, usize)>,
}

struct Walker {
    stack: Vec<Frame>,
    index: LineIndex,
    /// Documents started so far; events after the first document are ignored.
    documents: usize,
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

fn here(mark: Marker) -> (usize, usize) {
    (mark.line(), mark.col() + 1)
}

impl Walker {
    /// The path of the value that starts now, consuming the pending key or sequence slot.
    fn value_path(&mut self, mark: Marker) -> Option<String> {
        let p = match self.stack.last_mut()? {
            Frame::Map { path, key } => join(path, &key.take()?),
            Frame::Seq { path, next } => {
                let p = format!("{path}[{next}]");
                *next += 1;
                self.index.at.entry(p.clone()).or_insert(here(mark));
                p
            }
        };
        Some(p)
    }

    /// The innermost path open now: the pending key's value, or the innermost container.
    fn open_path(&self) -> Option<String> {
        match self.stack.last()? {
            Frame::Map {
                path,
                key: Some(key),
            } => Some(join(path, key)),
            Frame::Map { path, key: None } | Frame::Seq { path, .. } => Some(path.clone()),
        }
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if let Event::DocumentStart = ev {
            self.documents += 1;
            if self.documents == 2 {
                self.index.second_document = Some(here(mark));
            }
        }
        if self.documents > 1 {
            return;
        }
        match ev {
            Event::Scalar(value, ..) => {
                if let Some(Frame::Map { path, key }) = self.stack.last_mut() {
                    if key.is_none() {
                        let p = join(path, &value);
                        match self.index.at.entry(p) {
                            Entry::Occupied(o) => {
                                self.index
                                    .again
                                    .entry(o.key().clone())
                                    .or_insert(here(mark));
                            }
                            Entry::Vacant(v) => {
                                v.insert(here(mark));
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
    /// Index `text`. A document that does not parse keeps what came before the error (serde_yaml
    /// then reports the syntax error with its position).
    pub fn new(text: &str) -> Self {
        let mut w = Walker {
            stack: Vec::new(),
            index: LineIndex::default(),
            documents: 0,
        };
        let mut parser = Parser::new_from_str(text);
        if let Err(e) = parser.load(&mut w, true) {
            w.index.open_path = w.open_path().filter(|p| !p.is_empty());
            w.index.stopped_at = Some(here(*e.marker()));
        }
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

    /// Where a second YAML document starts (`---`), if there is one.
    pub fn second_document(&self) -> Option<(usize, usize)> {
        self.second_document
    }

    /// The key path being read when a syntax error stopped the parser (`None` if the text
    /// parsed, or the error came before the first key).
    pub fn open_path(&self) -> Option<&str> {
        self.open_path.as_deref()
    }

    /// Where a syntax error stopped the parser (`None` if the text parsed).
    pub fn stopped_at(&self) -> Option<(usize, usize)> {
        self.stopped_at
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
        assert_eq!(idx.open_path(), None);
        assert_eq!(idx.stopped_at(), None);
        assert_eq!(idx.second_document(), None);
        let dup = LineIndex::new("a:\n  x: 1\n  x: 2\n");
        assert_eq!(dup.get("a.x"), Some((2, 3)));
        assert_eq!(dup.repeated("a.x"), Some((3, 3)));
    }

    #[test]
    fn a_syntax_error_keeps_what_came_before_and_the_open_path() {
        let idx = LineIndex::new("name: x\nports:\n  a: { kind: null }\n    b: { kind: null }\n");
        assert_eq!(idx.get("ports.a"), Some((3, 3)));
        assert_eq!(idx.open_path(), Some("ports"));
        assert_eq!(idx.stopped_at().map(|p| p.0), Some(4));
        let idx = LineIndex::new("name: x\nports:\n  a: { kind: tap\nlinks: []\n");
        assert_eq!(idx.open_path(), Some("ports.a"));
    }

    #[test]
    fn a_second_document_is_found_and_not_indexed() {
        let idx = LineIndex::new("name: x\n---\nname: y\nports: {}\n");
        assert_eq!(idx.second_document(), Some((2, 1)));
        assert_eq!(idx.get("ports"), None);
        assert_eq!(idx.repeated("name"), None);
    }
}
