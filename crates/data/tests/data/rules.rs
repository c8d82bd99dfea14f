//! No silent misreads: line numbers shared by CSV and Parquet, HS code lengths, categorical
//! domains (case, values, pattern, unseen-category warnings, strict mode) and pseudonyms.

use std::sync::Arc;

use super::*;
use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema as ArrowSchema};
use cr_data::{PseudonymKey, Reject};

/// `text` (a CSV file with a header and no line breaks inside cells) as a Parquet file with
/// one string column per CSV column: the same cells, typed as text.
fn csv_as_parquet(text: &str, out: &Path) {
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let names: Vec<String> = rdr.headers().unwrap().iter().map(str::to_string).collect();
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    let fields: Vec<Field> = names
        .iter()
        .map(|n| Field::new(n, DataType::Utf8, true))
        .collect();
    let schema = Arc::new(ArrowSchema::new(fields));
    let cols: Vec<ArrayRef> = (0..names.len())
        .map(|j| {
            Arc::new(StringArray::from(
                rows.iter().map(|r| r[j].to_string()).collect::<Vec<_>>(),
            )) as ArrayRef
        })
        .collect();
    let rb = RecordBatch::try_new(schema.clone(), cols).unwrap();
    let f = std::fs::File::create(out).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(f, schema, None).unwrap();
    w.write(&rb).unwrap();
    w.close().unwrap();
}

fn problems(r: &[Reject]) -> Vec<(u64, Vec<String>)> {
    r.iter()
        .map(|x| {
            (
                x.line,
                x.problems
                    .iter()
                    .map(|p| format!("{:?}={:?}", p.column, p.value))
                    .collect(),
            )
        })
        .collect()
}

/// The 31st data row is bad: it is line 32 (header = line 1) in the CSV file and in its
/// Parquet conversion (it was record 31 there), and both name every bad cell.
#[test]
fn csv_and_parquet_name_the_same_line() {
    let d = tempfile::tempdir().unwrap();
    let mut text = HEADER.to_string();
    for i in 1..=40 {
        if i == 31 {
            text.push_str("R31,2020-01-01,10101,O,,x,-1,,0\n");
        } else if i == 35 {
            text.push_str("R1,2020-01-01,010101,O,I,1,1,,1\n");
        } else {
            text.push_str(&format!("R{i},2020-01-01,010101,O,I,1,1,,0\n"));
        }
    }
    let csv_p = file(&d, "x.csv", text.as_bytes());
    let pq_p = d.path().join("x.parquet");
    csv_as_parquet(&text, &pq_p);
    let (cb, cr) = read_all(&csv_p, &mini(), &skip()).unwrap();
    let (pb, pr) = read_all(&pq_p, &mini(), &skip()).unwrap();
    let want = vec![
        (
            32,
            vec![
                "Some(\"importer\")=Some(\"\")".to_string(),
                "Some(\"value\")=Some(\"x\")".to_string(),
                "Some(\"mass\")=Some(\"-1\")".to_string(),
            ],
        ),
        (36, vec!["Some(\"id\")=Some(\"R1\")".to_string()]),
    ];
    assert_eq!(problems(&cr), want, "CSV");
    assert_eq!(problems(&pr), want, "Parquet");
    assert!(
        cr[1].reason.contains("first seen on line 2"),
        "{}",
        cr[1].reason
    );
    assert_eq!(cr[1].reason, pr[1].reason);
    // accepted rows carry the same lines too
    assert_eq!(cb.lines, pb.lines);
    assert_eq!(cb.lines[..3], [2, 3, 4]);
    // the deferred duplicate check (cells read again from the file) agrees
    for p in [&csv_p, &pq_p] {
        let opts = ReadOptions {
            duplicates: cr_data::DuplicateCheck::deferred(),
            ..skip()
        };
        let (_, r) = read_all(p, &mini(), &opts).unwrap();
        assert_eq!(problems(&r), want, "{}", p.display());
        assert_eq!(r[1].raw[0], "R1");
    }
}

