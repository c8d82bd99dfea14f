//! Per-period and per-segment breakdowns: n, labelled, positives, AUC and precision at the
//! headline budget, each group evaluated on its own rows (top-k within the group, k from the
//! group's size) with the report's primary estimator.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::budget::Budget;
use crate::core;
use crate::estimate::{auc_estimate, budget_estimates, Estimate, Prepared};
use crate::rows::{Estimator, Period};

/// One group (a month, an office, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRow {
    pub key: String,
    /// All rows in the group.
    pub n: usize,
    /// Labelled rows in the group.
    pub labelled: usize,
    /// Labelled positive rows in the group.
    pub positives: usize,
    /// Sample rows of the estimator in the group.
    pub n_sample: usize,
    pub roc_auc: Option<Estimate>,
    /// Budget rows within the group.
    pub k: usize,
    pub precision: Option<Estimate>,
}

/// Groups with fewer labelled positives, or fewer labelled negatives, than this show their
/// estimates without an interval: a normal or DeLong interval from a handful of labels can
/// collapse to a point (`1.000 [1.000, 1.000]` on a group with 3 positives) and claims a
/// certainty the data does not have.
pub const MIN_LABELS_FOR_INTERVAL: usize = 10;

impl GroupRow {
    /// Whether the group has enough labels of each class for its intervals to be shown
    /// ([`MIN_LABELS_FOR_INTERVAL`]).
    pub fn interval_shown(&self) -> bool {
        self.positives >= MIN_LABELS_FOR_INTERVAL
            && self.labelled.saturating_sub(self.positives) >= MIN_LABELS_FOR_INTERVAL
    }
}

/// All groups of one key column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Breakdown {
    /// "month", "period" or the segment column name.
    pub name: String,
    pub estimator: Estimator,
    pub budget: Budget,
    pub groups: Vec<GroupRow>,
}

/// Key given to the rows of groups merged because there were more than `max_groups`.
pub const OTHER_GROUP: &str = "(other)";

/// Calendar (year, month) of a day count since 1970-01-01 (proleptic Gregorian; Howard
/// Hinnant's `civil_from_days`).
pub fn civil_year_month(days: i32) -> (i32, u32) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (y as i32, m as u32)
}

/// `YYYY-MM` of a day count since 1970-01-01.
pub fn month_key(days: i32) -> String {
    let (y, m) = civil_year_month(days);
    format!("{y:04}-{m:02}")
}

