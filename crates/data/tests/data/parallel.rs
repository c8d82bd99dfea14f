//! The parallel CSV reader (same output for any thread count and chunk size, exact line
//! numbers) and the deferred duplicate-id check (same verdicts as the immediate one).

use super::*;
use cr_data::{DuplicateCheck, ReadChunk, Reject};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Every chunk of `p`, read inside a rayon pool of `threads`.
fn chunks(p: &Path, opts: &ReadOptions, threads: usize) -> Vec<ReadChunk> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        open(p, &mini(), opts)
            .unwrap()
            .map(|c| c.unwrap())
            .collect()
    })
}

/// Equality that treats NaN (missing numerics) as equal to itself.
fn dbg<T: std::fmt::Debug>(x: &T) -> String {
    format!("{x:?}")
}

fn concat(chunks: &[ReadChunk]) -> (Batch, Vec<Reject>) {
    let mut b = Batch::empty(&mini(), "");
    let mut r = Vec::new();
    for c in chunks {
        b.extend(c.batch.clone());
        r.extend(c.rejects.clone());
    }
    (b, r)
}

/// A file of `n` rows whose shape is known row by row: (text, expected line of the row's
/// first byte, accepted?). Every 7th row has a quoted newline in `office`, every 11th is
/// bad (negative mass), every 13th is followed by a blank line; `eol` ends every line.
fn synthetic(n: usize, eol: &str) -> (String, Vec<(u64, bool, String)>) {
    let mut text = HEADER.trim_end().to_string() + eol;
    let mut line = 2u64;
    let mut expect = Vec::new();
    for i in 0..n {
        let office = if i % 7 == 0 {
            format!("\"O{eol}x,y\"")
        } else {
            format!("O{}", i % 5)
        };
        let mass = if i % 11 == 0 { "-1" } else { "2.5" };
        let id = format!("R{i}");
        text.push_str(&format!(
            "{id},2020-01-0{},010101,{office},I{i},1,{mass},,0{eol}",
            1 + i % 9
        ));
        expect.push((line, i % 11 != 0, id));
        line += 1 + u64::from(i % 7 == 0);
        if i % 13 == 0 {
            text.push_str(eol);
            line += 1;
        }
    }
    (text, expect)
}

#[test]
fn same_chunks_for_any_thread_count_with_exact_lines() {
    let d = tempfile::tempdir().unwrap();
    for eol in ["\n", "\r\n"] {
        let (text, expect) = synthetic(5_000, eol);
        let p = file(&d, "p.csv", text.as_bytes());
        let one = chunks(&p, &skip(), 1);
        let two = chunks(&p, &skip(), 2);
        assert_eq!(dbg(&one), dbg(&two), "{eol:?}");
        // Other chunk sizes give the same rows.
        let small = chunks(
            &p,
            &ReadOptions {
                batch_rows: 333,
                ..skip()
            },
            2,
        );
        assert!(small.iter().all(|c| c.batch.len() + c.rejects.len() <= 333));
        assert_eq!(dbg(&concat(&small)), dbg(&concat(&one)));
        let (b, r) = concat(&one);
        let want_ok: Vec<u64> = expect.iter().filter(|e| e.1).map(|e| e.0).collect();
        let want_bad: Vec<u64> = expect.iter().filter(|e| !e.1).map(|e| e.0).collect();
        assert_eq!(b.lines, want_ok, "{eol:?}");
        assert_eq!(
            r.iter().map(|x| x.line).collect::<Vec<_>>(),
            want_bad,
            "{eol:?}"
        );
        assert_eq!(
            b.ids,
            expect
                .iter()
                .filter(|e| e.1)
                .map(|e| e.2.clone())
                .collect::<Vec<_>>()
        );
        let r7 = b.ids.iter().position(|id| id == "R7").unwrap();
        assert_eq!(
            b.categorical[0][r7],
            format!("O{eol}x,y"),
            "quoted newline kept, line ending as written"
        );
        assert!(r
            .iter()
            .all(|x| x.reason == "below minimum 0" && x.raw.len() == 9));
        b.check_lengths().unwrap();
    }
}

