-- API keys and the audit log.
--
-- A key is `cairn_<id>_<secret>`: `id` is public (it names the key in lists and in the
-- audit log), `secret` is 256 random bits shown once at creation; only a keyed hash
-- (HMAC-SHA256 under the server's key-hashing secret) of it is stored.
CREATE TABLE api_keys (
    id           TEXT    NOT NULL PRIMARY KEY,
    name         TEXT    NOT NULL,
    tenant       TEXT    NOT NULL,
    groups       TEXT    NOT NULL,          -- JSON array of group names
    role         TEXT    NOT NULL CHECK (role IN ('reader', 'writer', 'admin')),
    secret_hash  TEXT    NOT NULL,          -- hex HMAC-SHA256 of the secret
    created_at   BIGINT  NOT NULL,          -- Unix milliseconds
    expires_at   BIGINT,                    -- NULL: never
    last_used_at BIGINT,
    revoked_at   BIGINT                     -- NULL: live
);

CREATE INDEX api_keys_tenant ON api_keys (tenant, created_at);

-- Append-only: rows are only ever inserted, and removed only by the retention sweep,
-- oldest first.
CREATE TABLE audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        BIGINT  NOT NULL,             -- Unix milliseconds
    tenant    TEXT    NOT NULL,
    actor     TEXT    NOT NULL,             -- local, key:<id>, proxy:<user>, open
    role      TEXT    NOT NULL,
    action    TEXT    NOT NULL,             -- upload, delete, reindex, search, ask, key.create, ...
    target    TEXT,                         -- document id, key id, ...
    query     TEXT,                         -- the query text or its sha256 ([audit] queries)
    results   BIGINT,                       -- how many results the caller saw
    outcome   TEXT    NOT NULL              -- ok, or the error code
);

CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_actor ON audit (actor, at);
