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
    Map {
        path: String,
        key: Option<String>,
        /// Where the mapping starts: (char index, 0-based column) of its `{`, or of its
        /// first key for a block mapping.
        start: (usize, usize),
    },
    Seq {
        path: String,
        next: usize,
    },
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
    /// The first container nested deeper than [`MAX_DEPTH`]: its path and position.
    too_deep: Option<(String, (usize, usize))>,
    /// Mappings by key path: (start byte offset, end byte offset, start column), for the
    /// text of a mapping as written ([`LineIndex::text_of`]).
    spans: HashMap<String, (usize, usize, usize)>,
}

/// Containers nested deeper than this stop the index ([`LineIndex::too_deep`]): serde_yaml
/// refuses documents nested deeper than 128 levels anyway, and a path's length grows with
/// its depth, so that indexing every level of a deeply nested text would take time and
/// memory quadratic in its size.
pub const MAX_DEPTH: usize = 128;

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
            Frame::Map { path, key, .. } => join(path, &key.take()?),
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
                ..
            } => Some(join(path, key)),
            Frame::Map {
                path, key: None, ..
            }
            | Frame::Seq { path, .. } => Some(path.clone()),
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
        if self.stack.len() >= MAX_DEPTH
            && matches!(ev, Event::MappingStart(..) | Event::SequenceStart(..))
        {
            // Not indexed: the walk stops here.
            let path = self.value_path(mark);
            self.index.too_deep = Some((path.unwrap_or_default(), here(mark)));
            return;
        }
        match ev {
            Event::Scalar(value, ..) => {
                if let Some(Frame::Map { path, key, start }) = self.stack.last_mut() {
                    if key.is_none() {
                        // A block mapping's start event comes after its first key: the
                        // mapping starts where that key does.
                        if mark.index() < start.0 {
                            *start = (mark.index(), mark.col());
                        }
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
                    start: (mark.index(), mark.col()),
                });
            }
            Event::SequenceStart(..) => {
                let path = self.value_path(mark).unwrap_or_default();
                self.stack.push(Frame::Seq { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some(Frame::Map { path, start, .. }) = self.stack.pop() {
                    self.index
                        .spans
                        .insert(path, (start.0, mark.index(), start.1));
                }
            }
            Event::Alias(_) => {
                let _ = self.value_path(mark);
            }
            _ => {}
        }
    }
}

