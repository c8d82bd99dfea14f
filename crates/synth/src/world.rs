//! The synthetic world: tariff lines, importers, declarants, sellers, built once per
//! `(seed, rows)` from the tables in [`crate::catalog`] with the master seed's stream 0.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::catalog::{self, CHAPTERS, COUNTRIES, OFFICES};

/// One HS6 tariff line.
pub(crate) struct Hs6 {
    pub code: u64,
    /// Index into `CHAPTERS`.
    pub chapter: u8,
    /// MFN duty rate, percent.
    pub mfn: f32,
    /// Preferential (FTA) duty rate, percent, `<= mfn`.
    pub pref: f32,
    /// ln of the median unit value (currency per kg) and its log-sd.
    pub uv_mu: f64,
    pub uv_sigma: f64,
    /// ln of the median mass of one unit (kg).
    pub unit_mass_mu: f64,
    pub tax_type: u8,
    /// Lines of the same chapter whose MFN duty is at least 2.5 points lower.
    pub lower: Vec<u16>,
}

pub(crate) struct Importer {
    /// Day (index from the start date) of the first declaration; negative = trading before
    /// the period.
    pub birth: i32,
    /// Fraud propensity offset (logit).
    pub risk: f32,
    /// Importer-specific price level (ln factor on unit values), a source of benign noise.
    pub price: f32,
    pub hs: Vec<u16>,
    pub hs_cum: Vec<f64>,
    pub sellers: Vec<u32>,
    pub declarant: Option<u32>,
    /// Home office for each mode.
    pub home_office: [u8; 5],
}

pub(crate) struct World {
    pub hs: Vec<Hs6>,
    /// Sorted by `birth`, so the importers active on a day are a prefix.
    pub importers: Vec<Importer>,
    pub births: Vec<i32>,
    /// Cumulative Zipf weights in `importers` order.
    pub imp_cum: Vec<f64>,
    pub seller_country: Vec<u8>,
    pub declarant_risk: Vec<f32>,
    pub decl_cum: Vec<f64>,
    pub hubs: Vec<u8>,
    pub laundered: Vec<bool>,
    pub fraud_origins_early: Vec<(u8, f64)>,
    pub fraud_origins_late: Vec<(u8, f64)>,
    pub offices_by_mode: [Vec<u8>; 5],
    pub importer_names: Vec<String>,
    pub declarant_names: Vec<String>,
    pub seller_names: Vec<String>,
    /// First day of the drift period.
    pub drift_day: i32,
    pub drift: bool,
    pub random_rate: f64,
}

/// Index `i` with `cum[i-1] <= u*total < cum[i]` over the first `k` entries.
pub(crate) fn pick_cum(cum: &[f64], k: usize, u: f64) -> usize {
    let k = k.min(cum.len());
    if k == 0 {
        return 0;
    }
    let target = u * cum[k - 1];
    cum[..k].partition_point(|&c| c <= target).min(k - 1)
}

fn cumulative(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut acc = 0.0;
    weights
        .map(|w| {
            acc += w;
            acc
        })
        .collect()
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    StandardNormal.sample(rng)
}

/// Population sizes for a given row count (sub-linear growth).
pub(crate) fn sizes(rows: usize) -> (usize, usize, usize) {
    let scale = (rows.max(1) as f64) / 100_000.0;
    let importers = ((4000.0 * scale.powf(0.7)).round() as usize).max(30);
    let declarants = ((150.0 * scale.powf(0.5)).round() as usize).max(12);
    let sellers = (importers * 3 / 2).max(40);
    (importers, declarants, sellers)
}

fn round_rate(r: f32) -> f32 {
    (r * 2.0).round() / 2.0
}

