//! A small PEM reader and writer.
//!
//! Reading is as lenient as Go's `encoding/pem`, which wrote most cosign keys: any line
//! width, LF or CRLF (sigstore-rs writes CRLF), text before the block. Blocks labelled
//! `EC PARAMETERS` (what `openssl ecparam -genkey` prints before the key) are skipped.
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use zeroize::Zeroizing;

/// The PEM line width every common tool writes.
const LINE_WIDTH: usize = 64;
const SKIPPED_LABEL: &str = "EC PARAMETERS";

/// One decoded PEM block. The bytes may be a private key, so they are wiped on drop.
pub(super) struct Block {
    pub(super) label: String,
    pub(super) der: Zeroizing<Vec<u8>>,
}

/// Why text is not a usable PEM block.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    #[error("no PEM block found")]
    NoBlock,
    #[error("PEM block `{label}` has no END line")]
    Unterminated { label: String },
    #[error("PEM block `{label}` has headers (legacy OpenSSL encryption is not supported)")]
    Headers { label: String },
    #[error("PEM block `{label}` is not valid base64")]
    Base64 {
        label: String,
        #[source]
        source: base64::DecodeError,
    },
}

/// Decodes the first block of `text` that is not `EC PARAMETERS`.
pub(super) fn first_block(text: &str) -> Result<Block, PemError> {
    let mut lines = text.lines().map(str::trim);
    loop {
        let label = lines
            .by_ref()
            .find_map(|line| line.strip_prefix("-----BEGIN ")?.strip_suffix("-----"))
            .ok_or(PemError::NoBlock)?
            .to_owned();
        let end = format!("-----END {label}-----");
        // The base64 text of a private key is as secret as the key.
        let mut body = Zeroizing::new(String::new());
        let mut terminated = false;
        for line in lines.by_ref() {
            if line == end {
                terminated = true;
                break;
            }
            if line.contains(':') {
                return Err(PemError::Headers { label });
            }
            body.push_str(line);
        }
        if !terminated {
            return Err(PemError::Unterminated { label });
        }
        if label == SKIPPED_LABEL {
            continue;
        }
        return match STANDARD.decode(body.as_bytes()) {
            Ok(der) => Ok(Block {
                label,
                der: Zeroizing::new(der),
            }),
            Err(source) => Err(PemError::Base64 { label, source }),
        };
    }
}

/// Encodes `der` as a PEM block with 64-character lines and LF line endings.
pub(super) fn encode(label: &str, der: &[u8]) -> String {
    let base64 = Zeroizing::new(STANDARD.encode(der));
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in base64.as_bytes().chunks(LINE_WIDTH) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_64_character_lines() {
        let der: Vec<u8> = (0..=200).collect();
        let pem = encode("TEST", &der);
        assert!(pem.lines().all(|line| line.len() <= LINE_WIDTH));
        assert_eq!(pem.lines().nth(1).map(str::len), Some(LINE_WIDTH));
        let block = first_block(&pem).unwrap();
        assert_eq!(block.label, "TEST");
        assert_eq!(*block.der, der);
    }

    #[test]
    fn reads_crlf_other_widths_and_leading_text() {
        let pem =
            "explanatory text\r\n-----BEGIN TEST-----\r\nAAEC\r\nAwQ=\r\n-----END TEST-----\r\n";
        let block = first_block(pem).unwrap();
        assert_eq!(*block.der, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn skips_ec_parameters() {
        let pem = "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n\
                   -----BEGIN TEST-----\nAAEC\n-----END TEST-----\n";
        let block = first_block(pem).unwrap();
        assert_eq!(block.label, "TEST");
        assert_eq!(*block.der, [0, 1, 2]);
    }

    #[test]
    fn refuses_broken_blocks() {
        assert!(matches!(first_block("no pem here"), Err(PemError::NoBlock)));
        assert!(matches!(
            first_block("-----BEGIN TEST-----\nAAEC\n"),
            Err(PemError::Unterminated { .. })
        ));
        assert!(matches!(
            first_block("-----BEGIN TEST-----\nAAEC\n-----END OTHER-----\n"),
            Err(PemError::Unterminated { .. })
        ));
        assert!(matches!(
            first_block(
                "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nAAEC\n-----END EC PRIVATE KEY-----\n"
            ),
            Err(PemError::Headers { .. })
        ));
        assert!(matches!(
            first_block("-----BEGIN TEST-----\nA*EC\n-----END TEST-----\n"),
            Err(PemError::Base64 { .. })
        ));
    }
}
