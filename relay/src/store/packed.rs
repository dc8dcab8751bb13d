//! The packing codec both back ends write raw samples in: one desktop's samples of one minute
//! as a few bytes each, and a batch of many desktops' samples (the crash journal) as one blob.
//! Written once here; SQLite keeps the bytes in BLOB columns, JetStream in message payloads.
//!
//! **A minute's samples** are a plain sequence of records, each relative to the minute that
//! holds them (which the container names: a row's `minute` column, a message's header):
//!
//! ```text
//! record = varint(offset_ms << 1 | has_memory)  offset_ms < 60,000, the ms into the minute
//!          f64 little endian                     the value
//!          [varint(memory_used)]                 bytes, when has_memory
//! ```
//!
//! There is no header and no count, so **the concatenation of two packings of the same minute is
//! the packing of both** (`data = data || excluded.data` in SQL, two messages read one after
//! the other): late samples merge into an already written minute by appending. About 16 bytes
//! a sample (3 + 8 + 5), against 56 for a row per sample. Records need not be in time order;
//! readers sort.
//!
//! **A batch** (one journal row or message) is `varint(minute / 60,000)` then, per desktop,
//! `varint(len) id  varint(len) samples`, the samples packed as above.
//!
//! Decoding never panics: truncated or corrupt input is a [`PackError`].

/// One minute, in milliseconds.
pub const MINUTE_MS: u64 = 60_000;
/// The longest a varint of a u64 may be.
const MAX_VARINT: usize = 10;

/// One raw sample as packed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Packed {
    /// Unix milliseconds.
    pub ts: u64,
    pub value: f64,
    /// Memory in use, bytes.
    pub memory_used: Option<u64>,
}

/// Why packed bytes could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackError {
    #[error("packed samples end in the middle of a record")]
    Truncated,
    #[error("packed samples hold a varint longer than 64 bits")]
    Overlong,
    #[error("a packed sample's offset {0} ms is not inside its minute")]
    Offset(u64),
    #[error("a packed batch's desktop id is not UTF-8")]
    Id,
}

