//! The Go regular expressions that moby builds from patterns, read as Go's `regexp.Compile` reads them (RE2 syntax
//! with Perl flags) and rewritten for the `regex` crate, which differs in the details a pattern can reach: nested
//! classes, Unicode `\d` `\s` `\w` `\b`, octal escapes, `\Q…\E`, POSIX classes, what `\pC` holds.
//!
//! Only what moby's compiler can produce is handled: a `(?` group never reaches here (moby escapes `(`) and is
//! refused rather than guessed at. Every literal is written as `\x{…}` and every class as explicit ranges, so nothing
//! is left to the `regex` crate's own reading of a character.

use regex::{Regex, RegexBuilder};

use super::excerpt;

/// How large a compiled pattern may grow: far past any real one (a 64 KiB line of `?` fits), and bounded, as Go's
/// regexp is, though not at the same size.
const SIZE_LIMIT: usize = 32 << 20;

/// Compiles a Go regular expression with Go's meaning. A Go syntax error is an error, worded as Go words it.
pub(super) fn to_regex(go: &str) -> Result<Regex, String> {
    let rust = translate(go)?;
    RegexBuilder::new(&rust).size_limit(SIZE_LIMIT).build().map_err(|e| match e {
        regex::Error::CompiledTooBig(_) => "the pattern is too large".to_owned(),
        e => format!("cannot compile the pattern: {e}"),
    })
}

/// Go's regular expression `go` in the `regex` crate's syntax.
pub(super) fn translate(go: &str) -> Result<String, String> {
    // The open groups, each a list of alternatives, each a list of atoms; a repetition applies to the last atom.
    let mut groups: Vec<Vec<Vec<String>>> = vec![vec![Vec::new()]];
    let mut rest = go;
    let mut last_was_repeat = false;
    while let Some(c) = rest.chars().next() {
        let after = &rest[c.len_utf8()..];
        let mut repeat = None;
        let mut atom = None;
        match c {
            '(' if after.starts_with('?') => return Err(unsupported("(?")),
            '(' => {
                groups.push(vec![Vec::new()]);
                rest = after;
            }
            ')' => {
                if groups.len() < 2 {
                    return Err(format!("unexpected ): `{}`", excerpt(go)));
                }
                atom = Some(format!("(?:{})", alternation(&groups.pop().unwrap_or_default())));
                rest = after;
            }
            '|' => {
                groups.last_mut().ok_or_else(|| unsupported(")"))?.push(Vec::new());
                rest = after;
            }
            '*' | '+' | '?' => repeat = Some((c.to_string(), after)),
            '{' => match counted_repeat(after) {
                Some(Ok((count, after))) => repeat = Some((count, after)),
                Some(Err(after)) => {
                    return Err(format!("invalid repeat count: `{}`", &rest[..rest.len() - after.len()]));
                }
                // Not a repetition: a `{` like any other.
                None => {
                    atom = Some(char_literal('{' as u32));
                    rest = after;
                }
            },
            '^' | '$' | '.' => {
                atom = Some(c.to_string());
                rest = after;
            }
            '[' => {
                let (class, after) = class(after)?;
                atom = Some(class);
                rest = after;
            }
            '\\' => {
                if let Some(literal) = after.strip_prefix('Q') {
                    // `\Q…\E`: all literal, up to `\E` or the end.
                    let (literal, after) = literal.split_once("\\E").unwrap_or((literal, ""));
                    current(&mut groups)?.extend(literal.chars().map(|c| char_literal(c as u32)));
                    rest = after;
                } else {
                    let (escaped, after) = escape_outside_class(rest)?;
                    atom = Some(escaped);
                    rest = after;
                }
            }
            c => {
                atom = Some(char_literal(c as u32));
                rest = after;
            }
        }
        if let Some((operator, after)) = &repeat {
            // As Go with Perl flags: a trailing `?` makes it lazy; `a**` is an error, not a doubled star.
            let (after, lazy) = match after.strip_prefix('?') {
                Some(after) => (after, "?"),
                None => (*after, ""),
            };
            let text = &rest[..rest.len() - after.len()];
            if last_was_repeat {
                return Err(format!("invalid nested repetition operator: `{text}`"));
            }
            let Some(last) = current(&mut groups)?.last_mut() else {
                return Err(format!("missing argument to repetition operator: `{text}`"));
            };
            *last = format!("(?:{last}){operator}{lazy}");
            rest = after;
        }
        if let Some(atom) = atom {
            current(&mut groups)?.push(atom);
        }
        last_was_repeat = repeat.is_some();
    }
    match groups.as_slice() {
        [top] => Ok(alternation(top)),
        _ => Err(format!("missing closing ): `{}`", excerpt(go))),
    }
}

