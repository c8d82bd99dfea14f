//! JSON records (the HTTP service path): an array of objects keyed by column name.

use serde_json::Value;

use crate::batch::Batch;
use crate::columns::ColumnMap;
use crate::domain::Domains;
use crate::error::DataError;
use crate::ids::{DuplicateCheck, IdCheck};
use crate::pseudonym::PseudonymKey;
use crate::reject::{Problem, Reject};
use crate::schema::Schema;
use crate::validate::{Cell, Checker, Row, Rules};

struct JsonRow<'a> {
    cells: Vec<Cell<'a>>,
    record: &'a Value,
}

impl Row for JsonRow<'_> {
    fn cell(&self, idx: usize) -> Cell<'_> {
        self.cells.get(idx).copied().unwrap_or(Cell::Absent)
    }
    fn raw(&self) -> Vec<String> {
        vec![self.record.to_string()]
    }
}

fn to_cell(v: &Value) -> Cell<'_> {
    match v {
        Value::Null => Cell::Null,
        Value::Bool(b) => Cell::Bool(*b),
        Value::String(s) => Cell::Str(s),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Cell::Int(i)
            } else if let Some(u) = n.as_u64() {
                Cell::UInt(u)
            } else {
                n.as_f64().map_or(Cell::Nested(v), Cell::Float)
            }
        }
        Value::Array(_) | Value::Object(_) => Cell::Nested(v),
    }
}

/// Validate JSON records (objects keyed by the schema's column names) into a batch.
///
/// Same rules as the file readers, per record: numbers or strings are accepted for numeric,
/// HS code and id fields; `null` is an empty cell. A record that is not an object, has a field
/// the schema does not know (and does not ignore), lacks a scoring field, or has a bad value
/// is rejected whole. Label, revenue and inspection fields are optional. Ids must be unique
/// within `records`. `Reject::line` and `Batch::lines` are 1-based indexes in `records`;
/// `Reject::raw` holds the record as JSON text.
pub fn batch_from_json(schema: &Schema, records: &[Value], source: &str) -> (Batch, Vec<Reject>) {
    match batch_from_json_keyed(schema, records, source, None) {
        Ok(r) => r,
        // Only a pseudonymising schema without a key fails: every record is rejected.
        Err(e) => {
            let p = Problem::new(None, None, "no pseudonym key", e.message.clone());
            let rejects = records
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    Reject::from_problems(i as u64 + 1, vec![p.clone()], vec![r.to_string()])
                })
                .collect();
            (Batch::empty(schema, source), rejects)
        }
    }
}

/// [`batch_from_json`] with the pseudonym key a pseudonymising schema needs (an error
/// without it).
pub fn batch_from_json_keyed(
    schema: &Schema,
    records: &[Value],
    source: &str,
    key: Option<&PseudonymKey>,
) -> Result<(Batch, Vec<Reject>), DataError> {
    let map = ColumnMap::for_schema(schema);
    let names = map.names.clone();
    let rules = Rules {
        schema: schema.clone(),
        map,
        domains: Domains::new(schema, key, false)?,
    };
    let mut checker = Checker::new(schema);
    let mut ids = IdCheck::new(&DuplicateCheck::Immediate, source);
    let mut batch = Batch::empty(schema, source);
    batch.resize_rows(records.len());
    let mut rejects = Vec::new();
    let mut kept = 0usize;
    {
        let mut regions = batch.slot_regions(&[records.len()]);
        if let Some(slots) = regions.first_mut() {
            for (i, record) in records.iter().enumerate() {
                let line = i as u64 + 1;
                let Some(obj) = record.as_object() else {
                    let p =
                        Problem::new(None, None, "not an object", "record is not a JSON object");
                    rejects.push(Reject::from_problems(
                        line,
                        vec![p],
                        vec![record.to_string()],
                    ));
                    continue;
                };
                let mut cells = vec![Cell::Absent; names.len()];
                let mut problems = Vec::new();
                for (key, value) in obj {
                    match names.iter().position(|n| n == key) {
                        Some(idx) => cells[idx] = to_cell(value),
                        None if schema.ignore.iter().any(|n| n == key) => {}
                        None => problems.push(Problem::new(
                            Some(key),
                            None,
                            "unknown field",
                            "field not in the schema",
                        )),
                    }
                }
                let row = JsonRow { cells, record };
                if let Some(key) = checker.check(&rules, &row, line, slots, kept) {
                    if let Some(first) = ids.first_seen(key, line) {
                        checker
                            .problems
                            .insert(0, rules.duplicate(&slots.ids[kept], first));
                    }
                }
                if problems.is_empty() && checker.problems.is_empty() {
                    kept += 1;
                } else {
                    // Structural problems first, then the bad cells.
                    problems.append(&mut checker.problems);
                    rejects.push(Reject::from_problems(line, problems, row.raw()));
                }
            }
        }
    }
    batch.truncate_rows(kept);
    Ok((batch, rejects))
}
