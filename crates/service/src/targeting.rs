//! Real-time targeting: the champion's policy applied to one declaration at a time.
//!
//! A model version may carry a targeting policy (`models register --policy P.toml`: the
//! registry stores the policy text, its sha256, the file's path for its watch lists, and a
//! random 256-bit draw key made at registration). For each declaration `/v1/score` decides,
//! in this order:
//!
//! 1. **Mandatory rules**: one fires → stratum `rule`, the most intrusive channel of the rules
//!    that fired, propensity 1 (as bulk `select` does).
//! 2. **Capacity as a score threshold**: the office's capacity share `c` becomes the score at
//!    percentile `100·(1 − c)` of the model's reference score distribution
//!    ([`cr_model::Reference::score_at`], the one percentile rule). An advisory rule that
//!    fires takes a capacity slot first (stratum `rule`, its channel, as in bulk, where
//!    advisory hits rank ahead of the model); otherwise a score at or above the threshold is
//!    stratum `model` with the capacity's channel. Propensity 1: given the declaration, the
//!    decision is deterministic. A capacity given as a `count` per office and day cannot be
//!    turned into a threshold without the day's volume, so such a policy is refused at
//!    registration for the service.
//! 3. **Random floor**: an independent Bernoulli draw with a logged probability `p`:
//!    `p = rate` for `weight = "uniform"`; for `weight = "score"`,
//!    `p = min(1, floor + (rate − floor)·s / m)` with `m` the mean of the reference
//!    distribution, so `p >= floor` always and its expectation is about `rate`. Drawn →
//!    stratum `random` (the random channel), else `none` (the first channel); both log `p` as
//!    the propensity, as bulk does for its random stratum.
//!
//! **The draw** is `u < p` with `u = ⌊h / 2¹¹⌋ / 2⁵³ ∈ [0, 1)`, where `h` is the first 8 bytes
//! (big-endian) of HMAC-SHA256(draw key, declaration id): reproducible and auditable (anyone
//! with the registry can recompute every draw from the audit trail), the same declaration
//! always gets the same draw (resubmitting does not re-roll the dice), and traders, who do not
//! know the key, cannot choose ids that escape it. Python:
//! `int.from_bytes(hmac.new(key.encode(), id.encode(), sha256).digest()[:8], "big") >> 11) / 2**53`.
//!
//! **Why not a fixed-size design as in bulk `select`**: a fixed-size design (exactly
//! `ceil(rate·m)` of the `m` declarations left) needs `m` and every weight before the first
//! draw — the inclusion probability of one declaration depends on all the others of the day.
//! A service decides each declaration when it arrives and cannot wait for the day to end or
//! revise an answer already given, so the only design with a known, per-declaration
//! probability is an independent draw: the count is random (binomial), each probability
//! exact.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cr_data::{Batch, PseudonymKey, Schema};
use cr_model::{Budget, Reference};
use cr_policy::{Policy, Stratum, Weight};

use crate::error::{Result, ServiceError};

/// The policy of a model version as stored in the registry.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredPolicy {
    /// The policy's name (its `name`, else the file stem).
    pub name: String,
    /// Path of the policy file at registration (its watch lists are read relative to it).
    pub path: PathBuf,
    /// Lowercase hex sha256 of `text`.
    pub sha256: String,
    /// The policy file's text.
    #[serde(skip)]
    pub text: String,
    /// Hex HMAC key of the random draws (secret: never served).
    #[serde(skip)]
    pub draw_key: String,
}

/// A policy compiled for one model: rules, per-office score thresholds, random floor.
#[derive(Debug)]
pub struct Targeting {
    pub policy: Policy,
    pub sha256: String,
    default_threshold: f64,
    office_thresholds: BTreeMap<String, f64>,
    /// Mean of the reference scores (`weight = "score"`).
    mean_reference: f64,
    key: PseudonymKey,
}

/// One declaration's targeting decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Targeted {
    pub stratum: Stratum,
    /// Index into the policy's channels.
    pub channel: u8,
    /// Probability that this declaration is selected under the policy.
    pub propensity: f64,
    /// The rules that fired, as indices into the policy's rules (policy order).
    pub rules: Vec<u16>,
}

/// The score threshold a capacity share targets: percentile `100·(1 − share)` of the reference.
fn threshold(reference: &Reference, budget: Budget, policy: &Path) -> Result<f64> {
    match budget {
        Budget::Rate(share) => reference
            .score_at(100.0 * (1.0 - share))
            .ok_or_else(|| ServiceError::Invalid(format!("capacity share {share} out of range"))),
        Budget::Count(c) => Err(ServiceError::Invalid(format!(
            "policy {}: the service turns capacity into a score threshold from a share of the \
             declarations; a count ({c} per office and day) needs the day's volume, which a \
             service deciding one declaration at a time does not know. Give `share` for the \
             service",
            policy.display()
        ))),
    }
}

/// A new random draw key: 32 random bytes from the OS-seeded generator, as hex.
pub fn new_draw_key() -> String {
    use rand::RngCore;
    let mut k = [0u8; 32];
    rand::rng().fill_bytes(&mut k);
    hex::encode(k)
}

/// `u ∈ [0, 1)` of declaration `id` under `key` (see the module doc).
pub fn draw(key: &PseudonymKey, id: &str) -> f64 {
    let hex16 = key.pseudonym(id);
    let h = u64::from_str_radix(&hex16, 16).unwrap_or(0);
    (h >> 11) as f64 / (1u64 << 53) as f64
}

