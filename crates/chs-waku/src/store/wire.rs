//! Store v3 framing: one unsigned-varint length-prefixed protobuf each way (go-waku `pbio`
//! delimited streams, nim-libp2p `writeLp`/`readLp`), with a size limit on what we read.

use std::io;

use futures::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// Reading one frame failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    /// The stream failed or ended early.
    #[error("stream: {0}")]
    Io(#[from] io::Error),
    /// The length prefix is not a varint of at most 10 bytes.
    #[error("bad length prefix")]
    BadPrefix,
    /// The frame announces more bytes than we accept.
    #[error("frame of {size} bytes exceeds {max}")]
    TooLarge {
        /// Announced size.
        size: u64,
        /// Our limit.
        max: usize,
    },
}

/// Reads one length-prefixed frame of at most `max` bytes.
pub(crate) async fn read_frame<T: AsyncRead + Unpin>(io: &mut T, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut size: u64 = 0;
    for index in 0..10u32 {
        let mut byte = [0u8; 1];
        io.read_exact(&mut byte).await?;
        size |= u64::from(byte[0] & 0x7f) << (7 * index);
        if byte[0] & 0x80 == 0 {
            let len = usize::try_from(size).ok().filter(|len| *len <= max).ok_or(FrameError::TooLarge { size, max })?;
            // Grow with what arrives rather than trust the announced size with an allocation.
            let mut bytes = Vec::with_capacity(len.min(64 * 1024));
            (&mut *io).take(size).read_to_end(&mut bytes).await?;
            if bytes.len() != len {
                return Err(FrameError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
            return Ok(bytes);
        }
    }
    Err(FrameError::BadPrefix)
}

/// Writes `bytes` as one length-prefixed frame and flushes.
pub(crate) async fn write_frame<T: AsyncWrite + Unpin>(io: &mut T, bytes: &[u8]) -> io::Result<()> {
    let mut frame = Vec::with_capacity(bytes.len() + 10);
    crate::metadata::encode_varint(bytes.len(), &mut frame);
    frame.extend_from_slice(bytes);
    io.write_all(&frame).await?;
    io.flush().await
}
