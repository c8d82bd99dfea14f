//! `customs-risk score` end to end, through the built binary: generated data, models trained by
//! `customs-risk train` and foreign models exported from Python, checked against independent
//! references — ONNX Runtime in Python for scores, the selection rule recomputed here from
//! the score column, pyarrow for Parquet output.

mod common;

use std::path::{Path, PathBuf};

use common::{
    assert_close, cli_err, cli_ok, generate, py_script, python, read_reference, read_scores, Scored,
};

const TOL: f64 = 1e-6;

/// Training data, a held-out file (another seed) and the two models trained on the first.
struct Fixture {
    dir: tempfile::TempDir,
    train: PathBuf,
    test: PathBuf,
    gbdt: PathBuf,
    logistic: PathBuf,
}

impl Fixture {
    fn new(test_rows: usize) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let train = generate(d, "train.csv", 20_000, 11);
        let test = generate(d, "test.csv", test_rows, 12);
        let t = train.to_str().unwrap();
        cli_ok(
            d,
            &[
                "train",
                "--data",
                t,
                "--out",
                "gbdt",
                "--trees",
                "25",
                "--leaves",
                "15",
                "--early-stopping",
                "0",
                "--threads",
                "2",
                "--quiet",
            ],
        );
        cli_ok(
            d,
            &[
                "train",
                "--data",
                t,
                "--algo",
                "logistic",
                "--out",
                "logistic",
                "--threads",
                "2",
                "--quiet",
            ],
        );
        Fixture {
            train,
            test,
            gbdt: d.join("gbdt.onnx"),
            logistic: d.join("logistic.onnx"),
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `customs-risk score --model M --data D --out OUT EXTRA...`; returns stderr.
    fn score(&self, model: &Path, data: &Path, out: &str, extra: &[&str]) -> String {
        let mut args = vec![
            "score",
            "--model",
            model.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--out",
            out,
        ];
        args.extend_from_slice(extra);
        cli_ok(self.dir.path(), &args)
    }

    /// ONNX Runtime (Python) scores of `data`, ids from `id_col`.
    fn ort_reference(
        &self,
        model: &Path,
        data: &Path,
        id_col: &str,
        features: &str,
    ) -> Vec<(String, f64)> {
        let out = self.path(&format!(
            "ort_{}_{}.csv",
            model.file_stem().unwrap().to_str().unwrap(),
            data.file_stem().unwrap().to_str().unwrap()
        ));
        let n = python(
            self.dir.path(),
            &py_script("ort_score.py"),
            &[
                model.to_str().unwrap(),
                data.to_str().unwrap(),
                out.to_str().unwrap(),
                id_col,
                features,
            ],
        );
        let reference = read_reference(&out);
        assert_eq!(n.trim().parse::<usize>().unwrap(), reference.len());
        reference
    }
}

/// The ids of a generated file, in file order.
fn file_ids(path: &Path, id_col: &str) -> Vec<String> {
    let mut rdr = csv::Reader::from_path(path).unwrap();
    let at = rdr
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == id_col)
        .unwrap();
    rdr.records().map(|r| r.unwrap()[at].to_string()).collect()
}

#[test]
fn our_models_match_onnx_runtime_with_every_engine() {
    let fx = Fixture::new(3_000);
    let ids = file_ids(&fx.test, "declaration_id");
    for model in [&fx.gbdt, &fx.logistic] {
        let name = model.file_stem().unwrap().to_str().unwrap().to_string();
        let reference = fx.ort_reference(model, &fx.test, "declaration_id", "");
        assert_eq!(
            reference.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
            ids,
            "ONNX Runtime reference covers every row"
        );
        // the scores must not be constant, or agreement would prove little
        let distinct: std::collections::BTreeSet<u64> =
            reference.iter().map(|r| r.1.to_bits()).collect();
        assert!(
            distinct.len() > 50,
            "{name}: only {} distinct scores",
            distinct.len()
        );

        let auto = format!("{name}_auto.csv");
        fx.score(model, &fx.test, &auto, &["--quiet"]);
        let auto_rows = read_scores(&fx.path(&auto));
        let worst = assert_close(&format!("{name} auto engine"), &auto_rows, &reference, TOL);
        eprintln!("{name}: auto engine vs ONNX Runtime (Python): max |diff| {worst:e}");

        let ort = format!("{name}_ort.csv");
        fx.score(model, &fx.test, &ort, &["--engine", "ort", "--quiet"]);
        assert_close(
            &format!("{name} --engine ort"),
            &read_scores(&fx.path(&ort)),
            &reference,
            TOL,
        );

        // logistic models run natively too (crates/infer/src/prep.rs): no refusal allowed
        let native = format!("{name}_native.csv");
        fx.score(model, &fx.test, &native, &["--engine", "native", "--quiet"]);
        let worst = assert_close(
            &format!("{name} --engine native"),
            &read_scores(&fx.path(&native)),
            &reference,
            TOL,
        );
        eprintln!("{name}: native engine vs ONNX Runtime (Python): max |diff| {worst:e}");
        if name == "logistic" {
            // the same f32 arithmetic as ONNX Runtime: the same output, byte for byte
            assert!(
                std::fs::read(fx.path(&native)).unwrap() == std::fs::read(fx.path(&ort)).unwrap(),
                "{name}: --engine native and --engine ort outputs differ"
            );
        }
    }
}

/// Expected selection from first principles: k = ceil(rate × n) computed in integers, the k
/// highest scores, equal scores taken in file order.
fn expected_selection(scores: &[f64], percent: usize) -> Vec<bool> {
    let n = scores.len();
    let k = (n * percent).div_ceil(100);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| scores[j].partial_cmp(&scores[i]).unwrap().then(i.cmp(&j)));
    let mut sel = vec![false; n];
    for &i in &order[..k] {
        sel[i] = true;
    }
    sel
}

/// Percentiles lie in [0, 100] and never decrease as the score grows.
fn assert_percentiles(rows: &[Scored]) {
    let mut by_score: Vec<&Scored> = rows.iter().collect();
    by_score.sort_by(|a, b| a.score.partial_cmp(&b.score).unwrap());
    for w in by_score.windows(2) {
        for r in w {
            assert!(
                (0.0..=100.0).contains(&r.percentile),
                "{}: percentile {}",
                r.id,
                r.percentile
            );
        }
        assert!(
            w[0].percentile <= w[1].percentile,
            "percentile not monotone: {w:?}"
        );
        if w[0].score == w[1].score {
            assert_eq!(
                w[0].percentile, w[1].percentile,
                "equal scores, different percentiles: {w:?}"
            );
        }
    }
    let spread = by_score.last().unwrap().percentile - by_score[0].percentile;
    assert!(spread > 50.0, "percentiles barely vary ({spread})");
}

