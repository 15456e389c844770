//! An HTTP/1.1 listener that records every request and answers with the statuses it is told
//! (e.g. 500 then 200, to see retries).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ReceivedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == &name.to_ascii_lowercase()).map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Answers a request: status, content type, body.
pub type Handler = dyn Fn(&ReceivedRequest) -> (u16, String, Vec<u8>) + Send + Sync;

#[derive(Default)]
struct Shared {
    requests: Vec<ReceivedRequest>,
    statuses: VecDeque<u16>,
    handler: Option<Arc<Handler>>,
}

pub struct HttpReceiver {
    addr: String,
    shared: Arc<Mutex<Shared>>,
}

impl HttpReceiver {
    /// Listens on 127.0.0.1 at a free port; answers 200 unless told otherwise.
    pub fn start() -> HttpReceiver {
        Self::with_statuses(&[])
    }

    /// Answers the first requests with these statuses, then 200.
    pub fn with_statuses(statuses: &[u16]) -> HttpReceiver {
        Self::listen(Shared { requests: Vec::new(), statuses: statuses.iter().copied().collect(), handler: None })
    }

    /// Answers every request with what `handler` says (e.g. a fake Kubernetes API server).
    pub fn with_handler(
        handler: impl Fn(&ReceivedRequest) -> (u16, String, Vec<u8>) + Send + Sync + 'static,
    ) -> HttpReceiver {
        Self::listen(Shared { requests: Vec::new(), statuses: VecDeque::new(), handler: Some(Arc::new(handler)) })
    }

    fn listen(shared: Shared) -> HttpReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let shared = Arc::new(Mutex::new(shared));
        let s = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &s);
                });
            }
        });
        HttpReceiver { addr, shared }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.shared.lock().unwrap().requests.clone()
    }

    /// Waits until `n` requests arrived (or the timeout passed) and returns what arrived.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedRequest> {
        let end = Instant::now() + timeout;
        loop {
            let got = self.requests();
            if got.len() >= n || Instant::now() > end {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn serve(stream: TcpStream, shared: &Mutex<Shared>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let len: usize =
            headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        let request = ReceivedRequest { method, path, headers, body };
        let handler = shared.lock().unwrap().handler.clone();
        let (status, content_type, reply) = match handler {
            Some(h) => h(&request),
            None => {
                let status = shared.lock().unwrap().statuses.pop_front().unwrap_or(200);
                let reply: &[u8] =
                    if status < 300 { b"{\"status\":\"success\",\"ok\":true}" } else { b"{\"error\":\"try again\"}" };
                (status, "application/json".to_string(), reply.to_vec())
            }
        };
        shared.lock().unwrap().requests.push(request);
        write!(
            writer,
            "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
            reply.len()
        )?;
        writer.write_all(&reply)?;
        writer.flush()?;
    }
}
