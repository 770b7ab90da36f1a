//! The data hash <-> the JSON text in the `data` column. Writing follows what Ruby's
//! `JSON.generate` writes (the original gem's format) byte for byte; reading gives what
//! `JSON.parse` gives, with the top-level keys as Symbols.

use magnus::encoding::EncodingCapable;
use magnus::r_hash::ForEach;
use magnus::rb_sys::AsRawValue;
use magnus::value::{IntoId, LazyId, ReprValue};
use magnus::{
    Class, Error, Float, Integer, Module, RArray, RClass, RHash, RModule, RString, Ruby, Symbol,
    Value,
};
use task_core::json;

use crate::{errors, raw};

/// `JSON.generate`'s default nesting limit; also what stops a hash that contains itself.
const MAX_DEPTH: usize = 100;

/// The JSON text of a data hash. `what` names the task in error messages.
pub fn data_to_json(ruby: &Ruby, data: RHash, what: &dyn Fn() -> String) -> Result<String, Error> {
    let mut out = String::with_capacity(64);
    let mut w = Writer {
        ruby,
        out: &mut out,
        state: None,
        canonical: true,
        check_keys: false,
    };
    w.hash(data, 1).map_err(|e| match e {
        WriteError::Ruby(e) => e,
        WriteError::Bad(msg, path) => {
            let at = if path.is_empty() {
                String::new()
            } else {
                format!(" at data{}", path)
            };
            errors::bad_data(ruby, format!("{}: cannot store data{at}: {msg}", what()))
        }
    })?;
    Ok(out)
}

enum WriteError {
    Ruby(Error),
    /// What is wrong, and where: the path (`[:key][2]`) is filled in as the error travels
    /// up through the hashes and arrays it is in, so success never pays for it.
    Bad(String, String),
}

impl WriteError {
    fn within(self, segment: impl FnOnce() -> String) -> Self {
        match self {
            WriteError::Bad(msg, path) => WriteError::Bad(msg, segment() + &path),
            other => other,
        }
    }
}

impl From<Error> for WriteError {
    fn from(e: Error) -> Self {
        WriteError::Ruby(e)
    }
}

struct Writer<'a> {
    ruby: &'a Ruby,
    out: &'a mut String,
    /// The `JSON::State` handed to `to_json` methods, made on first need and shared by the
    /// whole document as JSON.generate shares its one. (The Writer lives on the stack, so the
    /// GC sees it.)
    state: Option<Value>,
    /// False once the text may differ from what `JSON.generate` writes for the same value
    /// after a JSON round trip (`as_json`): an object's own `to_json` (its text is kept as
    /// written), or (with `check_keys`) a hash two of whose keys are written alike, which
    /// the round trip makes one.
    canonical: bool,
    check_keys: bool,
}