fn build_hs(rng: &mut ChaCha8Rng) -> (Vec<Hs6>, Vec<Vec<u16>>) {
    const SUBS: [u64; 14] = [10, 11, 19, 20, 21, 29, 30, 40, 50, 60, 70, 80, 90, 99];
    const MULT: [f32; 7] = [0.0, 0.5, 0.75, 1.0, 1.0, 1.4, 2.0];
    let mut hs = Vec::new();
    let mut by_chapter = vec![Vec::new(); CHAPTERS.len()];
    for (ci, chapter) in CHAPTERS.iter().enumerate() {
        let n_head = rng.random_range(3..=6usize);
        let mut heads: Vec<u64> = (1..=40).collect();
        heads.shuffle(rng);
        let mut heads = heads[..n_head].to_vec();
        heads.sort_unstable();
        for head in heads {
            let head_mult = MULT[rng.random_range(0..MULT.len())];
            let head_uv = normal(rng) * 0.5;
            let n_sub = rng.random_range(2..=5usize);
            let mut subs = SUBS.to_vec();
            subs.shuffle(rng);
            let mut subs = subs[..n_sub].to_vec();
            subs.sort_unstable();
            for sub in subs {
                let mult = if rng.random_bool(0.7) {
                    head_mult
                } else {
                    MULT[rng.random_range(0..MULT.len())]
                };
                let mfn = round_rate(chapter.duty * mult);
                let pref_factor = if rng.random_bool(0.75) { 0.0 } else { 0.5 };
                let tax_type = if chapter.excise {
                    catalog::TAX_EXC
                } else if (chapter.code == 72 || chapter.code == 73) && rng.random_bool(0.3) {
                    catalog::TAX_AD
                } else if rng.random_bool(0.08) {
                    catalog::TAX_TQ
                } else {
                    catalog::TAX_STD
                };
                let code = u64::from(chapter.code) * 10_000 + head * 100 + sub;
                by_chapter[ci].push(hs.len() as u16);
                hs.push(Hs6 {
                    code,
                    chapter: ci as u8,
                    mfn,
                    pref: round_rate(mfn * pref_factor),
                    uv_mu: chapter.unit_value.ln() + head_uv + normal(rng) * 0.35,
                    uv_sigma: rng.random_range(0.45..0.8),
                    unit_mass_mu: -1.0 + normal(rng) * 1.2,
                    tax_type,
                    lower: Vec::new(),
                });
            }
        }
    }
    for codes in &by_chapter {
        for &a in codes {
            let lower: Vec<u16> = codes
                .iter()
                .copied()
                .filter(|&b| hs[b as usize].mfn + 2.5 <= hs[a as usize].mfn)
                .collect();
            hs[a as usize].lower = lower;
        }
    }
    (hs, by_chapter)
}

pub(crate) struct WorldParams {
    pub rows: usize,
    pub n_days: i32,
    pub drift: bool,
    pub random_rate: f64,
}

