//! Content ids: 32-byte sha256 digests, with typed wrappers so a slot id
//! cannot be passed where a state id is wanted.
//!
//! Ids display as their first 12 hex digits and debug-print in full. Users
//! name them by any unique prefix of at least 4 hex digits; a prefix turns
//! into a byte range so the store's primary-key index answers the lookup.

use std::fmt;

/// Number of hex digits shown for an id in tables.
pub const SHORT_HEX: usize = 12;
/// Shortest prefix accepted when naming an id.
pub const MIN_PREFIX: usize = 4;

/// A sha256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub fn of(parts: &[&[u8]]) -> Digest {
        use sha2::{Digest as _, Sha256};
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        Digest(hasher.finalize().into())
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Digest> {
        bytes.try_into().ok().map(Digest)
    }

    pub fn hex(&self) -> String {
        to_hex(&self.0)
    }

    pub fn short(&self) -> String {
        self.hex()[..SHORT_HEX].to_string()
    }

    pub fn parse_hex(text: &str) -> Option<Digest> {
        if text.len() != 64 {
            return None;
        }
        let bytes = from_hex(text)?;
        Digest::from_slice(&bytes)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.short())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

pub fn to_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Hex digits only (either case): no sign, no space, no `0x`.
fn from_hex(text: &str) -> Option<Vec<u8>> {
    hex::decode(text).ok()
}

/// An id prefix as the inclusive byte range of the ids it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixRange {
    pub low: [u8; 32],
    pub high: [u8; 32],
}

/// Parses a hex prefix (at least [`MIN_PREFIX`] digits, at most 64) into
/// the range of ids it covers; `None` when the text is not such a prefix.
pub fn prefix_range(text: &str) -> Option<PrefixRange> {
    if text.len() < MIN_PREFIX || text.len() > 64 {
        return None;
    }
    let mut low = [0u8; 32];
    let mut high = [0xffu8; 32];
    for (i, ch) in text.chars().enumerate() {
        let nibble = ch.to_digit(16)? as u8;
        let byte = i / 2;
        if i % 2 == 0 {
            low[byte] = nibble << 4;
            high[byte] = (nibble << 4) | 0x0f;
        } else {
            low[byte] |= nibble;
            high[byte] = (high[byte] & 0xf0) | nibble;
        }
    }
    Some(PrefixRange { low, high })
}

/// Declares a typed id over [`Digest`].
macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub Digest);

        impl $name {
            pub fn bytes(&self) -> &[u8; 32] {
                &self.0 .0
            }
            pub fn hex(&self) -> String {
                self.0.hex()
            }
            pub fn short(&self) -> String {
                self.0.short()
            }
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                Digest::from_slice(bytes).map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        /// Full 64-digit hex, as the JSON contract gives ids.
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.hex())
            }
        }
    };
}

typed_id!(
    /// One batch slot's state, all layers.
    SlotId
);
typed_id!(
    /// A state: an ordered list of slot ids plus the layout.
    StateId
);
typed_id!(
    /// A tensor object (prediction input or output), the sha256 of its bytes.
    ObjectId
);
typed_id!(
    /// A weights file, the sha256 of its bytes.
    WeightsId
);

#[cfg(test)]
mod tests {
    #[test]
    fn only_hex_digits_parse_as_an_id() {
        let id = "ab".repeat(32);
        assert!(super::Digest::parse_hex(&id).is_some());
        assert!(super::Digest::parse_hex(&id.to_uppercase()).is_some());
        // u8::from_str_radix takes "+a" as 10: an id must not.
        let signed = format!("+a{}", &id[2..]);
        assert!(super::Digest::parse_hex(&signed).is_none());
        assert!(super::Digest::parse_hex(&format!(" a{}", &id[2..])).is_none());
    }

    use super::*;

    #[test]
    fn hex_round_trips() {
        let d = Digest::of(&[b"abc"]);
        assert_eq!(
            d.hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Digest::parse_hex(&d.hex()), Some(d));
        assert_eq!(d.to_string(), "ba7816bf8f01");
    }

    #[test]
    fn prefix_range_covers_exactly_the_matching_ids() {
        let r = prefix_range("ba781").unwrap();
        assert_eq!(&r.low[..3], &[0xba, 0x78, 0x10]);
        assert_eq!(&r.high[..3], &[0xba, 0x78, 0x1f]);
        assert!(r.high[3..].iter().all(|b| *b == 0xff));
        let d = Digest::of(&[b"abc"]);
        assert!(r.low <= d.0 && d.0 <= r.high);
    }

    #[test]
    fn prefix_range_rejects_short_or_non_hex_text() {
        assert!(prefix_range("abc").is_none());
        assert!(prefix_range("case1").is_none());
        assert!(prefix_range(&"a".repeat(65)).is_none());
    }
}
