//! Re-checks an audit export's redaction: every value under a key that upstream's rule redacts
//! must read `<redacted>` (`ops::audit_export`), on every line of a JSONL export or every element
//! of a JSON one.

use crate::ops::audit_export::{REDACTED, REDACTED_KEY_PARTS};

/// The number of events checked, or the first leak found (event number and key; never the value).
pub(crate) fn recheck(text: &str) -> Result<usize, String> {
    let events: Vec<serde_json::Value> = if text.trim_start().starts_with('[') {
        serde_json::from_str(text).map_err(|e| format!("not a JSON export: {e}"))?
    } else {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {} is not JSON: {e}", i + 1)))
            .collect::<Result<_, _>>()?
    };
    for (i, event) in events.iter().enumerate() {
        if let Some(key) = leak(event) {
            return Err(format!("event {} carries an unredacted {key:?}", i + 1));
        }
    }
    Ok(events.len())
}

fn leak(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Object(m) => m.iter().find_map(|(k, v)| {
            let lower = k.to_lowercase();
            if REDACTED_KEY_PARTS.iter().any(|p| lower.contains(p)) {
                (v.as_str() != Some(REDACTED)).then(|| k.clone())
            } else {
                leak(v)
            }
        }),
        serde_json::Value::Array(a) => a.iter().find_map(leak),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_exports_pass_and_a_leak_is_named_without_its_value() {
        let clean =
            "{\"details\": {\"nonce\": \"<redacted>\", \"reason\": \"invalid_signature\"}, \"event_type\": \"x\"}\n";
        assert_eq!(recheck(clean), Ok(1));
        assert_eq!(recheck("[{\"details\": [{\"token_fingerprint\": \"<redacted>\"}]}]"), Ok(1));
        let leak = "{\"details\": {\"reason\": \"x\"}}\n{\"details\": {\"items\": [{\"Signature\": \"c2VjcmV0\"}]}}\n";
        let e = recheck(leak).unwrap_err();
        assert!(e.contains("event 2") && e.contains("Signature") && !e.contains("c2VjcmV0"), "{e}");
        assert!(recheck("not json\n").is_err());
    }
}
