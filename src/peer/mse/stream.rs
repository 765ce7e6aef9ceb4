//! `Read` and `Write` adapters that put a connection's cipher halves around its socket halves.
//!
//! The reading thread wraps its (deadline-enforcing) reader in a [`DecryptingReader`], the
//! sending thread wraps its socket in an [`EncryptingWriter`]; each owns its cipher. With
//! plaintext chosen they pass bytes through untouched.

use std::io::{self, Read, Write};

use super::crypto::{ReadCipher, WriteCipher};

/// Bytes encrypted per write to the inner writer: bounds the scratch buffer.
const WRITE_CHUNK: usize = 32 * 1024;

/// Decrypts what `inner` delivers. Bytes the handshake already decrypted (the initial
/// payload an initiator carried in its handshake) come out first.
pub struct DecryptingReader<R> {
    inner: R,
    cipher: ReadCipher,
    /// Already-decrypted bytes not yet handed out, and how many of them were.
    pending: Vec<u8>,
    taken: usize,
}

impl<R: Read> DecryptingReader<R> {
    /// Reads from `inner` through `cipher`, handing out `already_decrypted` first.
    pub fn new(inner: R, cipher: ReadCipher, already_decrypted: Vec<u8>) -> DecryptingReader<R> {
        DecryptingReader {
            inner,
            cipher,
            pending: already_decrypted,
            taken: 0,
        }
    }

    /// The wrapped reader (to restart a deadline, say). Reading from it directly would skip
    /// the cipher and lose the stream.
    pub(crate) fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Whether the peer's stream is RC4-encrypted.
    pub fn is_rc4(&self) -> bool {
        self.cipher.is_rc4()
    }
}

impl<R: Read> Read for DecryptingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.taken < self.pending.len() {
            let n = (self.pending.len() - self.taken).min(buf.len());
            buf[..n].copy_from_slice(&self.pending[self.taken..self.taken + n]);
            self.taken += n;
            if self.taken == self.pending.len() {
                self.pending = Vec::new();
                self.taken = 0;
            }
            return Ok(n);
        }
        let n = self.inner.read(buf)?;
        self.cipher.decrypt(&mut buf[..n]);
        Ok(n)
    }
}

/// Encrypts what is written before passing it to `inner`.
///
/// RC4 has advanced past every byte handed to `write`, so those bytes must all reach the
/// peer: each `write` writes its whole input to `inner` or fails, and after a failure the
/// writer refuses further writes (the stream is out of step; drop the connection).
pub struct EncryptingWriter<W> {
    inner: W,
    cipher: WriteCipher,
    scratch: Vec<u8>,
    broken: bool,
}

impl<W: Write> EncryptingWriter<W> {
    /// Writes to `inner` through `cipher`.
    pub fn new(inner: W, cipher: WriteCipher) -> EncryptingWriter<W> {
        EncryptingWriter {
            inner,
            cipher,
            scratch: Vec::new(),
            broken: false,
        }
    }

    /// The wrapped writer. Writing to it directly would skip the cipher.
    pub(crate) fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Whether our stream is RC4-encrypted.
    pub fn is_rc4(&self) -> bool {
        self.cipher.is_rc4()
    }

    /// Encrypts `buf` in place and writes all of it: for a caller that owns its buffer and
    /// builds it anew after each write (the sending thread), so no scratch copy is kept.
    /// Fails, and refuses later writes, as [`Write::write`] does.
    pub(crate) fn send(&mut self, buf: &mut [u8]) -> io::Result<()> {
        if self.broken {
            return Err(broken());
        }
        self.cipher.encrypt(buf);
        let written = self.inner.write_all(buf);
        self.broken = written.is_err();
        written
    }
}

fn broken() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "encrypted stream lost a write earlier",
    )
}

impl<W: Write> Write for EncryptingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.broken {
            return Err(broken());
        }
        if !self.cipher.is_rc4() {
            return self.inner.write(buf);
        }
        let chunk = &buf[..buf.len().min(WRITE_CHUNK)];
        self.scratch.clear();
        self.scratch.extend_from_slice(chunk);
        self.cipher.encrypt(&mut self.scratch);
        if let Err(e) = self.inner.write_all(&self.scratch) {
            self.broken = true;
            return Err(e);
        }
        Ok(chunk.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A connection's cipher halves once its handshakes are done: plaintext halves pass bytes
/// through. The reading thread takes `read` (and `pending`, bytes the peer sent inside its
/// MSE handshake after its BitTorrent handshake, already decrypted), the sending thread
/// `write`.
#[derive(Debug)]
pub struct Ciphers {
    /// Decrypts the peer's stream.
    pub read: ReadCipher,
    /// Encrypts ours.
    pub write: WriteCipher,
    /// Already-decrypted bytes to read before the rest of the stream.
    pub pending: Vec<u8>,
    /// How the handshakes were carried (what it tells of the peer's encryption).
    pub link: Link,
}

/// How a connection's BitTorrent handshakes were carried, which is what it tells the address
/// book of the peer's encryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// In plaintext, with no MSE exchange tried on this connection.
    Plaintext,
    /// Inside an MSE exchange (whichever method it selected): the peer speaks MSE.
    Mse,
    /// In plaintext on a second connection, after our MSE exchange on the first failed: the
    /// peer speaks plaintext only.
    PlaintextFallback,
}

impl Ciphers {
    /// No encryption either way, and no MSE exchange.
    pub(crate) fn plaintext() -> Ciphers {
        Ciphers {
            read: ReadCipher(None),
            write: WriteCipher(None),
            pending: Vec::new(),
            link: Link::Plaintext,
        }
    }

    /// Whether the stream is RC4-encrypted.
    pub fn is_rc4(&self) -> bool {
        self.read.is_rc4()
    }
}
