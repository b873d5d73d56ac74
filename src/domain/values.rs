//! The value types of the domain: short inline codes (CPT/HCPCS code,
//! modifier, NPI, ICD-10-CM diagnosis), the patient reference, and the
//! closed sets of the event (event type, discipline, credential, plan).
//! Each parses or it does not exist. A leaf: it imports nothing from the
//! crate.

// `Short::as_str` skips a UTF-8 check its constructors make redundant.
#![allow(unsafe_code)]

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// A short ASCII string kept inline: no allocation, `Copy`. The value types
/// below (codes, modifiers, NPIs, diagnoses) are all a few characters long.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Short<const N: usize> {
    bytes: [u8; N],
    len: u8,
}

impl<const N: usize> Short<N> {
    /// `s` if it is at most `N` characters, each a digit, a capital letter
    /// or one of `extra`.
    fn new(s: &str, extra: &[u8]) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() > N
            || !b
                .iter()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase() || extra.contains(c))
        {
            return None;
        }
        let mut bytes = [0; N];
        bytes[..b.len()].copy_from_slice(b);
        Some(Short {
            bytes,
            len: b.len() as u8,
        })
    }

    const fn lit(s: &[u8; N]) -> Self {
        let mut i = 0;
        while i < N {
            assert!(s[i].is_ascii(), "a Short literal must be ASCII");
            i += 1;
        }
        Short {
            bytes: *s,
            len: N as u8,
        }
    }

    pub fn as_str(&self) -> &str {
        let bytes = &self.bytes[..usize::from(self.len)];
        debug_assert!(bytes.is_ascii());
        // SAFETY: the fields are private and both constructors, `new` and
        // `lit`, admit ASCII bytes only, so `bytes` is valid UTF-8. This is
        // on the hot path of every claim line; checking again costs more
        // than the rest of the accessor.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }
}

/// Serde, Display, Debug and comparison with `&str` for a [`Short`] newtype.
macro_rules! short_string_type {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.as_str(), f)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $name::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A national provider identifier whose check digit holds.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Npi(Short<10>);
short_string_type!(Npi);

impl Npi {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if s.len() != 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err("must be exactly 10 digits");
        }
        // Luhn over "80840" + the first nine digits; 80840 contributes 24.
        let digits = s.as_bytes();
        let mut sum = 24;
        for (i, d) in digits[..9].iter().rev().enumerate() {
            let d = u32::from(d - b'0');
            sum += if i % 2 == 0 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            };
        }
        let check = (10 - sum % 10) % 10;
        if check != u32::from(digits[9] - b'0') {
            return Err("check digit does not match (Luhn with prefix 80840)");
        }
        Short::new(s, b"")
            .map(Npi)
            .ok_or("must be exactly 10 digits")
    }
}

/// A 5-character CPT/HCPCS code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code(Short<5>);
short_string_type!(Code);

impl Code {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        match Short::new(s, b"") {
            Some(c) if s.len() == 5 => Ok(Code(c)),
            _ => Err("must be a 5-character CPT/HCPCS code (digits and capital letters)"),
        }
    }

    pub const fn lit(s: &[u8; 5]) -> Self {
        Code(Short::lit(s))
    }
}

/// A 2-character billing modifier.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Modifier(Short<2>);
short_string_type!(Modifier);

impl Modifier {
    pub const GP: Modifier = Modifier(Short::lit(b"GP"));
    pub const GO: Modifier = Modifier(Short::lit(b"GO"));
    pub const GN: Modifier = Modifier(Short::lit(b"GN"));
    pub const CQ: Modifier = Modifier(Short::lit(b"CQ"));
    pub const CO: Modifier = Modifier(Short::lit(b"CO"));
    /// Medicare: therapy past the year's threshold is medically necessary
    /// (SSA 1833(g)(7); Pub 100-02, ch. 15, sec. 220.3).
    pub const KX: Modifier = Modifier(Short::lit(b"KX"));

