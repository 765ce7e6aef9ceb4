//! Bencode decoding and encoding (BEP 3), without recursion in the decoder.
//!
//! Pure functions called on whichever thread holds the bytes: the main thread for .torrent
//! files and peer threads for extension messages. Decoded values borrow from the input and
//! own nothing but their `Vec`s; nesting is limited to [`MAX_DEPTH`] with an explicit stack,
//! so hostile input cannot overflow the thread's stack.

use std::collections::HashSet;
use std::fmt;

/// Deepest nesting of lists and dicts accepted.
pub const MAX_DEPTH: usize = 64;

/// A decoded bencode value, borrowing from the input. Dict entries keep input order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// An integer (`i42e`).
    Int(i64),
    /// A byte string (`4:spam`).
    Bytes(&'a [u8]),
    /// A list (`l...e`).
    List(Vec<Value<'a>>),
    /// A dict (`d...e`), entries in input order; keys are unique but need not be sorted.
    Dict(Vec<(&'a [u8], Value<'a>)>),
}

/// A malformed input: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Byte offset into the input where the problem was found.
    pub offset: usize,
    /// What is wrong, in a few words.
    pub reason: &'static str,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bencode: at byte {}: {}", self.offset, self.reason)
    }
}

impl std::error::Error for Error {}

fn err<T>(offset: usize, reason: &'static str) -> Result<T, Error> {
    Err(Error { offset, reason })
}

/// Decodes exactly one value filling all of `input`; trailing bytes are an error.
pub fn decode(input: &[u8]) -> Result<Value<'_>, Error> {
    let (value, used) = decode_prefix(input)?;
    if used != input.len() {
        return err(used, "trailing data after value");
    }
    Ok(value)
}

/// A dict being filled: its entries, the key waiting for its value, and (once keys arrive out
/// of order) the set of keys seen so far for the duplicate check.
struct DictFrame<'a> {
    entries: Vec<(&'a [u8], Value<'a>)>,
    key: Option<&'a [u8]>,
    seen: Option<HashSet<&'a [u8]>>,
}

impl<'a> DictFrame<'a> {
    /// Whether `key` was already used. Sorted keys (the common case) need no set.
    fn is_duplicate(&mut self, key: &'a [u8]) -> bool {
        if let Some(seen) = &mut self.seen {
            return !seen.insert(key);
        }
        match self.entries.last() {
            Some((last, _)) if key <= *last => {
                let mut seen: HashSet<&[u8]> = self.entries.iter().map(|(k, _)| *k).collect();
                let duplicate = !seen.insert(key);
                self.seen = Some(seen);
                duplicate
            }
            _ => false,
        }
    }
}

