//! The duplicate-id rule: a row whose id was seen on an earlier row (accepted or not) is
//! rejected with "duplicate id (first seen on line N)".
//!
//! Two ways to apply it (see [`DuplicateCheck`]):
//! - **immediate**: a hash set of every id seen so far (24 bytes of payload per id), so the
//!   duplicate is rejected in its own chunk;
//! - **deferred**: each (id key, line, accepted ordinal) goes into a fixed-size in-memory
//!   run; full runs are sorted and spilled to a temporary directory; at the end a k-way merge
//!   of the runs finds every duplicate exactly. Memory stays flat whatever the file size.
//!
//! Ids are compared by a 128-bit key, XXH3-128 of the id text: two distinct ids collide with
//! probability about n² / 2¹²⁹ (1e-21 for ten billion rows).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use rayon::slice::ParallelSliceMut;
use serde::{Deserialize, Serialize};

use crate::error::DataError;

/// How the duplicate-id rule is applied (see [`crate::ReadOptions::duplicates`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateCheck {
    /// Reject a duplicate in its own chunk (memory: ~40 bytes per distinct id). Default.
    #[default]
    Immediate,
    /// Find duplicates after the last chunk, with [`crate::Reader::finish_duplicates`]; chunks
    /// may contain rows that turn out to be duplicates. Memory: `run_entries` × 32 bytes, plus
    /// 32 bytes per row on disk under `temp_dir` (default: the system temporary directory)
    /// while reading.
    Deferred {
        /// Entries per sorted run (default [`DEFAULT_RUN_ENTRIES`]); 0 is treated as 1.
        run_entries: usize,
        temp_dir: Option<PathBuf>,
    },
}

/// 524,288 entries (16 MB) per run.
pub const DEFAULT_RUN_ENTRIES: usize = 1 << 19;

impl DuplicateCheck {
    /// Deferred check with the default run size and temporary directory.
    pub fn deferred() -> DuplicateCheck {
        DuplicateCheck::Deferred {
            run_entries: DEFAULT_RUN_ENTRIES,
            temp_dir: None,
        }
    }
}

/// 128-bit key of an id text (trimmed; integers as their decimal text): XXH3-128, so two
/// distinct ids of a ten-billion-row file collide with probability about 1e-21.
pub fn id_key(id: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(id.as_bytes())
}

/// The keys are already uniform hashes: use their low 64 bits as the table hash.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

type KeyMap = HashMap<u128, u64, BuildHasherDefault<KeyHasher>>;

/// A duplicate found by the deferred check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub line: u64,
    pub first_line: u64,
    /// Accepted-row ordinal (0-based over the whole file), `None` for a row rejected anyway.
    pub ordinal: Option<u64>,
}

/// One spilled entry: key, line, ordinal (`u64::MAX`: not accepted). 32 bytes on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    key: u128,
    line: u64,
    ordinal: u64,
}

const ENTRY_BYTES: usize = 32;

impl Entry {
    fn to_bytes(self) -> [u8; ENTRY_BYTES] {
        let mut b = [0u8; ENTRY_BYTES];
        b[..16].copy_from_slice(&self.key.to_le_bytes());
        b[16..24].copy_from_slice(&self.line.to_le_bytes());
        b[24..].copy_from_slice(&self.ordinal.to_le_bytes());
        b
    }
    fn from_bytes(b: &[u8; ENTRY_BYTES]) -> Entry {
        let mut k = [0u8; 16];
        k.copy_from_slice(&b[..16]);
        let mut l = [0u8; 8];
        l.copy_from_slice(&b[16..24]);
        let mut o = [0u8; 8];
        o.copy_from_slice(&b[24..]);
        Entry {
            key: u128::from_le_bytes(k),
            line: u64::from_le_bytes(l),
            ordinal: u64::from_le_bytes(o),
        }
    }
}

/// Sorted runs on disk plus the current in-memory run.
pub(crate) struct Spill {
    run: Vec<Entry>,
    run_entries: usize,
    temp_dir: Option<PathBuf>,
    dir: Option<tempfile::TempDir>,
    runs: Vec<PathBuf>,
    source: String,
}

impl Spill {
    fn io(&self, what: &str, e: impl std::error::Error + Send + Sync + 'static) -> DataError {
        DataError::io_source(format!("{}: duplicate-id check: {what}", self.source), e)
    }

