//! File-level behaviour of the readers: every bad value is reported with file, line, column and
//! reason; nothing is dropped or coerced silently (accepted + rejected = rows read).

use std::path::{Path, PathBuf};

use cr_data::{open, read_all, validate_file, write_batch, OnError, ReadOptions, Schema};

const SCHEMA: &str = r#"
name = "t"
id = { column = "id" }
date = { column = "date", min = "2020-01-01", max = "2030-12-31" }
hs_code = { column = "hs", width = 6 }
categorical = [ { column = "importer", kind = "importer" }, { column = "origin", kind = "country_of_origin" } ]
numeric = [ { column = "value", kind = "value" }, { column = "mass", kind = "mass" } ]
label = { column = "fraud" }
"#;

const HEADER: &str = "id,date,hs,importer,origin,value,mass,fraud";

fn schema() -> Schema {
    Schema::from_toml(SCHEMA).unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn skip() -> ReadOptions {
    ReadOptions { on_error: OnError::Skip, ..ReadOptions::default() }
}

#[test]
fn empty_file_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "empty.csv", b"");
    let err = read_all(&p, &schema(), &ReadOptions::default()).unwrap_err();
    assert!(err.message.contains("empty.csv"), "{err}");
    assert!(err.message.to_lowercase().contains("empty") || err.message.contains("header"), "{err}");
}

#[test]
fn header_only_gives_zero_rows() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "h.csv", format!("{HEADER}\n").as_bytes());
    let (b, r) = read_all(&p, &schema(), &ReadOptions::default()).unwrap();
    assert_eq!((b.len(), r.len()), (0, 0));
}

#[test]
fn bom_crlf_and_quoting() {
    let d = tempfile::tempdir().unwrap();
    let text = format!("\u{feff}{HEADER}\r\nA1,2024-01-05,71080,\"ACME, Ltd\",CN,100.5,2,1\r\nA2,2024-01-06,010121,\"multi\nline\",VN,10,0.5,\r\n");
    let p = write(d.path(), "bom.csv", text.as_bytes());
    let (b, r) = read_all(&p, &schema(), &ReadOptions::default()).unwrap();
    assert!(r.is_empty(), "{r:?}");
    assert_eq!(b.ids, vec!["A1", "A2"]);
    assert_eq!(b.categorical[0], vec!["ACME, Ltd", "multi\nline"]);
    assert_eq!(b.hs, vec![71080, 10121]);
    assert_eq!(b.hs_string(0, 6), "071080");
    assert_eq!(b.label, vec![Some(true), None]);
    assert_eq!(b.numeric[0], vec![100.5, 10.0]);
}

#[test]
fn missing_and_unknown_columns_in_one_error() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "cols.csv", b"id,date,hs,importer,colour,value\nA,2024-01-01,1,x,red,1\n");
    let err = read_all(&p, &schema(), &ReadOptions::default()).unwrap_err();
    for name in ["origin", "mass", "colour"] {
        assert!(err.message.contains(name), "{name} not named in: {err}");
    }
}

/// Five corruptions; each reject names its line and column.
fn corrupted() -> String {
    [
        HEADER,
        "A1,2024-01-01,71080,imp1,CN,100,2,0",   // line 2 ok
        "A2,2024-01-02,71080,imp1,CN,100,-3,0",  // line 3 negative mass
        "A3,2024-01-03,71080,imp1,CN,abc,2,0",   // line 4 unparsable value
        "A4,2019-12-31,71080,imp1,CN,100,2,0",   // line 5 date out of range
        "A1,2024-01-04,71080,imp1,CN,100,2,0",   // line 6 duplicate id
        "A6,2024-01-05,71080,imp1,CN,NaN,2,1",   // line 7 NaN literal
        "A7,2024-01-06,71080,imp2,VN,inf,2,1",   // line 8 inf literal
        "A8,2024-01-07,71080,imp2,VN,7,2",       // line 9 wrong field count
        "A9,2024-01-08,71080,imp3,VN,5,1,1",     // line 10 ok
    ]
    .join("\n")
        + "\n"
}

#[test]
fn fail_mode_names_file_line_column() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "bad.csv", corrupted().as_bytes());
    let err = read_all(&p, &schema(), &ReadOptions::default()).unwrap_err();
    assert!(err.message.contains("bad.csv"), "{err}");
    assert!(err.message.contains("line 3"), "{err}");
    assert!(err.message.contains("mass"), "{err}");
}