impl Targeting {
    /// Compile stored policy text against the model's schema and reference distribution.
    pub fn compile(
        stored: &StoredPolicy,
        schema: &Schema,
        reference: Option<&Reference>,
    ) -> Result<Targeting> {
        let policy = Policy::parse(&stored.text, &stored.path, schema).map_err(|e| {
            ServiceError::Policy {
                path: stored.path.clone(),
                source: Box::new(e),
            }
        })?;
        let reference = reference.ok_or_else(|| {
            ServiceError::Invalid(format!(
                "policy {}: the model carries no reference score distribution, so its capacity \
                 cannot become a score threshold",
                stored.path.display()
            ))
        })?;
        let default_threshold = threshold(reference, policy.capacity.default, &stored.path)?;
        let mut office_thresholds = BTreeMap::new();
        for (office, b) in &policy.capacity.offices {
            office_thresholds.insert(office.clone(), threshold(reference, *b, &stored.path)?);
        }
        let pts = reference.as_slice();
        let mean_reference = pts.iter().sum::<f64>() / pts.len() as f64;
        let key = PseudonymKey::from_text(&stored.draw_key, "the policy's draw key")
            .map_err(|e| ServiceError::Invalid(e.message))?;
        Ok(Targeting {
            policy,
            sha256: stored.sha256.clone(),
            default_threshold,
            office_thresholds,
            mean_reference,
            key,
        })
    }

    /// The score threshold of `office`.
    pub fn threshold(&self, office: &str) -> f64 {
        self.office_thresholds
            .get(office)
            .copied()
            .unwrap_or(self.default_threshold)
    }

    /// The random-floor probability of a declaration scoring `score`.
    pub fn random_p(&self, score: f64) -> f64 {
        let r = &self.policy.random;
        match r.weight {
            Weight::Uniform => r.rate,
            Weight::Score => {
                if self.mean_reference > 0.0 {
                    (r.floor + (r.rate - r.floor) * score.max(0.0) / self.mean_reference).min(1.0)
                } else {
                    r.rate
                }
            }
        }
    }

    /// Decide every row of `batch` (scored `scores`). A NaN score is an error (it cannot be
    /// compared with the threshold).
    pub fn decide(&self, batch: &Batch, scores: &[f32]) -> Result<Vec<Targeted>> {
        if scores.len() != batch.len() {
            return Err(ServiceError::Internal(format!(
                "{} scores for {} declarations",
                scores.len(),
                batch.len()
            )));
        }
        let fired = self.policy.fire(batch, scores);
        let mut out = Vec::with_capacity(scores.len());
        for (i, &s) in scores.iter().enumerate() {
            if s.is_nan() {
                return Err(ServiceError::Internal(format!(
                    "declaration {}: the model's score is NaN",
                    batch.ids[i]
                )));
            }
            let rules: Vec<u16> = fired.row(i).to_vec();
            let rule_channel = rules
                .iter()
                .map(|&r| self.policy.rules[usize::from(r)].channel)
                .max()
                .unwrap_or(0);
            let mandatory = rules
                .iter()
                .any(|&r| self.policy.rules[usize::from(r)].mandatory);
            let office = self
                .policy
                .office_column
                .map_or("", |c| batch.categorical[c][i].as_str());
            let score = f64::from(s);
            let t = if mandatory || !rules.is_empty() {
                Targeted {
                    stratum: Stratum::Rule,
                    channel: rule_channel,
                    propensity: 1.0,
                    rules,
                }
            } else if score >= self.threshold(office) {
                Targeted {
                    stratum: Stratum::Model,
                    channel: self.policy.capacity.channel,
                    propensity: 1.0,
                    rules,
                }
            } else {
                let p = self.random_p(score);
                let drawn = draw(&self.key, &batch.ids[i]) < p;
                Targeted {
                    stratum: if drawn {
                        Stratum::Random
                    } else {
                        Stratum::None
                    },
                    channel: if drawn { self.policy.random.channel } else { 0 },
                    propensity: p,
                    rules,
                }
            };
            out.push(t);
        }
        Ok(out)
    }

    /// The names of rules `idx`, joined by `;` (as `select` writes them).
    pub fn rule_names(&self, idx: &[u16]) -> Vec<&str> {
        idx.iter()
            .filter_map(|&r| self.policy.rules.get(usize::from(r)))
            .map(|r| r.name.as_str())
            .collect()
    }

    pub fn channel_name(&self, c: u8) -> &str {
        self.policy
            .channels
            .get(usize::from(c))
            .map_or("", String::as_str)
    }
}

/// sha256 of policy text, lowercase hex.
pub fn policy_sha256(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draw_is_hmac_sha256_of_the_id() {
        // Python: int.from_bytes(hmac.new(b"k" * 32, b"D1", sha256).digest()[:8], "big")
        //         >> 11) / 2**53 == 0.5127649918421198
        let key = PseudonymKey::from_text(&"k".repeat(32), "test").unwrap();
        let u = draw(&key, "D1");
        assert_eq!(u, 0.5127649918421198);
        assert_eq!(u, draw(&key, "D1"));
        assert_ne!(u, draw(&key, "D2"));
    }
}
