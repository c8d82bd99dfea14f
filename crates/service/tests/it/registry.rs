//! Registry: registration (hash, card, thresholds), lifecycle, integrity, keys.

use cr_service::{
    AppState, KeyStore, ModelStatus, RegisterOptions, Registry, Role, ServiceError, ThresholdSpec,
};

use crate::support::{env, limits, models, opts};

fn sha256sum(path: &std::path::Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("digest")
        .to_string()
}

#[test]
fn register_records_hash_card_and_quantile_thresholds() {
    let e = env(None);
    let reg = Registry::open(&e.db).unwrap();
    let a = reg.get("a").unwrap();
    assert_eq!(a.sha256, sha256sum(&e.a));
    assert_eq!(a.status, ModelStatus::Registered);
    assert_eq!(a.registered_by, "tester");
    assert_eq!(a.card["name"], "a");
    // Default thresholds: the 90th and 98th points of the card's 0..100 % quantile grid.
    // f32 quantiles (shortest f32 text in the card), widened as every reader widens them
    let q: Vec<f64> = serde_json::from_value::<Vec<f32>>(a.card["score_quantiles"].clone())
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect();
    assert_eq!(q.len(), 101);
    assert_eq!(a.thresholds.yellow, q[90]);
    assert_eq!(a.thresholds.red, q[98]);
    let mut sorted = q.clone();
    sorted.sort_by(f64::total_cmp);
    assert_eq!(a.reference_scores.as_deref(), Some(sorted.as_slice()));
    let listed: Vec<String> = reg.list().unwrap().into_iter().map(|m| m.version).collect();
    assert_eq!(listed, ["a", "b"]);
}

#[test]
fn default_version_is_name_and_hash_prefix() {
    let e = env(None);
    let mut reg = Registry::open(&e.db).unwrap();
    let o = RegisterOptions {
        version: None,
        ..opts("gbdt", "")
    };
    let copy = e.dir.path().join("a2.onnx");
    std::fs::copy(&e.a, &copy).unwrap();
    let mv = reg.register(&copy, &o).unwrap();
    assert_eq!(mv.version, format!("gbdt-{}", &sha256sum(&e.a)[..12]));
    // Registering the same version twice is refused.
    let err = reg.register(&copy, &o).unwrap_err();
    assert!(matches!(err, ServiceError::Conflict(_)), "{err}");
}

#[test]
fn model_without_card_needs_explicit_thresholds() {
    let e = env(None);
    let mut reg = Registry::open(&e.db).unwrap();
    let err = reg.register(&e.nocard, &opts("plain", "p1")).unwrap_err();
    assert!(
        err.to_string().contains("reference score distribution"),
        "{err}"
    );
    let o = RegisterOptions {
        thresholds: ThresholdSpec::Scores {
            yellow: 0.3,
            red: 0.6,
        },
        ..opts("plain", "p1")
    };
    let mv = reg.register(&e.nocard, &o).unwrap();
    assert_eq!(mv.card, serde_json::json!({}));
    assert_eq!(mv.reference_scores, None);
    assert_eq!(mv.percentile(0.5), None);
    assert_eq!((mv.thresholds.yellow, mv.thresholds.red), (0.3, 0.6));
    let bad = RegisterOptions {
        thresholds: ThresholdSpec::Scores {
            yellow: 0.7,
            red: 0.6,
        },
        ..opts("plain", "p2")
    };
    assert!(matches!(
        reg.register(&e.nocard, &bad),
        Err(ServiceError::Invalid(_))
    ));
}

#[test]
fn non_model_files_are_refused() {
    let e = env(None);
    let mut reg = Registry::open(&e.db).unwrap();
    let junk = e.dir.path().join("junk.onnx");
    std::fs::write(&junk, b"not a protobuf at all").unwrap();
    assert!(matches!(
        reg.register(&junk, &opts("x", "x1")),
        Err(ServiceError::Model { .. })
    ));
    let missing = e.dir.path().join("missing.onnx");
    assert!(matches!(
        reg.register(&missing, &opts("x", "x2")),
        Err(ServiceError::Io { .. })
    ));
}

