//! Finding the inputs (files, folders, stdin), opening them (plain, gzip, zstd) and cutting them
//! into batches of lines with bounded memory.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::event::Origin;
use crate::skip::{SkipKind, Skipped};

/// Lines longer than this are skipped (counted, never held whole in memory).
pub const DEFAULT_MAX_LINE: usize = 16 << 20;
/// A file that is one JSON document (pretty-printed, or an array) is read whole up to this size.
pub const MAX_DOCUMENT: u64 = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
}

/// One file to read, or stdin.
#[derive(Debug, Clone)]
pub struct Input {
    /// `None` for stdin.
    pub path: Option<PathBuf>,
    /// How the input is named in messages and findings (`-` for stdin).
    pub display: Arc<str>,
    /// Named on the command line (as opposed to found inside a folder).
    pub explicit: bool,
    /// Size on disk, when known (for progress).
    pub size: Option<u64>,
}

/// Expands the command line's paths: folders recursively (rotated files included, oldest
/// rotation first), `-` as stdin. A path that does not exist is an error.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<Input>, SourceError> {
    let mut inputs = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            inputs.push(Input { path: None, display: Arc::from("-"), explicit: true, size: None });
            continue;
        }
        let meta =
            std::fs::metadata(path).map_err(|source| SourceError::Io { path: path.display().to_string(), source })?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found).map_err(|source| SourceError::Io { path: path.display().to_string(), source })?;
            found.sort_by_key(|p| rotation_order(p));
            for (file, size) in found.into_iter().map(|p| {
                let size = std::fs::metadata(&p).map(|m| m.len()).ok();
                (p, size)
            }) {
                inputs.push(Input {
                    display: Arc::from(file.display().to_string()),
                    path: Some(file),
                    explicit: false,
                    size,
                });
            }
        } else {
            inputs.push(Input {
                display: Arc::from(path.display().to_string()),
                path: Some(path.clone()),
                explicit: true,
                size: Some(meta.len()),
            });
        }
    }
    Ok(inputs)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let file_type = entry.file_type()?;
        let path = entry.path();
        if file_type.is_dir() {
            walk(&path, out)?;
        } else if file_type.is_file() || (file_type.is_symlink() && path.is_file()) {
            out.push(path);
        }
    }
    Ok(())
}

/// `audit.log.3.gz` < `audit.log.2` < `audit.log.1` < `audit.log`: logrotate's numbers count
/// backwards in time, so the highest number is read first.
fn rotation_order(path: &Path) -> (PathBuf, std::cmp::Reverse<i64>, String) {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let trimmed = name.trim_end_matches(".gz").trim_end_matches(".zst");
    let (stem, number) = match trimmed.rsplit_once('.') {
        Some((stem, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            (stem.to_string(), n.parse().unwrap_or(0))
        }
        _ => (trimmed.to_string(), -1),
    };
    (path.with_file_name(stem), std::cmp::Reverse(number), name)
}

/// A run of lines from one input. Spans index into `data`.
#[derive(Debug, Default)]
pub struct LineBatch {
    pub path: Arc<str>,
    /// The cluster every record of this input came from (`ReadOptions::cluster`).
    pub cluster: Option<Arc<str>>,
    pub data: Vec<u8>,
    pub lines: Vec<LineSpan>,
    /// Problems found while reading (oversized lines, truncation), in order.
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Clone, Copy)]
pub struct LineSpan {
    pub line: u64,
    pub start: usize,
    pub end: usize,
}

impl LineBatch {
    /// A batch whose `data` holds stale bytes, to be overwritten and cut to what was read.
    fn stale(path: Arc<str>, options: &ReadOptions) -> Self {
        LineBatch {
            path,
            cluster: options.cluster.clone(),
            data: options.buffers.take_stale(options.batch_bytes),
            ..Default::default()
        }
    }

    pub fn text(&self, span: &LineSpan) -> &[u8] {
        &self.data[span.start..span.end]
    }

    pub fn origin(&self, span: &LineSpan) -> Origin {
        Origin { path: self.path.clone(), line: span.line, cluster: self.cluster.clone() }
    }
}

