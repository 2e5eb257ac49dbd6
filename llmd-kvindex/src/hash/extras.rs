//! Request properties that enter block hashes and the per-block extra keys
//! vLLM derives from them (SPEC §2.5).

use sha2::Digest as _;

use super::config::{ExtraKeySchema, VllmVersion};
use super::error::HashError;

/// Everything besides tokens that changes a request's block hashes.
/// `Default` is a text-only request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestExtras {
    /// The LoRA adapter the request runs with.
    pub lora: Option<LoraRef>,
    /// vLLM's `cache_salt`; hashed into block 0 only, and only when non-empty.
    pub cache_salt: Option<String>,
    /// Multimodal items in placeholder order (sorted by offset).
    pub mm_items: Vec<MmItem>,
    /// Embedding rows of a request given as prompt embeddings.
    pub prompt_embeds: Option<PromptEmbeds>,
}

/// A LoRA adapter; which fields are hashed depends on the schema.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoraRef {
    /// `lora_int_id` (schema 0.11.0).
    pub id: Option<i64>,
    /// `lora_name` (schemas 0.11.1 and later).
    pub name: Option<String>,
    /// `lora_path` (schema 0.31).
    pub path: Option<String>,
}

/// A multimodal item: its identifier (vLLM's item hash) and the token range
/// `[offset, offset + length)` of its placeholder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MmItem {
    /// vLLM's multimodal item hash.
    pub identifier: String,
    /// First placeholder token.
    pub offset: usize,
    /// Number of placeholder tokens (at least 1).
    pub length: usize,
}

/// The prompt-embedding tensor as contiguous row-major bytes, one row per token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromptEmbeds {
    /// Row-major tensor bytes.
    pub data: Vec<u8>,
    /// Bytes per row (hidden size × element size).
    pub row_bytes: usize,
}

/// One element of a block's extra-key tuple, as vLLM builds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExtraKey {
    /// A Python int.
    Int(i64),
    /// A Python str.
    Str(String),
    /// A Python bytes.
    Bytes(Vec<u8>),
    /// A Python tuple.
    Tuple(Vec<ExtraKey>),
}

/// The constant tag strings of schema 0.31: one Python object each, so a
/// repeated tag is a pickle memo back-reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tag {
    Lora = 0,
    Mm = 1,
    CacheSalt = 2,
    PromptEmbeds = 3,
}

impl Tag {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Tag::Lora => "lora",
            Tag::Mm => "mm",
            Tag::CacheSalt => "cache_salt",
            Tag::PromptEmbeds => "prompt_embeds",
        }
    }
}

/// A scalar inside an extra key, borrowed from the request.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Atom<'a> {
    Int(i64),
    Str(&'a str),
    Tag(Tag),
    Bytes(&'a [u8]),
    Sha256([u8; 32]),
}

/// An extra-key element: a scalar or a tuple of two or three scalars.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Elem<'a> {
    One(Atom<'a>),
    Two(Atom<'a>, Atom<'a>),
    Three(Atom<'a>, Atom<'a>, Atom<'a>),
}

impl Atom<'_> {
    fn to_key(self) -> ExtraKey {
        match self {
            Atom::Int(v) => ExtraKey::Int(v),
            Atom::Str(s) => ExtraKey::Str(s.to_owned()),
            Atom::Tag(t) => ExtraKey::Str(t.as_str().to_owned()),
            Atom::Bytes(b) => ExtraKey::Bytes(b.to_vec()),
            Atom::Sha256(d) => ExtraKey::Bytes(d.to_vec()),
        }
    }
}

impl Elem<'_> {
    pub(crate) fn to_key(self) -> ExtraKey {
        match self {
            Elem::One(a) => a.to_key(),
            Elem::Two(a, b) => ExtraKey::Tuple(vec![a.to_key(), b.to_key()]),
            Elem::Three(a, b, c) => ExtraKey::Tuple(vec![a.to_key(), b.to_key(), c.to_key()]),
        }
    }
}

/// Builds the extra keys of blocks of one request, block after block.
#[derive(Debug)]
pub(crate) struct ExtrasCursor<'a> {
    extras: &'a RequestExtras,
    schema: ExtraKeySchema,
    raw_embeds: bool,
    lora: Option<Elem<'a>>,
    mm_next: usize,
}

impl<'a> ExtrasCursor<'a> {
    /// Validates `extras` for the schema and prepares the per-request parts.
    pub(crate) fn new(
        extras: &'a RequestExtras,
        schema: ExtraKeySchema,
        version: VllmVersion,
    ) -> Result<Self, HashError> {
        let lora = match &extras.lora {
            None => None,
            Some(lora) => Some(lora_elem(lora, schema)?),
        };
        let mut prev_offset = 0;
        for (index, item) in extras.mm_items.iter().enumerate() {
            if item.length == 0 {
                return Err(HashError::InvalidMmItem {
                    index,
                    reason: "length is 0",
                });
            }
            if item.offset < prev_offset {
                return Err(HashError::InvalidMmItem {
                    index,
                    reason: "items must be sorted by offset (placeholder order)",
                });
            }
            let item_end = item.offset.checked_add(item.length);
            if item_end.and_then(|e| i64::try_from(e).ok()).is_none() {
                return Err(HashError::InvalidMmItem {
                    index,
                    reason: "offset overflows",
                });
            }
            prev_offset = item.offset;
        }
        if let Some(pe) = &extras.prompt_embeds {
            if pe.row_bytes == 0 {
                return Err(HashError::ZeroEmbeddingRow);
            }
        }
        Ok(ExtrasCursor {
            extras,
            schema,
            raw_embeds: schema == ExtraKeySchema::V0_11_1 && version < VllmVersion::new(0, 17, 0),
            lora,
            mm_next: 0,
        })
    }

