//! Row generation: one declaration at a time, given the world and its day. Fraud is decided
//! from latent risk, then applied by altering what is *declared*; the legacy inspection
//! policy (rule + random sample) decides which rows carry a label.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::catalog::{self, AIR, CHAPTERS, COUNTRIES, COURIERS, COURIER_RISK, MODE_MASS, POST};
use crate::world::{pick_cum, World};
use crate::Mechanism;

pub(crate) const NONE32: u32 = u32::MAX;
pub(crate) const NONE8: u8 = u8::MAX;

/// Base fraud logit and per-mechanism offsets (tuned so the overall rate is ~3.3 %).
const BASE: f32 = -6.2;
const C_ORIGIN: f32 = 1.0;
const C_MISCLASS: f32 = 0.5;
const C_UNDERVALUE: f32 = 1.1;
const C_UNDECLARED: f32 = -0.6;
/// Extra undervaluation logit in the drift chapter after the drift day.
const DRIFT_UNDERVALUE: f32 = 1.8;
/// Import VAT, percent, charged on value + duty (part of the revenue at stake).
const VAT: f64 = 10.0;

/// One generated declaration in compact (interned) form.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row {
    pub day: i32,
    pub importer: u32,
    pub declarant: u32,
    pub seller: u32,
    pub courier: u8,
    pub office: u8,
    pub origin: u8,
    pub departure: u8,
    pub mode: u8,
    pub tax_type: u8,
    pub claim: bool,
    pub hs: u16,
    pub value: f32,
    pub mass: f32,
    pub quantity: f32,
    pub rate: f32,
    pub mechanism: Option<Mechanism>,
    pub evaded: f32,
    pub rule_hit: bool,
    pub selection: u8,
    pub propensity: f64,
}

pub(crate) const SEL_NONE: u8 = 0;
pub(crate) const SEL_RULE: u8 = 1;
pub(crate) const SEL_RANDOM: u8 = 2;

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    StandardNormal.sample(rng)
}

fn sigmoid(x: f32) -> f64 {
    1.0 / (1.0 + (-f64::from(x)).exp())
}

/// Duty + VAT (percent of value) due on one unit of value at duty `rate`.
fn tax_share(rate: f32) -> f64 {
    let r = f64::from(rate) / 100.0;
    r + VAT / 100.0 * (1.0 + r)
}

fn round_to(x: f64, step: f64) -> f64 {
    (x / step).round() * step
}

fn pick_weighted(pairs: &[(u8, f64)], u: f64) -> u8 {
    let total: f64 = pairs.iter().map(|p| p.1).sum();
    let mut acc = 0.0;
    for &(c, w) in pairs {
        acc += w / total;
        if u < acc {
            return c;
        }
    }
    pairs.last().map(|p| p.0).unwrap_or(0)
}

fn pick_mode(rng: &mut ChaCha8Rng, neighbour: bool, unit_value: f64) -> u8 {
    let mut w: [f64; 5] = if neighbour {
        [0.25, 0.10, 0.55, 0.07, 0.03]
    } else {
        [0.66, 0.25, 0.0, 0.02, 0.07]
    };
    if unit_value > 50.0 {
        w[AIR as usize] *= 3.0;
    } else if unit_value < 2.0 {
        w[AIR as usize] *= 0.2;
        w[POST as usize] *= 0.2;
    }
    let total: f64 = w.iter().sum();
    let mut u = rng.random::<f64>() * total;
    for (m, wm) in w.iter().enumerate() {
        if u < *wm {
            return m as u8;
        }
        u -= wm;
    }
    0
}

/// Generate the rows of one chunk; `days` are the (sorted) days of its rows.
pub(crate) fn gen_chunk(world: &World, days: &[i32], rng: &mut ChaCha8Rng) -> Vec<Row> {
    days.iter().map(|&d| gen_row(world, d, rng)).collect()
}

