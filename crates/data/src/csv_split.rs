//! Sequential stage of the CSV reader: cut the byte stream into records without parsing
//! fields, so that the field parsing and validation of sub-chunks can run in parallel.
//!
//! The scanner follows the `csv_core` reader's state machine with the settings the reader
//! uses (quote `"`, doubled quotes, no escape character, no comments, `\r`, `\n` or `\r\n`
//! ends a record, blank lines are skipped): a quote opens a quoted field only at the start
//! of a field; inside one, a doubled quote is a literal quote; a record ends at a `\r` or
//! `\n` outside quotes; an unterminated quoted field ends at the end of the file. A
//! sub-chunk therefore always starts in the "start of record" state, so parsing it on its
//! own gives exactly the records a single pass would (checked against the csv crate in the
//! tests).
//!
//! Line numbers: a record's physical line is 1 + the number of `\n` bytes before its first
//! byte (quoted newlines included; `\r\n` counts once).

use std::io::Read;

/// Bytes read from the file at a time.
const BLOCK: usize = 1 << 20;

/// A run of consecutive records inside [`RawChunk::data`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawSub {
    /// First byte of the first record.
    pub start: usize,
    /// End of the last record (its terminator excluded).
    pub end: usize,
    pub rows: usize,
    /// Physical line of the first record.
    pub line: u64,
}

/// Up to `max_rows` records, cut into sub-chunks of `sub_rows` records.
#[derive(Debug, Default)]
pub(crate) struct RawChunk {
    pub data: Vec<u8>,
    pub subs: Vec<RawSub>,
    pub rows: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between records: skipping `\r` / `\n`.
    Start,
    /// In a record, outside quotes.
    Unquoted,
    /// Inside a quoted field.
    Quoted,
    /// Just after a quote inside a quoted field: a second quote is a literal quote.
    QuoteSeen,
}

pub(crate) struct Splitter<R> {
    input: R,
    delimiter: u8,
    /// Unconsumed bytes; `buf[0]` is at a record boundary (perhaps before terminators).
    buf: Vec<u8>,
    /// `\n` bytes in the file before `buf[0]`.
    nl_before: u64,
    eof: bool,
    /// A spare buffer for the next chunk (handed back with [`Splitter::recycle`]).
    spare: Vec<u8>,
}

impl<R: Read> Splitter<R> {
    pub(crate) fn new(input: R, delimiter: u8) -> Splitter<R> {
        Splitter {
            input,
            delimiter,
            buf: Vec::new(),
            nl_before: 0,
            eof: false,
            spare: Vec::new(),
        }
    }

    /// Give a chunk's data buffer back for reuse.
    pub(crate) fn recycle(&mut self, data: Vec<u8>) {
        if data.capacity() > self.spare.capacity() {
            self.spare = data;
        }
    }

