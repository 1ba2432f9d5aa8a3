//! Helpers for the `chs archive …` commands: argument parsing and serialisable output rows.
//!
//! The commands map onto the library as follows (see each item):
//! `build` → [`chs_archive::Builder`] with [`chs_archive::BuildOptions`] and a progress callback;
//! `inspect` → [`chs_archive::Reader::rows`]; `verify` → [`chs_archive::Reader::verify`];
//! `extract` → [`chs_archive::Reader::extract`] and [`write_message_row`] for `--ndjson`.

use chs_proto::protobuf::WakuMessage;
#[cfg(test)]
use serde::Serialize;

use chs_archive::Topic;

/// A command-line value that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ArgError {
    /// Not a 4-byte topic.
    #[error("invalid topic {0:?}: expected 8 hex digits (optionally 0x-prefixed) or a /waku/1/0x…/rfc26 content topic")]
    Topic(String),
    /// Not a duration.
    #[error(
        "invalid duration {0:?}: expected a number of seconds or a number followed by s, m, h, d or w (at least 1 s)"
    )]
    Duration(String),
    /// Not a number of seconds.
    #[error("invalid time {0:?}: expected Unix seconds")]
    Time(String),
    /// A number too large for Unix seconds (milliseconds or nanoseconds given for seconds).
    #[error(transparent)]
    NotSeconds(#[from] chs_archive::PlanError),
}

/// Parses a Unix time in seconds (`--from`, `--to`); a number past the year 9999 is refused with
/// the unit it looks like (milliseconds, microseconds, nanoseconds), instead of planning billions
/// of windows.
///
/// # Errors
/// [`ArgError::Time`], [`ArgError::NotSeconds`].
pub(crate) fn parse_unix_secs(text: &str) -> Result<u64, ArgError> {
    let value: u64 = text.trim().parse().map_err(|_| ArgError::Time(text.to_owned()))?;
    Ok(chs_archive::check_secs("time", value)?)
}

/// Parses a topic: `0xa4abdf64`, `a4abdf64`, or a status-go content topic `/waku/1/0xa4abdf64/rfc26`.
///
/// # Errors
/// [`ArgError::Topic`].
pub(crate) fn parse_topic(text: &str) -> Result<Topic, ArgError> {
    let trimmed = text.trim();
    let hex_part = if let Some(rest) = trimmed.strip_prefix("/waku/1/") {
        rest.strip_suffix("/rfc26").unwrap_or(rest)
    } else {
        trimmed
    };
    let hex_part = hex_part.strip_prefix("0x").or_else(|| hex_part.strip_prefix("0X")).unwrap_or(hex_part);
    let mut topic = [0u8; 4];
    match hex::decode_to_slice(hex_part, &mut topic) {
        Ok(()) => Ok(topic),
        Err(_) => Err(ArgError::Topic(text.to_owned())),
    }
}

/// Parses a duration in seconds: `604800`, `7d`, `1w`, `12h`, `30m`, `45s`. Zero is refused
/// (spec §15 item 26).
///
/// # Errors
/// [`ArgError::Duration`].
pub(crate) fn parse_duration(text: &str) -> Result<u64, ArgError> {
    let err = || ArgError::Duration(text.to_owned());
    let trimmed = text.trim();
    let (number, unit) = match trimmed.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((pos, _)) => trimmed.split_at(pos),
        None => (trimmed, "s"),
    };
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(err()),
    };
    let value: u64 = number.parse().map_err(|_| err())?;
    value.checked_mul(factor).filter(|secs| *secs > 0).ok_or_else(err)
}

/// One archived message as a JSON line (`chs archive extract --ndjson`); bytes are `0x` + hex.
/// The definition of the format: [`write_message_row`] writes exactly what `serde_json` writes
/// for it (the unit test compares them).
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct MessageRow {
    /// Timestamp (seconds).
    pub(crate) timestamp: u64,
    /// 4-byte topic.
    pub(crate) topic: String,
    /// Message hash.
    pub(crate) hash: String,
    /// Signer public key.
    pub(crate) sig: String,
    /// Decrypted payload.
    pub(crate) payload: String,
    /// Waku padding.
    pub(crate) padding: String,
    /// Third-party id (Discord imports).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) third_party_id: String,
}

