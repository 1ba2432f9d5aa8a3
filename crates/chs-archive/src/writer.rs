//! The `data` appender: encoding happens on the building thread, the `write` system calls (the
//! kernel's page-cache copy) on a helper thread, so the two overlap. Memory stays bounded: at most
//! [`QUEUE`] buffers of [`BUFFER`] bytes are in flight.

use std::fs::File;
use std::io::{self, Write as _};
use std::sync::mpsc;
use std::thread;

/// Bytes collected before a buffer is handed to the writing thread.
const BUFFER: usize = 1 << 20;
/// Buffers queued for writing at most.
const QUEUE: usize = 8;
/// Bytes written between two background `fsync`s, so that the commit's `fsync` finds little
/// left to flush (the building thread does not wait for these).
const BACKGROUND_SYNC: usize = 8 << 20;

enum Command {
    Write(Vec<u8>),
    /// Write everything queued so far, `fsync`, and answer.
    Sync(mpsc::SyncSender<io::Result<()>>),
}

/// Appends to `data` through a writing thread; [`DataWriter::sync`] makes everything durable.
pub(crate) struct DataWriter {
    current: Vec<u8>,
    commands: Option<mpsc::SyncSender<Command>>,
    recycled: mpsc::Receiver<Vec<u8>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl std::fmt::Debug for DataWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataWriter").field("buffered", &self.current.len()).finish_non_exhaustive()
    }
}

impl DataWriter {
    /// Takes over `file`, already positioned where the appending starts.
    pub(crate) fn new(mut file: File) -> io::Result<Self> {
        let (commands, receiver) = mpsc::sync_channel::<Command>(QUEUE);
        let (recycle, recycled) = mpsc::sync_channel::<Vec<u8>>(QUEUE + 1);
        let thread = thread::Builder::new().name("chs-archive-data".into()).spawn(move || {
            // The first write error is kept and reported to every later sync.
            let mut failed: Option<io::Error> = None;
            let mut unsynced = 0usize;
            for command in receiver {
                match command {
                    Command::Write(mut buf) => {
                        if failed.is_none()
                            && let Err(err) = file.write_all(&buf)
                        {
                            failed = Some(err);
                        }
                        unsynced += buf.len();
                        if unsynced >= BACKGROUND_SYNC && failed.is_none() {
                            unsynced = 0;
                            if let Err(err) = file.sync_data() {
                                failed = Some(err);
                            }
                        }
                        buf.clear();
                        let _ = recycle.try_send(buf);
                    }
                    Command::Sync(reply) => {
                        let result = match &failed {
                            Some(err) => Err(io::Error::new(err.kind(), err.to_string())),
                            None => file.sync_data(),
                        };
                        unsynced = 0;
                        let _ = reply.send(result);
                    }
                }
            }
        })?;
        Ok(DataWriter { current: Vec::with_capacity(BUFFER), commands: Some(commands), recycled, thread: Some(thread) })
    }

    /// The buffer to encode into; call [`DataWriter::written`] afterwards.
    pub(crate) fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.current
    }

    /// Hands the buffer over once it is full.
    pub(crate) fn written(&mut self) -> io::Result<()> {
        if self.current.len() >= BUFFER {
            self.send_current()?;
        }
        Ok(())
    }

    /// Appends `bytes`.
    pub(crate) fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.current.extend_from_slice(bytes);
        self.written()
    }

    fn send_current(&mut self) -> io::Result<()> {
        let next = self.recycled.try_recv().unwrap_or_else(|_| Vec::with_capacity(BUFFER));
        let full = std::mem::replace(&mut self.current, next);
        self.send(Command::Write(full))
    }

    fn send(&self, command: Command) -> io::Result<()> {
        match &self.commands {
            Some(commands) => commands.send(command).map_err(|_| io::Error::other("data writer thread stopped")),
            None => Err(io::Error::other("data writer closed")),
        }
    }

    /// Writes everything appended so far and fsyncs `data`.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        if !self.current.is_empty() {
            self.send_current()?;
        }
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(Command::Sync(reply))?;
        answer.recv().map_err(|_| io::Error::other("data writer thread stopped"))?
    }
}

impl Drop for DataWriter {
    /// Writes what is buffered (not fsynced: the index does not account for it yet) and joins.
    fn drop(&mut self) {
        if !self.current.is_empty() {
            let _ = self.send_current();
        }
        self.commands = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