    fn log(&mut self, key: u128, line: u64, ordinal: Option<u64>) -> Result<(), DataError> {
        if self.run.len() >= self.run_entries {
            self.spill()?;
        }
        if self.run.capacity() == 0 {
            // one allocation, instead of doublings that copy
            self.run.reserve_exact(self.run_entries.min(1 << 24));
        }
        self.run.push(Entry {
            key,
            line,
            ordinal: ordinal.unwrap_or(u64::MAX),
        });
        Ok(())
    }

    fn spill(&mut self) -> Result<(), DataError> {
        if self.dir.is_none() {
            let dir = match &self.temp_dir {
                Some(d) => tempfile::Builder::new().prefix("cr-data-ids").tempdir_in(d),
                None => tempfile::Builder::new().prefix("cr-data-ids").tempdir(),
            }
            .map_err(|e| self.io("cannot create a temporary directory", e))?;
            self.dir = Some(dir);
        }
        let Some(dir) = &self.dir else { return Ok(()) };
        let path = dir.path().join(format!("run{}", self.runs.len()));
        self.run.par_sort_unstable();
        let f = File::create(&path).map_err(|e| self.io("cannot create a run file", e))?;
        let mut w = BufWriter::with_capacity(1 << 16, f);
        for e in &self.run {
            w.write_all(&e.to_bytes())
                .map_err(|e| self.io("cannot write a run file", e))?;
        }
        w.flush()
            .map_err(|e| self.io("cannot write a run file", e))?;
        self.runs.push(path);
        self.run.clear();
        Ok(())
    }

    /// Merge every run; duplicates in line order. Removes the run files.
    fn finish(&mut self) -> Result<Vec<Found>, DataError> {
        self.run.par_sort_unstable();
        let mut sources: Vec<RunReader> = Vec::with_capacity(self.runs.len() + 1);
        for p in &self.runs {
            let f = File::open(p).map_err(|e| self.io("cannot open a run file", e))?;
            sources.push(RunReader::File(BufReader::with_capacity(1 << 16, f)));
        }
        sources.push(RunReader::Memory(std::mem::take(&mut self.run).into_iter()));
        let mut heap = BinaryHeap::with_capacity(sources.len());
        for (i, s) in sources.iter_mut().enumerate() {
            if let Some(e) = s.next().map_err(|e| self.io("cannot read a run file", e))? {
                heap.push(Reverse((e, i)));
            }
        }
        let mut found = Vec::new();
        let mut current: Option<(u128, u64)> = None;
        while let Some(Reverse((e, i))) = heap.pop() {
            match current {
                Some((key, first)) if key == e.key => found.push(Found {
                    line: e.line,
                    first_line: first,
                    ordinal: (e.ordinal != u64::MAX).then_some(e.ordinal),
                }),
                _ => current = Some((e.key, e.line)),
            }
            if let Some(next) = sources[i]
                .next()
                .map_err(|e| self.io("cannot read a run file", e))?
            {
                heap.push(Reverse((next, i)));
            }
        }
        self.runs.clear();
        self.dir = None;
        found.sort_unstable_by_key(|f| f.line);
        Ok(found)
    }
}

enum RunReader {
    File(BufReader<File>),
    Memory(std::vec::IntoIter<Entry>),
}

impl RunReader {
    fn next(&mut self) -> std::io::Result<Option<Entry>> {
        match self {
            RunReader::Memory(it) => Ok(it.next()),
            RunReader::File(r) => {
                let mut b = [0u8; ENTRY_BYTES];
                match r.read_exact(&mut b) {
                    Ok(()) => Ok(Some(Entry::from_bytes(&b))),
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
                    Err(e) => Err(e),
                }
            }
        }
    }
}

/// The deferred check on its own, for row sources outside this crate (cr-infer's
/// float-matrix scoring reads CSV itself): [`DeferredIds::log`] every row with a valid id,
/// then [`DeferredIds::finish`]. Memory: `run_entries` × 32 bytes; the rest in sorted runs
/// under `temp_dir`, as for [`DuplicateCheck::Deferred`].
pub struct DeferredIds(Spill);

impl DeferredIds {
    /// `run_entries` (0 is treated as 1) and `temp_dir` as in [`DuplicateCheck::Deferred`];
    /// `source` names the file in IO errors.
    pub fn new(run_entries: usize, temp_dir: Option<PathBuf>, source: &str) -> DeferredIds {
        DeferredIds(Spill {
            run: Vec::new(),
            run_entries: run_entries.max(1),
            temp_dir,
            dir: None,
            runs: Vec::new(),
            source: source.to_string(),
        })
    }

