//! Malformed policies: each is refused at load time with the file, line, column and (inside a
//! rule) the rule's name. Expected positions are counted by hand from the texts below.

use cr_policy::ErrorKind;

use crate::common::{load, HEAD};

/// `HEAD` ends with line 9; a rule appended by `rule()` puts `[[rule]]` on line 11, `name` on
/// 12, `when = '...'` on 13 (the expression starts at column 9) and `channel` on 14.
fn rule(name: &str, when: &str) -> String {
    format!("\n[[rule]]\nname = \"{name}\"\nwhen = '{when}'\nchannel = \"red\"\n")
}

#[track_caller]
#[allow(clippy::too_many_arguments)]
fn expect(
    text: &str,
    others: &[(&str, &str)],
    kind: ErrorKind,
    file: &str,
    line: usize,
    column: usize,
    rule: Option<&str>,
    needle: &str,
) {
    let e = match load(text, others) {
        Ok(_) => panic!("accepted a malformed policy:\n{text}"),
        Err(e) => e,
    };
    let shown = e.to_string();
    assert_eq!(e.kind, kind, "{shown}");
    let at =
        e.at.as_ref()
            .unwrap_or_else(|| panic!("no location: {shown}"));
    assert_eq!(
        at.file.file_name().and_then(|f| f.to_str()),
        Some(file),
        "{shown}"
    );
    assert_eq!((at.line, at.column), (line, column), "{shown}");
    assert_eq!(e.rule.as_deref(), rule, "{shown}");
    assert!(shown.contains(needle), "`{needle}` not in: {shown}");
    assert!(shown.starts_with(&format!("{}:{line}:{column}: ", at.file.display())));
}

fn with_rule(name: &str, when: &str) -> String {
    format!("{HEAD}{}", rule(name, when))
}

const LIST: &str = "\n[[watch_list]]\nname = \"imps\"\nkind = \"importer\"\nfile = \"list.csv\"\n";

#[test]
fn unknown_field() {
    let t = with_rule("r1", "colour == \"red\"");
    expect(
        &t,
        &[],
        ErrorKind::Type,
        "policy.toml",
        13,
        9,
        Some("r1"),
        "unknown field `colour`",
    );
}

#[test]
fn country_compared_with_a_number() {
    let t = with_rule("r2", "origin_country > 5");
    expect(
        &t,
        &[],
        ErrorKind::Type,
        "policy.toml",
        13,
        26,
        Some("r2"),
        "with a number",
    );
}

#[test]
fn unknown_watch_list() {
    let t = with_rule("r3", "importer in @nosuch");
    expect(
        &t,
        &[],
        ErrorKind::Type,
        "policy.toml",
        13,
        22,
        Some("r3"),
        "unknown watch list `nosuch`",
    );
}

#[test]
fn watch_list_of_the_wrong_kind() {
    // the list block comes first (lines 10-14), so the rule's `when` is on line 18
    let t = format!("{HEAD}{LIST}{}", rule("r4", "seller in @imps"));
    let files = [("list.csv", "value\nIMP1\n")];
    expect(
        &t,
        &files,
        ErrorKind::Type,
        "policy.toml",
        18,
        9,
        Some("r4"),
        "holds importer entries",
    );
}

#[test]
fn unclosed_parenthesis() {
    let t = with_rule("r5", "(value > 1");
    expect(
        &t,
        &[],
        ErrorKind::Syntax,
        "policy.toml",
        13,
        19,
        Some("r5"),
        "is not closed",
    );
}

#[test]
fn missing_operand() {
    let t = with_rule("r6", "value >");
    expect(
        &t,
        &[],
        ErrorKind::Syntax,
        "policy.toml",
        13,
        16,
        Some("r6"),
        "expected a field, number or string",
    );
}

#[test]
fn unexpected_character() {
    let t = with_rule("r7", "value > 1 $");
    expect(
        &t,
        &[],
        ErrorKind::Syntax,
        "policy.toml",
        13,
        19,
        Some("r7"),
        "unexpected character `$`",
    );
}

