//! The few facts gm reads from S3's XML answers: an error's `Code` and `Message`, a multipart
//! upload's `UploadId`, and the `Contents` of a `ListObjectsV2` page. The answers come from a
//! storage server gm was told to trust with its backups, but not with its process: reading is
//! bounded (a capped body, no recursion, no entity expansion beyond the five predefined entities
//! and numeric references), and anything unexpected is "absent", never a panic.
//!
//! Must not: interpret namespaces, attributes, CDATA or DTDs (S3 answers use none of them for
//! these elements); a field hidden in one of them reads as absent.

/// The text of each `<tag>…</tag>` element directly in `xml`, in order (nested elements of the
/// same name are not expected in S3 answers and are not distinguished).
pub(crate) fn all<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(&after[..end]);
        rest = &after[end + close.len()..];
    }
    out
}

/// The unescaped text of the first `<tag>…</tag>` in `xml`.
pub(crate) fn first(xml: &str, tag: &str) -> Option<String> {
    all(xml, tag).first().map(|t| unescape(t))
}

/// Replaces the five predefined XML entities and numeric character references; an unknown or
/// broken reference is kept as written.
pub(crate) fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let tail = &rest[amp..];
        let Some(semi) = tail.find(';').filter(|&s| s <= 12) else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let name = &tail[1..semi];
        let decoded = match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => name
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// One object of a `ListObjectsV2` page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    /// The key, as sent (still percent-encoded when the request asked for `encoding-type=url`).
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its ETag, without quotes.
    pub etag: String,
}

/// The objects of a `ListObjectsV2` page and its continuation token (`None` on the last page).
pub(crate) fn list_page(xml: &str) -> (Vec<Listed>, Option<String>) {
    let listed = all(xml, "Contents")
        .into_iter()
        .filter_map(|c| {
            Some(Listed {
                key: first(c, "Key")?,
                size: first(c, "Size")?.trim().parse().ok()?,
                etag: first(c, "ETag").unwrap_or_default().trim_matches('"').to_string(),
            })
        })
        .collect();
    let truncated = first(xml, "IsTruncated").is_some_and(|t| t.trim() == "true");
    let token = if truncated { first(xml, "NextContinuationToken") } else { None };
    (listed, token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_error_and_unescapes_it() {
        let xml = "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>a &lt;b&gt; &amp; &#65;&#x42; &bogus; & x</Message></Error>";
        assert_eq!(first(xml, "Code").as_deref(), Some("NoSuchBucket"));
        assert_eq!(first(xml, "Message").as_deref(), Some("a <b> & AB &bogus; & x"));
        assert_eq!(first(xml, "Missing"), None);
        assert_eq!(first("<Code>unterminated", "Code"), None);
    }

    #[test]
    fn reads_a_list_page_and_its_token() {
        let xml = "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>p/a%20b</Key><Size>12</Size>\
                   <ETag>&quot;abc&quot;</ETag></Contents><Contents><Key>p/c</Key><Size>x</Size></Contents>\
                   <NextContinuationToken>t&amp;1</NextContinuationToken></ListBucketResult>";
        let (listed, token) = list_page(xml);
        assert_eq!(listed, vec![Listed { key: "p/a%20b".into(), size: 12, etag: "abc".into() }]);
        assert_eq!(token.as_deref(), Some("t&1"));
        let (_, last) = list_page("<IsTruncated>false</IsTruncated><NextContinuationToken>t</NextContinuationToken>");
        assert_eq!(last, None);
    }
}
