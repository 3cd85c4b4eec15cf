-- The vectors of a chunk's pieces (its lines and sentences), f32 little endian one after
-- another, for the sentence reranker; NULL when they were not computed (`[chunk]
-- piece_vectors` off). Postgres uses `BYTEA`.
ALTER TABLE chunks ADD COLUMN pieces BLOB;
