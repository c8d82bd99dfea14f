//! Our raw-field models (from `customs-risk train`): the file is read and validated by
//! cr-data against the schema in the model, scored by [`DeclarationModel`], written by
//! [`Sink`]. Duplicate ids are checked with bounded memory (sorted runs on disk) and settled
//! after the last chunk.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use cr_data::{DataError, DuplicateCheck, ReadChunk, ReadOptions, Reader, RejectWriter};

use super::sink::Sink;
use super::{card_quantiles, BulkError, BulkOptions, BulkSummary, Progress};
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
    let ropts = ReadOptions {
        batch_rows: opts.batch_rows.max(1),
        delimiter: opts.delimiter,
        on_error: opts.on_error,
        require_label: false,
        duplicates: DuplicateCheck::deferred(),
    };
    let (model, start) = load_and_start(model_path, opts, pool, &proto, load, &ropts)?;
    drop(proto);
    score_chunks(opts, pool, &model, start, progress)
}

/// Chunks read while the model compiles (at most; memory holds them until scored).
const READ_AHEAD: usize = 3;

/// An open reader and the chunks already read from it, in order.
struct Started {
    reader: Reader,
    ahead: VecDeque<Result<ReadChunk, DataError>>,
}

/// Load the model and open the data. When the schema can be read from the pipeline metadata
/// on its own (a few microseconds: it comes first), reading starts on the pool while the
/// rest of the pipeline (its tables) and the core compile, up to [`READ_AHEAD`] chunks;
/// the chunks are the ones a plain read gives, so nothing in the output changes. A model
/// error wins over a data error, as in the sequential order.
fn load_and_start(
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
        .find(|p| p.key() == crate::PIPELINE_METADATA_KEY)?
        .value();
    let mut found = None;
    let _ = Peek(&mut found).deserialize(&mut serde_json::Deserializer::from_str(json));
    found.filter(|s: &cr_data::Schema| {
        (2..=12).contains(&s.hs_width) && s.hs_width.is_multiple_of(2) && s.date_min <= s.date_max
    })
}

/// Read, validate, score and write in a pipeline on `pool`. While chunk N is scored and
/// written, chunk N+1 is read and validated (`rayon::join`), so memory holds about three
/// chunks. Duplicate ids are settled after the last chunk: with [`cr_data::OnError::Fail`]
/// a duplicate is an error; with skip the duplicate rows leave the output and go to the
/// rejects (after the other rejects).
fn score_chunks(
    opts: &BulkOptions,
    pool: &rayon::ThreadPool,
    model: &DeclarationModel,
    start: Started,
    progress: &dyn Progress,
) -> Result<BulkSummary, BulkError> {
    let quantiles = card_quantiles(model.metadata());
    let Started {
        mut reader,
        mut ahead,
    } = start;
    let mut rej = match &opts.rejects {
        Some(p) => Some(RejectWriter::create(p)?),
        None => None,
    };
    let mut sink = Sink::create(&opts.out, opts.budget)?;
    let data = |source: DataError| BulkError::Read {
        path: opts.data.clone(),
        source,
    };
    let piped = pool.install(|| -> Result<Vec<cr_data::LateDuplicate>, BulkError> {
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
            None => read_next(&mut reader, &mut late),
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
                        read_next(&mut reader, &mut late)
                    }
                },
                || -> Result<(), BulkError> {
                    if let Some(r) = &mut rej {
                        r.write(&chunk.rejects)?;
                    }
                    let scores = model.score_batch(&chunk.batch)?;
                    sink.push(&chunk.batch.ids, &scores, &quantiles)?;
                    Ok(())
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
    });
    let late = match piped {
        Ok(l) => l,
        Err(e) => {
            sink.discard(&opts.out);
            return Err(e);
        }
    };
    // Rows accepted in their chunk that turned out to be duplicates: out of the output.
    let dups: Vec<u64> = late.iter().filter_map(|d| d.ordinal).collect();
    if let Some(r) = &mut rej {
        let late_rejects: Vec<cr_data::Reject> = late
            .iter()
            .filter(|d| d.ordinal.is_some())
            .map(|d| d.reject.clone())
            .collect();
        r.write(&late_rejects)?;
    }
    if let Some(r) = rej {
        r.finish()?;
    }
    let selected = sink.finish(&opts.out, pool, &quantiles, &dups)?;
    Ok(BulkSummary {
        rows: reader.accepted(),
        rejected: reader.rejected(),
        engine: model.engine_used(),
        native_refused: model.native_refused().map(str::to_string),
        mapping: None,
        selected,
        seconds: 0.0,
    })
}
