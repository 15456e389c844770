//! Sigma conditions: `sel and not filter`, `1 of sel*`, `all of them`, parentheses.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Search(usize),
    Not(Box<Condition>),
    And(Vec<Condition>),
    Or(Vec<Condition>),
    /// At least `n` of the searches (`1 of sel*`; `all of` is `n == len`).
    AtLeast(usize, Vec<usize>),
}

impl Condition {
    pub fn eval(&self, search: &mut dyn FnMut(usize) -> bool) -> bool {
        match self {
            Condition::Search(i) => search(*i),
            Condition::Not(c) => !c.eval(search),
            Condition::And(cs) => cs.iter().all(|c| c.eval(search)),
            Condition::Or(cs) => cs.iter().any(|c| c.eval(search)),
            Condition::AtLeast(n, ids) => {
                let mut hits = 0;
                for i in ids {
                    if search(*i) {
                        hits += 1;
                        if hits >= *n {
                            return true;
                        }
                    }
                }
                *n == 0
            }
        }
    }
}

/// Three-valued `and` (Kleene): a known `false` decides; else an unknown leaves it unknown.
pub fn all3(values: impl Iterator<Item = Option<bool>>) -> Option<bool> {
    decided_by(values, false)
}

/// Three-valued `or` (Kleene): a known `true` decides; else an unknown leaves it unknown.
pub fn any3(values: impl Iterator<Item = Option<bool>>) -> Option<bool> {
    decided_by(values, true)
}

/// `decisive` as soon as one value is known to be it; else unknown if one is unknown; else the
/// other value.
fn decided_by(values: impl Iterator<Item = Option<bool>>, decisive: bool) -> Option<bool> {
    let mut unknown = false;
    for v in values {
        match v {
            Some(v) if v == decisive => return Some(decisive),
            None => unknown = true,
            Some(_) => {}
        }
    }
    if unknown { None } else { Some(!decisive) }
}

impl Condition {
    /// [`Condition::eval`] when a search may be unknown (`None`): the answer is `None` unless
    /// the known searches decide it whatever the unknown ones are.
    pub fn eval_partial(&self, search: &mut dyn FnMut(usize) -> Option<bool>) -> Option<bool> {
        match self {
            Condition::Search(i) => search(*i),
            Condition::Not(c) => c.eval_partial(search).map(|v| !v),
            Condition::And(cs) => all3(cs.iter().map(|c| c.eval_partial(search))),
            Condition::Or(cs) => any3(cs.iter().map(|c| c.eval_partial(search))),
            Condition::AtLeast(n, ids) => {
                let (mut hits, mut unknown) = (0, 0);
                for i in ids {
                    match search(*i) {
                        Some(true) => hits += 1,
                        None => unknown += 1,
                        Some(false) => {}
                    }
                }
                if hits >= *n {
                    Some(true)
                } else if hits + unknown < *n {
                    Some(false)
                } else {
                    None
                }
            }
        }
    }
}

impl Condition {
    /// Reorders `and`/`or` operands so that cheap searches run first: the result is the same
    /// (searches have no side effects), but most events are then decided on typed fields before
    /// any request body is parsed. `cost[i]` is the cost of search `i`.
    pub fn cheap_first(&mut self, cost: &[u8]) {
        match self {
            Condition::Search(_) => {}
            Condition::Not(c) => c.cheap_first(cost),
            Condition::And(cs) | Condition::Or(cs) => {
                for c in cs.iter_mut() {
                    c.cheap_first(cost);
                }
                cs.sort_by_key(|c| c.cost(cost));
            }
            Condition::AtLeast(_, ids) => ids.sort_by_key(|&i| cost.get(i).copied().unwrap_or(u8::MAX)),
        }
    }

