//! Secrets at rest and credentials: a master key seals values (ChaCha20-Poly1305); tokens are
//! random and stored as SHA-256; passwords use argon2; the platform SSH key is ed25519.
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use sha2::Digest;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("master key file {path}: {reason}")]
    MasterKey { path: String, reason: String },
    #[error("a sealed value could not be opened (wrong master key or corrupted data)")]
    Open,
    #[error("key generation failed: {0}")]
    KeyGen(String),
    #[error("password hashing failed")]
    Hash,
}

/// The key that seals secrets stored in the database.
#[derive(Clone)]
pub struct MasterKey(Key);

impl MasterKey {
    /// Reads `path` (32 raw bytes) or creates it with mode 0600.
    pub fn load_or_create(path: &Path) -> Result<Self, CryptoError> {
        let err = |reason: String| CryptoError::MasterKey {
            path: path.display().to_string(),
            reason,
        };
        match std::fs::read(path) {
            Ok(bytes) if bytes.len() == 32 => Ok(Self(*Key::from_slice(&bytes))),
            Ok(_) => Err(err("must hold exactly 32 bytes".into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut bytes);
                write_private(path, &bytes).map_err(|e| err(e.to_string()))?;
                Ok(Self(*Key::from_slice(&bytes)))
            }
            Err(e) => Err(err(e.to_string())),
        }
    }

    /// The key given as 64 hex characters (`HIPPO_MASTER_KEY`, shared by a cluster).
    pub fn from_hex(hex_key: &str) -> Result<Self, CryptoError> {
        let bytes = hex::decode(hex_key.trim()).map_err(|_| CryptoError::MasterKey {
            path: "HIPPO_MASTER_KEY".into(),
            reason: "must be 64 hexadecimal characters".into(),
        })?;
        if bytes.len() != 32 {
            return Err(CryptoError::MasterKey {
                path: "HIPPO_MASTER_KEY".into(),
                reason: "must be 64 hexadecimal characters".into(),
            });
        }
        Ok(Self(*Key::from_slice(&bytes)))
    }

    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let cipher = ChaCha20Poly1305::new(&self.0);
        // Encryption with a fresh nonce cannot fail for in-memory buffers.
        let mut out = nonce.to_vec();
        out.extend(
            cipher
                .encrypt(Nonce::from_slice(&nonce), plain)
                .unwrap_or_default(),
        );
        out
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < 12 {
            return Err(CryptoError::Open);
        }
        let (nonce, body) = sealed.split_at(12);
        ChaCha20Poly1305::new(&self.0)
            .decrypt(Nonce::from_slice(nonce), body)
            .map_err(|_| CryptoError::Open)
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// A new random token (shown once) and the hash we store.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = format!("hpo_{}", hex::encode(bytes));
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

pub fn random_password() -> String {
    let mut bytes = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hash_password(password: &str) -> Result<String, CryptoError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut rand_core::OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| CryptoError::Hash)
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash)
        .map(|h| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// An ed25519 key pair: (private key in OpenSSH PEM, public key line).
pub fn generate_ssh_keypair(comment: &str) -> Result<(String, String), CryptoError> {
    let mut key = ssh_key::PrivateKey::random(&mut rand_core::OsRng, ssh_key::Algorithm::Ed25519)
        .map_err(|e| CryptoError::KeyGen(e.to_string()))?;
    key.set_comment(comment);
    let private = key
        .to_openssh(ssh_key::LineEnding::LF)
        .map_err(|e| CryptoError::KeyGen(e.to_string()))?
        .to_string();
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|e| CryptoError::KeyGen(e.to_string()))?;
    Ok((private, public))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key() {
        let dir = std::env::temp_dir().join(format!("hippo-mk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let k1 = MasterKey::load_or_create(&dir.join("a")).unwrap();
        let k1_again = MasterKey::load_or_create(&dir.join("a")).unwrap();
        let k2 = MasterKey::load_or_create(&dir.join("b")).unwrap();
        let sealed = k1.seal(b"secret");
        assert_ne!(&sealed[12..], b"secret");
        assert_eq!(k1_again.open(&sealed).unwrap(), b"secret");
        assert!(k2.open(&sealed).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn passwords_and_tokens() {
        let h = hash_password("pw").unwrap();
        assert!(verify_password("pw", &h));
        assert!(!verify_password("px", &h));
        let (t, th) = new_token();
        assert_eq!(token_hash(&t), th);
    }

    #[test]
    fn ssh_keys_are_openssh_ed25519() {
        let (private, public) = generate_ssh_keypair("hippo").unwrap();
        assert!(private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
        assert!(public.starts_with("ssh-ed25519 "));
    }
}
