//! Integration tests of cr-data: readers, validation, writers, reports, shared KCS data.

use std::path::{Path, PathBuf};

use cr_data::{
    batch_from_json, open, read_all, validate_file, write_batch, write_rejects, Batch, ColType,
    Column, DataErrorKind, OnError, ReadOptions, Schema, Selection, TableWriter,
};

const MINI: &str = r#"
name = "mini"
id = { column = "id" }
date = { column = "date", min = "2020-01-01", max = "2021-12-31" }
hs_code = { column = "hs", width = 6 }
categorical = [ { column = "office", kind = "office" }, { column = "importer", kind = "importer", allow_missing = false } ]
numeric = [ { column = "value", kind = "value" }, { column = "mass", kind = "mass" }, { column = "rate", allow_missing = true } ]
label = { column = "fraud" }
revenue = { column = "revenue" }
ignore = ["note"]
[inspection]
inspected = "inspected"
selection = "selection"
propensity = "propensity"
"#;

const HEADER: &str = "id,date,hs,office,importer,value,mass,rate,fraud\n";

fn mini() -> Schema {
    Schema::from_toml(MINI).expect("test schema")
}

fn skip() -> ReadOptions {
    ReadOptions {
        on_error: OnError::Skip,
        ..ReadOptions::default()
    }
}

fn file(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).expect("write test file");
    p
}

fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[path = "data/parallel.rs"]
mod parallel;

#[path = "data/rules.rs"]
mod rules;

mod csv_reading {
    use super::*;

    #[test]
    fn empty_file_is_a_clear_error() {
        let d = tempfile::tempdir().unwrap();
        for bytes in [&b""[..], b"\xEF\xBB\xBF"] {
            let p = file(&d, "e.csv", bytes);
            let e = open(&p, &mini(), &ReadOptions::default())
                .err()
                .expect("error");
            assert_eq!(e.kind, DataErrorKind::Empty);
            assert!(e.message.contains("file is empty: no header"), "{e}");
            assert!(e.message.contains("e.csv"), "{e}");
        }
    }

    #[test]
    fn a_missing_file_keeps_the_io_error_as_its_source() {
        let d = tempfile::tempdir().unwrap();
        for name in ["missing.csv", "missing.parquet"] {
            let e = open(&d.path().join(name), &mini(), &ReadOptions::default())
                .err()
                .expect("error");
            assert_eq!(e.kind, DataErrorKind::Io);
            assert!(e.message.contains(name), "{e}");
            let io = std::error::Error::source(&e)
                .and_then(|c| c.downcast_ref::<std::io::Error>())
                .unwrap_or_else(|| panic!("no io::Error source: {e:?}"));
            assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
            // the one-line text still says why
            assert!(e.to_string().ends_with(&io.to_string()), "{e}");
        }
    }

    #[test]
    fn header_only_gives_zero_rows() {
        let d = tempfile::tempdir().unwrap();
        let p = file(&d, "h.csv", HEADER.as_bytes());
        let (b, r) = read_all(&p, &mini(), &ReadOptions::default()).unwrap();
        assert!(b.is_empty() && r.is_empty());
        assert_eq!(b.categorical.len(), 2);
        let mut reader = open(&p, &mini(), &ReadOptions::default()).unwrap();
        assert!(reader.next().is_none());
        assert_eq!(reader.rows_read(), 0);
    }

    #[test]
    fn bom_crlf_and_values() {
        let d = tempfile::tempdir().unwrap();
        let text = "\u{feff}id,date,hs,office,importer,value,mass,rate,fraud\r\n\
                    A1, 2020-01-05 ,71080,  30 ,IMP,100.5,2,,1\r\n\
                    A2,2021-12-31,071080.0,,IMP2,0,0,-1.5,\r\n";
        let p = file(&d, "b.csv", text.as_bytes());
        let (b, r) = read_all(&p, &mini(), &ReadOptions::default()).unwrap();
        assert!(r.is_empty());
        assert_eq!(b.ids, vec!["A1", "A2"]);
        assert_eq!(b.lines, vec![2, 3]);
        assert_eq!(b.dates, vec![18_266, 18_992]); // days since 1970-01-01
        assert_eq!(b.hs, vec![71080, 71080]);
        assert_eq!(b.hs_string(0, 6), "071080");
        assert_eq!(b.categorical[0], vec!["30", ""]);
        assert_eq!(b.categorical[1], vec!["IMP", "IMP2"]);
        assert_eq!(b.numeric[0], vec![100.5, 0.0]);
        assert!(b.numeric[2][0].is_nan());
        assert_eq!(b.numeric[2][1], -1.5);
        // The last field of a CRLF line carries no '\r'.
        assert_eq!(b.label, vec![Some(true), None]);
        assert_eq!(b.inspected, vec![true, false]);
        assert_eq!(b.source, p.display().to_string());
        b.check_lengths().unwrap();
    }

