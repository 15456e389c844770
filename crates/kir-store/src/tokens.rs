//! API tokens of `kir serve`. The store keeps a token's public id, name, role and the hash of
//! its secret (made by the caller: argon2 in kir-serve), never the secret itself.

use serde::Serialize;
use sqlx::FromRow;

use crate::{Result, Store, StoreError};

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub role: String,
    #[serde(skip)]
    pub secret_hash: String,
    pub created_at: i64,
    pub created_by: String,
    pub revoked_at: Option<i64>,
    pub revoked_by: Option<String>,
    /// The cluster whose events this token sends (an ingest token's): every event it delivers
    /// is labelled with it, and a `?cluster=` naming another is refused.
    pub cluster: Option<String>,
}

const COLUMNS: &str = "id, name, role, secret_hash, created_at, created_by, revoked_at, revoked_by, cluster";

impl Store {
    /// Adds a token; refused when a live token already has `name`.
    pub async fn create_token(&self, token: &ApiToken) -> Result<()> {
        let mut tx = self.lock().await?;
        let r = async {
            let c = tx.conn();
            let taken: Option<(String,)> =
                sqlx::query_as("SELECT id FROM api_tokens WHERE name = $1 AND revoked_at IS NULL")
                    .bind(&token.name)
                    .fetch_optional(&mut *c)
                    .await?;
            if taken.is_some() {
                return Err(StoreError::Refused(format!(
                    "a token named {:?} exists: revoke it first (kir token revoke {})",
                    token.name, token.name
                )));
            }
            sqlx::query(
                "INSERT INTO api_tokens (id, name, role, secret_hash, created_at, created_by, cluster) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&token.id)
            .bind(&token.name)
            .bind(&token.role)
            .bind(&token.secret_hash)
            .bind(token.created_at)
            .bind(&token.created_by)
            .bind(&token.cluster)
            .execute(&mut *c)
            .await?;
            Ok(())
        }
        .await;
        tx.finish(r).await
    }

    /// Every token, revoked ones included, oldest first.
    pub async fn tokens(&self) -> Result<Vec<ApiToken>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM api_tokens ORDER BY created_at, name")))
            .fetch_all(&self.pool)
            .await?)
    }

    /// The live token with public id `id`.
    pub async fn live_token(&self, id: &str) -> Result<Option<ApiToken>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE id = $1 AND revoked_at IS NULL"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Revokes the live token named `name`; false when there is none.
    pub async fn revoke_token(&self, name: &str, who: &str, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1, revoked_by = $2 WHERE name = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(who)
        .bind(name)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done > 0)
    }
}
