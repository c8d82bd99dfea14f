//! No panic and a well-formed JSON answer for any body: arbitrary JSON, declaration-shaped
//! objects with arbitrary values, and arbitrary bytes, sent to `/v1/score` with a valid key.

use std::sync::OnceLock;

use axum::Router;
use cr_service::{app, AppState};
use proptest::prelude::*;
use serde_json::{Map, Number, Value};

use crate::support::{call, env, error_code, state, Env};

struct Fixture {
    _env: Env,
    key: String,
    router: Router,
    _state: AppState,
    rt: tokio::runtime::Runtime,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let e = env(Some("a"));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let s = state(&e);
        Fixture {
            key: e.score_key.clone(),
            router: app(s.clone()),
            _state: s,
            _env: e,
            rt,
        }
    })
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| Value::Number(i.into())),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const COLUMNS: [&str; 9] = [
    "decl_id",
    "date",
    "hs_code",
    "office",
    "value",
    "mass",
    "tax_rate",
    "declarations",
    "extra",
];

/// Objects keyed mostly by real column names, so validation paths are exercised.
fn arb_declaration() -> impl Strategy<Value = Value> {
    let value = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| Value::Number(i.into())),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        prop_oneof![
            Just("2024-02-30".to_string()),
            Just("071080".to_string()),
            Just("1e40".to_string()),
            ".{0,10}"
        ]
        .prop_map(Value::String),
        Just(Value::Array(vec![])),
    ];
    prop::collection::btree_map(0..COLUMNS.len(), value, 0..COLUMNS.len()).prop_map(|m| {
        Value::Object(
            m.into_iter()
                .map(|(k, v)| (COLUMNS[k].to_string(), v))
                .collect::<Map<_, _>>(),
        )
    })
}

fn check(body: Vec<u8>) -> Result<(), TestCaseError> {
    let f = fixture();
    let (status, json, text) = f.rt.block_on(call(
        &f.router,
        "POST",
        "/v1/score",
        Some(&f.key),
        Some(body),
    ));
    prop_assert!(
        status.is_success() || status.is_client_error(),
        "status {status}: {text}"
    );
    prop_assert!(!json.is_null(), "not JSON: {text}");
    if status.is_client_error() {
        let code = error_code(&json);
        prop_assert!(
            [
                "invalid_json",
                "invalid_request",
                "invalid_declaration",
                "batch_too_large",
                "body_too_large"
            ]
            .contains(&code.as_str()),
            "{code}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_bodies(v in arb_json()) {
        check(serde_json::to_vec(&v).unwrap())?;
    }

    #[test]
    fn declaration_shaped_bodies(d in arb_declaration(), batch in any::<bool>()) {
        let body = if batch { serde_json::json!({ "declarations": [d.clone(), d] }) } else { d };
        check(serde_json::to_vec(&body).unwrap())?;
    }

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        check(bytes)?;
    }
}
