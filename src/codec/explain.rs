//! serde's decoding errors in the contract's words: the field, what it
//! must be, never the value (it may be PHI) and no Rust type names.

use crate::domain::encounter::MAX_MINUTES;

/// serde's message in the contract's words. serde quotes the offending
/// value ("invalid type: string \"…\"", "invalid value: integer `…`",
/// "unknown variant `…`"). That value may be patient data or an NPI, or a
/// whole double-encoded event, and error messages travel into logs and
/// dead-letter headers: never repeat it. Only what serde writes itself is
/// kept: the kind of value it found (one word) and what was expected (the
/// text after the *last* ", expected ", which the value cannot fake: serde
/// writes it after the value), said without Rust's type names. Any other
/// message that could quote something is replaced whole.
pub(super) fn explain(path: &str, message: String) -> String {
    if path.starts_with("encounter.patient") {
        return "invalid value (not shown: patient data)".to_owned();
    }
    // serde_json appends the position; keep it.
    let (text, position) = match message.rfind(" at line ") {
        Some(i) => message.split_at(i),
        None => (message.as_str(), ""),
    };
    let expected = text.rsplit_once(", expected ").map(|(_, e)| e);
    for prefix in ["invalid type: ", "invalid value: "] {
        if let (Some(rest), Some(expected)) = (text.strip_prefix(prefix), expected) {
            let kind = rest
                .split(|c: char| !c.is_ascii_alphabetic())
                .next()
                .unwrap_or("");
            let wanted = expected_in_words(path, expected);
            return if prefix == "invalid value: " && kind == "integer" {
                // The right type, out of range.
                format!("must be {wanted} (value not shown){position}")
            } else {
                format!(
                    "must be {wanted}, not {} (value not shown){position}",
                    found_in_words(kind)
                )
            };
        }
    }
    if let (Some(_), Some(expected)) = (text.strip_prefix("unknown variant "), expected) {
        return format!("unknown value (not shown), expected {expected}{position}");
    }
    let ours = ["missing field `", "duplicate field `", "invalid length "];
    if ours.iter().any(|p| text.starts_with(p)) || !text.contains(['`', '"']) {
        return message;
    }
    format!("invalid value (not shown){position}")
}

/// What serde expected, in JSON's words: no Rust type names.
fn expected_in_words(path: &str, expected: &str) -> String {
    let field = path.rsplit('.').next().unwrap_or(path);
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" => {
            let (lo, hi) = match field {
                "version" => (1, i32::MAX as u32),
                "minutes" | "assistant_minutes" => (0, MAX_MINUTES),
                _ => (0, u32::MAX),
            };
            format!("an integer from {lo} to {hi}")
        }
        "a sequence" => "a JSON array".to_owned(),
        "a map" => "a JSON object".to_owned(),
        "a boolean" => "true or false".to_owned(),
        "a borrowed string" => "a string".to_owned(),
        e if e.starts_with("struct ") || e.starts_with("enum ") => "a JSON object".to_owned(),
        e => e.to_owned(),
    }
}

/// The kind of value serde found, in JSON's words.
fn found_in_words(kind: &str) -> &'static str {
    match kind {
        "integer" => "an integer",
        "floating" => "a number with a fraction",
        "string" | "char" => "a string",
        "boolean" => "true or false",
        "null" | "unit" | "Option" => "null",
        "sequence" => "an array",
        "map" => "an object",
        _ => "another kind of value",
    }
}
