//! A line of a decision's explanation. Plugins on the pick path record what
//! they found as data; the text is formatted only when the explanation is
//! built (most decisions are never explained, and formatting a line costs
//! more than most scorers).

use std::fmt;
use std::sync::Arc;

/// One explanation line ([`crate::framework::CycleContext::note`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Note {
    /// A line as written.
    Text(String),
    /// A prefix producer's index lookup.
    PrefixLookup(PrefixLookupNote),
}

/// What a prefix producer's lookup found, for its explanation line.
#[derive(Clone, Debug, PartialEq)]
pub struct PrefixLookupNote {
    /// The producer's instance name.
    pub producer: Arc<str>,
    /// Blocks the prompt hashed into.
    pub blocks: u32,
    /// Tokens per block, where the line names it (the approximate producer).
    pub block_size: Option<u32>,
    /// The longest consecutive match over the candidates, in blocks.
    pub best: u32,
    /// Block positions the lookups probed.
    pub probed: u32,
    /// Served-model groups looked up (the precise producer; 1 for one).
    pub groups: u32,
}

impl From<String> for Note {
    fn from(s: String) -> Self {
        Note::Text(s)
    }
}

impl From<&str> for Note {
    fn from(s: &str) -> Self {
        Note::Text(s.to_string())
    }
}

impl From<PrefixLookupNote> for Note {
    fn from(n: PrefixLookupNote) -> Self {
        Note::PrefixLookup(n)
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::Text(s) => f.write_str(s),
            Note::PrefixLookup(n) => n.fmt(f),
        }
    }
}

impl fmt::Display for PrefixLookupNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let PrefixLookupNote {
            producer,
            blocks,
            block_size,
            best,
            probed,
            groups,
        } = self;
        match block_size {
            Some(bs) => write!(
                f,
                "{producer}: {blocks} blocks of {bs} tokens, best match {best} blocks ({probed} probed)"
            ),
            None if *groups > 1 => write!(
                f,
                "{producer}: {blocks} full blocks, best consecutive match {best} blocks ({groups} served-model groups, {probed} blocks probed)"
            ),
            None => write!(
                f,
                "{producer}: {blocks} full blocks, best consecutive match {best} blocks ({probed} probed)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines read as the producers wrote them before they were deferred.
    #[test]
    fn formats_the_producers_lines() {
        let n = |block_size, groups| PrefixLookupNote {
            producer: Arc::from("p"),
            blocks: 128,
            block_size,
            best: 7,
            probed: 9,
            groups,
        };
        assert_eq!(
            Note::from(n(Some(64), 1)).to_string(),
            "p: 128 blocks of 64 tokens, best match 7 blocks (9 probed)"
        );
        assert_eq!(
            Note::from(n(None, 1)).to_string(),
            "p: 128 full blocks, best consecutive match 7 blocks (9 probed)"
        );
        assert_eq!(
            Note::from(n(None, 3)).to_string(),
            "p: 128 full blocks, best consecutive match 7 blocks (3 served-model groups, 9 blocks probed)"
        );
        assert_eq!(Note::from("as is").to_string(), "as is");
    }
}