    fn cost(&self, cost: &[u8]) -> u8 {
        match self {
            Condition::Search(i) => cost.get(*i).copied().unwrap_or(u8::MAX),
            Condition::Not(c) => c.cost(cost),
            Condition::And(cs) | Condition::Or(cs) => cs.iter().map(|c| c.cost(cost)).max().unwrap_or(0),
            Condition::AtLeast(_, ids) => {
                ids.iter().map(|&i| cost.get(i).copied().unwrap_or(u8::MAX)).max().unwrap_or(0)
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Number(usize),
    And,
    Or,
    Not,
    Of,
    All,
    Them,
    Open,
    Close,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Ident(s) => write!(f, "{s:?}"),
            Token::Number(n) => write!(f, "{n}"),
            Token::And => f.write_str("'and'"),
            Token::Or => f.write_str("'or'"),
            Token::Not => f.write_str("'not'"),
            Token::Of => f.write_str("'of'"),
            Token::All => f.write_str("'all'"),
            Token::Them => f.write_str("'them'"),
            Token::Open => f.write_str("'('"),
            Token::Close => f.write_str("')'"),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '(' {
            tokens.push(Token::Open);
            chars.next();
        } else if c == ')' {
            tokens.push(Token::Close);
            chars.next();
        } else if c.is_alphanumeric() || matches!(c, '_' | '*' | '-' | '.' | '?') {
            let mut end = i;
            while let Some(&(j, c)) = chars.peek() {
                if c.is_alphanumeric() || matches!(c, '_' | '*' | '-' | '.' | '?') {
                    end = j + c.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            let word = &text[i..end];
            tokens.push(match word.to_ascii_lowercase().as_str() {
                "and" => Token::And,
                "or" => Token::Or,
                "not" => Token::Not,
                "of" => Token::Of,
                "all" => Token::All,
                "them" => Token::Them,
                "any" => Token::Number(1),
                _ => match word.parse::<usize>() {
                    Ok(n) => Token::Number(n),
                    Err(_) => Token::Ident(word.to_string()),
                },
            });
        } else if c == '|' {
            return Err(
                "the pipe syntax of old Sigma conditions (`| count() by …`) is not supported: write a correlation rule"
                    .into(),
            );
        } else {
            return Err(format!("unexpected character {c:?} at position {}", i + 1));
        }
    }
    Ok(tokens)
}

/// Parses a condition over the named searches.
pub fn parse(text: &str, names: &[String]) -> Result<Condition, String> {
    let tokens = tokenize(text)?;
    if tokens.is_empty() {
        return Err("the condition is empty".into());
    }
    let mut parser = Parser { tokens, pos: 0, names };
    let cond = parser.or()?;
    if let Some(t) = parser.tokens.get(parser.pos) {
        return Err(format!("unexpected {t} after a complete condition"));
    }
    Ok(cond)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    names: &'a [String],
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Result<Condition, String> {
        let mut parts = vec![self.and()?];
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 { parts.pop().unwrap_or(Condition::Or(Vec::new())) } else { Condition::Or(parts) })
    }

    fn and(&mut self) -> Result<Condition, String> {
        let mut parts = vec![self.unary()?];
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 { parts.pop().unwrap_or(Condition::And(Vec::new())) } else { Condition::And(parts) })
    }

    fn unary(&mut self) -> Result<Condition, String> {
        match self.next() {
            Some(Token::Not) => Ok(Condition::Not(Box::new(self.unary()?))),
            Some(Token::Open) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Token::Close) => Ok(inner),
                    Some(t) => Err(format!("expected ')' but found {t}")),
                    None => Err("a '(' is not closed".into()),
                }
            }
            Some(Token::Number(n)) => self.of(Some(n)),
            Some(Token::All) => self.of(None),
            Some(Token::Ident(name)) => {
                if name.contains('*') {
                    return Err(format!("the pattern {name:?} can only follow '1 of' or 'all of'"));
                }
                match self.names.iter().position(|n| *n == name) {
                    Some(i) => Ok(Condition::Search(i)),
                    None => Err(format!(
                        "the condition names {name:?}, which is not a search of this rule (searches: {})",
                        self.names.join(", ")
                    )),
                }
            }
            Some(t) => Err(format!("unexpected {t}")),
            None => Err("the condition ends too early".into()),
        }
    }

    fn of(&mut self, n: Option<usize>) -> Result<Condition, String> {
        match self.next() {
            Some(Token::Of) => {}
            Some(t) => return Err(format!("expected 'of' but found {t}")),
            None => return Err("expected 'of'".into()),
        }
        let ids: Vec<usize> = match self.next() {
            Some(Token::Them) => (0..self.names.len()).filter(|&i| !self.names[i].starts_with('_')).collect(),
            Some(Token::Ident(pattern)) => {
                let ids: Vec<usize> = (0..self.names.len()).filter(|&i| glob_match(&pattern, &self.names[i])).collect();
                if ids.is_empty() {
                    return Err(format!("{pattern:?} matches no search of this rule"));
                }
                ids
            }
            Some(t) => return Err(format!("expected a search name or 'them' but found {t}")),
            None => return Err("expected a search name or 'them'".into()),
        };
        let n = n.unwrap_or(ids.len());
        Ok(Condition::AtLeast(n, ids))
    }
}

/// `sel*`-style patterns over search names.
fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["sel_a", "sel_b", "filter"].iter().map(|s| s.to_string()).collect()
    }

    fn eval(cond: &str, truth: [bool; 3]) -> bool {
        parse(cond, &names()).unwrap().eval(&mut |i| truth[i])
    }

    #[test]
    fn precedence_and_grouping() {
        assert!(eval("sel_a and not filter", [true, false, false]));
        assert!(!eval("sel_a and not filter", [true, false, true]));
        assert!(eval("sel_a or sel_b and filter", [true, false, false]));
        assert!(!eval("(sel_a or sel_b) and filter", [true, false, false]));
        assert!(eval("1 of sel_* and not filter", [false, true, false]));
        assert!(!eval("all of sel_*", [false, true, false]));
        assert!(eval("all of them", [true, true, true]));
        assert!(eval("not (sel_a or filter)", [false, true, false]));
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(parse("sel_a and", &names()).unwrap_err().contains("too early"));
        assert!(parse("sel_c", &names()).unwrap_err().contains("sel_c"));
        assert!(parse("(sel_a", &names()).unwrap_err().contains("not closed"));
        assert!(parse("1 of nope*", &names()).unwrap_err().contains("matches no search"));
        assert!(parse("sel_a | count() > 5", &names()).is_err());
    }
}
