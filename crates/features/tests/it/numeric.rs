use chrono::{Datelike, NaiveDate};
use cr_data::schema::days_from_ymd;
use cr_data::Batch;
use cr_features::calc::{civil_from_days, day_of_week, days_from_civil, month};
use cr_features::{fit, FeatureDef, PipelineConfig};

use crate::common::{push, schema};

fn cfg() -> PipelineConfig {
    PipelineConfig {
        folds: 2,
        pairs: Some(vec![]),
        ..PipelineConfig::default()
    }
}

#[test]
fn unit_value_and_relative_unit_value_by_hand() {
    let s = schema();
    let nan = f32::NAN;
    let mut train = Batch::empty(&s, "uv");
    // (hs, value, mass): unit values 5, 15, -, 3, -, -
    for (hs, v, m) in [
        (71_080, 10.0, 2.0),
        (71_090, 30.0, 2.0),
        (71_080, 7.0, 0.0),
        (80_100, 9.0, 3.0),
        (80_200, nan, 1.0),
        (90_100, 8.0, nan),
    ] {
        push(
            &mut train,
            19_000,
            hs,
            &["i", "d", "o"],
            &[v, m],
            Some(false),
        );
    }
    train.label[0] = Some(true);
    let (p, tx) = fit(&s, &train, &cfg()).expect("fit");
    // medians: hs4 710 -> (5 + 15) / 2 = 10, 801 -> 3; hs2 7 -> 10, 8 -> 3; global median(5, 15, 3) = 5
    let rel = p
        .features
        .iter()
        .find(|f| f.name() == "rel_unit_value")
        .expect("rel def");
    match rel {
        FeatureDef::RelUnitValue {
            hs4_median,
            hs2_median,
            global_median,
            ..
        } => {
            assert_eq!(
                hs4_median
                    .iter()
                    .map(|(k, v)| (k.as_str(), *v))
                    .collect::<Vec<_>>(),
                vec![("710", 10.0), ("801", 3.0)]
            );
            assert_eq!(
                hs2_median
                    .iter()
                    .map(|(k, v)| (k.as_str(), *v))
                    .collect::<Vec<_>>(),
                vec![("7", 10.0), ("8", 3.0)]
            );
            assert_eq!(*global_median, 5.0);
        }
        _ => panic!("wrong def"),
    }
    let uv_c = tx.column_index("unit_value").expect("uv");
    let rel_c = tx.column_index("rel_unit_value").expect("rel");
    let uv = tx.column(uv_c);
    assert_eq!(&uv[..2], &[5.0, 15.0]);
    assert_eq!(uv[3], 3.0);
    assert!(uv[2].is_nan() && uv[4].is_nan() && uv[5].is_nan());
    assert_eq!(tx.column(rel_c)[..2], [0.5, 1.5]);
    let num = tx.column(tx.column_index("num[value]").expect("num"));
    assert_eq!(
        (num[0], num[1], num[2], num[3], num[5]),
        (10.0, 30.0, 7.0, 9.0, 8.0)
    );
    assert!(num[4].is_nan());

    let mut score = Batch::empty(&s, "score");
    // hs4 hit; hs4 miss -> hs2 8; hs2 miss -> global; value 0; one-third; mass negative
    for (hs, v, m) in [
        (71_080, 10.0, 4.0),
        (80_900, 6.0, 1.0),
        (120_100, 20.0, 2.0),
        (71_080, 0.0, 2.0),
        (80_100, 1.0, 3.0),
        (80_100, 1.0, -1.0),
    ] {
        push(&mut score, 19_000, hs, &["i", "d", "o"], &[v, m], None);
    }
    let x = p.transform(&score).expect("transform");
    let uv = x.column(uv_c);
    let rel = x.column(rel_c);
    assert_eq!(uv[..5], [2.5, 6.0, 10.0, 0.0, 1.0f32 / 3.0f32]);
    assert!(uv[5].is_nan() && rel[5].is_nan());
    assert_eq!(
        uv[5].to_bits(),
        f32::NAN.to_bits(),
        "missing is the canonical NaN"
    );
    assert_eq!(rel[..5], [0.25, 2.0, 2.0, 0.0, (1.0f32 / 3.0f32) / 3.0f32]);
}

#[test]
fn day_of_week_and_month_of_known_dates() {
    assert_eq!(day_of_week(0), 3.0); // 1970-01-01 was a Thursday
    assert_eq!(month(0), 1.0);
    let leap = days_from_ymd(2024, 2, 29).expect("date");
    assert_eq!(day_of_week(leap), 3.0); // Thursday
    assert_eq!(month(leap), 2.0);
    let monday = days_from_ymd(2024, 1, 1).expect("date");
    assert_eq!(day_of_week(monday), 0.0);
    assert_eq!(month(days_from_ymd(1999, 12, 31).expect("date")), 12.0);
    assert_eq!(day_of_week(-1), 2.0); // 1969-12-31 was a Wednesday

    // Through the pipeline.
    let s = schema();
    let mut b = Batch::empty(&s, "dates");
    push(&mut b, 0, 10_101, &["i", "d", "o"], &[1.0, 1.0], Some(true));
    push(
        &mut b,
        leap,
        10_101,
        &["i", "d", "o"],
        &[1.0, 1.0],
        Some(false),
    );
    let (_, x) = fit(&s, &b, &cfg()).expect("fit");
    let (d, m) = (
        x.column_index("day_of_week").expect("dow"),
        x.column_index("month").expect("month"),
    );
    assert_eq!(
        (x.get(0, d), x.get(0, m), x.get(1, d), x.get(1, m)),
        (Some(3.0), Some(1.0), Some(3.0), Some(2.0))
    );
}

#[test]
fn calendar_matches_chrono_over_three_centuries() {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    for days in -30_000..100_000 {
        let date = epoch + chrono::Duration::days(i64::from(days));
        let (y, m, d) = civil_from_days(days);
        assert_eq!(
            (y, m, d),
            (i64::from(date.year()), date.month(), date.day()),
            "days {days}"
        );
        assert_eq!(days_from_civil(y, m, d), i64::from(days));
        assert_eq!(
            day_of_week(days),
            date.weekday().num_days_from_monday() as f32,
            "days {days}"
        );
    }
}