#[test]
fn fail_mode_stops_at_the_first_bad_row_whatever_the_threads() {
    let d = tempfile::tempdir().unwrap();
    let (mut text, _) = synthetic(3_000, "\n");
    // Only row 2,500 is bad: make every other mass valid.
    text = text.replace(",-1,", ",1,");
    let row = "R2500,2020-01-08,010101,O0,I2500,1,2.5";
    assert!(text.contains(row));
    text = text.replace(row, "R2500,2020-01-08,010101,O0,I2500,1,x");
    let p = file(&d, "f.csv", text.as_bytes());
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let err = pool
            .install(|| read_all(&p, &mini(), &ReadOptions::default()))
            .unwrap_err();
        assert!(
            err.message
                .contains("column \"mass\": value \"x\" rejected: not a number"),
            "{err}"
        );
        // 2,500 rows before it; +1 per quoted newline (357 of them) and per blank line (193).
        let line = 2
            + 2_500
            + (0..2_500).filter(|i| i % 7 == 0).count()
            + (0..2_500).filter(|i| i % 13 == 0).count();
        assert!(err.message.contains(&format!(": line {line},")), "{err}");
    }
}

/// Rows with duplicate ids spread over the file (some first seen on a rejected row, one
/// duplicate that is bad anyway). Returns the text and the expected (line, first line) of
/// every duplicate that is otherwise good.
fn with_duplicates(eol: &str) -> (String, Vec<(u64, u64)>) {
    let mut text = HEADER.trim_end().to_string() + eol;
    let mut expect = Vec::new();
    let mut first: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for i in 0..400u64 {
        let line = i + 2;
        // ids repeat: every 5th row reuses the id of row i / 3
        let id = if i % 5 == 4 {
            format!("K{}", i / 3)
        } else {
            format!("K{i}")
        };
        let bad = i % 17 == 3; // bad rows still count as "first seen"
        let mass = if bad { "-1" } else { "1" };
        text.push_str(&format!("{id},2020-01-01,010101,O,I,1,{mass},,0{eol}"));
        match first.get(&id) {
            Some(&f) if !bad => expect.push((line, f)),
            Some(_) => {}
            None => {
                first.insert(id, line);
            }
        }
    }
    (text, expect)
}

#[test]
fn deferred_duplicates_match_the_immediate_check() {
    let d = tempfile::tempdir().unwrap();
    let spill = tempfile::tempdir().unwrap();
    let (text, expect) = with_duplicates("\r\n");
    assert!(expect.len() > 20, "the file has duplicates");
    let csv = file(&d, "dup.csv", text.as_bytes());
    let (imm_batch, imm_rejects) = read_all(&csv, &mini(), &skip()).unwrap();
    let imm_dups: Vec<&Reject> = imm_rejects
        .iter()
        .filter(|r| r.problems[0].category == "duplicate id")
        .collect();
    // Bad rows that are also duplicates carry both problems in the immediate check.
    assert!(imm_rejects
        .iter()
        .any(|r| r.problems.len() == 2 && r.problems[0].category == "duplicate id"));
    // A Parquet file with the accepted rows of a deferred read, duplicates included.
    let parquet = d.path().join("dup.parquet");
    let with_dups = concat(&chunks(
        &csv,
        &ReadOptions {
            duplicates: DuplicateCheck::deferred(),
            ..skip()
        },
        2,
    ))
    .0;
    write_batch(&parquet, &mini(), &with_dups).unwrap();
    for run_entries in [1, 3, 64, 1 << 20] {
        for batch_rows in [7, 65_536] {
            let opts = ReadOptions {
                batch_rows,
                duplicates: DuplicateCheck::Deferred {
                    run_entries,
                    temp_dir: Some(spill.path().to_path_buf()),
                },
                ..skip()
            };
            let mut reader = open(&csv, &mini(), &opts).unwrap();
            let mut batch = Batch::empty(&mini(), "");
            let mut rejects = Vec::new();
            for c in &mut reader {
                let c = c.unwrap();
                batch.extend(c.batch);
                rejects.extend(c.rejects);
            }
            let accepted_before = reader.accepted();
            let late = reader.finish_duplicates().unwrap();
            let good: Vec<_> = late.iter().filter(|l| l.ordinal.is_some()).collect();
            // Exactly the expected duplicates, with the line where the id first appeared.
            assert_eq!(
                good.iter()
                    .map(|l| (l.reject.line, l.first_line))
                    .collect::<Vec<_>>(),
                expect,
                "run {run_entries}"
            );
            // Same rejects (line, reason, raw cells) as the immediate check.
            let imm_good: Vec<&&Reject> =
                imm_dups.iter().filter(|r| r.problems.len() == 1).collect();
            assert_eq!(good.len(), imm_good.len());
            for (l, r) in good.iter().zip(&imm_good) {
                assert_eq!(&l.reject, **r);
                assert_eq!(
                    batch.ids[l.ordinal.unwrap() as usize],
                    r.value.clone().unwrap()
                );
                assert_eq!(batch.lines[l.ordinal.unwrap() as usize], r.line);
            }
            assert_eq!(reader.accepted(), accepted_before - good.len() as u64);
            assert_eq!(reader.accepted() as usize, imm_batch.len());
            // Without the late duplicates, the rows are those of the immediate check.
            let (b, _) = read_all(&csv, &mini(), &opts).unwrap();
            assert_eq!(dbg(&b), dbg(&imm_batch));
            assert_eq!(
                std::fs::read_dir(spill.path()).unwrap().count(),
                0,
                "run files removed"
            );
        }
    }
    // Parquet: record numbers instead of lines.
    let opts = ReadOptions {
        batch_rows: 5,
        duplicates: DuplicateCheck::Deferred {
            run_entries: 2,
            temp_dir: None,
        },
        ..skip()
    };
    let mut reader = open(&parquet, &mini(), &opts).unwrap();
    for c in &mut reader {
        c.unwrap();
    }
    let late = reader.finish_duplicates().unwrap();
    assert!(late.len() > 20);
    let (imm_pq, imm_pq_rejects) = read_all(&parquet, &mini(), &skip()).unwrap();
    assert_eq!(
        late.iter().map(|l| &l.reject).collect::<Vec<_>>(),
        imm_pq_rejects.iter().collect::<Vec<_>>()
    );
    assert_eq!(imm_pq.len() + late.len(), reader.rows_read() as usize);
}

