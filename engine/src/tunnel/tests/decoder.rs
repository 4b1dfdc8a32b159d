//! The incremental base64 decoder: quanta split across reads, whitespace,
//! padding mid-stream, and errors; property tests against the `base64`
//! crate's one-shot decoding of the same text.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use proptest::prelude::*;

use crate::tunnel::{Base64Decoder, Base64Error};

/// One-shot reference: canonical padding, trailing bits tolerated (as
/// most encoders' last characters are not checked by servers either).
const REFERENCE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(true),
);

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes `input` pushed in pieces ending at `cuts`.
fn decode_split(input: &[u8], cuts: &[usize]) -> Result<Vec<u8>, Base64Error> {
    let mut d = Base64Decoder::new();
    let mut out = Vec::new();
    let mut at = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        let cut = cut.clamp(at, input.len());
        d.push(&input[at..cut], &mut out)?;
        at = cut;
    }
    assert_eq!(d.pending(), 0, "no quantum left open");
    Ok(out)
}

#[test]
fn whole_and_byte_at_a_time() {
    let text = b64(b"DESCRIBE rtsp://h/a.mp4 RTSP/1.0\r\nCSeq: 2\r\n\r\n");
    let mut d = Base64Decoder::new();
    let mut out = Vec::new();
    let mut appended = 0;
    for b in text.as_bytes() {
        appended += d.push(std::slice::from_ref(b), &mut out).expect("valid");
    }
    assert_eq!(out, b"DESCRIBE rtsp://h/a.mp4 RTSP/1.0\r\nCSeq: 2\r\n\r\n");
    assert_eq!(appended, out.len(), "push returns what it appended");
}

#[test]
fn quantum_split_reports_pending() {
    let mut d = Base64Decoder::new();
    let mut out = Vec::new();
    assert_eq!(d.push(b"QUJ", &mut out), Ok(0));
    assert_eq!(d.pending(), 3);
    assert_eq!(
        d.push(b"\r\n", &mut out),
        Ok(0),
        "whitespace inside a quantum"
    );
    assert_eq!(d.pending(), 3);
    assert_eq!(d.push(b"DRA", &mut out), Ok(3));
    assert_eq!(out, b"ABC");
    assert_eq!(d.pending(), 2, "'RA' waits for two more characters");
    assert_eq!(d.push(b"==", &mut out), Ok(1));
    assert_eq!(out, b"ABCD");
    assert_eq!(d.pending(), 0);
}

#[test]
fn padding_mid_stream_and_whitespace() {
    // Three messages encoded separately, as GStreamer and live555 do, with
    // CRLF, spaces and tabs between and inside quanta.
    let text = format!("{}\r\n{} \t{}", b64(b"A"), b64(b"BC"), b64(b"DEFG"));
    let spaced: String = text
        .chars()
        .flat_map(|c| [c, if c == '=' { '\n' } else { ' ' }])
        .collect();
    for input in [text.as_str(), spaced.as_str()] {
        for cut in 0..=input.len() {
            assert_eq!(
                decode_split(input.as_bytes(), &[cut]).as_deref(),
                Ok(&b"ABCDEFG"[..]),
                "{input:?} split at {cut}"
            );
        }
    }
}