    #[test]
    fn quoting_with_embedded_delimiter_and_newline_keeps_line_numbers() {
        let d = tempfile::tempdir().unwrap();
        let text = format!(
            "{HEADER}A1,2020-01-01,010101,\"30,40\",\"IMP\nWITH NEWLINE\",1,1,,0\n\
             A2,2020-01-01,010101,\"say \"\"hi\"\"\",IMP,1,-1,,0\n"
        );
        let p = file(&d, "q.csv", text.as_bytes());
        let mut reader = open(&p, &mini(), &skip()).unwrap();
        let chunk = reader.next().unwrap().unwrap();
        assert_eq!(chunk.batch.categorical[0], vec!["30,40"]);
        assert_eq!(chunk.batch.categorical[1], vec!["IMP\nWITH NEWLINE"]);
        // The second record starts on physical line 4 (the first spans lines 2-3).
        assert_eq!(chunk.rejects.len(), 1);
        assert_eq!(chunk.rejects[0].line, 4);
        assert_eq!(chunk.rejects[0].raw[3], "say \"hi\"");
    }

    #[test]
    fn line_numbers_with_crlf_blank_lines_and_quoted_newlines() {
        let d = tempfile::tempdir().unwrap();
        let rows = [
            "A1,2020-01-01,010101,O,I,1,1,,0",
            "A2,2020-01-01,010101,O,I,-1,1,,0",
            "A3,2020-01-01,010101,\"x\ny\",I,1,-1,,0",
            "A4,2020-01-01,010101,O,I,x,1,,0",
        ];
        for (eol, bom) in [
            ("\n", ""),
            ("\r\n", ""),
            ("\r\n", "\u{feff}"),
            ("\n", "\u{feff}"),
        ] {
            // header line 1; A1 line 2; A2 line 3; blank lines 4-5; A3 lines 6-7; A4 line 8.
            let text = format!(
                "{bom}{}{eol}{}{eol}{}{eol}{eol}{eol}{}{eol}{}{eol}",
                HEADER.trim_end(),
                rows[0],
                rows[1],
                rows[2].replace('\n', eol),
                rows[3]
            );
            let p = file(&d, "l.csv", text.as_bytes());
            let (b, r) = read_all(&p, &mini(), &skip()).unwrap();
            assert_eq!(b.lines, vec![2], "{eol:?} {bom:?}");
            let lines: Vec<u64> = r.iter().map(|x| x.line).collect();
            assert_eq!(lines, vec![3, 6, 8], "{eol:?} {bom:?}");
        }
    }

    #[test]
    fn tsv_and_custom_delimiter() {
        let d = tempfile::tempdir().unwrap();
        let tsv = HEADER.replace(',', "\t") + "A1\t2020-01-01\t010101\tO\tI\t1\t1\t\t0\n";
        let p = file(&d, "t.tsv", tsv.as_bytes());
        assert_eq!(
            read_all(&p, &mini(), &ReadOptions::default())
                .unwrap()
                .0
                .len(),
            1
        );
        let semi = HEADER.replace(',', ";") + "A1;2020-01-01;010101;O;I;1,5;1;;0\n";
        let p = file(&d, "s.csv", semi.as_bytes());
        let opts = ReadOptions {
            delimiter: b';',
            ..skip()
        };
        let (b, r) = read_all(&p, &mini(), &opts).unwrap();
        assert_eq!((b.len(), r.len()), (0, 1), "1,5 is not a number");
        assert_eq!(r[0].column.as_deref(), Some("value"));
    }

    #[test]
    fn missing_and_unknown_columns_in_one_error() {
        let d = tempfile::tempdir().unwrap();
        let p = file(
            &d,
            "c.csv",
            b"id,hs,extra1,office,importer,value,rate,note,extra2\n",
        );
        let e = open(&p, &mini(), &ReadOptions::default())
            .err()
            .expect("error");
        assert_eq!(e.kind, DataErrorKind::Columns);
        assert!(
            e.message.contains("missing columns: \"date\", \"mass\""),
            "{e}"
        );
        assert!(
            e.message
                .contains("unknown columns: \"extra1\", \"extra2\""),
            "{e}"
        );
        assert!(
            !e.message.contains("note"),
            "ignored columns are neither missing nor unknown: {e}"
        );
        assert!(
            !e.message.contains("fraud"),
            "the label is optional by default: {e}"
        );
        // With require_label, the label is listed too.
        let p = file(
            &d,
            "c2.csv",
            b"id,date,hs,office,importer,value,mass,rate\n",
        );
        let opts = ReadOptions {
            require_label: true,
            ..ReadOptions::default()
        };
        let e = open(&p, &mini(), &opts).err().expect("error");
        assert!(e.message.contains("missing columns: \"fraud\""), "{e}");
    }

    #[test]
    fn fail_mode_message_names_file_line_column_value_reason() {
        let d = tempfile::tempdir().unwrap();
        let mut text = HEADER.to_string();
        for i in 0..15 {
            text.push_str(&format!("A{i},2020-01-01,010101,O,I,1,1,,0\n"));
        }
        text.push_str("B,2020-01-01,010101,O,I,1,-3,,0\n");
        let p = file(&d, "x.csv", text.as_bytes());
        let err = read_all(&p, &mini(), &ReadOptions::default()).unwrap_err();
        assert_eq!(err.kind, DataErrorKind::Value);
        assert_eq!(
            err.message,
            format!(
                "{}: line 17, column \"mass\": value \"-3\" rejected: below minimum 0",
                p.display()
            )
        );
    }

