//! The `--help` contract, checked by walking clap's command tree: every flag and positional
//! argument has help text, and every command's long help has at least one example (a line
//! `Example:` or `Examples:` followed by a `customs-risk ...` line). Commands and flags other
//! helpers add are held to the same rule: the failure message names each one that misses it.

use clap::CommandFactory;

/// Everything the tree misses, one line each, e.g.
/// `customs-risk keys create --name: no help text`.
pub fn missing_help(root: &clap::Command) -> Vec<String> {
    let mut out = Vec::new();
    walk(root, root.get_name().to_string(), &mut out);
    out
}

fn walk(cmd: &clap::Command, path: String, out: &mut Vec<String>) {
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if arg.is_hide_set() || id == "help" || id == "version" {
            continue;
        }
        let has_help = arg
            .get_help()
            .is_some_and(|h| !h.to_string().trim().is_empty())
            || arg
                .get_long_help()
                .is_some_and(|h| !h.to_string().trim().is_empty());
        if !has_help {
            let name = match (arg.get_long(), arg.get_short()) {
                (Some(l), _) => format!("--{l}"),
                (None, Some(s)) => format!("-{s}"),
                (None, None) => format!("<{}>", id.to_uppercase()),
            };
            out.push(format!(
                "{path} {name}: no help text (add a /// doc comment to the field)"
            ));
        }
    }
    if path.contains(' ') || cmd.get_subcommands().next().is_none() {
        let long = cmd
            .get_long_about()
            .or(cmd.get_about())
            .map(|s| s.to_string())
            .unwrap_or_default()
            + &cmd
                .get_after_long_help()
                .or(cmd.get_after_help())
                .map(|s| s.to_string())
                .unwrap_or_default();
        if !has_example(&long) {
            out.push(format!(
                "{path}: long help has no example (a line `Example:` followed by an indented \
                 `customs-risk ...` command line in the doc comment of its Args)"
            ));
        }
    }
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        walk(sub, format!("{path} {}", sub.get_name()), out);
    }
}

/// `Example:` / `Examples:` on a line of its own, then a `customs-risk` command line.
pub fn has_example(text: &str) -> bool {
    let mut lines = text.lines().map(str::trim);
    while let Some(l) = lines.next() {
        if l.starts_with("Example")
            && l.ends_with(':')
            && lines
                .clone()
                .take_while(|l| !l.is_empty())
                .any(|l| l.starts_with("customs-risk "))
        {
            return true;
        }
    }
    false
}

#[test]
fn every_flag_has_help_and_every_command_an_example() {
    let root = crate::Cli::command();
    root.clone().debug_assert();
    let missing = missing_help(&root);
    assert!(
        missing.is_empty(),
        "`customs-risk --help` must teach: {} problem(s):\n  {}",
        missing.len(),
        missing.join("\n  ")
    );
}

#[test]
fn the_check_catches_what_it_should() {
    let cmd = clap::Command::new("x")
        .subcommand(
            clap::Command::new("a")
                .long_about("Does a.\n\nExample:\n  customs-risk a --n 3")
                .arg(clap::Arg::new("n").long("n").help("How many.")),
        )
        .subcommand(
            clap::Command::new("b")
                .about("Does b, no example.")
                .arg(clap::Arg::new("m").long("m")),
        );
    assert_eq!(
        missing_help(&cmd),
        vec![
            "x b --m: no help text (add a /// doc comment to the field)".to_string(),
            "x b: long help has no example (a line `Example:` followed by an indented \
             `customs-risk ...` command line in the doc comment of its Args)"
                .to_string(),
        ]
    );
    assert!(!has_example("Example:\n\n  customs-risk a"));
    assert!(!has_example("for example customs-risk a"));
}
