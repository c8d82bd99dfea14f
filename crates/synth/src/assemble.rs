//! Turn compact rows into a [`Batch`] laid out by the schema (categorical and numeric vectors
//! in the schema's order, found by column kind, never by hard-coded index).

use cr_data::{Batch, CategoricalKind, NumericKind, Schema, Selection};
use rayon::prelude::*;

use crate::catalog::{COUNTRIES, COURIERS, MODES, OFFICES, TAX_TYPES};
use crate::rows::{Row, NONE32, NONE8, SEL_RANDOM, SEL_RULE};
use crate::world::World;
use crate::SynthError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CatField {
    Office,
    Importer,
    Declarant,
    Seller,
    Courier,
    Origin,
    Departure,
    Mode,
    TaxType,
    Claim,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumField {
    Value,
    Mass,
    Quantity,
    TaxRate,
}

/// Name of the categorical column (kind `other`) holding the preferential claim flag.
pub const PREFERENTIAL_CLAIM_COLUMN: &str = "preferential_claim";

pub(crate) struct Layout {
    pub cat: Vec<CatField>,
    pub num: Vec<NumField>,
}

pub(crate) fn layout(schema: &Schema) -> Result<Layout, SynthError> {
    if schema.hs_width != 6 {
        return Err(SynthError::Schema {
            reason: format!(
                "hs_code width is {}, the generator makes HS6 codes",
                schema.hs_width
            ),
        });
    }
    let mut cat = Vec::with_capacity(schema.categorical.len());
    for c in &schema.categorical {
        let f = match c.kind {
            CategoricalKind::Office => CatField::Office,
            CategoricalKind::Importer => CatField::Importer,
            CategoricalKind::Declarant => CatField::Declarant,
            CategoricalKind::Seller => CatField::Seller,
            CategoricalKind::Courier => CatField::Courier,
            CategoricalKind::CountryOfOrigin => CatField::Origin,
            CategoricalKind::CountryOfDeparture => CatField::Departure,
            CategoricalKind::TransportMode => CatField::Mode,
            CategoricalKind::TaxType => CatField::TaxType,
            CategoricalKind::Other if c.name == PREFERENTIAL_CLAIM_COLUMN => CatField::Claim,
            CategoricalKind::Other => {
                return Err(SynthError::Schema {
                    reason: format!(
                        "categorical column {:?} (kind other) is not one the generator makes",
                        c.name
                    ),
                })
            }
        };
        if matches!(
            f,
            CatField::Declarant | CatField::Seller | CatField::Courier
        ) && !c.allow_missing
        {
            return Err(SynthError::Schema {
                reason: format!("categorical column {:?} must allow missing values (the generator leaves some empty)", c.name),
            });
        }
        cat.push(f);
    }
    let mut num = Vec::with_capacity(schema.numeric.len());
    for n in &schema.numeric {
        num.push(match n.kind {
            NumericKind::Value => NumField::Value,
            NumericKind::Mass => NumField::Mass,
            NumericKind::Quantity => NumField::Quantity,
            NumericKind::TaxRate => NumField::TaxRate,
            NumericKind::Other => {
                return Err(SynthError::Schema {
                    reason: format!(
                        "numeric column {:?} (kind other) is not one the generator makes",
                        n.name
                    ),
                })
            }
        });
    }
    Ok(Layout { cat, num })
}

fn strings<'a>(it: impl Iterator<Item = &'a str>) -> Vec<String> {
    it.map(str::to_string).collect()
}

pub(crate) fn assemble(
    world: &World,
    rows: &[Row],
    layout: &Layout,
    start_day: i32,
    first_row: usize,
    source: String,
) -> Batch {
    let offices = strings(OFFICES.iter().map(|o| o.0));
    let countries = strings(COUNTRIES.iter().map(|c| c.code));
    let couriers = strings(COURIERS.iter().copied());
    let modes = strings(MODES.iter().copied());
    let tax_types = strings(TAX_TYPES.iter().copied());
    let yes_no = [String::from("N"), String::from("Y")];
    let empty = String::new();
    let opt = |names: &[String], i: u32| -> String {
        if i == NONE32 {
            empty.clone()
        } else {
            names[i as usize].clone()
        }
    };
    let categorical: Vec<Vec<String>> = layout
        .cat
        .par_iter()
        .map(|f| {
            rows.iter()
                .map(|r| match f {
                    CatField::Office => offices[r.office as usize].clone(),
                    CatField::Importer => world.importer_names[r.importer as usize].clone(),
                    CatField::Declarant => opt(&world.declarant_names, r.declarant),
                    CatField::Seller => opt(&world.seller_names, r.seller),
                    CatField::Courier => {
                        if r.courier == NONE8 {
                            empty.clone()
                        } else {
                            couriers[r.courier as usize].clone()
                        }
                    }
                    CatField::Origin => countries[r.origin as usize].clone(),
                    CatField::Departure => countries[r.departure as usize].clone(),
                    CatField::Mode => modes[r.mode as usize].clone(),
                    CatField::TaxType => tax_types[r.tax_type as usize].clone(),
                    CatField::Claim => yes_no[usize::from(r.claim)].clone(),
                })
                .collect()
        })
        .collect();
    let numeric: Vec<Vec<f32>> = layout
        .num
        .iter()
        .map(|f| {
            rows.iter()
                .map(|r| match f {
                    NumField::Value => r.value,
                    NumField::Mass => r.mass,
                    NumField::Quantity => r.quantity,
                    NumField::TaxRate => r.rate,
                })
                .collect()
        })
        .collect();
    let ids: Vec<String> = (0..rows.len())
        .into_par_iter()
        .map(|i| format!("D{:09}", first_row + i + 1))
        .collect();
    let inspected: Vec<bool> = rows.iter().map(|r| r.selection != 0).collect();
    Batch {
        source,
        lines: (0..rows.len() as u64)
            .map(|i| first_row as u64 + i + 2)
            .collect(),
        ids,
        dates: rows.iter().map(|r| start_day + r.day).collect(),
        hs: rows.iter().map(|r| world.hs[r.hs as usize].code).collect(),
        categorical,
        numeric,
        label: rows
            .iter()
            .zip(&inspected)
            .map(|(r, &i)| i.then_some(r.mechanism.is_some()))
            .collect(),
        revenue: rows
            .iter()
            .zip(&inspected)
            .map(|(r, &i)| i.then_some(if r.mechanism.is_some() { r.evaded } else { 0.0 }))
            .collect(),
        selection: rows
            .iter()
            .map(|r| match r.selection {
                SEL_RULE => Some(Selection::Rule),
                SEL_RANDOM => Some(Selection::Random),
                _ => None,
            })
            .collect(),
        inspected,
        propensity: rows.iter().map(|r| Some(r.propensity)).collect(),
    }
}
