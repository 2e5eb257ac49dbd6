//! Sub-command dispatch and shared argument helpers.

/// `print!` to stdout, for the tool's output: a reader that went away (a
/// closed pipe, `| head`) ends the tool quietly with status 0, as a Unix
/// tool killed by `SIGPIPE` would end, instead of a panic.
macro_rules! out {
    ($($t:tt)*) => { $crate::cli::write_out(format_args!($($t)*), false) };
}

/// `println!` to stdout, as [`out!`].
macro_rules! outln {
    () => { $crate::cli::write_out(format_args!(""), true) };
    ($($t:tt)*) => { $crate::cli::write_out(format_args!($($t)*), true) };
}

mod config;
mod events;
mod hash;
mod pods;
mod simulate;

/// Usage text.
pub const USAGE: &str = "\
llmd — scheduling library tools

USAGE:
  llmd simulate [--scenario FILE] [--policy NAME[,NAME...]] [--requests N] [--seed N]
                [--json] [--metrics-out FILE] [--trace-out FILE] [--quiet]
  llmd config check [--json] FILE
  llmd hash [--block-size N] [--algo sha256_cbor|sha256|xxhash|xxhash_cbor|sha256_cbor_64bit] [--seed S]
            [--seed-unset] [--vllm VERSION] [--lora NAME] [--json] TOKEN... (or tokens on stdin)
  llmd events decode [--hex] [FILE]   (msgpack EventBatch bytes, or hex with --hex; stdin when FILE is absent)
  llmd pods [-n N] [--port P] [--events map|array] [--model NAME] [--scenario FILE]
            [--speed X] [--buffer-steps N] [--otlp-endpoint http://HOST:PORT/v1/traces]
            (N simulated vLLM pods on loopback: OpenAI API, /metrics, /tokenize, KV events
             over ZMQ with replay, and with --otlp-endpoint a span per request continuing
             its traceparent; prints `name http://host:port events-endpoint replay-endpoint`
             per pod, then serves until interrupted)
  llmd help
";

/// Runs the command line; errors are printed by the caller.
pub fn dispatch(args: &[String]) -> Result<(), String> {
    let rest = args.get(1..).unwrap_or(&[]);
    // `llmd <command> --help` prints the usage too.
    if rest.iter().any(|a| a == "--help" || a == "-h") {
        out!("{USAGE}");
        return Ok(());
    }
    match args.first().map(String::as_str) {
        None | Some("help") | Some("--help") | Some("-h") => {
            out!("{USAGE}");
            Ok(())
        }
        Some("simulate") => simulate::run(rest),
        Some("hash") => hash::run(rest),
        Some("config") => config::run(rest),
        Some("events") => events::run(rest),
        Some("pods") => pods::run(rest),
        Some(other) => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    }
}

/// Pulls `--name VALUE` (or `--name=VALUE`) pairs and flags out of `args`.
pub struct Args {
    items: Vec<String>,
}

impl Args {
    /// Wraps raw arguments.
    pub fn new(args: &[String]) -> Self {
        Args {
            items: args.to_vec(),
        }
    }

    /// Removes and returns the value of `--name`; given twice, or followed
    /// by another option instead of a value, it is an error.
    pub fn value(&mut self, name: &str) -> Result<Option<String>, String> {
        let v = self.take(name)?;
        if v.is_some() && self.take(name)?.is_some() {
            return Err(format!("{name} is given more than once"));
        }
        Ok(v)
    }

    /// Removes every value of a repeatable `--name`.
    pub fn values(&mut self, name: &str) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        while let Some(v) = self.take(name)? {
            out.push(v);
        }
        Ok(out)
    }

    /// Removes the first `--name VALUE` (or `--name=VALUE`) and returns VALUE.
    fn take(&mut self, name: &str) -> Result<Option<String>, String> {
        let eq = format!("{name}=");
        if let Some(i) = self.items.iter().position(|a| a.starts_with(&eq)) {
            let v = self.items.remove(i)[eq.len()..].to_string();
            return Ok(Some(v));
        }
        match self.items.iter().position(|a| a == name) {
            Some(i) if i + 1 < self.items.len() && !self.items[i + 1].starts_with("--") => {
                self.items.remove(i);
                Ok(Some(self.items.remove(i)))
            }
            Some(_) => Err(format!("{name} needs a value")),
            None => Ok(None),
        }
    }

    /// Removes `--flag`; true if it was there.
    pub fn flag(&mut self, name: &str) -> bool {
        match self.items.iter().position(|a| a == name) {
            Some(i) => {
                self.items.remove(i);
                true
            }
            None => false,
        }
    }

    /// The remaining positional arguments; errors on unknown options.
    pub fn positional(self) -> Result<Vec<String>, String> {
        if let Some(o) = self.items.iter().find(|a| a.starts_with("--")) {
            return Err(format!("unknown option `{o}`"));
        }
        Ok(self.items)
    }
}

/// Writes the tool's output (see `out!`).
pub fn write_out(args: std::fmt::Arguments<'_>, newline: bool) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("llmd: writing the output: {e}");
            std::process::exit(2);
        }
    }
}
