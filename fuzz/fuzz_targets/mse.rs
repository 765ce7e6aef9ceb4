//! The MSE responder (peer::mse::accept_with, with a fixed key) reading an initiator's bytes.
//! The first input byte picks the policy (bits 1-2) and the mode (bit 0):
//! - even: the rest is the raw stream (public key, PadA, HASH('req1', S), …);
//! - odd: a genuine initiator prefix for the fixed keys (public key, HASH('req1', S),
//!   HASH('req2') xor HASH('req3')) comes first, and the rest is the plaintext of the
//!   encrypted part (VC, crypto_provide, len(PadC), PadC, len(IA), IA), so that the fuzzer
//!   reaches the checks behind the key exchange.
#![no_main]

use std::io::{self, Cursor};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use strand::peer::mse::{self, Encryption, Method, Secrets};

mod common;

#[global_allocator]
static ALLOC: common::Tracking = common::Tracking;

const HASHES: [[u8; 20]; 2] = [[0x55; 20], [0x66; 20]];
/// Longest encrypted part the odd mode encrypts (the rest of a longer input is cut).
const KEYSTREAM: usize = 70_000;

fn initiator() -> Secrets {
    Secrets::fixed(std::array::from_fn(|i| 0x01 + i as u8), 0, 0)
}

/// Made once: its public key costs a modular exponentiation, and every input needs it.
fn responder() -> &'static Secrets {
    static RESPONDER: OnceLock<Secrets> = OnceLock::new();
    RESPONDER.get_or_init(|| Secrets::fixed(std::array::from_fn(|i| 0xa1 + i as u8), 0, 0))
}

/// The initiator's prefix and, after it, the keystream that encrypts what follows (zeros
/// encrypted are the keystream), computed once.
fn genuine() -> &'static (Vec<u8>, Vec<u8>) {
    static GENUINE: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    GENUINE.get_or_init(|| {
        let mut all = mse::initiator_bytes(&initiator(), responder(), &HASHES[0], &[0; KEYSTREAM])
            .expect("the fixed keys are valid");
        let keystream = all.split_off(all.len() - KEYSTREAM);
        (all, keystream)
    })
}

fuzz_target!(|data: &[u8]| {
    let (prefix, keystream) = genuine();
    common::bounded(data.len(), || {
        let Some((&mode, rest)) = data.split_first() else {
            return;
        };
        let policy =
            [Encryption::Prefer, Encryption::Require, Encryption::Off][usize::from(mode >> 1) % 3];
        let stream: Vec<u8> = if mode & 1 == 0 {
            rest.to_vec()
        } else {
            let rest = &rest[..rest.len().min(KEYSTREAM)];
            let mut s = prefix.clone();
            s.extend(rest.iter().zip(keystream).map(|(b, k)| b ^ k));
            s
        };
        let mut input = Cursor::new(&stream[..]);
        if let Ok(est) = mse::accept_with(
            responder(),
            &[],
            &mut input,
            &mut io::sink(),
            &HASHES,
            policy,
        ) {
            assert!(HASHES.contains(&est.info_hash));
            match policy {
                Encryption::Require => assert_eq!(est.method, Method::Rc4),
                Encryption::Off => assert_eq!(est.method, Method::Plaintext),
                Encryption::Prefer => {}
            }
            assert_eq!(est.read.is_rc4(), est.method == Method::Rc4);
            // The payload came out of the stream, which was not read past the handshake.
            let used = input.position() as usize;
            assert!(est.initial_payload.len() <= used && used <= stream.len());
        }
    });
});
