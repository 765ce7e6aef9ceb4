//! RC4, the stream cipher MSE encrypts with: the key schedule (KSA) builds a permutation of
//! the 256 byte values from the key, and each step of the generator (PRGA) swaps two entries
//! of it and yields one keystream byte, which is xored over one byte of data.
//!
//! Pure computation. Each connection's reading thread and sending thread own one [`Rc4`]
//! each (inside [`super::ReadCipher`] and [`super::WriteCipher`]); a state is the permutation
//! and the two indices, and nothing is shared.
//!
//! The permutation is kept as `u32`s although every entry fits a byte: whole-word loads and
//! stores made the generator about 1.3× faster than a `[u8; 256]` where we measured it (x86-64,
//! 493 against 382 MB/s). Every index is a `u8` widened to `usize`, so the compiler proves it
//! below 256 and the loop has no bounds checks.

/// One RC4 keystream: the permutation `s` and the generator's indices `i` and `j`.
pub(crate) struct Rc4 {
    s: [u32; 256],
    i: u8,
    j: u8,
}

impl Rc4 {
    /// The keystream for `key` (1 to 256 bytes), at its first byte.
    ///
    /// # Panics
    /// If `key` is empty (MSE keys are always 20-byte hashes).
    pub(crate) fn new(key: &[u8]) -> Rc4 {
        assert!(!key.is_empty(), "an RC4 key has at least one byte");
        let mut s: [u32; 256] = std::array::from_fn(|n| n as u32);
        let mut j = 0u8;
        for n in 0..256 {
            j = j.wrapping_add(s[n] as u8).wrapping_add(key[n % key.len()]);
            s.swap(n, usize::from(j));
        }
        Rc4 { s, i: 0, j: 0 }
    }

    /// Xors the next `buf.len()` keystream bytes over `buf`, in place: encrypts plaintext or
    /// decrypts ciphertext (the same operation).
    pub(crate) fn apply(&mut self, buf: &mut [u8]) {
        let s = &mut self.s;
        let (mut i, mut j) = (self.i, self.j);
        for byte in buf {
            i = i.wrapping_add(1);
            let si = s[usize::from(i)];
            j = j.wrapping_add(si as u8);
            let sj = s[usize::from(j)];
            s[usize::from(i)] = sj;
            s[usize::from(j)] = si;
            *byte ^= s[usize::from((si + sj) as u8)] as u8;
        }
        self.i = i;
        self.j = j;
    }
}

#[cfg(test)]
mod tests {
    use super::Rc4;
    use crate::rng::Rng;
    use ::rc4::consts::U20;
    use ::rc4::{KeyInit, StreamCipher};