    #[test]
    fn each_kind_of_bad_value_is_rejected_with_its_reason() {
        let d = tempfile::tempdir().unwrap();
        let cases: &[(&str, &str, &str)] = &[
            ("A,2020-01-01,010101,O,I,abc,1,,0", "value", "not a number"),
            ("A,2020-01-01,010101,O,I,1e400,1,,0", "value", "not finite"),
            ("A,2020-01-01,010101,O,I,NaN,1,,0", "value", "not finite"),
            ("A,2020-01-01,010101,O,I,1,inf,,0", "mass", "not finite"),
            (
                "A,2020-01-01,010101,O,I,1,1,-Infinity,0",
                "rate",
                "not finite",
            ),
            (
                "A,2020-01-01,010101,O,I,-0.01,1,,0",
                "value",
                "below minimum",
            ),
            ("A,2020-01-01,010101,O,I,1,-5,,0", "mass", "below minimum"),
            ("A,2020-01-01,010101,O,I,,1,,0", "value", "missing value"),
            (
                "A,2020-01-01,010101,O,I,1,1,1e39,0",
                "rate",
                "overflows f32",
            ),
            (
                "A,2019-12-31,010101,O,I,1,1,,0",
                "date",
                "date out of range",
            ),
            (
                "A,2022-01-01,010101,O,I,1,1,,0",
                "date",
                "date out of range",
            ),
            ("A,2020-02-30,010101,O,I,1,1,,0", "date", "bad date"),
            ("A,01/02/2020,010101,O,I,1,1,,0", "date", "bad date"),
            ("A,2020-01-01,1234567,O,I,1,1,,0", "hs", "bad HS code"),
            ("A,2020-01-01,71080.5,O,I,1,1,,0", "hs", "bad HS code"),
            ("A,2020-01-01,HS1234,O,I,1,1,,0", "hs", "bad HS code"),
            ("A,2020-01-01,010101,O,,1,1,,0", "importer", "missing value"),
            (" ,2020-01-01,010101,O,I,1,1,,0", "id", "missing value"),
            ("A,2020-01-01,010101,O,I,1,1,,2", "fraud", "bad label"),
        ];
        for (row, column, category) in cases {
            let p = file(&d, "v.csv", format!("{HEADER}{row}\n").as_bytes());
            let (b, r) = read_all(&p, &mini(), &skip()).unwrap();
            assert!(b.is_empty(), "{row}");
            assert_eq!(r.len(), 1, "{row}");
            assert_eq!(r[0].line, 2);
            assert_eq!(r[0].column.as_deref(), Some(*column), "{row}: {:?}", r[0]);
            assert_eq!(r[0].problems[0].category, *category, "{row}: {:?}", r[0]);
            assert_eq!(r[0].raw.len(), 9);
        }
    }