#[test]
fn deferred_duplicate_with_fail_is_an_error_naming_both_lines() {
    let d = tempfile::tempdir().unwrap();
    let text = format!("{HEADER}A,2020-01-01,010101,O,I,1,1,,0\nB,2020-01-01,010101,O,I,1,1,,0\n\nA,2020-01-01,010101,O,I,1,1,,0\n");
    let p = file(&d, "f.csv", text.as_bytes());
    let opts = ReadOptions {
        duplicates: DuplicateCheck::deferred(),
        ..ReadOptions::default()
    };
    let mut reader = open(&p, &mini(), &opts).unwrap();
    assert_eq!(
        reader.next().unwrap().unwrap().batch.len(),
        3,
        "the chunk itself passes"
    );
    let err = reader.finish_duplicates().unwrap_err();
    assert_eq!(err.kind, DataErrorKind::Value);
    assert_eq!(
        err.message,
        format!(
            "{}: line 5, column \"id\": value \"A\" rejected: duplicate id (first seen on line 2)",
            p.display()
        )
    );
    // The immediate check says the same at once.
    assert_eq!(
        read_all(&p, &mini(), &ReadOptions::default()).unwrap_err(),
        err
    );
}

#[test]
fn recycled_batches_give_the_same_chunks() {
    let d = tempfile::tempdir().unwrap();
    let (text, _) = synthetic(2_000, "\n");
    let p = file(&d, "r.csv", text.as_bytes());
    let opts = ReadOptions {
        batch_rows: 300,
        ..skip()
    };
    let fresh = chunks(&p, &opts, 2);
    let mut reader = open(&p, &mini(), &opts).unwrap();
    let mut got = Vec::new();
    while let Some(c) = reader.next() {
        let c = c.unwrap();
        got.push(c.clone());
        reader.recycle(c.batch);
    }
    assert_eq!(dbg(&got), dbg(&fresh));
}

#[test]
fn removing_rows_from_a_written_table() {
    use cr_data::{remove_table_rows, ColType, Column, ColumnRef};
    let d = tempfile::tempdir().unwrap();
    let ids: Vec<String> = (0..10)
        .map(|i| {
            if i == 3 {
                "a,\"b\"\nc".to_string()
            } else {
                format!("id{i}")
            }
        })
        .collect();
    let scores: Vec<f64> = (0..10)
        .map(|i| if i == 5 { f64::NAN } else { f64::from(i) / 8.0 })
        .collect();
    for name in ["t.csv", "t.parquet"] {
        let p = d.path().join(name);
        let mut w =
            TableWriter::create(&p, &[("id", ColType::Str), ("score", ColType::F64)]).unwrap();
        w.write_columns(&[ColumnRef::Str(&ids[..4]), ColumnRef::F64(&scores[..4])])
            .unwrap();
        w.write_rows(&[
            Column::Str(ids[4..].to_vec()),
            Column::F64(scores[4..].to_vec()),
        ])
        .unwrap();
        w.finish().unwrap();
        assert_eq!(remove_table_rows(&p, &[0, 4, 9, 12]).unwrap(), 7);
        let kept: Vec<usize> = vec![1, 2, 3, 5, 6, 7, 8];
        if name.ends_with(".csv") {
            // Read back with the csv crate: quoting survives the rewrite.
            let mut rdr = csv::Reader::from_path(&p).unwrap();
            assert_eq!(rdr.headers().unwrap(), vec!["id", "score"]);
            let rows: Vec<(String, String)> = rdr
                .records()
                .map(|r| r.unwrap())
                .map(|r| (r[0].to_string(), r[1].to_string()))
                .collect();
            let want: Vec<(String, String)> = kept
                .iter()
                .map(|&i| {
                    (
                        ids[i].clone(),
                        if i == 5 {
                            String::new()
                        } else {
                            format!("{}", scores[i])
                        },
                    )
                })
                .collect();
            assert_eq!(rows, want);
        } else {
            let f = std::fs::File::open(&p).unwrap();
            let r = ParquetRecordBatchReaderBuilder::try_new(f)
                .unwrap()
                .build()
                .unwrap();
            let mut got = Vec::new();
            for rb in r {
                let rb = rb.unwrap();
                let a = rb
                    .column(0)
                    .as_any()
                    .downcast_ref::<arrow::array::StringArray>()
                    .unwrap();
                got.extend((0..rb.num_rows()).map(|i| a.value(i).to_string()));
            }
            assert_eq!(
                got,
                kept.iter().map(|&i| ids[i].clone()).collect::<Vec<_>>()
            );
        }
    }
}