/// The alternatives being added to.
fn current(groups: &mut [Vec<Vec<String>>]) -> Result<&mut Vec<String>, String> {
    groups.last_mut().and_then(|alternatives| alternatives.last_mut()).ok_or_else(|| unsupported("("))
}

fn alternation(alternatives: &[Vec<String>]) -> String {
    alternatives.iter().map(|atoms| atoms.concat()).collect::<Vec<_>>().join("|")
}

fn unsupported(what: &str) -> String {
    format!("unexpected `{what}` in a compiled pattern")
}

/// Go's `{min}`, `{min,}` or `{min,max}` (`s` follows the `{`), as the `regex` crate writes it, and what follows;
/// `None` if it is not one (then `{` is a character), an error if a count passes 1000 or `max` is below `min`.
fn counted_repeat(s: &str) -> Option<Result<(String, &str), &str>> {
    let (min, rest) = decimal(s)?;
    let (max, rest) = match rest.strip_prefix(',') {
        None => (Some(min), rest),
        Some(rest) if rest.starts_with('}') => (None, rest),
        Some(rest) => {
            let (max, rest) = decimal(rest)?;
            (Some(max), rest)
        }
    };
    let rest = rest.strip_prefix('}')?;
    let valid = min <= 1000 && max.is_none_or(|max| max <= 1000 && min <= max);
    Some(if !valid {
        Err(rest)
    } else if max == Some(min) {
        Ok((format!("{{{min}}}"), rest))
    } else {
        Ok((format!("{{{min},{}}}", max.map(|max| max.to_string()).unwrap_or_default()), rest))
    })
}

/// Go's `parseInt`: decimal digits without a leading zero, saturating far past any valid count.
fn decimal(s: &str) -> Option<(u64, &str)> {
    let digits = s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 || (digits > 1 && s.starts_with('0')) {
        return None;
    }
    let value = s[..digits].bytes().fold(0u64, |n, d| n.saturating_mul(10).saturating_add(u64::from(d - b'0')));
    Some((value, &s[digits..]))
}

/// A `\` outside brackets (`s` starts with it): an assertion, a class or one character.
fn escape_outside_class(s: &str) -> Result<(String, &str), String> {
    let after = &s[1..];
    let assertion = match after.chars().next() {
        Some('A') => Some(r"\A"),
        Some('z') => Some(r"\z"),
        // Go's word boundaries are ASCII ones.
        Some('b') => Some(r"(?-u:\b)"),
        Some('B') => Some(r"(?-u:\B)"),
        Some('C') => return Err("invalid escape sequence: `\\C`".to_owned()),
        _ => None,
    };
    if let Some(assertion) = assertion {
        return Ok((assertion.to_owned(), &after[1..]));
    }
    if let Some(class) = named_escape(s) {
        return class;
    }
    let (code, rest) = escape(s)?;
    Ok((char_literal(code), rest))
}

/// A Unicode (`\pL`) or Perl (`\d`) class at the start of `s`, which Go reads the same in and out of brackets.
fn named_escape(s: &str) -> Option<Result<(String, &str), String>> {
    let mut chars = s.strip_prefix('\\')?.chars();
    let kind = chars.next()?;
    let after = chars.as_str();
    let (negated, ranges): (bool, &[(u32, u32)]) = match kind {
        'p' | 'P' => return Some(unicode_class(kind == 'P', after)),
        'd' => (false, DIGIT),
        'D' => (true, DIGIT),
        's' => (false, PERL_SPACE),
        'S' => (true, PERL_SPACE),
        'w' => (false, WORD),
        'W' => (true, WORD),
        _ => return None,
    };
    Some(Ok((ranges_class(negated, ranges), after)))
}

