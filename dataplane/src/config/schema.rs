//! Pieces of settings schema that several kinds (of function and of port) and
//! `nfv-control`'s own parts of the topology file share: ordered mappings, one-or-many
//! values, numbers or words, durations, and the wording of their messages (key paths, lists
//! of names, "did you mean"). `nfv_functions::kind::schema` re-exports them.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::Report;

/// `parent.key`, or `key` at the top.
pub fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// `` `a`, `b`, `c` `` for messages.
pub fn one_of(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// "; did you mean `x`?" when one of `candidates` is a likely typo of `name`, else "".
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let len = name.chars().count();
    if len < 3 {
        return String::new();
    }
    let close = (len / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= close)
        .min()
        .map(|(_, c)| format!("; did you mean `{c}`?"))
        .unwrap_or_default()
}

/// Edit distance counting a swap of neighbours as one edit (optimal string alignment);
/// `usize::MAX` for names too long to bother.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len() > 64 || b.len() > 64 {
        return usize::MAX;
    }
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// A mapping that keeps file order and rejects duplicate keys.
#[derive(Debug)]
pub struct Ordered<T>(pub Vec<(String, T)>);

impl<T> Default for Ordered<T> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of names")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(Ordered(Vec::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut v: Vec<(String, T)> = Vec::new();
                let mut seen = Names::default();
                while let Some(k) = m.next_key::<String>()? {
                    seen.first(&k)?;
                    v.push((k, m.next_value()?));
                }
                Ok(Ordered(v))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// The names of a mapping read so far, to refuse one named twice; a hash set, so that a
/// mapping of many names loads in time linear in its size.
#[derive(Default)]
pub struct Names(std::collections::HashSet<String>);

impl Names {
    /// `Ok` the first time `name` is seen, the `duplicate name` error after.
    pub fn first<E: serde::de::Error>(&mut self, name: &str) -> Result<(), E> {
        if self.0.insert(name.to_string()) {
            Ok(())
        } else {
            Err(E::custom(format!("duplicate name `{name}`")))
        }
    }
}

/// One string or a list of them.
#[derive(Debug)]
pub struct OneOrMany {
    /// The strings.
    pub items: Vec<String>,
    /// Written as a list (`[a, b]`) rather than one value.
    pub list: bool,
}

impl OneOrMany {
    /// The key path of item `i` under `key`: `key[i]` in a list, `key` for one value.
    pub fn key(&self, key: &str, i: usize) -> String {
        if self.list {
            format!("{key}[{i}]")
        } else {
            key.to_string()
        }
    }
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("one value or a list of values")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(OneOrMany {
                    items: vec![v.to_string()],
                    list: false,
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(x) = s.next_element::<String>()? {
                    items.push(x);
                }
                Ok(OneOrMany { items, list: true })
            }
        }
        d.deserialize_any(V)
    }
}

/// A whole number up to `max` (`Ok`) or a string (`Err`); anything else is an error that
/// expects `expected`. Untagged enums would do this too, but serde_yaml could then name only
/// the parent key.
pub fn number_or_text<'de, D: Deserializer<'de>>(
    d: D,
    max: u64,
    expected: &'static str,
) -> Result<Result<u64, String>, D::Error> {
    struct V(u64, &'static str);
    impl Visitor<'_> for V {
        type Value = Result<u64, String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.1)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            if v > self.0 {
                return Err(E::invalid_value(serde::de::Unexpected::Unsigned(v), &self));
            }
            Ok(Ok(v))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Err(v.to_string()))
        }
    }
    d.deserialize_any(V(max, expected))
}

/// A duration as written: whole seconds, or text like `5m`.
#[derive(Debug, Clone)]
pub enum RawDuration {
    /// A number: seconds.
    Seconds(u64),
    /// Text: a number with s, m, h or d.
    Text(String),
}

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match number_or_text(d, u64::MAX, DURATION)? {
            Ok(n) => RawDuration::Seconds(n),
            Err(t) => RawDuration::Text(t),
        })
    }
}

/// What a duration looks like, for messages.
pub const DURATION: &str =
    "a positive duration of at most 49710d: whole seconds, or a number with s, m, h or d (e.g. 300s, 5m, 1h, 5d)";

/// The longest duration a setting takes: 2^32-1 seconds (about 136 years, what DHCP's lease
/// times hold), so that what a kind derives from it (`lease * 7 / 8`) cannot overflow.
pub const MAX_DURATION_SECS: u64 = u32::MAX as u64;

