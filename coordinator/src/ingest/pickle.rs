//! Safe, dependency-free reader of Python pickles (protocols 0–5) that turns a pickle
//! into a [`PickleValue`] tree, enough to read TAPE / provis LMDB records.
//!
//! Nothing is ever executed: globals are recorded as [`PickleValue::Global`], calls as
//! [`PickleValue::Reduce`] and `__setstate__` as [`PickleValue::Build`]. A few well-known
//! patterns are recognised and simplified after parsing: numpy arrays (`_reconstruct` +
//! BUILD, and protocol-5 `_frombuffer`) become [`PickleValue::NdArray`], numpy scalars
//! become `Int`/`Float`/`Bool`, protocol-2 `bytes`/`bytearray` (`_codecs.encode(s,
//! 'latin1')`) become `Bytes`, and `set`/`frozenset` become `List`.
//!
//! Hostile input is handled without panics: every read is bounds-checked, declared
//! lengths larger than the remaining input are rejected, nesting depth is capped, and the
//! size of the produced tree is bounded relative to the input (memo sharing cannot be used
//! to blow up memory). Values live in an arena while parsing, so objects that are memoised
//! before being filled (EMPTY_LIST, PUT, APPENDS, ...) are seen complete through GET.

use std::collections::HashMap;
use std::fmt;

/// Maximum nesting depth of the produced value tree.
const MAX_DEPTH: usize = 1000;
/// Maximum decimal digits accepted for a text integer (CPython's default limit).
const MAX_INT_DIGITS: usize = 4300;
/// Fixed part of the output-size budget, in approximate bytes.
const BUDGET_BASE: usize = 16 << 20;
/// Per-input-byte part of the output-size budget.
const BUDGET_FACTOR: usize = 64;
/// Module names under which numpy exposes `_reconstruct` and `scalar`.
const NUMPY_MULTIARRAY: [&str; 2] = ["numpy.core.multiarray", "numpy._core.multiarray"];
/// Module names under which numpy exposes `_frombuffer`.
const NUMPY_NUMERIC: [&str; 2] = ["numpy.core.numeric", "numpy._core.numeric"];

/// A decoded Python object.
#[derive(Debug, Clone, PartialEq)]
pub enum PickleValue {
    /// Python `None`.
    None,
    /// Python `bool`.
    Bool(bool),
    /// Python `int` that fits in an `i64`.
    Int(i64),
    /// Python `int` outside `i64`: minimal little-endian two's-complement bytes.
    BigInt(Vec<u8>),
    /// Python `float`.
    Float(f64),
    /// Python `str` (lone surrogates are replaced by U+FFFD).
    Str(String),
    /// Python `bytes` / `bytearray` / protocol-0/1 byte strings.
    Bytes(Vec<u8>),
    /// Python `list` (also `set` / `frozenset`, in pickle order).
    List(Vec<PickleValue>),
    /// Python `tuple`.
    Tuple(Vec<PickleValue>),
    /// Python `dict` as (key, value) pairs in insertion order.
    Dict(Vec<(PickleValue, PickleValue)>),
    /// A reference to `module.name`, recorded but never imported.
    Global {
        /// Dotted module path.
        module: String,
        /// Attribute name inside the module.
        name: String,
    },
    /// `callable(*args)` recorded from REDUCE / NEWOBJ / NEWOBJ_EX, never executed.
    Reduce {
        /// The callable (usually a `Global`).
        callable: Box<PickleValue>,
        /// The argument tuple (for NEWOBJ_EX with kwargs: `Tuple([args, kwargs])`).
        args: Box<PickleValue>,
    },
    /// `object.__setstate__(state)` recorded from BUILD, never executed.
    Build {
        /// The object being initialised.
        object: Box<PickleValue>,
        /// The state passed to it.
        state: Box<PickleValue>,
    },
    /// A numeric numpy array recognised from its pickle pattern.
    NdArray(NdArray),
}

/// A numpy array with a plain (non-object, non-structured) dtype.
#[derive(Debug, Clone, PartialEq)]
pub struct NdArray {
    /// numpy dtype string such as `"<f4"`, `"|b1"`, `"<i8"`, `">i4"`.
    pub dtype: String,
    /// Array dimensions.
    pub shape: Vec<usize>,
    /// Whether `data` is laid out in Fortran (column-major) order.
    pub fortran_order: bool,
    /// Raw element bytes, `product(shape) * itemsize` long.
    pub data: Vec<u8>,
}

/// Error for malformed, truncated, unsupported or oversized pickle input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickleError {
    /// Byte offset of the offending opcode (or of the node being converted).
    pub offset: usize,
    /// Human-readable description.
    pub message: String,
}

impl fmt::Display for PickleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pickle error at byte {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for PickleError {}

/// Parse a complete pickle (up to its STOP opcode; trailing bytes are ignored).
pub fn parse_pickle(bytes: &[u8]) -> Result<PickleValue, PickleError> {
    Parser::new(bytes).run()
}

impl PickleValue {
    /// Look up `key` in a `Dict` whose keys are `Str` (or UTF-8 `Bytes`); last duplicate wins.
    pub fn get(&self, key: &str) -> Option<&PickleValue> {
        match self {
            PickleValue::Dict(pairs) => pairs
                .iter()
                .rev()
                .find(|(k, _)| match k {
                    PickleValue::Str(s) => s == key,
                    PickleValue::Bytes(b) => b.as_slice() == key.as_bytes(),
                    _ => false,
                })
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text of a `Str` (or of a `Bytes` that is valid UTF-8).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PickleValue::Str(s) => Some(s),
            PickleValue::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The value of an `Int` (or a `Bool` as 0/1).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            PickleValue::Int(i) => Some(*i),
            PickleValue::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    /// ints from a List/Tuple of Int (or Bool), or from an integer/bool NdArray (1-D).
    pub fn to_i64_vec(&self) -> Option<Vec<i64>> {
        match self {
            PickleValue::List(items) | PickleValue::Tuple(items) => {
                items.iter().map(PickleValue::as_i64).collect()
            }
            PickleValue::NdArray(arr) => {
                if arr.shape.len() != 1 {
                    return None;
                }
                let (ty, chunks) = arr.c_order_chunks()?;
                chunks
                    .into_iter()
                    .map(|c| match ty.kind {
                        b'b' => Some(i64::from(c.iter().any(|&b| b != 0))),
                        b'i' => Some(read_int(c, ty.big_endian)),
                        b'u' => i64::try_from(read_uint(c, ty.big_endian)).ok(),
                        _ => None,
                    })
                    .collect()
            }
            _ => None,
        }
    }

    /// floats from a List/Tuple of Int/Float (or Bool), or from a float/int/bool NdArray (flattened, C order).
    pub fn to_f64_vec(&self) -> Option<Vec<f64>> {
        match self {
            PickleValue::List(items) | PickleValue::Tuple(items) => items
                .iter()
                .map(|v| match v {
                    PickleValue::Float(f) => Some(*f),
                    PickleValue::Int(i) => Some(*i as f64),
                    PickleValue::Bool(b) => Some(f64::from(u8::from(*b))),
                    _ => None,
                })
                .collect(),
            PickleValue::NdArray(arr) => {
                let (ty, chunks) = arr.c_order_chunks()?;
                chunks
                    .into_iter()
                    .map(|c| match ty.kind {
                        b'f' => read_float(c, ty.big_endian),
                        b'i' => Some(read_int(c, ty.big_endian) as f64),
                        b'u' => Some(read_uint(c, ty.big_endian) as f64),
                        b'b' => Some(f64::from(u8::from(c.iter().any(|&b| b != 0)))),
                        _ => None,
                    })
                    .collect()
            }
            _ => None,
        }
    }

    /// bools from a List/Tuple of Bool/Int, or a bool/int NdArray (flattened, C order).
    pub fn to_bool_vec(&self) -> Option<Vec<bool>> {
        match self {
            PickleValue::List(items) | PickleValue::Tuple(items) => items
                .iter()
                .map(|v| match v {
                    PickleValue::Bool(b) => Some(*b),
                    PickleValue::Int(i) => Some(*i != 0),
                    _ => None,
                })
                .collect(),
            PickleValue::NdArray(arr) => {
                let (ty, chunks) = arr.c_order_chunks()?;
                if !matches!(ty.kind, b'b' | b'i' | b'u') {
                    return None;
                }
                Some(chunks.into_iter().map(|c| c.iter().any(|&b| b != 0)).collect())
            }
            _ => None,
        }
    }

    /// shape of an NdArray, or [len] for a List/Tuple.
    pub fn shape(&self) -> Option<Vec<usize>> {
        match self {
            PickleValue::NdArray(arr) => Some(arr.shape.clone()),
            PickleValue::List(items) | PickleValue::Tuple(items) => Some(vec![items.len()]),
            _ => None,
        }
    }
}

/// Element type of a numeric array, decoded from its dtype string.
#[derive(Clone, Copy)]
struct ElemType {
    /// numpy kind character (`b`, `i`, `u`, `f`).
    kind: u8,
    /// Bytes per element (1, 2, 4 or 8).
    size: usize,
    /// Whether elements are stored big-endian.
    big_endian: bool,
}

impl NdArray {
    /// Numeric element type of this array, if it is one we can decode.
    fn elem_type(&self) -> Option<ElemType> {
        let bytes = self.dtype.as_bytes();
        let (order, rest) = match bytes.split_first() {
            Some((&o, rest)) if matches!(o, b'<' | b'>' | b'|' | b'=') => (o, rest),
            _ => (b'=', bytes),
        };
        let (&kind, digits) = rest.split_first()?;
        let size: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
        let ok = match kind {
            b'b' => size == 1,
            b'i' | b'u' => matches!(size, 1 | 2 | 4 | 8),
            b'f' => matches!(size, 2 | 4 | 8),
            _ => false,
        };
        ok.then_some(ElemType {
            kind,
            size,
            big_endian: order == b'>',
        })
    }

    /// Element byte slices in C (row-major) order, checking data length against the shape.
    fn c_order_chunks(&self) -> Option<(ElemType, Vec<&[u8]>)> {
        let ty = self.elem_type()?;
        let count = self.shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))?;
        if count.checked_mul(ty.size)? != self.data.len() {
            return None;
        }
        let chunks: Vec<&[u8]> = self.data.chunks_exact(ty.size).collect();
        if !self.fortran_order || self.shape.len() <= 1 || count == 0 {
            return Some((ty, chunks));
        }
        // Fortran strides (in elements): first axis varies fastest.
        let mut fstrides = Vec::with_capacity(self.shape.len());
        let mut stride = 1usize;
        for &d in &self.shape {
            fstrides.push(stride);
            stride = stride.checked_mul(d)?;
        }
        let mut out = Vec::with_capacity(count);
        for p in 0..count {
            let mut rem = p;
            let mut off = 0usize;
            for (&d, &fs) in self.shape.iter().zip(&fstrides).rev() {
                let i = rem.checked_rem(d)?;
                rem = rem.checked_div(d)?;
                off = off.checked_add(i.checked_mul(fs)?)?;
            }
            out.push(*chunks.get(off)?);
        }
        Some((ty, out))
    }
}

/// Unsigned integer from up to 8 bytes.
fn read_uint(chunk: &[u8], big_endian: bool) -> u64 {
    let fold = |acc: u64, &b: &u8| (acc << 8) | u64::from(b);
    if big_endian {
        chunk.iter().fold(0, fold)
    } else {
        chunk.iter().rev().fold(0, fold)
    }
}

/// Sign-extended integer from up to 8 bytes.
fn read_int(chunk: &[u8], big_endian: bool) -> i64 {
    let u = read_uint(chunk, big_endian);
    let bits = chunk.len().saturating_mul(8);
    if bits == 0 || bits >= 64 {
        return u as i64;
    }
    let shift = 64 - bits as u32;
    ((u << shift) as i64) >> shift
}

/// IEEE float of 2, 4 or 8 bytes.
fn read_float(chunk: &[u8], big_endian: bool) -> Option<f64> {
    let u = read_uint(chunk, big_endian);
    match chunk.len() {
        2 => Some(f16_to_f64(u as u16)),
        4 => Some(f64::from(f32::from_bits(u as u32))),
        8 => Some(f64::from_bits(u)),
        _ => None,
    }
}

/// Convert IEEE half-precision bits to f64.
fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f64::from(h & 0x3ff);
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        31 if frac == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        _ => sign * (1.0 + frac / 1024.0) * 2f64.powi(exp - 15),
    }
}

