//! The `llmd` command-line tool.
fn main() {}
