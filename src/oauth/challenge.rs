//! `WWW-Authenticate` challenges (RFC 9110 §11.6.1), parsed without I/O: every header line, every
//! challenge in it, case-insensitive scheme and parameter names, quoted or token values. The MCP
//! authorization spec reads `resource_metadata`, `scope`, `error` and `error_description` from a
//! `Bearer` challenge (or `DPoP`, which DPoP servers use for unauthenticated requests).

/// One challenge: `Bearer realm="x", scope="a b"` or `Negotiate abc==` (a token68).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
    pub token68: Option<String>,
}

impl Challenge {
    /// A parameter by name (names are case-insensitive; the first one wins).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether this challenge asks for an OAuth access token (`Bearer` or `DPoP`).
    pub fn is_oauth(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("bearer") || self.scheme.eq_ignore_ascii_case("dpop")
    }
}

/// Every challenge of every header line, in order.
pub fn parse_all<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<Challenge> {
    lines.into_iter().flat_map(parse).collect()
}

/// The OAuth challenge (`Bearer`, else `DPoP`) among `challenges`.
pub fn oauth(challenges: &[Challenge]) -> Option<&Challenge> {
    challenges
        .iter()
        .find(|c| c.scheme.eq_ignore_ascii_case("bearer"))
        .or_else(|| challenges.iter().find(|c| c.is_oauth()))
}

/// Whether any OAuth challenge demands a DPoP nonce (RFC 9449 §9). Not only the one [`oauth`]
/// picks: a server that takes both schemes sends `Bearer …, DPoP error="use_dpop_nonce"`.
pub fn demands_dpop_nonce(challenges: &[Challenge]) -> bool {
    challenges
        .iter()
        .any(|c| c.is_oauth() && c.param("error") == Some("use_dpop_nonce"))
}

/// The challenges of one header value. Malformed parts are skipped, never a panic.
pub fn parse(header: &str) -> Vec<Challenge> {
    let mut scanner = Scanner {
        s: header.as_bytes(),
        pos: 0,
    };
    let mut out = Vec::new();
    loop {
        scanner.skip(|b| b == b',' || is_space(b));
        if scanner.at_end() {
            return out;
        }
        let scheme = scanner.token();
        if scheme.is_empty() {
            scanner.pos += 1; // not a token character: skip it
            continue;
        }
        let mut challenge = Challenge {
            scheme,
            ..Challenge::default()
        };
        scanner.skip(is_space);
        scanner.params_into(&mut challenge);
        out.push(challenge);
    }
}

