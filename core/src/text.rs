//! Showing text a plugin or a provider controls: control characters escaped, so a
//! plugin cannot move the cursor, ring the bell, recolour the terminal or start a new
//! line that looks like the host's own.

use std::borrow::Cow;

/// Whether `c` could change how surrounding text is shown: C0 and C1 controls, DEL,
/// line and paragraph separators, and the bidirectional overrides and isolates.
pub fn is_control(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// `text` with every control character written as `\n`, `\t`, `\r` or `\u{XX}`.
/// Backslashes are left alone: a plugin that writes `\n` literally is shown as one
/// with a newline, and either way stays on its own line.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_control(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Multi-line text for a console: each line's control characters escaped, the line
/// breaks kept (so a value holding `\n` cannot forge a line of its own).
pub fn escape_lines(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c != '\n' && is_control(c)) {
        return Cow::Borrowed(text);
    }
    let lines: Vec<Cow<'_, str>> = text.split('\n').map(escape_controls).collect();
    Cow::Owned(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_plain_text_is_borrowed() {
        assert!(matches!(escape_controls("plain text é"), Cow::Borrowed(_)));
        assert_eq!(
            escape_controls("ok\n\u{1b}[32mvictim succeeded\u{7}"),
            "ok\\n\\u{1b}[32mvictim succeeded\\u{7}"
        );
        assert_eq!(escape_controls("a\u{202E}b\u{85}c"), "a\\u{202e}b\\u{85}c");
        assert_eq!(escape_controls("tab\there\r"), "tab\\there\\r");
    }

    #[test]
    fn lines_keep_their_breaks() {
        assert!(matches!(escape_lines("a\nb\n"), Cow::Borrowed(_)));
        assert_eq!(escape_lines("a\u{1b}[2K\nb\r\n"), "a\\u{1b}[2K\nb\\r\n");
    }
}