    /// The per-request constant part: what every block carries when it has no
    /// salt, no multimodal item and no embedding key.
    pub(crate) fn steady(&self) -> Option<Elem<'a>> {
        self.lora
    }

    /// Whether the block starting at `start` carries only `steady()`, known
    /// without scanning: no multimodal items, no hashed embeddings, and no salt
    /// unless it is block 0.
    #[inline]
    pub(crate) fn is_steady(&self, start: usize) -> bool {
        let extras = self.extras;
        let embeds = extras.prompt_embeds.is_some() && self.schema != ExtraKeySchema::V0_11_0;
        let salted = start == 0 && extras.cache_salt.as_deref().is_some_and(|s| !s.is_empty());
        extras.mm_items.is_empty() && !embeds && !salted
    }

    /// Checks that the embeddings cover tokens `[0, end)`.
    pub(crate) fn check_covers(&self, end: usize) -> Result<(), HashError> {
        match &self.extras.prompt_embeds {
            Some(pe) if self.schema != ExtraKeySchema::V0_11_0 => {
                let rows = pe.data.len() / pe.row_bytes;
                if rows < end {
                    return Err(HashError::EmbeddingsTooShort {
                        rows,
                        row_bytes: pe.row_bytes,
                        needed: end,
                    });
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Fills `out` with the extra keys of the block `[start, end)` and tells
    /// whether they differ from `steady()`. Blocks must come in increasing order,
    /// and `check_covers(end)` must have passed.
    pub(crate) fn block(&mut self, start: usize, end: usize, out: &mut Vec<Elem<'a>>) -> bool {
        out.clear();
        let mut varying = false;
        if let Some(lora) = self.lora {
            out.push(lora);
        }
        let items = &self.extras.mm_items;
        while items
            .get(self.mm_next)
            .is_some_and(|it| it.offset + it.length <= start)
        {
            self.mm_next += 1;
        }
        for item in items.get(self.mm_next..).unwrap_or(&[]) {
            if item.offset >= end {
                break;
            }
            if start < item.offset + item.length {
                varying = true;
                // Offsets were checked to fit in i64 in `new`.
                let rel = item.offset as i64 - start as i64;
                let id = Atom::Str(&item.identifier);
                out.push(match self.schema {
                    ExtraKeySchema::V0_11_0 | ExtraKeySchema::V0_11_1 => Elem::One(id),
                    ExtraKeySchema::V0_19 => Elem::Two(id, Atom::Int(rel)),
                    ExtraKeySchema::V0_31 => Elem::Three(Atom::Tag(Tag::Mm), id, Atom::Int(rel)),
                });
            }
        }
        if start == 0 {
            if let Some(salt) = self.extras.cache_salt.as_deref().filter(|s| !s.is_empty()) {
                varying = true;
                out.push(match self.schema {
                    ExtraKeySchema::V0_31 => Elem::Two(Atom::Tag(Tag::CacheSalt), Atom::Str(salt)),
                    _ => Elem::One(Atom::Str(salt)),
                });
            }
        }
        if let Some(pe) = &self.extras.prompt_embeds {
            if self.schema != ExtraKeySchema::V0_11_0 {
                varying = true;
                // `check_covers(end)` guarantees the rows exist.
                let rows = pe
                    .data
                    .get(start * pe.row_bytes..end * pe.row_bytes)
                    .unwrap_or(&[]);
                let key = if self.raw_embeds {
                    Atom::Bytes(rows)
                } else {
                    Atom::Sha256(sha2::Sha256::digest(rows).into())
                };
                out.push(match self.schema {
                    ExtraKeySchema::V0_31 => Elem::Two(Atom::Tag(Tag::PromptEmbeds), key),
                    _ => Elem::One(key),
                });
            }
        }
        varying
    }
}

fn lora_elem(lora: &LoraRef, schema: ExtraKeySchema) -> Result<Elem<'_>, HashError> {
    let missing = |field| HashError::MissingLoraField {
        schema: schema.as_str(),
        field,
    };
    let name = || {
        lora.name
            .as_deref()
            .map(Atom::Str)
            .ok_or_else(|| missing("name"))
    };
    Ok(match schema {
        ExtraKeySchema::V0_11_0 => Elem::One(Atom::Int(lora.id.ok_or_else(|| missing("int id"))?)),
        ExtraKeySchema::V0_11_1 | ExtraKeySchema::V0_19 => Elem::One(name()?),
        ExtraKeySchema::V0_31 => {
            let path = lora.path.as_deref().ok_or_else(|| missing("path"))?;
            Elem::Three(Atom::Tag(Tag::Lora), name()?, Atom::Str(path))
        }
    })
}
