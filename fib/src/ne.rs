//! Reading and writing native-endian integers in netlink buffers without indexing:
//! a short buffer gives `None` (or writes nothing) instead of a panic.

pub fn u8_at(b: &[u8], at: usize) -> Option<u8> {
    b.get(at).copied()
}

pub fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

pub fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

pub fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Copies `v` to `b[at..]` if it fits.
pub fn put(b: &mut [u8], at: usize, v: &[u8]) {
    if let Some(dst) = b.get_mut(at..at + v.len()) {
        dst.copy_from_slice(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_buffers_read_nothing_and_write_nothing() {
        let mut b = [1u8, 2, 3];
        assert_eq!(u8_at(&b, 2), Some(3));
        assert_eq!(u8_at(&b, 3), None);
        assert_eq!(u16_at(&b, 1), Some(u16::from_ne_bytes([2, 3])));
        assert_eq!(u16_at(&b, 2), None);
        assert_eq!(u32_at(&b, 0), None);
        assert_eq!(i32_at(&[0, 0, 0, 0], 0), Some(0));
        put(&mut b, 2, &[9, 9]);
        assert_eq!(b, [1, 2, 3]);
        put(&mut b, 1, &[9, 9]);
        assert_eq!(b, [1, 9, 9]);
    }
}