    /// Read more bytes into `buf`; false at the end of the input.
    fn fill(&mut self) -> std::io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        self.buf.reserve(BLOCK);
        let n = (&mut self.input)
            .take(BLOCK as u64)
            .read_to_end(&mut self.buf)?;
        if n == 0 {
            self.eof = true;
        }
        Ok(n > 0)
    }

    /// The next chunk of up to `max_rows` records (`None` at the end of the input).
    pub(crate) fn next_chunk(
        &mut self,
        max_rows: usize,
        sub_rows: usize,
    ) -> std::io::Result<Option<RawChunk>> {
        let (max_rows, sub_rows) = (max_rows.max(1), sub_rows.max(1));
        let quote = b'"';
        let delim = self.delimiter;
        let mut subs: Vec<RawSub> = Vec::new();
        let mut rows = 0usize;
        let mut sub_rows_now = 0usize;
        let mut sub_start = 0usize;
        let mut pos = 0usize;
        let mut rec_start = 0usize;
        let mut state = State::Start;
        // Where the chunk ends (end of its last record) once `max_rows` are found.
        let mut cut: Option<usize> = None;
        // Record ends at `end`: count it, close the sub-chunk or the chunk when full.
        macro_rules! record_end {
            ($end:expr) => {{
                let end = $end;
                rows += 1;
                sub_rows_now += 1;
                if sub_rows_now == sub_rows || rows == max_rows {
                    subs.push(RawSub {
                        start: sub_start,
                        end,
                        rows: sub_rows_now,
                        line: 0,
                    });
                    sub_rows_now = 0;
                }
                if rows == max_rows {
                    cut = Some(end);
                }
            }};
        }
        while cut.is_none() {
            if pos >= self.buf.len() {
                if !self.fill()? {
                    // End of input: an open record ends here.
                    if state != State::Start {
                        record_end!(self.buf.len());
                    }
                    break;
                }
                continue;
            }
            let buf = &self.buf[..];
            match state {
                State::Start => {
                    while pos < buf.len() && (buf[pos] == b'\r' || buf[pos] == b'\n') {
                        pos += 1;
                    }
                    if pos < buf.len() {
                        rec_start = pos;
                        if sub_rows_now == 0 {
                            sub_start = pos;
                        }
                        state = State::Unquoted;
                    }
                }
                State::Unquoted => match memchr::memchr3(quote, b'\r', b'\n', &buf[pos..]) {
                    None => pos = buf.len(),
                    Some(k) => {
                        let i = pos + k;
                        if buf[i] == quote {
                            if i == rec_start || buf[i - 1] == delim {
                                state = State::Quoted;
                            }
                            pos = i + 1;
                        } else {
                            pos = i;
                            state = State::Start;
                            record_end!(i);
                        }
                    }
                },
                State::Quoted => match memchr::memchr(quote, &buf[pos..]) {
                    None => pos = buf.len(),
                    Some(k) => {
                        pos += k + 1;
                        state = State::QuoteSeen;
                    }
                },
                State::QuoteSeen => {
                    if buf[pos] == quote {
                        pos += 1;
                        state = State::Quoted;
                    } else {
                        state = State::Unquoted;
                    }
                }
            }
        }
        if sub_rows_now > 0 {
            subs.push(RawSub {
                start: sub_start,
                end: self.buf.len(),
                rows: sub_rows_now,
                line: 0,
            });
        }
        let end = cut.unwrap_or(self.buf.len());
        // Lines: count '\n' up to each sub-chunk's start.
        let mut line = 1 + self.nl_before;
        let mut counted = 0usize;
        for s in &mut subs {
            line += memchr::memchr_iter(b'\n', &self.buf[counted..s.start]).count() as u64;
            counted = s.start;
            s.line = line;
        }
        let nl_in_chunk = (line - 1 - self.nl_before)
            + memchr::memchr_iter(b'\n', &self.buf[counted..end]).count() as u64;
        // Hand out buf[..end]; the rest starts the next chunk.
        let mut next = std::mem::take(&mut self.spare);
        next.clear();
        next.extend_from_slice(&self.buf[end..]);
        let mut data = std::mem::replace(&mut self.buf, next);
        data.truncate(end);
        self.nl_before += nl_in_chunk;
        if rows == 0 {
            self.recycle(data);
            return Ok(None);
        }
        Ok(Some(RawChunk { data, subs, rows }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records (fields) and their physical lines as the csv crate reads them, with the line
    /// of each record taken as 1 + the '\n's before its first byte.
    fn reference(bytes: &[u8]) -> Vec<(Vec<Vec<u8>>, u64)> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(bytes);
        let mut out = Vec::new();
        let mut rec = csv::ByteRecord::new();
        loop {
            let at = rdr.position().byte() as usize;
            if !rdr.read_byte_record(&mut rec).unwrap() {
                break;
            }
            let mut s = at;
            while s < bytes.len() && (bytes[s] == b'\r' || bytes[s] == b'\n') {
                s += 1;
            }
            let line = 1 + bytes[..s].iter().filter(|&&b| b == b'\n').count() as u64;
            out.push((rec.iter().map(<[u8]>::to_vec).collect(), line));
        }
        out
    }

    /// Records via the splitter, each sub-chunk parsed on its own.
    fn split(bytes: &[u8], max_rows: usize, sub_rows: usize) -> Vec<(Vec<Vec<u8>>, u64)> {
        let mut sp = Splitter::new(bytes, b',');
        let mut out = Vec::new();
        while let Some(ch) = sp.next_chunk(max_rows, sub_rows).unwrap() {
            assert_eq!(ch.subs.iter().map(|s| s.rows).sum::<usize>(), ch.rows);
            assert!(ch.rows <= max_rows);
            for s in &ch.subs {
                assert!(s.rows <= sub_rows);
                let part = &ch.data[s.start..s.end];
                let got = reference(part);
                assert_eq!(
                    got.len(),
                    s.rows,
                    "sub {:?} of {:?}",
                    s,
                    String::from_utf8_lossy(part)
                );
                out.extend(got.into_iter().map(|(f, l)| (f, l - 1 + s.line)));
            }
            sp.recycle(ch.data);
        }
        out
    }

    #[test]
    fn matches_the_csv_crate_on_tricky_inputs() {
        let cases: &[&[u8]] = &[
            b"",
            b"\n\n\r\n",
            b"a,b\n1,2\n",
            b"a,b\r\n1,2\r\n\r\n3,4",
            b"a,\"b\nc\",d\n\"x\"\"y\",z\n",
            b"a\"b,c\nd,\"e\"f\"g\n\"h\n",
            b"\"unterminated,x\ny\n",
            b"x,\"q\"\"\"\n\"\"\ny\r\rz\n",
            b"\"a\"\"\",\"\",\"\n\"\r\nlast",
            b"\xEF\xBB\xBF\"id\",v\n1,2\n",
        ];
        for c in cases {
            let want = reference(c);
            for (max_rows, sub_rows) in [(1, 1), (2, 1), (3, 2), (100, 3), (100, 100)] {
                assert_eq!(
                    split(c, max_rows, sub_rows),
                    want,
                    "{:?} {max_rows} {sub_rows}",
                    String::from_utf8_lossy(c)
                );
            }
        }
    }

    #[test]
    fn matches_the_csv_crate_on_random_bytes() {
        // A small LCG (deterministic) over an alphabet of CSV-significant bytes.
        let alphabet = b"ab,\"\r\n";
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for len in 0..400usize {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x = x
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    alphabet[((x >> 33) % alphabet.len() as u64) as usize]
                })
                .collect();
            let want = reference(&bytes);
            for (max_rows, sub_rows) in [(1, 1), (3, 2), (50, 7)] {
                assert_eq!(
                    split(&bytes, max_rows, sub_rows),
                    want,
                    "{:?}",
                    String::from_utf8_lossy(&bytes)
                );
            }
        }
    }

    #[test]
    fn records_across_read_blocks() {
        // One quoted field longer than a read block, then ordinary rows.
        let mut bytes = b"h\n\"".to_vec();
        bytes.extend(std::iter::repeat_n(b'x', BLOCK + 10));
        bytes.extend_from_slice(b"\n\"\n");
        for i in 0..1000 {
            bytes.extend_from_slice(format!("r{i}\r\n").as_bytes());
        }
        assert_eq!(split(&bytes, 7, 3), reference(&bytes));
    }
}