/// With the deferred check, rejects spooled and merged with the late duplicates
/// ([`cr_data::RejectSpool`]) give the reject file of the immediate check, byte for byte:
/// line order, a duplicate on a bad row listed with that row's problems, whatever the chunk
/// size, run size and thread count.
#[test]
fn spooled_deferred_rejects_are_the_immediate_reject_file() {
    let d = tempfile::tempdir().unwrap();
    let (text, _) = with_duplicates("\n");
    let csv = file(&d, "dup.csv", text.as_bytes());
    let (_, imm_rejects) = read_all(&csv, &mini(), &skip()).unwrap();
    let want = d.path().join("imm.csv");
    cr_data::write_rejects(&want, "dup.csv", &imm_rejects).unwrap();
    let want = std::fs::read_to_string(&want).unwrap();
    assert!(want.lines().any(|l| l.contains("duplicate id")));
    for (batch_rows, run_entries, threads) in [(7, 3, 1), (64, 1 << 20, 2), (65_536, 1, 2)] {
        let opts = ReadOptions {
            batch_rows,
            duplicates: DuplicateCheck::Deferred {
                run_entries,
                temp_dir: None,
            },
            ..skip()
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let got = d.path().join(format!("got_{batch_rows}.csv"));
        let spool_path = d.path().join("spool.tmp");
        pool.install(|| {
            let mut reader = open(&csv, &mini(), &opts).unwrap();
            let w = cr_data::RejectWriter::create(&got, "dup.csv").unwrap();
            let mut spool =
                cr_data::RejectSpool::create(spool_path.clone(), w, &reader.problem_order())
                    .unwrap();
            for c in &mut reader {
                spool.push(&c.unwrap().rejects).unwrap();
            }
            let late = reader.finish_duplicates().unwrap();
            spool.finish(&late).unwrap();
        });
        assert!(!spool_path.exists(), "spool removed");
        assert_eq!(
            std::fs::read_to_string(&got).unwrap(),
            want,
            "batch_rows {batch_rows}"
        );
    }
}

/// `validate_file` with the deferred check writes the immediate check's reject file and
/// counts (accepted, rejected, per reason and column: a duplicate on a bad row counted as
/// one more problem of it), and leaves no spool behind.
#[test]
fn deferred_validate_file_reports_as_the_immediate_check() {
    let d = tempfile::tempdir().unwrap();
    let (text, _) = with_duplicates("\n");
    let csv = file(&d, "dup.csv", text.as_bytes());
    let imm_out = d.path().join("imm.csv");
    let imm = cr_data::validate_file(&csv, &mini(), &skip(), Some(&imm_out)).unwrap();
    let def_out = d.path().join("def.csv");
    let opts = ReadOptions {
        batch_rows: 7,
        duplicates: DuplicateCheck::Deferred {
            run_entries: 5,
            temp_dir: None,
        },
        ..skip()
    };
    let def = cr_data::validate_file(&csv, &mini(), &opts, Some(&def_out)).unwrap();
    assert_eq!(
        std::fs::read_to_string(&def_out).unwrap(),
        std::fs::read_to_string(&imm_out).unwrap()
    );
    assert!(imm.by_reason["duplicate id"] > 20);
    assert_eq!(
        (def.accepted, def.rejected, &def.by_reason, &def.by_column),
        (imm.accepted, imm.rejected, &imm.by_reason, &imm.by_column)
    );
    let left: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
