//! Our raw-field models (from `customs-risk train`): the file is read and validated by
//! cr-data against the schema in the model, scored by [`DeclarationModel`], written by
//! [`Sink`]. Duplicate ids are checked with bounded memory (sorted runs on disk) and settled
//! after the last chunk.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use cr_data::{
    DataError, DuplicateCheck, ReadChunk, ReadOptions, Reader, RejectSpool, RejectWriter,
};

use super::sink::Sink;
use super::{BulkError, BulkOptions, BulkSummary, Progress};
use crate::{DeclarationModel, LoadOptions};

/// Load the model, score the file; see [`score_chunks`].
pub(super) fn score(
    model_path: &Path,
    proto: cr_onnx::proto::ModelProto,
    load: &LoadOptions,
    opts: &BulkOptions,
    pool: &rayon::ThreadPool,
    progress: &dyn Progress,
) -> Result<BulkSummary, BulkError> {
    let (model, start) = load_and_start(model_path, opts, pool, &proto, load, &read_options(opts))?;
    drop(proto);
    score_chunks(opts, pool, &model, start, progress)
}

/// How `score` reads: the options' chunking, delimiter and error policy; no label needed;
/// duplicate ids settled after the last chunk (sorted runs on disk).
pub(super) fn read_options(opts: &BulkOptions) -> ReadOptions {
    ReadOptions {
        batch_rows: opts.batch_rows.max(1),
        delimiter: opts.delimiter,
        on_error: opts.on_error,
        require_label: false,
        duplicates: DuplicateCheck::deferred(),
        extra_columns: opts.extra_columns,
        strict_categories: false,
        pseudonym_key: opts.pseudonym_key.clone(),
    }
}

/// Chunks read while the model compiles (at most; memory holds them until scored).
const READ_AHEAD: usize = 3;

/// An open reader and the chunks already read from it, in order.
pub(super) struct Started {
    reader: Reader,
    ahead: VecDeque<Result<ReadChunk, DataError>>,
}

/// Load the model and open the data. When the schema can be read from the pipeline metadata
/// on its own (a few microseconds: it comes first), reading starts on the pool while the
/// rest of the pipeline (its tables) and the core compile, up to [`READ_AHEAD`] chunks;
/// the chunks are the ones a plain read gives, so nothing in the output changes. A model
/// error wins over a data error, as in the sequential order.
pub(super) fn load_and_start(
    model_path: &Path,
    opts: &BulkOptions,
    pool: &rayon::ThreadPool,
    proto: &cr_onnx::proto::ModelProto,
    load: &LoadOptions,
    ropts: &ReadOptions,
) -> Result<(DeclarationModel, Started), BulkError> {
    let load = || {
        DeclarationModel::from_proto(proto, load).map_err(|source| BulkError::Load {
            path: model_path.to_path_buf(),
            source,
        })
    };
    let open = |schema: &cr_data::Schema| {
        cr_data::open(&opts.data, schema, ropts).map_err(|source| BulkError::Read {
            path: opts.data.clone(),
            source,
        })
    };
    let Some(schema) = peek_schema(proto) else {
        let model = load()?;
        let reader = open(model.schema())?;
        return Ok((
            model,
            Started {
                reader,
                ahead: VecDeque::new(),
            },
        ));
    };
    let ready = AtomicBool::new(false);
    let (model, started) = pool.install(|| {
        rayon::join(
            || {
                let m = load();
                ready.store(true, Ordering::Release);
                m
            },
            || -> Result<Started, BulkError> {
                let mut reader = open(&schema)?;
                let mut ahead = VecDeque::new();
                while ahead.len() < READ_AHEAD && !ready.load(Ordering::Acquire) {
                    let Some(chunk) = reader.next() else { break };
                    let failed = chunk.is_err();
                    ahead.push_back(chunk);
                    if failed {
                        break;
                    }
                }
                Ok(Started { reader, ahead })
            },
        )
    });
    let model = model?;
    if model.schema() != &schema {
        return Err(BulkError::Invalid(format!(
            "{}: the pipeline's schema reads differently on its own (internal error)",
            model_path.display()
        )));
    }
    Ok((model, started?))
}