/// The start of the minute `ts` falls in.
pub fn minute_of(ts: u64) -> u64 {
    ts / MINUTE_MS * MINUTE_MS
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint off the front of `input`.
fn get_varint(input: &mut &[u8]) -> Result<u64, PackError> {
    let mut v = 0u64;
    for i in 0..MAX_VARINT {
        let (&byte, rest) = input.split_first().ok_or(PackError::Truncated)?;
        *input = rest;
        let bits = u64::from(byte & 0x7f);
        if i == MAX_VARINT - 1 && byte > 1 {
            return Err(PackError::Overlong);
        }
        v |= bits << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(PackError::Overlong)
}

/// Takes `n` bytes off the front of `input`.
fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], PackError> {
    if input.len() < n {
        return Err(PackError::Truncated);
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

/// Appends `sample` to the packing of its minute (`out` holds that minute's samples only).
pub fn push(out: &mut Vec<u8>, sample: &Packed) {
    let offset = sample.ts % MINUTE_MS;
    put_varint(out, offset << 1 | u64::from(sample.memory_used.is_some()));
    out.extend_from_slice(&sample.value.to_le_bytes());
    if let Some(memory) = sample.memory_used {
        put_varint(out, memory);
    }
}

/// Reads every record of a packing of `minute`, handing each to `each`.
pub fn for_each(
    minute: u64,
    mut bytes: &[u8],
    mut each: impl FnMut(Packed),
) -> Result<(), PackError> {
    while !bytes.is_empty() {
        let tag = get_varint(&mut bytes)?;
        let offset = tag >> 1;
        if offset >= MINUTE_MS {
            return Err(PackError::Offset(offset));
        }
        let raw = take(&mut bytes, 8)?;
        let mut value = [0u8; 8];
        value.copy_from_slice(raw);
        let memory_used = if tag & 1 == 1 {
            Some(get_varint(&mut bytes)?)
        } else {
            None
        };
        each(Packed {
            ts: minute + offset,
            value: f64::from_le_bytes(value),
            memory_used,
        });
    }
    Ok(())
}

/// Every record of a packing of `minute`, in the order packed.
#[cfg(test)]
pub fn unpack(minute: u64, bytes: &[u8]) -> Result<Vec<Packed>, PackError> {
    let mut out = Vec::with_capacity(bytes.len() / 12);
    for_each(minute, bytes, |s| out.push(s))?;
    Ok(out)
}

/// A batch of `minute`: each desktop's id and its samples of that minute, packed.
pub fn pack_batch<'a>(
    minute: u64,
    entries: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, minute / MINUTE_MS);
    for (id, samples) in entries {
        put_varint(&mut out, id.len() as u64);
        out.extend_from_slice(id.as_bytes());
        put_varint(&mut out, samples.len() as u64);
        out.extend_from_slice(samples);
    }
    out
}

/// A batch's entries: each desktop's id and its packed samples.
pub type Entries = Vec<(String, Vec<u8>)>;

/// A batch's minute and entries; every entry's samples are checked to decode.
pub fn unpack_batch(mut bytes: &[u8]) -> Result<(u64, Entries), PackError> {
    let minute = get_varint(&mut bytes)?
        .checked_mul(MINUTE_MS)
        .ok_or(PackError::Overlong)?;
    let mut entries = Vec::new();
    while !bytes.is_empty() {
        let len = usize::try_from(get_varint(&mut bytes)?).map_err(|_| PackError::Truncated)?;
        let id = std::str::from_utf8(take(&mut bytes, len)?).map_err(|_| PackError::Id)?;
        let len = usize::try_from(get_varint(&mut bytes)?).map_err(|_| PackError::Truncated)?;
        let samples = take(&mut bytes, len)?;
        for_each(minute, samples, |_| {})?;
        entries.push((id.to_owned(), samples.to_vec()));
    }
    Ok((minute, entries))
}

/// Writes the header varints of a JetStream record (see `jetstream::wire`).
pub fn put_header(out: &mut Vec<u8>, fields: &[u64]) {
    for &f in fields {
        put_varint(out, f);
    }
}

/// Reads `N` header varints off the front of `input`.
pub fn get_header<const N: usize>(input: &mut &[u8]) -> Result<[u64; N], PackError> {
    let mut out = [0u64; N];
    for f in &mut out {
        *f = get_varint(input)?;
    }
    Ok(out)
}

/// Writes a length-prefixed string.
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Reads a length-prefixed string off the front of `input`.
pub fn get_str(input: &mut &[u8]) -> Result<String, PackError> {
    let len = usize::try_from(get_varint(input)?).map_err(|_| PackError::Truncated)?;
    let bytes = take(input, len)?;
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| PackError::Id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: u64 = 1_700_000_040_000; // a minute boundary

    fn samples() -> Vec<Packed> {
        vec![
            Packed {
                ts: M,
                value: 0.0,
                memory_used: None,
            },
            Packed {
                ts: M + 1234,
                value: 12.345_678_9,
                memory_used: Some(8_000_000_000),
            },
            Packed {
                ts: M + 59_999,
                value: 100.0,
                memory_used: Some(0),
            },
            Packed {
                ts: M + 30_000,
                value: -1.5,
                memory_used: Some(u64::MAX),
            },
        ]
    }

    #[test]
    fn a_minute_round_trips_and_two_packings_concatenate() {
        let mut bytes = Vec::new();
        for s in &samples() {
            push(&mut bytes, s);
        }
        assert_eq!(unpack(M, &bytes).unwrap(), samples());
        // 16-ish bytes a sample: 3 + 8 + a memory varint.
        assert!(bytes.len() < 4 * 22, "{} bytes", bytes.len());
        let mut more = Vec::new();
        push(
            &mut more,
            &Packed {
                ts: M + 5,
                value: 7.0,
                memory_used: None,
            },
        );
        let joined = [bytes.clone(), more].concat();
        let all = unpack(M, &joined).unwrap();
        assert_eq!(all.len(), 5);
        assert_eq!(all[4].ts, M + 5);
        assert!(unpack(M, &[]).unwrap().is_empty());
    }

    #[test]
    fn a_batch_round_trips() {
        let mut a = Vec::new();
        push(&mut a, &samples()[1]);
        let b = Vec::new();
        let batch = pack_batch(M, [("desk-a", a.as_slice()), ("é", b.as_slice())]);
        let (minute, entries) = unpack_batch(&batch).unwrap();
        assert_eq!(minute, M);
        assert_eq!(entries, vec![("desk-a".to_owned(), a), ("é".to_owned(), b)]);
    }

    #[test]
    fn truncated_or_corrupt_input_is_an_error_not_a_panic() {
        let mut bytes = Vec::new();
        for s in &samples() {
            push(&mut bytes, s);
        }
        for cut in 1..bytes.len() {
            // Cutting inside a record is an error; at a record's end it is a shorter packing.
            if let Ok(got) = unpack(M, &bytes[..cut]) {
                assert!(got.len() < samples().len());
            }
        }
        assert_eq!(
            unpack(M, &bytes[..bytes.len() - 1]),
            Err(PackError::Truncated)
        );
        assert_eq!(unpack(M, &[0xff; 11]), Err(PackError::Overlong));
        let mut far = Vec::new();
        put_varint(&mut far, 60_000 << 1);
        far.extend_from_slice(&[0; 8]);
        assert_eq!(unpack(M, &far), Err(PackError::Offset(60_000)));
        let batch = pack_batch(M, [("desk", bytes.as_slice())]);
        for cut in 0..batch.len() {
            // Only a cut right after the minute is a (empty) batch; any other is an error.
            if let Ok((_, entries)) = unpack_batch(&batch[..cut]) {
                assert!(entries.is_empty(), "cut at {cut}");
            }
        }
        let mut bad = batch.clone();
        bad[5] = 0xff; // the id's first byte (after 4 of minute, 1 of length): not UTF-8
        assert!(unpack_batch(&bad).is_err());
        // Arbitrary bytes never panic.
        let mut seed = 7u64;
        for _ in 0..2000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let noise: Vec<u8> = (0..(seed % 40) as usize)
                .map(|i| (seed >> (i % 8 * 8)) as u8 ^ i as u8)
                .collect();
            let _ = unpack(M, &noise);
            let _ = unpack_batch(&noise);
        }
    }
}