/// An open container on the decoder's explicit stack, with the offset of its `l` or `d`.
enum Frame<'a> {
    List(usize, Vec<Value<'a>>),
    Dict(usize, DictFrame<'a>),
}

/// Decodes one value at the start of `input`; returns it and the bytes it used.
///
/// Bytes after the value are left alone, so callers can find the raw span of a value or read
/// data that follows a dict (as in `ut_metadata` messages).
pub fn decode_prefix(input: &[u8]) -> Result<(Value<'_>, usize), Error> {
    let mut stack: Vec<Frame<'_>> = Vec::new();
    let mut pos = 0;
    loop {
        let mut start = pos;
        let Some(&byte) = input.get(pos) else {
            return err(pos, "unexpected end of input");
        };
        let value = match byte {
            b'i' => {
                let (n, next) = parse_int(input, pos)?;
                pos = next;
                Value::Int(n)
            }
            b'0'..=b'9' => {
                let (bytes, next) = parse_bytes(input, pos)?;
                pos = next;
                Value::Bytes(bytes)
            }
            b'l' | b'd' => {
                if stack.len() >= MAX_DEPTH {
                    return err(pos, "nesting too deep");
                }
                stack.push(if byte == b'l' {
                    Frame::List(pos, Vec::new())
                } else {
                    Frame::Dict(
                        pos,
                        DictFrame {
                            entries: Vec::new(),
                            key: None,
                            seen: None,
                        },
                    )
                });
                pos += 1;
                continue;
            }
            b'e' => {
                pos += 1;
                match stack.pop() {
                    None => return err(start, "end marker outside a list or dict"),
                    Some(Frame::List(open, items)) => {
                        start = open;
                        Value::List(items)
                    }
                    Some(Frame::Dict(open, dict)) => {
                        if dict.key.is_some() {
                            return err(start, "dict key has no value");
                        }
                        start = open;
                        Value::Dict(dict.entries)
                    }
                }
            }
            _ => return err(pos, "unknown type byte"),
        };
        match stack.last_mut() {
            None => return Ok((value, pos)),
            Some(Frame::List(_, items)) => items.push(value),
            Some(Frame::Dict(_, dict)) => match (dict.key.take(), value) {
                (Some(key), value) => dict.entries.push((key, value)),
                (None, Value::Bytes(key)) => {
                    if dict.is_duplicate(key) {
                        return err(start, "duplicate dict key");
                    }
                    dict.key = Some(key);
                }
                (None, _) => return err(start, "dict key is not a byte string"),
            },
        }
    }
}

/// What the errors of one kind of decimal number say.
struct Decimal {
    leading_zero: &'static str,
    overflow: &'static str,
    /// A byte after the digits that is not the number's end.
    stray: &'static str,
}

const INTEGER: Decimal = Decimal {
    leading_zero: "leading zero in integer",
    overflow: "integer overflows i64",
    stray: "non-digit in integer",
};

const STRING_LENGTH: Decimal = Decimal {
    leading_zero: "leading zero in string length",
    overflow: "string length too large",
    stray: "missing ':' after string length",
};

/// Reads the decimal digits at `start` up to the byte `end`, folding each digit's value into
/// a `T` with `step` (`None`: the number is too large); returns the number, how many digits it
/// has and the position after `end`. Reports, in this order, a leading zero, an overflow, and
/// a missing `end`.
fn parse_decimal<T: Default>(
    input: &[u8],
    start: usize,
    end: u8,
    errors: &Decimal,
    step: impl Fn(T, u8) -> Option<T>,
) -> Result<(T, usize, usize), Error> {
    let rest = input.get(start..).unwrap_or_default();
    let count = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    let digits = &rest[..count];
    if count > 1 && digits[0] == b'0' {
        return err(start, errors.leading_zero);
    }
    let Some(n) = digits
        .iter()
        .try_fold(T::default(), |n, &c| step(n, c - b'0'))
    else {
        return err(start, errors.overflow);
    };
    let i = start + count;
    match input.get(i) {
        None => err(i, "unexpected end of input"),
        Some(&c) if c == end => Ok((n, count, i + 1)),
        Some(_) => err(i, errors.stray),
    }
}

/// Parses `i<digits>e` at `pos`; returns the integer and the position after the `e`.
fn parse_int(input: &[u8], pos: usize) -> Result<(i64, usize), Error> {
    let negative = input.get(pos + 1) == Some(&b'-');
    let digits_start = pos + 1 + usize::from(negative);
    // Accumulate towards the sign so that i64::MIN parses.
    let (n, count, next) = parse_decimal(input, digits_start, b'e', &INTEGER, |n: i64, d| {
        let d = i64::from(d);
        let n = n.checked_mul(10)?;
        if negative {
            n.checked_sub(d)
        } else {
            n.checked_add(d)
        }
    })?;
    if count == 0 {
        return err(digits_start, "integer has no digits");
    }
    if negative && n == 0 {
        return err(pos + 1, "negative zero");
    }
    Ok((n, next))
}

/// Parses `<len>:<bytes>` at `pos`; returns the bytes and the position after them.
fn parse_bytes(input: &[u8], pos: usize) -> Result<(&[u8], usize), Error> {
    let (len, _, data_start) = parse_decimal(input, pos, b':', &STRING_LENGTH, |n: usize, d| {
        n.checked_mul(10)?.checked_add(usize::from(d))
    })?;
    if len > input.len() - data_start {
        return err(pos, "string length exceeds remaining input");
    }
    Ok((&input[data_start..data_start + len], data_start + len))
}

impl<'a> Value<'a> {
    /// The value stored under `key` if this is a dict holding it.
    pub fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        self.as_dict()?
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// The integer, if this is one.
    pub(crate) fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The byte string, if this is one.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The byte string as UTF-8, if this is a byte string holding valid UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        std::str::from_utf8(self.as_bytes()?).ok()
    }

    /// The items, if this is a list.
    pub(crate) fn as_list(&self) -> Option<&[Value<'a>]> {
        match self {
            Value::List(items) => Some(items),
            _ => None,
        }
    }

    /// The entries in input order, if this is a dict.
    pub(crate) fn as_dict(&self) -> Option<&[(&'a [u8], Value<'a>)]> {
        match self {
            Value::Dict(entries) => Some(entries),
            _ => None,
        }
    }

    /// Encodes the value, writing dict entries in their stored order.
    ///
    /// Canonical bencode (what BEP 3 asks for in messages we build) needs dict keys sorted as
    /// raw byte strings; callers building dicts must store them sorted. A value decoded from
    /// a file with unsorted keys re-encodes to the same bytes it came from.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Appends the encoding to `out`. Recursion depth equals nesting depth, which is at most
    /// [`MAX_DEPTH`] for decoded values.
    fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(n) => out.extend_from_slice(format!("i{n}e").as_bytes()),
            Value::Bytes(b) => encode_bytes(b, out),
            Value::List(items) => {
                out.push(b'l');
                for item in items {
                    item.encode_into(out);
                }
                out.push(b'e');
            }
            Value::Dict(entries) => {
                out.push(b'd');
                for (key, value) in entries {
                    encode_bytes(key, out);
                    value.encode_into(out);
                }
                out.push(b'e');
            }
        }
    }
}

fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(input: &[u8]) -> (usize, &'static str) {
        let e = decode(input).expect_err("input should be rejected");
        (e.offset, e.reason)
    }

    #[test]
    fn decodes_scalars() {
        assert_eq!(decode(b"i42e"), Ok(Value::Int(42)));
        assert_eq!(decode(b"i-7e"), Ok(Value::Int(-7)));
        assert_eq!(decode(b"i0e"), Ok(Value::Int(0)));
        assert_eq!(decode(b"i9223372036854775807e"), Ok(Value::Int(i64::MAX)));
        assert_eq!(decode(b"i-9223372036854775808e"), Ok(Value::Int(i64::MIN)));
        assert_eq!(decode(b"4:spam"), Ok(Value::Bytes(b"spam")));
        assert_eq!(decode(b"0:"), Ok(Value::Bytes(b"")));
    }

    #[test]
    fn decodes_nested_and_accessors() {
        let v = decode(b"d3:bar4:spam3:fooi42e4:listli1e1:xee").expect("valid");
        assert_eq!(v.get(b"bar").and_then(Value::as_str), Some("spam"));
        assert_eq!(v.get(b"foo").and_then(Value::as_int), Some(42));
        let list = v.get(b"list").and_then(Value::as_list).expect("list");
        assert_eq!(list, &[Value::Int(1), Value::Bytes(b"x")]);
        assert_eq!(v.get(b"missing"), None);
        assert_eq!(v.as_dict().map(<[_]>::len), Some(3));
        assert_eq!(Value::Int(1).get(b"x"), None);
        assert_eq!(Value::Bytes(b"\xff").as_str(), None);
        assert_eq!(Value::Int(1).as_bytes(), None);
    }

    #[test]
    fn malformed_input_is_rejected_at_its_offset_for_its_reason() {
        // (input, offset, reason)
        let cases: [(&[u8], usize, &str); 29] = [
            // Integers.
            (b"ie", 1, "integer has no digits"),
            (b"i-e", 2, "integer has no digits"),
            (b"i03e", 1, "leading zero in integer"),
            (b"i-03e", 2, "leading zero in integer"),
            (b"i-0e", 1, "negative zero"),
            (b"i1x2e", 2, "non-digit in integer"),
            (b"i+1e", 1, "non-digit in integer"),
            (b"i9223372036854775808e", 1, "integer overflows i64"),
            (b"i-9223372036854775809e", 2, "integer overflows i64"),
            (b"i12", 3, "unexpected end of input"),
            // Byte strings.
            (b"03:abc", 0, "leading zero in string length"),
            (b"99999999999999999999:", 0, "string length too large"),
            (b"5:abc", 0, "string length exceeds remaining input"),
            (
                b"l1000000000:abce",
                1,
                "string length exceeds remaining input",
            ),
            (b"3abc", 1, "missing ':' after string length"),
            (b"12", 2, "unexpected end of input"),
            // Lists, dicts and what surrounds a value.
            (b"", 0, "unexpected end of input"),
            (b"l", 1, "unexpected end of input"),
            (b"d3:foo", 6, "unexpected end of input"),
            (b"d3:fooe", 6, "dict key has no value"),
            (b"di1ei2ee", 1, "dict key is not a byte string"),
            (b"dli1eei2ee", 1, "dict key is not a byte string"),
            (b"d1:ai1e1:ai2ee", 7, "duplicate dict key"),
            (b"d1:bi1e1:ai2e1:bi3ee", 13, "duplicate dict key"),
            (b"x", 0, "unknown type byte"),
            (b"lxe", 1, "unknown type byte"),
            (b"e", 0, "end marker outside a list or dict"),
            (b"i1ei2e", 3, "trailing data after value"),
            (b"le ", 2, "trailing data after value"),
        ];
        for (input, offset, why) in cases {
            let shown = String::from_utf8_lossy(input);
            assert_eq!(reason(input), (offset, why), "{shown}");
        }
    }

    #[test]
    fn truncation_anywhere_is_an_error() {
        let full = b"d4:infod6:lengthi5e4:name1:ae4:listl0:i-3eee";
        assert!(decode(full).is_ok());
        for cut in 0..full.len() {
            let e = decode(&full[..cut]).expect_err("truncated input must fail");
            assert!(e.offset <= cut, "offset {} past cut {}", e.offset, cut);
        }
    }

    #[test]
    fn unsorted_keys_are_accepted_in_input_order() {
        let input = b"d1:bi1e1:ai2ee";
        let v = decode(input).expect("unsorted keys are accepted");
        let keys: Vec<&[u8]> = v.as_dict().expect("dict").iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, [b"b" as &[u8], b"a"]);
        assert_eq!(v.encode(), input);
    }

    #[test]
    fn depth_limit_without_stack_overflow() {
        let deep = vec![b'l'; 100_000];
        assert_eq!(reason(&deep), (MAX_DEPTH, "nesting too deep"));
        let mut ok = vec![b'l'; MAX_DEPTH];
        ok.extend(vec![b'e'; MAX_DEPTH]);
        assert!(decode(&ok).is_ok());
        let mut too_deep = b"d1:a".to_vec();
        too_deep.extend(vec![b'l'; MAX_DEPTH]);
        assert_eq!(reason(&too_deep), (4 + MAX_DEPTH - 1, "nesting too deep"));
    }

    #[test]
    fn prefix_reports_bytes_used() {
        let (v, used) = decode_prefix(b"d8:msg_typei1e5:piecei0eeRAWDATA").expect("valid");
        assert_eq!(used, 25);
        assert_eq!(v.get(b"msg_type").and_then(Value::as_int), Some(1));
        assert_eq!(decode_prefix(b"i5eXYZ"), Ok((Value::Int(5), 3)));
    }

    #[test]
    fn round_trips() {
        let inputs: [&[u8]; 6] = [
            b"i0e",
            b"i-42e",
            b"0:",
            b"le",
            b"de",
            b"d4:infod5:filesld6:lengthi0e4:pathl1:a1:beee4:name3:dire3:zzzli1eli2eeee",
        ];
        for input in inputs {
            assert_eq!(decode(input).expect("valid").encode(), input);
        }
        let built = Value::Dict(vec![
            (
                b"a",
                Value::List(vec![Value::Int(i64::MIN), Value::Bytes(b"\x00:")]),
            ),
            (b"b", Value::Dict(Vec::new())),
        ]);
        let bytes = built.encode();
        assert_eq!(bytes, b"d1:ali-9223372036854775808e2:\x00:e1:bdee");
        assert_eq!(decode(&bytes), Ok(built));
    }

    #[test]
    fn error_display_is_one_line_with_offset() {
        let e = decode(b"d1:ai01ee").expect_err("leading zero");
        assert_eq!(e.to_string(), "bencode: at byte 5: leading zero in integer");
    }
}
