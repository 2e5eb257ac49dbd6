//! The fake pods' HTTP side: vLLM's OpenAI server surface that routers
//! touch (`/v1/completions`, `/v1/chat/completions` with streaming and
//! `usage` including cached tokens, `/tokenize`, `/metrics`, `/health`,
//! `/v1/models`), one thread per connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::live::{LivePod, Update};
use super::text::{detokenize, render_chat, tokenize};

const MAX_HEADER: usize = 64 << 10;
const MAX_BODY: usize = 16 << 20;
/// Connections served at once (a thread each); more are closed at once.
const MAX_CONNECTIONS: usize = 1024;
/// How long a connection may sit without sending.
const IDLE: std::time::Duration = std::time::Duration::from_secs(60);

/// Accepts connections until the listener fails.
pub fn serve(pod: Arc<LivePod>, listener: TcpListener) {
    let cap = llmd_feed::conn_cap::ConnectionCap::new(MAX_CONNECTIONS);
    for s in listener.incoming() {
        let Ok(s) = s else {
            // Out of descriptors, say: wait rather than spin.
            std::thread::sleep(std::time::Duration::from_millis(50));
            continue;
        };
        let Some(slot) = cap.admit() else {
            continue; // dropped: closed
        };
        let pod = pod.clone();
        // A thread the OS refuses drops the connection (and its slot), not
        // the listener.
        let _ = std::thread::Builder::new().spawn(move || {
            let _slot = slot;
            let _ = handle(&pod, s);
        });
    }
}

struct HttpRequest {
    method: String,
    path: String,
    body: Vec<u8>,
    /// W3C `traceparent` / `tracestate`, when sent.
    traceparent: Option<String>,
    tracestate: Option<String>,
}

/// One line of the request head, at most the `room` left of
/// [`MAX_HEADER`]; `Ok(None)` at the end of the stream.
fn head_line(
    r: &mut BufReader<Conn>,
    line: &mut String,
    room: usize,
) -> Result<Option<usize>, String> {
    line.clear();
    let n = r
        .by_ref()
        .take(room as u64)
        .read_line(line)
        .map_err(|e| e.to_string())?;
    if n == 0 {
        return Ok(None);
    }
    if !line.ends_with('\n') {
        return Err("request head too large".into());
    }
    Ok(Some(n))
}

/// How a request's body is framed.
enum Framing {
    Length(usize),
    Chunked,
}

fn read_request(r: &mut BufReader<Conn>, w: &mut TcpStream) -> Result<Option<HttpRequest>, String> {
    // A keep-alive connection that stays idle past the read timeout (or is
    // closed) ends quietly, as uvicorn ends it: an answer nobody asked for
    // would be read as the answer to the client's next request.
    match r.fill_buf() {
        Ok([]) => return Ok(None),
        Ok(_) => {}
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e.to_string()),
    }
    // From its first byte, the whole request must arrive within IDLE: a
    // client trickling a byte per read timeout would otherwise hold the
    // connection for good.
    r.get_mut().deadline = Some(std::time::Instant::now() + IDLE);
    let req = read_started_request(r, w);
    r.get_mut().deadline = None;
    r.get_ref()
        .s
        .set_read_timeout(Some(IDLE))
        .map_err(|e| e.to_string())?;
    req
}

/// The connection's read side. While a request is being read, each read
/// waits at most until the request's deadline.
struct Conn {
    s: TcpStream,
    deadline: Option<std::time::Instant>,
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(d) = self.deadline {
            let left = d.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the request took too long to arrive",
                ));
            }
            self.s.set_read_timeout(Some(left))?;
        }
        self.s.read(buf)
    }
}