    #[test]
    fn inspection_columns() {
        let d = tempfile::tempdir().unwrap();
        let h = "id,date,hs,office,importer,value,mass,rate,fraud,revenue,inspected,selection,propensity\n";
        let rows = "A,2020-01-01,010101,O,I,1,1,,1,250.5,yes,Random,0.05\n\
                    B,2020-01-01,010101,O,I,1,1,,,,0,,\n\
                    C,2020-01-01,010101,O,I,1,1,,0,,TRUE,rule,1\n\
                    D,2020-01-01,010101,O,I,1,1,,1,,0,,\n\
                    E,2020-01-01,010101,O,I,1,1,,0,-1,1,lottery,0\n";
        let p = file(&d, "i.csv", format!("{h}{rows}").as_bytes());
        let (b, r) = read_all(&p, &mini(), &skip()).unwrap();
        assert_eq!(b.ids, vec!["A", "B", "C"]);
        assert_eq!(b.revenue, vec![Some(250.5), None, None]);
        assert_eq!(b.inspected, vec![true, false, true]);
        assert_eq!(
            b.selection,
            vec![Some(Selection::Random), None, Some(Selection::Rule)]
        );
        assert_eq!(b.propensity, vec![Some(0.05), None, Some(1.0)]);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].problems[0].category, "inconsistent inspection");
        let cats: Vec<&str> = r[1].problems.iter().map(|p| p.category.as_str()).collect();
        assert_eq!(
            cats,
            vec!["below minimum", "bad selection", "bad propensity"]
        );
    }

    /// A file corrupted in five (and more) ways, read with Skip.
    #[test]
    fn corrupted_file_skip_counts_and_locations() {
        let d = tempfile::tempdir().unwrap();
        let mut bytes = HEADER.as_bytes().to_vec();
        let rows: [&[u8]; 9] = [
            b"A1,2020-01-01,010101,O,I,1,1,,0\n",         // line 2 good
            b"A2,2020-01-01,010101,O,I,1,-1,,0\n",        // line 3 negative mass
            b"A3,2020-13-01,010101,O,I,1,1,,0\n",         // line 4 bad date
            b"A4,2020-01-01,010101,O,I,1,1\n",            // line 5 wrong field count
            b"A5,2020-01-01,010101,O,I,1,1,,1\n",         // line 6 good
            b"A1,2020-01-02,010101,O,I,1,1,,0\n",         // line 7 duplicate of line 2
            b"A7,2020-01-01,010101,O,I\xff\xfe,1,1,,0\n", // line 8 invalid UTF-8
            b"A8,2020-01-01,010101,O,I,abc,1,nan,0\n",    // line 9 two bad cells
            b"A9,2020-01-01,010101,O,I,1,1,,0\n",         // line 10 good
        ];
        for r in rows {
            bytes.extend_from_slice(r);
        }
        let p = file(&d, "bad.csv", &bytes);
        for batch_rows in [2, 4, 65_536] {
            let opts = ReadOptions {
                batch_rows,
                ..skip()
            };
            let mut reader = open(&p, &mini(), &opts).unwrap();
            let mut accepted = Vec::new();
            let mut rejects = Vec::new();
            for chunk in &mut reader {
                let chunk = chunk.unwrap();
                assert!(chunk.batch.len() + chunk.rejects.len() <= batch_rows);
                accepted.extend(chunk.batch.lines.clone());
                rejects.extend(chunk.rejects);
            }
            assert_eq!(reader.rows_read(), 9);
            assert_eq!(accepted.len() + rejects.len(), reader.rows_read() as usize);
            assert_eq!((reader.accepted(), reader.rejected()), (3, 6));
            assert_eq!(accepted, vec![2, 6, 10]);
            let got: Vec<(u64, Option<&str>)> = rejects
                .iter()
                .map(|r| (r.line, r.column.as_deref()))
                .collect();
            assert_eq!(
                got,
                vec![
                    (3, Some("mass")),
                    (4, Some("date")),
                    (5, None),
                    (7, Some("id")),
                    (8, Some("importer")),
                    (9, Some("value"))
                ]
            );
            assert!(
                rejects[3].reason.contains("first seen on line 2"),
                "{}",
                rejects[3].reason
            );
            assert_eq!(rejects[4].problems[0].category, "invalid UTF-8");
            assert_eq!(rejects[4].raw[4], "I\u{fffd}\u{fffd}");
            assert_eq!(rejects[5].problems.len(), 2);
            assert_eq!(rejects[5].problems[1].column.as_deref(), Some("rate"));
            assert!(
                rejects[5].reason.contains("\"value\"") && rejects[5].reason.contains("\"rate\"")
            );
            assert_eq!(rejects[2].reason, "expected 9 fields, found 7");
        }
    }

    #[test]
    fn validate_file_report_and_reject_file() {
        let d = tempfile::tempdir().unwrap();
        let text = format!(
            "{HEADER}A1,2020-03-01,010101,O,I,1,1,,1\nA2,2020-01-01,010101,O,I,1,-1,,0\n\
             A3,2020-02-01,010101,O,I,1,1,,\nA4,2020-01-15,010101,O,I,x,-2,,0\nA5,2020-04-01,010101,O,I,1,1,,0\n"
        );
        let p = file(&d, "r.csv", text.as_bytes());
        let out = d.path().join("rejects.csv");
        let rep = validate_file(&p, &mini(), &skip(), Some(&out)).unwrap();
        assert_eq!((rep.rows_read, rep.accepted, rep.rejected), (5, 3, 2));
        assert_eq!((rep.labelled, rep.positives), (2, 1));
        assert_eq!(rep.date_min.as_deref(), Some("2020-02-01"));
        assert_eq!(rep.date_max.as_deref(), Some("2020-04-01"));
        assert_eq!(rep.by_reason.get("below minimum"), Some(&2));
        assert_eq!(rep.by_reason.get("not a number"), Some(&1));
        assert_eq!(rep.by_column.get("mass"), Some(&2));
        assert_eq!(rep.by_column.get("value"), Some(&1));
        let json = serde_json::to_value(&rep).unwrap();
        assert_eq!(json["accepted"], 3);
        let written = std::fs::read_to_string(&out).unwrap();
        let lines: Vec<&str> = written.lines().collect();
        let src = p.display().to_string();
        assert_eq!(lines[0], "file,line,column,value,category,reason,raw");
        assert_eq!(
            lines[1],
            format!("{src},3,mass,-1,below minimum,below minimum 0,\"A2,2020-01-01,010101,O,I,1,-1,,0\"")
        );
        // row 5 has two bad cells: one reject line for each, same line and raw
        assert!(
            lines[2].starts_with(&format!("{src},5,value,x,not a number,")),
            "{}",
            lines[2]
        );
        assert!(
            lines[3].starts_with(&format!("{src},5,mass,-2,below minimum,")),
            "{}",
            lines[3]
        );
        assert_eq!(
            lines[2].rsplit_once(",\"").unwrap().1,
            lines[3].rsplit_once(",\"").unwrap().1
        );
        assert_eq!(lines.len(), 4);
    }
}

mod writing {
    use super::*;
    use arrow::array::{Array, BooleanArray, Float64Array, Int64Array, StringArray};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn sample(schema: &Schema) -> Batch {
        let d = tempfile::tempdir().unwrap();
        let h = "id,date,hs,office,importer,value,mass,rate,fraud,revenue,inspected,selection,propensity\n";
        let rows = "A,2020-01-01,71080,O1,I,0.1,1e-3,,1,250.5,1,random,0.05\n\
                    B,2021-06-30,010101,,\"I,2\",3.4e38,123456.79,-7.25,,,0,,\n\
                    C,2020-05-05,999999,O3,I3,0,0,0.3333333,0,,1,rule,0.3333333333333333\n";
        let p = file(&d, "s.csv", format!("{h}{rows}").as_bytes());
        read_all(&p, schema, &ReadOptions::default()).unwrap().0
    }