/// `\pX`, `\p{Name}`, or negated with `P` or `{^` (`after` follows the `p`), with the names Go (before 1.25)
/// knows: `Any`, the general categories and the scripts, spelt exactly. Go's `C` holds no unassigned code point,
/// unlike the `regex` crate's.
fn unicode_class(negated: bool, after: &str) -> Result<(String, &str), String> {
    let (name, rest) = match after.strip_prefix('{') {
        Some(braced) => {
            let end =
                braced.find('}').ok_or_else(|| format!("invalid character class range: `\\p{{{}`", excerpt(braced)))?;
            (&braced[..end], &braced[end + 1..])
        }
        None => after.split_at(after.chars().next().map_or(0, char::len_utf8)),
    };
    let (negated, plain) = match name.strip_prefix('^') {
        Some(plain) => (!negated, plain),
        None => (negated, name),
    };
    let items = match plain {
        "Any" => format!("{}-{}", char_literal(0), char_literal(0x10ffff)),
        "C" => r"\p{gc=Cc}\p{gc=Cf}\p{gc=Co}".to_owned(),
        // Surrogates: in no string.
        "Cs" => NOTHING.to_owned(),
        _ if GO_CATEGORIES.contains(&plain) => format!(r"\p{{gc={plain}}}"),
        _ if GO_SCRIPTS.contains(&plain) => format!(r"\p{{sc={plain}}}"),
        _ => return Err(format!("invalid character class range: `\\p{{{}}}`", excerpt(name))),
    };
    Ok((format!("[{}{items}]", if negated { "^" } else { "" }), rest))
}

/// The general categories Go's regexp knows by name.
pub(super) const GO_CATEGORIES: &[&str] = &[
    "C", "Cc", "Cf", "Co", "Cs", "L", "Ll", "Lm", "Lo", "Lt", "Lu", "M", "Mc", "Me", "Mn", "N", "Nd", "Nl", "No", "P",
    "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "S", "Sc", "Sk", "Sm", "So", "Z", "Zl", "Zp", "Zs",
];

/// The scripts Go's regexp knows by name (Unicode 15, Go 1.21 on).
pub(super) const GO_SCRIPTS: &[&str] = &[
    "Adlam",
    "Ahom",
    "Anatolian_Hieroglyphs",
    "Arabic",
    "Armenian",
    "Avestan",
    "Balinese",
    "Bamum",
    "Bassa_Vah",
    "Batak",
    "Bengali",
    "Bhaiksuki",
    "Bopomofo",
    "Brahmi",
    "Braille",
    "Buginese",
    "Buhid",
    "Canadian_Aboriginal",
    "Carian",
    "Caucasian_Albanian",
    "Chakma",
    "Cham",
    "Cherokee",
    "Chorasmian",
    "Common",
    "Coptic",
    "Cuneiform",
    "Cypriot",
    "Cypro_Minoan",
    "Cyrillic",
    "Deseret",
    "Devanagari",
    "Dives_Akuru",
    "Dogra",
    "Duployan",
    "Egyptian_Hieroglyphs",
    "Elbasan",
    "Elymaic",
    "Ethiopic",
    "Georgian",
    "Glagolitic",
    "Gothic",
    "Grantha",
    "Greek",
    "Gujarati",
    "Gunjala_Gondi",
    "Gurmukhi",
    "Han",
    "Hangul",
    "Hanifi_Rohingya",
    "Hanunoo",
    "Hatran",
    "Hebrew",
    "Hiragana",
    "Imperial_Aramaic",
    "Inherited",
    "Inscriptional_Pahlavi",
    "Inscriptional_Parthian",
    "Javanese",
    "Kaithi",
    "Kannada",
    "Katakana",
    "Kawi",
    "Kayah_Li",
    "Kharoshthi",
    "Khitan_Small_Script",
    "Khmer",
    "Khojki",
    "Khudawadi",
    "Lao",
    "Latin",
    "Lepcha",
    "Limbu",
    "Linear_A",
    "Linear_B",
    "Lisu",
    "Lycian",
    "Lydian",
    "Mahajani",
    "Makasar",
    "Malayalam",
    "Mandaic",
    "Manichaean",
    "Marchen",
    "Masaram_Gondi",
    "Medefaidrin",
    "Meetei_Mayek",
    "Mende_Kikakui",
    "Meroitic_Cursive",
    "Meroitic_Hieroglyphs",
    "Miao",
    "Modi",
    "Mongolian",
    "Mro",
    "Multani",
    "Myanmar",
    "Nabataean",
    "Nag_Mundari",
    "Nandinagari",
    "New_Tai_Lue",
    "Newa",
    "Nko",
    "Nushu",
    "Nyiakeng_Puachue_Hmong",
    "Ogham",
    "Ol_Chiki",
    "Old_Hungarian",
    "Old_Italic",
    "Old_North_Arabian",
    "Old_Permic",
    "Old_Persian",
    "Old_Sogdian",
    "Old_South_Arabian",
    "Old_Turkic",
    "Old_Uyghur",
    "Oriya",
    "Osage",
    "Osmanya",
    "Pahawh_Hmong",
    "Palmyrene",
    "Pau_Cin_Hau",
    "Phags_Pa",
    "Phoenician",
    "Psalter_Pahlavi",
    "Rejang",
    "Runic",
    "Samaritan",
    "Saurashtra",
    "Sharada",
    "Shavian",
    "Siddham",
    "SignWriting",
    "Sinhala",
    "Sogdian",
    "Sora_Sompeng",
    "Soyombo",
    "Sundanese",
    "Syloti_Nagri",
    "Syriac",
    "Tagalog",
    "Tagbanwa",
    "Tai_Le",
    "Tai_Tham",
    "Tai_Viet",
    "Takri",
    "Tamil",
    "Tangsa",
    "Tangut",
    "Telugu",
    "Thaana",
    "Thai",
    "Tibetan",
    "Tifinagh",
    "Tirhuta",
    "Toto",
    "Ugaritic",
    "Vai",
    "Vithkuqi",
    "Wancho",
    "Warang_Citi",
    "Yezidi",
    "Yi",
    "Zanabazar_Square",
];