/// A positive duration of at most [`MAX_DURATION_SECS`], or `None` for zero, one longer, or
/// what does not read as one.
pub fn parse_duration(d: &RawDuration) -> Option<Duration> {
    let secs = match d {
        RawDuration::Seconds(s) => *s,
        RawDuration::Text(t) => {
            let t = t.trim();
            let (num, mult) = match t.char_indices().last()? {
                (i, 's') => (&t[..i], 1),
                (i, 'm') => (&t[..i], 60),
                (i, 'h') => (&t[..i], 3600),
                (i, 'd') => (&t[..i], 86_400),
                _ => (t, 1),
            };
            num.trim().parse::<u64>().ok()?.checked_mul(mult)?
        }
    };
    (secs > 0 && secs <= MAX_DURATION_SECS).then(|| Duration::from_secs(secs))
}

/// `d` read as a duration, `default` when absent; a bad one is reported at `key`.
pub fn duration_or(
    report: &mut dyn Report,
    key: &str,
    d: Option<&RawDuration>,
    default: Duration,
) -> Duration {
    match d {
        None => default,
        Some(d) => parse_duration(d).unwrap_or_else(|| {
            let text = match d {
                RawDuration::Seconds(n) => n.to_string(),
                RawDuration::Text(t) => t.clone(),
            };
            report.error(key, format!("`{text}`: expected {DURATION}"));
            default
        }),
    }
}

/// A duration as a topology file would write it: `300s` as `5m`, `3600s` as `1h`.
pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(3600) && s > 0 {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) && s > 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Problems;

    #[test]
    fn durations_read_seconds_and_units() {
        let d = |t: &str| parse_duration(&RawDuration::Text(t.into()));
        assert_eq!(d("5m"), Some(Duration::from_secs(300)));
        assert_eq!(d("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(d("0s"), None);
        assert_eq!(d("x"), None);
        // Longer than 2^32-1 seconds: refused, so that `lease * 7 / 8` cannot overflow.
        assert_eq!(d("49710d"), Some(Duration::from_secs(4_294_944_000)));
        assert_eq!(d("49711d"), None);
        assert_eq!(d("18446744073709551615"), None);
        assert_eq!(parse_duration(&RawDuration::Seconds(u64::MAX)), None);
        assert_eq!(
            parse_duration(&RawDuration::Seconds(7)),
            Some(Duration::from_secs(7))
        );
        let mut p = Problems::default();
        let got = duration_or(
            &mut p,
            "k",
            Some(&RawDuration::Text("soon".into())),
            Duration::ZERO,
        );
        assert_eq!(got, Duration::ZERO);
        assert!(
            p.0[0].1.contains("`soon`: expected a positive duration"),
            "{p:?}"
        );
    }

    #[test]
    fn typos_get_a_suggestion() {
        assert_eq!(
            did_you_mean("relatd", ["new", "related"]),
            "; did you mean `related`?"
        );
        assert_eq!(did_you_mean("zz", ["zzz"]), "");
        assert_eq!(one_of(&["a", "b"]), "`a`, `b`");
    }

    #[test]
    fn typos_get_suggestions_and_long_names_do_not_cost() {
        assert_eq!(edit_distance("alcie", "alice"), 1);
        assert_eq!(edit_distance("lam", "lan"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(
            did_you_mean("lam", ["lan", "wan0"]),
            "; did you mean `lan`?"
        );
        assert_eq!(did_you_mean("p3", ["p1"]), "");
        assert_eq!(did_you_mean("router", ["lan"]), "");
        let long = "x".repeat(10_000);
        assert_eq!(did_you_mean(&long, [long.as_str()]), "");
    }

    #[test]
    fn durations() {
        for (text, secs) in [
            ("90", Some(90)),
            ("90s", Some(90)),
            ("5m", Some(300)),
            ("1h", Some(3600)),
            ("5d", Some(432_000)),
        ] {
            let d = if let Ok(n) = text.parse() {
                RawDuration::Seconds(n)
            } else {
                RawDuration::Text(text.into())
            };
            assert_eq!(parse_duration(&d), secs.map(Duration::from_secs), "{text}");
        }
        for bad in ["0", "0s", "5 minutes", "m", "", "-5s", "1w"] {
            assert_eq!(
                parse_duration(&RawDuration::Text(bad.into())),
                None,
                "{bad}"
            );
        }
    }
}