    fn same_rows(a: &Batch, b: &Batch) {
        let strip = |x: &Batch| Batch {
            source: String::new(),
            lines: Vec::new(),
            ..x.clone()
        };
        // NaN != NaN: compare numerics bitwise.
        let bits = |x: &Batch| {
            x.numeric
                .iter()
                .map(|c| c.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(a), bits(b));
        let (mut sa, mut sb) = (strip(a), strip(b));
        sa.numeric.clear();
        sb.numeric.clear();
        assert_eq!(sa, sb);
    }

    #[test]
    fn parquet_and_csv_round_trip() {
        let s = mini();
        let b = sample(&s);
        assert_eq!(b.len(), 3);
        let d = tempfile::tempdir().unwrap();
        for name in ["rt.parquet", "rt.csv", "rt.pq", "rt.tsv"] {
            let p = d.path().join(name);
            write_batch(&p, &s, &b).unwrap();
            let (back, rejects) = read_all(&p, &s, &ReadOptions::default()).unwrap();
            assert!(rejects.is_empty(), "{name}");
            same_rows(&b, &back);
        }
        let csv = std::fs::read_to_string(d.path().join("rt.csv")).unwrap();
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some("id,date,hs,office,importer,value,mass,rate,fraud,revenue,inspected,selection,propensity"));
        assert_eq!(
            lines.next(),
            Some("A,2020-01-01,071080,O1,I,0.1,0.001,,1,250.5,1,random,0.05")
        );
        assert_eq!(lines.next(), Some("B,2021-06-30,010101,,\"I,2\",340000000000000000000000000000000000000,123456.79,-7.25,,,0,,"));
    }

    #[test]
    fn parquet_round_trip_in_batches_and_empty() {
        let s = mini();
        let one = sample(&s);
        let idx: Vec<usize> = (0..70_000).map(|i| i % 3).collect();
        let mut big = one.take(&idx);
        big.ids = (0..70_000).map(|i| format!("ID{i}")).collect();
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("big.parquet");
        write_batch(&p, &s, &big).unwrap();
        let opts = ReadOptions {
            batch_rows: 30_000,
            ..ReadOptions::default()
        };
        let mut reader = open(&p, &s, &opts).unwrap();
        let sizes: Vec<usize> = (&mut reader).map(|c| c.unwrap().batch.len()).collect();
        assert_eq!(sizes, vec![30_000, 30_000, 10_000]);
        let (back, _) = read_all(&p, &s, &ReadOptions::default()).unwrap();
        // record 70,000 is line 70,001 (as in a CSV file with a header)
        assert_eq!(back.lines[69_999], 70_001);
        same_rows(&big, &back);
        let p = d.path().join("empty.parquet");
        write_batch(&p, &s, &Batch::empty(&s, "x")).unwrap();
        assert!(read_all(&p, &s, &ReadOptions::default())
            .unwrap()
            .0
            .is_empty());
    }