#[test]
fn budget_selects_the_top_k_with_ties_in_file_order() {
    let fx = Fixture::new(1_000);
    // Plant ties at the selection boundary: copies (new ids) of the highest-scoring row,
    // spread through the file, more copies than the budget selects.
    fx.score(&fx.gbdt, &fx.test, "plain.csv", &["--quiet"]);
    let plain = read_scores(&fx.path("plain.csv"));
    let top = plain
        .iter()
        .enumerate()
        .max_by(|a, b| {
            a.1.score
                .partial_cmp(&b.1.score)
                .unwrap()
                .then(b.0.cmp(&a.0))
        })
        .unwrap()
        .0;
    let text = std::fs::read_to_string(&fx.test).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (header, body) = (lines[0], &lines[1..]);
    let top_line = body[top];
    let mut out = vec![header.to_string()];
    let mut copies = 0;
    for (i, l) in body.iter().enumerate() {
        out.push(l.to_string());
        if i % 17 == 3 {
            copies += 1;
            let rest = top_line.split_once(',').unwrap().1;
            out.push(format!("TIE{copies:05},{rest}"));
        }
    }
    let tied = fx.path("tied.csv");
    std::fs::write(&tied, out.join("\n") + "\n").unwrap();
    let n = out.len() - 1;

    for (percent, arg) in [(5usize, "5%"), (7, "0.07"), (1, "1%")] {
        let name = format!("budget_{percent}.csv");
        fx.score(&fx.gbdt, &tied, &name, &["--budget", arg, "--quiet"]);
        let rows = read_scores(&fx.path(&name));
        assert_eq!(rows.len(), n);
        let scores: Vec<f64> = rows.iter().map(|r| r.score).collect();
        let want = expected_selection(&scores, percent);
        let got: Vec<bool> = rows
            .iter()
            .map(|r| r.selected.expect("a selected column with --budget"))
            .collect();
        let k = (n * percent).div_ceil(100);
        assert_eq!(
            got.iter().filter(|s| **s).count(),
            k,
            "{arg} of {n} rows must select ceil = {k}"
        );
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g,
                w,
                "{arg}: row {} ({}) score {}: selected {g}, expected {w}",
                i + 1,
                rows[i].id,
                rows[i].score
            );
        }
        // the copies all carry the top score: the budget must cut through them
        let max = scores.iter().cloned().fold(f64::MIN, f64::max);
        let at_max = scores.iter().filter(|s| **s == max).count();
        if percent == 5 {
            assert!(
                at_max > k,
                "the test needs a tie at the boundary ({at_max} rows at the top score, k = {k})"
            );
        }
        assert_percentiles(&rows);
    }
    // 7 % of 100 rows is 7 rows, although 0.07 * 100 = 7.000000000000001 in floating point
    let hundred = fx.path("hundred.csv");
    std::fs::write(&hundred, out[..101].join("\n") + "\n").unwrap();
    fx.score(
        &fx.gbdt,
        &hundred,
        "hundred_7.csv",
        &["--budget", "7%", "--quiet"],
    );
    let rows = read_scores(&fx.path("hundred_7.csv"));
    assert_eq!(rows.len(), 100);
    let want = expected_selection(&rows.iter().map(|r| r.score).collect::<Vec<_>>(), 7);
    assert_eq!(
        rows.iter().map(|r| r.selected.unwrap()).collect::<Vec<_>>(),
        want
    );
    assert_eq!(want.iter().filter(|s| **s).count(), 7);

    // plain (unbudgeted) run of the same file has the same scores and no selected column
    fx.score(&fx.gbdt, &tied, "tied_plain.csv", &["--quiet"]);
    let plain = read_scores(&fx.path("tied_plain.csv"));
    let budgeted = read_scores(&fx.path("budget_5.csv"));
    assert!(plain.iter().all(|r| r.selected.is_none()));
    for (a, b) in plain.iter().zip(&budgeted) {
        assert_eq!(a.id, b.id);
        assert!(
            (a.score - b.score).abs() <= TOL,
            "{}: {} vs {} with --budget",
            a.id,
            a.score,
            b.score
        );
    }
    // and the same precision: the score text of every row is the same with and without --budget
    assert_eq!(
        score_texts(&fx.path("tied_plain.csv")),
        score_texts(&fx.path("budget_5.csv"))
    );
}

/// (id, score) of every row of a score CSV, as text, as written.
fn score_texts(path: &Path) -> Vec<(String, String)> {
    let mut rdr = csv::Reader::from_path(path).unwrap();
    assert_eq!(
        rdr.headers().unwrap().iter().take(2).collect::<Vec<_>>(),
        ["id", "score"]
    );
    rdr.records()
        .map(|r| r.unwrap())
        .map(|r| (r[0].to_string(), r[1].to_string()))
        .collect()
}

#[test]
fn thread_count_does_not_change_output_and_parquet_equals_csv() {
    let fx = Fixture::new(3_000);
    for (model, extra) in [(&fx.gbdt, &["--budget", "5%"][..]), (&fx.logistic, &[][..])] {
        let stem = model.file_stem().unwrap().to_str().unwrap();
        for ext in ["csv", "parquet"] {
            let mut files = Vec::new();
            for threads in ["1", "2"] {
                let name = format!("{stem}_t{threads}.{ext}");
                let mut args = vec!["--threads", threads, "--batch-rows", "700", "--quiet"];
                args.extend_from_slice(extra);
                fx.score(model, &fx.test, &name, &args);
                files.push(std::fs::read(fx.path(&name)).unwrap());
            }
            assert!(
                files[0] == files[1],
                "{stem} {ext}: --threads 1 and --threads 2 give different bytes"
            );
        }
        let csv = fx.path(&format!("{stem}_t1.csv"));
        let n = python(
            fx.dir.path(),
            &py_script("csv_vs_parquet.py"),
            &[
                csv.to_str().unwrap(),
                fx.path(&format!("{stem}_t1.parquet")).to_str().unwrap(),
            ],
        );
        assert_eq!(n.trim(), "3000");
        assert_eq!(read_scores(&csv).len(), 3000);
    }
}

/// The fields of one CSV line.
fn parse_csv_line(line: &str) -> Vec<String> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line.as_bytes());
    r.records()
        .next()
        .expect("one record")
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect()
}

/// Rewrite `src` into `dst`, setting `column` of data row `row` (1-based) to `value`.
fn corrupt(src: &Path, dst: &Path, changes: &[(usize, &str, &str)]) {
    let mut rdr = csv::Reader::from_path(src).unwrap();
    let header = rdr.headers().unwrap().clone();
    let mut w = csv::Writer::from_path(dst).unwrap();
    w.write_record(&header).unwrap();
    for (i, rec) in rdr.records().enumerate() {
        let mut rec: Vec<String> = rec.unwrap().iter().map(str::to_string).collect();
        for (row, column, value) in changes {
            if *row == i + 1 {
                rec[header.iter().position(|h| h == *column).unwrap()] = value.to_string();
            }
        }
        w.write_record(&rec).unwrap();
    }
    w.flush().unwrap();
}

