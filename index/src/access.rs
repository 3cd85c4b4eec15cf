//! API keys and the audit log in the SQL catalog (tables `api_keys` and `audit`,
//! migration 0005): [`KeyStore`] and [`AuditLog`] for [`SqliteCatalog`]. Only a keyed hash
//! of a key's secret is stored; the audit table is only appended to, and pruned oldest
//! first by the retention sweep.

use crate::catalog::SqliteCatalog;
use crate::error::IndexError;
use async_trait::async_trait;
use cairn_core::{ApiKey, AuditEntry, AuditLog, AuditQuery, Error, KeyStore, Result, Role};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

const KEY_COLS: &str = "id, name, tenant, groups, role, secret_hash, created_at, expires_at, \
                        last_used_at, revoked_at";

fn key_from_row(row: &SqliteRow) -> std::result::Result<ApiKey, IndexError> {
    let get = |e: sqlx::Error| IndexError::Sqlx {
        context: "cannot decode key",
        source: e,
    };
    let role: String = row.try_get("role").map_err(get)?;
    let groups: String = row.try_get("groups").map_err(get)?;
    Ok(ApiKey {
        id: row.try_get("id").map_err(get)?,
        name: row.try_get("name").map_err(get)?,
        tenant: row.try_get("tenant").map_err(get)?,
        groups: serde_json::from_str(&groups)
            .map_err(|e| IndexError::Corrupt(format!("key groups: {e}")))?,
        role: Role::parse(&role)
            .ok_or_else(|| IndexError::Corrupt(format!("unknown key role {role:?}")))?,
        secret_hash: row.try_get("secret_hash").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
        expires_at: row.try_get("expires_at").map_err(get)?,
        last_used_at: row.try_get("last_used_at").map_err(get)?,
        revoked_at: row.try_get("revoked_at").map_err(get)?,
    })
}

fn audit_from_row(row: &SqliteRow) -> std::result::Result<AuditEntry, IndexError> {
    let get = |e: sqlx::Error| IndexError::Sqlx {
        context: "cannot decode audit line",
        source: e,
    };
    let role: String = row.try_get("role").map_err(get)?;
    Ok(AuditEntry {
        id: row.try_get("id").map_err(get)?,
        at: row.try_get("at").map_err(get)?,
        tenant: row.try_get("tenant").map_err(get)?,
        actor: row.try_get("actor").map_err(get)?,
        role: Role::parse(&role)
            .ok_or_else(|| IndexError::Corrupt(format!("unknown audit role {role:?}")))?,
        action: row.try_get("action").map_err(get)?,
        target: row.try_get("target").map_err(get)?,
        query: row.try_get("query").map_err(get)?,
        results: row.try_get("results").map_err(get)?,
        outcome: row.try_get("outcome").map_err(get)?,
    })
}