    pub fn parse(s: &str) -> Result<Self, &'static str> {
        match Short::new(s, b"") {
            Some(m) if s.len() == 2 => Ok(Modifier(m)),
            _ => Err("must be a 2-character modifier (digits and capital letters)"),
        }
    }

    /// 59 or one of its X{EPSU} subsets: "this service was distinct".
    pub fn is_distinct_service(&self) -> bool {
        matches!(self.as_str(), "59" | "XE" | "XS" | "XP" | "XU")
    }

    /// GA, GX, GY or GZ: who is liable (an ABN on file or not, a
    /// statutorily excluded service). Dropping one changes liability.
    pub fn is_liability(&self) -> bool {
        matches!(self.as_str(), "GA" | "GX" | "GY" | "GZ")
    }

    /// A modifier that changes payment or liability: the discipline's
    /// GP/GO/GN, CQ/CO, a distinct-service modifier, KX, or a liability
    /// modifier. When a line needs more than four, these are kept first.
    pub fn changes_payment(&self) -> bool {
        self.is_therapy()
            || self.is_assistant()
            || self.is_distinct_service()
            || *self == Modifier::KX
            || self.is_liability()
    }

    /// Keeps at most `max` of `mods`, those that change payment or
    /// liability first, each kept one in its place; returns the dropped
    /// ones (the last informational ones first, then the last others).
    pub fn keep_at_most(mods: &mut Vec<Modifier>, max: usize) -> Vec<Modifier> {
        let excess = mods.len().saturating_sub(max);
        let mut drop: Vec<usize> = (0..mods.len())
            .rev()
            .filter(|&i| !mods[i].changes_payment())
            .take(excess)
            .collect();
        let mut i = mods.len();
        while drop.len() < excess {
            i -= 1;
            if !drop.contains(&i) {
                drop.push(i);
            }
        }
        drop.sort_unstable();
        let dropped = drop.iter().map(|&i| mods[i]).collect();
        for &i in drop.iter().rev() {
            mods.remove(i);
        }
        dropped
    }

    /// GP, GO or GN: the plan of care's discipline.
    pub fn is_therapy(&self) -> bool {
        *self == Modifier::GP || *self == Modifier::GO || *self == Modifier::GN
    }

    /// CQ or CO: an assistant furnished part of the service.
    pub fn is_assistant(&self) -> bool {
        *self == Modifier::CQ || *self == Modifier::CO
    }
}

/// An ICD-10-CM code in its usual shape: letter, digit, letter or digit,
/// then up to four more characters after an optional dot.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Diagnosis(Short<8>);
short_string_type!(Diagnosis);

impl Diagnosis {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let b = s.as_bytes();
        let head_ok = b.len() >= 3
            && b[0].is_ascii_uppercase()
            && b[1].is_ascii_digit()
            && (b[2].is_ascii_digit() || b[2].is_ascii_uppercase());
        let rest = &b[3.min(b.len())..];
        let rest = rest.strip_prefix(b".").unwrap_or(rest);
        let rest_ok = rest.len() <= 4
            && rest
                .iter()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase());
        let dot_ok = !(b.len() == 4 && b[3] == b'.');
        match Short::new(s, b".") {
            Some(d) if head_ok && rest_ok && dot_ok => Ok(Diagnosis(d)),
            _ => Err("is not an ICD-10-CM code (e.g. S72.001D)"),
        }
    }
}

/// The patient reference. PHI: its `Debug` prints nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct PatientId(Arc<str>);

impl PatientId {
    pub fn new(id: &str) -> Self {
        PatientId(id.into())
    }

    pub fn shared(&self) -> Arc<str> {
        self.0.clone()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PatientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PatientId(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Finalized,
    Amended,
    Voided,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Finalized => "finalized",
            EventType::Amended => "amended",
            EventType::Voided => "voided",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Discipline {
    PT,
    OT,
    SLP,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Credential {
    Therapist,
    Assistant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Medicare,
    Medicaid,
    Commercial,
    Other,
}