impl Writer<'_> {
    fn bad<T>(&self, msg: impl Into<String>) -> Result<T, WriteError> {
        Err(WriteError::Bad(msg.into(), String::new()))
    }

    fn value(&mut self, v: Value, depth: usize) -> Result<(), WriteError> {
        let ruby = self.ruby;
        if v.is_nil() {
            self.out.push_str("null");
        } else if v.as_raw() == ruby.qtrue().as_raw() {
            self.out.push_str("true");
        } else if v.as_raw() == ruby.qfalse().as_raw() {
            self.out.push_str("false");
        } else if let Some(s) = RString::from_value(v) {
            self.string(s)?;
        } else if let Some(s) = Symbol::from_value(v) {
            // Via the String: Symbol#name's C string would stop at an embedded NUL.
            self.string(s.to_r_string()?)?;
        } else if let Some(i) = Integer::from_value(v) {
            match i.to_i64() {
                // Written in place: a String per Integer was a malloc and a free each.
                Ok(n) => {
                    let _ = std::fmt::Write::write_fmt(self.out, format_args!("{n}"));
                }
                Err(_) => {
                    let s: String = i.funcall("to_s", ())?;
                    self.out.push_str(&s);
                }
            }
        } else if let Some(f) = Float::from_value(v) {
            let x = f.to_f64();
            if !x.is_finite() {
                let name = if x.is_nan() {
                    "NaN"
                } else if x > 0.0 {
                    "Infinity"
                } else {
                    "-Infinity"
                };
                return self.bad(format!("{name} is not representable in JSON"));
            }
            // Float#to_s is the text JSON.generate writes (1.0e+20, 0.1, 100.0).
            let s: String = f.funcall("to_s", ())?;
            self.out.push_str(&s);
        } else if let Some(h) = RHash::from_value(v) {
            self.hash(h, depth + 1)?;
        } else if let Some(a) = RArray::from_value(v) {
            self.array(a, depth + 1)?;
        } else {
            self.canonical = false;
            self.object(v, depth)?;
        }
        Ok(())
    }

    /// Writes a String as JSON; other encodings are converted to UTF-8 first, as
    /// JSON.generate does, and bytes that are not valid UTF-8 are refused.
    fn string(&mut self, s: RString) -> Result<(), WriteError> {
        self.text(s, "string")
    }

    /// `string`, for a hash key (`what` names it in a refusal).
    fn text(&mut self, s: RString, what: &str) -> Result<(), WriteError> {
        let ruby = self.ruby;
        let enc = s.enc_get();
        let s = if enc == ruby.utf8_encindex()
            || enc == ruby.usascii_encindex()
            || enc == ruby.ascii8bit_encindex()
        {
            s
        } else {
            match s.funcall::<_, _, RString>("encode", ("UTF-8",)) {
                Ok(u) => u,
                Err(e) => return self.bad(format!("{what} could not be converted to UTF-8: {e}")),
            }
        };
        // SAFETY: the bytes are copied into `out` before any Ruby code can run.
        let bytes = unsafe { s.as_slice() };
        match std::str::from_utf8(bytes) {
            Ok(text) => write_str(self.out, text),
            Err(_) => {
                return self.bad(format!(
                    "{what} {} is not valid UTF-8",
                    short_inspect(s.as_value())
                ))
            }
        }
        Ok(())
    }

    /// Hash keys are written as strings: JSON.generate uses their `to_s`.
    fn key(&mut self, k: Value) -> Result<(), WriteError> {
        let s = match RString::from_value(k) {
            Some(s) => s,
            // A Symbol's own frozen name, as JSON's generator takes it: no new String.
            None => match Symbol::from_value(k)
                .map(raw::sym2str)
                .and_then(RString::from_value)
            {
                Some(s) => s,
                None => k.to_r_string()?,
            },
        };
        // A top-level String key that could not become a Symbol (see task.rs) ends up here
        // as well as a nested one: both are refused the same way.
        self.text(s, "key")
    }

    fn hash(&mut self, h: RHash, depth: usize) -> Result<(), WriteError> {
        if depth > MAX_DEPTH {
            return self.bad(format!(
                "nested deeper than {MAX_DEPTH} levels (does it contain itself?)"
            ));
        }
        self.out.push('{');
        let mut first = true;
        let mut failure: Option<WriteError> = None;
        // Where each key's text was written (`check_keys`): distinct keys of the hash may
        // be written alike (`:a` and `"a"`, "é" in two encodings, 1 and "1").
        // Compared one by one in a small hash, through a set in a large one.
        let mut keys: Vec<(usize, usize)> = Vec::new();
        let mut key_set: std::collections::HashSet<Vec<u8>> = Default::default();
        let check_keys = self.check_keys && h.len() > 1;
        let small = h.len() <= 16;
        h.foreach(|k: Value, v: Value| {
            let r = (|| {
                if !first {
                    self.out.push(',');
                }
                first = false;
                let start = self.out.len();
                self.key(k)?;
                if check_keys {
                    let end = self.out.len();
                    let text = &self.out.as_bytes()[start..end];
                    let repeated = if small {
                        let seen = keys
                            .iter()
                            .any(|&(a, b)| &self.out.as_bytes()[a..b] == text);
                        keys.push((start, end));
                        seen
                    } else {
                        !key_set.insert(text.to_vec())
                    };
                    if repeated {
                        self.canonical = false;
                    }
                }
                self.out.push(':');
                self.value(v, depth)
                    .map_err(|e| e.within(|| format!("[{}]", k.inspect())))
            })();
            match r {
                Ok(()) => Ok(ForEach::Continue),
                Err(e) => {
                    failure = Some(e);
                    Ok(ForEach::Stop)
                }
            }
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        self.out.push('}');
        Ok(())
    }

    fn array(&mut self, a: RArray, depth: usize) -> Result<(), WriteError> {
        if depth > MAX_DEPTH {
            return self.bad(format!(
                "nested deeper than {MAX_DEPTH} levels (does it contain itself?)"
            ));
        }
        self.out.push('[');
        // Index access, not a borrowed slice: to_s/to_json of an element may run Ruby code.
        let mut i = 0;
        while i < a.len() {
            if i > 0 {
                self.out.push(',');
            }
            let v: Value = a.entry(i as isize)?;
            self.value(v, depth)
                .map_err(|e| e.within(|| format!("[{i}]")))?;
            i += 1;
        }
        self.out.push(']');
        Ok(())
    }

    /// A value with no JSON type: what JSON.generate would write, i.e. its `to_json` when the
    /// json library gives it one (by default `to_s` as a string), otherwise its `to_s`.
    /// `depth`: how many hashes and arrays enclose it.
    fn object(&mut self, v: Value, depth: usize) -> Result<(), WriteError> {
        if v.respond_to("to_json", false)? {
            let text: String = if takes_no_argument(self.ruby, v, "to_json")? {
                // A legacy `def to_json` (JSON.generate itself would fail on it).
                v.funcall("to_json", ())?
            } else {
                // As JSON's generator calls it: with its state, at the current depth, which
                // the method may need (`def to_json(state)`, `to_h.to_json(*a)`).
                let state = self.state(depth)?;
                v.funcall("to_json", (state,))?
            };
            if serde_json::from_str::<serde_json::Value>(&text).is_err() {
                return self.bad(format!(
                    "{}#to_json returned {:?}, which is not JSON",
                    v.class().inspect(),
                    text
                ));
            }
            self.out.push_str(&text);
        } else {
            let s: RString = v.funcall("to_s", ())?;
            self.string(s)?;
        }
        Ok(())
    }
}

impl Writer<'_> {
    /// The generator state for a `to_json` call on a value `depth` containers deep.
    fn state(&mut self, depth: usize) -> Result<Value, Error> {
        let state = match self.state {
            Some(s) => s,
            None => {
                let s: Value = json_state_class(self.ruby)?.funcall("new", ())?;
                self.state = Some(s);
                s
            }
        };
        let _: Value = state.funcall("depth=", (depth,))?;
        Ok(state)
    }
}

