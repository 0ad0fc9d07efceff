//! Reading a kind's own settings: the machinery that function kinds (`nfv-functions`) and
//! port kinds ([`crate::port::kind`]) share. `nfv-control` hands a kind the YAML text of its
//! mapping as the topology file writes it; the kind reads it with serde ([`settings`]),
//! refusing unknown keys, runs its checks of meaning, and reports each problem by key path
//! through a [`Report`]. The control side adds the file, the line and the path above.
//!
//! This module reads text it is given; it opens no file and talks to no operator.
//! `nfv_functions::kind` re-exports it under the same names.

use std::marker::PhantomData;

use serde::de::{DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

pub mod checks;
pub mod schema;

/// The text of a file a topology names (a routes file, a lease file, the topology itself):
/// a regular file of at most `max` bytes, or an error that says what it is instead. It is
/// opened without blocking (a FIFO does not wait for a writer) and read no further than
/// `max`, so a device such as `/dev/zero`, a pipe or a huge file costs nothing. `what`
/// names the file in the error (`a routes file`).
pub fn read_bounded(path: &std::path::Path, max: u64, what: &str) -> std::io::Result<String> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut text = String::new();
    f.take(max + 1).read_to_string(&mut text)?;
    if text.len() as u64 > max {
        let size = if max >= 1 << 20 {
            format!("{} MiB", max >> 20)
        } else {
            format!("{} KiB", max >> 10)
        };
        return Err(std::io::Error::other(format!(
            "larger than {size}, the most {what} may hold"
        )));
    }
    Ok(text)
}

/// Where a kind (of function or of port) reports what is wrong with its settings.
pub trait Report {
    /// A problem at `key`, a path relative to the function or port (`monitor`, `vlan[1]`),
    /// or `""` for it as a whole. The control side adds the file, line and the function's
    /// or port's own path.
    fn error(&mut self, key: &str, message: String);

    /// `key` (relative to the function or port) as the file's full key path, for messages that
    /// point at another place (`functions.nat.forwards[0]`).
    fn absolute(&self, key: &str) -> String {
        key.to_string()
    }

    /// A path the settings give, as the loader reads it: a relative one is relative to the
    /// topology file's directory.
    fn path(&self, written: &str) -> std::path::PathBuf {
        std::path::PathBuf::from(written)
    }

    /// A problem on line `line` (from 1) of another file the settings name (a router's
    /// routes file), about the setting at `key`.
    fn error_in(&mut self, file: &std::path::Path, line: usize, key: &str, message: String) {
        self.error(key, format!("{}:{line}: {message}", file.display()));
    }
}

/// Deserialize a kind's settings from `text`, the YAML of the function's or port's mapping as
/// the file writes it (its `kind` key is left out), reporting a serde error at the key path it
/// happened at (`vlan[1]`, `""` for the mapping itself) with serde's message. Scalars read
/// as the file's own text does everywhere: a plain `0x0a0b` where a string is expected is
/// that string.
pub fn settings<T: DeserializeOwned>(text: &str, report: &mut dyn Report) -> Option<T> {
    match read(text) {
        Ok(t) => Some(t),
        Err((path, message)) => {
            report.error(&path, message);
            None
        }
    }
}

/// Deserialize `text` as [`settings`] does; a serde error comes back as the key path it
/// happened at and serde's message (without serde_yaml's own path and position).
pub fn read<T: DeserializeOwned>(text: &str) -> Result<T, (String, String)> {
    read_skipping(text, &|_| false).map(|(t, _)| t)
}

/// Deserialize `text` as [`read`] does, except that the mapping's keys that `skip` picks are
/// set aside (their values unread) as well as `kind`: what it read, and the names of the keys
/// set aside (`kind` not among them), in file order.
pub fn read_skipping<T: DeserializeOwned>(
    text: &str,
    skip: &dyn Fn(&str) -> bool,
) -> Result<(T, Vec<String>), (String, String)> {
    let mut track = serde_path_to_error::Track::new();
    let de = serde_path_to_error::Deserializer::new(
        serde_yaml::Deserializer::from_str(text),
        &mut track,
    );
    let seed = WithoutKind {
        skip,
        read: PhantomData::<T>,
    };
    let result = serde::de::DeserializeSeed::deserialize(seed, de);
    result.map_err(|inner: serde_yaml::Error| {
        let path = track.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let mut message = inner.to_string();
        if let Some(l) = inner.location() {
            let at = format!(" at line {} column {}", l.line(), l.column());
            message = message.replacen(&at, "", 1);
        }
        // serde_yaml starts with its own path: `a.b[1]: invalid type: ...`.
        if let Some(i) = message.find(": ") {
            let head = &message[..i];
            if !head.contains(' ') && !head.contains('`') {
                message = message[i + 2..].to_string();
            }
        }
        (path, message)
    })
}

