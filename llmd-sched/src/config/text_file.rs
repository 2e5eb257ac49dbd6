//! Reading a user's text file (a config, a scenario, a calibration, a
//! trace) with a bound: only a regular file, and at most a stated size, so
//! `/dev/zero` or a mistaken path to a huge file is a clear error instead of
//! memory growing until the allocator fails.

use std::io::{self, Read};
use std::path::Path;

/// The largest config, scenario or calibration file read (bytes).
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Reads `path` as UTF-8 text: refused when it is not a regular file or
/// holds more than `max` bytes.
pub fn read_text_file(path: &Path, max: u64) -> io::Result<String> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {max} bytes"),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_bound_are_read() {
        let dir = std::env::temp_dir().join(format!("llmd-text-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("a.yaml");
        std::fs::write(&f, "x: 1\n").unwrap();
        assert_eq!(read_text_file(&f, 5).unwrap(), "x: 1\n");
        let e = read_text_file(&f, 4).unwrap_err();
        assert!(e.to_string().contains("larger than 4 bytes"), "{e}");
        let e = read_text_file(&dir, 100).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        if Path::new("/dev/zero").exists() {
            let e = read_text_file(Path::new("/dev/zero"), 100).unwrap_err();
            assert!(e.to_string().contains("not a regular file"), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
