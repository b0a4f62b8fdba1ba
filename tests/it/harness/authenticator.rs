//! A software WebAuthn authenticator and client, written here apart from the server's library:
//! it answers `navigator.credentials.create()`/`get()` options as a browser with a platform
//! authenticator would (W3C WebAuthn Level 2 §6.1 authenticator data, §6.5 attestation
//! format "none", §5.8.1 client data), with a P-256 key (ES256, COSE §2.1) made by aws-lc-rs.
//!
//! What a test may change to play an attacker: the origin the "browser" reports, the flags,
//! the counter, and the signature.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

const UP: u8 = 0x01;
const UV: u8 = 0x04;
const BE: u8 = 0x08;
const AT: u8 = 0x40;

/// A credential held by the software authenticator.
pub struct SoftPasskey {
    pub credential_id: Vec<u8>,
    key: EcdsaKeyPair,
    pub user_handle: Vec<u8>,
    pub rp_id: String,
    pub counter: u32,
    /// The backup-eligible flag (a synced passkey): `amr` says `swk` rather than `hwk`.
    pub backup_eligible: bool,
    /// The flags sent with each assertion (UP and UV unless a test clears one).
    pub flags: u8,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .unwrap_or_else(|e| panic!("base64url {text}: {e}"))
}

// --- a minimal CBOR writer (RFC 8949 §3): what attestation objects and COSE keys need ---------

fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend([m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend((n as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 26);
            out.extend((n as u32).to_be_bytes());
        }
    }
}

fn int(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        head(out, 0, v as u64);
    } else {
        head(out, 1, (-1 - v) as u64);
    }
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    head(out, 2, b.len() as u64);
    out.extend_from_slice(b);
}

fn text(out: &mut Vec<u8>, t: &str) {
    head(out, 3, t.len() as u64);
    out.extend_from_slice(t.as_bytes());
}

/// The COSE_Key of an uncompressed P-256 point (RFC 9053 §7.1.1: kty EC2, alg ES256, crv P-256).
fn cose_key(point: &[u8]) -> Vec<u8> {
    assert_eq!(point.len(), 65, "an uncompressed P-256 point");
    let mut out = Vec::new();
    head(&mut out, 5, 5);
    int(&mut out, 1);
    int(&mut out, 2);
    int(&mut out, 3);
    int(&mut out, -7);
    int(&mut out, -1);
    int(&mut out, 1);
    int(&mut out, -2);
    bytes(&mut out, &point[1..33]);
    int(&mut out, -3);
    bytes(&mut out, &point[33..65]);
    out
}

fn client_data(kind: &str, challenge: &str, origin: &str) -> Vec<u8> {
    serde_json::json!({
        "type": kind,
        "challenge": challenge,
        "origin": origin,
        "crossOrigin": false,
    })
    .to_string()
    .into_bytes()
}

impl SoftPasskey {
    fn auth_data(&self, flags: u8, attested: Option<&[u8]>) -> Vec<u8> {
        let mut out = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        out.push(flags);
        out.extend(self.counter.to_be_bytes());
        if let Some(cose) = attested {
            out.extend([0u8; 16]); // AAGUID: none.
            out.extend((self.credential_id.len() as u16).to_be_bytes());
            out.extend(&self.credential_id);
            out.extend(cose);
        }
        out
    }

    /// Answers `navigator.credentials.create()` options (the JSON the server sent) as a browser
    /// at `origin`: a new credential and the `PublicKeyCredential` JSON for the server.
    pub fn create(options: &serde_json::Value, origin: &str) -> (SoftPasskey, String) {
        let pk = &options["publicKey"];
        let rp_id = pk["rp"]["id"].as_str().expect("rp.id").to_owned();
        let challenge = pk["challenge"].as_str().expect("challenge");
        let user_handle = unb64(pk["user"]["id"].as_str().expect("user.id"));
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .expect("a P-256 key");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
            .expect("the key");
        let mut credential_id = vec![0u8; 32];
        aws_lc_rs::rand::fill(&mut credential_id).expect("random");
        let passkey = SoftPasskey {
            credential_id,
            key,
            user_handle,
            rp_id,
            counter: 0,
            backup_eligible: false,
            flags: UP | UV,
        };
        let json = passkey.attestation(challenge, origin);
        (passkey, json)
    }

    /// The registration answer for a challenge (attestation format "none").
    pub fn attestation(&self, challenge: &str, origin: &str) -> String {
        let cose = cose_key(self.key.public_key().as_ref());
        let be = if self.backup_eligible { BE } else { 0 };
        let auth_data = self.auth_data(self.flags | be | AT, Some(&cose));
        let mut att = Vec::new();
        head(&mut att, 5, 3);
        text(&mut att, "fmt");
        text(&mut att, "none");
        text(&mut att, "attStmt");
        head(&mut att, 5, 0);
        text(&mut att, "authData");
        bytes(&mut att, &auth_data);
        let id = b64(&self.credential_id);
        serde_json::json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "attestationObject": b64(&att),
                "clientDataJSON": b64(&client_data("webauthn.create", challenge, origin)),
            },
            "clientExtensionResults": {},
        })
        .to_string()
    }

    /// Answers `navigator.credentials.get()` options as a browser at `origin`: the counter
    /// rises (when it is in use) and the assertion is signed.
    pub fn get(&mut self, options: &serde_json::Value, origin: &str) -> String {
        let challenge = options["publicKey"]["challenge"]
            .as_str()
            .expect("challenge")
            .to_owned();
        if self.counter > 0 {
            self.counter += 1;
        }
        self.assertion(&challenge, origin)
    }

    /// An assertion for a challenge with the current counter and flags.
    pub fn assertion(&self, challenge: &str, origin: &str) -> String {
        let be = if self.backup_eligible { BE } else { 0 };
        let auth_data = self.auth_data(self.flags | be, None);
        let client_data = client_data("webauthn.get", challenge, origin);
        let mut signed = auth_data.clone();
        signed.extend(Sha256::digest(&client_data));
        let signature = self
            .key
            .sign(&SystemRandom::new(), &signed)
            .expect("a signature");
        let id = b64(&self.credential_id);
        serde_json::json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "authenticatorData": b64(&auth_data),
                "clientDataJSON": b64(&client_data),
                "signature": b64(signature.as_ref()),
                "userHandle": b64(&self.user_handle),
            },
            "clientExtensionResults": {},
        })
        .to_string()
    }

    /// Sends assertions without user verification from now on (a security key without a PIN).
    pub fn without_user_verification(&mut self) {
        self.flags = UP;
    }

    /// Uses a signature counter from now on, starting at `n`.
    pub fn with_counter(&mut self, n: u32) {
        self.counter = n;
    }
}
