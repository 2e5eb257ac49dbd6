//! A minimal HTTP/1.1 client for `http://` targets (scraping, OTLP export):
//! one request per connection, a deadline over the whole exchange, a
//! bounded response body, and Content-Length, chunked or close-delimited
//! responses.

use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

use crate::deadline::{self, Deadlined};
use crate::zmq::{dial, TcpEndpoint};

/// Why a GET failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is not `http://host:port/path`.
    #[error("bad url '{0}': {1}")]
    Url(String, &'static str),
    /// Connecting, sending or receiving failed (including the deadline).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The whole exchange took longer than the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// A status other than 200.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The response is not valid HTTP or exceeds the body limit.
    #[error("bad response: {0}")]
    Response(String),
}

/// A parsed `http://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    /// `host:port` (port 80 when omitted).
    pub authority: String,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// Parses `http://host[:port][/path]`; `https` is refused (no TLS here).
    pub fn parse(url: &str) -> Result<HttpUrl, HttpError> {
        if url.starts_with("https://") {
            return Err(HttpError::Url(
                url.into(),
                "https is not supported by the built-in scraper (terminate TLS in a sidecar, or scrape in the host and call update_endpoint_metrics_text)",
            ));
        }
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| HttpError::Url(url.into(), "expected http://"))?;
        let (auth, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if auth.is_empty()
            || auth.contains(char::is_whitespace)
            || path.contains(char::is_whitespace)
        {
            return Err(HttpError::Url(url.into(), "bad host or path"));
        }
        // The port, if any, follows the last ':' outside an IPv6 literal's
        // brackets; it must be a number from 1 to 65535 (a path without its
        // leading '/' would otherwise read as part of it).
        let port_at = match auth.rfind(']') {
            Some(i) => auth[i..].find(':').map(|j| i + j),
            None => auth.rfind(':'),
        };
        let authority = match port_at {
            Some(i) => {
                let port = &auth[i + 1..];
                let valid = !port.is_empty()
                    && port.bytes().all(|b| b.is_ascii_digit())
                    && port.parse::<u16>().is_ok_and(|p| p > 0);
                if !valid || i == 0 {
                    return Err(HttpError::Url(
                        url.into(),
                        "the port must be a number from 1 to 65535 after a host",
                    ));
                }
                auth.to_string()
            }
            None => format!("{auth}:80"),
        };
        Ok(HttpUrl {
            authority,
            path: path.to_string(),
        })
    }
}

/// GETs `url` within `timeout`; the body may be at most `max_body` bytes.
pub fn get(url: &HttpUrl, timeout: Duration, max_body: usize) -> Result<String, HttpError> {
    let body = exchange(url, "GET", "Accept: text/plain\r\n", &[], timeout, max_body)?;
    String::from_utf8(body).map_err(|_| HttpError::Response("body is not UTF-8".into()))
}

/// POSTs `body` (of `content_type`) to `url` within `timeout`; a status
/// other than 200 is an error. The response body (at most `max_body`
/// bytes) is returned.
pub fn post(
    url: &HttpUrl,
    content_type: &str,
    body: &[u8],
    timeout: Duration,
    max_body: usize,
) -> Result<Vec<u8>, HttpError> {
    let head = format!(
        "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
        body.len()
    );
    exchange(url, "POST", &head, body, timeout, max_body)
}

/// One request: `method`, extra header lines `head`, then `body`.
fn exchange(
    url: &HttpUrl,
    method: &str,
    head: &str,
    body: &[u8],
    timeout: Duration,
    max_body: usize,
) -> Result<Vec<u8>, HttpError> {
    let deadline = deadline::after(timeout);
    let ep = TcpEndpoint::parse(&format!("tcp://{}", url.authority))
        .map_err(|_| HttpError::Url(url.authority.clone(), "bad host:port"))?;
    let mut s = dial(&ep, timeout)?;
    let req = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\n{head}Connection: close\r\nUser-Agent: llmd-feed\r\n\r\n",
        url.path, url.authority
    );
    for part in [req.as_bytes(), body] {
        write_all_by(&mut s, part, deadline).map_err(timeout_err(timeout))?;
    }
    let mut r = BufReader::new(Deadlined::new(s, deadline));
    read_response(&mut r, max_body, &timeout_err(timeout))
}