/// Counts the bytes read from the underlying file, for progress bars.
struct Counted<R> {
    inner: R,
    counter: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// How reading one input went.
#[derive(Debug, Default, Clone)]
pub struct ReadSummary {
    pub lines: u64,
    pub bytes: u64,
}

/// Options for [`read_input`].
#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub batch_bytes: usize,
    pub max_line: usize,
    /// The cluster the inputs were logged in (`kir hunt --cluster`): every record is labelled
    /// with it, and findings carry it.
    pub cluster: Option<Arc<str>>,
    /// Where spent batch buffers come back to be filled again.
    pub buffers: BufferPool,
}

/// Batch buffers for reuse. A fresh multi-megabyte buffer per batch costs page faults and
/// zeroing in the kernel that show up as a quarter of the reader's time; reused ones do not.
#[derive(Debug, Clone, Default)]
pub struct BufferPool(Arc<std::sync::Mutex<Vec<Vec<u8>>>>);

impl BufferPool {
    /// Buffers kept at most: the batches in flight in a pipeline.
    const KEEP: usize = 8;

    /// A buffer that still holds what it held: its bytes are initialized, so the reader reads
    /// into them without zeroing them first (which was a quarter of its time).
    fn take_stale(&self, capacity: usize) -> Vec<u8> {
        let reused = self.0.lock().ok().and_then(|mut pool| pool.pop());
        // Room for a batch, the read that crosses its end and the line that crosses that.
        reused.unwrap_or_else(|| Vec::with_capacity(capacity + (capacity >> 2) + READ_AT_LEAST))
    }

    /// Hands a spent buffer back.
    pub fn give(&self, buffer: Vec<u8>) {
        if let Ok(mut pool) = self.0.lock()
            && pool.len() < Self::KEEP
        {
            pool.push(buffer);
        }
    }
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions { batch_bytes: 1 << 20, max_line: DEFAULT_MAX_LINE, cluster: None, buffers: BufferPool::default() }
    }
}

/// Reads one input to the end, handing batches of lines to `sink`. Errors that stop the file
/// midway (a truncated archive) arrive as a `TruncatedInput` skip in the last batch; only a file
/// that cannot be opened at all is an `Err`.
pub fn read_input(
    input: &Input,
    options: &ReadOptions,
    progress: Arc<AtomicU64>,
    sink: &mut dyn FnMut(LineBatch),
) -> Result<ReadSummary, SourceError> {
    open_input(input, options, progress)?.each(sink)
}

/// Reads any byte stream (plain, gzip or zstd, recognized by its first bytes) as
/// [`read_input`] does; `name` is how messages and findings call it.
pub fn read_stream(
    raw: Box<dyn Read + Send + '_>,
    name: Arc<str>,
    options: &ReadOptions,
    progress: Arc<AtomicU64>,
    sink: &mut dyn FnMut(LineBatch),
) -> Result<ReadSummary, SourceError> {
    open_stream(raw, name, options, progress)?.each(sink)
}

/// One input's batches, read when asked for: [`read_input`] as a pull. A pipeline's decoders
/// each read their next batch themselves (in turn), so its bytes are copied into the cache of
/// the core that decodes them, and no thread is kept only to read.
pub fn open_input<'r>(
    input: &Input,
    options: &'r ReadOptions,
    progress: Arc<AtomicU64>,
) -> Result<Batches<'r>, SourceError> {
    let err = |source| SourceError::Io { path: input.display.to_string(), source };
    let raw: Box<dyn Read + Send> = match &input.path {
        Some(path) => Box::new(File::open(path).map_err(err)?),
        None => Box::new(io::stdin()),
    };
    open_stream(raw, input.display.clone(), options, progress)
}

/// [`read_stream`] as a pull ([`open_input`]).
pub fn open_stream<'r>(
    raw: Box<dyn Read + Send + 'r>,
    name: Arc<str>,
    options: &'r ReadOptions,
    progress: Arc<AtomicU64>,
) -> Result<Batches<'r>, SourceError> {
    let err = |source| SourceError::Io { path: name.to_string(), source };
    let mut buffered = BufReader::with_capacity(256 << 10, Counted { inner: raw, counter: progress });
    let magic = buffered.fill_buf().map_err(err)?.get(..4).map(|m| m.to_vec()).unwrap_or_default();
    let reader: Box<dyn BufRead + Send + 'r> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(BufReader::with_capacity(256 << 10, flate2::read::MultiGzDecoder::new(buffered)))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(BufReader::with_capacity(256 << 10, zstd::stream::read::Decoder::with_buffer(buffered).map_err(err)?))
    } else {
        Box::new(buffered)
    };
    Ok(Batches::new(reader, name, options))
}

