-- The concepts each chunk mentions and the acronym merges it gives evidence for, as
-- cairn-graph's extraction found them (no LLM). Written in the chunk's own transaction and
-- removed with it, so the knowledge graph, assembled from these rows, can always be rebuilt
-- from the catalog and a deleted document takes exactly its own evidence with it.
-- Co-occurrence edges are not stored: two mentions of one sentence are an edge.

CREATE TABLE mentions (
    chunk_id   BIGINT NOT NULL REFERENCES chunks (id) ON DELETE CASCADE,
    key        TEXT   NOT NULL,          -- normalised: lower case, last word singular
    kind       TEXT   NOT NULL,          -- term, name, acronym, identifier, word
    span_start BIGINT NOT NULL,          -- byte range in the chunk's text
    span_end   BIGINT NOT NULL,
    sentence   BIGINT NOT NULL           -- 0-based sentence of the chunk
);

CREATE INDEX mentions_chunk ON mentions (chunk_id);
CREATE INDEX mentions_key ON mentions (key);

CREATE TABLE concept_merges (
    chunk_id   BIGINT NOT NULL REFERENCES chunks (id) ON DELETE CASCADE,
    from_key   TEXT   NOT NULL,          -- the acronym
    into_key   TEXT   NOT NULL,          -- its expansion
    span_start BIGINT NOT NULL,          -- the evidence, in the chunk's text
    span_end   BIGINT NOT NULL
);

CREATE INDEX concept_merges_chunk ON concept_merges (chunk_id);
