//! Just enough of Python's pickle to read what `torch.save` writes for a
//! `state_dict` (dicts, tuples, lists, numbers, strings, and tensors
//! rebuilt from storages), as data. Nothing in the file is ever called: a
//! `GLOBAL` is kept as a name, and a call of anything but the few
//! constructors a state_dict uses becomes an opaque value. Written here,
//! not borrowed from candle, because candle's reader indexes tuples from
//! the file without checking their length (a malformed file panics) and
//! re-reads the file by path for every tensor.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use anyhow::{bail, Result};

/// A storage a tensor reads: the member `data/<key>` of the archive.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageRef {
    /// `FloatStorage`, `DoubleStorage`, `HalfStorage`, ...
    pub class: String,
    pub key: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    pub storage: StorageRef,
    pub offset: usize,
    pub size: Vec<usize>,
    pub stride: Vec<usize>,
}

pub type Shared<T> = Rc<RefCell<T>>;

#[derive(Debug, Clone)]
pub enum Value {
    None,
    /// A boolean, float or byte string: kept only as "something".
    Scalar,
    Int(i64),
    Str(String),
    Tuple(Rc<Vec<Value>>),
    List(Shared<Vec<Value>>),
    Dict(Shared<Vec<(Value, Value)>>),
    Global(Rc<(String, String)>),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
    /// A call of something else, kept as the callable's name, never made.
    Opaque(Rc<(String, String)>),
    Mark,
}