/// One reject-file row per bad cell, with the file it came from; read back by the csv
/// crate, the rows of one rejected line share `file`, `line` and `raw`.
#[test]
fn reject_file_lists_every_bad_cell() {
    let d = tempfile::tempdir().unwrap();
    let text = format!("{HEADER}A,2020-01-01,010101,O,,x,-1,,7\nB,2020-01-01,010101,O,I,1,1,,0\n");
    let p = file(&d, "in.csv", text.as_bytes());
    let out = d.path().join("rej.csv");
    let rep = validate_file(&p, &mini(), &skip(), Some(&out)).unwrap();
    assert_eq!((rep.rejected, rep.accepted), (1, 1));
    let mut rdr = csv::Reader::from_path(&out).unwrap();
    let recs: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    let cells: Vec<(&str, &str, &str, &str)> =
        recs.iter().map(|r| (&r[1], &r[2], &r[3], &r[4])).collect();
    assert_eq!(
        cells,
        [
            ("2", "importer", "", "missing value"),
            ("2", "value", "x", "not a number"),
            ("2", "mass", "-1", "below minimum"),
            ("2", "fraud", "7", "bad label"),
        ]
    );
    for r in &recs {
        assert_eq!(&r[0], p.display().to_string());
        assert_eq!(&r[6], "A,2020-01-01,010101,O,,x,-1,,7");
    }
}

const DOMAINS: &str = r#"
name = "dom"
id = { column = "id" }
date = { column = "date" }
hs_code = { column = "hs", width = 6, longer = "truncate" }
categorical = [
  { column = "country", kind = "country_of_origin", case = "upper", values = ["CN", "DE", "us"] },
  { column = "office", pattern = "[A-Z]{2}[0-9]{2}" },
  { column = "importer", kind = "importer" },
]
numeric = [ { column = "value", kind = "value" } ]
"#;

const DOM_ROWS: &str = "id,date,hs,country,office,importer,value\n\
    1,2021-01-01,8517130000,cn,AB12,I1,1\n\
    2,2021-01-01,851713,CN,AB12,I2,1\n\
    3,2021-01-01,85171300,fr,ab12,I1,1\n\
    4,2021-01-01,851713,Fr,XX99,I1,1\n\
    5,2021-01-01,851713,,AB1,I1,1\n\
    6,2021-01-01,85171,us,AB12,I1,1\n";

#[test]
fn case_values_and_pattern() {
    let schema = Schema::from_toml(DOMAINS).unwrap();
    assert_eq!(
        schema.categorical[0].values.as_deref(),
        Some(&["CN".to_string(), "DE".into(), "US".into()][..]),
        "listed values are folded by the column's case"
    );
    let d = tempfile::tempdir().unwrap();
    let p = file(&d, "dom.csv", DOM_ROWS.as_bytes());
    let (b, r) = read_all(&p, &schema, &skip()).unwrap();
    assert!(r.is_empty(), "{r:?}");
    // lower-case "cn" is the country CN, not an unknown one
    assert_eq!(b.categorical[0], ["CN", "CN", "FR", "FR", "", "US"]);
    // truncated 10- and 8-digit codes, a lost leading zero restored
    assert_eq!(b.hs, [851_713, 851_713, 851_713, 851_713, 851_713, 85_171]);
    let rep = validate_file(&p, &schema, &skip(), None).unwrap();
    let country = &rep.unseen["country"];
    assert_eq!(
        country.cells, 2,
        "FR twice (the empty cell is missing, not unseen)"
    );
    assert_eq!(country.values.get("FR"), Some(&2));
    let office = &rep.unseen["office"];
    assert_eq!(office.cells, 2);
    assert_eq!(
        office.values.keys().collect::<Vec<_>>(),
        ["AB1", "ab12"],
        "pattern matched against the whole value"
    );
    assert_eq!(rep.no_domain, ["importer"]);
    let shown = rep.to_string();
    assert!(
        shown.contains("warning: column country: 2 cells with unseen categories")
            && shown.contains("\"FR\" x2")
            && shown.contains("not checked for importer"),
        "{shown}"
    );
    // strict: the same cells are rejects, each named
    let strict = ReadOptions {
        strict_categories: true,
        ..skip()
    };
    let rep = validate_file(&p, &schema, &strict, None).unwrap();
    assert_eq!((rep.accepted, rep.rejected), (3, 3));
    assert_eq!(rep.by_reason.get("unseen category"), Some(&4));
    assert_eq!(rep.unseen["country"].cells, 0);
    let (_, r) = read_all(&p, &schema, &strict).unwrap();
    assert_eq!(
        problems(&r),
        vec![
            (
                4,
                vec![
                    "Some(\"country\")=Some(\"fr\")".into(),
                    "Some(\"office\")=Some(\"ab12\")".into()
                ]
            ),
            (5, vec!["Some(\"country\")=Some(\"Fr\")".into()]),
            (6, vec!["Some(\"office\")=Some(\"AB1\")".into()]),
        ]
    );
}

