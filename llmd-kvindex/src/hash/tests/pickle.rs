//! Pickle bytes checked against CPython 3 `pickle.dumps(x, protocol=5)`; the
//! large payloads are compared by SHA-256 of CPython's output.

use super::{hex, sha256_hex};
use crate::hash::buf::Buf;
use crate::hash::extras::{Atom, Elem};
use crate::hash::pickle::{Memo, Pickler};

fn block(parent: &[u8], toks: &[u64], extra: &[Elem<'_>]) -> Vec<u8> {
    let (mut buf, mut memo) = (Buf::default(), Memo::default());
    let mut p = Pickler::begin(&mut buf, &mut memo);
    p.open_tuple(3);
    p.save_bytes(parent);
    p.save_tokens(toks);
    p.save_extra(extra);
    p.close_tuple(3);
    p.finish();
    buf.as_slice().to_vec()
}

fn parent() -> Vec<u8> {
    (0..32).collect()
}

#[test]
fn ints_use_cpython_opcodes() {
    let cases: &[(i64, &str)] = &[
        (0, "4b00"),
        (255, "4bff"),
        (256, "4d0001"),
        (65535, "4dffff"),
        (65536, "4a00000100"),
        (2147483647, "4affffff7f"),
        (2147483648, "8a050000008000"),
        (-1, "4affffffff"),
        (-129, "4a7fffffff"),
        (-2147483648, "4a00000080"),
        (-2147483649, "8a05ffffff7fff"),
        (-4294967296, "8a0500000000ff"),
        (-549755813888, "8a050000000080"),
        (i64::MIN, "8a080000000000000080"),
        (i64::MAX, "8a08ffffffffffffff7f"),
        (1 << 40, "8a06000000000001"),
    ];
    for &(v, want) in cases {
        let (mut buf, mut memo) = (Buf::default(), Memo::default());
        Pickler::fragment(&mut buf, &mut memo, 0).save_int(v);
        assert_eq!(hex(buf.as_slice()), want, "int {v}");
    }
}

#[test]
fn u64_tokens_use_long1() {
    // pickle.dumps((2**64-1, 2**32), protocol=5)
    let (mut buf, mut memo) = (Buf::default(), Memo::default());
    let mut p = Pickler::begin(&mut buf, &mut memo);
    p.save_tokens(&[u64::MAX, 1 << 32]);
    p.finish();
    assert_eq!(
        hex(buf.as_slice()),
        "80059515000000000000008a09ffffffffffffffff008a05000000000186942e"
    );
}

#[test]
fn tiny_payloads_have_no_frame() {
    // pickle.dumps("") keeps a 4-byte frame; pickle.dumps(1) has none.
    let (mut buf, mut memo) = (Buf::default(), Memo::default());
    let mut p = Pickler::begin(&mut buf, &mut memo);
    p.save_str("");
    p.finish();
    assert_eq!(hex(buf.as_slice()), "80059504000000000000008c00942e");
    let mut p = Pickler::begin(&mut buf, &mut memo);
    p.save_int(1);
    p.finish();
    assert_eq!(hex(buf.as_slice()), "80054b012e");
}

#[test]
fn large_token_tuple_spans_frames() {
    // (bytes(range(32)), tuple(70000 + i for i in range(20000)), None)
    let toks: Vec<u64> = (0..20000).map(|i| 70000 + i).collect();
    let out = block(&parent(), &toks, &[]);
    assert_eq!(out.len(), 100062);
    assert_eq!(
        hex(&out[..24]),
        "80059500000100000000004320000102030405060708090a"
    );
    assert_eq!(
        sha256_hex(&out),
        "e06f860d883efac3ad03365a96d02d1826224dc1b48e11119bad46c7774943eb"
    );
}

#[test]
fn large_bytes_bypass_frames_and_singletons_recur() {
    // (bytes(range(32)), (5,)*16, ("x", b"\x01" * 70000, "x"))
    let big = vec![1u8; 70000];
    let extra = [
        Elem::One(Atom::Str("x")),
        Elem::One(Atom::Bytes(&big)),
        Elem::One(Atom::Str("x")),
    ];
    let out = block(&parent(), &[5; 16], &extra);
    assert_eq!(out.len(), 70107);
    assert_eq!(
        sha256_hex(&out),
        "d0fd18a112c9e3b454f7d367eb9ddb43ffc836fdf4fe155ed5ba3d1bc93aef22"
    );
}

#[test]
fn long_strings_and_empty_singletons() {
    // (bytes(range(32)), (1, 2, 3), ("n" * 300, "", ""))
    let name = "n".repeat(300);
    let extra = [
        Elem::One(Atom::Str(&name)),
        Elem::One(Atom::Str("")),
        Elem::One(Atom::Str("")),
    ];
    let out = block(&parent(), &[1, 2, 3], &extra);
    assert_eq!(out.len(), 370);
    assert_eq!(
        sha256_hex(&out),
        "714d3aa33b929bea65bd8ff86b1b08e0da12b19e9462aaa2854ec9cd9b63c4f2"
    );
}

#[test]
fn steady_layout_equals_general_serialization() {
    use crate::hash::cbor;
    use crate::hash::config::HashAlgo;
    use crate::hash::digest::Digest;
    use crate::hash::extras::Tag;
    use crate::hash::layout::Layout;
    let loras = [
        None,
        Some(Elem::One(Atom::Str("x"))),
        Some(Elem::One(Atom::Int(7))),
        Some(Elem::Three(
            Atom::Tag(Tag::Lora),
            Atom::Str("x"),
            Atom::Str("x"),
        )),
    ];
    let algos = [
        HashAlgo::Sha256,
        HashAlgo::Xxhash,
        HashAlgo::Sha256Cbor,
        HashAlgo::XxhashCbor,
    ];
    let toks: Vec<u64> = (0..40).map(|i| (i * 2654435761u64) >> (i % 40)).collect();
    for algo in algos {
        let parent = Digest::from_slice(&[7; 32][..algo.digest_len()]).unwrap();
        for block_size in [1, 2, 3, 4, 17, 40] {
            let toks = &toks[..block_size];
            for lora in &loras {
                let steady = lora.as_slice();
                let mut memo = Memo::default();
                let layout = Layout::new(algo, block_size, steady, &mut memo);
                assert!(layout.usable());
                let mut fast = Buf::default();
                layout.write(&mut fast, &parent, toks);
                let general = if algo.uses_pickle() {
                    block(parent.as_bytes(), toks, steady)
                } else {
                    let mut b = Buf::default();
                    cbor::parent(&mut b, parent.as_bytes(), false);
                    cbor::tokens(&mut b, toks);
                    cbor::extra(&mut b, steady);
                    b.as_slice().to_vec()
                };
                assert_eq!(
                    hex(fast.as_slice()),
                    hex(&general),
                    "{algo} B={block_size} {lora:?}"
                );
            }
        }
    }
}
