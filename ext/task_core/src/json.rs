//! A JSON reader that hands each value to a `Sink` as soon as it is read, so a caller can
//! build its own values (Ruby objects, in the extension) in document order, without an
//! intermediate tree. It reads what Ruby's `JSON.parse` reads by default: RFC 8259 JSON,
//! integers of any size, at most 100 levels of nesting.

use std::fmt;

pub const MAX_NESTING: usize = 100;

/// Builds values. Containers are made empty and filled as their members are read, so every
/// value is reachable from its parent as soon as it exists.
pub trait Sink {
    type Value: Copy;
    type Error: From<ParseError>;

    fn null(&mut self) -> Result<Self::Value, Self::Error>;
    fn boolean(&mut self, b: bool) -> Result<Self::Value, Self::Error>;
    fn integer(&mut self, n: i64) -> Result<Self::Value, Self::Error>;
    /// An integer outside i64, as its decimal text.
    fn big_integer(&mut self, digits: &str) -> Result<Self::Value, Self::Error>;
    fn float(&mut self, x: f64) -> Result<Self::Value, Self::Error>;
    fn string(&mut self, s: &str) -> Result<Self::Value, Self::Error>;
    fn array(&mut self) -> Result<Self::Value, Self::Error>;
    fn push(&mut self, array: Self::Value, item: Self::Value) -> Result<(), Self::Error>;
    fn object(&mut self, depth: usize) -> Result<Self::Value, Self::Error>;
    /// `depth` is 1 for the members of the outermost object.
    fn insert(
        &mut self,
        object: Self::Value,
        depth: usize,
        key: &str,
        value: Self::Value,
    ) -> Result<(), Self::Error>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    pub offset: usize,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.message, self.offset)
    }
}

impl std::error::Error for ParseError {}

/// Parses `text`, which must hold exactly one JSON object, into the sink.
pub fn parse_object<S: Sink>(text: &str, sink: &mut S) -> Result<S::Value, S::Error> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        scratch: String::new(),
    };
    p.ws();
    if p.peek() != Some(b'{') {
        return Err(p.err("expected a JSON object").into());
    }
    let v = p.value(sink, 0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("unexpected text after the JSON object").into());
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    scratch: String,
}

