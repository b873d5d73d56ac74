//! Medicare payment localities and their geographic practice cost indices
//! (GPCIs). CMS publishes each year's GPCIs by locality (PFS Addendum E,
//! `GPCI2025.csv`: MAC, state, locality number, name, PW, PE and MP GPCI).
//! A line whose locality is known (the event's
//! `provider.medicare_locality`, else the billing NPI's locality from the
//! service's settings), in a year whose GPCIs are loaded, is priced as
//! (work RVU x PW GPCI + PE RVU x PE GPCI + MP RVU x MP GPCI) x CF
//! (42 CFR 414.22; the formula as CMS prints it in the PFS relative value
//! file's record layout); otherwise at the national amount (every GPCI 1).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::values::Npi;

/// A Medicare payment locality: the MAC's 5-digit contractor number and
/// the 2-digit locality number within it, written `01112-54`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Locality {
    mac: [u8; 5],
    number: [u8; 2],
}

impl Locality {
    /// `01112-54`.
    pub fn parse(s: &str) -> Result<Locality, &'static str> {
        const WANT: &str = "must be a MAC number and a locality number, like 01112-54";
        let (mac, number) = s.split_once('-').ok_or(WANT)?;
        Locality::from_parts(mac, number).ok_or(WANT)
    }

    /// The MAC and locality cells of CMS's GPCI file (`01112`, `54`; a
    /// locality number written `0` is `00`).
    pub fn from_parts(mac: &str, number: &str) -> Option<Locality> {
        let (mac, number) = (mac.trim(), number.trim());
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if mac.len() != 5 || !digits(mac) || number.len() > 2 || !digits(number) {
            return None;
        }
        let mut n = [b'0'; 2];
        n[2 - number.len()..].copy_from_slice(number.as_bytes());
        Some(Locality {
            mac: mac.as_bytes().try_into().ok()?,
            number: n,
        })
    }
}

impl fmt::Display for Locality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = |b: &[u8]| b.iter().map(|&c| c as char).collect::<String>();
        write!(f, "{}-{}", text(&self.mac), text(&self.number))
    }
}

impl TryFrom<String> for Locality {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Locality::parse(&s)
    }
}

impl From<Locality> for String {
    fn from(l: Locality) -> String {
        l.to_string()
    }
}

/// One locality's GPCIs for a year (a row of CMS's GPCI file).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Gpci {
    pub locality: Locality,
    /// Physician work (with the 1.0 floor where the file applies it).
    pub work: f64,
    pub pe: f64,
    pub mp: f64,
}

/// A year's GPCIs, by locality; `label` is the year (`2025`).
#[derive(Debug, Clone, PartialEq)]
pub struct GpciYear {
    pub label: String,
    pub year: i32,
    rows: BTreeMap<Locality, Gpci>,
}

impl GpciYear {
    pub fn new(label: String, year: i32, rows: &[Gpci]) -> GpciYear {
        GpciYear {
            label,
            year,
            rows: rows.iter().map(|g| (g.locality, *g)).collect(),
        }
    }

    pub fn get(&self, locality: Locality) -> Option<&Gpci> {
        self.rows.get(&locality)
    }
}

/// The service's setting: each billing NPI's Medicare locality.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderLocalities(HashMap<Npi, Locality>);

impl ProviderLocalities {
    /// `1234567893=01112-54,1245319599=05302-00`; blank is none. The
    /// error names the entry's position, not its NPI.
    pub fn parse(s: &str) -> Result<ProviderLocalities, String> {
        let mut map = HashMap::new();
        for (i, entry) in s.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                continue;
            }
            let n = i + 1;
            let (npi, locality) = entry
                .split_once('=')
                .ok_or_else(|| format!("entry {n}: expected NPI=MAC-LOCALITY"))?;
            let npi = Npi::parse(npi.trim()).map_err(|e| format!("entry {n}: the NPI {e}"))?;
            let locality = Locality::parse(locality.trim())
                .map_err(|e| format!("entry {n}: the locality {e}"))?;
            if map.insert(npi, locality).is_some() {
                return Err(format!("entry {n}: an NPI given twice"));
            }
        }
        Ok(ProviderLocalities(map))
    }

    pub fn get(&self, npi: &Npi) -> Option<Locality> {
        self.0.get(npi).copied()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localities_parse_as_cms_writes_them() {
        let l = Locality::parse("01112-54").unwrap();
        assert_eq!(l.to_string(), "01112-54");
        assert_eq!(
            Locality::from_parts("10112", "0"),
            Some(Locality::parse("10112-00").unwrap())
        );
        for bad in [
            "0111254",
            "1112-54",
            "01112-543",
            "01112-",
            "0111a-54",
            "01112-5x",
            "",
        ] {
            assert!(Locality::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_setting_maps_npis_and_names_a_bad_entry_by_position() {
        let m = ProviderLocalities::parse(" 1234567893=01112-54, ,1245319599=05302-00").unwrap();
        assert_eq!(
            m.get(&Npi::parse("1234567893").unwrap()),
            Some(Locality::parse("01112-54").unwrap())
        );
        assert!(ProviderLocalities::parse("").unwrap().is_empty());
        let e = ProviderLocalities::parse("1234567893=01112-54,1234567890=01112-54").unwrap_err();
        assert_eq!(
            e,
            "entry 2: the NPI check digit does not match (Luhn with prefix 80840)"
        );
        assert!(!e.contains("1234567890"));
        let e = ProviderLocalities::parse("1234567893=01112-54,1234567893=01112-55").unwrap_err();
        assert_eq!(e, "entry 2: an NPI given twice");
        assert!(ProviderLocalities::parse("1234567893:01112-54").is_err());
    }
}
