//! Drills: a recorded attack replayed at today's time into incidents of its own.

use serde::Serialize;
use sqlx::FromRow;

use crate::model::incident_columns;
use crate::{Incident, Result, Store, StoreError};

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct Drill {
    pub id: i64,
    pub scenario: String,
    pub recording: String,
    pub who: String,
    pub started_at: i64,
    pub shift_ms: i64,
    pub finished_at: Option<i64>,
    /// The run's measures, as JSON.
    pub result: Option<String>,
}

macro_rules! drill_columns {
    () => {
        "id, scenario, recording, who, started_at, shift_ms, finished_at, result"
    };
}

impl Store {
    /// Records the start of a drill; its id tags the incidents it opens.
    pub async fn start_drill(
        &self,
        scenario: &str,
        recording: &str,
        who: &str,
        now: i64,
        shift_ms: i64,
    ) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO drills (scenario, recording, who, started_at, shift_ms) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(scenario)
        .bind(recording)
        .bind(who)
        .bind(now)
        .bind(shift_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    pub async fn finish_drill(&self, id: i64, result: &serde_json::Value, now: i64) -> Result<()> {
        sqlx::query("UPDATE drills SET finished_at = $1, result = $2 WHERE id = $3")
            .bind(now)
            .bind(result.to_string())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn drill(&self, id: i64) -> Result<Drill> {
        sqlx::query_as(concat!("SELECT ", drill_columns!(), " FROM drills WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::Refused(format!("drill {id} does not exist (kir drill list --runs)")))
    }

    pub async fn drills(&self) -> Result<Vec<Drill>> {
        Ok(sqlx::query_as(concat!("SELECT ", drill_columns!(), " FROM drills ORDER BY id"))
            .fetch_all(&self.pool)
            .await?)
    }

    /// The incidents drill `id` opened.
    pub async fn drill_incidents(&self, id: i64) -> Result<Vec<Incident>> {
        Ok(sqlx::query_as(concat!("SELECT ", incident_columns!(), " FROM incidents WHERE drill_id = $1 ORDER BY id"))
            .bind(id)
            .fetch_all(&self.pool)
            .await?)
    }
}
