//! Assistant profiles in the home shard (`migrations/0020_profiles.sql`):
//! each a name and its `crate::llm::profile::Profile` as JSON, API keys
//! sealed before they get here.

use super::{changes, num, rows, stmt, text};
use crate::crypto::Keyring;
use crate::error::AppError;
use crate::llm::profile::{key_aad, Profile, MAX_PROFILES};
use serde::Deserialize;
use worker::D1Database;

/// A stored profile.
#[derive(Deserialize, Debug, Clone)]
pub struct ProfileRow {
    pub name: String,
    /// JSON of a `Profile`, keys sealed.
    pub spec: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ProfileRow {
    /// Read through a `Value`, as the API reads a request's body, so that
    /// one deserializer of `Profile` is linked, not two.
    pub fn profile(&self) -> Result<Profile, AppError> {
        let v: serde_json::Value = serde_json::from_str(&self.spec).map_err(AppError::internal)?;
        serde_json::from_value(v).map_err(AppError::internal)
    }
}

const COLUMNS: &str = "name, spec, created_at, updated_at";

pub async fn list(db: &D1Database) -> Result<Vec<ProfileRow>, AppError> {
    let sql = format!("SELECT {COLUMNS} FROM assistant_profiles ORDER BY name");
    rows(stmt(db, &sql, &[])?).await
}

pub async fn get(db: &D1Database, name: &str) -> Result<Option<ProfileRow>, AppError> {
    let sql = format!("SELECT {COLUMNS} FROM assistant_profiles WHERE name = ?1");
    Ok(rows(stmt(db, &sql, &[text(name)])?).await?.pop())
}

/// Creates or replaces a profile (one statement: a new one only while
/// there are fewer than `MAX_PROFILES`). Gives whether it was written.
pub async fn put(
    db: &D1Database,
    name: &str,
    sealed: &Profile,
    now: i64,
) -> Result<bool, AppError> {
    let spec = serde_json::to_string(sealed).map_err(AppError::internal)?;
    let sql = format!(
        "INSERT INTO assistant_profiles ({COLUMNS}) SELECT ?1, ?2, ?3, ?3
          WHERE (SELECT count(*) FROM assistant_profiles) < {MAX_PROFILES}
             OR EXISTS (SELECT 1 FROM assistant_profiles WHERE name = ?1)
         ON CONFLICT (name) DO UPDATE SET spec = excluded.spec,
                updated_at = max(assistant_profiles.updated_at, excluded.updated_at)"
    );
    let r = stmt(db, &sql, &[text(name), text(&spec), num(now)])?
        .run()
        .await
        .map_err(AppError::internal)?;
    Ok(changes(&r) == 1)
}

pub async fn delete(db: &D1Database, name: &str) -> Result<bool, AppError> {
    let r = stmt(
        db,
        "DELETE FROM assistant_profiles WHERE name = ?1",
        &[text(name)],
    )?
    .run()
    .await
    .map_err(AppError::internal)?;
    Ok(changes(&r) == 1)
}

/// Re-seals under the active key every profile API key still under an
/// older one (key rotation; a deployment has at most `MAX_PROFILES`, so
/// one call does them all). Gives how many profiles changed, and those
/// with a key no key opens.
pub async fn reseal(
    db: &D1Database,
    keys: &Keyring,
) -> Result<(usize, Vec<super::maintenance::UnreadableRow>), AppError> {
    let prefix = keys.active_prefix();
    let mut updates = Vec::new();
    let mut unreadable = Vec::new();
    for row in list(db).await? {
        let mut p = row.profile()?;
        let mut changed = false;
        for (i, link) in p.chain.iter_mut().enumerate() {
            let Some(sealed) = link.api_key.as_mut().filter(|k| !k.starts_with(&prefix)) else {
                continue;
            };
            match keys.rotate(&key_aad(&row.name, i), sealed) {
                Ok(again) => {
                    *sealed = again;
                    changed = true;
                }
                Err(err) => unreadable.push(super::maintenance::UnreadableRow {
                    table: "assistant_profiles",
                    key: row.name.clone(),
                    code: err.code(),
                }),
            }
        }
        if changed {
            let spec = serde_json::to_string(&p).map_err(AppError::internal)?;
            updates.push(stmt(
                db,
                "UPDATE assistant_profiles SET spec = ?1 WHERE name = ?2 AND spec = ?3",
                &[text(&spec), text(&row.name), text(&row.spec)],
            )?);
        }
    }
    let n = updates.len();
    if n > 0 {
        db.batch(updates).await.map_err(AppError::internal)?;
    }
    Ok((n, unreadable))
}