    /// Remember a row: its id key ([`id_key`]), line, and accepted-row ordinal (`None` for a
    /// row rejected for another reason). Lines must be distinct.
    pub fn log(&mut self, key: u128, line: u64, ordinal: Option<u64>) -> Result<(), DataError> {
        self.0.log(key, line, ordinal)
    }

    /// Every row whose key was logged on an earlier line, in line order, with that first
    /// line; the state is then empty (run files removed).
    pub fn finish(&mut self) -> Result<Vec<Found>, DataError> {
        self.0.finish()
    }
}

/// The duplicate-id state of one reader.
pub(crate) enum IdCheck {
    /// Key -> line where the id first appeared.
    Immediate(KeyMap),
    Deferred(Spill),
}

impl IdCheck {
    pub(crate) fn new(mode: &DuplicateCheck, source: &str) -> IdCheck {
        match mode {
            DuplicateCheck::Immediate => IdCheck::Immediate(KeyMap::default()),
            DuplicateCheck::Deferred {
                run_entries,
                temp_dir,
            } => IdCheck::Deferred(Spill {
                run: Vec::new(),
                run_entries: (*run_entries).max(1),
                temp_dir: temp_dir.clone(),
                dir: None,
                runs: Vec::new(),
                source: source.to_string(),
            }),
        }
    }

    pub(crate) fn is_immediate(&self) -> bool {
        matches!(self, IdCheck::Immediate(_))
    }

    /// Immediate mode: the line where `key` was first seen, or `None` (and the key is
    /// remembered with `line`). Deferred mode: always `None` (see [`IdCheck::log`]).
    pub(crate) fn first_seen(&mut self, key: u128, line: u64) -> Option<u64> {
        match self {
            IdCheck::Immediate(map) => match map.entry(key) {
                std::collections::hash_map::Entry::Occupied(o) => Some(*o.get()),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(line);
                    None
                }
            },
            IdCheck::Deferred(_) => None,
        }
    }

    /// Deferred mode: remember a row with a valid id (`ordinal`: its accepted-row ordinal,
    /// `None` when it was rejected for another reason). Immediate mode: nothing.
    pub(crate) fn log(
        &mut self,
        key: u128,
        line: u64,
        ordinal: Option<u64>,
    ) -> Result<(), DataError> {
        match self {
            IdCheck::Immediate(_) => Ok(()),
            IdCheck::Deferred(s) => s.log(key, line, ordinal),
        }
    }

    /// Deferred mode: every duplicate, in line order (then the state is empty).
    pub(crate) fn finish(&mut self) -> Result<Vec<Found>, DataError> {
        match self {
            IdCheck::Immediate(_) => Ok(Vec::new()),
            IdCheck::Deferred(s) => s.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force: first line per key, duplicates after it.
    fn reference(rows: &[(u128, u64, Option<u64>)]) -> Vec<Found> {
        let mut first: std::collections::BTreeMap<u128, u64> = std::collections::BTreeMap::new();
        let mut out = Vec::new();
        for &(k, line, ordinal) in rows {
            match first.get(&k) {
                Some(&f) => out.push(Found {
                    line,
                    first_line: f,
                    ordinal,
                }),
                None => {
                    first.insert(k, line);
                }
            }
        }
        out
    }

    #[test]
    fn deferred_matches_brute_force_across_runs() {
        let dir = tempfile::tempdir().unwrap();
        // keys repeat with various gaps; lines increasing; every third row "rejected"
        let rows: Vec<(u128, u64, Option<u64>)> = (0..1000u64)
            .map(|i| {
                (
                    u128::from((i * 7919) % 613),
                    i + 2,
                    (i % 3 != 0).then_some(i),
                )
            })
            .collect();
        for run in [1, 2, 3, 64, 5000] {
            let mode = DuplicateCheck::Deferred {
                run_entries: run,
                temp_dir: Some(dir.path().to_path_buf()),
            };
            let mut c = IdCheck::new(&mode, "f");
            for &(k, l, o) in &rows {
                assert_eq!(c.first_seen(k, l), None);
                c.log(k, l, o).unwrap();
            }
            assert_eq!(c.finish().unwrap(), reference(&rows), "run size {run}");
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "run files are removed"
        );
    }

    #[test]
    fn immediate_first_seen() {
        let mut c = IdCheck::new(&DuplicateCheck::Immediate, "f");
        assert_eq!(c.first_seen(id_key("A"), 2), None);
        assert_eq!(c.first_seen(id_key("B"), 3), None);
        assert_eq!(c.first_seen(id_key("A"), 9), Some(2));
        assert_ne!(id_key("A"), id_key("A "));
    }
}