/// Group ids per row and the sorted group keys. `cap`: keep the `cap` largest groups (ties by
/// key), merge the rest into [`OTHER_GROUP`].
pub(crate) fn assign(keys: &[String], cap: Option<usize>) -> (Vec<u32>, Vec<String>) {
    let mut ids: BTreeMap<&str, u32> = BTreeMap::new();
    for k in keys {
        let next = ids.len() as u32;
        ids.entry(k.as_str()).or_insert(next);
    }
    // first-seen ids -> sorted-key ids
    let sorted: Vec<&str> = ids.keys().copied().collect();
    let mut remap = vec![0u32; ids.len()];
    for (pos, k) in sorted.iter().enumerate() {
        remap[ids[k] as usize] = pos as u32;
    }
    let mut gid: Vec<u32> = keys
        .iter()
        .map(|k| remap[ids[k.as_str()] as usize])
        .collect();
    let mut names: Vec<String> = sorted.iter().map(|s| s.to_string()).collect();
    if let Some(cap) = cap {
        if names.len() > cap {
            let mut sizes = vec![0usize; names.len()];
            for &g in &gid {
                sizes[g as usize] += 1;
            }
            let mut by_size: Vec<usize> = (0..names.len()).collect();
            by_size.sort_by(|&a, &b| sizes[b].cmp(&sizes[a]).then(a.cmp(&b)));
            let mut keep: Vec<usize> = by_size[..cap].to_vec();
            keep.sort_unstable();
            let mut new_id = vec![cap as u32; names.len()];
            for (pos, &g) in keep.iter().enumerate() {
                new_id[g] = pos as u32;
            }
            for g in gid.iter_mut() {
                *g = new_id[*g as usize];
            }
            let mut kept: Vec<String> = keep.iter().map(|&g| names[g].clone()).collect();
            kept.push(OTHER_GROUP.to_string());
            names = kept;
        }
    }
    (gid, names)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn breakdown(
    p: &Prepared,
    name: &str,
    gid: &[u32],
    names: Vec<String>,
    order: &[u32],
    est: Estimator,
    budget: Budget,
    confidence: f64,
) -> Breakdown {
    let mut orders: Vec<Vec<u32>> = vec![Vec::new(); names.len()];
    for &r in order {
        orders[gid[r as usize] as usize].push(r);
    }
    let w = p.weights(est);
    let z = crate::stats::z_for(confidence);
    let groups = names
        .into_iter()
        .zip(orders)
        .map(|(key, o)| {
            let labelled = o
                .iter()
                .filter(|&&i| p.rows.label[i as usize].is_some())
                .count();
            let positives = o
                .iter()
                .filter(|&&i| p.rows.label[i as usize] == Some(true))
                .count();
            let n_sample = o.iter().filter(|&&i| w[i as usize] > 0.0).count();
            let pl = core::placements(&o, p.scores, |i| p.y[i], |i| w[i]);
            let roc_auc = auc_estimate(est, &pl, &w, z, confidence);
            let b = budget_estimates(p, est, &w, &o, &[budget], z, confidence);
            let (k, precision) = b
                .into_iter()
                .next()
                .map_or((0, None), |b| (b.k, b.precision));
            GroupRow {
                key,
                n: o.len(),
                labelled,
                positives,
                n_sample,
                roc_auc,
                k,
                precision,
            }
        })
        .collect();
    Breakdown {
        name: name.to_string(),
        estimator: est,
        budget,
        groups,
    }
}

/// Group ids and sorted keys of a period column: calendar months (`YYYY-MM`, computed per
/// row as an integer, formatted once per group) or string keys.
pub(crate) fn period_groups(p: &Period) -> (String, Vec<u32>, Vec<String>) {
    match p {
        Period::DaysSinceEpoch(d) => {
            let idx: Vec<i32> = d
                .iter()
                .map(|&x| {
                    let (y, m) = civil_year_month(x);
                    y * 12 + m as i32 - 1
                })
                .collect();
            let mut ids: BTreeMap<i32, u32> = idx.iter().map(|&m| (m, 0)).collect();
            for (pos, v) in ids.values_mut().enumerate() {
                *v = pos as u32;
            }
            let gid = idx.iter().map(|m| ids[m]).collect();
            let names = ids
                .keys()
                .map(|&m| format!("{:04}-{:02}", m.div_euclid(12), m.rem_euclid(12) + 1))
                .collect();
            ("month".into(), gid, names)
        }
        Period::Key(k) => {
            let (gid, names) = assign(k, None);
            ("period".into(), gid, names)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_from_days() {
        assert_eq!(month_key(0), "1970-01");
        assert_eq!(month_key(31), "1970-02");
        assert_eq!(month_key(-1), "1969-12");
        // 2024-02-29 is day 19782; 2024-03-01 is 19783
        assert_eq!(month_key(19782), "2024-02");
        assert_eq!(month_key(19783), "2024-03");
        assert_eq!(month_key(10957), "2000-01"); // 2000-01-01
        let (name, gid, names) =
            period_groups(&Period::DaysSinceEpoch(vec![19783, -1, 19782, 19783]));
        assert_eq!(name, "month");
        assert_eq!(names, vec!["1969-12", "2024-02", "2024-03"]);
        assert_eq!(gid, vec![2, 0, 1, 2]);
    }

    #[test]
    fn cap_merges_small_groups_deterministically() {
        let keys: Vec<String> = ["b", "a", "c", "a", "b", "d", "a"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (gid, names) = assign(&keys, Some(2));
        assert_eq!(names, vec!["a", "b", OTHER_GROUP]);
        assert_eq!(gid, vec![1, 0, 2, 0, 1, 2, 0]);
    }
}
