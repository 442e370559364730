//! What the property tests that fuzz imgraph's parsers share: inputs built from the tokens each grammar cares
//! about, mixed with arbitrary characters, so that random cases reach deep into the parsers. Each parser's own
//! module states its properties (never a panic, and what must hold of a result) in a `fuzz` test module.
//!
//! `cargo test` runs each property on 256 cases; `benches/fuzz-parsers.sh` runs them on many more
//! (`PROPTEST_CASES`).

use proptest::prelude::*;

/// Text made of `tokens`, printable ASCII, arbitrary characters and line breaks.
pub(crate) fn text(tokens: &'static [&'static str]) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        6 => prop::sample::select(tokens).prop_map(str::to_owned),
        3 => "[ -~]{0,6}",
        1 => any::<char>().prop_map(String::from),
        2 => prop::sample::select(&["\n", "\r\n", " ", "\t", "\\", "\0"][..]).prop_map(str::to_owned),
    ];
    prop::collection::vec(piece, 0..48).prop_map(|pieces| pieces.concat())
}

/// Bytes that are mostly `text(tokens)`, sometimes not UTF-8.
pub(crate) fn bytes(tokens: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    (text(tokens), prop::collection::vec(any::<u8>(), 0..4), any::<prop::sample::Index>()).prop_map(
        |(text, noise, at)| {
            let mut bytes = text.into_bytes();
            let at = at.index(bytes.len() + 1);
            bytes.splice(at..at, noise);
            bytes
        },
    )
}
