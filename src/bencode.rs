//! STUB (helper fills in): bencode decoder and encoder.
#![allow(unused)]

/// Deepest nesting of lists and dicts accepted.
pub const MAX_DEPTH: usize = 64;

/// A decoded bencode value, borrowing from the input. Dict entries keep input order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    Int(i64),
    Bytes(&'a [u8]),
    List(Vec<Value<'a>>),
    Dict(Vec<(&'a [u8], Value<'a>)>),
}

/// A malformed input: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub offset: usize,
    pub reason: &'static str,
}

/// Decodes exactly one value filling all of `input`.
pub fn decode(input: &[u8]) -> Result<Value<'_>, Error> {
    todo!()
}

/// Decodes one value at the start of `input`; returns it and the bytes it used.
pub fn decode_prefix(input: &[u8]) -> Result<(Value<'_>, usize), Error> {
    todo!()
}

impl<'a> Value<'a> {
    pub fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        todo!()
    }
    pub fn as_int(&self) -> Option<i64> {
        todo!()
    }
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        todo!()
    }
    pub fn as_str(&self) -> Option<&'a str> {
        todo!()
    }
    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        todo!()
    }
    pub fn encode(&self) -> Vec<u8> {
        todo!()
    }
}
