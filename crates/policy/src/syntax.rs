//! The rule language's syntax: a hand-written lexer and a recursive-descent parser that
//! keep byte spans (relative to the expression) on every node, so type errors can point
//! at the offending token.
//!
//! Grammar (keywords are case-sensitive, lower case):
//!
//! ```text
//! expr    := and ("or" and)*
//! and     := unary ("and" unary)*
//! unary   := "not" unary | test
//! test    := "(" expr ")"
//!          | operand (cmp operand
//!                     | ["not"] "in" "[" literal ("," literal)* [","] "]"
//!                     | ["not"] "in" "@" NAME
//!                     | "starts_with" (STRING | "[" STRING ("," STRING)* [","] "]"))
//! cmp     := "==" | "!=" | "<" | "<=" | ">" | ">="
//! operand := NAME | NUMBER | STRING
//! literal := NUMBER | STRING
//! ```
//!
//! Strings are quoted with `"` or `'` (no escapes); numbers are decimal with an optional
//! fraction and exponent and an optional leading `-`. Names are `[A-Za-z_][A-Za-z0-9_.]*`.

use std::fmt;

/// Byte range `[start, end)` inside the expression text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    fn to(self, other: Span) -> Span {
        Span {
            start: self.start,
            end: other.end,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Num(f64),
    Str(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    At,
    Cmp(CmpOp),
    End,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Name(n) => write!(f, "`{n}`"),
            Tok::Num(x) => write!(f, "number {x}"),
            Tok::Str(s) => write!(f, "string \"{s}\""),
            Tok::LParen => f.write_str("`(`"),
            Tok::RParen => f.write_str("`)`"),
            Tok::LBracket => f.write_str("`[`"),
            Tok::RBracket => f.write_str("`]`"),
            Tok::Comma => f.write_str("`,`"),
            Tok::At => f.write_str("`@`"),
            Tok::Cmp(op) => write!(f, "`{}`", op.as_str()),
            Tok::End => f.write_str("the end of the rule"),
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
    /// The operator with its operands swapped (`a < b` == `b > a`).
    pub fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            o => o,
        }
    }
}

/// A syntax error: where (byte span in the expression) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub span: Span,
    pub message: String,
}

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Field(String, Span),
    Num(f64, Span),
    Str(String, Span),
}

impl Operand {
    pub fn span(&self) -> Span {
        match self {
            Operand::Field(_, s) | Operand::Num(_, s) | Operand::Str(_, s) => *s,
        }
    }
}