/// [`read_request`] once the request's first bytes are there.
fn read_started_request(
    r: &mut BufReader<Conn>,
    w: &mut TcpStream,
) -> Result<Option<HttpRequest>, String> {
    let mut line = String::new();
    let Some(mut total) = head_line(r, &mut line, MAX_HEADER)? else {
        return Ok(None);
    };
    let mut parts = line.split_whitespace();
    let method = parts.next().ok_or("empty request line")?.to_string();
    let path = parts.next().ok_or("no path")?.to_string();
    let mut len: Option<usize> = None;
    let mut chunked = false;
    let mut expect_continue = false;
    let (mut traceparent, mut tracestate) = (None, None);
    loop {
        let n = head_line(r, &mut line, MAX_HEADER - total)?.ok_or("bad header")?;
        total += n;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim(), v.trim());
            if k.eq_ignore_ascii_case("content-length") {
                // Digits only, and one value: anything else is a framing
                // the next request could be smuggled through.
                let n = (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| v.parse::<usize>().ok())
                    .flatten()
                    .ok_or("bad Content-Length")?;
                if len.is_some_and(|l| l != n) {
                    return Err("conflicting Content-Length headers".into());
                }
                len = Some(n);
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                // `chunked` alone, once: other codings are not served.
                if chunked || !v.eq_ignore_ascii_case("chunked") {
                    return Err(format!("unsupported Transfer-Encoding {v:?}"));
                }
                chunked = true;
            } else if k.eq_ignore_ascii_case("expect") {
                if !v.eq_ignore_ascii_case("100-continue") {
                    return Err(format!("unsupported Expect {v:?}"));
                }
                expect_continue = true;
            } else if k.eq_ignore_ascii_case("traceparent") {
                traceparent = Some(v.to_string());
            } else if k.eq_ignore_ascii_case("tracestate") {
                tracestate = Some(v.to_string());
            }
        }
    }
    let framing = match (len, chunked) {
        // Both framings at once is how requests are smuggled: refused.
        (Some(_), true) => return Err("both Content-Length and Transfer-Encoding".into()),
        (_, true) => Framing::Chunked,
        (n, false) => Framing::Length(n.unwrap_or(0)),
    };
    if matches!(framing, Framing::Length(n) if n > MAX_BODY) {
        return Err("body too large".into());
    }
    // The client waits for this before sending the body (curl does past
    // 1 KiB); a body of length 0 is not waited for.
    if expect_continue && !matches!(framing, Framing::Length(0)) {
        w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .map_err(|e| e.to_string())?;
    }
    let body = match framing {
        Framing::Length(len) => {
            // Grown as the body arrives, not reserved for what the header claims.
            let mut body = Vec::new();
            r.by_ref()
                .take(len as u64)
                .read_to_end(&mut body)
                .map_err(|e| e.to_string())?;
            if body.len() < len {
                return Err("connection closed in the body".into());
            }
            body
        }
        Framing::Chunked => read_chunked(r, MAX_HEADER - total)?,
    };
    Ok(Some(HttpRequest {
        method,
        path,
        body,
        traceparent,
        tracestate,
    }))
}

/// A chunked body (RFC 9112 §7.1): hex sizes (extensions ignored), each
/// chunk followed by CRLF, a zero-size chunk, then trailers (ignored) up to
/// an empty line. At most [`MAX_BODY`] of data; size and trailer lines share
/// the `room` left of the head's limit.
fn read_chunked(r: &mut BufReader<Conn>, mut room: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        let n = head_line(r, &mut line, room)?.ok_or("connection closed in the body")?;
        room -= n;
        let digits = line.split(';').next().unwrap_or("").trim();
        let size = (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| usize::from_str_radix(digits, 16).ok())
            .flatten()
            .ok_or("bad chunk size")?;
        if size == 0 {
            break;
        }
        if size > MAX_BODY - body.len() {
            return Err("body too large".into());
        }
        let start = body.len();
        r.by_ref()
            .take(size as u64)
            .read_to_end(&mut body)
            .map_err(|e| e.to_string())?;
        let mut end = [0u8; 2];
        if body.len() - start < size || r.read_exact(&mut end).is_err() || &end != b"\r\n" {
            return Err("bad chunk".into());
        }
    }
    // Trailers, then the empty line that ends the message.
    loop {
        let n = head_line(r, &mut line, room)?.ok_or("connection closed in the trailers")?;
        room -= n;
        if line.trim_end().is_empty() {
            return Ok(body);
        }
    }
}