/// `JSON::State`, loading the json library if nothing has yet: a `to_json` that wants a state
/// may be defined without it.
fn json_state_class(ruby: &Ruby) -> Result<Value, Error> {
    let loaded = || -> Option<Value> {
        let json: RModule = ruby.class_object().const_get("JSON").ok()?;
        json.const_get("State").ok()
    };
    if let Some(c) = loaded() {
        return Ok(c);
    }
    ruby.require("json")?;
    let json: RModule = ruby.class_object().const_get("JSON")?;
    json.const_get("State")
}

/// True when `v`'s method `name` is defined to take no argument at all.
fn takes_no_argument(ruby: &Ruby, v: Value, name: &str) -> Result<bool, Error> {
    if raw::method_arity(v, ruby.intern(name)) != 0 {
        return Ok(false);
    }
    // 0 is also what a method served by method_missing reports: ask Kernel#method (not the
    // receiver's own `method`, which some classes redefine), which sees respond_to_missing?.
    let method: Value = ruby
        .module_kernel()
        .funcall::<_, _, Value>("instance_method", (ruby.to_symbol("method"),))?
        .funcall("bind_call", (v, ruby.to_symbol(name)))?;
    Ok(method.funcall::<_, _, i64>("arity", ())? == 0)
}

/// Writes a JSON string the way Ruby's json 2.x generator does: `"` and `\` escaped, control
/// characters as \b \f \n \r \t or \u00XX (lower-case hex), everything else as UTF-8.
pub fn write_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0x08 => Some("\\b"),
            0x0c => Some("\\f"),
            0..=0x1f => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xf) as usize] as char);
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// The JSON text of a task's wire form (`as_hash`: task_list, id, data and type, in that
/// order), byte for byte what `JSON.generate(task.as_json)` writes; `None` when only Ruby's
/// generator can say (a value with its own `to_json`, keys that may collide, a value
/// JSON.generate refuses: the caller then asks Ruby, which gives its own answer or error).
pub fn task_json(ruby: &Ruby, parts: [Value; 4]) -> Result<Option<String>, Error> {
    let mut out = String::with_capacity(128);
    let mut w = Writer {
        ruby,
        out: &mut out,
        state: None,
        canonical: true,
        check_keys: true,
    };
    let names = ["{\"task_list\":", ",\"id\":", ",\"data\":", ",\"type\":"];
    for (name, v) in names.iter().zip(parts) {
        w.out.push_str(name);
        match w.value(v, 1) {
            Ok(()) => {}
            Err(WriteError::Ruby(e)) => return Err(e),
            Err(WriteError::Bad(..)) => return Ok(None),
        }
    }
    w.out.push('}');
    Ok(if w.canonical { Some(out) } else { None })
}

