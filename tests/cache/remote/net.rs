//! Plain HTTP on loopback, written on std::net (the suite has no HTTP client crate): a
//! one-request client for reading and rewriting the registry as an attacker would, and
//! a scripted server that answers, forwards to the real registry (whole, cut off, or
//! stalled mid-body), runs a hook before forwarding, or never answers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the helpers wait on a socket: a bound, never a synchronisation.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request on its own connection (`Connection: close`), the whole answer read.
pub fn request(
    authority: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = TcpStream::connect(authority)
        .unwrap_or_else(|error| panic!("connect to {authority}: {error}"));
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|error| panic!("{method} {target}: {error}"));
    let end = find(&raw, b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{method} {target}: no HTTP answer: {raw:?}"));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("{method} {target}: bad status line in {head:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if method == "HEAD" {
        return response;
    }
    response.body = if response
        .header("transfer-encoding")
        .is_some_and(|value| value.eq_ignore_ascii_case("chunked"))
    {
        dechunk(rest)
    } else {
        match response
            .header("content-length")
            .and_then(|value| value.parse::<usize>().ok())
        {
            Some(length) => rest[..length.min(rest.len())].to_vec(),
            None => rest.to_vec(),
        }
    };
    response
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(line_end) = find(rest, b"\r\n") {
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
            .expect("a chunk size");
        rest = &rest[line_end + 2..];
        if size == 0 {
            break;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
    body
}

/// A request as the scripted server read it.
pub struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or(&self.target)
    }

    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.target)
    }
}

/// What the scripted server does with a request.
pub enum Reply {
    /// This status, these headers and this body.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Forward to the upstream registry and relay its answer whole.
    Forward,
    /// Forward, relay the answer's head and this many bytes of its body, then close.
    CutAfter(usize),
    /// Forward, relay the head and this many bytes of the body, then hold the connection
    /// open without sending more until the server is dropped.
    StallAfter(usize),
    /// Read the request, never answer; the connection stays open until the server is
    /// dropped.
    Silent,
    /// Forward, and relay the answer slowly: the head, then the body in this many
    /// pieces with this pause before each (a slow link, not a stalled one).
    Trickle(usize, Duration),
}

impl Reply {
    pub fn status(status: u16, body: &str) -> Reply {
        Reply::Respond {
            status,
            headers: vec![("Content-Type".to_owned(), "application/json".to_owned())],
            body: body.as_bytes().to_vec(),
        }
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// A loopback HTTP server driven by a handler, optionally in front of a real registry.
/// One request per connection: every answer says `Connection: close`, so the client
/// reconnects and the handler sees each request.
pub struct Scripted {
    address: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    held: Arc<Mutex<Vec<TcpStream>>>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Scripted {
    /// A server with no upstream (`Forward` replies are a test bug).
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Scripted {
        Self::proxy(None, handler)
    }

    /// A server that forwards to `upstream` (host:port) what the handler says to.
    pub fn proxy(
        upstream: Option<String>,
        handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let address = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let held = Arc::new(Mutex::new(Vec::new()));
        let stopping = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let thread = {
            let (log, held, stopping) = (log.clone(), held.clone(), stopping.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let (log, held, handler) = (log.clone(), held.clone(), handler.clone());
                    let upstream = upstream.clone();
                    std::thread::spawn(move || {
                        serve(stream, &*handler, upstream.as_deref(), &log, &held)
                    });
                }
            })
        };
        Scripted {
            address,
            log,
            held,
            stopping,
            thread: Some(thread),
        }
    }

    pub fn authority(&self) -> String {
        self.address.to_string()
    }

    /// `METHOD target` of every request read so far.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        for stream in self.held.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let _ = TcpStream::connect(self.address);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A listener that accepts connections and never reads or answers: the registry that
/// hangs. Connections stay open until it is dropped.
pub struct BlackHole {
    address: SocketAddr,
    held: Arc<Mutex<Vec<TcpStream>>>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl BlackHole {
    pub fn start() -> BlackHole {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let address = listener.local_addr().unwrap();
        let held = Arc::new(Mutex::new(Vec::new()));
        let stopping = Arc::new(AtomicBool::new(false));
        let thread = {
            let (held, stopping) = (held.clone(), stopping.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(stream) = stream {
                        held.lock().unwrap().push(stream);
                    }
                }
            })
        };
        BlackHole {
            address,
            held,
            stopping,
            thread: Some(thread),
        }
    }

    pub fn authority(&self) -> String {
        self.address.to_string()
    }

    pub fn connections(&self) -> usize {
        self.held.lock().unwrap().len()
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        for stream in self.held.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let _ = TcpStream::connect(self.address);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    stream: TcpStream,
    handler: &Handler,
    upstream: Option<&str>,
    log: &Mutex<Vec<String>>,
    held: &Mutex<Vec<TcpStream>>,
) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let Some(request) = read_request(&stream) else {
        return;
    };
    log.lock().unwrap().push(request.line());
    let mut client = stream;
    match handler(&request) {
        Reply::Respond {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} Scripted\r\nConnection: close\r\nContent-Length: {}\r\n",
                body.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let _ = client.write_all(head.as_bytes());
            if request.method != "HEAD" {
                let _ = client.write_all(&body);
            }
            let _ = client.flush();
        }
        Reply::Silent => held.lock().unwrap().push(client),
        Reply::Forward => relay(&request, upstream, client, None, held),
        Reply::CutAfter(bytes) => relay(&request, upstream, client, Some((bytes, false)), held),
        Reply::StallAfter(bytes) => relay(&request, upstream, client, Some((bytes, true)), held),
        Reply::Trickle(pieces, pause) => trickle(&request, upstream, client, pieces, pause),
    }
}