fn respond(
    w: &mut TcpStream,
    pod: &LivePod,
    status: u16,
    ctype: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Error",
    };
    write!(
        w,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nx-inference-pod: {}\r\n\r\n",
        body.len(),
        pod.name
    )?;
    w.write_all(body)
}

/// One chunk of a chunked SSE reply.
fn sse(w: &mut TcpStream, event: &str) -> std::io::Result<()> {
    write!(w, "{:x}\r\n{event}\r\n", event.len())
}

fn error(w: &mut TcpStream, pod: &LivePod, status: u16, msg: &str) -> std::io::Result<()> {
    let body = json!({"error": {"message": msg, "type": "BadRequestError", "code": status}});
    respond(
        w,
        pod,
        status,
        "application/json",
        body.to_string().as_bytes(),
    )
}

fn handle(pod: &LivePod, s: TcpStream) -> std::io::Result<()> {
    // An idle keep-alive connection (or a client that stalls mid-request)
    // is closed after this long.
    s.set_read_timeout(Some(IDLE))?;
    // A client that stops reading (a pipelined /metrics, a stalled stream)
    // is dropped too, rather than holding the thread on a blocked write.
    s.set_write_timeout(Some(IDLE))?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(Conn { s, deadline: None });
    // Keep-alive: serve requests until the client closes.
    loop {
        let req = match read_request(&mut r, &mut w) {
            Ok(Some(req)) => req,
            Ok(None) => return Ok(()),
            Err(e) => return error(&mut w, pod, 400, &e),
        };
        let body: Value = if req.body.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(&req.body) {
                Ok(v) => v,
                Err(e) => {
                    error(&mut w, pod, 400, &format!("invalid JSON: {e}"))?;
                    continue;
                }
            }
        };
        let path = req.path.split('?').next().unwrap_or("");
        match (req.method.as_str(), path) {
            ("GET", "/metrics") => respond(
                &mut w,
                pod,
                200,
                "text/plain; version=0.0.4",
                pod.metrics().as_bytes(),
            )?,
            ("GET", "/health") => respond(&mut w, pod, 200, "text/plain", b"")?,
            ("GET", "/v1/models") => {
                let b = json!({"object": "list", "data": [{"id": pod.model, "object": "model", "owned_by": "llmd"}]});
                respond(
                    &mut w,
                    pod,
                    200,
                    "application/json",
                    b.to_string().as_bytes(),
                )?
            }
            // vLLM's /tokenize takes a text prompt (or chat messages), not ids.
            ("POST", "/tokenize") if body.get("prompt").is_some_and(|p| !p.is_string()) => {
                error(&mut w, pod, 400, "'prompt' must be a string")?
            }
            ("POST", "/tokenize") => match prompt_tokens(pod, &body, false) {
                Ok(t) => {
                    let b = json!({"count": t.len(), "max_model_len": MAX_MODEL_LEN, "tokens": t});
                    respond(
                        &mut w,
                        pod,
                        200,
                        "application/json",
                        b.to_string().as_bytes(),
                    )?
                }
                Err(e) => error(&mut w, pod, 400, &e)?,
            },
            // Replies keep the connection (streams end with their last chunk).
            ("POST", "/v1/completions") => complete(pod, &mut w, &body, false, &req)?,
            ("POST", "/v1/chat/completions") => complete(pod, &mut w, &body, true, &req)?,
            _ => error(
                &mut w,
                pod,
                404,
                &format!("no route {} {}", req.method, req.path),
            )?,
        }
    }
}

