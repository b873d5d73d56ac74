//! Byte-level helpers shared by the decoder, the encoder and the store: a
//! scanner for the bytes JSON must escape, and integers in decimal. A leaf:
//! it imports nothing from the crate.

/// The position of the first `"`, `\` or control character.
#[inline(always)]
pub fn first_special(bytes: &[u8]) -> Option<usize> {
    scan::<false>(bytes)
}

/// The same, or the first byte that is not ASCII, whichever comes first.
#[inline(always)]
pub fn first_special_or_non_ascii(bytes: &[u8]) -> Option<usize> {
    scan::<true>(bytes)
}

/// Eight bytes at a time, with the has-less-than and has-zero-byte tricks
/// of "Bit Twiddling Hacks". Their borrows can mark bytes above a match,
/// never below it, so the lowest marked byte is exact.
#[inline(always)]
fn scan<const NON_ASCII: bool>(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        let mut marks = control
            | has_zero(x ^ (ONES * u64::from(b'"')))
            | has_zero(x ^ (ONES * u64::from(b'\\')));
        if NON_ASCII {
            marks |= x & HIGH;
        }
        if marks != 0 {
            return Some(offset + marks.trailing_zeros() as usize / 8);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b < 0x20 || b == b'"' || b == b'\\' || (NON_ASCII && b >= 0x80))
        .map(|i| offset + i)
}

/// `n` in decimal, without the formatting machinery.
pub fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&buf[i..]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_byte_that_needs_an_escape_at_every_position() {
        let special = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
        for len in 0..20 {
            for pos in 0..len {
                for b in 0u8..=255 {
                    // Another byte (special or not) further on must not matter.
                    for later in [b'a', b'"', 0x00, 0xff] {
                        let mut v = vec![b'a'; len];
                        v[pos] = b;
                        if pos + 1 < len {
                            v[len - 1] = later;
                        }
                        let expected = v.iter().position(|&c| special(c));
                        assert_eq!(first_special(&v), expected, "{v:?}");

                        let or_high = v.iter().position(|&c| special(c) || c >= 0x80);
                        assert_eq!(first_special_or_non_ascii(&v), or_high, "{v:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn writes_decimals() {
        for n in [0, 7, 10, 99, 100, 12345, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(decimal(n, &mut [0; 20]), n.to_string());
        }
    }
}