struct Scanner<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip(&mut self, what: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&what) {
            self.pos += 1;
        }
    }

    fn token(&mut self) -> String {
        let start = self.pos;
        self.skip(crate::http::is_tchar);
        String::from_utf8_lossy(&self.s[start..self.pos]).into_owned()
    }

    /// The auth-params (or token68) after a scheme; stops before the next challenge's scheme.
    fn params_into(&mut self, challenge: &mut Challenge) {
        loop {
            self.skip(|b| b == b',' || is_space(b));
            let start = self.pos;
            let name = self.token();
            if name.is_empty() {
                return;
            }
            self.skip(is_space);
            if self.peek() != Some(b'=') {
                // A bare token: a token68 right after the scheme, else the next challenge's scheme.
                if challenge.params.is_empty() && challenge.token68.is_none() && self.ends_item() {
                    challenge.token68 = Some(name);
                    continue;
                }
                self.pos = start;
                return;
            }
            if challenge.params.is_empty() && challenge.token68.is_none() && self.is_padding() {
                // `abc==`: a token68 with padding, not a parameter.
                self.skip(|b| b == b'=');
                challenge.token68 = Some(format!(
                    "{name}{}",
                    String::from_utf8_lossy(&self.s[start + name.len()..self.pos])
                        .trim_start_matches(|c: char| c.is_ascii_whitespace())
                ));
                continue;
            }
            self.pos += 1; // '='
            self.skip(is_space);
            let value = if self.peek() == Some(b'"') {
                self.quoted()
            } else {
                self.token()
            };
            challenge.params.push((name, value));
        }
    }

    /// After a bare token: the end of the header or a comma (skipping spaces) follows.
    fn ends_item(&self) -> bool {
        let rest = &self.s[self.pos..];
        rest.iter()
            .find(|b| !is_space(**b))
            .is_none_or(|b| *b == b',')
    }

    /// At `=`: only `=` characters and then the end of the item follow (token68 padding).
    fn is_padding(&self) -> bool {
        let rest = &self.s[self.pos..];
        let after = rest.iter().position(|b| *b != b'=').unwrap_or(rest.len());
        rest[after..]
            .iter()
            .find(|b| !is_space(**b))
            .is_none_or(|b| *b == b',')
    }

    /// A quoted-string starting at `"`, with `\` escapes; an unterminated one runs to the end.
    fn quoted(&mut self) -> String {
        self.pos += 1;
        let mut value = Vec::new();
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(next) = self.peek() {
                        value.push(next);
                        self.pos += 1;
                    }
                }
                _ => value.push(b),
            }
        }
        String::from_utf8_lossy(&value).into_owned()
    }
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(header: &str) -> Challenge {
        let all = parse(header);
        assert_eq!(all.len(), 1, "{all:?}");
        all.into_iter().next().unwrap_or_default()
    }

    #[test]
    fn reads_a_bearer_challenge_with_quoted_parameters() {
        let c = one(
            r#"Bearer resource_metadata="http://h:1/.well-known/oauth-protected-resource/mcp", scope="mcp:read mcp:write""#,
        );
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(
            c.param("resource_metadata"),
            Some("http://h:1/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(c.param("SCOPE"), Some("mcp:read mcp:write"));
    }

    #[test]
    fn a_nonce_demand_counts_in_any_oauth_challenge() {
        let both = parse(
            r#"Bearer resource_metadata="https://h/prm", DPoP error="use_dpop_nonce", error_description="nonce""#,
        );
        assert!(oauth(&both).is_some_and(|c| c.scheme == "Bearer"));
        assert!(demands_dpop_nonce(&both));
        assert!(demands_dpop_nonce(&parse(r#"DPoP error="use_dpop_nonce""#)));
        assert!(!demands_dpop_nonce(&parse(
            r#"Bearer error="invalid_token", Basic error="use_dpop_nonce""#
        )));
    }

    #[test]
    fn reads_several_challenges_in_one_line() {
        let all = parse(r#"Basic realm="a, b", Bearer error=insufficient_scope, scope="x""#);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].param("realm"), Some("a, b"));
        assert_eq!(all[1].param("error"), Some("insufficient_scope"));
        assert_eq!(all[1].param("scope"), Some("x"));
        assert!(oauth(&all).is_some_and(|c| c.scheme == "Bearer"));
    }

    #[test]
    fn reads_token68_and_bare_schemes() {
        let all = parse("Negotiate abc==, Bearer, DPoP algs=\"ES256\"");
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].token68.as_deref(), Some("abc=="));
        assert_eq!(all[1].scheme, "Bearer");
        assert!(all[1].params.is_empty());
        assert_eq!(all[2].param("algs"), Some("ES256"));
    }

    #[test]
    fn unescapes_quoted_values_and_survives_garbage() {
        let c = one(r#"bearer error_description="say \"hi\"""#);
        assert_eq!(c.param("error_description"), Some(r#"say "hi""#));
        for junk in [
            "",
            ",,,",
            "\"",
            "=",
            "Bearer =",
            "Bearer a=\"unterminated",
            "é Bearer x=1",
        ] {
            let _ = parse(junk);
        }
        assert_eq!(
            parse("é Bearer x=1").last().and_then(|c| c.param("x")),
            Some("1")
        );
    }

    #[test]
    fn dpop_challenge_counts_as_oauth_when_no_bearer() {
        let all = parse(r#"DPoP error="use_dpop_nonce", algs="ES256""#);
        assert_eq!(oauth(&all).map(|c| c.scheme.as_str()), Some("DPoP"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,200}") {
            let _ = parse(&s);
        }
    }
}