/// Go's `parseEscape` (`s` starts with `\`): the character an escape stands for.
fn escape(s: &str) -> Result<(u32, &str), String> {
    let after = &s[1..];
    let Some(c) = after.chars().next() else { return Err("trailing backslash at end of expression".to_owned()) };
    let mut rest = &after[c.len_utf8()..];
    let invalid = |rest: &str| format!("invalid escape sequence: `{}`", &s[..s.len() - rest.len()]);
    let code = match c {
        // A single non-zero digit would be a backreference, which Go refuses.
        '1'..='7' if !rest.starts_with(|d: char| ('0'..='7').contains(&d)) => return Err(invalid(rest)),
        '0'..='7' => {
            let mut code = c as u32 - '0' as u32;
            for _ in 0..2 {
                match rest.chars().next().and_then(|d| d.to_digit(8)) {
                    Some(digit) => {
                        code = code * 8 + digit;
                        rest = &rest[1..];
                    }
                    None => break,
                }
            }
            code
        }
        'x' => {
            let mut chars = rest.chars();
            let code = match chars.next() {
                Some('{') => {
                    let hex = chars.as_str();
                    let end = hex.find('}').ok_or_else(|| invalid(""))?;
                    let digits = &hex[..end];
                    if digits.is_empty() || !digits.chars().all(|d| d.is_ascii_hexdigit()) {
                        return Err(invalid(&hex[end..]));
                    }
                    rest = &hex[end + 1..];
                    u32::from_str_radix(digits, 16).ok().filter(|&code| code <= 0x10ffff)
                }
                Some(high) => {
                    let low = chars.next();
                    rest = chars.as_str();
                    match (high.to_digit(16), low.and_then(|low| low.to_digit(16))) {
                        (Some(high), Some(low)) => Some(high * 16 + low),
                        _ => None,
                    }
                }
                None => None,
            };
            code.ok_or_else(|| invalid(rest))?
        }
        'a' => 0x07,
        'f' => 0x0c,
        'n' => 0x0a,
        'r' => 0x0d,
        't' => 0x09,
        'v' => 0x0b,
        // Any other ASCII punctuation stands for itself.
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => c as u32,
        _ => return Err(invalid(rest)),
    };
    Ok((code, rest))
}

/// Go's `parseClass`: `s` follows the `[`. Returns the class and what follows its `]`.
fn class(s: &str) -> Result<(String, &str), String> {
    let missing = || format!("missing closing ]: `[{}`", excerpt(s));
    let mut out = String::from("[");
    let mut t = s;
    if let Some(after) = t.strip_prefix('^') {
        out.push('^');
        t = after;
    }
    let mut first = true;
    loop {
        if t.is_empty() {
            return Err(missing());
        }
        // A `]` first in the class is a character.
        if !first && let Some(after) = t.strip_prefix(']') {
            t = after;
            break;
        }
        first = false;
        // `[:alpha:]`, if a `:]` follows anywhere: Go takes the first one, so an unknown name is an error.
        if t.len() > 2
            && t.starts_with("[:")
            && let Some(end) = t[2..].find(":]")
        {
            let name = &t[..end + 4];
            let (negated, ranges) =
                posix_class(name).ok_or_else(|| format!("invalid character class range: `{name}`"))?;
            out.push_str(&ranges_class(negated, ranges));
            t = &t[end + 4..];
            continue;
        }
        if let Some(named) = named_escape(t) {
            let (class, after) = named?;
            out.push_str(&class);
            t = after;
            continue;
        }
        let (low, after) = class_char(t).ok_or_else(missing)??;
        t = after;
        let mut high = low;
        if let Some(after) = t.strip_prefix('-')
            && !after.is_empty()
            && !after.starts_with(']')
        {
            let (end, after) = class_char(after).ok_or_else(missing)??;
            if end < low {
                return Err(format!("invalid character class range: `{}-{}`", code_text(low), code_text(end)));
            }
            high = end;
            t = after;
        }
        out.push_str(&range_items(low, high));
    }
    out.push(']');
    Ok((out, t))
}

