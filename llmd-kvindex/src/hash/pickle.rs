//! Pickle protocol 5 exactly as CPython's C pickler writes vLLM hash payloads
//! (SPEC §2.3.2), including framing and memo back-references.
//!
//! Framing is emulated, not assumed: CPython checks before saving each object
//! whether the open frame holds 64 KiB or more and then closes it, and writes
//! strings and byte strings of 64 KiB or more outside any frame. Small payloads
//! therefore have one frame; large blocks get several, as in CPython.

use super::buf::Buf;
use super::digest::TokenId;
use super::extras::{Atom, Elem, Tag};
use super::tokens;

const PROTO: [u8; 2] = [0x80, 0x05];
const FRAME: u8 = 0x95;
const FRAME_HEADER: usize = 9;
const FRAME_SIZE_MIN: usize = 4;
const FRAME_SIZE_TARGET: usize = 64 * 1024;
const MEMOIZE: u8 = 0x94;
const MARK: u8 = 0x28;
const TUPLE: u8 = 0x74;
const TUPLE_N: [u8; 4] = [0x29, 0x85, 0x86, 0x87];
const NONE: u8 = 0x4e;
const STOP: u8 = 0x2e;

/// Memo indices of the objects that can recur within one payload: the four tag
/// strings and CPython's singleton strings ("" and one char below U+0100).
#[derive(Clone, Debug, Default)]
pub(crate) struct Memo {
    tags: [Option<u32>; 4],
    singletons: Vec<(u32, u32)>,
}

/// A pickler writing one payload into a `Buf`.
pub(crate) struct Pickler<'b> {
    out: &'b mut Buf,
    memo: &'b mut Memo,
    frame_start: Option<usize>,
    framing: bool,
    next_memo: u32,
}

impl<'b> Pickler<'b> {
    /// Clears `out` and writes the protocol header (outside any frame).
    pub(crate) fn begin(out: &'b mut Buf, memo: &'b mut Memo) -> Self {
        out.clear();
        out.extend(&PROTO);
        memo.tags = [None; 4];
        memo.singletons.clear();
        Pickler {
            out,
            memo,
            frame_start: None,
            framing: true,
            next_memo: 0,
        }
    }

    /// Bytes in the open frame.
    #[inline]
    fn frame_len(&self) -> usize {
        self.frame_start
            .map_or(0, |s| self.out.len() - s - FRAME_HEADER)
    }

    #[inline]
    fn write(&mut self, data: &[u8]) {
        if self.framing && self.frame_start.is_none() {
            self.frame_start = Some(self.out.len());
            self.out.extend(&[0; FRAME_HEADER]);
        }
        self.out.extend(data);
    }

    fn commit_frame(&mut self) {
        if let Some(start) = self.frame_start.take() {
            let len = self.out.len() - start - FRAME_HEADER;
            if len >= FRAME_SIZE_MIN {
                let mut header = [FRAME; FRAME_HEADER];
                header[1..].copy_from_slice(&(len as u64).to_le_bytes());
                self.out.patch(start, &header);
            } else {
                self.out.remove(start, FRAME_HEADER);
            }
        }
    }

    /// What CPython does at the start of every `save()`.
    #[inline]
    fn boundary(&mut self) {
        if self.frame_len() >= FRAME_SIZE_TARGET {
            self.commit_frame();
        }
    }

    fn memoize(&mut self) -> u32 {
        self.write(&[MEMOIZE]);
        self.next_memo += 1;
        self.next_memo - 1
    }

    fn get(&mut self, idx: u32) {
        match u8::try_from(idx) {
            Ok(i) => self.write(&[0x68, i]),
            Err(_) => {
                self.write(&[0x6a]);
                self.write(&idx.to_le_bytes());
            }
        }
    }

    /// A str or bytes body: large ones bypass the frame, as in CPython.
    fn write_sized(&mut self, header: &[u8], data: &[u8]) {
        if data.len() >= FRAME_SIZE_TARGET {
            self.commit_frame();
            self.framing = false;
            self.write(header);
            self.write(data);
            self.framing = true;
        } else {
            self.write(header);
            self.write(data);
        }
    }

    pub(crate) fn save_none(&mut self) {
        self.boundary();
        self.write(&[NONE]);
    }

    pub(crate) fn save_int(&mut self, v: i64) {
        self.boundary();
        if (0..=0xff).contains(&v) {
            self.write(&[0x4b, v as u8]);
        } else if (0..=0xffff).contains(&v) {
            self.write(&[0x4d]);
            self.write(&(v as u16).to_le_bytes());
        } else if let Ok(v32) = i32::try_from(v) {
            self.write(&[0x4a]);
            self.write(&v32.to_le_bytes());
        } else {
            self.write_long(i128::from(v));
        }
    }

    /// LONG1: `8a n` + two's-complement little-endian bytes, sized as CPython's
    /// `encode_long` does (from the bit length of the absolute value).
    fn write_long(&mut self, v: i128) {
        let le = v.to_le_bytes();
        let bits = 128 - v.unsigned_abs().leading_zeros();
        let mut n = bits as usize / 8 + 1;
        if v < 0 && n > 1 && le[n - 1] == 0xff && le[n - 2] & 0x80 != 0 {
            n -= 1;
        }
        self.write(&[0x8a, n as u8]);
        self.write(&le[..n]);
    }

    pub(crate) fn save_bytes(&mut self, b: &[u8]) {
        self.boundary();
        // SHORT_BINBYTES, BINBYTES, BINBYTES8.
        self.write_counted([0x43, 0x42, 0x8e], b);
        self.memoize();
    }