#[async_trait]
impl KeyStore for SqliteCatalog {
    async fn put_key(&self, key: &ApiKey) -> Result<()> {
        let groups = serde_json::to_string(&key.groups)
            .map_err(|e| Error::internal(format!("key groups: {e}")))?;
        let done = sqlx::query(
            "INSERT INTO api_keys (id, name, tenant, groups, role, secret_hash, created_at, \
             expires_at, last_used_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&key.id)
        .bind(&key.name)
        .bind(&key.tenant)
        .bind(groups)
        .bind(key.role.as_str())
        .bind(&key.secret_hash)
        .bind(key.created_at)
        .bind(key.expires_at)
        .bind(key.last_used_at)
        .bind(key.revoked_at)
        .execute(self.pool())
        .await
        .map_err(IndexError::sqlx("cannot store key"))?;
        if done.rows_affected() == 0 {
            return Err(Error::new(
                cairn_core::ErrorKind::Conflict,
                format!("a key with id {} exists", key.id),
            ));
        }
        Ok(())
    }

    async fn get_key(&self, id: &str) -> Result<Option<ApiKey>> {
        let row = sqlx::query(&format!("SELECT {KEY_COLS} FROM api_keys WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(IndexError::sqlx("cannot read key"))?;
        Ok(row.as_ref().map(key_from_row).transpose()?)
    }

    async fn list_keys(&self, tenant: Option<&str>) -> Result<Vec<ApiKey>> {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("SELECT {KEY_COLS} FROM api_keys WHERE 1 = 1"));
        if let Some(t) = tenant {
            qb.push(" AND tenant = ").push_bind(t.to_string());
        }
        qb.push(" ORDER BY created_at, id");
        let rows = qb
            .build()
            .fetch_all(self.pool())
            .await
            .map_err(IndexError::sqlx("cannot list keys"))?;
        Ok(rows
            .iter()
            .map(key_from_row)
            .collect::<std::result::Result<_, _>>()?)
    }

    async fn revoke_key(&self, id: &str, at: i64) -> Result<bool> {
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1")
                .bind(id)
                .bind(at)
                .execute(self.pool())
                .await
                .map_err(IndexError::sqlx("cannot revoke key"))?;
        Ok(done.rows_affected() > 0)
    }

    async fn touch_key(&self, id: &str, at: i64) -> Result<()> {
        sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(at)
            .execute(self.pool())
            .await
            .map_err(IndexError::sqlx("cannot record key use"))?;
        Ok(())
    }

    async fn any_live_key(&self) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL")
            .fetch_one(self.pool())
            .await
            .map_err(IndexError::sqlx("cannot count keys"))?;
        Ok(n > 0)
    }
}

#[async_trait]
impl AuditLog for SqliteCatalog {
    async fn append(&self, entries: &[AuditEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(IndexError::sqlx("cannot begin audit write"))?;
        for e in entries {
            sqlx::query(
                "INSERT INTO audit (at, tenant, actor, role, action, target, query, results, outcome) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(e.at)
            .bind(&e.tenant)
            .bind(&e.actor)
            .bind(e.role.as_str())
            .bind(&e.action)
            .bind(&e.target)
            .bind(&e.query)
            .bind(e.results)
            .bind(&e.outcome)
            .execute(&mut *tx)
            .await
            .map_err(IndexError::sqlx("cannot append audit line"))?;
        }
        tx.commit()
            .await
            .map_err(IndexError::sqlx("cannot commit audit lines"))?;
        Ok(())
    }

    async fn read(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT id, at, tenant, actor, role, action, target, query, results, outcome \
             FROM audit WHERE 1 = 1",
        );
        if let Some(since) = q.since {
            qb.push(" AND at >= ").push_bind(since);
        }
        if let Some(t) = &q.tenant {
            qb.push(" AND tenant = ").push_bind(t.clone());
        }
        if let Some(a) = &q.actor {
            qb.push(" AND actor = ").push_bind(a.clone());
        }
        qb.push(" ORDER BY id DESC");
        if let Some(limit) = q.limit {
            qb.push(" LIMIT ")
                .push_bind(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        let rows = qb
            .build()
            .fetch_all(self.pool())
            .await
            .map_err(IndexError::sqlx("cannot read the audit log"))?;
        Ok(rows
            .iter()
            .map(audit_from_row)
            .collect::<std::result::Result<_, _>>()?)
    }

    async fn prune(&self, before: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM audit WHERE at < $1")
            .bind(before)
            .execute(self.pool())
            .await
            .map_err(IndexError::sqlx("cannot prune the audit log"))?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, tenant: &str) -> ApiKey {
        ApiKey {
            id: id.into(),
            name: format!("key {id}"),
            tenant: tenant.into(),
            groups: vec!["hr".into()],
            role: Role::Writer,
            created_at: 10,
            expires_at: Some(1000),
            last_used_at: None,
            revoked_at: None,
            secret_hash: "ab".repeat(32),
        }
    }

    #[tokio::test]
    async fn keys_round_trip_and_revoke() {
        let tmp = tempfile::tempdir().unwrap();
        let cat = SqliteCatalog::open(&tmp.path().join("c.sqlite"))
            .await
            .unwrap();
        assert!(!cat.any_live_key().await.unwrap());
        cat.put_key(&key("k1", "acme")).await.unwrap();
        cat.put_key(&key("k2", "globex")).await.unwrap();
        let e = cat.put_key(&key("k1", "acme")).await.unwrap_err();
        assert_eq!(e.kind, cairn_core::ErrorKind::Conflict);
        let got = cat.get_key("k1").await.unwrap().unwrap();
        assert_eq!(got, key("k1", "acme"));
        assert!(got.is_live(999) && !got.is_live(1000));
        assert_eq!(cat.list_keys(Some("acme")).await.unwrap().len(), 1);
        assert_eq!(cat.list_keys(None).await.unwrap().len(), 2);
        cat.touch_key("k1", 50).await.unwrap();
        assert!(cat.revoke_key("k1", 60).await.unwrap());
        assert!(cat.revoke_key("k1", 70).await.unwrap());
        assert!(!cat.revoke_key("nope", 70).await.unwrap());
        let got = cat.get_key("k1").await.unwrap().unwrap();
        assert_eq!(
            (got.last_used_at, got.revoked_at),
            (Some(50), Some(60)),
            "a second revoke keeps the first time"
        );
        assert!(!got.is_live(0));
        assert!(cat.any_live_key().await.unwrap());
        cat.revoke_key("k2", 80).await.unwrap();
        assert!(!cat.any_live_key().await.unwrap());
    }

    #[tokio::test]
    async fn audit_appends_reads_newest_first_and_prunes() {
        let tmp = tempfile::tempdir().unwrap();
        let cat = SqliteCatalog::open(&tmp.path().join("c.sqlite"))
            .await
            .unwrap();
        let line = |at: i64, actor: &str| AuditEntry {
            id: 0,
            at,
            tenant: "acme".into(),
            actor: actor.into(),
            role: Role::Reader,
            action: "search".into(),
            target: None,
            query: Some("q".into()),
            results: Some(3),
            outcome: "ok".into(),
        };
        cat.append(&[line(1, "key:a"), line(2, "key:b"), line(3, "key:a")])
            .await
            .unwrap();
        let all = cat.read(&AuditQuery::default()).await.unwrap();
        assert_eq!(all.iter().map(|e| e.at).collect::<Vec<_>>(), [3, 2, 1]);
        let q = AuditQuery {
            actor: Some("key:a".into()),
            since: Some(2),
            ..Default::default()
        };
        assert_eq!(cat.read(&q).await.unwrap().len(), 1);
        assert_eq!(cat.prune(3).await.unwrap(), 2);
        assert_eq!(cat.read(&AuditQuery::default()).await.unwrap().len(), 1);
    }
}