/// What a read asks for at least: std's `BufReader` (256 KiB) passes a read this large straight
/// to the file, so the bytes land in the batch with one copy, from the kernel.
const READ_AT_LEAST: usize = 256 << 10;

/// The batches of one input, in order ([`open_input`]).
pub struct Batches<'r> {
    reader: Box<dyn BufRead + Send + 'r>,
    cutter: Cutter<'r>,
    /// Set once the last batch was handed out: how reading went.
    finished: Option<ReadSummary>,
    done: bool,
}

impl<'r> Batches<'r> {
    fn new(reader: Box<dyn BufRead + Send + 'r>, path: Arc<str>, options: &'r ReadOptions) -> Self {
        let cutter = Cutter {
            summary: ReadSummary::default(),
            batch: LineBatch::stale(path.clone(), options),
            path,
            filled: 0,
            line_no: 0,
            line_start: 0,
            dropped: 0,
            first_content: true,
            options,
        };
        Batches { reader, cutter, finished: None, done: false }
    }

    /// Hands every batch to `sink`, then says how reading went.
    fn each(mut self, sink: &mut dyn FnMut(LineBatch)) -> Result<ReadSummary, SourceError> {
        while let Some(batch) = self.next_batch()? {
            sink(batch);
        }
        Ok(self.summary())
    }

    /// How reading went, once [`Batches::next_batch`] said there is no more.
    pub fn summary(&mut self) -> ReadSummary {
        self.finished.take().unwrap_or_default()
    }

    /// The next batch; `None` after the last. Every input gives at least one batch (an empty
    /// one, for an empty input). Errors that stop the input midway arrive as a `TruncatedInput`
    /// skip in its last batch; an `Err` ends it.
    pub fn next_batch(&mut self) -> Result<Option<LineBatch>, SourceError> {
        if self.done {
            return Ok(None);
        }
        let (cutter, reader) = (&mut self.cutter, &mut *self.reader);
        let options = cutter.options;
        loop {
            // Bytes are read straight into the batch after the line that is not finished yet,
            // and cut into lines there: no copy but the kernel's (and the unfinished line's,
            // when a batch is handed on). The batch's bytes past `filled` are stale, not zeroed.
            let filled = cutter.filled;
            let want = options.batch_bytes.saturating_sub(filled).max(READ_AT_LEAST.min(options.batch_bytes)).max(1);
            if cutter.batch.data.len() < filled + want {
                cutter.batch.data.resize(filled + want, 0);
            }
            let read = loop {
                match reader.read(&mut cutter.batch.data[filled..filled + want]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            };
            let n = match read {
                Ok(n) => n,
                Err(e) => {
                    cutter.filled = cutter.line_start;
                    cutter.batch.skipped.push(Skipped::new(
                        SkipKind::TruncatedInput,
                        Origin::new(cutter.path.clone(), cutter.line_no + 1),
                        format!("reading stopped: {e}; the lines before were kept"),
                    ));
                    return Ok(Some(self.last()));
                }
            };
            cutter.filled = filled + n;
            if n == 0 {
                // The last line, without its newline.
                let end = cutter.filled;
                if (end > cutter.line_start || cutter.dropped > 0)
                    && let Some(summary) = cutter.line(end, reader)?
                {
                    return Ok(Some(self.document(summary)));
                }
                return Ok(Some(self.last()));
            }
            let mut at = filled;
            while let Some(i) = memchr::memchr(b'\n', &cutter.batch.data[at..cutter.filled]) {
                at += i + 1;
                if let Some(summary) = cutter.line(at, reader)? {
                    return Ok(Some(self.document(summary)));
                }
            }
            // An unfinished line over the limit is dropped as it comes (a log of one endless line
            // does not fill memory); its bytes are still counted.
            let unfinished = cutter.filled - cutter.line_start;
            if unfinished > 0 && unfinished + cutter.dropped > options.max_line {
                cutter.dropped += unfinished;
                cutter.filled = cutter.line_start;
            }
            if cutter.line_start >= options.batch_bytes {
                let mut next = LineBatch::stale(cutter.path.clone(), options);
                let unfinished = &cutter.batch.data[cutter.line_start..cutter.filled];
                if next.data.len() < unfinished.len() {
                    next.data.resize(unfinished.len(), 0);
                }
                next.data[..unfinished.len()].copy_from_slice(unfinished);
                cutter.filled = unfinished.len();
                cutter.batch.data.truncate(cutter.line_start);
                cutter.line_start = 0;
                return Ok(Some(std::mem::replace(&mut cutter.batch, next)));
            }
        }
    }

    /// The input's last batch, cut to what was read.
    fn last(&mut self) -> LineBatch {
        let cutter = &mut self.cutter;
        cutter.batch.data.truncate(cutter.filled);
        self.finished = Some(std::mem::take(&mut cutter.summary));
        self.done = true;
        std::mem::take(&mut cutter.batch)
    }

    /// The input turned out to be one JSON document, now read whole into the batch.
    fn document(&mut self, summary: ReadSummary) -> LineBatch {
        self.finished = Some(summary);
        self.done = true;
        std::mem::take(&mut self.cutter.batch)
    }
}

/// Cuts the bytes of a batch into lines, as they are read.
struct Cutter<'o> {
    summary: ReadSummary,
    batch: LineBatch,
    path: Arc<str>,
    /// How much of the batch's data was read; the rest is stale.
    filled: usize,
    line_no: u64,
    /// Where the line being read starts in the batch's data.
    line_start: usize,
    /// Bytes of the line being read that were dropped, over the limit.
    dropped: usize,
    first_content: bool,
    options: &'o ReadOptions,
}