#[test]
fn rejected_rows_are_counted_and_named() {
    let fx = Fixture::new(1_000);
    let bad = fx.path("bad.csv");
    // data row r sits on line r + 1 (the header is line 1)
    let changes = [
        (5usize, "value", "abc"),
        (40, "date", "2023-13-45"),
        (41, "mass", "-5"),
        (700, "hs_code", "ABCDEF"),
        (1000, "origin_country", ""),
    ];
    corrupt(&fx.test, &bad, &changes);
    let b = bad.to_str().unwrap();

    // default --on-error fail: stops at the first bad row, naming file, line and column
    let err = cli_err(
        fx.dir.path(),
        &[
            "score",
            "--model",
            fx.gbdt.to_str().unwrap(),
            "--data",
            b,
            "--out",
            "fail.csv",
        ],
    );
    assert!(
        err.contains("bad.csv")
            && err.contains("line 6")
            && err.contains("\"value\"")
            && err.contains("abc"),
        "unclear error: {err}"
    );
    // --rejects without skip is refused
    cli_err(
        fx.dir.path(),
        &[
            "score",
            "--model",
            fx.gbdt.to_str().unwrap(),
            "--data",
            b,
            "--out",
            "x.csv",
            "--rejects",
            "r.csv",
        ],
    );

    fx.score(
        &fx.gbdt,
        &bad,
        "skip.csv",
        &[
            "--on-error",
            "skip",
            "--rejects",
            "rejects.csv",
            "--batch-rows",
            "300",
            "--quiet",
        ],
    );
    let accepted = read_scores(&fx.path("skip.csv"));
    // seven fields on every row (the reader is not flexible): `raw` is the record as one CSV
    // line; one row per bad cell (here one bad cell per row)
    let rejects = read_rejects(&fx.path("rejects.csv"));
    let all_ids = file_ids(&fx.test, "declaration_id");
    assert_eq!(
        accepted.len() + rejects.len(),
        all_ids.len(),
        "accepted + rejected = rows read"
    );
    let bad_records: Vec<Vec<String>> = csv::Reader::from_path(&bad)
        .unwrap()
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();

    // the empty origin_country is allowed (categoricals may be missing): only 4 rejects
    let expected: Vec<(String, &str, &str)> = changes[..4]
        .iter()
        .map(|(row, col, v)| ((row + 1).to_string(), *col, *v))
        .collect();
    assert_eq!(rejects.len(), expected.len(), "rejects: {rejects:?}");
    for (r, (line, col, value)) in rejects.iter().zip(&expected) {
        assert_eq!(
            (&r[0], &r[1], &r[2]),
            (line.as_str(), *col, *value),
            "reject {r:?}"
        );
        assert!(!r[3].is_empty(), "reject without a reason: {r:?}");
        // the raw record, parsed as CSV, is the row as the file holds it
        let row: usize = line.parse::<usize>().unwrap() - 1;
        assert_eq!(parse_csv_line(&r[4]), bad_records[row - 1], "reject {r:?}");
    }
    // pandas reads the same table, and its `raw` gives the original fields
    let n = python(
        fx.dir.path(),
        &py_script("check_rejects.py"),
        &[fx.path("rejects.csv").to_str().unwrap(), b],
    );
    assert_eq!(n.trim(), "4");
    let rejected_ids: Vec<String> = rejects
        .iter()
        .map(|r| parse_csv_line(&r[4])[0].clone())
        .collect();
    let rejected_ids: Vec<&str> = rejected_ids.iter().map(String::as_str).collect();
    let kept: Vec<&String> = all_ids
        .iter()
        .filter(|id| !rejected_ids.contains(&id.as_str()))
        .collect();
    assert_eq!(
        accepted.iter().map(|r| &r.id).collect::<Vec<_>>(),
        kept,
        "accepted rows in file order"
    );

    // the accepted rows score as ONNX Runtime scores them
    let reference = fx.ort_reference(&fx.gbdt, &fx.test, "declaration_id", "");
    let reference: Vec<(String, f64)> = reference
        .into_iter()
        .filter(|(id, _)| !rejected_ids.contains(&id.as_str()))
        .collect();
    // row 1000 (the last) had its origin emptied, which changes its score: compare the others
    let n = accepted.len();
    assert_close(
        "accepted rows",
        &accepted[..n - 1],
        &reference[..n - 1],
        TOL,
    );
}

const FOREIGN_FEATURES: &str = "value,mass,quantity,tax_rate";

#[test]
fn foreign_models_from_lightgbm_and_sklearn() {
    let fx = Fixture::new(2_000);
    let d = fx.dir.path();
    python(
        d,
        &py_script("train_foreign.py"),
        &[
            fx.train.to_str().unwrap(),
            d.to_str().unwrap(),
            FOREIGN_FEATURES,
        ],
    );

    // A file with an id and exactly the model's numeric columns, in the model's order.
    let narrow = fx.path("narrow.csv");
    {
        let mut rdr = csv::Reader::from_path(&fx.test).unwrap();
        let h = rdr.headers().unwrap().clone();
        let keep: Vec<usize> = std::iter::once("declaration_id")
            .chain(FOREIGN_FEATURES.split(','))
            .map(|c| h.iter().position(|x| x == c).unwrap())
            .collect();
        let mut w = csv::Writer::from_path(&narrow).unwrap();
        w.write_record(keep.iter().map(|&i| &h[i])).unwrap();
        for r in rdr.records() {
            let r = r.unwrap();
            w.write_record(keep.iter().map(|&i| &r[i])).unwrap();
        }
        w.flush().unwrap();
    }

    for stem in ["lightgbm", "sklearn"] {
        let model = fx.path(&format!("{stem}.onnx"));
        let reference = fx.ort_reference(&model, &fx.test, "declaration_id", FOREIGN_FEATURES);
        let distinct: std::collections::BTreeSet<u64> =
            reference.iter().map(|r| r.1.to_bits()).collect();
        assert!(
            distinct.len() > 20,
            "{stem}: only {} distinct scores",
            distinct.len()
        );

        // named features, every engine
        for engine in ["auto", "native", "ort"] {
            let out = format!("{stem}_{engine}.csv");
            let log = fx.score(
                &model,
                &fx.test,
                &out,
                &[
                    "--features",
                    FOREIGN_FEATURES,
                    "--id-column",
                    "declaration_id",
                    "--engine",
                    engine,
                ],
            );
            assert!(
                log.contains("value, mass, quantity, tax_rate"),
                "{stem}: the mapping is printed: {log}"
            );
            let rows = read_scores(&fx.path(&out));
            let worst = assert_close(&format!("{stem} --engine {engine}"), &rows, &reference, TOL);
            eprintln!("{stem} --engine {engine}: max |diff| vs ONNX Runtime (Python) {worst:e}");
            assert!(
                rows.iter().all(|r| r.percentile.is_nan()),
                "foreign models have no reference percentiles"
            );
        }

        // default mapping: the narrow file's numeric columns, in order, are the features
        let out = format!("{stem}_default.csv");
        let log = fx.score(&model, &narrow, &out, &["--id-column", "declaration_id"]);
        let mapping = log
            .lines()
            .find(|l| l.contains("<-"))
            .unwrap_or_else(|| panic!("no mapping printed: {log}"));
        assert!(
            mapping.ends_with("<- value, mass, quantity, tax_rate"),
            "{mapping}"
        );
        assert_close(
            &format!("{stem} default mapping"),
            &read_scores(&fx.path(&out)),
            &reference,
            TOL,
        );

        // without --id-column the id is the row number
        fx.score(&model, &narrow, "rownum.csv", &["--quiet"]);
        let rows = read_scores(&fx.path("rownum.csv"));
        assert!(rows
            .iter()
            .enumerate()
            .all(|(i, r)| r.id == (i + 1).to_string()));

        // wrong feature name / count: clear errors
        let m = model.to_str().unwrap();
        let t = fx.test.to_str().unwrap();
        let err = cli_err(
            d,
            &[
                "score",
                "--model",
                m,
                "--data",
                t,
                "--out",
                "w.csv",
                "--features",
                "value,mas,quantity,tax_rate",
            ],
        );
        assert!(
            err.contains("mas") && err.contains("test.csv"),
            "unclear error for a wrong name: {err}"
        );
        let err = cli_err(
            d,
            &[
                "score",
                "--model",
                m,
                "--data",
                t,
                "--out",
                "w.csv",
                "--features",
                "value,mass,quantity",
            ],
        );
        assert!(
            err.contains('3') && err.contains('4'),
            "unclear error for a wrong count: {err}"
        );
        // the wide generated file has more numeric columns than the model takes
        let err = cli_err(d, &["score", "--model", m, "--data", t, "--out", "w.csv"]);
        assert!(
            err.contains("--features") && err.contains("4 features"),
            "unclear error without --features: {err}"
        );
    }
}