#[test]
fn single_equals_is_not_an_operator() {
    let t = with_rule("r8", "value = 5");
    expect(
        &t,
        &[],
        ErrorKind::Syntax,
        "policy.toml",
        13,
        15,
        Some("r8"),
        "is not an operator",
    );
}

#[test]
fn unterminated_string() {
    let t = with_rule("r9", "origin_country == \"CN");
    expect(
        &t,
        &[],
        ErrorKind::Syntax,
        "policy.toml",
        13,
        27,
        Some("r9"),
        "string is not closed",
    );
}

#[test]
fn starts_with_on_a_categorical_field() {
    let t = with_rule("r10", "importer starts_with \"IMP\"");
    expect(
        &t,
        &[],
        ErrorKind::Type,
        "policy.toml",
        13,
        9,
        Some("r10"),
        "applies to the HS code only",
    );
}

#[test]
fn hs_prefix_with_a_letter() {
    let t = with_rule("r11", "hs_code starts_with \"9x\"");
    expect(
        &t,
        &[],
        ErrorKind::Type,
        "policy.toml",
        13,
        29,
        Some("r11"),
        "is not an HS prefix",
    );
}

#[test]
fn hs_code_compared_with_a_number() {
    let t = with_rule("r12", "hs_code == 930100");
    expect(
        &t,
        &[],
        ErrorKind::Type,
        "policy.toml",
        13,
        20,
        Some("r12"),
        "write HS codes as strings",
    );
}

#[test]
fn impossible_date_literal() {
    let t = with_rule("r13", "date >= \"2024-13-01\"");
    expect(
        &t,
        &[],
        ErrorKind::Type,
        "policy.toml",
        13,
        17,
        Some("r13"),
        "is not a date",
    );
}

#[test]
fn ordering_on_a_categorical_field() {
    let t = with_rule("r14", "importer < \"B\"");
    expect(
        &t,
        &[],
        ErrorKind::Type,
        "policy.toml",
        13,
        9,
        Some("r14"),
        "`<` does not apply",
    );
}

#[test]
fn unknown_channel() {
    let t = format!("{HEAD}\n[[rule]]\nname = \"r15\"\nwhen = 'value > 1'\nchannel = \"purple\"\n");
    expect(
        &t,
        &[],
        ErrorKind::Invalid,
        "policy.toml",
        14,
        11,
        Some("r15"),
        "unknown channel \"purple\"",
    );
}

#[test]
fn duplicate_rule_name() {
    let t = format!(
        "{HEAD}{}{}",
        rule("twice", "value > 1"),
        rule("twice", "mass > 1")
    );
    expect(
        &t,
        &[],
        ErrorKind::Invalid,
        "policy.toml",
        17,
        8,
        Some("twice"),
        "already declared",
    );
}

#[test]
fn invalid_valid_from() {
    let t = format!(
        "{HEAD}{}valid_from = \"2024-02-30\"\n",
        rule("r17", "value > 1")
    );
    expect(
        &t,
        &[],
        ErrorKind::Invalid,
        "policy.toml",
        15,
        14,
        Some("r17"),
        "is not a date",
    );
}

#[test]
fn valid_to_before_valid_from() {
    let t = format!(
        "{HEAD}{}valid_from = \"2024-02-01\"\nvalid_to = \"2024-01-01\"\n",
        rule("r18", "value > 1")
    );
    expect(
        &t,
        &[],
        ErrorKind::Invalid,
        "policy.toml",
        16,
        12,
        Some("r18"),
        "before valid_from",
    );
}

#[test]
fn unknown_key_in_a_rule() {
    let t = format!("{HEAD}{}colour = \"x\"\n", rule("r19", "value > 1"));
    expect(
        &t,
        &[],
        ErrorKind::Toml,
        "policy.toml",
        15,
        1,
        None,
        "unknown field `colour`",
    );
}

#[test]
fn capacity_share_out_of_range() {
    let t = HEAD.replace("share = 0.1", "share = 1.5");
    expect(
        &t,
        &[],
        ErrorKind::Invalid,
        "policy.toml",
        4,
        9,
        None,
        "must be in (0, 1]",
    );
}