/// The Ruby value of a JSON document whose top level is an object, as `JSON.parse` gives it
/// (String keys at every depth). A text that is not that raises JSON::ParserError.
pub fn parse_document(ruby: &Ruby, text: &str) -> Result<Value, Error> {
    let mut sink = RubySink::plain(ruby);
    match json::parse_object(text, &mut sink) {
        Ok(v) => Ok(v),
        Err(SinkError::Ruby(e)) => Err(e),
        Err(SinkError::Parse(e)) => {
            let json: RModule = ruby.class_object().const_get("JSON")?;
            let class: magnus::ExceptionClass = json.const_get("ParserError")?;
            Err(Error::new(
                class,
                format!("not a task's JSON ({e}): {}", snippet(text)),
            ))
        }
    }
}

/// The four members of a task's JSON that `from_hash` reads, parsed without building the
/// outer Hash: `task_list`, `id`, `data` (its keys as Symbols, what from_hash makes of
/// them; hashes inside it of class `nested`) and `type`; absent ones nil. `None` when the text is valid JSON that only the
/// general path can take as `from_hash(JSON.parse(text))` would (an Array or a Hash where
/// a String is expected: its Hashes were given Symbol keys here). A text that is not JSON
/// raises JSON::ParserError.
pub fn parse_task_fields(
    ruby: &Ruby,
    text: &str,
    nested: RClass,
) -> Result<Option<[Value; 4]>, Error> {
    let nil = ruby.qnil().as_value();
    let mut sink = FieldSink {
        ruby,
        fields: [nil; 4],
        nested,
    };
    match json::parse_object(text, &mut sink) {
        Ok(_) => {}
        Err(SinkError::Ruby(e)) => return Err(e),
        Err(SinkError::Parse(_)) => return parse_document(ruby, text).map(|_| None),
    }
    let [task_list, id, data, type_name] = sink.fields;
    let scalar = |v: Value| RHash::from_value(v).is_none() && RArray::from_value(v).is_none();
    if !(scalar(task_list) && scalar(id) && scalar(type_name)) || RArray::from_value(data).is_some()
    {
        return Ok(None);
    }
    Ok(Some([task_list, id, data, type_name]))
}

/// The sink of `parse_task_fields`. The fields sit on the machine stack, where the GC finds
/// them (as it finds the containers being filled).
struct FieldSink<'a> {
    ruby: &'a Ruby,
    fields: [Value; 4],
    /// The class of hashes inside `data`.
    nested: RClass,
}

impl json::Sink for FieldSink<'_> {
    type Value = Value;
    type Error = SinkError;

    fn null(&mut self) -> Result<Value, SinkError> {
        RubySink::plain(self.ruby).null()
    }
    fn boolean(&mut self, b: bool) -> Result<Value, SinkError> {
        RubySink::plain(self.ruby).boolean(b)
    }
    fn integer(&mut self, n: i64) -> Result<Value, SinkError> {
        RubySink::plain(self.ruby).integer(n)
    }
    fn big_integer(&mut self, digits: &str) -> Result<Value, SinkError> {
        RubySink::plain(self.ruby).big_integer(digits)
    }
    fn float(&mut self, x: f64) -> Result<Value, SinkError> {
        RubySink::plain(self.ruby).float(x)
    }
    fn string(&mut self, s: &str) -> Result<Value, SinkError> {
        RubySink::plain(self.ruby).string(s)
    }
    fn array(&mut self) -> Result<Value, SinkError> {
        RubySink::plain(self.ruby).array()
    }
    fn push(&mut self, array: Value, item: Value) -> Result<(), SinkError> {
        RubySink::plain(self.ruby).push(array, item)
    }
    fn object(&mut self, depth: usize) -> Result<Value, SinkError> {
        // The outer object is never made: its members go to `fields`.
        match depth {
            1 => Ok(self.ruby.qnil().as_value()),
            2 => RubySink::plain(self.ruby).object(depth),
            // Inside `data` (or inside another member, which then goes the general way).
            _ => Ok(self.nested.obj_alloc()?),
        }
    }
    fn insert(
        &mut self,
        object: Value,
        depth: usize,
        key: &str,
        value: Value,
    ) -> Result<(), SinkError> {
        match depth {
            1 => {
                // Other members are ignored, as from_hash ignores them; the last of a repeated
                // one wins, as in JSON.parse's Hash.
                let slot = match key {
                    "task_list" => 0,
                    "id" => 1,
                    "data" => 2,
                    "type" => 3,
                    _ => return Ok(()),
                };
                self.fields[slot] = value;
                Ok(())
            }
            // The members of `data` (or of another object at this depth, which
            // `parse_task_fields` then hands to the general path): Symbol keys.
            2 => RubySink {
                ruby: self.ruby,
                symbol_keys: true,
                nested: None,
            }
            .insert(object, 1, key, value),
            _ => RubySink::plain(self.ruby).insert(object, depth, key, value),
        }
    }
}