/// Write the `columns` of `src` to `dst`, with `changes` (data row (1-based), column, value)
/// applied first.
fn select_columns(src: &Path, dst: &Path, columns: &[&str], changes: &[(usize, &str, &str)]) {
    let full = dst.with_extension("full.csv");
    corrupt(src, &full, changes);
    let mut rdr = csv::Reader::from_path(&full).unwrap();
    let h = rdr.headers().unwrap().clone();
    let keep: Vec<usize> = columns
        .iter()
        .map(|c| h.iter().position(|x| x == *c).unwrap())
        .collect();
    let mut w = csv::Writer::from_path(dst).unwrap();
    w.write_record(keep.iter().map(|&i| &h[i])).unwrap();
    for r in rdr.records() {
        let r = r.unwrap();
        w.write_record(keep.iter().map(|&i| &r[i])).unwrap();
    }
    w.flush().unwrap();
}

/// Cut data row `row` (1-based) of a CSV file without quoted line breaks to its first `fields`
/// fields.
fn truncate_row(path: &Path, row: usize, fields: usize) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[row] = lines[row]
        .split(',')
        .take(fields)
        .collect::<Vec<_>>()
        .join(",");
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// The rows of a reject file (strict: five fields each).
/// A reject file's rows (one per bad cell) as `[line, column, value, reason, raw]`; every
/// row names the scored file.
fn read_rejects(path: &Path) -> Vec<csv::StringRecord> {
    let mut rdr = csv::Reader::from_path(path).unwrap();
    assert_eq!(
        rdr.headers().unwrap().iter().collect::<Vec<_>>(),
        ["file", "line", "column", "value", "category", "reason", "raw"]
    );
    rdr.records()
        .map(|r| {
            let r = r.unwrap();
            assert!(r[0].ends_with(".csv"), "file column: {r:?}");
            csv::StringRecord::from(
                [1, 2, 3, 5, 6]
                    .iter()
                    .map(|&j| r[j].to_string())
                    .collect::<Vec<_>>(),
            )
        })
        .collect()
}

