//! The platform SSH key pair: generated on first start, the private half sealed with the
//! master key in the `settings` table. It never leaves the server; the public half is served
//! at `GET /api/ssh-key` for users to authorise on their hosts and Git servers.
use crate::config::Secret;
use crate::crypto::{CryptoError, MasterKey, generate_ssh_keypair};
use crate::db::{Db, DbError};

#[derive(Clone)]
pub struct PlatformKey {
    pub private_openssh: Secret,
    pub public_line: String,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl PlatformKey {
    pub async fn load_or_create(db: &Db, master: &MasterKey) -> Result<Self, KeyError> {
        if db.setting("ssh_private_key").await?.is_none() {
            let (private, public) = generate_ssh_keypair("hippo")?;
            // Several processes starting at once: the first transaction wins, all read it back.
            let sealed = master.seal(private.as_bytes());
            db.settings_init(&[
                ("ssh_private_key", &sealed),
                ("ssh_public_key", public.as_bytes()),
            ])
            .await?;
        }
        let sealed = db
            .setting("ssh_private_key")
            .await?
            .ok_or(DbError::NotFound("platform key"))?;
        let public = db
            .setting("ssh_public_key")
            .await?
            .ok_or(DbError::NotFound("platform key"))?;
        let private = String::from_utf8(master.open(&sealed)?).map_err(|_| CryptoError::Open)?;
        Ok(Self {
            private_openssh: Secret::new(private),
            public_line: String::from_utf8_lossy(&public).trim().to_owned(),
        })
    }
}
