//! The layout of a state: the cell kind and each layer's width, written as
//! short text (`lstm:16`, `lstm:32,24`, `gru:20,8`) that is part of every id
//! recipe.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cell {
    Lstm,
    Gru,
}

impl Cell {
    /// Tensors each layer carries per slot: LSTM has `h` and `c`, GRU `h`.
    pub fn tensors(&self) -> &'static [&'static str] {
        match self {
            Cell::Lstm => &["h", "c"],
            Cell::Gru => &["h"],
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Cell::Lstm => "lstm",
            Cell::Gru => "gru",
        }
    }

    /// Gate blocks per layer: LSTM i, f, g, o; GRU r, z, n.
    pub fn gates(&self) -> usize {
        match self {
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub cell: Cell,
    pub units: Vec<usize>,
}

impl Layout {
    pub fn lstm(units: &[usize]) -> Layout {
        Layout {
            cell: Cell::Lstm,
            units: units.to_vec(),
        }
    }

    /// Number of float32 values in one slot: every layer's tensors.
    pub fn slot_len(&self) -> usize {
        self.units.iter().sum::<usize>() * self.cell.tensors().len()
    }

    /// Offset and length, within a slot, of `tensor` (index into
    /// [`Cell::tensors`]) of layer `layer`.
    pub fn span(&self, layer: usize, tensor: usize) -> (usize, usize) {
        let per_layer = self.cell.tensors().len();
        let before: usize = self.units[..layer].iter().sum::<usize>() * per_layer;
        let units = self.units[layer];
        (before + tensor * units, units)
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let units: Vec<String> = self.units.iter().map(|u| u.to_string()).collect();
        write!(f, "{}:{}", self.cell.name(), units.join(","))
    }
}

impl FromStr for Layout {
    type Err = String;

    fn from_str(text: &str) -> Result<Layout, String> {
        let bad = || {
            format!("bad layout '{text}': expected text like 'lstm:16', 'lstm:32,24' or 'gru:20,8'")
        };
        let (cell, units) = text.split_once(':').ok_or_else(bad)?;
        let cell = match cell {
            "lstm" => Cell::Lstm,
            "gru" => Cell::Gru,
            _ => return Err(bad()),
        };
        let units: Vec<usize> = units
            .split(',')
            .map(|u| u.parse::<usize>().ok().filter(|n| *n > 0))
            .collect::<Option<_>>()
            .ok_or_else(bad)?;
        Ok(Layout { cell, units })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_text_round_trips() {
        let l: Layout = "lstm:32,24".parse().unwrap();
        assert_eq!(l.units, vec![32, 24]);
        assert_eq!(l.to_string(), "lstm:32,24");
        assert_eq!(l.slot_len(), 112);
        assert_eq!(l.span(1, 1), (88, 24));
        let g: Layout = "gru:20,8".parse().unwrap();
        assert_eq!(
            (g.cell, g.slot_len(), g.span(1, 0)),
            (Cell::Gru, 28, (20, 8))
        );
        assert!("rnn:3".parse::<Layout>().is_err());
        assert!("lstm:0".parse::<Layout>().is_err());
    }
}