pub(crate) fn build(rng: &mut ChaCha8Rng, p: &WorldParams) -> World {
    let (hs, hs_by_chapter) = build_hs(rng);
    let (n_imp, n_decl, n_sell) = sizes(p.rows);

    let idx = |code: &str| catalog::country_index(code).unwrap_or(0);
    let country_cum = cumulative(COUNTRIES.iter().map(|c| c.weight));
    let chapter_cum = cumulative(CHAPTERS.iter().map(|c| c.weight));

    // Sellers: a country each, Zipf popularity.
    let seller_country: Vec<u8> = (0..n_sell)
        .map(|_| pick_cum(&country_cum, country_cum.len(), rng.random()) as u8)
        .collect();
    let seller_cum = cumulative((0..n_sell).map(|r| 1.0 / (r as f64 + 3.0)));

    // Declarants: Zipf popularity, a few risky ones (about 3 %, at least 2).
    let n_risky = ((n_decl as f64 * 0.03).ceil() as usize).max(2);
    let mut declarant_risk = vec![0.0f32; n_decl];
    // Risky brokers are small or mid-sized: never among the five most popular.
    let mut order: Vec<usize> = (5.min(n_decl - n_risky)..n_decl).collect();
    order.shuffle(rng);
    let risky: Vec<u32> = order[..n_risky].iter().map(|&i| i as u32).collect();
    for &r in &risky {
        declarant_risk[r as usize] = 1.4;
    }
    for r in declarant_risk.iter_mut() {
        *r += (normal(rng) * 0.15) as f32;
    }
    let decl_cum = cumulative((0..n_decl).map(|r| 1.0 / (r as f64 + 2.0)));

    let mut offices_by_mode: [Vec<u8>; 5] = Default::default();
    for (i, (_, mode)) in OFFICES.iter().enumerate() {
        offices_by_mode[*mode as usize].push(i as u8);
    }

    // Importers.
    let mut ranks: Vec<usize> = (0..n_imp).collect();
    ranks.shuffle(rng);
    let mut importers = Vec::with_capacity(n_imp);
    let mut weights = Vec::with_capacity(n_imp);
    for (i, &rank) in ranks.iter().enumerate() {
        let birth = if i == 0 || rng.random_bool(0.62) {
            -1000
        } else {
            rng.random_range(0..p.n_days.max(1))
        };
        // 4 % bad actors, fewer among the largest traders (top 2 % of ranks scale down
        // linearly), which also keeps the overall fraud rate stable across seeds.
        let bad = rng.random_bool(0.04 * ((rank as f64 + 1.0) / (0.02 * n_imp as f64)).min(1.0));
        let risk = (normal(rng) * 0.5) as f32 + if bad { 2.3 } else { 0.0 };
        let n_ch = rng.random_range(1..=3usize);
        let mut hs_list = Vec::new();
        for _ in 0..n_ch {
            let c = pick_cum(&chapter_cum, chapter_cum.len(), rng.random());
            let codes = &hs_by_chapter[c];
            let k = rng.random_range(1..=4usize);
            for _ in 0..k {
                let h = codes[rng.random_range(0..codes.len())];
                if !hs_list.contains(&h) {
                    hs_list.push(h);
                }
            }
        }
        let hs_cum = cumulative(hs_list.iter().map(|_| (normal(rng) * 0.8).exp()));
        let n_s = rng.random_range(1..=4usize);
        let mut sellers = Vec::with_capacity(n_s);
        for _ in 0..n_s {
            let s = pick_cum(&seller_cum, seller_cum.len(), rng.random()) as u32;
            if !sellers.contains(&s) {
                sellers.push(s);
            }
        }
        let declarant = if rng.random_bool(0.1) {
            None
        } else if bad && rng.random_bool(0.6) {
            Some(risky[rng.random_range(0..risky.len())])
        } else {
            Some(pick_cum(&decl_cum, decl_cum.len(), rng.random()) as u32)
        };
        let mut home_office = [0u8; 5];
        for (m, h) in home_office.iter_mut().enumerate() {
            let offs = &offices_by_mode[m];
            *h = offs[rng.random_range(0..offs.len())];
        }
        weights.push(1.0 / (rank as f64 + 20.0));
        importers.push(Importer {
            birth,
            risk,
            price: (normal(rng) * 0.2) as f32,
            hs: hs_list,
            hs_cum,
            sellers,
            declarant,
            home_office,
        });
    }
    // Sort by birth (stable, so ties keep creation order); names follow registration order.
    let mut perm: Vec<usize> = (0..n_imp).collect();
    perm.sort_by_key(|&i| importers[i].birth);
    let mut slots: Vec<Option<Importer>> = importers.into_iter().map(Some).collect();
    let importers: Vec<Importer> = perm.iter().filter_map(|&i| slots[i].take()).collect();
    let imp_cum = cumulative(perm.iter().map(|&i| weights[i]));
    let births = importers.iter().map(|im| im.birth).collect();

    let mut laundered = vec![false; COUNTRIES.len()];
    for c in catalog::LAUNDERED_ORIGINS {
        laundered[idx(c) as usize] = true;
    }
    World {
        hs,
        importers,
        births,
        imp_cum,
        seller_country,
        declarant_risk,
        decl_cum,
        hubs: catalog::HUBS.iter().map(|h| idx(h)).collect(),
        laundered,
        fraud_origins_early: catalog::FRAUD_ORIGINS_EARLY
            .iter()
            .map(|(c, w)| (idx(c), *w))
            .collect(),
        fraud_origins_late: catalog::FRAUD_ORIGINS_LATE
            .iter()
            .map(|(c, w)| (idx(c), *w))
            .collect(),
        offices_by_mode,
        importer_names: (0..n_imp).map(|i| format!("IMP{:06}", i + 1)).collect(),
        declarant_names: (0..n_decl).map(|i| format!("DCL{:04}", i + 1)).collect(),
        seller_names: (0..n_sell).map(|i| format!("SEL{:06}", i + 1)).collect(),
        drift_day: p.n_days * 2 / 3,
        drift: p.drift,
        random_rate: p.random_rate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::MODES;

    #[test]
    fn catalog_codes_resolve() {
        for c in catalog::HUBS
            .iter()
            .chain(catalog::LAUNDERED_ORIGINS.iter())
        {
            assert!(catalog::country_index(c).is_some(), "{c}");
        }
        for (c, _) in catalog::FRAUD_ORIGINS_EARLY
            .iter()
            .chain(catalog::FRAUD_ORIGINS_LATE.iter())
        {
            let i = catalog::country_index(c).expect("listed");
            assert!(
                COUNTRIES[i as usize].fta,
                "{c} must be a preferential partner"
            );
        }
        assert!(offices_cover_modes());
    }

    fn offices_cover_modes() -> bool {
        (0..MODES.len()).all(|m| OFFICES.iter().any(|(_, om)| *om as usize == m))
    }

    #[test]
    fn hs_table_is_a_hierarchy_of_six_digit_codes() {
        use rand::SeedableRng;
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (hs, by_chapter) = build_hs(&mut rng);
        assert!(hs.len() >= 150 && hs.len() <= 800, "{}", hs.len());
        let mut codes: Vec<u64> = hs.iter().map(|h| h.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), hs.len(), "codes are unique");
        for h in &hs {
            assert!(h.code < 1_000_000 && h.code >= 10_000);
            assert_eq!(
                h.code / 10_000,
                u64::from(CHAPTERS[h.chapter as usize].code)
            );
            assert!(h.pref <= h.mfn);
            for &l in &h.lower {
                assert_eq!(hs[l as usize].chapter, h.chapter);
                assert!(hs[l as usize].mfn < h.mfn);
            }
        }
        assert_eq!(by_chapter.iter().map(|v| v.len()).sum::<usize>(), hs.len());
        assert!(hs.iter().filter(|h| !h.lower.is_empty()).count() > hs.len() / 4);
    }

    #[test]
    fn pick_cum_respects_prefix() {
        let cum = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(pick_cum(&cum, 4, 0.0), 0);
        assert_eq!(pick_cum(&cum, 4, 0.999), 3);
        assert_eq!(pick_cum(&cum, 2, 0.999), 1);
        assert_eq!(pick_cum(&cum, 2, 0.49), 0);
    }
}