/// The data hash from the `data` column: top-level keys become Symbols, nested ones stay
/// Strings, as `JSON.parse(text).transform_keys(&:to_sym)` would give, in hashes of class
/// `nested` (see `nested_hash_class`), which answer Symbol keys too.
pub fn json_to_data(
    ruby: &Ruby,
    text: &str,
    nested: RClass,
    what: &dyn Fn() -> String,
) -> Result<RHash, Error> {
    let mut sink = RubySink {
        ruby,
        symbol_keys: true,
        nested: Some(nested),
    };
    match json::parse_object(text, &mut sink) {
        Ok(v) => RHash::from_value(v).ok_or_else(|| {
            errors::bad_data(
                ruby,
                format!("{}: stored data is not a JSON object", what()),
            )
        }),
        Err(SinkError::Ruby(e)) => Err(e),
        Err(SinkError::Parse(e)) => Err(errors::bad_data(
            ruby,
            format!(
                "{}: stored data is not a JSON object ({e}): {}",
                what(),
                snippet(text)
            ),
        )),
    }
}

static ID_ACTIVE_SUPPORT: LazyId = LazyId::new("ActiveSupport");
static ID_HASH_WITH_INDIFFERENT_ACCESS: LazyId = LazyId::new("HashWithIndifferentAccess");

/// The class of the hashes nested in data read back (from a store, from_hash, from_json):
/// ActiveSupport::HashWithIndifferentAccess when it is loaded (what task_rb's rows gave),
/// otherwise Task::IndifferentHash. Both keep String keys and take Symbols as their names.
/// Looked up each time it is asked (once a find, a page or a from_json): two constant-table
/// reads, so loading ActiveSupport later is seen.
pub fn nested_hash_class(ruby: &Ruby) -> Result<RClass, Error> {
    let object = ruby.class_object().as_value();
    if let Some(active_support) = raw::const_at(object, (*ID_ACTIVE_SUPPORT).into_id_with(ruby))? {
        if RModule::from_value(active_support).is_some() {
            let hwia = raw::const_at(
                active_support,
                (*ID_HASH_WITH_INDIFFERENT_ACCESS).into_id_with(ruby),
            )?;
            if let Some(class) = hwia.and_then(RClass::from_value) {
                return Ok(class);
            }
        }
    }
    crate::classes::indifferent_hash(ruby)
}

/// `v` as data read back holds it: a Hash becomes a new hash of class `nested` (String
/// keys; a Symbol key becomes its name), an Array a new Array, both all the way down; one
/// already of that class, and anything else, is kept as it is. `depth` counts the
/// containers around `v`; past MAX_DEPTH (a hash that contains itself) nothing is copied.
pub fn indifferent(ruby: &Ruby, v: Value, nested: RClass, depth: usize) -> Result<Value, Error> {
    if depth > MAX_DEPTH {
        return Ok(v);
    }
    if let Some(h) = RHash::from_value(v) {
        if v.is_kind_of(nested) {
            return Ok(v);
        }
        let copy = nested.obj_alloc()?;
        let Some(out) = RHash::from_value(copy) else {
            return Ok(v);
        };
        h.foreach(|k: Value, val: Value| {
            let k = Symbol::from_value(k).map_or(k, raw::sym2str);
            out.aset(k, indifferent(ruby, val, nested, depth + 1)?)?;
            Ok(ForEach::Continue)
        })?;
        return Ok(copy);
    }
    if let Some(a) = RArray::from_value(v) {
        let out = ruby.ary_new_capa(a.len());
        // Index access: nothing here runs Ruby code, but the Array is the caller's.
        let mut i = 0;
        while i < a.len() {
            out.push(indifferent(ruby, a.entry(i as isize)?, nested, depth + 1)?)?;
            i += 1;
        }
        return Ok(out.as_value());
    }
    Ok(v)
}

