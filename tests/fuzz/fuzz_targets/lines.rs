//! The topology's line index (`nfv_control::topology::LineIndex`) and loader on large
//! texts: a short input grows to up to 512 KiB, so that work or memory that grows faster
//! than the text shows up as a libFuzzer timeout or RSS overflow (`tests/run.sh` runs this
//! target with `-timeout=10 -rss_limit_mb=1024`; a plain 512 KiB file takes about 3 s and
//! 250 MB in the fuzz build). No panic either.
//!
//! The input is UTF-8 (other inputs are skipped): its first byte says how often to repeat,
//! from once to 2^21 times (so small and large texts are as common); the rest is
//! `OPEN \x01 MIDDLE \x01 CLOSE` (the separators optional), and the text is OPEN repeated,
//! MIDDLE, CLOSE repeated as often: `{a: ` / `x` / `}` nests flow mappings, `- ` / `x` /
//! `` nests block sequences, `  a: 1\n` alone is a long flat file.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use nfv_control::topology::{load_str, LineIndex};

/// The longest text made.
const MAX_TEXT: usize = 512 << 10;

fuzz_target!(|data: &[u8]| {
    let Some((&count, rest)) = data.split_first() else {
        return;
    };
    let Ok(rest) = std::str::from_utf8(rest) else {
        return;
    };
    let mut parts = rest.splitn(3, '\u{1}');
    let open = parts.next().unwrap_or("");
    let middle = parts.next().unwrap_or("");
    let close = parts.next().unwrap_or("");
    let unit = open.len() + close.len();
    // 2^(count / 12) times, no longer than MAX_TEXT.
    let times = (1usize << (count / 12)).min(MAX_TEXT.saturating_sub(middle.len()) / unit.max(1));
    let mut text = String::with_capacity(unit * times + middle.len());
    for _ in 0..times {
        text.push_str(open);
    }
    text.push_str(middle);
    for _ in 0..times {
        text.push_str(close);
    }
    let index = LineIndex::new(&text);
    let _ = index.find("ports");
    let _ = load_str(&text, Path::new("fuzz.yaml"));
});