/// Integer from little-endian two's-complement bytes: `Int` if it fits, else minimal `BigInt`.
fn long_from_le(bytes: &[u8]) -> PickleValue {
    let mut v = bytes.to_vec();
    // Trim redundant sign-extension bytes.
    while let [.., prev, last] = v.as_slice() {
        let redundant = (*last == 0x00 && prev & 0x80 == 0) || (*last == 0xff && prev & 0x80 != 0);
        if !redundant {
            break;
        }
        v.pop();
    }
    if v.len() <= 8 {
        PickleValue::Int(read_int(&v, false))
    } else {
        PickleValue::BigInt(v)
    }
}

/// Parse a decimal integer as written by the INT / LONG text opcodes.
fn int_from_text(text: &[u8]) -> Option<PickleValue> {
    let s = std::str::from_utf8(text).ok()?.trim();
    if let Ok(i) = s.parse::<i64>() {
        return Some(PickleValue::Int(i));
    }
    let (neg, digits) = match s.as_bytes().split_first()? {
        (b'-', rest) => (true, rest),
        (b'+', rest) => (false, rest),
        _ => (false, s.as_bytes()),
    };
    if digits.is_empty() || digits.len() > MAX_INT_DIGITS || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Magnitude in little-endian base-2^32 limbs, fed 9 decimal digits at a time.
    let mut limbs: Vec<u32> = Vec::new();
    for chunk in digits.chunks(9) {
        let mut mul: u64 = 1;
        let mut add: u64 = 0;
        for &d in chunk {
            mul *= 10;
            add = add * 10 + u64::from(d - b'0');
        }
        let mut carry = add;
        for limb in limbs.iter_mut() {
            let v = u64::from(*limb) * mul + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            limbs.push(carry as u32);
        }
    }
    let mut mag: Vec<u8> = limbs.iter().flat_map(|l| l.to_le_bytes()).collect();
    mag.push(0); // room for the sign bit
    if neg {
        let mut carry = true;
        for byte in mag.iter_mut() {
            let (v, c) = (!*byte).overflowing_add(u8::from(carry));
            *byte = v;
            carry = c;
        }
    }
    Some(long_from_le(&mag))
}