/// Foreign models: bad rows are rejected as for our models (--on-error fail / skip,
/// --rejects); empty feature cells go to the model as NaN, as pandas feeds them to ONNX
/// Runtime; rows the model cannot score (NaN) are rejected, never written with an empty score.
#[test]
fn foreign_models_reject_bad_rows_and_take_missing_values() {
    let fx = Fixture::new(1_000);
    let d = fx.dir.path();
    python(
        d,
        &py_script("train_foreign.py"),
        &[
            fx.train.to_str().unwrap(),
            d.to_str().unwrap(),
            FOREIGN_FEATURES,
        ],
    );
    let named = [
        "--features",
        FOREIGN_FEATURES,
        "--id-column",
        "declaration_id",
    ];
    let all_ids = file_ids(&fx.test, "declaration_id");

    // --- missing values: data row 1 has every feature empty, others one each
    let missing = fx.path("missing.csv");
    let empties = [
        (1usize, "value"),
        (1, "mass"),
        (1, "quantity"),
        (1, "tax_rate"),
        (10, "value"),
        (20, "mass"),
        (30, "quantity"),
        (40, "tax_rate"),
    ];
    corrupt(
        &fx.test,
        &missing,
        &empties
            .iter()
            .map(|(r, c)| (*r, *c, ""))
            .collect::<Vec<_>>(),
    );
    let lgbm = fx.path("lightgbm.onnx");
    let reference = fx.ort_reference(&lgbm, &missing, "declaration_id", FOREIGN_FEATURES);
    let complete = fx.ort_reference(&lgbm, &fx.test, "declaration_id", FOREIGN_FEATURES);
    assert!(
        [0usize, 9, 19, 29, 39]
            .iter()
            .any(|&i| reference[i].1 != complete[i].1),
        "the empty cells must change some score, or the test shows little"
    );
    for engine in ["native", "ort"] {
        let out = format!("missing_lightgbm_{engine}.csv");
        let mut args = named.to_vec();
        args.extend_from_slice(&["--engine", engine, "--quiet"]);
        fx.score(&lgbm, &missing, &out, &args);
        // every row is scored (nothing dropped), NaN where the cell was empty
        assert_close(
            &format!("lightgbm with missing values, --engine {engine}"),
            &read_scores(&fx.path(&out)),
            &reference,
            TOL,
        );
    }
    // scikit-learn's scaler + logistic regression gives NaN for a missing value (so says
    // ONNX Runtime in Python): such rows are rejected
    let sk = fx.path("sklearn.onnx");
    let reference = fx.ort_reference(&sk, &missing, "declaration_id", FOREIGN_FEATURES);
    let nan_rows: Vec<usize> = (0..reference.len())
        .filter(|&i| reference[i].1.is_nan())
        .collect();
    assert_eq!(nan_rows, [0, 9, 19, 29, 39], "ONNX Runtime (Python) scores");
    let err = cli_err(
        d,
        &[
            "score",
            "--model",
            sk.to_str().unwrap(),
            "--data",
            missing.to_str().unwrap(),
            "--out",
            "sk_fail.csv",
            "--features",
            FOREIGN_FEATURES,
        ],
    );
    assert!(
        err.contains("missing.csv")
            && err.contains("line 2,")
            && err.contains("\"value\"")
            && err.contains("NaN"),
        "unclear error: {err}"
    );
    assert!(
        !fx.path("sk_fail.csv").exists(),
        "no output is left after a failure"
    );
    for engine in ["native", "ort"] {
        let (out, rej) = (
            format!("sk_missing_{engine}.csv"),
            format!("sk_missing_{engine}.rejects.csv"),
        );
        let mut args = named.to_vec();
        args.extend_from_slice(&[
            "--engine",
            engine,
            "--on-error",
            "skip",
            "--rejects",
            &rej,
            "--quiet",
        ]);
        fx.score(&sk, &missing, &out, &args);
        let finite: Vec<(String, f64)> = reference
            .iter()
            .filter(|r| !r.1.is_nan())
            .cloned()
            .collect();
        assert_close(
            &format!("sklearn with missing values, --engine {engine}"),
            &read_scores(&fx.path(&out)),
            &finite,
            TOL,
        );
        let rejects = read_rejects(&fx.path(&rej));
        let lines: Vec<String> = nan_rows.iter().map(|i| (i + 2).to_string()).collect();
        assert_eq!(
            rejects.iter().map(|r| r[0].to_string()).collect::<Vec<_>>(),
            lines
        );
        for (r, col) in rejects
            .iter()
            .zip(["value", "value", "mass", "quantity", "tax_rate"])
        {
            assert_eq!((&r[1], &r[2]), (col, ""), "{r:?}");
            assert!(r[3].contains("NaN"), "{r:?}");
        }
    }

    // --- bad rows: one of each kind (data rows; the header is line 1)
    let bad = fx.path("bad.csv");
    let changes = [
        (3usize, "value", "abc"),
        (8, "mass", "NaN"),
        (12, "quantity", "1e39"),
        (15, "declaration_id", ""),
        (21, "declaration_id", all_ids[3].as_str()),
        // not a feature: no concern of the model
        (33, "hs_code", "XYZ"),
    ];
    corrupt(&fx.test, &bad, &changes);
    truncate_row(&bad, 25, 5);
    let dup_reason = "duplicate id (first seen on line 5)";
    // (data row, column, value, reason)
    let expected: [(usize, &str, &str, &str); 6] = [
        (3, "value", "abc", "not a number"),
        (8, "mass", "NaN", "NaN and infinite values are not accepted"),
        (12, "quantity", "1e39", "too large for a 32-bit float"),
        (
            15,
            "declaration_id",
            "",
            "empty (missing values are not allowed in this column)",
        ),
        (21, "declaration_id", all_ids[3].as_str(), dup_reason),
        (25, "", "", "expected 22 fields, found 5"),
    ];
    // with --on-error fail each kind alone stops the run with file, line, column and why
    for (row, column, value, reason) in expected {
        let one = fx.path(&format!("one_{row}.csv"));
        if row == 25 {
            std::fs::copy(&fx.test, &one).unwrap();
            truncate_row(&one, 25, 5);
        } else {
            let mut c = vec![(row, column, value)];
            if row == 21 {
                c.push((4, "declaration_id", all_ids[3].as_str()));
            }
            corrupt(&fx.test, &one, &c);
        }
        let err = cli_err(
            d,
            &[
                "score",
                "--model",
                lgbm.to_str().unwrap(),
                "--data",
                one.to_str().unwrap(),
                "--out",
                "one.csv",
                "--features",
                FOREIGN_FEATURES,
                "--id-column",
                "declaration_id",
            ],
        );
        let at = format!("one_{row}.csv: line {}", row + 1);
        assert!(
            err.contains(&at) && err.contains(reason),
            "row {row}: unclear error: {err}"
        );
        if !column.is_empty() {
            assert!(
                err.contains(&format!("column {column:?}"))
                    && err.contains(&format!("value {value:?}")),
                "row {row}: unclear error: {err}"
            );
        }
        assert!(
            !fx.path("one.csv").exists(),
            "no output is left after a failure"
        );
    }
    let err = cli_err(
        d,
        &[
            "score",
            "--model",
            lgbm.to_str().unwrap(),
            "--data",
            bad.to_str().unwrap(),
            "--out",
            "fail.csv",
            "--features",
            FOREIGN_FEATURES,
            "--id-column",
            "declaration_id",
        ],
    );
    assert!(
        err.contains("bad.csv: line 4, column \"value\": value \"abc\" rejected: not a number"),
        "the first bad row stops the run: {err}"
    );

    let bad_records: Vec<Vec<String>> = {
        let mut r = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(&bad)
            .unwrap();
        r.records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect()
    };
    let rejected_rows: Vec<usize> = expected.iter().map(|e| e.0).collect();
    for (stem, model) in [("lightgbm", &lgbm), ("sklearn", &sk)] {
        let reference = fx.ort_reference(model, &fx.test, "declaration_id", FOREIGN_FEATURES);
        let kept: Vec<(String, f64)> = reference
            .iter()
            .enumerate()
            .filter(|(i, _)| !rejected_rows.contains(&(i + 1)))
            .map(|(_, r)| r.clone())
            .collect();
        let (out, rej) = (
            format!("{stem}_skip.csv"),
            format!("{stem}_skip.rejects.csv"),
        );
        let mut args = named.to_vec();
        args.extend_from_slice(&[
            "--on-error",
            "skip",
            "--rejects",
            &rej,
            "--batch-rows",
            "10",
        ]);
        let log = fx.score(model, &bad, &out, &args);
        assert!(
            log.contains(&format!("scored {} declarations (6 rejected)", kept.len())),
            "{log}"
        );
        assert_close(
            &format!("{stem}: accepted rows"),
            &read_scores(&fx.path(&out)),
            &kept,
            TOL,
        );
        let rejects = read_rejects(&fx.path(&rej));
        assert_eq!(rejects.len(), expected.len(), "{rejects:?}");
        for (r, (row, column, value, reason)) in rejects.iter().zip(expected) {
            assert_eq!(
                (&r[0], &r[1], &r[2], &r[3]),
                ((row + 1).to_string().as_str(), column, value, reason)
            );
            assert_eq!(parse_csv_line(&r[4]), bad_records[row - 1], "{r:?}");
        }
        let n = python(
            d,
            &py_script("check_rejects.py"),
            &[fx.path(&rej).to_str().unwrap(), bad.to_str().unwrap()],
        );
        assert_eq!(n.trim(), "6");

        // --budget: the same rows, the same score text, the top 10 % selected
        let budgeted = format!("{stem}_skip_budget.csv");
        let mut args = named.to_vec();
        args.extend_from_slice(&[
            "--on-error",
            "skip",
            "--budget",
            "10%",
            "--batch-rows",
            "10",
            "--quiet",
        ]);
        fx.score(model, &bad, &budgeted, &args);
        assert_eq!(
            score_texts(&fx.path(&budgeted)),
            score_texts(&fx.path(&out)),
            "{stem}: --budget changes the rows or their scores"
        );
        let rows = read_scores(&fx.path(&budgeted));
        let want = expected_selection(&rows.iter().map(|r| r.score).collect::<Vec<_>>(), 10);
        assert_eq!(
            rows.iter().map(|r| r.selected.unwrap()).collect::<Vec<_>>(),
            want,
            "{stem}: selection"
        );
    }

    // --- default mapping: judged on many rows, not the first (whose cells are empty here)
    let first_empty = fx.path("first_empty.csv");
    let columns = [
        "declaration_id",
        "courier",
        "value",
        "mass",
        "quantity",
        "tax_rate",
        "fraud",
    ];
    select_columns(
        &fx.test,
        &first_empty,
        &columns,
        &[(1, "courier", ""), (1, "value", ""), (1, "fraud", "")],
    );
    // `fraud` has values (0/1) in the sample: numeric, so five columns for a model of four
    let m = lgbm.to_str().unwrap();
    let err = cli_err(
        d,
        &[
            "score",
            "--model",
            m,
            "--data",
            first_empty.to_str().unwrap(),
            "--out",
            "w.csv",
            "--id-column",
            "declaration_id",
        ],
    );
    assert!(
        err.contains("5 numeric columns (value, mass, quantity, tax_rate, fraud)")
            && err.contains("--features"),
        "{err}"
    );
    let no_label = fx.path("no_label.csv");
    select_columns(&first_empty, &no_label, &columns[..6], &[]);
    let log = fx.score(
        &lgbm,
        &no_label,
        "default.csv",
        &["--id-column", "declaration_id"],
    );
    let mapping = log
        .lines()
        .find(|l| l.contains("<-"))
        .unwrap_or_else(|| panic!("no mapping printed: {log}"));
    assert!(
        mapping.ends_with("<- value, mass, quantity, tax_rate"),
        "{mapping}"
    );
    let reference = fx.ort_reference(&lgbm, &no_label, "declaration_id", FOREIGN_FEATURES);
    assert_close(
        "default mapping, first row with empty cells",
        &read_scores(&fx.path("default.csv")),
        &reference,
        TOL,
    );
    // the wide generated file: the error lists the numeric columns pandas sees in the sample
    let err = cli_err(
        d,
        &[
            "score",
            "--model",
            m,
            "--data",
            fx.test.to_str().unwrap(),
            "--out",
            "w.csv",
            "--id-column",
            "declaration_id",
        ],
    );
    let numeric = python(
        d,
        &py_script("numeric_columns.py"),
        &[fx.test.to_str().unwrap(), "1000", "declaration_id"],
    );
    let numeric: Vec<&str> = numeric.trim().split(',').collect();
    assert!(
        !numeric.contains(&"courier") && numeric.contains(&"fraud"),
        "{numeric:?}"
    );
    let listed = format!("{} numeric columns ({})", numeric.len(), numeric.join(", "));
    assert!(err.contains(&listed), "expected {listed:?} in: {err}");
}

