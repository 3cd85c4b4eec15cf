-- The catalog: documents, their chunks, the write log (ops) and persisted settings (meta).
--
-- Written to port to Postgres: BIGINT / TEXT columns, JSON kept in TEXT, no triggers.
-- The SQLite-specific parts are isolated here:
--   * `INTEGER PRIMARY KEY AUTOINCREMENT` (chunks.id, ops.seq) keeps ids and sequence
--     numbers from ever being reused, even after the newest row is deleted; Postgres uses
--     `BIGINT GENERATED ALWAYS AS IDENTITY`, which never reuses values either.
--   * `BLOB` for chunks.embedding (f32 little endian); Postgres uses `BYTEA`.

CREATE TABLE documents (
    id           TEXT    NOT NULL PRIMARY KEY,
    tenant       TEXT    NOT NULL,
    groups       TEXT    NOT NULL,          -- JSON array of group names; [] = whole tenant
    title        TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    mime         TEXT    NOT NULL,
    content_hash TEXT    NOT NULL,
    version      BIGINT  NOT NULL,
    pages        BIGINT  NOT NULL,
    chunk_count  BIGINT  NOT NULL,
    created_at   BIGINT  NOT NULL,          -- Unix milliseconds
    updated_at   BIGINT  NOT NULL,
    seq          BIGINT  NOT NULL,          -- the op that wrote this version
    UNIQUE (tenant, source)
);

CREATE TABLE chunks (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id       TEXT    NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    ordinal      BIGINT  NOT NULL,
    text         TEXT    NOT NULL,
    page         BIGINT  NOT NULL,
    span_start   BIGINT  NOT NULL,
    span_end     BIGINT  NOT NULL,
    heading_path TEXT    NOT NULL,          -- JSON array, outermost heading first
    token_count  BIGINT  NOT NULL,
    lang         TEXT    NOT NULL,
    embedding    BLOB    NOT NULL           -- f32 little endian
);

CREATE INDEX chunks_doc_id ON chunks (doc_id, ordinal);

-- The write log: one row per acknowledged write, in sequence order. Derived indexes
-- record the last seq they applied and replay the rest on start. No foreign key: the
-- op of a deleted document outlives it.
CREATE TABLE ops (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id  TEXT    NOT NULL,
    kind    TEXT    NOT NULL CHECK (kind IN ('upsert', 'delete')),
    version BIGINT  NOT NULL,
    at      BIGINT  NOT NULL                -- Unix milliseconds
);

CREATE TABLE meta (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);