/// Decode the body of a STRING opcode (a Python repr of a byte string).
fn decode_python_string(line: &[u8]) -> Option<Vec<u8>> {
    let (&first, rest) = line.split_first()?;
    let (&last, body) = rest.split_last()?;
    if first != last || !matches!(first, b'\'' | b'"') {
        return None;
    }
    let mut out = Vec::with_capacity(body.len());
    let mut it = body.iter().copied().peekable();
    while let Some(c) = it.next() {
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let Some(e) = it.next() else {
            return None; // trailing backslash
        };
        match e {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(e),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'x' => {
                let hi = hex_val(it.next()?)?;
                let lo = hex_val(it.next()?)?;
                out.push(hi * 16 + lo);
            }
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match it.peek() {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            it.next();
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

/// Value of one ASCII hex digit.
fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decode `raw-unicode-escape` text (UNICODE opcode): latin-1 plus `\uXXXX` / `\UXXXXXXXX`.
fn decode_raw_unicode_escape(line: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(line.len());
    let mut i = 0usize;
    let mut backslashes = 0usize; // length of the current run of backslashes
    while let Some(&c) = line.get(i) {
        let next = line.get(i + 1).copied();
        if c == b'\\' && backslashes.is_multiple_of(2) && matches!(next, Some(b'u' | b'U')) {
            let n = if next == Some(b'u') { 4 } else { 8 };
            let hex = line.get(i + 2..i + 2 + n)?;
            let mut v: u32 = 0;
            for &h in hex {
                v = v.checked_mul(16)?.checked_add(u32::from(hex_val(h)?))?;
            }
            out.push(char::from_u32(v).unwrap_or(char::REPLACEMENT_CHARACTER));
            i += 2 + n;
            backslashes = 0;
            continue;
        }
        backslashes = if c == b'\\' { backslashes + 1 } else { 0 };
        out.push(char::from(c));
        i += 1;
    }
    Some(out)
}

/// Index of a node in the parser arena.
type NodeId = usize;

/// Arena node: like [`PickleValue`] but children are arena indices, so memoised
/// containers can be mutated after being shared.
enum Node {
    /// `None`.
    None,
    /// `bool`.
    Bool(bool),
    /// `int` within i64.
    Int(i64),
    /// `int` outside i64.
    BigInt(Vec<u8>),
    /// `float`.
    Float(f64),
    /// `str`.
    Str(String),
    /// `bytes`.
    Bytes(Vec<u8>),
    /// `list` / `set`.
    List(Vec<NodeId>),
    /// `tuple`.
    Tuple(Vec<NodeId>),
    /// `dict`.
    Dict(Vec<(NodeId, NodeId)>),
    /// Global reference.
    Global {
        /// Module path.
        module: String,
        /// Attribute name.
        name: String,
    },
    /// Recorded call.
    Reduce {
        /// The callable.
        callable: NodeId,
        /// The argument tuple.
        args: NodeId,
    },
    /// Recorded setstate.
    Build {
        /// The object being built.
        object: NodeId,
        /// Its state.
        state: NodeId,
    },
}

/// Pickle virtual machine state.
struct Parser<'a> {
    /// Whole input.
    data: &'a [u8],
    /// Read position.
    pos: usize,
    /// Offset of the opcode being executed (for errors).
    op_start: usize,
    /// Arena of all objects created.
    nodes: Vec<Node>,
    /// Offset of the opcode that created each node.
    node_offsets: Vec<usize>,
    /// The pickle stack (all frames; marks index into it).
    stack: Vec<NodeId>,
    /// Stack heights at each MARK.
    marks: Vec<usize>,
    /// Memo table.
    memo: HashMap<u64, NodeId>,
}

impl<'a> Parser<'a> {
    /// Fresh parser over `data`.
    fn new(data: &'a [u8]) -> Self {
        Parser {
            data,
            pos: 0,
            op_start: 0,
            nodes: Vec::new(),
            node_offsets: Vec::new(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
        }
    }

    /// Error at the current opcode.
    fn err(&self, message: impl Into<String>) -> PickleError {
        PickleError {
            offset: self.op_start,
            message: message.into(),
        }
    }

    /// Take `n` bytes of argument, rejecting lengths beyond the input.
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], PickleError> {
        let remaining = self.data.len().saturating_sub(self.pos);
        if n > remaining {
            return Err(self.err(format!("{what}: needs {n} bytes but only {remaining} remain")));
        }
        let end = self.pos + n;
        let s = self
            .data
            .get(self.pos..end)
            .ok_or_else(|| self.err(format!("{what}: out of bounds")))?;
        self.pos = end;
        Ok(s)
    }

    /// Take a fixed-size argument.
    fn take_array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], PickleError> {
        let s = self.take(N, what)?;
        <[u8; N]>::try_from(s).map_err(|_| self.err(format!("{what}: bad length")))
    }

    /// One-byte argument.
    fn u8_arg(&mut self, what: &str) -> Result<u8, PickleError> {
        Ok(u8::from_le_bytes(self.take_array::<1>(what)?))
    }

    /// Little-endian u16 argument.
    fn u16_arg(&mut self, what: &str) -> Result<u16, PickleError> {
        Ok(u16::from_le_bytes(self.take_array(what)?))
    }

    /// Little-endian u32 argument.
    fn u32_arg(&mut self, what: &str) -> Result<u32, PickleError> {
        Ok(u32::from_le_bytes(self.take_array(what)?))
    }

    /// Little-endian i32 argument.
    fn i32_arg(&mut self, what: &str) -> Result<i32, PickleError> {
        Ok(i32::from_le_bytes(self.take_array(what)?))
    }

    /// Little-endian u64 argument.
    fn u64_arg(&mut self, what: &str) -> Result<u64, PickleError> {
        Ok(u64::from_le_bytes(self.take_array(what)?))
    }

    /// A length-prefixed payload with a u64 length.
    fn take_len_u64(&mut self, what: &str) -> Result<&'a [u8], PickleError> {
        let n = self.u64_arg(what)?;
        let n = usize::try_from(n).map_err(|_| self.err(format!("{what}: length {n} too large")))?;
        self.take(n, what)
    }

    /// A length-prefixed payload with a signed i32 length.
    fn take_len_i32(&mut self, what: &str) -> Result<&'a [u8], PickleError> {
        let n = self.i32_arg(what)?;
        let n = usize::try_from(n).map_err(|_| self.err(format!("{what}: negative length {n}")))?;
        self.take(n, what)
    }

    /// A newline-terminated text argument (without the newline).
    fn read_line(&mut self, what: &str) -> Result<&'a [u8], PickleError> {
        let rest = self.data.get(self.pos..).unwrap_or(&[]);
        let Some(i) = rest.iter().position(|&b| b == b'\n') else {
            return Err(self.err(format!("{what}: unterminated text argument")));
        };
        let line = rest.get(..i).unwrap_or(&[]);
        self.pos += i + 1;
        Ok(line)
    }

    /// A newline-terminated UTF-8 text argument.
    fn read_str_line(&mut self, what: &str) -> Result<String, PickleError> {
        let line = self.read_line(what)?;
        std::str::from_utf8(line)
            .map(str::to_owned)
            .map_err(|_| self.err(format!("{what}: text is not UTF-8")))
    }

    /// A newline-terminated decimal memo index.
    fn read_memo_index(&mut self, what: &str) -> Result<u64, PickleError> {
        let line = self.read_line(what)?;
        std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| self.err(format!("{what}: bad memo index")))
    }

    /// Add a node to the arena without pushing it.
    fn alloc(&mut self, node: Node) -> NodeId {
        let id = self.nodes.len();
        self.nodes.push(node);
        self.node_offsets.push(self.op_start);
        id
    }

    /// Add a node to the arena and push it on the stack.
    fn push_new(&mut self, node: Node) {
        let id = self.alloc(node);
        self.stack.push(id);
    }

    /// Lowest stack index usable in the current mark frame.
    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    /// Pop one item from the current mark frame.
    fn pop(&mut self) -> Result<NodeId, PickleError> {
        if self.stack.len() <= self.floor() {
            return Err(self.err("stack underflow"));
        }
        self.stack.pop().ok_or_else(|| self.err("stack underflow"))
    }

    /// Top item of the current mark frame.
    fn top(&self) -> Result<NodeId, PickleError> {
        if self.stack.len() <= self.floor() {
            return Err(self.err("stack underflow"));
        }
        self.stack
            .last()
            .copied()
            .ok_or_else(|| self.err("stack underflow"))
    }

    /// Pop everything down to the most recent MARK (and the mark itself).
    fn pop_mark(&mut self) -> Result<Vec<NodeId>, PickleError> {
        let Some(m) = self.marks.pop() else {
            return Err(self.err("no MARK on the stack"));
        };
        if m > self.stack.len() {
            return Err(self.err("corrupt MARK"));
        }
        Ok(self.stack.split_off(m))
    }

    /// Mutable access to an arena node.
    fn node_mut(&mut self, id: NodeId) -> Result<&mut Node, PickleError> {
        let offset = self.op_start;
        self.nodes.get_mut(id).ok_or_else(|| PickleError {
            offset,
            message: "dangling object reference".into(),
        })
    }

    /// Shared access to an arena node.
    fn node(&self, id: NodeId) -> Result<&Node, PickleError> {
        self.nodes
            .get(id)
            .ok_or_else(|| self.err("dangling object reference"))
    }

    /// Pair up a flat key/value list.
    fn pairs(&self, items: Vec<NodeId>) -> Result<Vec<(NodeId, NodeId)>, PickleError> {
        if !items.len().is_multiple_of(2) {
            return Err(self.err("odd number of items for dict"));
        }
        let mut out = Vec::with_capacity(items.len() / 2);
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            out.push((k, v));
        }
        Ok(out)
    }

    /// Append items to the list (or set) at stack top.
    fn extend_list(&mut self, items: Vec<NodeId>, op: &str) -> Result<(), PickleError> {
        let target = self.top()?;
        let node = self.node_mut(target)?;
        match node {
            Node::List(v) => v.extend(items),
            // A list subclass built by REDUCE/NEWOBJ: keep its items, drop the class.
            Node::Reduce { .. } => *node = Node::List(items),
            _ => return Err(self.err(format!("{op} target is not a list"))),
        }
        Ok(())
    }

    /// Add pairs to the dict at stack top.
    fn extend_dict(&mut self, pairs: Vec<(NodeId, NodeId)>, op: &str) -> Result<(), PickleError> {
        let target = self.top()?;
        let node = self.node_mut(target)?;
        match node {
            Node::Dict(v) => v.extend(pairs),
            // A dict subclass (OrderedDict, defaultdict, ...): keep its items, drop the class.
            Node::Reduce { .. } => *node = Node::Dict(pairs),
            _ => return Err(self.err(format!("{op} target is not a dict"))),
        }
        Ok(())
    }

    /// Memoise the stack top under `key`.
    fn memo_put(&mut self, key: u64) -> Result<(), PickleError> {
        let top = self.top()?;
        self.memo.insert(key, top);
        Ok(())
    }

    /// Push the memoised object `key`.
    fn memo_get(&mut self, key: u64) -> Result<(), PickleError> {
        let id = *self
            .memo
            .get(&key)
            .ok_or_else(|| self.err(format!("memo key {key} not found")))?;
        self.stack.push(id);
        Ok(())
    }

    /// Run the pickle machine until STOP and convert the result.
    fn run(mut self) -> Result<PickleValue, PickleError> {
        loop {
            self.op_start = self.pos;
            let Some(&op) = self.data.get(self.pos) else {
                return Err(self.err("unexpected end of input (no STOP opcode)"));
            };
            self.pos += 1;
            match op {
                0x80 => {
                    let proto = self.u8_arg("PROTO")?;
                    if proto > 5 {
                        return Err(self.err(format!("unsupported pickle protocol {proto}")));
                    }
                }
                0x95 => {
                    let n = self.u64_arg("FRAME")?;
                    let remaining = self.data.len().saturating_sub(self.pos);
                    if usize::try_from(n).map_or(true, |n| n > remaining) {
                        return Err(self.err(format!(
                            "FRAME: declared length {n} exceeds remaining {remaining} bytes"
                        )));
                    }
                }
                b'.' => {
                    let root = self.pop()?;
                    return self.finish(root);
                }
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    if self.stack.len() > self.floor() {
                        self.stack.pop();
                    } else if self.marks.pop().is_none() {
                        return Err(self.err("POP on empty stack"));
                    }
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let t = self.top()?;
                    self.stack.push(t);
                }
                b'N' => self.push_new(Node::None),
                0x88 => self.push_new(Node::Bool(true)),
                0x89 => self.push_new(Node::Bool(false)),
                b'I' => {
                    let line = self.read_line("INT")?;
                    let node = match line {
                        b"01" => Node::Bool(true),
                        b"00" => Node::Bool(false),
                        _ => match int_from_text(line) {
                            Some(v) => value_to_scalar_node(v),
                            None => return Err(self.err("INT: invalid integer text")),
                        },
                    };
                    self.push_new(node);
                }
                b'J' => {
                    let v = self.i32_arg("BININT")?;
                    self.push_new(Node::Int(i64::from(v)));
                }
                b'K' => {
                    let v = self.u8_arg("BININT1")?;
                    self.push_new(Node::Int(i64::from(v)));
                }
                b'M' => {
                    let v = self.u16_arg("BININT2")?;
                    self.push_new(Node::Int(i64::from(v)));
                }
                b'L' => {
                    let line = self.read_line("LONG")?;
                    let line = line.strip_suffix(b"L").unwrap_or(line);
                    let v = int_from_text(line).ok_or_else(|| self.err("LONG: invalid integer text"))?;
                    self.push_new(value_to_scalar_node(v));
                }
                0x8a => {
                    let n = usize::from(self.u8_arg("LONG1")?);
                    let b = self.take(n, "LONG1")?;
                    self.push_new(value_to_scalar_node(long_from_le(b)));
                }
                0x8b => {
                    let b = self.take_len_i32("LONG4")?;
                    self.push_new(value_to_scalar_node(long_from_le(b)));
                }
                b'F' => {
                    let line = self.read_line("FLOAT")?;
                    let v = std::str::from_utf8(line)
                        .ok()
                        .and_then(|s| s.trim().parse::<f64>().ok())
                        .ok_or_else(|| self.err("FLOAT: invalid float text"))?;
                    self.push_new(Node::Float(v));
                }
                b'G' => {
                    let b = self.take_array::<8>("BINFLOAT")?;
                    self.push_new(Node::Float(f64::from_be_bytes(b)));
                }
                b'S' => {
                    let line = self.read_line("STRING")?;
                    let b = decode_python_string(line)
                        .ok_or_else(|| self.err("STRING: argument must be a quoted Python string"))?;
                    self.push_new(Node::Bytes(b));
                }
                b'T' => {
                    let b = self.take_len_i32("BINSTRING")?;
                    self.push_new(Node::Bytes(b.to_vec()));
                }
                b'U' => {
                    let n = usize::from(self.u8_arg("SHORT_BINSTRING")?);
                    let b = self.take(n, "SHORT_BINSTRING")?;
                    self.push_new(Node::Bytes(b.to_vec()));
                }
                b'V' => {
                    let line = self.read_line("UNICODE")?;
                    let s = decode_raw_unicode_escape(line)
                        .ok_or_else(|| self.err("UNICODE: bad raw-unicode-escape text"))?;
                    self.push_new(Node::Str(s));
                }
                b'X' => {
                    let n = self.u32_arg("BINUNICODE")?;
                    let n = usize::try_from(n).map_err(|_| self.err("BINUNICODE: length too large"))?;
                    let b = self.take(n, "BINUNICODE")?;
                    self.push_new(Node::Str(String::from_utf8_lossy(b).into_owned()));
                }
                0x8c => {
                    let n = usize::from(self.u8_arg("SHORT_BINUNICODE")?);
                    let b = self.take(n, "SHORT_BINUNICODE")?;
                    self.push_new(Node::Str(String::from_utf8_lossy(b).into_owned()));
                }
                0x8d => {
                    let b = self.take_len_u64("BINUNICODE8")?;
                    self.push_new(Node::Str(String::from_utf8_lossy(b).into_owned()));
                }
                b'B' => {
                    let n = self.u32_arg("BINBYTES")?;
                    let n = usize::try_from(n).map_err(|_| self.err("BINBYTES: length too large"))?;
                    let b = self.take(n, "BINBYTES")?;
                    self.push_new(Node::Bytes(b.to_vec()));
                }
                b'C' => {
                    let n = usize::from(self.u8_arg("SHORT_BINBYTES")?);
                    let b = self.take(n, "SHORT_BINBYTES")?;
                    self.push_new(Node::Bytes(b.to_vec()));
                }
                0x8e => {
                    let b = self.take_len_u64("BINBYTES8")?;
                    self.push_new(Node::Bytes(b.to_vec()));
                }
                0x96 => {
                    let b = self.take_len_u64("BYTEARRAY8")?;
                    self.push_new(Node::Bytes(b.to_vec()));
                }
                b']' => self.push_new(Node::List(Vec::new())),
                b'a' => {
                    let v = self.pop()?;
                    self.extend_list(vec![v], "APPEND")?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.extend_list(items, "APPENDS")?;
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push_new(Node::List(items));
                }
                b')' => self.push_new(Node::Tuple(Vec::new())),
                b't' => {
                    let items = self.pop_mark()?;
                    self.push_new(Node::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push_new(Node::Tuple(items));
                }
                b'}' => self.push_new(Node::Dict(Vec::new())),
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = self.pairs(items)?;
                    self.push_new(Node::Dict(pairs));
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.extend_dict(vec![(k, v)], "SETITEM")?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let pairs = self.pairs(items)?;
                    self.extend_dict(pairs, "SETITEMS")?;
                }
                0x8f => self.push_new(Node::List(Vec::new())),
                0x90 => {
                    let items = self.pop_mark()?;
                    self.extend_list(items, "ADDITEMS")?;
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    self.push_new(Node::List(items));
                }
                b'c' => {
                    let module = self.read_str_line("GLOBAL module")?;
                    let name = self.read_str_line("GLOBAL name")?;
                    self.push_new(Node::Global { module, name });
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Node::Str(module), Node::Str(name)) = (self.node(module)?, self.node(name)?) else {
                        return Err(self.err("STACK_GLOBAL: module and name must be str"));
                    };
                    let (module, name) = (module.clone(), name.clone());
                    self.push_new(Node::Global { module, name });
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    self.push_new(Node::Reduce { callable, args });
                }
                0x81 => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    self.push_new(Node::Reduce { callable, args });
                }
                0x92 => {
                    let kwargs = self.pop()?;
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let empty_kwargs = matches!(self.node(kwargs)?, Node::Dict(d) if d.is_empty());
                    let args = if empty_kwargs {
                        args
                    } else {
                        self.alloc(Node::Tuple(vec![args, kwargs]))
                    };
                    self.push_new(Node::Reduce { callable, args });
                }
                b'b' => {
                    let state = self.pop()?;
                    let obj = self.top()?;
                    // Mutate in place so memo references see the built object.
                    let old = std::mem::replace(self.node_mut(obj)?, Node::None);
                    let inner = self.alloc(old);
                    let obj_offset = self.node_offsets.get(obj).copied().unwrap_or(self.op_start);
                    if let Some(o) = self.node_offsets.get_mut(inner) {
                        *o = obj_offset;
                    }
                    if let Some(o) = self.node_offsets.get_mut(obj) {
                        *o = self.op_start;
                    }
                    *self.node_mut(obj)? = Node::Build { object: inner, state };
                }
                b'p' => {
                    let key = self.read_memo_index("PUT")?;
                    self.memo_put(key)?;
                }
                b'q' => {
                    let key = self.u8_arg("BINPUT")?;
                    self.memo_put(u64::from(key))?;
                }
                b'r' => {
                    let key = self.u32_arg("LONG_BINPUT")?;
                    self.memo_put(u64::from(key))?;
                }
                0x94 => {
                    let key = self.memo.len() as u64;
                    self.memo_put(key)?;
                }
                b'g' => {
                    let key = self.read_memo_index("GET")?;
                    self.memo_get(key)?;
                }
                b'h' => {
                    let key = self.u8_arg("BINGET")?;
                    self.memo_get(u64::from(key))?;
                }
                b'j' => {
                    let key = self.u32_arg("LONG_BINGET")?;
                    self.memo_get(u64::from(key))?;
                }
                other => {
                    let shown = if other.is_ascii_graphic() {
                        format!(" ({:?})", char::from(other))
                    } else {
                        String::new()
                    };
                    return Err(self.err(format!(
                        "unsupported opcode 0x{other:02x}{shown} at offset {}",
                        self.op_start
                    )));
                }
            }
        }
    }

    /// Convert the arena graph rooted at `root` into an owned tree.
    fn finish(self, root: NodeId) -> Result<PickleValue, PickleError> {
        let mut conv = Converter {
            nodes: &self.nodes,
            offsets: &self.node_offsets,
            in_progress: vec![false; self.nodes.len()],
            cost: 0,
            limit: self
                .data
                .len()
                .saturating_mul(BUDGET_FACTOR)
                .saturating_add(BUDGET_BASE),
        };
        conv.convert(root)
    }
}

