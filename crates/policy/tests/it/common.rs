//! Shared fixtures: the synthetic schema, small batches, policies written to temp dirs.

use std::path::{Path, PathBuf};

use cr_data::{Batch, Schema};
use cr_policy::{Policy, PolicyError};

pub fn schema() -> Schema {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/schemas/synthetic.toml");
    Schema::from_path(&p).expect("synthetic schema")
}

/// A minimal valid policy head (channels, capacity, random) to which rules are appended.
pub const HEAD: &str = r#"channels = ["green", "yellow", "red"]

[capacity]
share = 0.1
channel = "red"

[random]
floor = 0.05
channel = "red"
"#;

/// A temp dir with the files `(name, text)`; returns the dir and the policy path.
pub fn write(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        let p = dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write");
    }
    let p = dir.path().join("policy.toml");
    (dir, p)
}

/// Load `policy.toml` = `text` (plus other files) against the synthetic schema.
pub fn load(text: &str, others: &[(&str, &str)]) -> Result<Policy, PolicyError> {
    let mut files = vec![("policy.toml", text)];
    files.extend_from_slice(others);
    let (_dir, p) = write(&files);
    Policy::load(&p, &schema())
}

/// One synthetic declaration.
#[derive(Clone, Debug)]
pub struct Row {
    pub id: String,
    pub date: i32,
    pub hs: u64,
    /// office, importer, declarant, seller, courier, origin, departure, mode, tax type, pref
    pub cat: [String; 10],
    /// value, mass, quantity, tax_rate
    pub num: [f32; 4],
}

pub fn row(id: &str, office: &str, date: i32, hs: u64) -> Row {
    Row {
        id: id.into(),
        date,
        hs,
        cat: [
            office.into(),
            "IMP000001".into(),
            "DCL0001".into(),
            "SEL000001".into(),
            "".into(),
            "CN".into(),
            "CN".into(),
            "SEA".into(),
            "STD".into(),
            "N".into(),
        ],
        num: [1000.0, 100.0, 10.0, 5.0],
    }
}

pub fn batch(schema: &Schema, rows: &[Row]) -> Batch {
    let mut b = Batch::with_capacity(schema, "test", rows.len());
    for (i, r) in rows.iter().enumerate() {
        b.lines.push(i as u64 + 2);
        b.ids.push(r.id.clone());
        b.dates.push(r.date);
        b.hs.push(r.hs);
        for (c, v) in r.cat.iter().enumerate() {
            b.categorical[c].push(v.clone());
        }
        for (c, v) in r.num.iter().enumerate() {
            b.numeric[c].push(*v);
        }
        b.label.push(None);
        b.revenue.push(None);
        b.inspected.push(false);
        b.selection.push(None);
        b.propensity.push(None);
    }
    b.check_lengths().expect("consistent batch");
    b
}

/// Days since 1970-01-01.
pub fn day(s: &str) -> i32 {
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
    (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}