/// Sends the request upstream, reads the whole answer, and relays it in pieces.
fn trickle(
    request: &Request,
    upstream: Option<&str>,
    mut client: TcpStream,
    pieces: usize,
    pause: Duration,
) {
    let Some(mut server) = send_upstream(request, upstream) else {
        return;
    };
    let mut answer = Vec::new();
    let _ = server.read_to_end(&mut answer);
    let body_start = find(&answer, b"\r\n\r\n").map_or(answer.len(), |end| end + 4);
    if client.write_all(&answer[..body_start]).is_err() {
        return;
    }
    let body = &answer[body_start..];
    let piece = body.len().div_ceil(pieces.max(1)).max(1);
    for part in body.chunks(piece) {
        std::thread::sleep(pause);
        if client
            .write_all(part)
            .and_then(|()| client.flush())
            .is_err()
        {
            return;
        }
    }
}

/// Opens a connection upstream and sends the request (as `Connection: close`, the body
/// with its length).
fn send_upstream(request: &Request, upstream: Option<&str>) -> Option<TcpStream> {
    let upstream = upstream.expect("a forwarding reply needs an upstream");
    let mut server = TcpStream::connect(upstream).expect("connect to the upstream registry");
    let _ = server.set_read_timeout(Some(IO_TIMEOUT));
    let mut head = format!(
        "{} {} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        request.method,
        request.target,
        request.body.len()
    );
    for (name, value) in &request.headers {
        let skipped = [
            "connection",
            "content-length",
            "transfer-encoding",
            "expect",
        ];
        if !skipped.iter().any(|skip| name.eq_ignore_ascii_case(skip)) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("\r\n");
    server.write_all(head.as_bytes()).ok()?;
    server.write_all(&request.body).ok()?;
    Some(server)
}

/// Sends the request upstream (as `Connection: close`, body with its length) and copies
/// the answer back; with a limit, only the head and `limit` body bytes, then the client
/// connection is closed (`stall` false) or held open (`stall` true).
fn relay(
    request: &Request,
    upstream: Option<&str>,
    mut client: TcpStream,
    limit: Option<(usize, bool)>,
    held: &Mutex<Vec<TcpStream>>,
) {
    let Some(mut server) = send_upstream(request, upstream) else {
        return;
    };
    let mut sent = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let read = match server.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        let start = sent.len();
        sent.extend_from_slice(&buffer[..read]);
        let Some((body_bytes, stall)) = limit else {
            if client.write_all(&buffer[..read]).is_err() {
                return;
            }
            continue;
        };
        let Some(head_end) = find(&sent, b"\r\n\r\n") else {
            continue;
        };
        let allowed = head_end + 4 + body_bytes;
        if sent.len() < allowed {
            if client.write_all(&sent[start..]).is_err() {
                return;
            }
            continue;
        }
        let _ = client.write_all(&sent[start.min(allowed)..allowed]);
        let _ = client.flush();
        if stall {
            held.lock().unwrap().push(client);
        } else {
            let _ = client.shutdown(Shutdown::Both);
        }
        return;
    }
    let _ = client.flush();
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let header = |wanted: &str| {
        headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
            .map(|(_, value): &(String, String)| value.clone())
    };
    if header("expect").is_some_and(|value| value.eq_ignore_ascii_case("100-continue")) {
        let mut writer = stream;
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").ok()?;
    }
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|value| value.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line).ok()?;
            let size = usize::from_str_radix(size_line.split(';').next()?.trim(), 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(length) = header("content-length").and_then(|value| value.parse().ok()) {
        body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
    }
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}