/// Where flow collections (`[`, `{`) left open first nest deeper than `max` in `text`,
/// read as plain characters (quoted scalars and comments skipped): (line, column). A bound
/// that holds whatever a parser makes of the text, also one that does not parse.
fn flow_too_deep(text: &str, max: usize) -> Option<(usize, usize)> {
    let (mut depth, mut line, mut column) = (0usize, 1usize, 0usize);
    let (mut prev, mut quote, mut escaped, mut comment) = ('\n', None, false, false);
    for c in text.chars() {
        column += 1;
        if c == '\n' {
            (line, column, comment) = (line + 1, 0, false);
        } else if comment {
        } else if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if q == '"' && c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
        } else {
            let starts_token = prev.is_whitespace() || matches!(prev, '[' | '{' | ',' | ':');
            match c {
                '#' if prev.is_whitespace() => comment = true,
                '\'' | '"' if starts_token => quote = Some(c),
                '[' | '{' => {
                    depth += 1;
                    if depth > max {
                        return Some((line, column));
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        prev = c;
    }
    None
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
        // Event by event (`Parser::load` recurses once per level of nesting, so a few
        // kilobytes of `- - - -` overflowed the stack), stopping at the first container
        // nested too deep.
        let mut parser = Parser::new_from_str(text);
        let stopped = loop {
            match parser.next_token() {
                Ok((Event::StreamEnd, _)) => break Ok(()),
                Ok((ev, mark)) => w.on_event(ev, mark),
                Err(e) => break Err(e),
            }
            if w.index.too_deep.is_some() {
                break Ok(());
            }
        };
        if let Err(e) = stopped {
            w.index.open_path = w.open_path().filter(|p| !p.is_empty());
            w.index.stopped_at = Some(here(*e.marker()));
            // yaml-rust2 stops at 256 levels of flow collections, which its scanner reads
            // ahead of the events: nested too deep all the same.
            if e.info() == "recursion limit exceeded" && w.index.too_deep.is_none() {
                let path = w.index.open_path.clone().unwrap_or_default();
                w.index.too_deep = Some((path, here(*e.marker())));
            }
        }
        // The parser may stop at a syntax error before it sees the depth that libyaml (which
        // reads the text next, and goes on further) would take quadratic time over.
        if w.index.too_deep.is_none() {
            if let Some(at) = flow_too_deep(text, MAX_DEPTH) {
                w.index.too_deep = Some((w.index.open_path.clone().unwrap_or_default(), at));
            }
        }
        // Spans as byte offsets, converted in one pass (the parser counts characters).
        if !text.is_ascii() {
            let bytes: Vec<usize> = text
                .char_indices()
                .map(|(b, _)| b)
                .chain([text.len()])
                .collect();
            let byte = |c: usize| bytes.get(c).copied().unwrap_or(text.len());
            for span in w.index.spans.values_mut() {
                (span.0, span.1) = (byte(span.0), byte(span.1));
            }
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

    /// The mapping at `path` as `text` (the text this index was made from) writes it: a
    /// YAML document of its own, indented as in the file, whose scalars read exactly as the
    /// file's do. `None` if `path` is not a mapping written in the text (an alias, say).
    pub fn text_of(&self, text: &str, path: &str) -> Option<String> {
        let &(from, mut to, column) = self.spans.get(path)?;
        // A flow mapping ends at its `}`, which the end mark points at.
        if text.get(to..).is_some_and(|rest| rest.starts_with('}')) {
            to += 1;
        }
        let body = text.get(from..to)?;
        Some(format!("{}{body}\n", " ".repeat(column)))
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

    /// The first container nested deeper than [`MAX_DEPTH`] levels, if any: its key path
    /// and position. Such a text is refused before serde_yaml reads it, since libyaml's
    /// scanner takes time quadratic in the depth of flow collections.
    pub fn too_deep(&self) -> Option<(&str, (usize, usize))> {
        self.too_deep.as_ref().map(|(p, at)| (p.as_str(), *at))
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
    fn flow_nesting_that_does_not_parse_is_still_too_deep() {
        // Found by the `lines` fuzz target: an implicit mapping in every flow sequence
        // stops yaml-rust2 early, and libyaml then spent 34 s on 512 KiB of it.
        let text = "a: [ll1llllAlll,AlxA".repeat(26_000);
        let started = std::time::Instant::now();
        let index = LineIndex::new(&text);
        let (_, (line, column)) = index.too_deep().expect("too deep");
        assert_eq!(line, 1);
        assert!(column < 20 * (MAX_DEPTH + 2), "{column}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // Brackets in quotes and comments do not count; closed ones do not add up.
        let fine = format!(
            "a: '{}'\nb: \"{}\\\"\" # {}\nc: {}\n",
            "[".repeat(500),
            "{".repeat(500),
            "[".repeat(500),
            "[x], ".repeat(500)
        );
        assert_eq!(flow_too_deep(&fine, MAX_DEPTH), None);
        assert_eq!(flow_too_deep(&"[".repeat(MAX_DEPTH), MAX_DEPTH), None);
        assert_eq!(
            flow_too_deep(&"[".repeat(MAX_DEPTH + 1), MAX_DEPTH),
            Some((1, MAX_DEPTH + 1))
        );
    }

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
    fn containers_nested_too_deep_are_found_not_indexed() {
        // Block mappings: the first level past the limit, at its key.
        let mut text = String::from("name: x\nports:\n");
        for i in 0..200 {
            text += &format!("{}k{i}:\n", " ".repeat(2 * i + 2));
        }
        let idx = LineIndex::new(&text);
        let (path, (line, _)) = idx.too_deep().expect("200 levels are too deep");
        // The root mapping is the first level: the refused one is the value of `k126`,
        // whose first key `k127` is on line 130.
        assert_eq!(path.split('.').count(), MAX_DEPTH, "{path}");
        assert_eq!(line, 2 + MAX_DEPTH);
        assert!(idx.get("ports.k0.k1").is_some());
        assert_eq!(idx.get(&format!("{path}.k127")), None);
        // Block sequences, far deeper: the parser's own `load` recursed once per level.
        let text = format!("{}x\n", "- ".repeat(300_000));
        assert!(LineIndex::new(&text).too_deep().is_some());
        // Flow mappings and sequences, far deeper (yaml-rust2 stops at 256 flow levels).
        for (open, close) in [("{a: ", "}"), ("[", "]")] {
            let n = 50_000;
            let text = format!("name: x\nports: {}1{}\n", open.repeat(n), close.repeat(n));
            assert!(LineIndex::new(&text).too_deep().is_some(), "{open}");
        }
        // The limit itself is fine.
        let text = format!(
            "a: {}1{}\n",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        assert_eq!(LineIndex::new(&text).too_deep(), None);
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

    #[test]
    fn a_mapping_reads_back_as_its_own_text() {
        let text = "name: x\nfunctions:\n  sw:\n    kind: switch\n    vlan: 0x0a\n  fw: { kind: firewall,\n    max_connections: 3 }\nlinks: []\n";
        let i = LineIndex::new(text);
        let sw = i.text_of(text, "functions.sw").unwrap_or_default();
        assert_eq!(sw.trim_end(), "    kind: switch\n    vlan: 0x0a");
        let fw = i.text_of(text, "functions.fw").unwrap_or_default();
        assert_eq!(fw.trim(), "{ kind: firewall,\n    max_connections: 3 }");
        let v: serde_yaml::Value = serde_yaml::from_str(&sw).unwrap_or_default();
        assert_eq!(v.get("kind").and_then(|k| k.as_str()), Some("switch"));
        assert!(i.text_of(text, "functions.none").is_none());
        // Offsets in bytes, wherever multi-byte characters come before.
        let text = "name: é\nfunctions:\n  m: { kind: mirror, vlan: 7 }   # ü\n";
        let i = LineIndex::new(text);
        let m = i.text_of(text, "functions.m").unwrap_or_default();
        assert_eq!(m.trim(), "{ kind: mirror, vlan: 7 }");
    }
}
