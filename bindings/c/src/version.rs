//! Library version, as macros in the header and at run time.

use std::ffi::c_char;

/// Major version of the header (`LLMD_VERSION_MAJOR`).
pub const LLMD_VERSION_MAJOR: u32 = 0;
/// Minor version of the header (`LLMD_VERSION_MINOR`).
pub const LLMD_VERSION_MINOR: u32 = 1;
/// Patch version of the header (`LLMD_VERSION_PATCH`).
pub const LLMD_VERSION_PATCH: u32 = 0;

/// The library's version as `"MAJOR.MINOR.PATCH"`, static and NUL-terminated.
/// Compare with the `LLMD_VERSION_*` macros to detect a header/library mismatch.
#[no_mangle]
pub extern "C" fn llmd_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_macros_match_cargo_version() {
        let parse = |s: &str| s.parse::<u32>().unwrap();
        assert_eq!(LLMD_VERSION_MAJOR, parse(env!("CARGO_PKG_VERSION_MAJOR")));
        assert_eq!(LLMD_VERSION_MINOR, parse(env!("CARGO_PKG_VERSION_MINOR")));
        assert_eq!(LLMD_VERSION_PATCH, parse(env!("CARGO_PKG_VERSION_PATCH")));
    }
}
