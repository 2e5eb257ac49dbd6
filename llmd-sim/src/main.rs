//! The `llmd` command-line tool.

mod cli;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match cli::dispatch(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("llmd: {e}");
            2
        }
    };
    std::process::exit(code);
}