    #[test]
    fn parquet_typed_columns_are_validated_like_csv() {
        use arrow::array::{ArrayRef, Date32Array, Float32Array, Int32Array, RecordBatch};
        use arrow::datatypes::{DataType, Field, Schema as ArrowSchema};
        use std::sync::Arc;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("typed.parquet");
        let fields = vec![
            Field::new("id", DataType::Int64, false),
            Field::new("date", DataType::Date32, true),
            Field::new("hs", DataType::Float64, true),
            Field::new("office", DataType::Int32, true),
            Field::new("importer", DataType::Utf8, true),
            Field::new("value", DataType::Float32, true),
            Field::new("mass", DataType::Int64, true),
            Field::new("rate", DataType::Float64, true),
            Field::new("fraud", DataType::Boolean, true),
            Field::new("note", DataType::Utf8, true),
        ];
        let schema = Arc::new(ArrowSchema::new(fields));
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![1, 2, 3, 1])),
            Arc::new(Date32Array::from(vec![
                Some(18_300),
                Some(18_300),
                None,
                Some(18_300),
            ])),
            Arc::new(Float64Array::from(vec![71080.0, 71080.5, 10101.0, 10101.0])),
            Arc::new(Int32Array::from(vec![Some(30), None, Some(1), Some(1)])),
            Arc::new(StringArray::from(vec![
                Some(" I "),
                Some("I"),
                Some("I"),
                Some("I"),
            ])),
            Arc::new(Float32Array::from(vec![
                Some(1.5),
                Some(f32::NAN),
                Some(1.0),
                Some(1.0),
            ])),
            Arc::new(Int64Array::from(vec![Some(2), Some(-1), Some(1), Some(1)])),
            Arc::new(Float64Array::from(vec![
                None,
                Some(1.0),
                Some(1.0),
                Some(1.0),
            ])),
            Arc::new(BooleanArray::from(vec![
                Some(true),
                Some(false),
                None,
                None,
            ])),
            Arc::new(StringArray::from(vec!["n"; 4])),
        ];
        let rb = RecordBatch::try_new(schema.clone(), cols).unwrap();
        let f = std::fs::File::create(&p).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(f, schema, None).unwrap();
        w.write(&rb).unwrap();
        w.close().unwrap();
        let (b, r) = read_all(&p, &mini(), &skip()).unwrap();
        assert_eq!(b.ids, vec!["1"]);
        assert_eq!(b.dates, vec![18_300]);
        assert_eq!(b.hs, vec![71080]);
        assert_eq!(b.categorical[0], vec!["30"]);
        assert_eq!(b.categorical[1], vec!["I"]);
        assert_eq!(b.numeric[1], vec![2.0]);
        assert!(b.numeric[2][0].is_nan());
        assert_eq!(b.label, vec![Some(true)]);
        let got: Vec<(u64, Vec<&str>)> = r
            .iter()
            .map(|x| {
                (
                    x.line,
                    x.problems
                        .iter()
                        .filter_map(|p| p.column.as_deref())
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (3, vec!["hs", "value", "mass"]),
                (4, vec!["date"]),
                (5, vec!["id"])
            ]
        );
        assert!(r[2].reason.contains("first seen on line 2"));
        assert_eq!(r[0].raw[0], "2");
    }

    #[test]
    fn parquet_unknown_and_missing_columns() {
        use arrow::array::{ArrayRef, RecordBatch};
        use arrow::datatypes::{DataType, Field, Schema as ArrowSchema};
        use std::sync::Arc;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("cols.parquet");
        let schema = Arc::new(ArrowSchema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("zzz", DataType::Utf8, false),
        ]));
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec!["a"])),
            Arc::new(StringArray::from(vec!["b"])),
        ];
        let f = std::fs::File::create(&p).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(f, schema.clone(), None).unwrap();
        w.write(&RecordBatch::try_new(schema, cols).unwrap())
            .unwrap();
        w.close().unwrap();
        let e = open(&p, &mini(), &ReadOptions::default())
            .err()
            .expect("error");
        assert_eq!(e.kind, DataErrorKind::Columns);
        assert!(
            e.message.contains("missing columns: \"date\", \"hs\"")
                && e.message.contains("unknown columns: \"zzz\""),
            "{e}"
        );
        let empty = file(&d, "e.parquet", b"");
        assert_eq!(
            open(&empty, &mini(), &ReadOptions::default())
                .err()
                .map(|e| e.kind),
            Some(DataErrorKind::Empty)
        );
        let junk = file(&d, "j.parquet", b"not parquet at all");
        assert_eq!(
            open(&junk, &mini(), &ReadOptions::default())
                .err()
                .map(|e| e.kind),
            Some(DataErrorKind::Io)
        );
        let other = file(&d, "x.xlsx", b"");
        assert_eq!(
            open(&other, &mini(), &ReadOptions::default())
                .err()
                .map(|e| e.kind),
            Some(DataErrorKind::Format)
        );
    }

    #[test]
    fn table_writer_csv_and_parquet() {
        let d = tempfile::tempdir().unwrap();
        let cols = [
            ("id", ColType::Str),
            ("score", ColType::F64),
            ("rank", ColType::I64),
            ("selected", ColType::Bool),
        ];
        let rows = |k: i64| {
            vec![
                Column::Str(vec![format!("a{k}"), "b,c".into()]),
                Column::F64(vec![0.1 * k as f64, f64::NAN]),
                Column::I64(vec![k, -k]),
                Column::Bool(vec![true, false]),
            ]
        };
        let p = d.path().join("s.csv");
        let mut w = TableWriter::create(&p, &cols).unwrap();
        w.write_rows(&rows(1)).unwrap();
        w.write_rows(&rows(2)).unwrap();
        assert_eq!(w.rows_written(), 4);
        w.finish().unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text, "id,score,rank,selected\na1,0.1,1,true\n\"b,c\",,-1,false\na2,0.2,2,true\n\"b,c\",,-2,false\n");

        let p = d.path().join("s.parquet");
        let mut w = TableWriter::create(&p, &cols).unwrap();
        w.write_rows(&rows(1)).unwrap();
        w.write_rows(&rows(2)).unwrap();
        let bad = w.write_rows(&[
            Column::F64(vec![1.0]),
            Column::F64(vec![1.0]),
            Column::I64(vec![1]),
            Column::Bool(vec![true]),
        ]);
        assert!(bad.unwrap_err().message.contains("\"id\" is Str"));
        assert!(w.write_rows(&rows(3)[..3]).is_err());
        w.finish().unwrap();
        let f = std::fs::File::open(&p).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(f)
            .unwrap()
            .build()
            .unwrap();
        let (mut ids, mut scores, mut ranks, mut sel) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for rb in reader {
            let rb = rb.unwrap();
            let s = rb.column(0).as_any().downcast_ref::<StringArray>().unwrap();
            let f = rb
                .column(1)
                .as_any()
                .downcast_ref::<Float64Array>()
                .unwrap();
            let i = rb.column(2).as_any().downcast_ref::<Int64Array>().unwrap();
            let b = rb
                .column(3)
                .as_any()
                .downcast_ref::<BooleanArray>()
                .unwrap();
            for r in 0..rb.num_rows() {
                ids.push(s.value(r).to_string());
                scores.push(if f.is_null(r) { None } else { Some(f.value(r)) });
                ranks.push(i.value(r));
                sel.push(b.value(r));
            }
        }
        assert_eq!(ids, vec!["a1", "b,c", "a2", "b,c"]);
        assert_eq!(scores, vec![Some(0.1), None, Some(0.2), None]);
        assert_eq!(ranks, vec![1, -1, 2, -2]);
        assert_eq!(sel, vec![true, false, true, false]);
    }

    #[test]
    fn write_rejects_layout() {
        // seven fields on every row, one row per bad cell; `raw` is the original record as one
        // CSV line (here with a comma and quotes inside a cell, so it must be quoted twice over)
        let d = tempfile::tempdir().unwrap();
        let body = "A,2020-01-01,010101,O,I,1,1,,0\nA,2020-01-01,010101,O,\"I,\"\"x\"\"\",-1,1,,0\nB,2020-01-01,010101,O,I,1\n";
        let p = file(&d, "in.csv", format!("{HEADER}{body}").as_bytes());
        let (_, rejects) = read_all(&p, &mini(), &skip()).unwrap();
        let out = d.path().join("rej.csv");
        write_rejects(&out, "in.csv", &rejects).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        // not flexible: a row of another width is an error
        let mut rdr = csv::Reader::from_path(&out).unwrap();
        assert_eq!(
            rdr.headers().unwrap().iter().collect::<Vec<_>>(),
            ["file", "line", "column", "value", "category", "reason", "raw"]
        );
        let recs: Vec<Vec<String>> = rdr
            .records()
            .map(|r| r.unwrap().iter().skip(1).map(str::to_string).collect())
            .collect();
        assert_eq!(recs.len(), 3, "{text}");
        // the duplicate row has two bad cells (the id, then the value): two reject rows
        assert_eq!(
            (
                recs[0][0].as_str(),
                recs[0][1].as_str(),
                recs[0][2].as_str()
            ),
            ("3", "id", "A")
        );
        assert_eq!(recs[0][4], "duplicate id (first seen on line 2)", "{text}");
        assert_eq!(
            (
                recs[1][0].as_str(),
                recs[1][1].as_str(),
                recs[1][2].as_str()
            ),
            ("3", "value", "-1")
        );
        assert_eq!(
            (recs[1][3].as_str(), recs[1][4].as_str()),
            ("below minimum", "below minimum 0")
        );
        assert_eq!(recs[0][5], recs[1][5]);
        let recs = [recs[0].clone(), recs[2].clone()];
        let rec = &recs[0];
        let fields = |raw: &str| -> Vec<String> {
            let mut r = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(raw.as_bytes());
            r.records()
                .next()
                .unwrap()
                .unwrap()
                .iter()
                .map(str::to_string)
                .collect()
        };
        assert_eq!(
            fields(&rec[5]),
            [
                "A",
                "2020-01-01",
                "010101",
                "O",
                "I,\"x\"",
                "-1",
                "1",
                "",
                "0"
            ]
        );
        assert_eq!(
            (
                recs[1][0].as_str(),
                recs[1][1].as_str(),
                recs[1][4].as_str()
            ),
            ("4", "", "expected 9 fields, found 6")
        );
        assert_eq!(
            fields(&recs[1][5]),
            ["B", "2020-01-01", "010101", "O", "I", "1"]
        );
    }
}