#[test]
fn bad_domains_are_schema_errors() {
    let e = Schema::from_toml(&DOMAINS.replace("[A-Z]{2}[0-9]{2}", "[A-Z")).unwrap_err();
    assert!(
        e.message.contains("office") && e.message.contains("regular expression"),
        "{e}"
    );
    let e = Schema::from_toml(&DOMAINS.replace(
        "values = [\"CN\", \"DE\", \"us\"]",
        "values = [\"CN\"], pattern = \"[a-z]+\"",
    ))
    .unwrap_err();
    assert!(e.message.contains("\"CN\" does not match"), "{e}");
    let e = Schema::from_toml(&DOMAINS.replace("\"truncate\"", "\"round\"")).unwrap_err();
    assert!(e.message.contains("round"), "{e}");
}

/// Pseudonymised columns hold HMAC-SHA256 pseudonyms (expected values from Python's hmac
/// module); without a key the file is not read at all.
#[test]
fn pseudonymised_columns() {
    let toml = DOMAINS.replace(
        "{ column = \"importer\", kind = \"importer\" }",
        "{ column = \"importer\", kind = \"importer\", pseudonymise = true }",
    );
    let schema = Schema::from_toml(&toml).unwrap();
    let d = tempfile::tempdir().unwrap();
    let p = file(&d, "dom.csv", DOM_ROWS.as_bytes());
    let e = read_all(&p, &schema, &skip()).unwrap_err();
    assert!(
        e.message.contains("pseudonymises column(s) importer")
            && e.message.contains("CR_PSEUDONYM_KEY"),
        "{e}"
    );
    let key = PseudonymKey::from_text("0123456789abcdef\n", "test").unwrap();
    let opts = ReadOptions {
        pseudonym_key: Some(key),
        ..skip()
    };
    let (b, _) = read_all(&p, &schema, &opts).unwrap();
    // python3: hmac.new(b"0123456789abcdef", b"I1", hashlib.sha256).hexdigest()[:16]
    assert_eq!(
        b.categorical[2][..2],
        ["f154f2ad4c10024f", "57bd5f4808982101"]
    );
    assert!(b.categorical[2][2..]
        .iter()
        .all(|v| v == "f154f2ad4c10024f"));
    // the same through the JSON path of the service
    let rec = serde_json::json!({"id": "9", "date": "2021-01-01", "hs": "851713",
        "country": "CN", "office": "AB12", "importer": "I2", "value": 1});
    let (jb, jr) = cr_data::batch_from_json_keyed(
        &schema,
        std::slice::from_ref(&rec),
        "req",
        opts.pseudonym_key.as_ref(),
    )
    .unwrap();
    assert!(jr.is_empty());
    assert_eq!(jb.categorical[2], ["57bd5f4808982101"]);
    let (jb, jr) = batch_from_json(&schema, &[rec], "req");
    assert_eq!(jb.len(), 0);
    assert_eq!(jr[0].problems[0].category, "no pseudonym key");

    // a model's schema records the key's fingerprint: another key is refused, not used
    let key = opts.pseudonym_key.clone().unwrap();
    let trained = schema.clone().keyed(Some(&key)).unwrap();
    assert_eq!(
        trained.pseudonym_fingerprint.as_deref(),
        Some("648b12d06eb62acf")
    );
    assert!(read_all(&p, &trained, &opts).is_ok());
    let other = ReadOptions {
        pseudonym_key: Some(PseudonymKey::from_text("another key of 16+ bytes", "t").unwrap()),
        ..skip()
    };
    let e = read_all(&p, &trained, &other).unwrap_err();
    assert!(
        e.message.contains("wrong pseudonym key") && e.message.contains("648b12d06eb62acf"),
        "{e}"
    );
    assert!(
        schema.clone().keyed(None).is_err(),
        "training without the key"
    );
    // the fingerprint travels with the schema's JSON (the model's pipeline metadata)
    let back: Schema = serde_json::from_str(&serde_json::to_string(&trained).unwrap()).unwrap();
    assert_eq!(back, trained);
    // plain schemas serialize as before (no new keys), so their hashes do not change
    let plain = serde_json::to_string(&mini()).unwrap();
    for k in [
        "values",
        "pattern",
        "case",
        "pseudonymise",
        "hs_longer",
        "pseudonym_fingerprint",
    ] {
        assert!(!plain.contains(k), "{k} in {plain}");
    }
}
