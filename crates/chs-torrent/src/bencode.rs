//! A minimal bencode value type with an encoder and a strict decoder (BEP 3).
//!
//! Dictionaries are `BTreeMap`s keyed by raw bytes, so encoding always emits keys in the
//! byte-wise sorted order that BEP 3 requires and that anacrolix/torrent and libtorrent produce.

use std::collections::BTreeMap;

/// Nesting limit of the decoder, so that hostile input cannot overflow the stack.
const MAX_DEPTH: usize = 64;

/// A bencoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `i<n>e`.
    Int(i64),
    /// `<len>:<bytes>`.
    Bytes(Vec<u8>),
    /// `l...e`.
    List(Vec<Value>),
    /// `d...e` with keys sorted byte-wise.
    Dict(BTreeMap<Vec<u8>, Value>),
}

/// Why bencoded input was rejected; `offset` is the byte position where decoding stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid bencode at byte {offset}: {reason}")]
pub struct DecodeError {
    /// Byte offset of the problem in the input.
    pub offset: usize,
    /// What was wrong.
    pub reason: &'static str,
}

impl Value {
    /// Shorthand for a byte-string value.
    pub fn bytes(b: impl Into<Vec<u8>>) -> Self {
        Self::Bytes(b.into())
    }

    /// Appends the bencoding of `self` to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Self::Int(n) => {
                out.push(b'i');
                out.extend_from_slice(n.to_string().as_bytes());
                out.push(b'e');
            }
            Self::Bytes(b) => {
                out.extend_from_slice(b.len().to_string().as_bytes());
                out.push(b':');
                out.extend_from_slice(b);
            }
            Self::List(items) => {
                out.push(b'l');
                for item in items {
                    item.encode_into(out);
                }
                out.push(b'e');
            }
            Self::Dict(map) => {
                out.push(b'd');
                for (key, value) in map {
                    Self::Bytes(key.clone()).encode_into(out);
                    value.encode_into(out);
                }
                out.push(b'e');
            }
        }
    }

    /// The bencoding of `self`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Decodes exactly one value spanning all of `input`.
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let (value, end) = Self::decode_prefix(input)?;
        if end != input.len() {
            return Err(DecodeError { offset: end, reason: "trailing bytes after value" });
        }
        Ok(value)
    }

    /// Decodes one value at the start of `input` and returns it with the number of bytes it spans.
    pub fn decode_prefix(input: &[u8]) -> Result<(Self, usize), DecodeError> {
        let mut decoder = Decoder { input, pos: 0 };
        let value = decoder.value(0)?;
        Ok((value, decoder.pos))
    }

    /// The dictionary, if this is one.
    pub fn as_dict(&self) -> Option<&BTreeMap<Vec<u8>, Value>> {
        match self {
            Self::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// The list, if this is one.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Self::List(l) => Some(l),
            _ => None,
        }
    }

    /// The byte string, if this is one.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(n) => Some(*n),
            _ => None,
        }
    }
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Decoder<'_> {
    fn err(&self, reason: &'static str) -> DecodeError {
        DecodeError { offset: self.pos, reason }
    }

    fn peek(&self) -> Result<u8, DecodeError> {
        self.input.get(self.pos).copied().ok_or_else(|| self.err("unexpected end of input"))
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                let n = self.integer(b'e')?;
                Ok(Value::Int(n))
            }
            b'l' => {
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => {
                self.pos += 1;
                let mut map = BTreeMap::new();
                let mut last_key: Option<Vec<u8>> = None;
                while self.peek()? != b'e' {
                    let key = self.byte_string()?;
                    if last_key.as_ref().is_some_and(|last| *last >= key) {
                        return Err(self.err("dictionary keys not strictly sorted"));
                    }
                    let value = self.value(depth + 1)?;
                    last_key = Some(key.clone());
                    map.insert(key, value);
                }
                self.pos += 1;
                Ok(Value::Dict(map))
            }
            b'0'..=b'9' => Ok(Value::Bytes(self.byte_string()?)),
            _ => Err(self.err("unexpected byte")),
        }
    }

    fn integer(&mut self, terminator: u8) -> Result<i64, DecodeError> {
        let start = self.pos;
        while self.peek()? != terminator {
            self.pos += 1;
        }
        let digits = &self.input[start..self.pos];
        let text = std::str::from_utf8(digits).map_err(|_| self.err("non-ASCII integer"))?;
        // Canonical: `0`, or an optional `-` then digits without a leading zero. `+` is not
        // bencode even though `i64::from_str` takes it (found by the `torrent_meta` fuzz target).
        let magnitude = text.strip_prefix('-').unwrap_or(text);
        let canonical = text == "0"
            || (!magnitude.is_empty() && magnitude.bytes().all(|b| b.is_ascii_digit()) && !magnitude.starts_with('0'));
        if !canonical {
            return Err(self.err("non-canonical integer"));
        }
        let n: i64 = text.parse().map_err(|_| self.err("invalid integer"))?;
        self.pos += 1;
        Ok(n)
    }

    fn byte_string(&mut self) -> Result<Vec<u8>, DecodeError> {
        if !self.peek()?.is_ascii_digit() {
            return Err(self.err("expected a byte string"));
        }
        let len = self.integer(b':')?;
        let len = usize::try_from(len).map_err(|_| self.err("negative string length"))?;
        let end = self.pos.checked_add(len).ok_or_else(|| self.err("string length overflows"))?;
        let bytes = self.input.get(self.pos..end).ok_or_else(|| self.err("string runs past end of input"))?;
        self.pos = end;
        Ok(bytes.to_vec())
    }
}