mod json_records {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_validate_like_rows() {
        let recs = vec![
            json!({"id": 17, "date": "2020-01-01", "hs": 71080, "office": 30, "importer": "I", "value": "1.5", "mass": 2, "rate": null, "note": "x"}),
            json!({"id": "B", "date": "2020-01-01", "hs": "071080", "office": "O", "importer": "I", "value": 1, "mass": 1, "fraud": 1, "inspected": true, "selection": "random", "propensity": 0.5}),
            json!([1, 2]),
            json!({"id": "C", "date": "2020-01-01", "hs": 10101, "office": "O", "importer": "I", "value": -1, "mass": 1, "colour": "red"}),
            json!({"id": "B", "date": "2020-01-01", "hs": 10101, "office": "O", "importer": "I", "value": 1}),
            json!({"id": "E", "date": "2020-01-01", "hs": 10101, "office": {"a": 1}, "importer": "I", "value": 1, "mass": 1}),
            json!({"id": "F", "date": "2020-01-01", "hs": 10101, "office": "O", "importer": "I", "value": 1, "mass": 1, "colour": 1}),
        ];
        let (b, r) = batch_from_json(&mini(), &recs, "request");
        assert_eq!(b.ids, vec!["17", "B"]);
        assert_eq!(b.lines, vec![1, 2]);
        assert_eq!(b.hs, vec![71080, 71080]);
        assert_eq!(b.categorical[0], vec!["30", "O"]);
        assert_eq!(b.numeric[0], vec![1.5, 1.0]);
        assert_eq!(b.label, vec![None, Some(true)]);
        assert_eq!(b.inspected, vec![false, true]);
        assert_eq!(b.propensity, vec![None, Some(0.5)]);
        assert_eq!(b.source, "request");
        b.check_lengths().unwrap();
        let got: Vec<(u64, Vec<&str>)> = r
            .iter()
            .map(|x| {
                (
                    x.line,
                    x.problems.iter().map(|p| p.category.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (3, vec!["not an object"]),
                (4, vec!["unknown field", "below minimum"]),
                (5, vec!["duplicate id", "missing field"]),
                (6, vec!["bad type"]),
                (7, vec!["unknown field"]),
            ]
        );
        assert_eq!(r[0].raw, vec!["[1,2]".to_string()]);
        assert!(r[2].reason.contains("first seen on line 2"));
        assert_eq!(r[2].problems[1].column.as_deref(), Some("mass"));
    }
}

mod shared_kcs {
    use super::*;