/// The `schema` member of our pipeline metadata (JSON), read without the rest; `None` when
/// absent or not plausible (then the model is loaded first, as usual, and reports it).
fn peek_schema(proto: &cr_onnx::proto::ModelProto) -> Option<cr_data::Schema> {
    use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, Visitor};
    struct Peek<'a>(&'a mut Option<cr_data::Schema>);
    impl<'de> Visitor<'de> for Peek<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<(), M::Error> {
            while let Some(k) = m.next_key::<std::borrow::Cow<'de, str>>()? {
                if k == "schema" {
                    *self.0 = Some(m.next_value()?);
                    // stop here: the tables after it are not needed
                    return Err(M::Error::custom("schema found"));
                }
                m.next_value::<IgnoredAny>()?;
            }
            Ok(())
        }
    }
    impl<'de> DeserializeSeed<'de> for Peek<'_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_map(self)
        }
    }
    let json = proto
        .metadata_props
        .iter()
        .rev()
        .find(|p| p.key() == cr_model::meta::PIPELINE)?
        .value();
    let mut found = None;
    let _ = Peek(&mut found).deserialize(&mut serde_json::Deserializer::from_str(json));
    found.filter(|s: &cr_data::Schema| {
        (2..=12).contains(&s.hs_width) && s.hs_width.is_multiple_of(2) && s.date_min <= s.date_max
    })
}

/// Read, validate, score and write in a pipeline on `pool` (see [`pipe`]); the scored rows
/// go to the output table through [`Sink`].
fn score_chunks(
    opts: &BulkOptions,
    pool: &rayon::ThreadPool,
    model: &DeclarationModel,
    start: Started,
    progress: &dyn Progress,
) -> Result<BulkSummary, BulkError> {
    let reference = model.reference();
    let mut sink = Sink::create(&opts.out, opts.budget, model.prediction().column())?;
    let piped = pipe(opts, pool, model, start, progress, &mut |batch, scores| {
        sink.push(&batch.ids, scores, reference)
    });
    let piped = match piped {
        Ok(p) => p,
        Err(e) => {
            sink.discard(&opts.out);
            return Err(e);
        }
    };
    let selected = sink.finish(&opts.out, pool, reference, &piped.dups)?;
    Ok(BulkSummary {
        rows: piped.accepted,
        rejected: piped.rejected,
        engine: model.engine_used(),
        native_refused: model.native_refused().map(str::to_string),
        mapping: None,
        ignored_columns: piped.ignored_columns,
        selected,
        seconds: 0.0,
    })
}

/// What [`pipe`] leaves for its caller.
pub(super) struct Piped {
    /// Accepted-row ordinals (ascending) of rows whose id turned out to be a duplicate after
    /// their chunk was pushed: the caller removes them from its output.
    pub dups: Vec<u64>,
    /// Rows accepted (late duplicates excluded) and rejected (included).
    pub accepted: u64,
    pub rejected: u64,
    /// The file's columns left unread (not in the model's schema).
    pub ignored_columns: Vec<String>,
}

/// A scored chunk's destination: the rows (validated) and their scores.
pub(super) type Push<'a> = dyn FnMut(&cr_data::Batch, &[f32]) -> Result<(), BulkError> + Send + 'a;

