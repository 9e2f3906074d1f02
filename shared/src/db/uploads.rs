//! Files uploaded with a custom release request (`release_uploads`): one per transfer step that
//! takes an upload. In the database (not a data folder) so that every worker of a cluster reads
//! the same bytes; kept while a host keeps the version that holds them ([`Db::prune_uploads`]).
use super::{Db, DbResult, now};
use crate::domain::{ConfigId, ReleaseId};

/// What is known of an uploaded file without its bytes.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UploadInfo {
    pub step: i64,
    pub size: i64,
    pub sha256: String,
    pub uploaded_at: String,
}

impl Db {
    /// Stores (or replaces) the file of `step` (1-based) of a release.
    pub async fn put_upload(
        &self,
        release_id: ReleaseId,
        step: i64,
        sha256: &str,
        data: &[u8],
    ) -> DbResult<UploadInfo> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM release_uploads WHERE release_id = $1 AND step = $2")
            .bind(release_id)
            .bind(step)
            .execute(&mut *tx)
            .await?;
        let at = now();
        let size = i64::try_from(data.len()).unwrap_or(i64::MAX);
        sqlx::query("INSERT INTO release_uploads (release_id, step, size, sha256, data, uploaded_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(release_id)
            .bind(step)
            .bind(size)
            .bind(sha256)
            .bind(data)
            .bind(&at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(UploadInfo {
            step,
            size,
            sha256: sha256.to_owned(),
            uploaded_at: at,
        })
    }

    /// The files of a release (without their bytes), by step.
    pub async fn list_uploads(&self, release_id: ReleaseId) -> DbResult<Vec<UploadInfo>> {
        Ok(sqlx::query_as(
            "SELECT step, size, sha256, uploaded_at FROM release_uploads WHERE release_id = $1 ORDER BY step",
        )
        .bind(release_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The bytes of a release's file for `step`, if one was uploaded (and is still kept).
    pub async fn upload_data(&self, release_id: ReleaseId, step: i64) -> DbResult<Option<Vec<u8>>> {
        Ok(sqlx::query_scalar(
            "SELECT data FROM release_uploads WHERE release_id = $1 AND step = $2",
        )
        .bind(release_id)
        .bind(step)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Forgets the files of `config`'s releases that no longer matter: no host keeps the
    /// version they went into, and the release will not run again — it succeeded, was
    /// rejected or cancelled, or it failed and a newer release of the config succeeded since.
    /// Returns how many files were removed.
    pub async fn prune_uploads(&self, config: ConfigId) -> DbResult<u64> {
        let r = sqlx::query(
            "DELETE FROM release_uploads WHERE release_id IN (\
             SELECT r.id FROM releases r WHERE r.config_id = $1 \
             AND (r.status IN ('succeeded', 'rejected', 'cancelled') \
                  OR (r.status = 'failed' AND EXISTS (SELECT 1 FROM releases n WHERE n.config_id = r.config_id AND n.id > r.id AND n.kind = 'release' AND n.status = 'succeeded'))) \
             AND NOT EXISTS (SELECT 1 FROM host_versions v WHERE v.config_id = r.config_id AND v.version = r.version))",
        )
        .bind(config)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }
}