impl Cutter<'_> {
    /// The line from `line_start` to `end` (past its newline, if any) is complete. `Some` when
    /// the input turned out to be one JSON document, now read whole into the batch.
    fn line(&mut self, end: usize, reader: &mut dyn BufRead) -> Result<Option<ReadSummary>, SourceError> {
        let (start, length) = (self.line_start, end - self.line_start + self.dropped);
        self.line_start = end;
        self.line_no += 1;
        self.summary.lines += 1;
        self.summary.bytes += length as u64;
        if self.dropped > 0 || length > self.options.max_line {
            self.dropped = 0;
            self.first_content = false;
            self.batch.skipped.push(Skipped::new(
                SkipKind::OversizedLine,
                Origin::new(self.batch.path.clone(), self.line_no),
                format!("line of {length} bytes is over the limit of {} bytes", self.options.max_line),
            ));
            return Ok(None);
        }
        let whole = &self.batch.data[start..end];
        let text = trim_line(whole);
        if text.is_empty() {
            return Ok(None);
        }
        if self.first_content {
            self.first_content = false;
            if is_cut_json(text) {
                // One JSON document over many lines: read it whole, from this line on.
                self.batch.data.truncate(self.filled);
                let mut doc = self.batch.data.split_off(start);
                let limit = MAX_DOCUMENT.saturating_sub(doc.len() as u64);
                let outcome = reader.take(limit + 1).read_to_end(&mut doc);
                if let Err(e) = outcome {
                    self.batch.skipped.push(Skipped::new(
                        SkipKind::TruncatedInput,
                        Origin::new(self.batch.path.clone(), self.line_no),
                        format!("reading stopped: {e}"),
                    ));
                }
                self.summary.bytes = doc.len() as u64;
                split_document(doc, self.line_no, &mut self.batch);
                return Ok(Some(std::mem::take(&mut self.summary)));
            }
        }
        let text_start = start + (text.as_ptr() as usize - whole.as_ptr() as usize);
        self.batch.lines.push(LineSpan { line: self.line_no, start: text_start, end: text_start + text.len() });
        Ok(None)
    }
}

fn trim_line(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\r' | b'\n' | b' ' | b'\t') {
        end -= 1;
    }
    let mut start = 0;
    while start < end && matches!(line[start], b' ' | b'\t') {
        start += 1;
    }
    // A UTF-8 byte-order mark at the start of a file.
    if line[start..end].starts_with(&[0xef, 0xbb, 0xbf]) {
        start += 3;
    }
    &line[start..end]
}

/// The first line opens a JSON value that it does not close: the file is one document.
fn is_cut_json(text: &[u8]) -> bool {
    if !matches!(text.first(), Some(b'{' | b'[')) {
        return false;
    }
    match serde_json::from_slice::<serde::de::IgnoredAny>(text) {
        Ok(_) => false,
        Err(e) => e.is_eof(),
    }
}