/// Reads `T` from a mapping without its `kind` key (the registry's, not the kind's) and the
/// keys `skip` picks.
struct WithoutKind<'s, T> {
    skip: &'s dyn Fn(&str) -> bool,
    read: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> serde::de::DeserializeSeed<'de> for WithoutKind<'_, T> {
    type Value = (T, Vec<String>);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for WithoutKind<'_, T> {
    type Value = (T, Vec<String>);
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a mapping of settings")
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        let t = T::deserialize(serde::de::value::MapDeserializer::new(std::iter::empty::<(
            String,
            String,
        )>()))?;
        Ok((t, Vec::new()))
    }
    fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Self::Value, A::Error> {
        let skip = self.skip;
        let (t, mut aside) = SkipKeys::new(m, &|k| k == "kind" || skip(k)).read()?;
        aside.retain(|k| k != "kind");
        Ok((t, aside))
    }
}

/// A mapping without the keys `skip` picks: their values are skipped, their names kept in
/// `set_aside`. The loader reads a function without its `kind` this way, and a function of
/// an older kind without the keys only registered kinds take.
pub struct SkipKeys<'a, M> {
    inner: M,
    skip: &'a dyn Fn(&str) -> bool,
    set_aside: Vec<String>,
}

impl<'a, M> SkipKeys<'a, M> {
    /// `inner` without the keys `skip` picks.
    pub fn new(inner: M, skip: &'a dyn Fn(&str) -> bool) -> Self {
        SkipKeys {
            inner,
            skip,
            set_aside: Vec::new(),
        }
    }

    /// Deserialize `T` from the mapping; what it reads, and the keys set aside.
    pub fn read<'de, T: Deserialize<'de>>(self) -> Result<(T, Vec<String>), M::Error>
    where
        M: MapAccess<'de>,
    {
        let mut this = self;
        let t = T::deserialize(serde::de::value::MapAccessDeserializer::new(&mut this))?;
        Ok((t, this.set_aside))
    }
}

impl<'de, M: MapAccess<'de>> MapAccess<'de> for &mut SkipKeys<'_, M> {
    type Error = M::Error;

    fn next_key_seed<K: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, M::Error> {
        use serde::de::IntoDeserializer;
        while let Some(key) = self.inner.next_key::<String>()? {
            if (self.skip)(&key) {
                self.inner.next_value::<serde::de::IgnoredAny>()?;
                self.set_aside.push(key);
                continue;
            }
            return seed.deserialize(key.into_deserializer()).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, M::Error> {
        self.inner.next_value_seed(seed)
    }
}

/// A [`Report`] that counts the problems passing through it, so that a kind's checks know
/// whether the settings were good.
pub struct Counting<'r> {
    /// Where the problems go.
    pub inner: &'r mut dyn Report,
    /// How many went.
    pub errors: usize,
}

impl<'r> Counting<'r> {
    /// Count what goes to `inner`.
    pub fn new(inner: &'r mut dyn Report) -> Self {
        Counting { inner, errors: 0 }
    }
}

impl Report for Counting<'_> {
    fn error(&mut self, key: &str, message: String) {
        self.errors += 1;
        self.inner.error(key, message);
    }

    fn absolute(&self, key: &str) -> String {
        self.inner.absolute(key)
    }

    fn path(&self, written: &str) -> std::path::PathBuf {
        self.inner.path(written)
    }

    fn error_in(&mut self, file: &std::path::Path, line: usize, key: &str, message: String) {
        self.errors += 1;
        self.inner.error_in(file, line, key, message);
    }
}

/// Problems collected in a vector, for tests of a kind's checks.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<(String, String)>);

impl Report for Problems {
    fn error(&mut self, key: &str, message: String) {
        self.0.push((key.to_string(), message));
    }
}

#[cfg(test)]
mod tests {

    /// A FIFO, a device and a file past the limit are refused at once, never read whole or
    /// waited on (opening a FIFO for reading used to wait for a writer).
    #[test]
    fn only_a_bounded_regular_file_is_read() {
        let dir = std::env::temp_dir().join(format!("nfv-bounded-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let e = read_bounded(&fifo, 100, "a routes file").expect_err("a FIFO");
            assert!(e.to_string().contains("not a regular file"), "{e}");
        }
        let e = read_bounded(std::path::Path::new("/dev/zero"), 100, "x").expect_err("device");
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let file = dir.join("f");
        std::fs::write(&file, "abcdef").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_bounded(&file, 6, "x").ok().as_deref(), Some("abcdef"));
        let e = read_bounded(&file, 5, "a lease file").expect_err("too big");
        assert!(
            e.to_string().contains("the most a lease file may hold"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct S {
        list: Vec<u16>,
    }

    #[test]
    fn settings_errors_name_the_key_path_they_happened_at() {
        let mut p = Problems::default();
        assert!(settings::<S>("kind: k\nlist: [1, x]", &mut p).is_none());
        assert_eq!(p.0.len(), 1);
        assert_eq!(p.0[0].0, "list[1]");
        assert!(p.0[0].1.starts_with("invalid type"), "{:?}", p.0);

        let mut p = Problems::default();
        assert!(settings::<S>("{ lsit: [1], kind: k }", &mut p).is_none());
        assert!(p.0[0].1.starts_with("unknown field `lsit`"), "{:?}", p.0);
    }

    #[derive(serde::Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Text {
        value: String,
    }

    #[test]
    fn scalars_read_as_written() {
        let got = read::<Text>("  kind: k\n  value: 0x0a0b\n");
        assert_eq!(
            got,
            Ok(Text {
                value: "0x0a0b".into()
            })
        );
    }
}