/// Writes `buf` whole before `deadline`: each write gets only the time left,
/// so a peer that reads slowly cannot stretch the exchange past it.
fn write_all_by(
    s: &mut std::net::TcpStream,
    mut buf: &[u8],
    deadline: Option<std::time::Instant>,
) -> std::io::Result<()> {
    while !buf.is_empty() {
        s.set_write_timeout(deadline::left(deadline)?)?;
        match s.write(buf) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The body of the HTTP/1.1 response held in `bytes`, read as [`get`] and
/// [`post`] read one from their connection (a status other than 200 is an
/// error; the body may be at most `max_body` bytes). For tests and fuzzing
/// of the response reader.
pub fn read_response_bytes(bytes: &[u8], max_body: usize) -> Result<Vec<u8>, HttpError> {
    let mut r = bytes;
    read_response(&mut r, max_body, &HttpError::Io)
}

/// Reads a response from `r`: the status line, at most 200 header lines of
/// at most 8 KiB each, then a Content-Length, chunked or close-delimited
/// body. `io_err` turns a failed read into an error (a timed-out read of a
/// [`Deadlined`] socket into [`HttpError::Timeout`]).
fn read_response<R: BufRead>(
    r: &mut R,
    max_body: usize,
    io_err: &dyn Fn(std::io::Error) -> HttpError,
) -> Result<Vec<u8>, HttpError> {
    let mut line = String::new();
    let read_line = |r: &mut R, line: &mut String| -> Result<(), HttpError> {
        line.clear();
        let n = r.by_ref().take(8192).read_line(line).map_err(io_err)?;
        if n == 0 {
            return Err(HttpError::Response(
                "connection closed in the header".into(),
            ));
        }
        Ok(())
    };
    read_line(r, &mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| HttpError::Response(format!("bad status line {:?}", line.trim_end())))?;
    let mut length: Option<usize> = None;
    let mut chunked = false;
    // At most 200 header lines, then the blank line that ends them.
    let mut ended = false;
    for _ in 0..=200 {
        read_line(r, &mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            ended = true;
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                length = Some(
                    v.parse()
                        .map_err(|_| HttpError::Response("bad Content-Length".into()))?,
                );
            } else if k.eq_ignore_ascii_case("transfer-encoding")
                && v.eq_ignore_ascii_case("chunked")
            {
                chunked = true;
            }
        }
    }
    if !ended {
        return Err(HttpError::Response("more than 200 header lines".into()));
    }
    if status != 200 {
        return Err(HttpError::Status(status));
    }
    let too_big = || HttpError::Response(format!("body exceeds {max_body} bytes"));
    let mut body = Vec::new();
    // `n` comes from the peer: compared with the room left, never added.
    let read_n = |r: &mut R, n: usize, body: &mut Vec<u8>| -> Result<(), HttpError> {
        if n > max_body.saturating_sub(body.len()) {
            return Err(too_big());
        }
        let start = body.len();
        body.resize(start + n, 0);
        let mut done = 0;
        while done < n {
            let k = r.read(&mut body[start + done..]).map_err(io_err)?;
            if k == 0 {
                return Err(HttpError::Response("connection closed in the body".into()));
            }
            done += k;
        }
        Ok(())
    };
    if chunked {
        loop {
            read_line(r, &mut line)?;
            let size =
                usize::from_str_radix(line.trim_end().split(';').next().unwrap_or("").trim(), 16)
                    .map_err(|_| HttpError::Response("bad chunk size".into()))?;
            if size == 0 {
                break;
            }
            read_n(r, size, &mut body)?;
            read_line(r, &mut line)?;
        }
    } else if let Some(n) = length {
        read_n(r, n, &mut body)?;
    } else {
        loop {
            let mut buf = [0u8; 16384];
            let k = r.read(&mut buf).map_err(io_err)?;
            if k == 0 {
                break;
            }
            if k > max_body.saturating_sub(body.len()) {
                return Err(too_big());
            }
            body.extend_from_slice(&buf[..k]);
        }
    }
    Ok(body)
}

fn timeout_err(timeout: Duration) -> impl Fn(std::io::Error) -> HttpError {
    move |e| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            HttpError::Timeout(timeout)
        }
        _ => HttpError::Io(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::time::Instant;

    fn serve(response: &'static [u8], hang: bool) -> String {
        serve_with(move |s| {
            if hang {
                std::thread::sleep(Duration::from_secs(3));
            }
            let _ = s.write_all(response);
        })
    }

    /// A server of one request: `answer` writes what follows it.
    fn serve_with(answer: impl FnOnce(&mut std::net::TcpStream) + Send + 'static) -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            answer(&mut s);
        });
        format!("http://{addr}/metrics")
    }

    /// A peer that reads the request body slowly, a little within every
    /// timeout, cannot stretch a POST past its deadline.
    #[test]
    fn a_slowly_read_post_ends_at_its_deadline() {
        let url = HttpUrl::parse(&serve_with(|s| {
            let mut buf = [0u8; 4096];
            for _ in 0..200 {
                std::thread::sleep(Duration::from_millis(50));
                if matches!(s.read(&mut buf), Ok(0) | Err(_)) {
                    return;
                }
            }
        }))
        .unwrap();
        let body = vec![b'x'; 32 << 20];
        let t0 = Instant::now();
        let r = post(&url, "text/plain", &body, Duration::from_millis(500), 1024);
        assert!(matches!(r, Err(HttpError::Timeout(_))), "{r:?}");
        assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    }

    /// A header that never ends within 200 lines is refused, not read as
    /// body.
    #[test]
    fn a_header_of_more_than_200_lines_is_refused() {
        let mut resp = b"HTTP/1.1 200 OK\r\n".to_vec();
        for _ in 0..201 {
            resp.extend_from_slice(b"X-A: b\r\n");
        }
        resp.extend_from_slice(b"\r\nbody");
        let e = read_response_bytes(&resp, 1024).unwrap_err().to_string();
        assert!(e.contains("200 header lines"), "{e}");
    }

    #[test]
    fn reads_length_chunked_and_close_delimited_bodies() {
        let t = Duration::from_secs(2);
        for resp in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n",
            b"HTTP/1.0 200 OK\r\n\r\nhello",
        ] {
            let url = HttpUrl::parse(&serve(resp, false)).unwrap();
            assert_eq!(get(&url, t, 1024).unwrap(), "hello");
        }
        let url = HttpUrl::parse(&serve(b"HTTP/1.1 503 No\r\n\r\n", false)).unwrap();
        assert!(matches!(get(&url, t, 1024), Err(HttpError::Status(503))));
        let url = HttpUrl::parse(&serve(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n",
            false,
        ))
        .unwrap();
        assert!(matches!(get(&url, t, 1024), Err(HttpError::Response(_))));
    }

    /// A server that trickles its header a byte at a time, each byte well
    /// within the timeout, is cut off at the deadline of the whole request
    /// (before, every read of one header line got the full time left).
    #[test]
    fn a_trickling_server_is_cut_off_at_the_deadline() {
        let url = HttpUrl::parse(&serve_with(|s| {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nX-Slow: ");
            for _ in 0..100 {
                std::thread::sleep(Duration::from_millis(150));
                if s.write_all(b"a").is_err() {
                    return;
                }
            }
        }))
        .unwrap();
        let t0 = Instant::now();
        let e = get(&url, Duration::from_millis(600), 1024).unwrap_err();
        assert!(matches!(e, HttpError::Timeout(_)), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    }

    /// Sizes from the peer near `usize::MAX` are refused, not added to
    /// what was read (which wrapped and panicked before).
    #[test]
    fn huge_chunk_sizes_and_lengths_are_refused() {
        let chunked = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n{:x}\r\nx",
            usize::MAX - 2
        );
        let e = read_response_bytes(chunked.as_bytes(), 1024).unwrap_err();
        assert!(
            matches!(e, HttpError::Response(ref m) if m.contains("exceeds")),
            "{e}"
        );
        let length = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\nx", usize::MAX);
        let e = read_response_bytes(length.as_bytes(), 1024).unwrap_err();
        assert!(
            matches!(e, HttpError::Response(ref m) if m.contains("exceeds")),
            "{e}"
        );
        let close = [&b"HTTP/1.0 200 OK\r\n\r\n"[..], &[b'x'; 2000]].concat();
        assert!(read_response_bytes(&close, 1024).is_err());
        assert_eq!(read_response_bytes(&close, 2000).unwrap().len(), 2000);
        let e = read_response_bytes(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", 64);
        assert!(matches!(e, Err(HttpError::Response(ref m)) if m.contains("closed in the body")));
    }

    #[test]
    fn a_hanging_server_times_out() {
        let url = HttpUrl::parse(&serve(b"HTTP/1.1 200 OK\r\n\r\n", true)).unwrap();
        let t0 = Instant::now();
        assert!(matches!(
            get(&url, Duration::from_millis(200), 1024),
            Err(HttpError::Timeout(_))
        ));
        assert!(t0.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn urls() {
        let u = HttpUrl::parse("http://10.0.0.1:8000/metrics").unwrap();
        assert_eq!(
            (u.authority.as_str(), u.path.as_str()),
            ("10.0.0.1:8000", "/metrics")
        );
        assert_eq!(HttpUrl::parse("http://h").unwrap().authority, "h:80");
        assert!(HttpUrl::parse("https://h/metrics").is_err());
        assert!(HttpUrl::parse("ftp://h").is_err());
        assert_eq!(
            HttpUrl::parse("http://[::1]:9/x").unwrap().authority,
            "[::1]:9"
        );
        assert_eq!(
            HttpUrl::parse("http://[::1]/x").unwrap().authority,
            "[::1]:80"
        );
        // A path missing its '/' would read as part of the port.
        for bad in [
            "http://10.0.0.7:8000metrics",
            "http://h:80a/x",
            "http://h:/x",
            "http://h:0/x",
            "http://h:65536/x",
            "http://:80/x",
            "http://[::1]:x/",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