/// Read, validate, score and hand over chunks in a pipeline on `pool`. While chunk N is scored
/// and pushed, chunk N+1 is read and validated (`rayon::join`), so memory holds about three
/// chunks. Duplicate ids are settled after the last chunk: with [`cr_data::OnError::Fail`]
/// a duplicate is an error; with skip the duplicate rows go to the rejects (merged in line
/// order by [`RejectSpool`], a duplicate on a row rejected anyway joining its problems) and
/// the ordinals of accepted ones to [`Piped::dups`].
pub(super) fn pipe(
    opts: &BulkOptions,
    pool: &rayon::ThreadPool,
    model: &DeclarationModel,
    start: Started,
    progress: &dyn Progress,
    push: &mut Push<'_>,
) -> Result<Piped, BulkError> {
    let Started { mut reader, ahead } = start;
    let ignored_columns: Vec<String> = reader
        .ignored_columns()
        .into_iter()
        .map(str::to_string)
        .collect();
    if !ignored_columns.is_empty() {
        progress.ignored_columns(&ignored_columns);
    }
    // rejects wait in a spool until the duplicates are known (merged in line order)
    let mut rej = match &opts.rejects {
        Some(p) => Some(RejectSpool::create(
            super::sink::with_ext(&opts.out, ".rejects.tmp"),
            RejectWriter::create(p, reader.source())?,
            &reader.problem_order(),
        )?),
        None => None,
    };
    let result = pipe_chunks(
        pool,
        model,
        &mut reader,
        ahead,
        progress,
        push,
        &mut rej,
        opts,
    );
    let late = match result {
        Ok(late) => late,
        Err(e) => {
            if let Some(s) = rej {
                s.discard();
            }
            return Err(e);
        }
    };
    // Rows accepted in their chunk that turned out to be duplicates: out of the output.
    let dups: Vec<u64> = late.iter().filter_map(|d| d.ordinal).collect();
    if let Some(s) = rej {
        s.finish(&late)?;
    }
    Ok(Piped {
        dups,
        accepted: reader.accepted(),
        rejected: reader.rejected(),
        ignored_columns,
    })
}

/// The chunk loop of [`pipe`]; returns the late duplicates.
#[allow(clippy::too_many_arguments)]
fn pipe_chunks(
    pool: &rayon::ThreadPool,
    model: &DeclarationModel,
    reader: &mut Reader,
    mut ahead: VecDeque<Result<ReadChunk, DataError>>,
    progress: &dyn Progress,
    push: &mut Push<'_>,
    rej: &mut Option<RejectSpool>,
    opts: &BulkOptions,
) -> Result<Vec<cr_data::LateDuplicate>, BulkError> {
    let data = |source: DataError| BulkError::Read {
        path: opts.data.clone(),
        source,
    };
    pool.install(|| -> Result<Vec<cr_data::LateDuplicate>, BulkError> {
        // Duplicates are settled as soon as the reader is exhausted, while the last chunk is
        // scored.
        let mut late = None;
        let read_next = |reader: &mut Reader, late: &mut Option<Result<_, DataError>>| {
            let next = reader.next();
            if next.is_none() && late.is_none() {
                *late = Some(reader.finish_duplicates());
            }
            next
        };
        let mut next = match ahead.pop_front() {
            Some(c) => Some(c),
            None => read_next(reader, &mut late),
        };
        while let Some(chunk) = next {
            let chunk = chunk.map_err(data)?;
            // read-ahead chunks first; the reader's thread meanwhile helps scoring
            let queued = ahead.pop_front();
            let has_queued = queued.is_some();
            let (following, done) = rayon::join(
                || {
                    if has_queued {
                        queued
                    } else {
                        read_next(reader, &mut late)
                    }
                },
                || -> Result<(), BulkError> {
                    if let Some(r) = rej.as_mut() {
                        r.push(&chunk.rejects)?;
                    }
                    let scores = model.score_batch(&chunk.batch)?;
                    push(&chunk.batch, &scores)
                },
            );
            done?;
            progress.rows(chunk.batch.len() as u64);
            reader.recycle(chunk.batch);
            next = following;
        }
        match late {
            Some(l) => l.map_err(data),
            None => reader.finish_duplicates().map_err(data),
        }
    })
}