    fn kcs_file(split: &str) -> PathBuf {
        let p = repo_path(&format!(
            "../../../shared/data/customs-import-declarations/df_syn_{split}_eng.csv"
        ));
        assert!(
            p.exists(),
            "shared KCS data not found at {} (expected the shared data folder next to the repository)",
            p.display()
        );
        p
    }

    fn kcs_schema() -> Schema {
        Schema::from_path(&repo_path("../../data/schemas/kcs.toml")).expect("data/schemas/kcs.toml")
    }

    #[test]
    fn schema_files_parse() {
        let k = kcs_schema();
        assert_eq!(k.categorical.len(), 14);
        assert_eq!(k.hs_width, 6);
        assert_eq!(k.ignore, vec!["Critical Fraud"]);
        assert_eq!(
            k.categorical_index(cr_data::CategoricalKind::Office),
            Some(0)
        );
        assert_eq!(k.numeric_index(cr_data::NumericKind::Value), Some(2));
        let s = Schema::from_path(&repo_path("../../data/schemas/synthetic.toml"))
            .expect("synthetic.toml");
        let expect = [
            "declaration_id",
            "date",
            "hs_code",
            "office",
            "importer",
            "declarant",
            "seller",
            "courier",
            "origin_country",
            "departure_country",
            "transport_mode",
            "tax_type",
            "preferential_claim",
            "value",
            "mass",
            "quantity",
            "tax_rate",
            "fraud",
            "revenue_recovered",
            "inspected",
            "selection",
            "propensity",
        ];
        let mut got = s.all_columns();
        got.sort_unstable();
        let mut want = expect.to_vec();
        want.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(s.inspected.as_deref(), Some("inspected"));
    }

    #[test]
    fn three_files_read_without_rejects() {
        let schema = kcs_schema();
        let opts = ReadOptions {
            on_error: OnError::Skip,
            require_label: true,
            batch_rows: 10_000,
            ..ReadOptions::default()
        };
        for (split, rows, first, last) in [
            ("train", 37_385, "2020-01-01", "2020-12-31"),
            ("valid", 8_134, "2021-01-01", "2021-03-31"),
            ("test", 8_481, "2021-04-01", "2021-06-30"),
        ] {
            let rep = validate_file(&kcs_file(split), &schema, &opts, None).unwrap();
            assert_eq!(
                (rep.rows_read, rep.accepted, rep.rejected),
                (rows, rows, 0),
                "{split}: {rep}"
            );
            assert_eq!(rep.labelled, rows);
            assert_eq!(
                (rep.date_min.as_deref(), rep.date_max.as_deref()),
                (Some(first), Some(last))
            );
        }
    }

    /// Values against an independent reader (pandas), when python3 with pandas is available.
    #[test]
    fn train_values_match_pandas() {
        let path = kcs_file("train");
        let (b, r) = read_all(&path, &kcs_schema(), &ReadOptions::default()).unwrap();
        assert!(r.is_empty());
        let script = r#"
import sys, pandas as pd, numpy as np
d = pd.read_csv(sys.argv[1], dtype={"Office ID": str, "Seller ID": str}, keep_default_na=False)
print(int(d["Fraud"].sum()))
print(int((d["Seller ID"] == "").sum()))
print(repr(float(d["Item Price"].astype(np.float32).astype(np.float64).sum())))
print(d["Office ID"].iloc[123], int(d["HS6 Code"].iloc[123]), d["Declaration ID"].iloc[-1])
"#;
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(&path)
            .output();
        let out = match out {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
            Ok(o) => panic!(
                "python3 reference failed: {}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!("python3 (with pandas) is needed for this reference test: {e}"),
        };
        let lines: Vec<&str> = out.lines().collect();
        let positives = b.label.iter().filter(|l| **l == Some(true)).count();
        assert_eq!(positives.to_string(), lines[0]);
        let seller = schema_pos(&kcs_schema(), "Seller ID");
        assert_eq!(
            b.categorical[seller]
                .iter()
                .filter(|s| s.is_empty())
                .count()
                .to_string(),
            lines[1]
        );
        let price = kcs_schema()
            .numeric_index(cr_data::NumericKind::Value)
            .unwrap();
        let sum: f64 = b.numeric[price].iter().map(|&v| v as f64).sum();
        let want: f64 = lines[2].parse().unwrap();
        assert!((sum - want).abs() <= want.abs() * 1e-12, "{sum} vs {want}");
        let row3: Vec<&str> = lines[3].split(' ').collect();
        assert_eq!(b.categorical[0][123], row3[0]);
        assert_eq!(b.hs[123].to_string(), row3[1]);
        assert_eq!(b.ids.last().map(String::as_str), Some(row3[2]));
    }

    fn schema_pos(s: &Schema, name: &str) -> usize {
        s.categorical.iter().position(|c| c.name == name).unwrap()
    }
}