impl Parser<'_> {
    fn err(&self, msg: &str) -> ParseError {
        ParseError {
            message: msg.to_string(),
            offset: self.i,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &[u8]) -> bool {
        if self.s[self.i..].starts_with(lit) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn value<S: Sink>(&mut self, sink: &mut S, depth: usize) -> Result<S::Value, S::Error> {
        self.ws();
        match self.peek() {
            Some(b'{') => {
                let depth = depth + 1;
                if depth > MAX_NESTING {
                    return Err(self.err("nesting deeper than 100").into());
                }
                self.i += 1;
                let obj = sink.object(depth)?;
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Ok(obj);
                }
                loop {
                    self.ws();
                    if self.peek() != Some(b'"') {
                        return Err(self.err("expected a string key").into());
                    }
                    let key = self.string()?;
                    self.ws();
                    if !self.eat(b":") {
                        return Err(self.err("expected ':'").into());
                    }
                    let v = self.value(sink, depth)?;
                    sink.insert(obj, depth, &key, v)?;
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(obj);
                        }
                        _ => return Err(self.err("expected ',' or '}'").into()),
                    }
                }
            }
            Some(b'[') => {
                let depth = depth + 1;
                if depth > MAX_NESTING {
                    return Err(self.err("nesting deeper than 100").into());
                }
                self.i += 1;
                let arr = sink.array()?;
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(arr);
                }
                loop {
                    let v = self.value(sink, depth)?;
                    sink.push(arr, v)?;
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(arr);
                        }
                        _ => return Err(self.err("expected ',' or ']'").into()),
                    }
                }
            }
            Some(b'"') => {
                let s = self.string()?;
                sink.string(&s)
            }
            Some(b't') if self.eat(b"true") => sink.boolean(true),
            Some(b'f') if self.eat(b"false") => sink.boolean(false),
            Some(b'n') if self.eat(b"null") => sink.null(),
            Some(b'-' | b'0'..=b'9') => self.number(sink),
            _ => Err(self.err("unexpected character").into()),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }

    fn number<S: Sink>(&mut self, sink: &mut S) -> Result<S::Value, S::Error> {
        let start = self.i;
        self.eat(b"-");
        let int_start = self.i;
        let n = self.digits();
        if n == 0 || (n > 1 && self.s[int_start] == b'0') {
            return Err(self.err("malformed number").into());
        }
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(self.err("malformed number").into());
            }
            float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("malformed number").into());
            }
            float = true;
        }
        // The slice holds only ASCII digits and signs.
        let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("0");
        if float {
            match text.parse::<f64>() {
                Ok(x) => sink.float(x),
                Err(_) => Err(self.err("malformed number").into()),
            }
        } else {
            match text.parse::<i64>() {
                Ok(x) => sink.integer(x),
                Err(_) => sink.big_integer(text),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, ParseError> {
        let h = self
            .s
            .get(self.i..self.i + 4)
            .ok_or_else(|| self.err("truncated \\u escape"))?;
        let h = std::str::from_utf8(h).map_err(|_| self.err("bad \\u escape"))?;
        let v = u32::from_str_radix(h, 16).map_err(|_| self.err("bad \\u escape"))?;
        self.i += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, ParseError> {
        self.i += 1; // opening quote
        self.scratch.clear();
        let mut run = self.i;
        loop {
            let Some(b) = self.peek() else {
                return Err(self.err("unterminated string"));
            };
            match b {
                b'"' => {
                    self.push_run(run)?;
                    self.i += 1;
                    return Ok(std::mem::take(&mut self.scratch));
                }
                b'\\' => {
                    self.push_run(run)?;
                    self.i += 1;
                    let Some(e) = self.peek() else {
                        return Err(self.err("unterminated string"));
                    };
                    self.i += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let cp = if (0xD800..0xDC00).contains(&hi) && self.eat(b"\\u") {
                                let lo = self.hex4()?;
                                if (0xDC00..0xE000).contains(&lo) {
                                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                                } else {
                                    return Err(self.err("unpaired surrogate in \\u escape"));
                                }
                            } else {
                                hi
                            };
                            char::from_u32(cp)
                                .ok_or_else(|| self.err("unpaired surrogate in \\u escape"))?
                        }
                        _ => return Err(self.err("unknown escape")),
                    };
                    self.scratch.push(c);
                    run = self.i;
                }
                0..=0x1f => return Err(self.err("control character in string")),
                _ => self.i += 1,
            }
        }
    }

    fn push_run(&mut self, from: usize) -> Result<(), ParseError> {
        let run =
            std::str::from_utf8(&self.s[from..self.i]).map_err(|_| self.err("invalid UTF-8"))?;
        self.scratch.push_str(run);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders what the parser saw, to check order, types and keys.
    struct Render(Vec<String>);

    impl Sink for Render {
        type Value = usize;
        type Error = ParseError;
        fn null(&mut self) -> Result<usize, ParseError> {
            self.leaf("nil".into())
        }
        fn boolean(&mut self, b: bool) -> Result<usize, ParseError> {
            self.leaf(b.to_string())
        }
        fn integer(&mut self, n: i64) -> Result<usize, ParseError> {
            self.leaf(format!("i{n}"))
        }
        fn big_integer(&mut self, d: &str) -> Result<usize, ParseError> {
            self.leaf(format!("I{d}"))
        }
        fn float(&mut self, x: f64) -> Result<usize, ParseError> {
            self.leaf(format!("f{x:?}"))
        }
        fn string(&mut self, s: &str) -> Result<usize, ParseError> {
            self.leaf(format!("{s:?}"))
        }
        fn array(&mut self) -> Result<usize, ParseError> {
            self.leaf("[".into())
        }
        fn push(&mut self, a: usize, v: usize) -> Result<(), ParseError> {
            let item = self.0[v].clone();
            let sep = if self.0[a].len() > 1 { "," } else { "" };
            self.0[a] = format!("{}{sep}{item}", self.0[a]);
            Ok(())
        }
        fn object(&mut self, _d: usize) -> Result<usize, ParseError> {
            self.leaf("{".into())
        }
        fn insert(&mut self, o: usize, depth: usize, k: &str, v: usize) -> Result<(), ParseError> {
            let item = self.0[v].clone();
            let sep = if self.0[o].len() > 1 { "," } else { "" };
            let key = if depth == 1 {
                format!(":{k}")
            } else {
                format!("{k:?}")
            };
            self.0[o] = format!("{}{sep}{key}=>{item}", self.0[o]);
            Ok(())
        }
    }

    impl Render {
        fn leaf(&mut self, s: String) -> Result<usize, ParseError> {
            self.0.push(s);
            Ok(self.0.len() - 1)
        }
    }

    fn render(text: &str) -> Result<String, ParseError> {
        let mut r = Render(Vec::new());
        let v = parse_object(text, &mut r)?;
        Ok(r.0[v].clone())
    }

    #[test]
    fn keeps_order_types_and_top_level_symbols() {
        assert_eq!(
            render(r#" {"b":1,"a":[true,false,null,1.5,-0,1e2],"n":{"k":"v"}} "#).unwrap(),
            // Containers are rendered open: members are appended as the sink receives them.
            r#"{:b=>i1,:a=>[true,false,nil,f1.5,i0,f100.0,:n=>{"k"=>"v""#
        );
    }

    #[test]
    fn big_integers_and_escapes() {
        assert_eq!(
            render(r#"{"big":1180591620717411303424,"neg":-9223372036854775809}"#).unwrap(),
            "{:big=>I1180591620717411303424,:neg=>I-9223372036854775809"
        );
        assert_eq!(
            render(r#"{"s":"a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00é"}"#).unwrap(),
            format!("{{:s=>{:?}", "a\"\\/\u{8}\u{c}\n\r\té😀é")
        );
    }

    #[test]
    fn rejects_what_json_parse_rejects() {
        for bad in [
            "",
            "[]",
            "1",
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":NaN}",
            "{\"a\":\"\u{1}\"}",
            "{\"a\":\"\\x\"}",
            "{\"a\":1} x",
            "{\"a\":\"\\ud800\\u0041\"}",
            "{a:1}",
            "{\"a\":[1,]}",
        ] {
            assert!(render(bad).is_err(), "{bad:?} parsed");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100), "]".repeat(100));
        assert!(render(&deep).unwrap_err().message.contains("nesting"));
        let ok = format!("{{\"a\":{}{}}}", "[".repeat(99), "]".repeat(99));
        assert!(render(&ok).is_ok());
    }
}