#[cfg(test)]
impl From<&WakuMessage> for MessageRow {
    fn from(m: &WakuMessage) -> Self {
        let hex0x = |bytes: &[u8]| format!("0x{}", hex::encode(bytes));
        MessageRow {
            timestamp: m.timestamp,
            topic: hex0x(&m.topic),
            hash: hex0x(&m.hash),
            sig: hex0x(&m.sig),
            payload: hex0x(&m.payload),
            padding: hex0x(&m.padding),
            third_party_id: m.third_party_id.clone(),
        }
    }
}

/// Appends `m` as one `--ndjson` line (with its `\n`): the bytes `serde_json` writes for its
/// `MessageRow`, without the intermediate strings (hex straight into `out`).
pub(crate) fn write_message_row(out: &mut Vec<u8>, m: &WakuMessage) {
    fn hex_field(out: &mut Vec<u8>, name: &str, bytes: &[u8]) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        out.extend_from_slice(b",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":\"0x");
        let start = out.len();
        out.resize(start + 2 * bytes.len(), 0);
        for (pair, b) in out[start..].chunks_exact_mut(2).zip(bytes) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 0x0f)];
        }
        out.push(b'"');
    }
    out.extend_from_slice(b"{\"timestamp\":");
    out.extend_from_slice(m.timestamp.to_string().as_bytes());
    hex_field(out, "topic", &m.topic);
    hex_field(out, "hash", &m.hash);
    hex_field(out, "sig", &m.sig);
    hex_field(out, "payload", &m.payload);
    hex_field(out, "padding", &m.padding);
    if !m.third_party_id.is_empty() {
        out.extend_from_slice(b",\"third_party_id\":");
        // A string always serialises.
        let _ = serde_json::to_writer(&mut *out, &m.third_party_id);
    }
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_row_line_is_what_serde_writes() {
        let mut m = WakuMessage {
            sig: vec![4, 0xab, 0x00],
            timestamp: 1_729_728_000,
            topic: vec![0x19, 0x80, 0xb7, 0xcb],
            payload: (0u8..=255).collect(),
            padding: Vec::new(),
            hash: vec![0xff; 32],
            third_party_id: String::new(),
        };
        for third_party_id in ["", "discord:42", "quote \" and \\ and \u{1} and é"] {
            m.third_party_id = third_party_id.to_owned();
            let mut line = Vec::new();
            write_message_row(&mut line, &m);
            let expected = format!("{}\n", serde_json::to_string(&MessageRow::from(&m)).unwrap());
            assert_eq!(String::from_utf8(line).unwrap(), expected);
        }
    }

    #[test]
    fn cli_parsing() {
        assert_eq!(parse_topic("0xa4abdf64"), Ok([0xa4, 0xab, 0xdf, 0x64]));
        assert_eq!(parse_topic("A4ABDF64"), Ok([0xa4, 0xab, 0xdf, 0x64]));
        assert_eq!(parse_topic("/waku/1/0xa4abdf64/rfc26"), Ok([0xa4, 0xab, 0xdf, 0x64]));
        assert!(matches!(parse_topic("0xa4abdf"), Err(ArgError::Topic(_))));
        assert!(matches!(parse_topic("zz"), Err(ArgError::Topic(_))));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        assert_eq!(parse_duration("1w"), Ok(604_800));
        assert_eq!(parse_duration("604800"), Ok(604_800));
        assert_eq!(parse_duration("90m"), Ok(5400));
        for bad in ["0", "0d", "7x", "", "d", "99999999999999999999w"] {
            assert!(matches!(parse_duration(bad), Err(ArgError::Duration(_))), "{bad}");
        }
    }

    #[test]
    fn message_rows_are_hex_json_lines() {
        let m = WakuMessage {
            timestamp: 7,
            topic: vec![0xa4, 0xab, 0xdf, 0x64],
            hash: vec![1],
            sig: vec![1],
            payload: vec![1],
            padding: vec![1],
            ..WakuMessage::default()
        };
        let line = serde_json::to_string(&MessageRow::from(&m)).expect("json");
        assert_eq!(
            line,
            r#"{"timestamp":7,"topic":"0xa4abdf64","hash":"0x01","sig":"0x01","payload":"0x01","padding":"0x01"}"#
        );
    }
}