/// The parsed expression tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Cmp {
        lhs: Operand,
        op: CmpOp,
        rhs: Operand,
    },
    /// `lhs [not] in [a, b, ...]`
    InSet {
        lhs: Operand,
        items: Vec<Operand>,
        negated: bool,
    },
    /// `lhs [not] in @list`
    InList {
        lhs: Operand,
        list: String,
        list_span: Span,
        negated: bool,
    },
    /// `lhs starts_with "93"` or `lhs starts_with ["93", "2402"]`
    StartsWith {
        lhs: Operand,
        prefixes: Vec<Operand>,
    },
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn next(&mut self) -> Result<(Tok, Span), SyntaxError> {
        let b = self.src.as_bytes();
        while self.pos < b.len() && b[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
        let start = self.pos;
        let span = |end: usize| Span { start, end };
        let Some(&c) = b.get(start) else {
            return Ok((Tok::End, span(start)));
        };
        let one = |t: Tok| Ok((t, span(start + 1)));
        match c {
            b'(' => {
                self.pos += 1;
                one(Tok::LParen)
            }
            b')' => {
                self.pos += 1;
                one(Tok::RParen)
            }
            b'[' => {
                self.pos += 1;
                one(Tok::LBracket)
            }
            b']' => {
                self.pos += 1;
                one(Tok::RBracket)
            }
            b',' => {
                self.pos += 1;
                one(Tok::Comma)
            }
            b'@' => {
                self.pos += 1;
                one(Tok::At)
            }
            b'=' | b'!' | b'<' | b'>' => {
                let two = b.get(start + 1) == Some(&b'=');
                let op = match (c, two) {
                    (b'=', true) => CmpOp::Eq,
                    (b'!', true) => CmpOp::Ne,
                    (b'<', true) => CmpOp::Le,
                    (b'>', true) => CmpOp::Ge,
                    (b'<', false) => CmpOp::Lt,
                    (b'>', false) => CmpOp::Gt,
                    _ => {
                        return Err(SyntaxError {
                            span: span(start + 1),
                            message: format!(
                                "`{}` is not an operator (comparisons: == != < <= > >=)",
                                c as char
                            ),
                        })
                    }
                };
                self.pos += if two { 2 } else { 1 };
                Ok((Tok::Cmp(op), span(self.pos)))
            }
            b'"' | b'\'' => {
                let close = self.src[start + 1..].find(c as char).map(|i| start + 1 + i);
                match close {
                    Some(end) => {
                        self.pos = end + 1;
                        Ok((
                            Tok::Str(self.src[start + 1..end].to_string()),
                            span(self.pos),
                        ))
                    }
                    None => Err(SyntaxError {
                        span: span(b.len()),
                        message: format!("string is not closed (missing {})", c as char),
                    }),
                }
            }
            b'0'..=b'9' | b'-' | b'.' => {
                let mut end = start + 1;
                while end < b.len()
                    && (b[end].is_ascii_digit()
                        || b[end] == b'.'
                        || ((b[end] == b'e' || b[end] == b'E')
                            && b.get(end + 1)
                                .is_some_and(|n| n.is_ascii_digit() || *n == b'-' || *n == b'+'))
                        || ((b[end] == b'-' || b[end] == b'+')
                            && matches!(b[end - 1], b'e' | b'E')))
                {
                    end += 1;
                }
                let text = &self.src[start..end];
                match text.parse::<f64>() {
                    Ok(x) if x.is_finite() => {
                        self.pos = end;
                        Ok((Tok::Num(x), span(end)))
                    }
                    _ => Err(SyntaxError {
                        span: span(end),
                        message: format!("`{text}` is not a number"),
                    }),
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let mut end = start + 1;
                while end < b.len()
                    && (b[end].is_ascii_alphanumeric() || b[end] == b'_' || b[end] == b'.')
                {
                    end += 1;
                }
                self.pos = end;
                Ok((Tok::Name(self.src[start..end].to_string()), span(end)))
            }
            _ => {
                let ch = self.src[start..].chars().next().unwrap_or('?');
                Err(SyntaxError {
                    span: span(start + ch.len_utf8()),
                    message: format!("unexpected character `{ch}`"),
                })
            }
        }
    }
}

/// Parse a rule expression.
pub fn parse(src: &str) -> Result<Expr, SyntaxError> {
    let mut lx = Lexer { src, pos: 0 };
    let mut toks = Vec::new();
    loop {
        let t = lx.next()?;
        let end = t.0 == Tok::End;
        toks.push(t);
        if end {
            break;
        }
    }
    let mut p = Parser {
        toks,
        i: 0,
        depth: 0,
    };
    if p.peek() == &Tok::End {
        return Err(SyntaxError {
            span: p.span(),
            message: "the rule's condition is empty".into(),
        });
    }
    let e = p.or()?;
    if p.peek() != &Tok::End {
        return Err(p.unexpected("`and`, `or` or the end of the rule"));
    }
    Ok(e)
}

struct Parser {
    toks: Vec<(Tok, Span)>,
    i: usize,
    depth: usize,
}

/// Nesting deeper than this is refused (no stack overflow on hostile input).
const MAX_DEPTH: usize = 64;

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.i.min(self.toks.len() - 1)].0
    }
    fn span(&self) -> Span {
        self.toks[self.i.min(self.toks.len() - 1)].1
    }
    fn bump(&mut self) -> (Tok, Span) {
        let t = self.toks[self.i.min(self.toks.len() - 1)].clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Name(n) if n == kw)
    }
    fn unexpected(&self, wanted: &str) -> SyntaxError {
        SyntaxError {
            span: self.span(),
            message: format!("expected {wanted}, found {}", self.peek()),
        }
    }

    fn or(&mut self) -> Result<Expr, SyntaxError> {
        let mut items = vec![self.and()?];
        while self.is_kw("or") {
            self.bump();
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn and(&mut self) -> Result<Expr, SyntaxError> {
        let mut items = vec![self.unary()?];
        while self.is_kw("and") {
            self.bump();
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn unary(&mut self) -> Result<Expr, SyntaxError> {
        // every `not` and `(` passes through here: the depth bounds the recursion
        if self.depth >= MAX_DEPTH {
            return Err(SyntaxError {
                span: self.span(),
                message: format!("the rule nests deeper than {MAX_DEPTH} levels"),
            });
        }
        self.depth += 1;
        let e = self.unary_inner();
        self.depth -= 1;
        e
    }

    fn unary_inner(&mut self) -> Result<Expr, SyntaxError> {
        if self.is_kw("not") {
            self.bump();
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.test()
    }

    fn test(&mut self) -> Result<Expr, SyntaxError> {
        if self.peek() == &Tok::LParen {
            let (_, open) = self.bump();
            let e = self.or()?;
            if self.peek() != &Tok::RParen {
                let mut err = self.unexpected("`)`");
                if self.peek() == &Tok::End {
                    err.message = format!("`(` at offset {} is not closed", open.start);
                }
                return Err(err);
            }
            self.bump();
            return Ok(e);
        }
        let lhs = self.operand()?;
        if let Tok::Cmp(op) = *self.peek() {
            self.bump();
            let rhs = self.operand()?;
            return Ok(Expr::Cmp { lhs, op, rhs });
        }
        let mut negated = false;
        if self.is_kw("not") {
            self.bump();
            negated = true;
            if !self.is_kw("in") {
                return Err(self.unexpected("`in` after `not`"));
            }
        }
        if self.is_kw("in") {
            self.bump();
            if self.peek() == &Tok::At {
                self.bump();
                let (t, list_span) = self.bump();
                let Tok::Name(list) = t else {
                    return Err(SyntaxError {
                        span: list_span,
                        message: format!("expected a watch list name after `@`, found {t}"),
                    });
                };
                return Ok(Expr::InList {
                    lhs,
                    list,
                    list_span,
                    negated,
                });
            }
            let items = self.literal_list()?;
            return Ok(Expr::InSet {
                lhs,
                items,
                negated,
            });
        }
        if self.is_kw("starts_with") {
            self.bump();
            let prefixes = if self.peek() == &Tok::LBracket {
                self.literal_list()?
            } else {
                vec![self.literal()?]
            };
            return Ok(Expr::StartsWith { lhs, prefixes });
        }
        Err(self.unexpected("a comparison (== != < <= > >=), `in` or `starts_with`"))
    }

    fn literal_list(&mut self) -> Result<Vec<Operand>, SyntaxError> {
        if self.peek() != &Tok::LBracket {
            return Err(self.unexpected("`[` (a list of values) or `@` (a watch list)"));
        }
        let (_, open) = self.bump();
        let mut items = Vec::new();
        loop {
            if self.peek() == &Tok::RBracket {
                let (_, close) = self.bump();
                if items.is_empty() {
                    return Err(SyntaxError {
                        span: open.to(close),
                        message: "the list is empty".into(),
                    });
                }
                return Ok(items);
            }
            items.push(self.literal()?);
            match self.peek() {
                Tok::Comma => {
                    self.bump();
                }
                Tok::RBracket => {}
                _ => return Err(self.unexpected("`,` or `]`")),
            }
        }
    }

    fn literal(&mut self) -> Result<Operand, SyntaxError> {
        match self.peek() {
            Tok::Num(_) | Tok::Str(_) => self.operand(),
            _ => Err(self.unexpected("a number or a string")),
        }
    }

    fn operand(&mut self) -> Result<Operand, SyntaxError> {
        let (t, span) = self.bump();
        match t {
            Tok::Name(n) if matches!(n.as_str(), "and" | "or" | "not" | "in" | "starts_with") => {
                Err(SyntaxError {
                    span,
                    message: format!("expected a field, number or string, found keyword `{n}`"),
                })
            }
            Tok::Name(n) => Ok(Operand::Field(n, span)),
            Tok::Num(x) => Ok(Operand::Num(x, span)),
            Tok::Str(s) => Ok(Operand::Str(s, span)),
            t => Err(SyntaxError {
                span,
                message: format!("expected a field, number or string, found {t}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_and_binds_tighter_than_or() {
        let e = parse("a > 1 or b < 2 and not c == 'x'").expect("parses");
        let Expr::Or(items) = e else {
            panic!("top is or")
        };
        assert_eq!(items.len(), 2);
        assert!(matches!(&items[1], Expr::And(v) if v.len() == 2));
    }

    #[test]
    fn spans_point_at_tokens() {
        let e = parse("value >= 1e3").expect("parses");
        let Expr::Cmp { lhs, op, rhs } = e else {
            panic!()
        };
        assert_eq!(lhs.span(), Span { start: 0, end: 5 });
        assert_eq!(op, CmpOp::Ge);
        assert_eq!(rhs, Operand::Num(1000.0, Span { start: 9, end: 12 }));
    }

    #[test]
    fn lists_and_watch_lists() {
        assert!(matches!(
            parse("origin_country not in ['CN', 'VN',]"),
            Ok(Expr::InSet { negated: true, ref items, .. }) if items.len() == 2
        ));
        assert!(matches!(
            parse("importer in @bad"),
            Ok(Expr::InList { ref list, list_span: Span { start: 13, end: 16 }, .. }) if list == "bad"
        ));
        assert!(matches!(
            parse("hs_code starts_with ['93', '2402']"),
            Ok(Expr::StartsWith { ref prefixes, .. }) if prefixes.len() == 2
        ));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let src = format!("{}a > 1{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(parse(&src).is_err());
        let src = format!("{}a > 1", "not ".repeat(10_000));
        assert!(parse(&src).is_err());
    }
}