/// The context a pod serves, as `/tokenize` reports it (vLLM's
/// `max_model_len`): prompt and output together.
const MAX_MODEL_LEN: usize = 131_072;

/// The output limit of a request, checked as vLLM checks it: `max_tokens`
/// (chat: `max_completion_tokens`, else `max_tokens`) an integer of at
/// least 1, with the prompt within `MAX_MODEL_LEN`; absent or null, 16
/// (vLLM's completions default; its chat default, the rest of the
/// context, would have a pod that never emits EOS generate ~130k tokens).
/// `n` other than 1 is refused: a pod returns one choice.
fn max_tokens(body: &Value, chat: bool, prompt_len: usize) -> Result<u32, String> {
    if body
        .get("n")
        .is_some_and(|n| !n.is_null() && n.as_f64() != Some(1.0))
    {
        return Err("only n = 1 is supported by llmd pods".into());
    }
    let field = [chat.then_some("max_completion_tokens"), Some("max_tokens")]
        .into_iter()
        .flatten()
        .find(|k| body.get(*k).is_some_and(|v| !v.is_null()));
    if prompt_len >= MAX_MODEL_LEN {
        return Err(format!(
            "This model's maximum context length is {MAX_MODEL_LEN} tokens. However, your \
             request has {prompt_len} input tokens. Please reduce the length of the input."
        ));
    }
    let Some(field) = field else {
        return Ok(16);
    };
    let v = &body[field];
    let n = v
        .as_u64()
        .filter(|n| *n >= 1)
        .ok_or_else(|| format!("{field} must be an integer of at least 1, got {v}"))?;
    let room = MAX_MODEL_LEN.saturating_sub(prompt_len) as u64;
    if n > room {
        return Err(format!(
            "This model's maximum context length is {MAX_MODEL_LEN} tokens. However, you \
             requested {} tokens ({prompt_len} in the messages, {n} in the completion).",
            (prompt_len as u64).saturating_add(n)
        ));
    }
    Ok(n as u32)
}

/// The prompt's token ids: `prompt` (text or ids) or chat `messages`.
fn prompt_tokens(pod: &LivePod, body: &Value, chat: bool) -> Result<Vec<u32>, String> {
    if chat || body.get("messages").is_some() {
        return Ok(tokenize(&render_chat(body)?, pod.vocab()));
    }
    match body.get("prompt") {
        Some(Value::String(s)) => Ok(tokenize(s, pod.vocab())),
        Some(Value::Array(ids)) => ids
            .iter()
            .map(|v| {
                v.as_u64()
                    .and_then(|x| u32::try_from(x).ok())
                    .ok_or_else(|| "prompt token ids must be integers".to_string())
            })
            .collect(),
        _ => Err("'prompt' must be a string or a list of token ids".into()),
    }
}

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Times of one request, for its span.
struct Timing {
    arrived: u64,
    scheduled: u64,
    first: u64,
    done: u64,
    prompt: u32,
    cached: u32,
    generated: u32,
}