/// The rejects of a file of declarations under the immediate duplicate-id rule, computed here
/// from first principles for a foreign model fed `features`: (line, column, value, reason);
/// `nan_scores`: rows with an empty feature cell get no score (scikit-learn's scaler +
/// logistic regression), reason "NaN".
fn immediate_rule_rejects(
    path: &Path,
    features: &[&str],
    nan_scores: bool,
) -> Vec<(usize, String, String, String)> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .unwrap();
    let header: Vec<String> = rdr.headers().unwrap().iter().map(str::to_string).collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let mut first_line: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let (rec, line) = (rec.unwrap(), i + 2);
        if rec.len() != header.len() {
            out.push((
                line,
                String::new(),
                String::new(),
                format!("expected {} fields, found {}", header.len(), rec.len()),
            ));
            continue;
        }
        // (file column, column name, value, reason), sorted by file column
        let mut problems: Vec<(usize, String, String, String)> = Vec::new();
        for f in features {
            let v = &rec[col(f)];
            if !v.is_empty() && v.parse::<f64>().is_err() {
                problems.push((
                    col(f),
                    f.to_string(),
                    v.to_string(),
                    "not a number".to_string(),
                ));
            }
        }
        let id = rec[col("declaration_id")].to_string();
        match first_line.get(&id) {
            Some(first) => problems.push((
                col("declaration_id"),
                "declaration_id".into(),
                id.clone(),
                format!("duplicate id (first seen on line {first})"),
            )),
            None => {
                first_line.insert(id, line);
            }
        }
        problems.sort_by_key(|p| p.0);
        match problems.as_slice() {
            [] => {
                if let Some(f) = features
                    .iter()
                    .find(|f| nan_scores && rec[col(f)].is_empty())
                {
                    out.push((line, f.to_string(), String::new(), "NaN".to_string()));
                }
            }
            [(_, c, v, why)] => out.push((line, c.clone(), v.clone(), why.clone())),
            // one reject-file row per bad cell, in column order
            many => {
                for (_, c, v, why) in many {
                    out.push((line, c.clone(), v.clone(), why.clone()));
                }
            }
        }
    }
    out
}

/// Foreign models: duplicate ids are found after the last block, with bounded memory (sorted
/// runs on disk), yet the output, the reject file and the --on-error fail message are those
/// of the immediate rule computed from first principles: a row whose id appeared on an
/// earlier row (accepted or not) is rejected, naming that line; its other bad cells are listed
/// with it in column order; a duplicate is never a "no score" row; rejects in line order.
#[test]
fn foreign_duplicate_ids_found_at_the_end_follow_the_immediate_rule() {
    let fx = Fixture::new(700);
    let d = fx.dir.path();
    python(
        d,
        &py_script("train_foreign.py"),
        &[
            fx.train.to_str().unwrap(),
            d.to_str().unwrap(),
            FOREIGN_FEATURES,
        ],
    );
    let ids = file_ids(&fx.test, "declaration_id");
    let id = |row: usize| ids[row - 1].as_str();
    // (data row, column, value); data row r is on line r + 1
    let changes = [
        (21, "declaration_id", id(4)),
        (30, "declaration_id", id(4)),
        (40, "declaration_id", id(5)),
        (40, "value", "zz"),
        (50, "mass", ""),
        (60, "declaration_id", id(50)),
        (60, "quantity", ""),
        (80, "value", "q"),
        (81, "declaration_id", id(80)),
        (100, "declaration_id", id(2)),
        (300, "declaration_id", id(10)),
        (450, "declaration_id", id(290)),
        (699, "declaration_id", id(451)),
        (700, "declaration_id", id(699)),
    ];
    let bad = fx.path("dups.csv");
    corrupt(&fx.test, &bad, &changes);
    // a wrong number of fields: not checked further, its id is not seen
    truncate_row(&bad, 100, 5);
    let features: Vec<&str> = FOREIGN_FEATURES.split(',').collect();
    let records: Vec<Vec<String>> = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(&bad)
        .unwrap()
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    let touched: Vec<usize> = changes
        .iter()
        .filter(|c| c.1 != "declaration_id")
        .map(|c| c.0)
        .collect();
    let named = [
        "--features",
        FOREIGN_FEATURES,
        "--id-column",
        "declaration_id",
        "--on-error",
        "skip",
    ];

    for (stem, nan_scores) in [("lightgbm", false), ("sklearn", true)] {
        let model = fx.path(&format!("{stem}.onnx"));
        let want = immediate_rule_rejects(&bad, &features, nan_scores);
        assert!(
            want.iter().filter(|w| w.3.contains("duplicate id")).count() >= 8,
            "{want:?}"
        );
        let reference = fx.ort_reference(&model, &fx.test, "declaration_id", FOREIGN_FEATURES);
        let mut plain = Vec::new();
        for (batch, budget) in [("7", false), ("1000", false), ("7", true)] {
            let (out, rej) = (
                format!("{stem}_{batch}_{budget}.csv"),
                format!("{stem}_{batch}_{budget}.rejects.csv"),
            );
            let mut args = named.to_vec();
            args.extend_from_slice(&["--batch-rows", batch, "--rejects", &rej]);
            if budget {
                args.extend_from_slice(&["--budget", "10%"]);
            }
            let log = fx.score(&model, &bad, &out, &args);
            let rejects = read_rejects(&fx.path(&rej));
            let got: Vec<(usize, String, String, String)> = rejects
                .iter()
                .map(|r| {
                    (
                        r[0].parse().unwrap(),
                        r[1].to_string(),
                        r[2].to_string(),
                        r[3].to_string(),
                    )
                })
                .collect();
            assert_eq!(got.len(), want.len(), "{stem} batch {batch}: {got:#?}");
            for (g, w) in got.iter().zip(&want) {
                if w.3 == "NaN" {
                    assert!(
                        g.0 == w.0
                            && g.1 == w.1
                            && g.3.contains("NaN")
                            && !g.3.contains("duplicate"),
                        "{stem} batch {batch}: {g:?} vs {w:?}"
                    );
                } else {
                    assert_eq!(g, w, "{stem} batch {batch}");
                }
            }
            for r in &rejects {
                let line: usize = r[0].parse().unwrap();
                assert_eq!(
                    parse_csv_line(&r[4]),
                    records[line - 2],
                    "{stem}: raw cells of line {line}"
                );
            }
            // the output: every other row, in file order, scored as ONNX Runtime scores it
            let rows = read_scores(&fx.path(&out));
            // one reject line per bad cell, in line order: the rejected rows are its lines
            let mut rejected: Vec<usize> = want.iter().map(|w| w.0 - 1).collect();
            rejected.dedup();
            let kept: Vec<usize> = (1..=records.len())
                .filter(|r| !rejected.contains(r))
                .collect();
            assert_eq!(
                rows.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
                kept.iter()
                    .map(|&r| records[r - 1][0].clone())
                    .collect::<Vec<_>>()
            );
            assert!(
                log.contains(&format!(
                    "scored {} declarations ({} rejected)",
                    kept.len(),
                    rejected.len()
                )),
                "{log}"
            );
            let (ours, theirs): (Vec<Scored>, Vec<(String, f64)>) = rows
                .iter()
                .zip(&kept)
                .filter(|(_, r)| !touched.contains(r))
                .map(|(s, &r)| {
                    (
                        Scored {
                            id: s.id.clone(),
                            score: s.score,
                            percentile: s.percentile,
                            selected: s.selected,
                        },
                        (s.id.clone(), reference[r - 1].1),
                    )
                })
                .unzip();
            assert_close(&format!("{stem} batch {batch}"), &ours, &theirs, TOL);
            if budget {
                let want_sel =
                    expected_selection(&rows.iter().map(|r| r.score).collect::<Vec<_>>(), 10);
                assert_eq!(
                    rows.iter().map(|r| r.selected.unwrap()).collect::<Vec<_>>(),
                    want_sel,
                    "{stem}: selection"
                );
                assert_eq!(
                    score_texts(&fx.path(&out)),
                    plain,
                    "{stem}: --budget changes the rows or their scores"
                );
            } else {
                plain = score_texts(&fx.path(&out));
            }
        }
        // --on-error fail: the first bad row in line order, found although later rows fail too
        let m = model.to_str().unwrap();
        let err = cli_err(
            d,
            &[
                "score",
                "--model",
                m,
                "--data",
                bad.to_str().unwrap(),
                "--out",
                "fail.csv",
                "--features",
                FOREIGN_FEATURES,
                "--id-column",
                "declaration_id",
                "--batch-rows",
                "7",
            ],
        );
        let first = &want[0];
        assert_eq!(first.0, 22);
        assert!(err.contains(&format!("dups.csv: line 22, column \"declaration_id\": value \"{}\" rejected: duplicate id (first seen on line 5)", id(4))), "{err}");
        assert!(
            !fx.path("fail.csv").exists(),
            "no output is left after a failure"
        );
    }
    // a duplicate on the failing row itself is named with its other problems
    let one = fx.path("one.csv");
    corrupt(
        &fx.test,
        &one,
        &[(40, "declaration_id", id(5)), (40, "value", "zz")],
    );
    let lgbm = fx.path("lightgbm.onnx");
    let err = cli_err(
        d,
        &[
            "score",
            "--model",
            lgbm.to_str().unwrap(),
            "--data",
            one.to_str().unwrap(),
            "--out",
            "fail.csv",
            "--features",
            FOREIGN_FEATURES,
            "--id-column",
            "declaration_id",
        ],
    );
    let want = format!("one.csv: line 41, column \"declaration_id\": value \"{}\" rejected: duplicate id (first seen on line 6); column \"value\": value \"zz\" rejected: not a number", id(5));
    assert!(err.contains(&want), "{err}");
}

