//! The registry auth protocol's texts: `WWW-Authenticate` challenges and token-endpoint answers.

use std::collections::HashMap;

use serde::Deserialize;

/// What a registry asked for in a 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    /// Get a token from `realm` (the distribution token flow).
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

impl Challenge {
    /// The scheme's name, for logs.
    pub(crate) fn scheme(&self) -> &'static str {
        match self {
            Challenge::Basic => "Basic",
            Challenge::Bearer { .. } => "Bearer",
        }
    }
}

/// The most useful challenge among a 401's `WWW-Authenticate` headers (Bearer before Basic).
pub(crate) fn pick_challenge<'a>(headers: impl IntoIterator<Item = &'a str>) -> Option<Challenge> {
    let mut challenges: Vec<Challenge> = headers.into_iter().filter_map(parse_challenge).collect();
    challenges.sort_by_key(|c| matches!(c, Challenge::Basic));
    challenges.into_iter().next()
}

/// One challenge, e.g. `Bearer realm="https://auth/token",service="reg",scope="repository:a:pull"`; other
/// schemes and a Bearer without realm give `None`.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(char::is_whitespace).unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = parse_params(rest);
    let realm = params.remove("realm").filter(|r| !r.is_empty())?;
    let service = params.remove("service").filter(|s| !s.is_empty());
    Some(Challenge::Bearer { realm, service })
}

/// `key=value` pairs separated by commas; values may be quoted (with `\` escapes). Keys are lowercased.
fn parse_params(text: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    let mut chars = text.chars().peekable();
    let is_separator = |c: char| c == ',' || c.is_whitespace();
    loop {
        while chars.next_if(|&c| is_separator(c)).is_some() {}
        let mut key = String::new();
        while let Some(c) = chars.next_if(|&c| c != '=' && !is_separator(c)) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next_if_eq(&'=').is_none() {
            if chars.peek().is_none() {
                return params;
            }
            // A bare token (not key=value): nothing to keep.
            continue;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    _ => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|&c| !is_separator(c)) {
                value.push(c);
            }
        }
        if !key.is_empty() {
            params.insert(key.to_ascii_lowercase(), value);
        }
    }
}

/// A token endpoint's JSON answer: `token`, or OAuth's `access_token`.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenAnswer {
    token: Option<String>,
    access_token: Option<String>,
}

impl TokenAnswer {
    pub(crate) fn into_token(self) -> Option<String> {
        self.token.filter(|t| !t.is_empty()).or(self.access_token.filter(|t| !t.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(realm: &str, service: Option<&str>) -> Challenge {
        Challenge::Bearer { realm: realm.into(), service: service.map(Into::into) }
    }

    #[test]
    fn bearer_challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull,push""#
            ),
            Some(bearer("https://auth.docker.io/token", Some("registry.docker.io")))
        );
        assert_eq!(
            parse_challenge(r#"bearer  Realm = "https://a/t?x=\"1\"" , error="insufficient_scope""#),
            Some(bearer(r#"https://a/t?x="1""#, None))
        );
        assert_eq!(parse_challenge("Bearer realm=https://a/t,service=reg"), Some(bearer("https://a/t", Some("reg"))));
        assert_eq!(parse_challenge(r#"Bearer service="reg""#), None);
        assert_eq!(parse_challenge(r#"Bearer realm="""#), None);
        assert_eq!(parse_challenge("Bearer"), None);
        assert_eq!(parse_challenge(r#"Bearer token68, realm="r""#), Some(bearer("r", None)));
        assert_eq!(parse_challenge(r#"Bearer ==, realm="r"#), Some(bearer("r", None)));
    }

    #[test]
    fn other_challenges() {
        assert_eq!(parse_challenge(r#"Basic realm="imgraph-test""#), Some(Challenge::Basic));
        assert_eq!(parse_challenge("BASIC"), Some(Challenge::Basic));
        assert_eq!(parse_challenge(r#"Negotiate"#), None);
        assert_eq!(parse_challenge(""), None);
        assert_eq!(pick_challenge([r#"Basic realm="x""#, r#"Bearer realm="r""#]), Some(bearer("r", None)));
        assert_eq!(pick_challenge(["Digest x=1"]), None);
    }

    #[test]
    fn token_answers() {
        let parse = |s: &str| serde_json::from_str::<TokenAnswer>(s).unwrap().into_token();
        assert_eq!(parse(r#"{"token":"a","access_token":"b"}"#).as_deref(), Some("a"));
        assert_eq!(parse(r#"{"token":"","access_token":"b"}"#).as_deref(), Some("b"));
        assert_eq!(parse(r#"{"expires_in":60}"#), None);
    }
}