/// Turn a parsed integer value into a scalar arena node.
fn value_to_scalar_node(v: PickleValue) -> Node {
    match v {
        PickleValue::Int(i) => Node::Int(i),
        PickleValue::BigInt(b) => Node::BigInt(b),
        _ => Node::None,
    }
}

/// Arena-to-tree conversion with cycle, depth and size checks (iterative, so deep
/// input cannot overflow the call stack).
struct Converter<'p> {
    /// Arena.
    nodes: &'p [Node],
    /// Creating offsets per node.
    offsets: &'p [usize],
    /// Nodes on the current conversion path (cycle detection).
    in_progress: Vec<bool>,
    /// Approximate bytes produced so far.
    cost: usize,
    /// Maximum approximate bytes allowed.
    limit: usize,
}

/// A step of the iterative conversion.
enum Task {
    /// Start converting a node at the given depth.
    Visit(NodeId, usize),
    /// All children of the node are on the output stack: assemble it.
    Finish(NodeId),
}

impl Converter<'_> {
    /// Error attributed to node `id`.
    fn err(&self, id: NodeId, message: impl Into<String>) -> PickleError {
        PickleError {
            offset: self.offsets.get(id).copied().unwrap_or(0),
            message: message.into(),
        }
    }

    /// Charge `bytes` (plus one value) against the output budget.
    fn charge(&mut self, id: NodeId, bytes: usize) -> Result<(), PickleError> {
        self.cost = self
            .cost
            .saturating_add(bytes)
            .saturating_add(std::mem::size_of::<PickleValue>());
        if self.cost > self.limit {
            return Err(self.err(id, "decoded value too large (excessive memo sharing?)"));
        }
        Ok(())
    }

    /// Convert the graph rooted at `root`.
    fn convert(&mut self, root: NodeId) -> Result<PickleValue, PickleError> {
        let nodes = self.nodes;
        let mut tasks = vec![Task::Visit(root, 0)];
        let mut out: Vec<PickleValue> = Vec::new();
        while let Some(task) = tasks.pop() {
            match task {
                Task::Visit(id, depth) => {
                    if depth > MAX_DEPTH {
                        return Err(self.err(id, format!("nesting deeper than {MAX_DEPTH}")));
                    }
                    let node = nodes
                        .get(id)
                        .ok_or_else(|| self.err(id, "dangling object reference"))?;
                    let scalar = match node {
                        Node::None => Some((PickleValue::None, 0)),
                        Node::Bool(b) => Some((PickleValue::Bool(*b), 0)),
                        Node::Int(i) => Some((PickleValue::Int(*i), 0)),
                        Node::Float(f) => Some((PickleValue::Float(*f), 0)),
                        Node::BigInt(b) => Some((PickleValue::BigInt(b.clone()), b.len())),
                        Node::Str(s) => Some((PickleValue::Str(s.clone()), s.len())),
                        Node::Bytes(b) => Some((PickleValue::Bytes(b.clone()), b.len())),
                        Node::Global { module, name } => Some((
                            PickleValue::Global {
                                module: module.clone(),
                                name: name.clone(),
                            },
                            module.len() + name.len(),
                        )),
                        _ => None,
                    };
                    if let Some((value, bytes)) = scalar {
                        self.charge(id, bytes)?;
                        out.push(value);
                        continue;
                    }
                    self.charge(id, 0)?;
                    match self.in_progress.get_mut(id) {
                        Some(flag) if *flag => {
                            return Err(self.err(id, "recursive (self-referencing) structure"));
                        }
                        Some(flag) => *flag = true,
                        None => return Err(self.err(id, "dangling object reference")),
                    }
                    tasks.push(Task::Finish(id));
                    let d = depth + 1;
                    // Children are pushed in reverse so they are converted in order.
                    match node {
                        Node::List(items) | Node::Tuple(items) => {
                            tasks.extend(items.iter().rev().map(|&c| Task::Visit(c, d)));
                        }
                        Node::Dict(pairs) => {
                            for &(k, v) in pairs.iter().rev() {
                                tasks.push(Task::Visit(v, d));
                                tasks.push(Task::Visit(k, d));
                            }
                        }
                        Node::Reduce { callable: a, args: b } | Node::Build { object: a, state: b } => {
                            tasks.push(Task::Visit(*b, d));
                            tasks.push(Task::Visit(*a, d));
                        }
                        _ => {}
                    }
                }
                Task::Finish(id) => {
                    if let Some(flag) = self.in_progress.get_mut(id) {
                        *flag = false;
                    }
                    let node = nodes
                        .get(id)
                        .ok_or_else(|| self.err(id, "dangling object reference"))?;
                    let n_children = match node {
                        Node::List(items) | Node::Tuple(items) => items.len(),
                        Node::Dict(pairs) => pairs.len().saturating_mul(2),
                        _ => 2,
                    };
                    let start = out
                        .len()
                        .checked_sub(n_children)
                        .ok_or_else(|| self.err(id, "internal conversion error"))?;
                    let mut children = out.split_off(start);
                    let value = match node {
                        Node::List(_) => PickleValue::List(children),
                        Node::Tuple(_) => PickleValue::Tuple(children),
                        Node::Dict(_) => {
                            let mut pairs = Vec::with_capacity(children.len() / 2);
                            let mut it = children.into_iter();
                            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                                pairs.push((k, v));
                            }
                            PickleValue::Dict(pairs)
                        }
                        _ => {
                            let (Some(second), Some(first)) = (children.pop(), children.pop()) else {
                                return Err(self.err(id, "internal conversion error"));
                            };
                            let simplified = if matches!(node, Node::Build { .. }) {
                                simplify_build(first, second)
                            } else {
                                simplify_reduce(first, second)
                            };
                            simplified.map_err(|m| self.err(id, m))?
                        }
                    };
                    out.push(value);
                }
            }
        }
        match (out.pop(), out.is_empty()) {
            (Some(v), true) => Ok(v),
            _ => Err(self.err(root, "internal conversion error")),
        }
    }
}

/// Whether `module` is the Python 2 or 3 builtins module.
fn is_builtins(module: &str) -> bool {
    module == "builtins" || module == "__builtin__"
}

/// Recognise well-known REDUCE patterns; otherwise keep the call as recorded.
fn simplify_reduce(callable: PickleValue, mut args: PickleValue) -> Result<PickleValue, String> {
    if let PickleValue::Global { module, name } = &callable {
        let (m, n) = (module.as_str(), name.as_str());
        let replaced = if m == "_codecs" && n == "encode" {
            codecs_encode(&mut args)
        } else if is_builtins(m) && (n == "bytes" || n == "bytearray") {
            builtin_bytes(&mut args)
        } else if is_builtins(m) && (n == "set" || n == "frozenset") {
            builtin_set(&mut args)
        } else if NUMPY_MULTIARRAY.contains(&m) && n == "scalar" {
            numpy_scalar(&args)
        } else if NUMPY_NUMERIC.contains(&m) && n == "_frombuffer" {
            numpy_frombuffer(&mut args)?
        } else {
            None
        };
        if let Some(v) = replaced {
            return Ok(v);
        }
    }
    Ok(PickleValue::Reduce {
        callable: Box::new(callable),
        args: Box::new(args),
    })
}

/// Recognise a numpy `_reconstruct` + BUILD array; otherwise keep the BUILD as recorded.
fn simplify_build(object: PickleValue, mut state: PickleValue) -> Result<PickleValue, String> {
    if is_ndarray_reconstruct(&object)
        && let Some(arr) = ndarray_from_state(&mut state)?
    {
        return Ok(PickleValue::NdArray(arr));
    }
    Ok(PickleValue::Build {
        object: Box::new(object),
        state: Box::new(state),
    })
}

/// Encode `s` with a named codec, if it is latin-1 / ASCII / UTF-8 and representable.
fn encode_str(s: &str, encoding: &str) -> Option<Vec<u8>> {
    let enc = encoding.to_ascii_lowercase().replace(['-', '_'], "");
    match enc.as_str() {
        "latin1" | "iso88591" | "l1" | "ascii" => {
            let max = if enc == "ascii" { 0x7f } else { 0xff };
            s.chars()
                .map(|c| u8::try_from(u32::from(c)).ok().filter(|&b| u32::from(b) <= max))
                .collect()
        }
        "utf8" => Some(s.as_bytes().to_vec()),
        _ => None,
    }
}

/// `_codecs.encode(str, 'latin1')` (protocol-2 bytes) → `Bytes`.
fn codecs_encode(args: &mut PickleValue) -> Option<PickleValue> {
    let PickleValue::Tuple(items) = args else {
        return None;
    };
    match items.as_slice() {
        [PickleValue::Str(s), PickleValue::Str(enc)] => encode_str(s, enc).map(PickleValue::Bytes),
        _ => None,
    }
}

/// `bytes()` / `bytearray(...)` from protocol ≤ 4 → `Bytes`.
fn builtin_bytes(args: &mut PickleValue) -> Option<PickleValue> {
    let PickleValue::Tuple(items) = args else {
        return None;
    };
    match items.as_mut_slice() {
        [] => Some(PickleValue::Bytes(Vec::new())),
        [PickleValue::Bytes(b)] => Some(PickleValue::Bytes(std::mem::take(b))),
        [PickleValue::Str(s), PickleValue::Str(enc)] => encode_str(s, enc).map(PickleValue::Bytes),
        [PickleValue::List(l)] => l
            .iter()
            .map(|v| v.as_i64().and_then(|i| u8::try_from(i).ok()))
            .collect::<Option<Vec<u8>>>()
            .map(PickleValue::Bytes),
        _ => None,
    }
}

