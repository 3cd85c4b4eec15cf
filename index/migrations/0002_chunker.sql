-- The chunker (strategy and settings) that cut each document's current version. Documents
-- stored before it was recorded get '' and are re-chunked by the next `cairn reindex`.
ALTER TABLE documents ADD COLUMN chunker TEXT NOT NULL DEFAULT '';
