//! A bound on what a YAML document expands to. serde's YAML reader replays
//! an anchored subtree at every alias (`*a`), so a few kilobytes of nested
//! aliases (a list of a thousand aliases of a list of a thousand aliases
//! ...) would build billions of values before any check sees them: the
//! process runs out of memory instead of refusing the file. Every YAML
//! document a user hands the library (configs, scenarios, discovery files)
//! is first walked here, counting nodes as the reader produces them and
//! stopping at the bound, without building anything.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The most nodes (scalars, sequences, mappings; aliases counted as what
/// they expand to) a document may have. Real configs have hundreds.
pub const MAX_YAML_NODES: usize = 1_000_000;

/// Refuses `text` when its nodes, aliases expanded, number more than `max`;
/// a document that does not parse is left for the real parse to report.
pub fn check_yaml_nodes(text: &str, max: usize) -> Result<(), String> {
    // The YAML reader takes time quadratic in flow nesting (`[[[[...`) before
    // its own depth limit (128) refuses it: 100 KB of brackets took 14 s.
    if let Some(depth) = flow_depth_over(text, MAX_FLOW_DEPTH) {
        return Err(format!(
            "the YAML document nests flow collections ([ or {{) {depth} deep or more \
             (at most {MAX_FLOW_DEPTH}): refused"
        ));
    }
    let seen = Cell::new(0usize);
    let counter = Count { seen: &seen, max };
    match counter.deserialize(serde_yaml_ng::Deserializer::from_str(text)) {
        Err(_) if seen.get() > max => Err(format!(
            "the YAML document expands to more than {max} nodes (aliases counted as \
             what they repeat): refused"
        )),
        _ => Ok(()),
    }
}

/// Deeper flow nesting than the YAML reader's own limit (128) can never
/// parse; this bound leaves room for brackets this scan miscounts (inside
/// block scalars).
const MAX_FLOW_DEPTH: usize = 256;

/// The depth, once it passes `max`, of `[` / `{` nesting outside quoted
/// scalars and comments; `None` when it stays within `max`.
fn flow_depth_over(text: &str, max: usize) -> Option<usize> {
    let (mut depth, mut quote, mut comment, mut prev) = (0usize, None::<char>, false, '\n');
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\n') if comment => comment = false,
            _ if comment => {}
            (Some('"'), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '#') if prev.is_whitespace() => comment = true,
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{') => {
                depth += 1;
                if depth > max {
                    return Some(depth);
                }
            }
            (None, ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        prev = c;
    }
    None
}

#[derive(Clone, Copy)]
struct Count<'a> {
    seen: &'a Cell<usize>,
    max: usize,
}

impl Count<'_> {
    fn bump<E: de::Error>(self) -> Result<(), E> {
        self.seen.set(self.seen.get() + 1);
        if self.seen.get() > self.max {
            return Err(E::custom("node budget exceeded"));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Count<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Count<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.bump()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.bump()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.bump()
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        self.bump()
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        self.bump()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.bump()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.bump()
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<(), E> {
        self.bump()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.bump()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.bump()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        self.bump()?;
        while items.next_element_seed(self)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<(), A::Error> {
        self.bump()?;
        while entries.next_key_seed(self)?.is_some() {
            entries.next_value_seed(self)?;
        }
        Ok(())
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, tagged: A) -> Result<(), A::Error> {
        // A tagged value (`!tag value`): the tag, then the value.
        use de::VariantAccess;
        self.bump()?;
        let (_, value) = tagged.variant_seed(self)?;
        value.newtype_variant_seed(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three levels of a thousand aliases: 10⁹ nodes from 8 KB. Refused
    /// after the budget, having built nothing.
    #[test]
    fn nested_aliases_are_refused_before_they_expand() {
        let list = |item: &str| format!("[{}]", vec![item; 1000].join(","));
        let text = format!(
            "a: &a {}\nb: &b {}\nc: {}\n",
            list("0"),
            list("*a"),
            list("*b")
        );
        assert!(text.len() < 10_000);
        let err = check_yaml_nodes(&text, MAX_YAML_NODES).unwrap_err();
        assert!(err.contains("expands to more than 1000000 nodes"), "{err}");
        // The config loader refuses it with that message.
        let config = format!(
            "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n\
             plugins:\n- type: queue-scorer\n  parameters:\n    a: &a {}\n    b: &b {}\n    c: {}\n",
            list("0"),
            list("*a"),
            list("*b")
        );
        let err = crate::config::document::parse(&config)
            .unwrap_err()
            .to_string();
        assert!(err.contains("expands to more than"), "{err}");
    }

    /// Deep flow nesting is refused at once (the reader's own limit came
    /// after a scan quadratic in the depth); brackets in quoted scalars and
    /// comments do not count.
    #[test]
    fn deep_flow_nesting_is_refused_before_the_reader_sees_it() {
        let text = format!("name: {}", "[".repeat(100_000));
        let err = check_yaml_nodes(&text, MAX_YAML_NODES).unwrap_err();
        assert!(err.contains("nests flow collections"), "{err}");
        let quoted = format!(
            "a: '{0}'\nb: \"{0}\\\"\" # {0}\nc: [[1], {{d: [2]}}]\n",
            "[".repeat(1000)
        );
        assert_eq!(check_yaml_nodes(&quoted, MAX_YAML_NODES), Ok(()));
    }

    #[test]
    fn ordinary_documents_pass_and_are_counted_whole() {
        let text = "plugins:\n- type: queue-scorer\n  parameters: {a: &x [1, 2], b: *x}\n";
        assert_eq!(check_yaml_nodes(text, MAX_YAML_NODES), Ok(()));
        // The root map, `plugins`, its list, the item's map, `type` and its
        // value, `parameters` and its map, `a`, `b` and two 3-node lists
        // (the alias counted as what it repeats): 16 nodes.
        assert_eq!(check_yaml_nodes(text, 16), Ok(()));
        assert!(check_yaml_nodes(text, 15).is_err());
        // Not YAML: left for the real parse to report.
        assert_eq!(check_yaml_nodes("a: [", MAX_YAML_NODES), Ok(()));
        let tagged = "x: !Custom {y: 1}\n";
        assert_eq!(check_yaml_nodes(tagged, MAX_YAML_NODES), Ok(()));
    }
}
