-- Where each document came from, as a type: 'path' (a file on the server's disk, `source`
-- is its absolute path) or 'upload' (a file a client sent, `source` is its base name).
-- Before this column, an upload's `source` was the name the client sent, which could be an
-- absolute path; rows written then are classed by their text (absolute: a path), so an
-- upload that named a server path is treated as one, and re-indexing it needs the rights
-- that reading the server's disk needs.
ALTER TABLE documents ADD COLUMN origin TEXT NOT NULL DEFAULT 'path'
    CHECK (origin IN ('path', 'upload'));
UPDATE documents SET origin = 'upload' WHERE substr(source, 1, 1) <> '/';