/// `set([...])` / `frozenset([...])` from protocol ≤ 3 → `List`.
fn builtin_set(args: &mut PickleValue) -> Option<PickleValue> {
    let PickleValue::Tuple(items) = args else {
        return None;
    };
    match items.as_mut_slice() {
        [] => Some(PickleValue::List(Vec::new())),
        [PickleValue::List(l)] => Some(PickleValue::List(std::mem::take(l))),
        _ => None,
    }
}

/// A plain numpy dtype.
struct DType {
    /// Kind character (`b`, `i`, `u`, `f`, `c`, `S`, `U`, `V`, `M`, `m`).
    kind: u8,
    /// Bytes per element.
    itemsize: usize,
    /// Full dtype string such as `"<f4"`.
    descr: String,
}

/// Recognise `numpy.dtype(typestr, ...)` optionally followed by BUILD with its state.
fn parse_dtype(v: &PickleValue) -> Option<DType> {
    let (base, state) = match v {
        PickleValue::Build { object, state } => (object.as_ref(), Some(state.as_ref())),
        other => (other, None),
    };
    let PickleValue::Reduce { callable, args } = base else {
        return None;
    };
    let PickleValue::Global { module, name } = callable.as_ref() else {
        return None;
    };
    if !(module == "numpy" || module.starts_with("numpy.")) || name != "dtype" {
        return None;
    }
    let PickleValue::Tuple(a) = args.as_ref() else {
        return None;
    };
    let typestr = a.first()?.as_str()?;
    let (&kind, digits) = typestr.as_bytes().split_first()?;
    if !b"biufcSUVMm".contains(&kind) || digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None; // object ('O'), unknown or parametrised dtypes
    }
    let n: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let itemsize = if kind == b'U' { n.checked_mul(4)? } else { n };
    let order = match state {
        Some(PickleValue::Tuple(s)) => {
            // (version, byteorder, subdescr, names, fields, elsize, alignment, flags[, metadata])
            if s.get(2..5)
                .is_some_and(|x| x.iter().any(|v| *v != PickleValue::None))
            {
                return None; // sub-array or structured dtype
            }
            match s.get(1)?.as_str()?.as_bytes() {
                [o @ (b'<' | b'>' | b'|')] => *o,
                b"=" => b'<',
                _ => return None,
            }
        }
        Some(_) => return None,
        None if itemsize <= 1 || matches!(kind, b'b' | b'S' | b'V') => b'|',
        None => b'<',
    };
    Some(DType {
        kind,
        itemsize,
        descr: format!("{}{typestr}", char::from(order)),
    })
}

/// Array shape from a tuple/list of non-negative ints.
fn parse_shape(v: &PickleValue) -> Option<Vec<usize>> {
    match v {
        PickleValue::Tuple(items) | PickleValue::List(items) => items
            .iter()
            .map(|d| d.as_i64().and_then(|i| usize::try_from(i).ok()))
            .collect(),
        _ => None,
    }
}

/// Build an [`NdArray`], checking that the data length matches shape × itemsize.
fn make_ndarray(dt: DType, shape: Vec<usize>, fortran_order: bool, data: Vec<u8>) -> Result<NdArray, String> {
    let expected = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .and_then(|n| n.checked_mul(dt.itemsize))
        .ok_or_else(|| format!("numpy array shape {shape:?} overflows"))?;
    if expected != data.len() {
        return Err(format!(
            "numpy array of dtype {} and shape {shape:?} needs {expected} bytes, got {}",
            dt.descr,
            data.len()
        ));
    }
    Ok(NdArray {
        dtype: dt.descr,
        shape,
        fortran_order,
        data,
    })
}

/// Whether `object` is `numpy...multiarray._reconstruct(numpy.ndarray, ...)`.
fn is_ndarray_reconstruct(object: &PickleValue) -> bool {
    let PickleValue::Reduce { callable, args } = object else {
        return false;
    };
    let PickleValue::Global { module, name } = callable.as_ref() else {
        return false;
    };
    if !NUMPY_MULTIARRAY.contains(&module.as_str()) || name != "_reconstruct" {
        return false;
    }
    matches!(
        args.as_ref(),
        PickleValue::Tuple(a) if matches!(a.first(), Some(PickleValue::Global { module, name })
            if module == "numpy" && name == "ndarray")
    )
}

/// Interpret ndarray `__setstate__` state `([version,] shape, dtype, is_fortran, data)`.
fn ndarray_from_state(state: &mut PickleValue) -> Result<Option<NdArray>, String> {
    let PickleValue::Tuple(items) = state else {
        return Ok(None);
    };
    let fields = match items.len() {
        5 => items.get_mut(1..),
        4 => items.get_mut(0..),
        _ => None,
    };
    let Some([shape, dtype, fortran, PickleValue::Bytes(data)]) = fields else {
        return Ok(None); // object arrays carry a list here
    };
    let (Some(shape), Some(dt), Some(fortran)) = (parse_shape(shape), parse_dtype(dtype), fortran.as_i64())
    else {
        return Ok(None);
    };
    make_ndarray(dt, shape, fortran != 0, std::mem::take(data)).map(Some)
}

/// `numpy._core.numeric._frombuffer(buf, dtype, shape, order)` (protocol 5) → `NdArray`.
fn numpy_frombuffer(args: &mut PickleValue) -> Result<Option<PickleValue>, String> {
    let PickleValue::Tuple(items) = args else {
        return Ok(None);
    };
    let [PickleValue::Bytes(buf), dtype, shape, order] = items.as_mut_slice() else {
        return Ok(None);
    };
    let (Some(dt), Some(shape)) = (parse_dtype(dtype), parse_shape(shape)) else {
        return Ok(None);
    };
    let fortran = match order.as_str() {
        Some("F") => true,
        Some("C" | "A" | "K") => false,
        _ => return Ok(None),
    };
    make_ndarray(dt, shape, fortran, std::mem::take(buf)).map(|a| Some(PickleValue::NdArray(a)))
}