/// Cuts a whole-file JSON document into its top-level values (array elements count as values).
fn split_document(doc: Vec<u8>, first_line: u64, batch: &mut LineBatch) {
    let mut spans = Vec::new();
    let mut problem = None;
    {
        let stream = serde_json::Deserializer::from_slice(&doc).into_iter::<&serde_json::value::RawValue>();
        for item in stream {
            match item {
                Ok(raw) => {
                    let start = raw.get().as_ptr() as usize - doc.as_ptr() as usize;
                    let end = start + raw.get().len();
                    if raw.get().starts_with('[') {
                        match serde_json::from_str::<Vec<&serde_json::value::RawValue>>(raw.get()) {
                            Ok(items) => {
                                for item in items {
                                    let s = item.get().as_ptr() as usize - doc.as_ptr() as usize;
                                    spans.push((s, s + item.get().len()));
                                }
                            }
                            Err(_) => spans.push((start, end)),
                        }
                    } else {
                        spans.push((start, end));
                    }
                }
                Err(e) => {
                    problem = Some(e);
                    break;
                }
            }
        }
    }
    let base = batch.data.len();
    if problem.is_some() && spans.is_empty() {
        // Not one document after all: a JSON-lines file whose first line is broken.
        let mut offset = 0;
        for (i, raw_line) in doc.split(|&b| b == b'\n').enumerate() {
            let text = trim_line(raw_line);
            if !text.is_empty() {
                let start = offset + (text.as_ptr() as usize - raw_line.as_ptr() as usize);
                batch.lines.push(LineSpan {
                    line: first_line + i as u64,
                    start: base + start,
                    end: base + start + text.len(),
                });
            }
            offset += raw_line.len() + 1;
        }
        batch.data.extend_from_slice(&doc);
        return;
    }
    // Spans come in order: count the newlines once, as we go.
    let (mut counted_to, mut line) = (0, first_line);
    for (start, end) in &spans {
        line += doc[counted_to..*start].iter().filter(|&&b| b == b'\n').count() as u64;
        counted_to = *start;
        batch.lines.push(LineSpan { line, start: base + start, end: base + end });
    }
    if let Some(e) = problem {
        let kind = if e.is_eof() { SkipKind::TruncatedInput } else { SkipKind::MalformedJson };
        let line = first_line + e.line().saturating_sub(1) as u64;
        batch.skipped.push(Skipped::new(kind, Origin::new(batch.path.clone(), line), e.to_string()));
    }
    batch.data.extend_from_slice(&doc);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batches(data: &[u8], options: &ReadOptions) -> Vec<LineBatch> {
        let mut out = Vec::new();
        let reader = io::Cursor::new(data.to_vec());
        Batches::new(Box::new(reader), Arc::from("t"), options).each(&mut |b| out.push(b)).unwrap();
        out
    }

    #[test]
    fn batches_pulled_are_the_batches_pushed() {
        let data: Vec<u8> = (0..5000).flat_map(|i| format!("{{\"n\":{i}}}\n").into_bytes()).collect();
        let options = ReadOptions { batch_bytes: 4096, ..ReadOptions::default() };
        let pushed = batches(&data, &options);
        let mut pull = Batches::new(Box::new(io::Cursor::new(data.clone())), Arc::from("t"), &options);
        let mut pulled = Vec::new();
        while let Some(batch) = pull.next_batch().unwrap() {
            pulled.push(batch);
        }
        assert!(pushed.len() > 3, "several batches");
        assert_eq!(pulled.len(), pushed.len());
        for (a, b) in pulled.iter().zip(&pushed) {
            assert_eq!(a.data, b.data);
            assert_eq!(
                a.lines.iter().map(|s| (s.line, s.start, s.end)).collect::<Vec<_>>(),
                b.lines.iter().map(|s| (s.line, s.start, s.end)).collect::<Vec<_>>()
            );
        }
        let summary = pull.summary();
        assert!(pull.next_batch().unwrap().is_none(), "nothing after the last batch");
        assert_eq!((summary.lines, summary.bytes), (5000, data.len() as u64));
    }

    #[test]
    fn lines_keep_their_numbers() {
        let b = batches(b"{\"a\":1}\n\n{\"b\":2}\r\n{\"c\":3}", &ReadOptions::default());
        let lines: Vec<_> =
            b[0].lines.iter().map(|s| (s.line, String::from_utf8_lossy(b[0].text(s)).into_owned())).collect();
        assert_eq!(lines, [(1, "{\"a\":1}".into()), (3, "{\"b\":2}".into()), (4, "{\"c\":3}".into())]);
    }

    /// Hands out at most `step` bytes per read, as a pipe or a decompressor does.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.step).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    proptest::proptest! {
        /// However the bytes arrive and however small the batches, every line is where a plain
        /// split on newlines puts it: its number, its trimmed text or its being over the limit,
        /// and the counts of lines and bytes.
        #[test]
        fn lines_are_cut_as_a_split_on_newlines_cuts_them(
            lines in proptest::collection::vec("[a-z \\t\\r\"{}:1]{0,40}", 0..60),
            last_newline: bool,
            step in 1usize..300,
            buffer in 1usize..64,
            batch_bytes in 1usize..400,
            max_line in 1usize..50,
        ) {
            let mut data = lines.join("\n").into_bytes();
            if last_newline && !data.is_empty() {
                data.push(b'\n');
            }
            // Never one document over many lines (a first line that opens JSON it does not close).
            proptest::prop_assume!(!lines.iter().find(|l| !l.trim().is_empty()).is_some_and(|l| is_cut_json(trim_line(l.as_bytes()))));
            let options = ReadOptions { batch_bytes, max_line, ..Default::default() };
            let reader = io::BufReader::with_capacity(buffer, Trickle { data: &data, step });
            let mut got = Vec::new();
            let mut bytes_in_batches = Vec::new();
            let summary = Batches::new(Box::new(reader), Arc::from("t"), &options).each(&mut |b| {
                bytes_in_batches.extend_from_slice(&b.data);
                for s in &b.lines {
                    got.push((s.line, Some(String::from_utf8_lossy(b.text(s)).into_owned())));
                }
                for k in &b.skipped {
                    got.push((k.origin.line, None));
                }
                // Spent buffers come back holding their bytes, as in a hunt.
                options.buffers.give(b.data);
            })
            .unwrap();
            got.sort_by_key(|(line, _)| *line);
            let mut want = Vec::new();
            let pieces: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
            let mut bytes = 0;
            for (i, piece) in pieces.iter().enumerate() {
                let newline = usize::from(i + 1 < pieces.len());
                if newline == 0 && piece.is_empty() {
                    break;
                }
                let length = piece.len() + newline;
                bytes += length;
                if length > max_line {
                    want.push((i as u64 + 1, None));
                } else if !trim_line(piece).is_empty() {
                    want.push((i as u64 + 1, Some(String::from_utf8_lossy(trim_line(piece)).into_owned())));
                }
            }
            let dropped = want.iter().any(|(_, text)| text.is_none());
            proptest::prop_assert_eq!(got, want);
            proptest::prop_assert_eq!(summary.bytes, bytes as u64);
            // The batches hold the input's bytes and nothing else (none left from a buffer's
            // earlier use), unless a line over the limit was dropped.
            if !dropped {
                proptest::prop_assert_eq!(bytes_in_batches, data.clone());
            }
            let line_count = pieces.len() - usize::from(pieces.last().is_some_and(|p| p.is_empty()));
            proptest::prop_assert_eq!(summary.lines, line_count as u64);
        }
    }

    #[test]
    fn oversized_lines_are_skipped_and_counted() {
        let mut data = vec![b'x'; 100];
        data.extend_from_slice(b"\n{\"a\":1}\n");
        let b = batches(&data, &ReadOptions { max_line: 50, ..Default::default() });
        assert_eq!(b[0].skipped[0].kind, SkipKind::OversizedLine);
        assert_eq!(b[0].lines.len(), 1);
        assert_eq!(b[0].lines[0].line, 2);
    }

    #[test]
    fn pretty_printed_document_is_split_into_values() {
        let b = batches(b"[\n {\"a\": 1},\n {\"b\": 2}\n]\n", &ReadOptions::default());
        assert_eq!(b[0].lines.len(), 2);
        assert_eq!(b[0].lines[1].line, 3);
    }

    #[test]
    fn rotated_files_oldest_first() {
        let mut paths =
            vec![PathBuf::from("d/audit.log"), PathBuf::from("d/audit.log.1"), PathBuf::from("d/audit.log.2.gz")];
        paths.sort_by_key(|p| rotation_order(p));
        assert_eq!(
            paths,
            [PathBuf::from("d/audit.log.2.gz"), PathBuf::from("d/audit.log.1"), PathBuf::from("d/audit.log")]
        );
    }
}