#[test]
fn skip_mode_counts_add_up_and_rejects_are_located() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "bad.csv", corrupted().as_bytes());
    let (b, rejects) = read_all(&p, &schema(), &skip()).unwrap();
    assert_eq!(b.ids, vec!["A1", "A9"]);
    let got: Vec<(u64, Option<String>)> = rejects.iter().map(|r| (r.line, r.column.clone())).collect();
    let want: Vec<(u64, Option<String>)> = vec![
        (3, Some("mass".into())),
        (4, Some("value".into())),
        (5, Some("date".into())),
        (6, Some("id".into())),
        (7, Some("value".into())),
        (8, Some("value".into())),
        (9, None),
    ];
    assert_eq!(got, want, "{rejects:#?}");
    assert!(rejects[3].reason.contains("line 2"), "duplicate names the first line: {}", rejects[3].reason);
    let rej_path = d.path().join("rejects.csv");
    let rep = validate_file(&p, &schema(), &skip(), Some(&rej_path)).unwrap();
    assert_eq!(rep.rows_read, 9);
    assert_eq!(rep.accepted + rep.rejected, rep.rows_read);
    assert_eq!(rep.rejected, 7);
    let text = std::fs::read_to_string(&rej_path).unwrap();
    assert_eq!(text.lines().count(), 8, "header + 7 rejects:\n{text}");
}

#[test]
fn invalid_utf8_is_rejected_with_its_column() {
    let d = tempfile::tempdir().unwrap();
    let mut bytes = format!("{HEADER}\nA1,2024-01-01,71080,").into_bytes();
    bytes.extend_from_slice(&[0xff, 0xfe]);
    bytes.extend_from_slice(b",CN,1,1,0\nA2,2024-01-01,71080,ok,CN,1,1,0\n");
    let p = write(d.path(), "utf8.csv", &bytes);
    let (b, r) = read_all(&p, &schema(), &skip()).unwrap();
    assert_eq!(b.ids, vec!["A2"]);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].line, r[0].column.as_deref()), (2, Some("importer")));
}

#[test]
fn streaming_chunks_cover_every_row_once() {
    let d = tempfile::tempdir().unwrap();
    let mut text = format!("{HEADER}\n");
    for i in 0..1000 {
        text.push_str(&format!("D{i},2024-02-01,{},{},{},{},{},{}\n", 100000 + i, i % 7, "CN", i, if i % 10 == 0 { -1 } else { 1 }, i % 2));
    }
    let p = write(d.path(), "many.csv", text.as_bytes());
    let opts = ReadOptions { batch_rows: 64, ..skip() };
    let mut reader = open(&p, &schema(), &opts).unwrap();
    let (mut acc, mut rej, mut chunks) = (0usize, 0usize, 0usize);
    for c in &mut reader {
        let c = c.unwrap();
        assert!(c.batch.len() + c.rejects.len() <= 64);
        acc += c.batch.len();
        rej += c.rejects.len();
        chunks += 1;
    }
    assert_eq!((acc, rej), (900, 100));
    assert_eq!(reader.rows_read(), 1000);
    assert!(chunks >= 16);
}

#[test]
fn parquet_round_trip_is_exact() {
    let d = tempfile::tempdir().unwrap();
    let text = format!("{HEADER}\nA1,2024-01-05,71080,x,CN,100.25,2,1\nA2,2024-01-06,10121,,VN,3.5,0.125,\nA3,2024-03-06,999999,y,,7,1,0\n");
    let csv = write(d.path(), "a.csv", text.as_bytes());
    let (b, _) = read_all(&csv, &schema(), &ReadOptions::default()).unwrap();
    let pq = d.path().join("a.parquet");
    write_batch(&pq, &schema(), &b).unwrap();
    let (b2, r2) = read_all(&pq, &schema(), &ReadOptions::default()).unwrap();
    assert!(r2.is_empty());
    assert_eq!((&b.ids, &b.dates, &b.hs, &b.categorical, &b.label), (&b2.ids, &b2.dates, &b2.hs, &b2.categorical, &b2.label));
    assert_eq!(b.numeric, b2.numeric);
}

#[test]
fn shared_kcs_files_read_without_rejects() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let schema = Schema::from_path(&root.join("data/schemas/kcs.toml")).unwrap();
    let data = root.join("../shared/data/customs-import-declarations");
    for (file, rows) in [("df_syn_train_eng.csv", 37_385), ("df_syn_valid_eng.csv", 8_134), ("df_syn_test_eng.csv", 8_481)] {
        let p = data.join(file);
        assert!(p.is_file(), "{} is missing: ../shared must sit beside the checkout", p.display());
        let (b, r) = read_all(&p, &schema, &ReadOptions::default()).unwrap();
        assert_eq!((b.len(), r.len()), (rows, 0), "{file}");
        assert!(b.label.iter().all(|l| l.is_some()), "{file}: every KCS row is inspected");
    }
}