    /// A str object that is not shared with any other in the payload.
    pub(crate) fn save_str(&mut self, s: &str) {
        self.boundary();
        self.write_str(s);
    }

    fn write_str(&mut self, s: &str) {
        // SHORT_BINUNICODE, BINUNICODE, BINUNICODE8.
        self.write_counted([0x8c, 0x58, 0x8d], s.as_bytes());
        self.memoize();
    }

    /// `b` after the smallest of `ops`' opcodes that counts its length: a
    /// 1-byte, 4-byte or 8-byte little-endian length.
    fn write_counted(&mut self, ops: [u8; 3], b: &[u8]) {
        match u8::try_from(b.len()) {
            Ok(n) => self.write_sized(&[ops[0], n], b),
            Err(_) => match u32::try_from(b.len()) {
                Ok(n) => {
                    let mut h = [ops[1], 0, 0, 0, 0];
                    h[1..].copy_from_slice(&n.to_le_bytes());
                    self.write_sized(&h, b);
                }
                Err(_) => {
                    let mut h = [ops[2], 0, 0, 0, 0, 0, 0, 0, 0];
                    h[1..].copy_from_slice(&(b.len() as u64).to_le_bytes());
                    self.write_sized(&h, b);
                }
            },
        }
    }

    /// A str as vLLM holds it: singletons are one object per payload.
    fn save_user_str(&mut self, s: &str) {
        self.boundary();
        let Some(key) = singleton_key(s) else {
            return self.write_str(s);
        };
        if let Some(&(_, idx)) = self.memo.singletons.iter().find(|(k, _)| *k == key) {
            return self.get(idx);
        }
        self.write_str(s);
        let idx = self.next_memo - 1;
        self.memo.singletons.push((key, idx));
    }

    fn save_tag(&mut self, tag: Tag) {
        self.boundary();
        let slot = tag as usize;
        match self.memo.tags[slot] {
            Some(idx) => self.get(idx),
            None => {
                self.write_str(tag.as_str());
                self.memo.tags[slot] = Some(self.next_memo - 1);
            }
        }
    }

    fn save_atom(&mut self, a: Atom<'_>) {
        match a {
            Atom::Int(v) => self.save_int(v),
            Atom::Str(s) => self.save_user_str(s),
            Atom::Tag(t) => self.save_tag(t),
            Atom::Bytes(b) => self.save_bytes(b),
            Atom::Sha256(d) => self.save_bytes(&d),
        }
    }

    /// Opens a tuple of `n` items (after the tuple's own `save()` boundary).
    #[inline]
    pub(crate) fn open_tuple(&mut self, n: usize) {
        self.boundary();
        if n > 3 {
            self.write(&[MARK]);
        }
    }

    /// Closes a tuple of `n >= 1` items.
    #[inline]
    pub(crate) fn close_tuple(&mut self, n: usize) {
        self.write(&[*TUPLE_N.get(n).unwrap_or(&TUPLE)]);
        self.memoize();
    }

    /// The tokens of a block as a tuple of ints.
    pub(crate) fn save_tokens<T: TokenId>(&mut self, toks: &[T]) {
        if toks.is_empty() {
            self.boundary();
            return self.write(&[TUPLE_N[0]]);
        }
        self.open_tuple(toks.len());
        // No frame can close inside the tuple when it cannot reach 64 KiB.
        if self.frame_len() + toks.len() * tokens::PICKLE_MAX_BYTES < FRAME_SIZE_TARGET {
            if self.frame_start.is_none() {
                self.write(&[]);
            }
            tokens::pickle(self.out, toks);
        } else {
            for t in toks {
                self.boundary();
                self.write(&[]);
                tokens::pickle(self.out, std::slice::from_ref(t));
            }
        }
        self.close_tuple(toks.len());
    }

    /// The extra-key tuple, or None.
    pub(crate) fn save_extra(&mut self, elems: &[Elem<'_>]) {
        if elems.is_empty() {
            return self.save_none();
        }
        self.open_tuple(elems.len());
        for &e in elems {
            match e {
                Elem::One(a) => self.save_atom(a),
                Elem::Two(a, b) => {
                    self.open_tuple(2);
                    self.save_atom(a);
                    self.save_atom(b);
                    self.close_tuple(2);
                }
                Elem::Three(a, b, c) => {
                    self.open_tuple(3);
                    self.save_atom(a);
                    self.save_atom(b);
                    self.save_atom(c);
                    self.close_tuple(3);
                }
            }
        }
        self.close_tuple(elems.len());
    }

    /// A piece of a payload without protocol header or frames, memo indices
    /// starting at `first_memo`: used to precompute constant payload tails.
    pub(crate) fn fragment(out: &'b mut Buf, memo: &'b mut Memo, first_memo: u32) -> Self {
        out.clear();
        memo.tags = [None; 4];
        memo.singletons.clear();
        Pickler {
            out,
            memo,
            frame_start: None,
            framing: false,
            next_memo: first_memo,
        }
    }

    /// Writes STOP (ending a fragment or payload).
    pub(crate) fn stop(&mut self) {
        self.write(&[STOP]);
    }

    /// Writes STOP and closes the last frame.
    pub(crate) fn finish(mut self) {
        self.write(&[STOP]);
        self.commit_frame();
    }
}

/// `Some` for strings CPython keeps as singletons: "" and one char below U+0100.
fn singleton_key(s: &str) -> Option<u32> {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (None, _) => Some(256),
        (Some(c), None) if (c as u32) < 256 => Some(c as u32),
        _ => None,
    }
}