/// `v.inspect`, cut to about 40 characters: for messages about values that may be huge.
pub fn short_inspect(v: Value) -> String {
    let full = v.inspect();
    let mut s: String = full.chars().take(40).collect();
    if s.len() < full.len() {
        s.push('…');
    }
    s
}

fn snippet(text: &str) -> String {
    let mut s: String = text.chars().take(60).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    format!("{s:?}")
}

enum SinkError {
    Ruby(Error),
    Parse(json::ParseError),
}

impl From<json::ParseError> for SinkError {
    fn from(e: json::ParseError) -> Self {
        SinkError::Parse(e)
    }
}

impl From<Error> for SinkError {
    fn from(e: Error) -> Self {
        SinkError::Ruby(e)
    }
}

/// Builds Ruby values straight from the parser. Each container is created empty and filled
/// as its members arrive, so everything made so far is reachable from a value on the stack.
struct RubySink<'a> {
    ruby: &'a Ruby,
    /// Top-level keys as Symbols (the data column), or every key a String (JSON.parse).
    symbol_keys: bool,
    /// The class of the hashes below the top level (see `nested_hash_class`); None: Hash.
    nested: Option<RClass>,
}

impl<'a> RubySink<'a> {
    /// JSON.parse's values: String keys at every depth.
    fn plain(ruby: &'a Ruby) -> Self {
        RubySink {
            ruby,
            symbol_keys: false,
            nested: None,
        }
    }
}

impl json::Sink for RubySink<'_> {
    type Value = Value;
    type Error = SinkError;

    fn null(&mut self) -> Result<Value, SinkError> {
        Ok(self.ruby.qnil().as_value())
    }
    fn boolean(&mut self, b: bool) -> Result<Value, SinkError> {
        Ok(if b {
            self.ruby.qtrue().as_value()
        } else {
            self.ruby.qfalse().as_value()
        })
    }
    fn integer(&mut self, n: i64) -> Result<Value, SinkError> {
        Ok(self.ruby.integer_from_i64(n).as_value())
    }
    fn big_integer(&mut self, digits: &str) -> Result<Value, SinkError> {
        Ok(self.ruby.module_kernel().funcall("Integer", (digits,))?)
    }
    fn float(&mut self, x: f64) -> Result<Value, SinkError> {
        Ok(self.ruby.float_from_f64(x).as_value())
    }
    fn string(&mut self, s: &str) -> Result<Value, SinkError> {
        Ok(self.ruby.str_new(s).as_value())
    }
    fn array(&mut self) -> Result<Value, SinkError> {
        Ok(self.ruby.ary_new().as_value())
    }
    fn push(&mut self, array: Value, item: Value) -> Result<(), SinkError> {
        if let Some(a) = RArray::from_value(array) {
            a.push(item)?;
        }
        Ok(())
    }
    fn object(&mut self, depth: usize) -> Result<Value, SinkError> {
        match self.nested {
            // An empty Hash of that class, as `new` without arguments makes it; filled below
            // with the String keys it would have converted a Symbol to.
            Some(class) if depth > 1 => Ok(class.obj_alloc()?),
            _ => Ok(self.ruby.hash_new().as_value()),
        }
    }
    fn insert(
        &mut self,
        object: Value,
        depth: usize,
        key: &str,
        value: Value,
    ) -> Result<(), SinkError> {
        if let Some(h) = RHash::from_value(object) {
            if depth == 1 && self.symbol_keys {
                h.aset(self.ruby.to_symbol(key), value)?;
            } else {
                h.aset(self.ruby.str_new(key), value)?;
            }
        }
        Ok(())
    }
}