    /// The first 4112 keystream bytes of `key`.
    fn keystream(key: &[u8]) -> Vec<u8> {
        let mut ks = vec![0u8; 4096 + 16];
        Rc4::new(key).apply(&mut ks);
        ks
    }

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|n| u8::from_str_radix(&s[n..n + 2], 16).unwrap())
            .collect()
    }

    /// Checks `key`'s keystream against RFC 6229's table: 16 bytes at each of its 18
    /// offsets, given as one hex string in the RFC's order.
    fn check_rfc6229(key: &[u8], table: &str) {
        const OFFSETS: [usize; 18] = [
            0, 16, 240, 256, 496, 512, 752, 768, 1008, 1024, 1520, 1536, 2032, 2048, 3056, 3072,
            4080, 4096,
        ];
        let expected = unhex(table);
        assert_eq!(expected.len(), 16 * OFFSETS.len());
        let ks = keystream(key);
        for (n, &offset) in OFFSETS.iter().enumerate() {
            assert_eq!(
                ks[offset..offset + 16],
                expected[16 * n..16 * n + 16],
                "key of {} bits, offset {offset}",
                key.len() * 8
            );
        }
    }

    #[test]
    fn rfc6229_40_bit_key() {
        check_rfc6229(
            &unhex("0102030405"),
            "b2396305f03dc027ccc3524a0a1118a8 6982944f18fc82d589c403a47a0d0919
             28cb1132c96ce286421dcaadb8b69eae 1cfcf62b03eddb641d77dfcf7f8d8c93
             42b7d0cdd918a8a33dd51781c81f4041 6459844432a7da923cfb3eb4980661f6
             ec10327bde2beefd18f9277680457e22 eb62638d4f0ba1fe9fca20e05bf8ff2b
             45129048e6a0ed0b56b490338f078da5 30abbcc7c20b01609f23ee2d5f6bb7df
             3294f744d8f9790507e70f62e5bbceea d8729db41882259bee4f825325f5a130
             1eb14a0c13b3bf47fa2a0ba93ad45b8b cc582f8ba9f265e2b1be9112e975d2d7
             f2e30f9bd102ecbf75aaade9bc35c43c ec0e11c479dc329dc8da7968fe965681
             068326a2118416d21f9d04b2cd1ca050 ff25b58995996707e51fbdf08b34d875",
        );
    }

    #[test]
    fn rfc6229_56_bit_key() {
        check_rfc6229(
            &unhex("01020304050607"),
            "293f02d47f37c9b633f2af5285feb46b e620f1390d19bd84e2e0fd752031afc1
             914f02531c9218810df60f67e338154c d0fdb583073ce85ab83917740ec011d5
             75f81411e871cffa70b90c74c592e454 0bb87202938dad609e87a5a1b079e5e4
             c2911246b612e7e7b903dfeda1dad866 32828f91502b6291368de8081de36fc2
             f3b9a7e3b297bf9ad804512f9063eff1 8ecb67a9ba1f55a5a067e2b026a3676f
             d2aa902bd42d0d7cfd340cd45810529f 78b272c96e42eab4c60bd914e39d06e3
             f4332fd31a079396ee3cee3f2a4ff049 05459781d41fda7f30c1be7e1246c623
             adfd3868b8e51485d5e610017e3dd609 ad26581c0c5be45f4cea01db2f3805d5
             f3172ceffc3b3d997c85ccd5af1a950c e74b0b9731227fd37c0ec08a47ddd8b8",
        );
    }

    #[test]
    fn rfc6229_64_bit_key() {
        check_rfc6229(
            &unhex("0102030405060708"),
            "97ab8a1bf0afb96132f2f67258da15a8 8263efdb45c4a18684ef87e6b19e5b09
             9636ebc9841926f4f7d1f362bddf6e18 d0a990ff2c05fef5b90373c9ff4b870a
             73239f1db7f41d80b643c0c52518ec63 163b319923a6bdb4527c626126703c0f
             49d6c8af0f97144a87df21d91472f966 44173a103b6616c5d5ad1cee40c863d0
             273c9c4b27f322e4e716ef53a47de7a4 c6d0e7b226259fa9023490b26167ad1d
             1fe8986713f07c3d9ae1c163ff8cf9d3 8369e1a965610be887fbd0c79162aafb
             0a0127abb44484b9fbef5abcae1b579f c2cdadc6402e8ee866e1f37bdb47e42c
             26b51ea37df8e1d6f76fc3b66a7429b3 bc7683205d4f443dc1f29dda3315c87b
             d5fa5a3469d29aaaf83d23589db8c85b 3fb46e2c8f0f068edce8cdcd7dfc5862",
        );
    }

    #[test]
    fn rfc6229_80_bit_key() {
        check_rfc6229(
            &unhex("0102030405060708090a"),
            "ede3b04643e586cc907dc21851709902 03516ba78f413beb223aa5d4d2df6711
             3cfd6cb58ee0fdde640176ad0000044d 48532b21fb6079c9114c0ffd9c04a1ad
             3e8cea98017109979084b1ef92f99d86 e20fb49bdb337ee48b8d8dc0f4afeffe
             5c2521eacd7966f15e056544bea0d315 e067a7031931a246a6c3875d2f678acb
             a64f70af88ae56b6f87581c0e23e6b08 f449031de312814ec6f319291f4a0516
             bdae85924b3cb1d0a2e33a30c6d79599 8a0feddbac865a09bcd127fb562ed60a
             b55a0a5b51a12a8be34899c3e047511a d9a09cea3ce75fe39698070317a71339
             552225ed1177f44584ac8cfa6c4eb5fc 7e82cbabfc95381b080998442129c2f8
             1f135ed14ce60a91369d2322bef25e3c 08b6be45124a43e2eb77953f84dc8553",
        );
    }

    #[test]
    fn rfc6229_128_bit_key() {
        check_rfc6229(
            &unhex("0102030405060708090a0b0c0d0e0f10"),
            "9ac7cc9a609d1ef7b2932899cde41b97 5248c4959014126a6e8a84f11d1a9e1c
             065902e4b620f6cc36c8589f66432f2b d39d566bc6bce3010768151549f3873f
             b6d1e6c4a5e4771cad79538df295fb11 c68c1d5c559a974123df1dbc52a43b89
             c5ecf88de897fd57fed301701b82a259 eccbe13de1fcc91c11a0b26c0bc8fa4d
             e7a72574f8782ae26aabcf9ebcd66065 bdf0324e6083dcc6d3cedd3ca8c53c16
             b40110c4190b5622a96116b0017ed297 ffa0b514647ec04f6306b892ae661181
             d03d1bc03cd33d70dff9fa5d71963ebd 8a44126411eaa78bd51e8d87a8879bf5
             fabeb76028ade2d0e48722e46c4615a3 c05d88abd50357f935a63c59ee537623
             ff38265c1642c1abe8d3c2fe5e572bf8 a36a4c301ae8ac13610ccbc12256cacc",
        );
    }

    #[test]
    fn rfc6229_192_bit_key() {
        check_rfc6229(
            &unhex("0102030405060708090a0b0c0d0e0f101112131415161718"),
            "0595e57fe5f0bb3c706edac8a4b2db11 dfde31344a1af769c74f070aee9e2326
             b06b9b1e195d13d8f4a7995c4553ac05 6bd2378ec341c9a42f37ba79f88a32ff
             e70bce1df7645adb5d2c4130215c3522 9a5730c7fcb4c9af51ffda89c7f1ad22
             0485055fd4f6f0d963ef5ab9a5476982 591fc66bcda10e452b03d4551f6b62ac
             2753cc83988afa3e1688a1d3b42c9a02 93610d523d1d3f0062b3c2a3bbc7c7f0
             96c248610aadedfeaf8978c03de8205a 0e317b3d1c73b9e9a4688f296d133a19
             bdf0e6c3cca5b5b9d533b69c56ada120 88a218b6e2ece1e6246d44c759d19b10
             6866397e95c140534f94263421006e40 32cb0a1e9542c6b3b8b398abc3b0f1d5
             29a0b8aed54a132324c62e423f54b4c8 3cb0f3b5020a98b82af9fe154484a168",
        );
    }

    #[test]
    fn rfc6229_256_bit_key() {
        check_rfc6229(
            &unhex("0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"),
            "eaa6bd25880bf93d3f5d1e4ca2611d91 cfa45c9f7e714b54bdfa80027cb14380
             114ae344ded71b35f2e60febad727fd8 02e1e7056b0f623900496422943e97b6
             91cb93c787964e10d9527d999c6f936b 49b18b42f8e8367cbeb5ef104ba1c7cd
             87084b3ba700bade955610672745b374 e7a7b9e9ec540d5ff43bdb12792d1b35
             c799b596738f6b018c76c74b1759bd90 7fec5bfd9f9b89ce6548309092d7e958
             40f250b26d1f096a4afd4c340a588815 3e34135c79db010200767651cf263073
             f656abccf88dd827027b2ce917d464ec 18b62503bfbc077fbabb98f20d98ab34
             8aed95ee5b0dcbfbef4eb21d3a3f52f9 625a1ab00ee39a5327346bddb01a9c18
             a13a7c79c7e119b5ab0296ab28c300b9 f3e4c0a2e02d1d01f7f0a74618af2b48",
        );
    }

    /// Applying the keystream in pieces, at any split points, gives what one call gives.
    #[test]
    fn pieces_equal_one_call() {
        let mut rng = Rng::seeded(6229);
        let key: Vec<u8> = (0..20).map(|_| rng.next_u32() as u8).collect();
        for _ in 0..200 {
            let len = rng.index(3000);
            let mut data = vec![0u8; len];
            rng.fill(&mut data);
            let mut whole = data.clone();
            Rc4::new(&key).apply(&mut whole);
            let mut pieces = data.clone();
            let mut rc4 = Rc4::new(&key);
            let mut rest = &mut pieces[..];
            while !rest.is_empty() {
                let (piece, tail) = rest.split_at_mut(1 + rng.index(rest.len()));
                rc4.apply(piece);
                rest = tail;
            }
            assert_eq!(pieces, whole, "length {len}");
            assert!(len < 32 || whole != data, "the keystream changed nothing");
        }
    }

    /// With the first 1024 bytes dropped, as MSE does, the keystreams of the known-answer
    /// handshake in `super::super::tests` (keyA and keyB for its shared secret and SKEY
    /// 0x55 × 20), checked there through `Secret::streams`; keys and keystreams reproduced with
    /// a separate Python RC4.
    #[test]
    fn mse_keys_after_the_1024_byte_drop() {
        for (key, expected) in [
            (
                "4adb6566d2cc17043e4223f92859234afaeea446",
                "24a11790b335a5c3b8bee6cf356ca6f2",
            ),
            (
                "d6bed471c65d43074ab8fdb6b385e64acd1f0cb1",
                "8d42e814345807d2d4add74511d0fd41",
            ),
        ] {
            let mut rc4 = Rc4::new(&unhex(key));
            rc4.apply(&mut [0u8; 1024]);
            let mut ks = [0u8; 16];
            rc4.apply(&mut ks);
            assert_eq!(ks.to_vec(), unhex(expected), "key {key}");
        }
    }

    /// Ours gives what the `rc4` crate gives, for 20-byte keys (MSE's), many lengths and
    /// split points.
    #[test]
    fn matches_the_rc4_crate() {
        let mut rng = Rng::seeded(20);
        for _ in 0..200 {
            let mut key = [0u8; 20];
            rng.fill(&mut key);
            let len = rng.index(5000);
            let mut data = vec![0u8; len];
            rng.fill(&mut data);
            let mut theirs = data.clone();
            ::rc4::Rc4::<U20>::new(&key.into()).apply_keystream(&mut theirs);
            let mut ours = data;
            let split = rng.index(len + 1);
            let mut rc4 = Rc4::new(&key);
            let (head, tail) = ours.split_at_mut(split);
            rc4.apply(head);
            rc4.apply(tail);
            assert_eq!(ours, theirs, "length {len}, split at {split}");
        }
    }
}