#[test]
fn random_floor_zero() {
    let t = HEAD.replace("floor = 0.05", "floor = 0.0");
    expect(
        &t,
        &[],
        ErrorKind::Invalid,
        "policy.toml",
        8,
        9,
        None,
        "random floor 0 must be in (0, 1]",
    );
}

#[test]
fn malformed_watch_list_line() {
    let t = format!("{HEAD}{LIST}");
    let files = [(
        "list.csv",
        "value,valid_from\nIMP1,2024-01-01\nIMP2,2024-99-01\n",
    )];
    expect(
        &t,
        &files,
        ErrorKind::WatchList,
        "list.csv",
        3,
        2,
        None,
        "`2024-99-01` is not a date",
    );
}

#[test]
fn watch_list_with_a_missing_field() {
    let t = format!("{HEAD}{LIST}");
    let files = [(
        "list.csv",
        "value,valid_from,valid_to\nIMP1,,\nIMP2,2024-01-01\n",
    )];
    expect(
        &t,
        &files,
        ErrorKind::WatchList,
        "list.csv",
        3,
        1,
        None,
        "2 fields, the header has 3",
    );
}

#[test]
fn missing_watch_list_file() {
    let t = format!("{HEAD}{LIST}");
    expect(
        &t,
        &[],
        ErrorKind::Io,
        "policy.toml",
        14,
        8,
        None,
        "list.csv",
    );
}

#[test]
fn empty_condition() {
    let t = with_rule("r25", "");
    expect(
        &t,
        &[],
        ErrorKind::Syntax,
        "policy.toml",
        13,
        9,
        Some("r25"),
        "is empty",
    );
}

#[test]
fn not_without_in() {
    let t = with_rule("r26", "importer not == \"x\"");
    expect(
        &t,
        &[],
        ErrorKind::Syntax,
        "policy.toml",
        13,
        22,
        Some("r26"),
        "expected `in` after `not`",
    );
}

#[test]
fn numbers_listed_for_a_country() {
    let t = with_rule("r27", "origin_country in [1, 2]");
    expect(
        &t,
        &[],
        ErrorKind::Type,
        "policy.toml",
        13,
        28,
        Some("r27"),
        "must hold strings",
    );
}

#[test]
fn two_constants() {
    let t = with_rule("r28", "1 < 2");
    expect(
        &t,
        &[],
        ErrorKind::Type,
        "policy.toml",
        13,
        9,
        Some("r28"),
        "two constants",
    );
}

#[test]
fn expected_revenue_ranking_is_refused_for_now() {
    let t = format!("{HEAD}\n[ranking]\nby = \"expected_revenue\"\n");
    expect(
        &t,
        &[],
        ErrorKind::Invalid,
        "policy.toml",
        12,
        6,
        None,
        "needs a revenue model",
    );
}

#[test]
fn error_on_the_second_line_of_a_multiline_rule() {
    let t = format!(
        "{HEAD}\n[[rule]]\nname = \"multi\"\nwhen = '''\nvalue > 1 and\n  colour == \"x\"'''\nchannel = \"red\"\n"
    );
    expect(
        &t,
        &[],
        ErrorKind::Type,
        "policy.toml",
        15,
        3,
        Some("multi"),
        "unknown field `colour`",
    );
}

#[test]
fn not_toml_at_all() {
    let t = format!("{HEAD}\n[[rule]\n");
    expect(&t, &[], ErrorKind::Toml, "policy.toml", 11, 7, None, "");
}

#[test]
fn the_example_policy_loads() {
    let p =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/policies/example.toml");
    let pol = cr_policy::Policy::load(&p, &crate::common::schema()).expect("example loads");
    assert_eq!(pol.channels, ["green", "yellow", "red", "blue"]);
    assert_eq!(pol.lists.len(), 3);
    assert!(pol.rules.iter().any(|r| r.mandatory) && pol.rules.iter().any(|r| !r.mandatory));
}
