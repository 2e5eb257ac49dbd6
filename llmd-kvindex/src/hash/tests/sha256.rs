//! The in-place one-shot SHA-256 equals `sha2::Sha256::digest` at every
//! padding boundary, and leaves the payload untouched.

use sha2::Digest as _;

use crate::hash::buf::Buf;
use crate::hash::sha256::sha256;

#[test]
fn in_place_sha256_matches_sha2() {
    let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
    let mut buf = Buf::default();
    for len in 0..data.len() {
        buf.clear();
        buf.extend(&data[..len]);
        let want: [u8; 32] = sha2::Sha256::digest(&data[..len]).into();
        assert_eq!(sha256(&mut buf), want, "length {len}");
        assert_eq!(buf.as_slice(), &data[..len]);
    }
}