fn gen_row(w: &World, d: i32, rng: &mut ChaCha8Rng) -> Row {
    let k = w.births.partition_point(|&b| b <= d).max(1);
    let ii = pick_cum(&w.imp_cum, k, rng.random());
    let imp = &w.importers[ii];
    let true_hs = imp.hs[pick_cum(&imp.hs_cum, imp.hs_cum.len(), rng.random())];
    let h = &w.hs[true_hs as usize];
    let chapter = &CHAPTERS[h.chapter as usize];

    let seller = imp.sellers[rng.random_range(0..imp.sellers.len())];
    let true_origin = w.seller_country[seller as usize];
    let oc = &COUNTRIES[true_origin as usize];
    let mut departure = if rng.random_bool(0.95) {
        true_origin
    } else {
        let hub = w.hubs[rng.random_range(0..w.hubs.len())];
        if hub == true_origin {
            w.hubs[0]
        } else {
            hub
        }
    };
    let mode = pick_mode(rng, oc.neighbour, chapter.unit_value);
    let office = if rng.random_bool(0.85) {
        imp.home_office[mode as usize]
    } else {
        let offs = &w.offices_by_mode[mode as usize];
        offs[rng.random_range(0..offs.len())]
    };
    let (mass_med, mass_sd) = MODE_MASS[mode as usize];
    let mass = round_to(
        (mass_med.ln() + mass_sd * normal(rng))
            .exp()
            .min(100.0 * mass_med),
        0.1,
    )
    .max(0.1);
    let unit_mass = (h.unit_mass_mu + 0.3 * normal(rng)).exp();
    let quantity = (mass / unit_mass).round().clamp(1.0, 1e9);
    let true_value = mass * (h.uv_mu + f64::from(imp.price) + h.uv_sigma * normal(rng)).exp();
    let courier = if (mode == AIR && mass < 200.0 && rng.random_bool(0.7))
        || (mode == POST && rng.random_bool(0.9))
    {
        rng.random_range(0..COURIERS.len()) as u8
    } else {
        NONE8
    };
    let mut claim = oc.fta && h.pref < h.mfn && rng.random_bool(0.85);
    let declarant = match imp.declarant {
        Some(dc) if rng.random_bool(0.85) => dc,
        None if rng.random_bool(0.95) => NONE32,
        _ => pick_cum(&w.decl_cum, w.decl_cum.len(), rng.random()) as u32,
    };
    let seller_out = if rng.random_bool(0.05) {
        NONE32
    } else {
        seller
    };

    // Latent fraud risk (logit).
    let days_active = d - imp.birth;
    let new_eff = if days_active < 120 {
        1.3 * (1.0 - days_active as f32 / 120.0)
    } else {
        0.0
    };
    let decl_risk = if declarant == NONE32 {
        0.1
    } else {
        w.declarant_risk[declarant as usize]
    };
    let courier_risk = if courier == NONE8 {
        0.0
    } else {
        COURIER_RISK[courier as usize]
    };
    let late = w.drift && d >= w.drift_day;
    let l = BASE
        + imp.risk
        + decl_risk
        + new_eff
        + 0.05 * (h.mfn - 8.0)
        + oc.risk
        + courier_risk
        + (0.5 * normal(rng)) as f32;

    let mut origin = true_origin;
    let mut hs = true_hs;
    let mut rate = if claim { h.pref } else { h.mfn };
    let mut value = true_value;
    let mut mechanism = None;
    let mut evaded = 0.0f64;

    if w.laundered[true_origin as usize] && h.pref < h.mfn && rng.random_bool(sigmoid(l + C_ORIGIN))
    {
        // Origin fraud: goods of a non-preferential origin declared as from an FTA partner.
        let targets = if late {
            &w.fraud_origins_late
        } else {
            &w.fraud_origins_early
        };
        origin = pick_weighted(targets, rng.random());
        claim = true;
        rate = h.pref;
        departure = if rng.random_bool(0.7) {
            true_origin
        } else {
            origin
        };
        evaded = true_value * (tax_share(h.mfn) - tax_share(h.pref));
        mechanism = Some(Mechanism::OriginFraud);
    } else if !claim && !h.lower.is_empty() && rng.random_bool(sigmoid(l + C_MISCLASS)) {
        // Misclassification toward a lower-duty line of the same chapter.
        hs = h.lower[rng.random_range(0..h.lower.len())];
        rate = w.hs[hs as usize].mfn;
        evaded = true_value * (tax_share(h.mfn) - tax_share(rate));
        mechanism = Some(Mechanism::Misclassification);
    } else {
        let drift_u = if late && chapter.code == catalog::DRIFT_CHAPTER {
            DRIFT_UNDERVALUE
        } else {
            0.0
        };
        if rng.random_bool(sigmoid(l + C_UNDERVALUE + drift_u)) {
            let factor = (-rng.random_range(0.3..1.4f64)).exp();
            value = true_value * factor;
            evaded = (true_value - value) * tax_share(rate);
            mechanism = Some(Mechanism::Undervaluation);
        } else if rng.random_bool(sigmoid(l + C_UNDECLARED)) {
            evaded = true_value * rng.random_range(0.1..0.4f64) * tax_share(rate);
            mechanism = Some(Mechanism::UndeclaredGoods);
        }
    }
    let value = round_to(value, 0.01).max(0.01);

    // Legacy inspection policy: a rule with its own randomness, plus a random sample.
    let mut q: f64 = 0.0;
    if rate >= 20.0 && COUNTRIES[origin as usize].rule_listed {
        q = q.max(0.75);
    }
    if days_active < 21 {
        q = q.max(0.85);
    }
    if claim && departure != origin {
        q = q.max(0.8);
    }
    if value >= 5_000_000.0 {
        q = q.max(0.7);
    }
    let rule_hit = q > 0.0;
    let r = w.random_rate;
    let propensity = r + (1.0 - r) * q;
    let selection = if rng.random_bool(r) {
        SEL_RANDOM
    } else if rule_hit && rng.random_bool(q) {
        SEL_RULE
    } else {
        SEL_NONE
    };
    let tax_type = if chapter.code == 72 || chapter.code == 73 {
        // Anti-dumping lines apply to some origins only.
        if w.hs[hs as usize].tax_type == catalog::TAX_AD && COUNTRIES[origin as usize].rule_listed {
            catalog::TAX_AD
        } else {
            catalog::TAX_STD
        }
    } else {
        w.hs[hs as usize].tax_type
    };
    Row {
        day: d,
        importer: ii as u32,
        declarant,
        seller: seller_out,
        courier,
        office,
        origin,
        departure,
        mode,
        tax_type,
        claim,
        hs,
        value: value as f32,
        mass: mass as f32,
        quantity: quantity as f32,
        rate,
        mechanism,
        evaded: if mechanism.is_some() {
            round_to(evaded, 0.01).max(0.01) as f32
        } else {
            0.0
        },
        rule_hit,
        selection,
        propensity,
    }
}