/// Our models: duplicate ids settled after the last chunk go into the reject file in line
/// order, and a duplicate on a row rejected for a bad cell is listed with that row's problems
/// (id column first, the schema's order), as the immediate rule would write them; the rows
/// are counted once. Expected rejects from first principles (the changes made to the file).
#[test]
fn our_late_duplicates_merge_into_the_rejects_in_line_order() {
    let fx = Fixture::new(400);
    let all_ids = file_ids(&fx.test, "declaration_id");
    let bad = fx.path("dups.csv");
    // data row r sits on line r + 1
    corrupt(
        &fx.test,
        &bad,
        &[
            (10, "value", "abc"),
            (20, "declaration_id", all_ids[2].as_str()),
            (30, "declaration_id", all_ids[3].as_str()),
            (30, "mass", "-5"),
            (35, "hs_code", "ABCDEF"),
        ],
    );
    fx.score(
        &fx.gbdt,
        &bad,
        "skip.csv",
        &[
            "--on-error",
            "skip",
            "--rejects",
            "rejects.csv",
            "--batch-rows",
            "7",
            "--quiet",
        ],
    );
    let rejects = read_rejects(&fx.path("rejects.csv"));
    let got: Vec<(String, String, String)> = rejects
        .iter()
        .map(|r| (r[0].to_string(), r[1].to_string(), r[3].to_string()))
        .collect();
    let dup = |first: usize| format!("duplicate id (first seen on line {first})");
    let want: Vec<(String, String, String)> = vec![
        ("11".into(), "value".into(), "not a number".into()),
        ("21".into(), "declaration_id".into(), dup(4)),
        ("31".into(), "declaration_id".into(), dup(5)),
        ("31".into(), "mass".into(), "below minimum 0".into()),
        ("36".into(), "hs_code".into(), "?".into()),
    ];
    assert_eq!(got.len(), want.len(), "{got:?}");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!((&g.0, &g.1), (&w.0, &w.1), "{got:?}");
        if w.2 != "?" {
            assert!(g.2.contains(&w.2), "{g:?} wants {w:?}");
        }
    }
    // 4 rows rejected (row 30 once), the rest scored
    let accepted = read_scores(&fx.path("skip.csv"));
    assert_eq!(accepted.len(), all_ids.len() - 4);
}

/// Foreign models with one named [N, 1] input per column (skl2onnx: a scikit-learn Pipeline
/// ColumnTransformer(OneHotEncoder on string columns + StandardScaler on float columns) ->
/// LogisticRegression, and LightGBM behind a ColumnTransformer): each input is fed from the
/// column of its name (or --map input=column), typed as declared; scores equal ONNX Runtime
/// in Python (pandas feeding the same columns) within 1e-6; a non-numeric cell in a float
/// input is a reject naming line, column and value; a missing column is an error naming it.
#[test]
fn foreign_models_with_named_inputs() {
    let fx = Fixture::new(1_500);
    let d = fx.dir.path();
    python(
        d,
        &py_script("train_named.py"),
        &[
            fx.train.to_str().unwrap(),
            d.to_str().unwrap(),
            "origin_country,transport_mode,office",
            "value,mass,quantity",
        ],
    );
    // the same file with origin_country renamed
    let renamed = fx.path("renamed.csv");
    let text = std::fs::read_to_string(&fx.test).unwrap();
    let (head, body) = text.split_once('\n').unwrap();
    let head = head
        .split(',')
        .map(|c| if c == "origin_country" { "country" } else { c })
        .collect::<Vec<_>>()
        .join(",");
    std::fs::write(&renamed, format!("{head}\n{body}")).unwrap();

    for stem in ["pipeline", "lightgbm_named"] {
        let model = fx.path(&format!("{stem}.onnx"));
        let reference = fx.ort_reference(&model, &fx.test, "declaration_id", "");
        let distinct: std::collections::BTreeSet<u64> =
            reference.iter().map(|r| r.1.to_bits()).collect();
        assert!(
            distinct.len() > 20,
            "{stem}: only {} distinct scores",
            distinct.len()
        );
        let out = format!("{stem}.csv");
        let log = fx.score(&model, &fx.test, &out, &["--id-column", "declaration_id"]);
        assert!(
            log.contains("input \"value\" (float) <- value"),
            "{stem}: the mapping is printed: {log}"
        );
        let worst = assert_close(stem, &read_scores(&fx.path(&out)), &reference, TOL);
        eprintln!("{stem}: max |diff| vs ONNX Runtime (Python) {worst:e}");
    }

    let model = fx.path("pipeline.onnx");
    let m = model.to_str().unwrap();
    assert!(fx
        .score(
            &model,
            &fx.test,
            "p.csv",
            &["--id-column", "declaration_id"]
        )
        .contains("input \"origin_country\" (string) <- origin_country"));
    // --map feeds an input from a column of another name: the same scores
    fx.score(
        &model,
        &renamed,
        "mapped.csv",
        &[
            "--id-column",
            "declaration_id",
            "--map",
            "origin_country=country",
        ],
    );
    assert_eq!(
        std::fs::read_to_string(fx.path("mapped.csv")).unwrap(),
        std::fs::read_to_string(fx.path("p.csv")).unwrap()
    );
    // without it the missing column is an error naming it
    let err = cli_err(
        d,
        &[
            "score",
            "--model",
            m,
            "--data",
            renamed.to_str().unwrap(),
            "--out",
            "x.csv",
            "--id-column",
            "declaration_id",
        ],
    );
    assert!(
        err.contains("\"origin_country\"") && err.contains("--map"),
        "unclear error for a missing column: {err}"
    );
    // a text cell in a float input: a reject naming line, column and value
    let bad = fx.path("bad.csv");
    corrupt(&fx.test, &bad, &[(5, "mass", "abc")]);
    fx.score(
        &model,
        &bad,
        "skip.csv",
        &[
            "--id-column",
            "declaration_id",
            "--on-error",
            "skip",
            "--rejects",
            "rej.csv",
            "--quiet",
        ],
    );
    let rejects = read_rejects(&fx.path("rej.csv"));
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert_eq!(
        (&rejects[0][0], &rejects[0][1], &rejects[0][2]),
        ("6", "mass", "abc")
    );
    assert_eq!(rejects[0][3].to_string(), "not a number");
    assert_eq!(
        read_scores(&fx.path("skip.csv")).len(),
        file_ids(&fx.test, "declaration_id").len() - 1
    );
}