/// vLLM's per-request span (`llm_request`, SERVER, a child of the request's
/// `traceparent`) with its latency and usage attributes, plus `queue`
/// (arrival to the first step), `prefill` (to the first token, cached
/// tokens) and `decode` (to the last token) children. Nothing when the
/// request was not traced or not sampled.
fn export_span(pod: &LivePod, req: &HttpRequest, id: &str, t: &Timing) {
    use llmd_feed::otlp::{SpanData, SPAN_KIND_INTERNAL, SPAN_KIND_SERVER};
    use llmd_sched::observe::{AttrValue, Attribute};
    let Some(tracer) = pod.tracer() else { return };
    let Some((trace_id, parent, flags)) = req
        .traceparent
        .as_deref()
        .and_then(llmd_sched::trace_context::parse_traceparent)
    else {
        return;
    };
    if flags & 1 == 0 {
        return;
    }
    let new_id = || fastrand::u64(1..).to_be_bytes();
    let a = |k: &'static str, v: AttrValue| Attribute {
        key: k.into(),
        value: v,
    };
    let secs = |ns: u64| AttrValue::F64(ns as f64 / 1e9);
    let root = new_id();
    let span = |span_id, parent, name: &str, kind, start, end, attributes| SpanData {
        trace_id,
        span_id,
        parent_span_id: Some(parent),
        trace_state: req.tracestate.clone(),
        name: name.to_string(),
        kind,
        start_unix_ns: start,
        end_unix_ns: end,
        attributes,
    };
    let tokens = |n: u32| AttrValue::I64(i64::from(n));
    tracer.export_spans(vec![
        span(
            root,
            parent,
            "llm_request",
            SPAN_KIND_SERVER,
            t.arrived,
            t.done,
            vec![
                a("gen_ai.request.id", AttrValue::Str(id.to_string())),
                a("gen_ai.response.model", AttrValue::Str(pod.model.clone())),
                a("gen_ai.usage.prompt_tokens", tokens(t.prompt)),
                a("gen_ai.usage.completion_tokens", tokens(t.generated)),
                a("gen_ai.usage.cached_tokens", tokens(t.cached)),
                a(
                    "gen_ai.latency.time_to_first_token",
                    secs(t.first.saturating_sub(t.arrived)),
                ),
                a("gen_ai.latency.e2e", secs(t.done.saturating_sub(t.arrived))),
                a("llmd.pod.name", AttrValue::Str(pod.name.clone())),
            ],
        ),
        span(
            new_id(),
            root,
            "queue",
            SPAN_KIND_INTERNAL,
            t.arrived,
            t.scheduled,
            vec![],
        ),
        span(
            new_id(),
            root,
            "prefill",
            SPAN_KIND_INTERNAL,
            t.scheduled,
            t.first,
            vec![
                a("gen_ai.usage.prompt_tokens", tokens(t.prompt)),
                a("gen_ai.usage.cached_tokens", tokens(t.cached)),
            ],
        ),
        span(
            new_id(),
            root,
            "decode",
            SPAN_KIND_INTERNAL,
            t.first,
            t.done,
            vec![a("gen_ai.usage.completion_tokens", tokens(t.generated))],
        ),
    ]);
}

/// How often a non-streamed reply checks that its client is still there.
const CLIENT_CHECK: std::time::Duration = std::time::Duration::from_millis(50);

/// Whether the client closed its side: a read would see the end of the
/// stream (bytes waiting, e.g. a pipelined request, mean it is there).
fn client_gone(s: &TcpStream) -> bool {
    if s.set_nonblocking(true).is_err() {
        return false;
    }
    let gone = match s.peek(&mut [0u8; 1]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
        ),
    };
    // The same socket is read blocking (with its timeout) for the next request.
    let _ = s.set_nonblocking(false);
    gone
}