/// Go's `parseClassChar`: one character of a class, escaped or not.
fn class_char(s: &str) -> Option<Result<(u32, &str), String>> {
    if s.starts_with('\\') {
        return Some(escape(s));
    }
    let c = s.chars().next()?;
    Some(Ok((c as u32, &s[c.len_utf8()..])))
}

fn code_text(code: u32) -> String {
    char::from_u32(code).map_or_else(|| format!("\\x{{{code:x}}}"), String::from)
}

/// A class that matches nothing, nestable in another class.
const NOTHING: &str = r"[^\x{0}-\x{10ffff}]";

/// One character for the `regex` crate. Go takes a surrogate (`\x{d800}`), which no string holds.
fn char_literal(code: u32) -> String {
    if (0xd800..=0xdfff).contains(&code) { NOTHING.to_owned() } else { format!("\\x{{{code:x}}}") }
}

/// Class items for `low..=high`, less the surrogates, which no string holds and the `regex` crate refuses.
fn range_items(low: u32, high: u32) -> String {
    let mut items = String::new();
    for (low, high) in [(low, high.min(0xd7ff)), (low.max(0xe000), high)] {
        if low <= high {
            items.push_str(&char_literal(low));
            if high != low {
                items.push('-');
                items.push_str(&char_literal(high));
            }
        }
    }
    if items.is_empty() { NOTHING.to_owned() } else { items }
}

/// A class of `ranges`, or of everything else when negated, nestable in another class.
fn ranges_class(negated: bool, ranges: &[(u32, u32)]) -> String {
    let mut out = String::from(if negated { "[^" } else { "[" });
    for &(low, high) in ranges {
        out.push_str(&range_items(low, high));
    }
    out.push(']');
    out
}

const DIGIT: &[(u32, u32)] = &[(0x30, 0x39)];
/// Go's `\s`: no `\v`, unlike `[:space:]`.
const PERL_SPACE: &[(u32, u32)] = &[(0x09, 0x0a), (0x0c, 0x0d), (0x20, 0x20)];
const WORD: &[(u32, u32)] = &[(0x30, 0x39), (0x41, 0x5a), (0x5f, 0x5f), (0x61, 0x7a)];

/// Go's POSIX classes, `[:name:]` or negated `[:^name:]`: ASCII only.
fn posix_class(name: &str) -> Option<(bool, &'static [(u32, u32)])> {
    let inner = name.strip_prefix("[:")?.strip_suffix(":]")?;
    let (negated, inner) = match inner.strip_prefix('^') {
        Some(inner) => (true, inner),
        None => (false, inner),
    };
    let ranges: &[(u32, u32)] = match inner {
        "alnum" => &[(0x30, 0x39), (0x41, 0x5a), (0x61, 0x7a)],
        "alpha" => &[(0x41, 0x5a), (0x61, 0x7a)],
        "ascii" => &[(0x00, 0x7f)],
        "blank" => &[(0x09, 0x09), (0x20, 0x20)],
        "cntrl" => &[(0x00, 0x1f), (0x7f, 0x7f)],
        "digit" => DIGIT,
        "graph" => &[(0x21, 0x7e)],
        "lower" => &[(0x61, 0x7a)],
        "print" => &[(0x20, 0x7e)],
        "punct" => &[(0x21, 0x2f), (0x3a, 0x40), (0x5b, 0x60), (0x7b, 0x7e)],
        "space" => &[(0x09, 0x0d), (0x20, 0x20)],
        "upper" => &[(0x41, 0x5a)],
        "word" => WORD,
        "xdigit" => &[(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
        _ => return None,
    };
    Some((negated, ranges))
}