#[test]
fn lifecycle_promote_challenger_retire() {
    let e = env(None);
    let mut reg = Registry::open(&e.db).unwrap();
    assert!(reg.champion().unwrap().is_none());
    reg.promote("a", "alice").unwrap();
    reg.set_challenger("b", "alice").unwrap();
    assert_eq!(reg.champion().unwrap().unwrap().version, "a");
    assert_eq!(reg.challenger().unwrap().unwrap().version, "b");
    // Promoting the challenger empties the challenger slot; the old champion is registered.
    let b = reg.promote("b", "bob").unwrap();
    assert_eq!(
        (b.status, b.promoted_by.as_deref()),
        (ModelStatus::Champion, Some("bob"))
    );
    assert!(reg.challenger().unwrap().is_none());
    assert_eq!(reg.get("a").unwrap().status, ModelStatus::Registered);
    // The champion cannot be retired or be the challenger.
    assert!(matches!(
        reg.retire("b", "bob"),
        Err(ServiceError::Conflict(_))
    ));
    assert!(matches!(
        reg.set_challenger("b", "bob"),
        Err(ServiceError::Conflict(_))
    ));
    let a = reg.retire("a", "carol").unwrap();
    assert_eq!(
        (a.status, a.retired_by.as_deref()),
        (ModelStatus::Retired, Some("carol"))
    );
    assert!(matches!(
        reg.promote("a", "bob"),
        Err(ServiceError::Conflict(_))
    ));
    assert!(matches!(
        reg.promote("zzz", "bob"),
        Err(ServiceError::UnknownVersion { .. })
    ));
    let actions: Vec<(String, String, String)> = reg
        .events()
        .unwrap()
        .into_iter()
        .map(|ev| (ev.version, ev.action, ev.by))
        .collect();
    let want = [
        ("a", "register", "tester"),
        ("b", "register", "tester"),
        ("a", "promote", "alice"),
        ("b", "challenger", "alice"),
        ("b", "promote", "bob"),
        ("a", "retire", "carol"),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(v, a, b)| (v.to_string(), a.to_string(), b.to_string()))
        .collect();
    assert_eq!(actions, want);
    // The history is append-only.
    let conn = rusqlite::Connection::open(&e.db).unwrap();
    assert!(conn.execute("DELETE FROM model_events", []).is_err());
    assert!(conn
        .execute("UPDATE model_events SET by = 'mallory'", [])
        .is_err());
}

#[test]
fn tampered_model_is_refused_at_promote_and_load() {
    let e = env(Some("a"));
    let mut bytes = std::fs::read(&e.b).unwrap();
    bytes.extend_from_slice(b"\n");
    std::fs::write(&e.b, &bytes).unwrap();
    let mut reg = Registry::open(&e.db).unwrap();
    let err = reg.promote("b", "mallory").unwrap_err();
    assert!(matches!(err, ServiceError::HashMismatch { .. }), "{err}");
    assert!(err.to_string().contains("refusing"), "{err}");
    assert_eq!(reg.champion().unwrap().unwrap().version, "a");
    // A tampered champion leaves the server up but not ready (admin calls can fix it); see
    // tests/it/integrity.rs.
    std::fs::write(&e.a, b"swapped").unwrap();
    let st = AppState::open(&e.db, limits()).unwrap();
    assert!(!st.champion_intact());
    assert!(st.deployment().champion.is_none());
}

#[test]
fn keys_are_stored_hashed_and_verified() {
    let e = env(None);
    let mut reg = Registry::open(&e.db).unwrap();
    let k = reg.create_key(Role::Score, "gate 2").unwrap();
    assert!(k.key.starts_with("crk_"));
    let conn = rusqlite::Connection::open(&e.db).unwrap();
    let stored: Vec<String> = conn
        .prepare("SELECT id || name || role || salt || hash FROM api_keys")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let secret = k.key.rsplit('_').next().unwrap();
    assert!(
        stored.iter().all(|row| !row.contains(secret)),
        "the secret must not be stored"
    );
    let store = KeyStore::load(&reg).unwrap();
    let caller = store.verify(&k.key).expect("valid key");
    assert_eq!(
        (caller.role, caller.name.as_str(), caller.key_id.as_str()),
        (Role::Score, "gate 2", k.info.id.as_str())
    );
    // One changed character, a truncated key, another format: all rejected.
    let mut wrong = k.key.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == '0' { '1' } else { '0' });
    assert!(store.verify(&wrong).is_none());
    assert!(store.verify(&k.key[..k.key.len() - 1]).is_none());
    assert!(store.verify("hunter2").is_none());
    reg.revoke_key(&k.info.id).unwrap();
    assert!(KeyStore::load(&reg).unwrap().verify(&k.key).is_none());
    let keys = reg.list_keys().unwrap();
    assert_eq!(keys.len(), 3);
    assert!(keys
        .iter()
        .any(|i| i.id == k.info.id && i.revoked_at.is_some()));
    let _ = models();
}
