//! The glob language of policies: `*` matches any run of characters (none included) and
//! `\` makes the next character literal (`\*` a star, `\\` a backslash); every other
//! character is literal. Templated config values are escaped with [`glob_escape`], so a
//! value can never widen a pattern.

/// One pattern element. Escapes are resolved, so a literal `*` is `Lit(b'*')`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    Star,
    Lit(u8),
}

/// The pattern as tokens; runs of `*` are one star (same meaning, less backtracking).
pub(crate) fn tokens(pattern: &str) -> Vec<Tok> {
    let mut out = Vec::with_capacity(pattern.len());
    let mut bytes = pattern.bytes();
    while let Some(b) = bytes.next() {
        let tok = match b {
            b'*' => Tok::Star,
            // A lone backslash at the end stands for itself.
            b'\\' => Tok::Lit(bytes.next().unwrap_or(b'\\')),
            _ => Tok::Lit(b),
        };
        if !(tok == Tok::Star && out.last() == Some(&Tok::Star)) {
            out.push(tok);
        }
    }
    out
}

/// Whether `p` matches all of `text`; `fold` compares ASCII letters case-insensitively.
/// Greedy with one backtrack point, which is exact for `*`-only globs: O(|p|·|text|).
pub(crate) fn match_tokens(p: &[Tok], text: &[u8], fold: bool) -> bool {
    let same = |a: u8, b: u8| a == b || (fold && a.eq_ignore_ascii_case(&b));
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while let Some(&c) = text.get(ti) {
        match p.get(pi) {
            Some(Tok::Star) => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(Tok::Lit(l)) if same(*l, c) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .unwrap_or_default()
        .iter()
        .all(|t| *t == Tok::Star)
}

/// `*` matches any run of characters (including none), `\x` matches `x`; everything else
/// is literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    match_tokens(&tokens(pattern), text.as_bytes(), false)
}

/// `text` as a glob that matches exactly `text`: `*` and `\` escaped.
pub fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Whether `pattern` holds a `*` that is not escaped.
pub(crate) fn has_star(pattern: &str) -> bool {
    tokens(pattern).contains(&Tok::Star)
}

/// Byte offset of the first unescaped byte of `set` in `s` at or after `from`, which
/// must not be inside an escape.
pub(crate) fn find_unescaped(s: &str, from: usize, set: &[u8]) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = from;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' {
            i += 2;
        } else if set.contains(&b) {
            return Some(i);
        } else {
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_and_literals() {
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a**", "a"));
        assert!(!glob_match("a*b", "a"));
        assert!(!glob_match("", "a"));
        assert!(glob_match("kandji_*", "kandji_device"));
    }

    #[test]
    fn escapes_make_stars_and_backslashes_literal() {
        assert!(glob_match(r"a\*b", "a*b"));
        assert!(
            !glob_match(r"a\*b", "axxb"),
            "an escaped star is no wildcard"
        );
        assert!(glob_match(r"a\\b", r"a\b"));
        assert!(glob_match(r"a\\*", r"a\anything"));
        assert!(
            glob_match(r"a\", r"a\"),
            "a trailing backslash stands for itself"
        );
        assert!(!glob_match(r"a\b", r"a\b"), "\\b is a plain b");
        for text in ["", "*", r"\", r"a\*b", "**", r"\\*", "ü*ß"] {
            assert!(glob_match(&glob_escape(text), text), "{text:?}");
            assert!(!glob_match(&glob_escape(text), &format!("{text}x")));
        }
    }

    #[test]
    fn case_folding_is_opt_in() {
        let p = tokens("/Admin/*");
        assert!(!match_tokens(&p, b"/admin/x", false));
        assert!(match_tokens(&p, b"/ADMIN/x", true));
    }

    #[test]
    fn unescaped_search_skips_escapes() {
        assert_eq!(find_unescaped(r"a\/b/c", 0, b"/"), Some(4));
        assert_eq!(find_unescaped(r"a\\/b", 0, b"/"), Some(3));
        assert_eq!(find_unescaped(r"ab\", 0, b"/"), None);
        assert!(has_star("a*") && !has_star(r"a\*"));
    }
}