/// `score` / `evaluate` with a model from `train --objective revenue`: the output column is
/// `expected_revenue` (ONNX Runtime in Python agrees within 1e-5 relative with every engine),
/// `--budget` selects the top k by expected revenue, and `evaluate` ranks by it too (its
/// revenue caught at 5 % recomputed here from the scored file and the data's revenue).
#[test]
fn revenue_model_writes_expected_revenue_like_onnx_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let train = generate(d, "train.csv", 20_000, 11);
    let test = generate(d, "test.csv", 3_000, 12);
    cli_ok(
        d,
        &[
            "train",
            "--data",
            train.to_str().unwrap(),
            "--objective",
            "revenue",
            "--out",
            "revenue",
            "--trees",
            "25",
            "--leaves",
            "15",
            "--early-stopping",
            "0",
            "--threads",
            "2",
            "--quiet",
        ],
    );
    let model = d.join("revenue.onnx");
    let ort_out = d.join("ort_revenue.csv");
    python(
        d,
        &py_script("ort_score.py"),
        &[
            model.to_str().unwrap(),
            test.to_str().unwrap(),
            ort_out.to_str().unwrap(),
            "declaration_id",
            "",
        ],
    );
    let reference = read_reference(&ort_out);
    let distinct: std::collections::BTreeSet<u64> =
        reference.iter().map(|r| r.1.to_bits()).collect();
    assert!(distinct.len() > 50, "only {} distinct", distinct.len());
    assert!(
        reference.iter().any(|r| r.1 > 1.0),
        "amounts, not probabilities"
    );
    // (id, expected revenue, selected) per row
    type Rows = Vec<(String, f64, Option<bool>)>;
    let read = |name: &str| -> (Vec<String>, Rows) {
        let mut rdr = csv::Reader::from_path(d.join(name)).unwrap();
        let header = rdr.headers().unwrap().iter().map(str::to_string).collect();
        let rows = rdr
            .records()
            .map(|r| {
                let r = r.unwrap();
                (
                    r[0].to_string(),
                    r[1].parse().unwrap(),
                    r.get(3).map(|s| s == "true"),
                )
            })
            .collect();
        (header, rows)
    };
    for engine in ["auto", "native", "ort"] {
        let name = format!("rev_{engine}.csv");
        let args = [
            "score",
            "--model",
            model.to_str().unwrap(),
            "--data",
            test.to_str().unwrap(),
            "--out",
            &name,
            "--engine",
            engine,
            "--quiet",
        ];
        cli_ok(d, &args);
        let (header, rows) = read(&name);
        assert_eq!(header, ["id", "expected_revenue", "percentile"], "{engine}");
        assert_eq!(rows.len(), reference.len());
        let mut worst = 0.0f64;
        for ((id, v, _), (rid, r)) in rows.iter().zip(&reference) {
            assert_eq!(id, rid);
            let rel = (v - r).abs() / r.abs().max(1e-3);
            assert!(rel <= 1e-5, "{engine}: {id}: ours {v}, ONNX Runtime {r}");
            worst = worst.max(rel);
        }
        eprintln!("revenue model, --engine {engine} vs ONNX Runtime: max relative {worst:e}");
    }
    cli_ok(
        d,
        &[
            "score",
            "--model",
            model.to_str().unwrap(),
            "--data",
            test.to_str().unwrap(),
            "--out",
            "rev_budget.csv",
            "--budget",
            "5%",
            "--quiet",
        ],
    );
    let (header, rows) = read("rev_budget.csv");
    assert_eq!(header, ["id", "expected_revenue", "percentile", "selected"]);
    let scores: Vec<f64> = rows.iter().map(|r| r.1).collect();
    let selected: Vec<bool> = rows.iter().map(|r| r.2.unwrap()).collect();
    assert_eq!(selected, expected_selection(&scores, 5));

    let json = d.join("e.json");
    cli_ok(
        d,
        &[
            "evaluate",
            "--model",
            model.to_str().unwrap(),
            "--data",
            test.to_str().unwrap(),
            "--report",
            "e.html",
            "--json",
            json.to_str().unwrap(),
            "--quiet",
        ],
    );
    let rep: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let inspected = rep["estimators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["estimator"] == "inspected")
        .unwrap();
    // amounts are not probabilities: no log loss or Brier score
    assert!(inspected["log_loss"].is_null() && inspected["brier"].is_null());
    let at5 = inspected["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["budget"]["rate"] == 0.05)
        .unwrap();
    let share = at5["revenue_share"]["value"].as_f64().unwrap();
    // first principles: the revenue recovered (data column) of the top 5 % by expected
    // revenue (the scored file, ties in file order) over all revenue recovered
    let mut rdr = csv::Reader::from_path(&test).unwrap();
    let at = rdr
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "revenue_recovered")
        .unwrap();
    let revenue: Vec<f64> = rdr
        .records()
        .map(|r| r.unwrap()[at].parse().unwrap_or(0.0))
        .collect();
    let total: f64 = revenue.iter().sum();
    let caught: f64 = revenue
        .iter()
        .zip(&selected)
        .filter(|(_, s)| **s)
        .map(|(r, _)| r)
        .sum();
    // (cr-data reads amounts as f32)
    assert!(
        (share - caught / total).abs() < 1e-6,
        "evaluate: revenue caught at 5 % {share}, recomputed {}",
        caught / total
    );
    eprintln!("revenue model: revenue caught at 5 % of the test file: {share:.4}");
}