impl Value {
    fn int(&self) -> Option<i64> {
        match self {
            Value::Int(v) => Some(*v),
            _ => None,
        }
    }
    fn usize(&self) -> Option<usize> {
        self.int().and_then(|v| usize::try_from(v).ok())
    }
    fn ints(&self) -> Option<Vec<usize>> {
        match self {
            Value::Tuple(items) => items.iter().map(Value::usize).collect(),
            _ => None,
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            bail!("its pickle ends in the middle of a value; the file is truncated or damaged");
        };
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn le(&mut self, n: usize) -> Result<u64> {
        let mut v = 0u64;
        for (i, b) in self.take(n)?.iter().enumerate() {
            v |= (*b as u64) << (8 * i);
        }
        Ok(v)
    }
    /// LONG1: a little-endian two's complement integer of n bytes; wider
    /// than i64 is kept as 0 (no state_dict needs such a number).
    fn long1(&mut self) -> Result<i64> {
        let n = self.u8()? as usize;
        let digits = self.take(n)?;
        if n > 8 {
            return Ok(0);
        }
        let mut v: i64 = 0;
        for (i, b) in digits.iter().enumerate() {
            v |= (*b as i64) << (8 * i);
        }
        if n > 0 && n < 8 && digits[n - 1] & 0x80 != 0 {
            v -= 1i64 << (8 * n);
        }
        Ok(v)
    }

    fn line(&mut self) -> Result<String> {
        let rest = &self.bytes[self.at..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            bail!("its pickle ends in the middle of a name; the file is truncated or damaged");
        };
        self.at += end + 1;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    }
    fn text(&mut self, n: usize) -> Result<String> {
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
}

fn storage_from(pid: &Value) -> Option<StorageRef> {
    let Value::Tuple(items) = pid else {
        return None;
    };
    match items.as_slice() {
        [Value::Str(kind), Value::Global(class), Value::Str(key), ..] if kind == "storage" => {
            Some(StorageRef {
                class: class.1.clone(),
                key: key.clone(),
            })
        }
        _ => None,
    }
}

fn tensor_from(args: &Value) -> Option<TensorRef> {
    let Value::Tuple(items) = args else {
        return None;
    };
    match items.as_slice() {
        [Value::Storage(storage), offset, size, stride, ..] => Some(TensorRef {
            storage: (**storage).clone(),
            offset: offset.usize()?,
            size: size.ints()?,
            stride: stride.ints()?,
        }),
        _ => None,
    }
}

/// What `REDUCE` makes of `callable(*args)`, without calling anything.
fn reduce(callable: &Value, args: &Value) -> Result<Value> {
    let Value::Global(name) = callable else {
        return Ok(Value::Opaque(Rc::new(("?".into(), "?".into()))));
    };
    let (module, class) = (name.0.as_str(), name.1.as_str());
    Ok(match (module, class) {
        ("collections", "OrderedDict") | ("builtins", "dict") => {
            Value::Dict(Rc::new(RefCell::new(Vec::new())))
        }
        ("torch._utils", "_rebuild_tensor_v2") | ("torch._utils", "_rebuild_tensor") => {
            match tensor_from(args) {
                Some(t) => Value::Tensor(Rc::new(t)),
                None => bail!("its pickle rebuilds a tensor from arguments statectl cannot read; save the state_dict again with torch.save"),
            }
        }
        ("torch._utils", "_rebuild_parameter") | ("torch._utils", "_rebuild_parameter_with_state") => {
            match args {
                Value::Tuple(items) if matches!(items.first(), Some(Value::Tensor(_))) => items[0].clone(),
                _ => Value::Opaque(name.clone()),
            }
        }
        _ => Value::Opaque(name.clone()),
    })
}

struct Machine {
    stack: Vec<Value>,
    memo: HashMap<u64, Value>,
}

impl Machine {
    fn pop(&mut self) -> Result<Value> {
        self.stack.pop().ok_or_else(|| {
            anyhow::anyhow!("its pickle takes a value from an empty stack; the file is damaged")
        })
    }
    fn top(&mut self) -> Result<&mut Value> {
        self.stack.last_mut().ok_or_else(|| {
            anyhow::anyhow!("its pickle works on an empty stack; the file is damaged")
        })
    }
    /// The values above the topmost mark, which is removed.
    fn since_mark(&mut self) -> Result<Vec<Value>> {
        let Some(mark) = self.stack.iter().rposition(|v| matches!(v, Value::Mark)) else {
            bail!("its pickle closes a group it never opened; the file is damaged");
        };
        let items = self.stack.split_off(mark + 1);
        self.stack.pop();
        Ok(items)
    }
    fn tuple(&mut self, n: usize) -> Result<()> {
        if self.stack.len() < n {
            bail!("its pickle makes a tuple from too few values; the file is damaged");
        }
        let items = self.stack.split_off(self.stack.len() - n);
        self.stack.push(Value::Tuple(Rc::new(items)));
        Ok(())
    }
    fn set_items(&mut self, items: Vec<Value>) -> Result<()> {
        if !items.len().is_multiple_of(2) {
            bail!("its pickle sets a dict item without a value; the file is damaged");
        }
        match self.top()? {
            Value::Dict(dict) => {
                let mut dict = dict.borrow_mut();
                let mut items = items.into_iter();
                while let (Some(k), Some(v)) = (items.next(), items.next()) {
                    dict.push((k, v));
                }
            }
            Value::Opaque(_) => {}
            _ => {
                bail!("its pickle sets items on something that is not a dict; the file is damaged")
            }
        }
        Ok(())
    }
    fn append(&mut self, items: Vec<Value>) -> Result<()> {
        match self.top()? {
            Value::List(list) => list.borrow_mut().extend(items),
            Value::Opaque(_) => {}
            _ => bail!("its pickle appends to something that is not a list; the file is damaged"),
        }
        Ok(())
    }
    fn memoize(&mut self, key: u64) -> Result<()> {
        let top = self.top()?.clone();
        self.memo.insert(key, top);
        Ok(())
    }
    fn recall(&mut self, key: u64) -> Result<()> {
        match self.memo.get(&key) {
            Some(v) => {
                let v = v.clone();
                self.stack.push(v);
                Ok(())
            }
            None => bail!("its pickle refers to a value it never stored; the file is damaged"),
        }
    }
}

/// Opcodes that push a name, text, number or remembered value; false
/// when `op` is not one of them.
fn push_value(op: u8, r: &mut Reader, m: &mut Machine) -> Result<bool> {
    match op {
        0x80 => {
            r.u8()?;
        }
        0x95 => {
            r.take(8)?;
        }
        b'c' => {
            let module = r.line()?;
            let name = r.line()?;
            m.stack.push(Value::Global(Rc::new((module, name))));
        }
        0x93 => {
            let name = m.pop()?;
            let module = m.pop()?;
            match (module, name) {
                (Value::Str(module), Value::Str(name)) => {
                    m.stack.push(Value::Global(Rc::new((module, name))))
                }
                _ => bail!(
                    "its pickle names a global by something other than text; the file is damaged"
                ),
            }
        }
        b'X' => {
            let n = r.le(4)? as usize;
            let s = r.text(n)?;
            m.stack.push(Value::Str(s));
        }
        0x8c => {
            let n = r.u8()? as usize;
            let s = r.text(n)?;
            m.stack.push(Value::Str(s));
        }
        0x8d => {
            let n = usize::try_from(r.le(8)?).unwrap_or(usize::MAX);
            let s = r.text(n)?;
            m.stack.push(Value::Str(s));
        }
        b'C' => {
            let n = r.u8()? as usize;
            r.take(n)?;
            m.stack.push(Value::Scalar);
        }
        b'B' => {
            let n = r.le(4)? as usize;
            r.take(n)?;
            m.stack.push(Value::Scalar);
        }
        b'q' => {
            let key = r.u8()? as u64;
            m.memoize(key)?;
        }
        b'r' => {
            let key = r.le(4)?;
            m.memoize(key)?;
        }
        0x94 => {
            let key = m.memo.len() as u64;
            m.memoize(key)?;
        }
        b'h' => {
            let key = r.u8()? as u64;
            m.recall(key)?;
        }
        b'j' => {
            let key = r.le(4)?;
            m.recall(key)?;
        }
        b'K' => {
            let v = r.u8()? as i64;
            m.stack.push(Value::Int(v));
        }
        b'M' => {
            let v = r.le(2)? as i64;
            m.stack.push(Value::Int(v));
        }
        b'J' => {
            let v = r.le(4)? as u32 as i32 as i64;
            m.stack.push(Value::Int(v));
        }
        0x8a => {
            let v = r.long1()?;
            m.stack.push(Value::Int(v));
        }
        b'G' => {
            r.take(8)?;
            m.stack.push(Value::Scalar);
        }
        b'N' => m.stack.push(Value::None),
        0x88 | 0x89 => m.stack.push(Value::Scalar),
        _ => return Ok(false),
    }
    Ok(true)
}

/// Opcodes that build containers and calls; false when `op` is not one.
fn build_value(op: u8, m: &mut Machine) -> Result<bool> {
    match op {
        b'}' => m.stack.push(Value::Dict(Rc::new(RefCell::new(Vec::new())))),
        b']' => m.stack.push(Value::List(Rc::new(RefCell::new(Vec::new())))),
        b')' => m.stack.push(Value::Tuple(Rc::new(Vec::new()))),
        b'(' => m.stack.push(Value::Mark),
        b't' => {
            let items = m.since_mark()?;
            m.stack.push(Value::Tuple(Rc::new(items)));
        }
        0x85 => m.tuple(1)?,
        0x86 => m.tuple(2)?,
        0x87 => m.tuple(3)?,
        b'Q' => {
            let pid = m.pop()?;
            match storage_from(&pid) {
                    Some(storage) => m.stack.push(Value::Storage(Rc::new(storage))),
                    None => bail!("its pickle refers to an outside object that is not a tensor storage; statectl reads state_dicts saved by torch.save"),
                }
        }
        b'R' => {
            let args = m.pop()?;
            let callable = m.pop()?;
            let value = reduce(&callable, &args)?;
            m.stack.push(value);
        }
        0x81 => {
            let _args = m.pop()?;
            let class = m.pop()?;
            let name = match class {
                Value::Global(name) => name,
                _ => Rc::new(("?".into(), "?".into())),
            };
            m.stack.push(Value::Opaque(name));
        }
        b'b' => {
            // BUILD sets an object's state (a state_dict's `_metadata`):
            // nothing statectl needs.
            m.pop()?;
        }
        b's' => {
            let v = m.pop()?;
            let k = m.pop()?;
            m.set_items(vec![k, v])?;
        }
        b'u' => {
            let items = m.since_mark()?;
            m.set_items(items)?;
        }
        b'a' => {
            let v = m.pop()?;
            m.append(vec![v])?;
        }
        b'e' => {
            let items = m.since_mark()?;
            m.append(items)?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Reads a pickle into the value it describes.
pub fn load(bytes: &[u8]) -> Result<Value> {
    let mut r = Reader { bytes, at: 0 };
    let mut m = Machine {
        stack: Vec::new(),
        memo: HashMap::new(),
    };
    loop {
        let op = r.u8()?;
        if op == b'.' {
            return m.pop();
        }
        if !push_value(op, &mut r, &mut m)? && !build_value(op, &mut m)? {
            bail!(
                "its pickle uses opcode 0x{op:02x}, which a state_dict saved by torch.save does not; statectl reads state_dicts only (never runs code from the file)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_to_os_system_is_data_not_a_call() {
        let evil = b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00trueq\x00\x85q\x01Rq\x02.";
        match load(evil).unwrap() {
            Value::Opaque(name) => assert_eq!(*name, ("os".to_string(), "system".to_string())),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn damaged_pickles_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"\x80",
            b"R",
            b"t",
            b"h\x05",
            b"X\xff\xff\xff\xff",
            b"u",
            b"s.",
        ] {
            assert!(load(bad).is_err(), "{bad:?}");
        }
    }
}