/// `numpy...multiarray.scalar(dtype, bytes)` → `Bool` / `Int` / `BigInt` / `Float`.
fn numpy_scalar(args: &PickleValue) -> Option<PickleValue> {
    let PickleValue::Tuple(items) = args else {
        return None;
    };
    let [dtype, PickleValue::Bytes(b)] = items.as_slice() else {
        return None;
    };
    let dt = parse_dtype(dtype)?;
    if b.len() != dt.itemsize || !matches!(dt.itemsize, 1 | 2 | 4 | 8) {
        return None;
    }
    let big = dt.descr.starts_with('>');
    match dt.kind {
        b'b' => Some(PickleValue::Bool(b.iter().any(|&x| x != 0))),
        b'i' => Some(PickleValue::Int(read_int(b, big))),
        b'u' => {
            let u = read_uint(b, big);
            Some(match i64::try_from(u) {
                Ok(i) => PickleValue::Int(i),
                Err(_) => {
                    let mut le = u.to_le_bytes().to_vec();
                    le.push(0);
                    PickleValue::BigInt(le)
                }
            })
        }
        b'f' => read_float(b, big).map(PickleValue::Float),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `rec_p2` (99 bytes).
    const REC_P2: &str = concat!(
        "80027d7100285802000000696471015806000000347564782e58710258070000007072696d617279",
        "710358030000004d4b5471045809000000706f736974696f6e7371055d7106284b044b054b076558",
        "05000000736974657371075d71084b0561752e",
    );
    /// `rec_p3` (99 bytes).
    const REC_P3: &str = concat!(
        "80037d7100285802000000696471015806000000347564782e58710258070000007072696d617279",
        "710358030000004d4b5471045809000000706f736974696f6e7371055d7106284b044b054b076558",
        "05000000736974657371075d71084b0561752e",
    );
    /// `rec_p4` (81 bytes).
    const REC_P4: &str = concat!(
        "80049546000000000000007d94288c026964948c06347564782e58948c077072696d617279948c03",
        "4d4b54948c09706f736974696f6e73945d94284b044b054b07658c057369746573945d944b056175",
        "2e",
    );
    /// `rec_p5` (81 bytes).
    const REC_P5: &str = concat!(
        "80059546000000000000007d94288c026964948c06347564782e58948c077072696d617279948c03",
        "4d4b54948c09706f736974696f6e73945d94284b044b054b07658c057369746573945d944b056175",
        "2e",
    );
    /// `rec_p0` (98 bytes).
    const REC_P0: &str = concat!(
        "286470300a5669640a70310a56347564782e580a70320a73567072696d6172790a70330a564d4b54",
        "0a70340a7356706f736974696f6e730a70350a286c70360a49340a6149350a6149370a6173567369",
        "7465730a70370a286c70380a49350a61732e",
    );
    /// `shared_p3` (54 bytes).
    const SHARED_P3: &str = concat!(
        "80037d71002858010000007871015d7102284b014b024b0365580100000079710368025801000000",
        "7a71045d7105286802680265752e",
    );
    /// `ints_p2` (88 bytes).
    const INTS_P2: &str = concat!(
        "80025d7100288a090000000000000000408a090000000000000000c04afbffffff8a08ffffffffff",
        "ffff7f8a0800000000000000808a090000000000000080004affffffff4bff4dffff4a000001004a",
        "7fffffff4b00652e",
    );
    /// `ints_p0` (78 bytes).
    const INTS_P0: &str = concat!(
        "286c70300a4c313138303539313632303731373431313330333432344c0a614c2d31313830353931",
        "3632303731373431313330333432344c0a61492d350a614930310a614930300a6149370a612e",
    );
    /// `misc_p0` (115 bytes).
    const MISC_P0: &str = concat!(
        "286c70300a46312e350a61462d302e32350a615668e96c6c6f5c75313233345c75303035635c7530",
        "3030610a70310a614e612849310a49320a7470320a61635f636f646563730a656e636f64650a7033",
        "0a28565c7530303030ff0a70340a566c6174696e310a70350a7470360a5270370a612e",
    );
    /// `misc_p4` (121 bytes).
    const MISC_P4: &str = concat!(
        "8004956e000000000000005d9428473ff80000000000008c0968c3a96c6c6fe188b4944e294b0185",
        "944b014b0286944b014b024b038794284b014b024b034b047494430200ff948c086275696c74696e",
        "73948c096279746561727261799493944302616294859452948f94284b014b0290284b0391948865",
        "2e",
    );
    /// `misc_p5` (42 bytes).
    const MISC_P5: &str = concat!(
        "8005951f000000000000005d94289602000000000000006162944300948a09000000000000000040",
        "652e",
    );
    /// `misc_p2` (206 bytes).
    const MISC_P2: &str = concat!(
        "80025d710028635f5f6275696c74696e5f5f0a62797465730a710129527102635f636f646563730a",
        "656e636f64650a7103580300000000c3bf710458060000006c6174696e317105867106527107635f",
        "5f6275696c74696e5f5f0a6279746561727261790a71086803580200000061627109680586710a52",
        "710b85710c52710d635f5f6275696c74696e5f5f0a7365740a710e5d710f284b014b026585711052",
        "711163636f6c6c656374696f6e730a4f726465726564446963740a71122952711358010000006171",
        "144b0173652e",
    );
    /// `obj_p2` (53 bytes).
    const OBJ_P2: &str = concat!(
        "8002635f5f6d61696e5f5f0a500a7100298171017d71022858010000006171034b01580100000062",
        "7104580100000078710575622e",
    );
    /// `newobj_ex_p4` (44 bytes).
    const NEWOBJ_EX_P4: &str = concat!(
        "80049521000000000000008c085f5f6d61696e5f5f948c01519493944b0185947d948c016b944b02",
        "7392942e",
    );
    /// `f32_p2` (237 bytes).
    const F32_P2: &str = concat!(
        "8002636e756d70792e5f636f72652e6d756c746961727261790a5f7265636f6e7374727563740a71",
        "00636e756d70790a6e6461727261790a71014b00857102635f636f646563730a656e636f64650a71",
        "03580100000062710458060000006c6174696e317105867106527107877108527109284b014b024b",
        "0386710a636e756d70790a64747970650a710b58020000006634710c898887710d52710e284b0358",
        "010000003c710f4e4e4e4affffffff4affffffff4b0074711062896803581c0000000000c3803f00",
        "000040000040400000c280400000c2a0400000c3804071116805867112527113747114622e",
    );
    /// `f32_p3` (180 bytes).
    const F32_P3: &str = concat!(
        "8003636e756d70792e5f636f72652e6d756c746961727261790a5f7265636f6e7374727563740a71",
        "00636e756d70790a6e6461727261790a71014b008571024301627103877104527105284b014b024b",
        "03867106636e756d70790a64747970650a7107580200000066347108898887710952710a284b0358",
        "010000003c710b4e4e4e4affffffff4affffffff4b0074710c628943180000c03f00000040000040",
        "40000080400000a0400000c040710d74710e622e",
    );
    /// `f32_p5` (153 bytes).
    const F32_P5: &str = concat!(
        "8005958e000000000000008c136e756d70792e5f636f72652e6e756d65726963948c0b5f66726f6d",
        "627566666572949394289618000000000000000000c03f0000004000004040000080400000a04000",
        "00c040948c056e756d7079948c0564747970659493948c02663494898887945294284b038c013c94",
        "4e4e4e4affffffff4affffffff4b007494624b024b0386948c014394749452942e",
    );
    /// `bool_p4` (151 bytes).
    const BOOL_P4: &str = concat!(
        "8004958c000000000000008c166e756d70792e5f636f72652e6d756c74696172726179948c0c5f72",
        "65636f6e7374727563749493948c056e756d7079948c076e6461727261799493944b008594430162",
        "9487945294284b014b03859468038c0564747970659493948c02623194898887945294284b038c01",
        "7c944e4e4e4affffffff4affffffff4b00749462894303010001947494622e",
    );
    /// `i8_p3` (158 bytes).
    const I8_P3: &str = concat!(
        "8003636e756d70792e5f636f72652e6d756c746961727261790a5f7265636f6e7374727563740a71",
        "00636e756d70790a6e6461727261790a71014b008571024301627103877104527105284b014b0485",
        "7106636e756d70790a64747970650a7107580200000069317108898887710952710a284b03580100",
        "00007c710b4e4e4e4affffffff4affffffff4b0074710c62894304ff02807f710d74710e622e",
    );
    /// `i64_p3` (170 bytes).
    const I64_P3: &str = concat!(
        "8003636e756d70792e5f636f72652e6d756c746961727261790a5f7265636f6e7374727563740a71",
        "00636e756d70790a6e6461727261790a71014b008571024301627103877104527105284b014b0285",
        "7106636e756d70790a64747970650a7107580200000069387108898887710952710a284b03580100",
        "00003c710b4e4e4e4affffffff4affffffff4b0074710c62894310ffffffffffffffff0000000000",
        "010000710d74710e622e",
    );
    /// `fortran_p3` (168 bytes).
    const FORTRAN_P3: &str = concat!(
        "8003636e756d70792e5f636f72652e6d756c746961727261790a5f7265636f6e7374727563740a71",
        "00636e756d70790a6e6461727261790a71014b008571024301627103877104527105284b014b024b",
        "03867106636e756d70790a64747970650a7107580200000069327108898887710952710a284b0358",
        "010000003c710b4e4e4e4affffffff4affffffff4b0074710c6288430c0000030001000400020005",
        "00710d74710e622e",
    );
    /// `be_p3` (162 bytes).
    const BE_P3: &str = concat!(
        "8003636e756d70792e5f636f72652e6d756c746961727261790a5f7265636f6e7374727563740a71",
        "00636e756d70790a6e6461727261790a71014b008571024301627103877104527105284b014b0285",
        "7106636e756d70790a64747970650a7107580200000069347108898887710952710a284b03580100",
        "00003e710b4e4e4e4affffffff4affffffff4b0074710c628943080000000100000002710d74710e",
        "622e",
    );
    /// `two_arrays_p3` (207 bytes).
    const TWO_ARRAYS_P3: &str = concat!(
        "80035d710028636e756d70792e5f636f72652e6d756c746961727261790a5f7265636f6e73747275",
        "63740a7101636e756d70790a6e6461727261790a71024b008571034301627104877105527106284b",
        "014b02857107636e756d70790a64747970650a7108580200000066347109898887710a52710b284b",
        "0358010000003c710c4e4e4e4affffffff4affffffff4b0074710d62894308000000000000000071",
        "0e74710f62680168024b008571106804877111527112284b014b01857113680b8943040000803f71",
        "1474711562652e",
    );
    /// `scalars_p2` (469 bytes).
    const SCALARS_P2: &str = concat!(
        "80025d710028636e756d70792e5f636f72652e6d756c746961727261790a7363616c61720a710163",
        "6e756d70790a64747970650a71025802000000663471038988877104527105284b0358010000003c",
        "71064e4e4e4affffffff4affffffff4b0074710762635f636f646563730a656e636f64650a710858",
        "0400000000002040710958060000006c6174696e31710a86710b52710c86710d52710e6801680258",
        "020000006938710f8988877110527111284b0368064e4e4e4affffffff4affffffff4b0074711262",
        "68085810000000c3bdc3bfc3bfc3bfc3bfc3bfc3bfc3bf7113680a86711452711586711652711768",
        "016802580200000062317118898887711952711a284b0358010000007c711b4e4e4e4affffffff4a",
        "ffffffff4b0074711c626808580100000001711d680a86711e52711f867120527121680168025802",
        "000000753171228988877123527124284b03681b4e4e4e4affffffff4affffffff4b007471256268",
        "085802000000c3887126680a86712752712886712952712a6801680258020000006638712b898887",
        "712c52712d284b0368064e4e4e4affffffff4affffffff4b0074712e626808580f000000c29ac299",
        "c299c299c299c299c2b93f712f680a867130527131867132527133652e",
    );
    /// `scalars_p4` (265 bytes).
    const SCALARS_P4: &str = concat!(
        "800495fe000000000000005d94288c166e756d70792e5f636f72652e6d756c74696172726179948c",
        "067363616c61729493948c056e756d7079948c0564747970659493948c0266349489888794529428",
        "4b038c013c944e4e4e4affffffff4affffffff4b007494624304000020409486945294680368068c",
        "02693894898887945294284b03680a4e4e4e4affffffff4affffffff4b007494624308fdffffffff",
        "ffffff9486945294680368068c02623194898887945294284b038c017c944e4e4e4affffffff4aff",
        "ffffff4b007494624301019486945294680368068c02663294898887945294284b03680a4e4e4e4a",
        "ffffffff4affffffff4b007494624302003e9486945294652e",
    );
    /// `objarr_p3` (165 bytes).
    const OBJARR_P3: &str = concat!(
        "8003636e756d70792e5f636f72652e6d756c746961727261790a5f7265636f6e7374727563740a71",
        "00636e756d70790a6e6461727261790a71014b008571024301627103877104527105284b014b0285",
        "7106636e756d70790a64747970650a710758020000004f387108898887710952710a284b03580100",
        "00007c710b4e4e4e4affffffff4affffffff4b3f74710c62895d710d284b01580100000061710e65",
        "74710f622e",
    );
    /// `f16_p3` (160 bytes).
    const F16_P3: &str = concat!(
        "8003636e756d70792e5f636f72652e6d756c746961727261790a5f7265636f6e7374727563740a71",
        "00636e756d70790a6e6461727261790a71014b008571024301627103877104527105284b014b0385",
        "7106636e756d70790a64747970650a7107580200000066327108898887710952710a284b03580100",
        "00003c710b4e4e4e4affffffff4affffffff4b0074710c62894306003e00c0ff7b710d74710e622e",
    );
    /// `empty_p3` (156 bytes).
    const EMPTY_P3: &str = concat!(
        "8003636e756d70792e5f636f72652e6d756c746961727261790a5f7265636f6e7374727563740a71",
        "00636e756d70790a6e6461727261790a71014b008571024301627103877104527105284b014b004b",
        "03867106636e756d70790a64747970650a7107580200000066347108898887710952710a284b0358",
        "010000003c710b4e4e4e4affffffff4affffffff4b0074710c62894300710d74710e622e",
    );

    /// Decode a hex string (test helper).
    fn hex(s: &str) -> Vec<u8> {
        assert!(s.len().is_multiple_of(2), "odd hex length");
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// Parse a hex-encoded pickle, panicking (in tests only) on error.
    fn parse_hex(s: &str) -> PickleValue {
        parse_pickle(&hex(s)).expect("parse")
    }

    /// Shorthand for a `Str` value.
    fn s(x: &str) -> PickleValue {
        PickleValue::Str(x.to_string())
    }

    /// All embedded pickles produced by CPython / numpy.
    const ALL: [&str; 28] = [
        REC_P2,
        REC_P3,
        REC_P4,
        REC_P5,
        REC_P0,
        SHARED_P3,
        INTS_P2,
        INTS_P0,
        MISC_P0,
        MISC_P4,
        MISC_P5,
        MISC_P2,
        OBJ_P2,
        NEWOBJ_EX_P4,
        F32_P2,
        F32_P3,
        F32_P5,
        BOOL_P4,
        I8_P3,
        I64_P3,
        FORTRAN_P3,
        BE_P3,
        TWO_ARRAYS_P3,
        SCALARS_P2,
        SCALARS_P4,
        OBJARR_P3,
        F16_P3,
        EMPTY_P3,
    ];

    #[test]
    fn all_embedded_pickles_parse() {
        for (i, p) in ALL.iter().enumerate() {
            assert!(
                parse_pickle(&hex(p)).is_ok(),
                "pickle #{i} failed: {:?}",
                parse_pickle(&hex(p))
            );
        }
    }

    #[test]
    fn provis_record_every_protocol() {
        for p in [REC_P0, REC_P2, REC_P3, REC_P4, REC_P5] {
            let v = parse_hex(p);
            assert_eq!(v.get("id").and_then(PickleValue::as_str), Some("4udx.X"));
            assert_eq!(v.get("primary").and_then(PickleValue::as_str), Some("MKT"));
            let pos = v.get("positions").expect("positions");
            assert_eq!(pos.to_i64_vec(), Some(vec![4, 5, 7]));
            assert_eq!(pos.shape(), Some(vec![3]));
            assert_eq!(v.get("sites").and_then(PickleValue::to_i64_vec), Some(vec![5]));
            assert_eq!(v.get("missing"), None);
            let PickleValue::Dict(pairs) = &v else {
                panic!("not a dict")
            };
            assert_eq!(pairs.len(), 4);
        }
    }

    #[test]
    fn memo_shared_list_sees_later_appends() {
        // EMPTY_LIST, BINPUT 2, MARK ... APPENDS, then BINGET 2 (twice, nested).
        let v = parse_hex(SHARED_P3);
        let l = PickleValue::List(vec![
            PickleValue::Int(1),
            PickleValue::Int(2),
            PickleValue::Int(3),
        ]);
        assert_eq!(v.get("x"), Some(&l));
        assert_eq!(v.get("y"), Some(&l));
        assert_eq!(v.get("z"), Some(&PickleValue::List(vec![l.clone(), l])));
    }

    #[test]
    fn memo_alias_mutation_visible_in_earlier_reference() {
        // [] PUT0 GET0 5 APPEND TUPLE2: appending through the alias mutates the one list.
        let v = parse_pickle(b"\x80\x02]q\x00h\x00K\x05a\x86.").expect("parse");
        let l = PickleValue::List(vec![PickleValue::Int(5)]);
        assert_eq!(v, PickleValue::Tuple(vec![l.clone(), l]));
        // Same with a dict filled by SETITEM after being memoised via MEMOIZE.
        let v = parse_pickle(b"\x80\x04(}\x94h\x00\x8c\x01k\x94K\x07sl.").expect("parse");
        let d = PickleValue::Dict(vec![(s("k"), PickleValue::Int(7))]);
        assert_eq!(v, PickleValue::List(vec![d.clone(), d]));
    }

    #[test]
    fn big_and_negative_ints() {
        let v = parse_hex(INTS_P2);
        let mut two70 = vec![0u8; 8];
        two70.push(0x40);
        let mut neg_two70 = vec![0u8; 8];
        neg_two70.push(0xc0);
        let mut two63 = vec![0u8; 7];
        two63.extend([0x80, 0x00]);
        let expected = vec![
            PickleValue::BigInt(two70.clone()),
            PickleValue::BigInt(neg_two70.clone()),
            PickleValue::Int(-5),
            PickleValue::Int(i64::MAX),
            PickleValue::Int(i64::MIN),
            PickleValue::BigInt(two63),
            PickleValue::Int(-1),
            PickleValue::Int(255),
            PickleValue::Int(65535),
            PickleValue::Int(65536),
            PickleValue::Int(-129),
            PickleValue::Int(0),
        ];
        assert_eq!(v, PickleValue::List(expected));
        // Protocol 0: LONG text and INT bools.
        let v = parse_hex(INTS_P0);
        let expected = vec![
            PickleValue::BigInt(two70),
            PickleValue::BigInt(neg_two70),
            PickleValue::Int(-5),
            PickleValue::Bool(true),
            PickleValue::Bool(false),
            PickleValue::Int(7),
        ];
        assert_eq!(v, PickleValue::List(expected));
        assert_eq!(v.to_i64_vec(), None);
    }

    #[test]
    fn text_protocol_misc() {
        let v = parse_hex(MISC_P0);
        let expected = vec![
            PickleValue::Float(1.5),
            PickleValue::Float(-0.25),
            s("h\u{e9}llo\u{1234}\\\n"),
            PickleValue::None,
            PickleValue::Tuple(vec![PickleValue::Int(1), PickleValue::Int(2)]),
            PickleValue::Bytes(vec![0x00, 0xff]),
        ];
        assert_eq!(v, PickleValue::List(expected));
    }

    #[test]
    fn protocol4_and_5_misc() {
        let v = parse_hex(MISC_P4);
        let i = PickleValue::Int;
        let expected = vec![
            PickleValue::Float(1.5),
            s("h\u{e9}llo\u{1234}"),
            PickleValue::None,
            PickleValue::Tuple(vec![]),
            PickleValue::Tuple(vec![i(1)]),
            PickleValue::Tuple(vec![i(1), i(2)]),
            PickleValue::Tuple(vec![i(1), i(2), i(3)]),
            PickleValue::Tuple(vec![i(1), i(2), i(3), i(4)]),
            PickleValue::Bytes(vec![0x00, 0xff]),
            PickleValue::Bytes(b"ab".to_vec()),
            PickleValue::List(vec![i(1), i(2)]),
            PickleValue::List(vec![i(3)]),
            PickleValue::Bool(true),
        ];
        assert_eq!(v, PickleValue::List(expected));
        let v = parse_hex(MISC_P5);
        let PickleValue::List(items) = &v else {
            panic!("not a list")
        };
        assert_eq!(items.first(), Some(&PickleValue::Bytes(b"ab".to_vec())));
        assert_eq!(items.get(1), Some(&PickleValue::Bytes(vec![])));
        assert!(matches!(items.get(2), Some(PickleValue::BigInt(_))));
    }

    #[test]
    fn protocol2_bytes_sets_and_dict_subclass() {
        let v = parse_hex(MISC_P2);
        let expected = vec![
            PickleValue::Bytes(vec![]),
            PickleValue::Bytes(vec![0x00, 0xff]),
            PickleValue::Bytes(b"ab".to_vec()),
            PickleValue::List(vec![PickleValue::Int(1), PickleValue::Int(2)]),
            PickleValue::Dict(vec![(s("a"), PickleValue::Int(1))]),
        ];
        assert_eq!(v, PickleValue::List(expected));
    }

    #[test]
    fn objects_are_recorded_not_executed() {
        let v = parse_hex(OBJ_P2);
        let PickleValue::Build { object, state } = &v else {
            panic!("not a build: {v:?}")
        };
        assert_eq!(
            **object,
            PickleValue::Reduce {
                callable: Box::new(PickleValue::Global {
                    module: "__main__".into(),
                    name: "P".into()
                }),
                args: Box::new(PickleValue::Tuple(vec![])),
            }
        );
        assert_eq!(state.get("a"), Some(&PickleValue::Int(1)));
        assert_eq!(state.get("b").and_then(PickleValue::as_str), Some("x"));

        let v = parse_hex(NEWOBJ_EX_P4);
        let PickleValue::Reduce { callable, args } = &v else {
            panic!("not a reduce: {v:?}")
        };
        assert_eq!(
            **callable,
            PickleValue::Global {
                module: "__main__".into(),
                name: "Q".into()
            }
        );
        assert_eq!(
            **args,
            PickleValue::Tuple(vec![
                PickleValue::Tuple(vec![PickleValue::Int(1)]),
                PickleValue::Dict(vec![(s("k"), PickleValue::Int(2))]),
            ])
        );
    }

    #[test]
    fn float32_arrays_every_protocol() {
        for p in [F32_P2, F32_P3, F32_P5] {
            let v = parse_hex(p);
            let PickleValue::NdArray(a) = &v else {
                panic!("not an array: {v:?}")
            };
            assert_eq!(a.dtype, "<f4");
            assert!(!a.fortran_order);
            assert_eq!(v.shape(), Some(vec![2, 3]));
            assert_eq!(v.to_f64_vec(), Some(vec![1.5, 2.0, 3.0, 4.0, 5.0, 6.0]));
            assert_eq!(v.to_i64_vec(), None); // 2-D and float
        }
    }

    #[test]
    fn bool_int_and_float16_arrays() {
        let v = parse_hex(BOOL_P4);
        let PickleValue::NdArray(a) = &v else {
            panic!("not an array")
        };
        assert_eq!(a.dtype, "|b1");
        assert_eq!(v.to_bool_vec(), Some(vec![true, false, true]));
        assert_eq!(v.to_i64_vec(), Some(vec![1, 0, 1]));

        let v = parse_hex(I8_P3);
        let PickleValue::NdArray(a) = &v else {
            panic!("not an array")
        };
        assert_eq!(a.dtype, "|i1");
        assert_eq!(v.to_i64_vec(), Some(vec![-1, 2, -128, 127]));
        assert_eq!(v.to_f64_vec(), Some(vec![-1.0, 2.0, -128.0, 127.0]));
        assert_eq!(v.to_bool_vec(), Some(vec![true, true, true, true]));

        let v = parse_hex(I64_P3);
        let PickleValue::NdArray(a) = &v else {
            panic!("not an array")
        };
        assert_eq!(a.dtype, "<i8");
        assert_eq!(v.to_i64_vec(), Some(vec![-1, 1 << 40]));

        let v = parse_hex(BE_P3);
        let PickleValue::NdArray(a) = &v else {
            panic!("not an array")
        };
        assert_eq!(a.dtype, ">i4");
        assert_eq!(v.to_i64_vec(), Some(vec![1, 2]));

        let v = parse_hex(F16_P3);
        let PickleValue::NdArray(a) = &v else {
            panic!("not an array")
        };
        assert_eq!(a.dtype, "<f2");
        assert_eq!(v.to_f64_vec(), Some(vec![1.5, -2.0, 65504.0]));
        assert_eq!(v.to_bool_vec(), None);

        let v = parse_hex(EMPTY_P3);
        assert_eq!(v.shape(), Some(vec![0, 3]));
        assert_eq!(v.to_f64_vec(), Some(vec![]));
    }

    #[test]
    fn fortran_order_is_flattened_in_c_order() {
        let v = parse_hex(FORTRAN_P3);
        let PickleValue::NdArray(a) = &v else {
            panic!("not an array")
        };
        assert!(a.fortran_order);
        assert_eq!(a.dtype, "<i2");
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(v.to_f64_vec(), Some(vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]));
    }

    #[test]
    fn memoised_dtype_after_build_is_reused() {
        // The second array refers to the first array's dtype via BINGET after its BUILD.
        let v = parse_hex(TWO_ARRAYS_P3);
        let PickleValue::List(items) = &v else {
            panic!("not a list")
        };
        assert_eq!(items.len(), 2);
        assert_eq!(
            items.first().and_then(PickleValue::to_f64_vec),
            Some(vec![0.0, 0.0])
        );
        assert_eq!(items.get(1).and_then(PickleValue::to_f64_vec), Some(vec![1.0]));
        assert!(
            items
                .iter()
                .all(|a| matches!(a, PickleValue::NdArray(n) if n.dtype == "<f4"))
        );
    }

    #[test]
    fn numpy_scalars() {
        let v = parse_hex(SCALARS_P2);
        let expected = vec![
            PickleValue::Float(2.5),
            PickleValue::Int(-3),
            PickleValue::Bool(true),
            PickleValue::Int(200),
            PickleValue::Float(0.1),
        ];
        assert_eq!(v, PickleValue::List(expected));
        let v = parse_hex(SCALARS_P4);
        let expected = vec![
            PickleValue::Float(2.5),
            PickleValue::Int(-3),
            PickleValue::Bool(true),
            PickleValue::Float(1.5),
        ];
        assert_eq!(v, PickleValue::List(expected));
    }

    #[test]
    fn object_array_stays_a_build_node() {
        let v = parse_hex(OBJARR_P3);
        let PickleValue::Build { state, .. } = &v else {
            panic!("expected Build, got {v:?}")
        };
        assert!(matches!(&**state, PickleValue::Tuple(t) if t.len() == 5));
        assert_eq!(v.to_f64_vec(), None);
    }

    #[test]
    fn array_data_length_mismatch_is_an_error() {
        // Change the shape (2, 3) to (2, 2) so 24 data bytes no longer fit.
        let good = F32_P3;
        let bad = good.replacen("4b024b0386", "4b024b0286", 1);
        assert_ne!(good, bad);
        let e = parse_pickle(&hex(&bad)).expect_err("must fail");
        assert!(e.message.contains("needs 16 bytes"), "{e}");
    }

    #[test]
    fn hand_built_opcodes() {
        // STRING with escapes, BINSTRING, SHORT_BINSTRING, BINUNICODE8, BINBYTES, BINBYTES8,
        // LONG4, LONG1 empty, BINFLOAT, DUP, POP, POP_MARK, DICT, text PUT/GET,
        // LONG_BINPUT/LONG_BINGET, GLOBAL, EMPTY_SET + ADDITEMS, FROZENSET, BININT2.
        let mut p: Vec<u8> = b"(".to_vec();
        p.extend(b"S'a\\x41\\n\\'\\101'\n");
        p.extend(b"T\x02\x00\x00\x00hi");
        p.extend(b"U\x01z");
        p.extend(b"\x8d\x02\x00\x00\x00\x00\x00\x00\x00ok");
        p.extend(b"B\x01\x00\x00\x00\x07");
        p.extend(b"\x8e\x01\x00\x00\x00\x00\x00\x00\x00\x08");
        p.extend(b"\x8b\x02\x00\x00\x00\xff\x7f");
        p.extend(b"\x8a\x00");
        p.extend(b"G\x3f\xf8\x00\x00\x00\x00\x00\x00");
        p.extend(b"K\x09\x32\x30"); // 9 DUP POP -> 9
        p.extend(b"(K\x01K\x02\x31"); // MARK 1 2 POP_MARK -> nothing
        p.extend(b"(Vk\nK\x03dp7\n0g7\n"); // {'k': 3} PUT 7, POP, GET 7
        p.extend(b"Vm\nr\x00\x01\x00\x000j\x00\x01\x00\x00"); // 'm' LONG_BINPUT, POP, LONG_BINGET
        p.extend(b"cos\nsystem\n");
        p.extend(b"\x8f(K\x01K\x02\x90"); // set {1,2}
        p.extend(b"(K\x03\x91"); // frozenset {3}
        p.extend(b"M\x01\x01");
        p.extend(b"I-12\nF2.5\nI00\n");
        p.extend(b"l.");
        let v = parse_pickle(&p).expect("parse");
        let i = PickleValue::Int;
        let expected = vec![
            PickleValue::Bytes(b"aA\n'A".to_vec()),
            PickleValue::Bytes(b"hi".to_vec()),
            PickleValue::Bytes(b"z".to_vec()),
            s("ok"),
            PickleValue::Bytes(vec![7]),
            PickleValue::Bytes(vec![8]),
            i(0x7fff),
            i(0),
            PickleValue::Float(1.5),
            i(9),
            PickleValue::Dict(vec![(s("k"), i(3))]),
            s("m"),
            PickleValue::Global {
                module: "os".into(),
                name: "system".into(),
            },
            PickleValue::List(vec![i(1), i(2)]),
            PickleValue::List(vec![i(3)]),
            i(257),
            i(-12),
            PickleValue::Float(2.5),
            PickleValue::Bool(false),
        ];
        assert_eq!(v, PickleValue::List(expected));
    }

    #[test]
    fn accessors_on_wrong_types() {
        let v = PickleValue::Int(3);
        assert_eq!(v.get("a"), None);
        assert_eq!(v.as_str(), None);
        assert_eq!(v.as_i64(), Some(3));
        assert_eq!(v.to_i64_vec(), None);
        assert_eq!(v.to_f64_vec(), None);
        assert_eq!(v.to_bool_vec(), None);
        assert_eq!(v.shape(), None);
        let l = PickleValue::List(vec![PickleValue::Int(1), PickleValue::Float(0.5)]);
        assert_eq!(l.to_f64_vec(), Some(vec![1.0, 0.5]));
        assert_eq!(l.to_i64_vec(), None);
        assert_eq!(l.to_bool_vec(), None);
        // Inconsistent hand-made arrays yield None, not a panic.
        let bad = PickleValue::NdArray(NdArray {
            dtype: "<f4".into(),
            shape: vec![usize::MAX, 2],
            fortran_order: true,
            data: vec![0; 3],
        });
        assert_eq!(bad.to_f64_vec(), None);
        let weird = PickleValue::NdArray(NdArray {
            dtype: "<f0".into(),
            shape: vec![0],
            fortran_order: false,
            data: vec![],
        });
        assert_eq!(weird.to_f64_vec(), None);
        // Duplicate keys: last one wins, like Python.
        let d = PickleValue::Dict(vec![(s("a"), PickleValue::Int(1)), (s("a"), PickleValue::Int(2))]);
        assert_eq!(d.get("a"), Some(&PickleValue::Int(2)));
    }

    #[test]
    fn truncated_input_every_prefix_is_an_error() {
        for p in [
            REC_P3, REC_P5, F32_P2, F32_P5, MISC_P0, MISC_P4, SCALARS_P2, INTS_P2,
        ] {
            let full = hex(p);
            for n in 0..full.len() {
                let prefix = full.get(..n).expect("prefix");
                assert!(parse_pickle(prefix).is_err(), "prefix of length {n} parsed");
            }
        }
    }

    #[test]
    fn declared_lengths_larger_than_input_are_rejected() {
        let cases: [&[u8]; 9] = [
            b"\x80\x03X\xff\xff\xff\xffabc.",
            b"\x80\x03B\x00\x00\x00\x10abc.",
            b"\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\xffabc.",
            b"\x80\x04\x8d\x00\x00\x00\x00\x00\x00\x01\x00abc.",
            b"\x80\x05\x96\x10\x00\x00\x00\x00\x00\x00\x00abc.",
            b"\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\x7f.",
            b"\x80\x02\x8b\x00\x00\x00\x01\x00.",
            b"\x80\x02\x8b\xff\xff\xff\xff.",
            b"\x80\x02T\xfe\xff\xff\xff.",
        ];
        for c in cases {
            let e = parse_pickle(c).expect_err("must fail");
            assert_eq!(e.offset, 2, "{e}");
        }
        let e = parse_pickle(b"\x80\x03C\x05ab.").expect_err("must fail");
        assert!(e.message.contains("needs 5 bytes"), "{e}");
    }

    #[test]
    fn malformed_streams_are_errors() {
        let cases: [&[u8]; 16] = [
            b"",
            b"\x80\x03",
            b"\x80\x06N.",
            b"\x80\x02.",
            b"\x80\x02K\x01a.",
            b"\x80\x02K\x01K\x02a.",
            b"\x80\x02}K\x01s.",
            b"\x80\x02(K\x01u.",
            b"\x80\x02h\x05.",
            b"\x80\x02K\x01K\x02\x93.",
            b"\x80\x02e.",
            b"\x80\x02K\x01(K\x02\x86.", // TUPLE2 may not reach below a MARK
            b"\x80\x02]q\x00h\x00a.",    // list containing itself
            b"I12x\n.",
            b"S'abc\n.",
            b"c\xff\nx\n.",
        ];
        for c in cases {
            assert!(parse_pickle(c).is_err(), "{c:?} parsed");
        }
    }

    #[test]
    fn text_integer_digit_limit() {
        let mut ok = b"L".to_vec();
        ok.extend(std::iter::repeat_n(b'9', MAX_INT_DIGITS));
        ok.extend(b"L\n.");
        assert!(matches!(parse_pickle(&ok), Ok(PickleValue::BigInt(_))));
        let mut too_long = b"L".to_vec();
        too_long.extend(std::iter::repeat_n(b'9', MAX_INT_DIGITS + 1));
        too_long.extend(b"L\n.");
        assert!(parse_pickle(&too_long).is_err());
        // 2**64 as text: 9 magnitude bytes plus no sign byte needed.
        let v = parse_pickle(b"I18446744073709551616\n.").expect("parse");
        assert_eq!(v, PickleValue::BigInt(vec![0, 0, 0, 0, 0, 0, 0, 0, 1]));
        let v = parse_pickle(b"L-9223372036854775808L\n.").expect("parse");
        assert_eq!(v, PickleValue::Int(i64::MIN));
    }

    #[test]
    fn unsupported_opcode_names_byte_and_offset() {
        let e = parse_pickle(b"\x80\x02NP0\n.").expect_err("PERSID unsupported");
        assert_eq!(e.offset, 3);
        assert!(e.message.contains("0x50"), "{e}");
        assert!(e.to_string().contains("byte 3"), "{e}");
        let e = parse_pickle(b"\x80\x05\x97.").expect_err("NEXT_BUFFER unsupported");
        assert!(e.message.contains("0x97"), "{e}");
    }

    #[test]
    fn nesting_depth_is_bounded() {
        let nested = |depth: usize| {
            let mut p = vec![b']'; depth + 1];
            p.extend(std::iter::repeat_n(b'a', depth));
            p.push(b'.');
            p
        };
        assert!(parse_pickle(&nested(MAX_DEPTH - 1)).is_ok());
        let e = parse_pickle(&nested(100_000)).expect_err("too deep");
        assert!(e.message.contains("nesting"), "{e}");
    }

    #[test]
    fn memo_sharing_blowup_is_bounded() {
        // x0 = 4 KiB bytes; x(k+1) = (xk, xk): 2^40 copies if expanded naively.
        let mut p = b"\x80\x04\x8e\x00\x10\x00\x00\x00\x00\x00\x00".to_vec();
        p.extend(vec![0u8; 4096]);
        for _ in 0..40 {
            p.extend(b"2\x86"); // DUP, TUPLE2: x -> (x, x)
        }
        p.push(b'.');
        let e = parse_pickle(&p).expect_err("blow-up not rejected");
        assert!(e.message.contains("too large"), "{e}");
    }

    /// Deterministic xorshift64 generator for fuzzing.
    struct XorShift(u64);

    impl XorShift {
        /// Next pseudo-random value.
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
    }

    #[test]
    fn fuzz_random_bytes_never_panic() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        // Alphabet biased towards real opcodes so the fuzzer gets past the first byte.
        let alphabet: &[u8] = b"\x80\x95.(012N\x88\x89IJKLMFGSTUVXBC]aelt)\x85\x86\x87}dsu\x8f\x90\x91c\x93Rb\x81\x92pqr\x94ghj\x8a\x8b\x8c\x8d\x8e\x96\n'\x00\x01\xff";
        for _ in 0..20_000 {
            let len = (rng.next() % 64) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    let r = rng.next();
                    if r.is_multiple_of(4) {
                        (r >> 8) as u8
                    } else {
                        alphabet
                            .get((r >> 8) as usize % alphabet.len())
                            .copied()
                            .unwrap_or(0)
                    }
                })
                .collect();
            let _ = parse_pickle(&bytes);
        }
    }

    #[test]
    fn fuzz_mutated_pickles_never_panic() {
        let mut rng = XorShift(0x1234_5678_9abc_def1);
        for p in ALL {
            let base = hex(p);
            for _ in 0..1_500 {
                let mut m = base.clone();
                let edits = 1 + rng.next() % 4;
                for _ in 0..edits {
                    let r = rng.next();
                    let idx = (r >> 16) as usize % m.len().max(1);
                    match r % 3 {
                        0 => {
                            if let Some(b) = m.get_mut(idx) {
                                *b = (r >> 40) as u8;
                            }
                        }
                        1 => {
                            if idx < m.len() {
                                m.remove(idx);
                            }
                        }
                        _ => m.insert(idx.min(m.len()), (r >> 40) as u8),
                    }
                }
                let _ = parse_pickle(&m);
            }
        }
    }

    #[test]
    fn error_display_and_trait() {
        let e = PickleError {
            offset: 7,
            message: "boom".into(),
        };
        assert_eq!(e.to_string(), "pickle error at byte 7: boom");
        let _: &dyn std::error::Error = &e;
    }
}