#[test]
fn invalid_bytes_and_padding() {
    let cases: &[(&[u8], Base64Error)] = &[
        (
            b"QUJD-UJD",
            Base64Error::InvalidByte {
                offset: 4,
                byte: b'-',
            },
        ),
        (
            b"QUJDQ\0JD",
            Base64Error::InvalidByte { offset: 5, byte: 0 },
        ),
        (b"Q===", Base64Error::InvalidPadding { offset: 1 }),
        (b"QQ=A", Base64Error::InvalidPadding { offset: 2 }),
        (b"====", Base64Error::InvalidPadding { offset: 0 }),
    ];
    for (input, expected) in cases {
        let mut d = Base64Decoder::new();
        let mut out = Vec::new();
        assert_eq!(d.push(input, &mut out), Err(*expected), "{input:?}");
        assert_eq!(
            d.push(b"QUJD", &mut out),
            Err(Base64Error::Failed),
            "a failed decoder stays failed"
        );
    }
    // A bad byte after good quanta: the good ones are kept, nothing after.
    let mut d = Base64Decoder::new();
    let mut out = Vec::new();
    assert!(d.push(b"QUJD QUJD Q*JD", &mut out).is_err());
    assert_eq!(out, b"ABCABC");
    // Offsets count whitespace and earlier pushes.
    let mut d = Base64Decoder::new();
    let mut out = Vec::new();
    assert_eq!(d.push(b"QUJD\r\n", &mut out), Ok(3));
    assert_eq!(
        d.push(b"QU!D", &mut out),
        Err(Base64Error::InvalidByte {
            offset: 8,
            byte: b'!'
        })
    );
}

/// Base64 text of `messages`, each encoded on its own (padding at each
/// end), with `spaces[i]` whitespace characters inserted after character
/// `i` (cycled).
fn encode_messages(messages: &[Vec<u8>], spaces: &[u8]) -> Vec<u8> {
    let text: String = messages.iter().map(|m| b64(m)).collect();
    let mut out = Vec::new();
    for (i, c) in text.bytes().enumerate() {
        out.push(c);
        let n = spaces.get(i % spaces.len().max(1)).copied().unwrap_or(0);
        for k in 0..n % 3 {
            out.push([b'\r', b'\n', b' ', b'\t'][usize::from(k + n) % 4]);
        }
    }
    out
}

proptest! {
    #[test]
    fn any_split_of_any_encoding_decodes_the_messages(
        messages in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..6),
        spaces in prop::collection::vec(any::<u8>(), 0..8),
        mut cuts in prop::collection::vec(0usize..400, 0..12),
    ) {
        let input = encode_messages(&messages, &spaces);
        cuts.sort_unstable();
        let got = decode_split(&input, &cuts).expect("valid base64");
        prop_assert_eq!(got, messages.concat());
    }

    /// On arbitrary bytes the decoder agrees with one-shot decoding
    /// (whitespace removed, cut at padded quanta), however the input is
    /// split: same output on success, an error on failure, never a panic.
    #[test]
    fn arbitrary_input_is_split_invariant(
        input in prop::collection::vec(
            prop::sample::select(b"QUJDRA=\r\n -*".to_vec()), 0..64),
        mut cuts in prop::collection::vec(0usize..64, 0..8),
    ) {
        cuts.sort_unstable();
        let mut whole = Base64Decoder::new();
        let mut whole_out = Vec::new();
        let whole_result = whole.push(&input, &mut whole_out);
        let mut split = Base64Decoder::new();
        let mut split_out = Vec::new();
        let mut split_result = Ok(0);
        let mut at = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            let cut = cut.clamp(at, input.len());
            split_result = split.push(&input[at..cut], &mut split_out);
            at = cut;
            if split_result.is_err() {
                break;
            }
        }
        prop_assert_eq!(whole_result.is_ok(), split_result.is_ok());
        if whole_result.is_ok() {
            prop_assert_eq!(&whole_out, &split_out);
            prop_assert_eq!(whole.pending(), split.pending());
            // The reference: strip whitespace, cut after every padded
            // quantum, decode each piece.
            let sig: Vec<u8> = input.iter().copied()
                .filter(|b| !b" \r\n\t".contains(b)).collect();
            let complete = sig.len() - whole.pending();
            let mut reference = Vec::new();
            let mut rest = &sig[..complete];
            while !rest.is_empty() {
                let end = rest.chunks(4).position(|q| q.contains(&b'='))
                    .map_or(rest.len(), |q| (q + 1) * 4);
                let piece = &rest[..end];
                reference.extend(
                    REFERENCE
                        .decode(piece)
                        .expect("the decoder accepted it"),
                );
                rest = &rest[end..];
            }
            prop_assert_eq!(whole_out, reference);
        }
    }
}