/// Serves one completion (streamed replies are chunked, so every reply
/// keeps the connection).
fn complete(
    pod: &LivePod,
    w: &mut TcpStream,
    body: &Value,
    chat: bool,
    req: &HttpRequest,
) -> std::io::Result<()> {
    let arrived = unix_ns();
    let prompt = match prompt_tokens(pod, body, chat) {
        Ok(p) if !p.is_empty() => p,
        Ok(_) => return error(w, pod, 400, "empty prompt"),
        Err(e) => return error(w, pod, 400, &e),
    };
    let max_tokens = match max_tokens(body, chat, prompt.len()) {
        Ok(n) => n,
        Err(e) => return error(w, pod, 400, &e),
    };
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage = body
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    // vLLM refuses a salt that is not a non-empty string.
    let cache_salt = match body.get("cache_salt") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.as_str()),
        Some(_) => {
            let e = "Parameter 'cache_salt' must be a non-empty string if provided.";
            return error(w, pod, 400, e);
        }
    };
    let n_prompt = prompt.len() as u32;
    let rx = match pod.submit(prompt, max_tokens, cache_salt) {
        Ok(rx) => rx,
        Err(e) => return error(w, pod, 400, &e),
    };
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let id = format!(
        "{}-{created}-{}",
        if chat { "chatcmpl" } else { "cmpl" },
        fastrand::u64(..)
    );
    let object = match (chat, stream) {
        (true, true) => "chat.completion.chunk",
        (true, false) => "chat.completion",
        (false, _) => "text_completion",
    };
    let choice = |text: &str, finish: Option<&str>, first: bool| -> Value {
        if chat && stream {
            let delta = if first {
                json!({"role": "assistant", "content": text})
            } else {
                json!({"content": text})
            };
            json!({"index": 0, "delta": delta, "finish_reason": finish})
        } else if chat {
            json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish})
        } else {
            json!({"index": 0, "text": text, "finish_reason": finish})
        }
    };
    let mut cached = 0u32;
    let mut generated = 0u32;
    let mut text = String::new();
    if stream {
        // Chunked, as vLLM (uvicorn) sends it: a client tells a stream cut
        // off by a dying pod (no closing chunk) from one that ended.
        write!(
            w,
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\nx-inference-pod: {}\r\n\r\n",
            pod.name
        )?;
    }
    let mut first = true;
    let mut first_at = arrived;
    let mut scheduled_at = arrived;
    let mut checked = std::time::Instant::now();
    loop {
        // A non-streamed reply writes nothing until the end, so a client
        // gone meanwhile is only seen by looking: vLLM aborts such a
        // request, and so does the pod (dropping `rx` aborts it).
        if !stream && checked.elapsed() >= CLIENT_CHECK {
            if client_gone(w) {
                return Ok(());
            }
            checked = std::time::Instant::now();
        }
        let u = match rx.recv_timeout(CLIENT_CHECK) {
            Ok(u) => u,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
        };
        match u {
            Update::Scheduled => scheduled_at = unix_ns(),
            Update::First { cached: c } => {
                cached = c;
                first_at = unix_ns();
            }
            Update::Tokens(ids) => {
                generated += ids.len() as u32;
                let piece: String = ids.iter().map(|&t| detokenize(t)).collect();
                if stream {
                    let chunk = json!({"id": id, "object": object, "created": created, "model": pod.model, "choices": [choice(&piece, None, first)]});
                    first = false;
                    sse(w, &format!("data: {chunk}\n\n"))?;
                } else {
                    text.push_str(&piece);
                }
            }
            Update::Done => break,
        }
    }
    let timing = Timing {
        arrived,
        scheduled: scheduled_at,
        first: first_at.max(scheduled_at),
        done: unix_ns().max(first_at),
        prompt: n_prompt,
        cached,
        generated,
    };
    export_span(pod, req, &id, &timing);
    let usage = json!({
        "prompt_tokens": n_prompt,
        "completion_tokens": generated,
        "total_tokens": n_prompt + generated,
        "prompt_tokens_details": {"cached_tokens": cached},
    });
    if stream {
        let last = json!({"id": id, "object": object, "created": created, "model": pod.model, "choices": [choice("", Some("length"), first)]});
        sse(w, &format!("data: {last}\n\n"))?;
        if include_usage {
            let u = json!({"id": id, "object": object, "created": created, "model": pod.model, "choices": [], "usage": usage});
            sse(w, &format!("data: {u}\n\n"))?;
        }
        sse(w, "data: [DONE]\n\n")?;
        // The closing chunk: the stream is over and the connection is kept.
        w.write_all(b"0\r\n\r\n")?;
        w.flush()
    } else {
        let b = json!({"id": id, "object": object, "created": created, "model": pod.model, "choices": [choice(&text, Some("length"), true)], "usage": usage});
        respond(w, pod, 200, "application/json", b.to_string().as_bytes())
    }
}
