//! The SQLite catalog against a real database file: versions, chunk replacement, deletes,
//! the write log, meta, and what survives a reopen.

use cairn_core::{
    Acl, Catalog, ChunkId, DocId, DocQuery, ErrorKind, Lang, NewChunk, NewDocument, OpKind, Origin,
    OriginKind, Principal, Seq, Span,
};
use cairn_index::SqliteCatalog;

/// The catalog stores origins as given; these tests name documents by short paths.
fn origin(source: &str) -> Origin {
    Origin::Path(source.to_string())
}

fn doc(tenant: &str, source: &str, groups: &[&str]) -> NewDocument {
    NewDocument {
        title: format!("Title of {source}"),
        origin: origin(source),
        mime: "text/markdown".into(),
        content_hash: format!("hash-{source}"),
        chunker: "pack-v1".into(),
        acl: Acl {
            tenant: tenant.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        },
        pages: 2,
    }
}

fn chunk(text: &str, seed: f32) -> NewChunk {
    NewChunk {
        text: text.into(),
        page: 1,
        span: Span::new(0, text.len()),
        heading_path: vec!["Intro".into(), "Setup".into()],
        token_count: 3,
        lang: Lang::detect(text),
        embedding: vec![seed, -seed, 0.25, 1.0],
        pieces: Vec::new(),
        concepts: Default::default(),
    }
}

async fn open(dir: &tempfile::TempDir) -> SqliteCatalog {
    SqliteCatalog::open(&dir.path().join("catalog.sqlite"))
        .await
        .unwrap()
}

#[tokio::test]
async fn put_then_find_returns_what_was_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let cat = open(&tmp).await;
    let stored = cat
        .put_document(
            doc("acme", "a.md", &["hr"]),
            vec![chunk("hello world", 0.5), chunk("如何配置网络", 1.5)],
        )
        .await
        .unwrap();
    assert_eq!(stored.version, 1);
    assert_eq!(stored.chunk_count, 2);
    assert_eq!(stored.seq, Seq(1));
    assert_eq!(stored.created_at, stored.updated_at);

    let found = cat
        .find_by_origin("acme", &origin("a.md"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, stored);
    assert!(
        cat.find_by_origin("other", &origin("a.md"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(cat.get_document(&stored.id).await.unwrap().unwrap(), stored);

    let chunks = cat.chunks_of(&stored.id).await.unwrap();
    assert_eq!(chunks.len(), 2);
    assert_eq!(chunks[0].ordinal, 0);
    assert_eq!(chunks[1].ordinal, 1);
    assert_eq!(chunks[1].text, "如何配置网络");
    assert_eq!(chunks[1].lang, Lang::Zh);
    assert_eq!(
        chunks[0].heading_path,
        vec!["Intro".to_string(), "Setup".to_string()]
    );
    assert_eq!(chunks[0].span, Span::new(0, 11));

    let with_emb = cat.chunks_with_embeddings(&stored.id).await.unwrap();
    assert_eq!(with_emb[0].1, vec![0.5, -0.5, 0.25, 1.0]);
    assert_eq!(with_emb[1].1, vec![1.5, -1.5, 0.25, 1.0]);
    assert_eq!(with_emb[1].0, chunks[1]);
}

#[tokio::test]
async fn re_put_bumps_version_keeps_id_and_replaces_chunks() {
    let tmp = tempfile::tempdir().unwrap();
    let cat = open(&tmp).await;
    let v1 = cat
        .put_document(
            doc("acme", "a.md", &[]),
            vec![chunk("one", 1.0), chunk("two", 2.0)],
        )
        .await
        .unwrap();
    let old_ids: Vec<ChunkId> = cat
        .chunks_of(&v1.id)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();

    let mut changed = doc("acme", "a.md", &["eng"]);
    changed.title = "New title".into();
    let v2 = cat
        .put_document(changed, vec![chunk("three", 3.0)])
        .await
        .unwrap();
    assert_eq!(v2.id, v1.id);
    assert_eq!(v2.version, 2);
    assert_eq!(v2.created_at, v1.created_at);
    assert!(v2.seq > v1.seq);
    assert_eq!(v2.title, "New title");
    assert_eq!(v2.acl.groups, vec!["eng".to_string()]);

    let chunks = cat.chunks_of(&v1.id).await.unwrap();
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].text, "three");
    // Chunk ids are never reused: the new chunk's id is past every old one.
    assert!(old_ids.iter().all(|old| *old < chunks[0].id));
    assert!(cat.get_chunks(&old_ids).await.unwrap().is_empty());
    assert_eq!(cat.chunk_ids().await.unwrap(), vec![chunks[0].id]);
}

#[tokio::test]
async fn delete_removes_document_and_chunks_and_unknown_is_not_found() {
    let tmp = tempfile::tempdir().unwrap();
    let cat = open(&tmp).await;
    let a = cat
        .put_document(doc("acme", "a.md", &[]), vec![chunk("one", 1.0)])
        .await
        .unwrap();
    let b = cat
        .put_document(doc("acme", "b.md", &[]), vec![chunk("two", 2.0)])
        .await
        .unwrap();
    let seq = cat.delete_document(&a.id).await.unwrap();
    assert_eq!(seq, Seq(3));
    assert!(cat.get_document(&a.id).await.unwrap().is_none());
    assert!(cat.chunks_of(&a.id).await.unwrap().is_empty());
    assert!(
        cat.find_by_origin("acme", &origin("a.md"))
            .await
            .unwrap()
            .is_none()
    );
    let b_chunks = cat.chunks_of(&b.id).await.unwrap();
    assert_eq!(cat.chunk_ids().await.unwrap(), vec![b_chunks[0].id]);

    let err = cat.delete_document(&a.id).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    let err = cat.delete_document(&DocId::from("nope")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    // A refused delete writes nothing.
    assert_eq!(cat.last_seq().await.unwrap(), Seq(3));

    // Re-ingesting a deleted source starts over with a new id.
    let again = cat
        .put_document(doc("acme", "a.md", &[]), vec![])
        .await
        .unwrap();
    assert_ne!(again.id, a.id);
    assert_eq!(again.version, 1);
    assert_eq!(again.chunk_count, 0);
}

#[tokio::test]
async fn ops_are_in_sequence_order_and_page() {
    let tmp = tempfile::tempdir().unwrap();
    let cat = open(&tmp).await;
    assert_eq!(cat.last_seq().await.unwrap(), Seq(0));
    assert!(cat.ops_since(Seq(0), 10).await.unwrap().is_empty());

    let a = cat
        .put_document(doc("t", "a", &[]), vec![chunk("x", 1.0)])
        .await
        .unwrap();
    let b = cat
        .put_document(doc("t", "b", &[]), vec![chunk("y", 1.0)])
        .await
        .unwrap();
    cat.put_document(doc("t", "a", &[]), vec![chunk("z", 1.0)])
        .await
        .unwrap();
    cat.delete_document(&b.id).await.unwrap();

    let ops = cat.ops_since(Seq(0), 100).await.unwrap();
    let seen: Vec<(i64, &str, OpKind)> = ops
        .iter()
        .map(|o| (o.seq.0, o.doc_id.as_str(), o.kind))
        .collect();
    assert_eq!(
        seen,
        vec![
            (1, a.id.as_str(), OpKind::Upsert),
            (2, b.id.as_str(), OpKind::Upsert),
            (3, a.id.as_str(), OpKind::Upsert),
            (4, b.id.as_str(), OpKind::Delete),
        ]
    );
    assert_eq!(cat.last_seq().await.unwrap(), Seq(4));
    let page: Vec<i64> = cat
        .ops_since(Seq(1), 2)
        .await
        .unwrap()
        .iter()
        .map(|o| o.seq.0)
        .collect();
    assert_eq!(page, vec![2, 3]);
    assert!(cat.ops_since(Seq(4), 10).await.unwrap().is_empty());
    assert_eq!(cat.get_document(&a.id).await.unwrap().unwrap().seq, Seq(3));
}

#[tokio::test]
async fn list_filters_by_principal_prefix_and_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let cat = open(&tmp).await;
    for (tenant, source, groups) in [
        ("acme", "docs/a.md", vec![]),
        ("acme", "docs/b.md", vec!["hr"]),
        ("acme", "other/c.md", vec![]),
        ("acme", "docs%/d.md", vec![]),
        ("evil", "docs/e.md", vec![]),
    ] {
        cat.put_document(doc(tenant, source, &groups), vec![])
            .await
            .unwrap();
    }
    let sources = |docs: Vec<cairn_core::Document>| {
        docs.into_iter()
            .map(|d| d.source().to_string())
            .collect::<Vec<_>>()
    };

    let all = cat.list_documents(&DocQuery::default()).await.unwrap();
    assert_eq!(all.len(), 5);

    let q = DocQuery {
        principal: Some(Principal::new("acme", vec![])),
        ..Default::default()
    };
    assert_eq!(
        sources(cat.list_documents(&q).await.unwrap()),
        ["docs%/d.md", "docs/a.md", "other/c.md"]
    );

    let q = DocQuery {
        principal: Some(Principal::new("acme", vec!["hr".into()])),
        source_prefix: Some("docs/".into()),
        ..Default::default()
    };
    assert_eq!(
        sources(cat.list_documents(&q).await.unwrap()),
        ["docs/a.md", "docs/b.md"]
    );

    let q = DocQuery {
        limit: Some(1),
        ..q
    };
    assert_eq!(
        sources(cat.list_documents(&q).await.unwrap()),
        ["docs/a.md"]
    );

    // A prefix is literal text, not a LIKE pattern.
    let q = DocQuery {
        source_prefix: Some("docs%".into()),
        ..Default::default()
    };
    assert_eq!(
        sources(cat.list_documents(&q).await.unwrap()),
        ["docs%/d.md"]
    );
}

#[tokio::test]
async fn get_documents_and_chunks_by_id() {
    let tmp = tempfile::tempdir().unwrap();
    let cat = open(&tmp).await;
    let a = cat
        .put_document(doc("t", "a", &[]), vec![chunk("x", 1.0), chunk("y", 2.0)])
        .await
        .unwrap();
    let b = cat
        .put_document(doc("t", "b", &[]), vec![chunk("z", 3.0)])
        .await
        .unwrap();
    let docs = cat
        .get_documents(&[b.id.clone(), DocId::from("missing"), a.id.clone()])
        .await
        .unwrap();
    assert_eq!(docs, vec![b.clone(), a.clone()]);
    assert!(cat.get_documents(&[]).await.unwrap().is_empty());

    let ids = cat.chunk_ids().await.unwrap();
    assert_eq!(ids.len(), 3);
    let got = cat
        .get_chunks(&[ids[2], ChunkId(999), ids[0]])
        .await
        .unwrap();
    let mut texts: Vec<String> = got.into_iter().map(|c| c.text).collect();
    texts.sort();
    assert_eq!(texts, ["x", "z"]);
    // More ids than one IN list holds.
    let many: Vec<ChunkId> = (0..1200).map(ChunkId).collect();
    assert_eq!(cat.get_chunks(&many).await.unwrap().len(), 3);
}

#[tokio::test]
async fn piece_vectors_are_stored_with_their_chunk_and_go_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    let cat = open(&tmp).await;
    let mut with = chunk("x. y", 1.0);
    with.pieces = vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0];
    let a = cat
        .put_document(doc("t", "a", &[]), vec![with.clone(), chunk("z", 2.0)])
        .await
        .unwrap();
    let ids = cat.chunk_ids().await.unwrap();
    let got = cat
        .piece_vectors(&[ids[0], ids[1], ChunkId(999)])
        .await
        .unwrap();
    // the chunk stored without pieces has none, not an empty entry
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[&ids[0]], with.pieces);
    // more ids than one IN list holds
    let many: Vec<ChunkId> = (0..1200).map(ChunkId).collect();
    assert_eq!(cat.piece_vectors(&many).await.unwrap().len(), 1);

    // a new version replaces the chunks, and the old vectors go with them
    cat.put_document(doc("t", "a", &[]), vec![chunk("w", 3.0)])
        .await
        .unwrap();
    assert!(cat.piece_vectors(&ids).await.unwrap().is_empty());
    cat.delete_document(&a.id).await.unwrap();
    assert!(cat.piece_vectors(&many).await.unwrap().is_empty());
}

/// The graph's evidence lives with its chunk: written in the chunk's transaction, read back
/// as it was given, replaced with a new version, gone with a delete; a span outside its
/// chunk is refused and nothing of that write is stored.
#[tokio::test]
async fn concepts_are_stored_with_their_chunk_and_go_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    let cat = open(&tmp).await;
    let mut lvm = chunk(
        "The Logical Volume Manager (LVM) resizes volumes on Debian.",
        1.0,
    );
    lvm.concepts = cairn_graph::extract(&lvm.text, Lang::En);
    assert!(!lvm.concepts.merges.is_empty() && lvm.concepts.mentions.len() >= 3);
    // More mentions than one multi-row insert holds.
    let mut many = chunk(&"Kernel Module. ".repeat(2000), 2.0);
    many.concepts = cairn_graph::extract(&many.text, Lang::En);
    assert_eq!(many.concepts.mentions.len(), cairn_graph::MAX_MENTIONS);
    let a = cat
        .put_document(
            doc("t", "a", &[]),
            vec![lvm.clone(), chunk("nothing", 3.0), many.clone()],
        )
        .await
        .unwrap();
    let ids = cat.chunk_ids().await.unwrap();
    let got = cat.concepts(&ids).await.unwrap();
    assert_eq!(got.len(), 2, "the chunk without concepts has no entry");
    let truncated_flag_not_stored = cairn_core::Concepts {
        truncated: false,
        ..many.concepts.clone()
    };
    assert_eq!(got[&ids[0]], lvm.concepts);
    assert_eq!(got[&ids[2]], truncated_flag_not_stored);

    // A bad span: refused, and the document keeps its version and its concepts.
    let mut bad = lvm.clone();
    bad.concepts.mentions[0].end = bad.text.len() + 1;
    let err = cat
        .put_document(doc("t", "a", &[]), vec![bad])
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Internal, "a caller bug: {err}");
    assert_eq!(cat.get_document(&a.id).await.unwrap().unwrap().version, 1);
    assert_eq!(cat.concepts(&ids).await.unwrap().len(), 2);

    // A new version replaces the chunks and their concepts; a delete removes them.
    cat.put_document(doc("t", "a", &[]), vec![lvm.clone()])
        .await
        .unwrap();
    assert!(cat.concepts(&ids).await.unwrap().is_empty());
    let now = cat.chunk_ids().await.unwrap();
    assert_eq!(cat.concepts(&now).await.unwrap()[&now[0]], lvm.concepts);
    cat.delete_document(&a.id).await.unwrap();
    assert!(cat.concepts(&now).await.unwrap().is_empty());
}

#[tokio::test]
async fn embeddings_must_match_the_recorded_dims() {
    let tmp = tempfile::tempdir().unwrap();
    let cat = open(&tmp).await;
    let mut bad = chunk("x", 1.0);
    bad.embedding.pop();
    let err = cat
        .put_document(doc("t", "a", &[]), vec![chunk("y", 1.0), bad.clone()])
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Internal);
    assert!(
        err.message.contains("3 dims, expected 4"),
        "{}",
        err.message
    );

    cat.meta_set("dims", "3").await.unwrap();
    let err = cat
        .put_document(doc("t", "a", &[]), vec![chunk("y", 1.0)])
        .await
        .unwrap_err();
    assert!(
        err.message.contains("4 dims, expected 3"),
        "{}",
        err.message
    );
    cat.put_document(doc("t", "a", &[]), vec![bad])
        .await
        .unwrap();
    // Nothing of the refused writes was stored.
    assert_eq!(cat.last_seq().await.unwrap(), Seq(1));
}

#[tokio::test]
async fn meta_and_everything_else_survive_a_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let (stored, ids) = {
        let cat = open(&tmp).await;
        assert_eq!(
            cat.meta_get("schema_version").await.unwrap().as_deref(),
            Some("6")
        );
        assert_eq!(cat.meta_get("embedder_id").await.unwrap(), None);
        cat.meta_set("embedder_id", "bge-small").await.unwrap();
        cat.meta_set("embedder_id", "bge-base").await.unwrap();
        let stored = cat
            .put_document(doc("t", "a", &["g"]), vec![chunk("x", 1.0)])
            .await
            .unwrap();
        let ids = cat.chunk_ids().await.unwrap();
        cat.close().await;
        (stored, ids)
    };
    let cat = open(&tmp).await;
    assert_eq!(
        cat.meta_get("embedder_id").await.unwrap().as_deref(),
        Some("bge-base")
    );
    assert_eq!(cat.get_document(&stored.id).await.unwrap().unwrap(), stored);
    assert_eq!(cat.chunk_ids().await.unwrap(), ids);
    assert_eq!(cat.last_seq().await.unwrap(), stored.seq);
    // Sequence numbers continue where they stopped.
    let next = cat.put_document(doc("t", "b", &[]), vec![]).await.unwrap();
    assert_eq!(next.seq, Seq(stored.seq.0 + 1));
}

#[tokio::test]
async fn concurrent_writes_get_distinct_increasing_seqs() {
    let tmp = tempfile::tempdir().unwrap();
    let cat = std::sync::Arc::new(open(&tmp).await);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let cat = cat.clone();
        tasks.push(tokio::spawn(async move {
            cat.put_document(doc("t", &format!("s{}", i % 4), &[]), vec![chunk("x", 1.0)])
                .await
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap().unwrap().seq.0);
    }
    seqs.sort();
    assert_eq!(seqs, (1..=16).collect::<Vec<_>>());
    // Four sources, four versions each.
    let docs = cat.list_documents(&DocQuery::default()).await.unwrap();
    assert_eq!(docs.len(), 4);
    assert!(docs.iter().all(|d| d.version == 4 && d.chunk_count == 1));
    assert_eq!(cat.chunk_ids().await.unwrap().len(), 4);
}

#[tokio::test]
async fn origin_is_stored_and_an_upload_never_replaces_a_path() {
    let tmp = tempfile::tempdir().unwrap();
    let cat = open(&tmp).await;
    let path = cat
        .put_document(doc("acme", "/srv/docs/passwd", &[]), vec![])
        .await
        .unwrap();
    let upload = NewDocument {
        origin: Origin::upload("passwd").unwrap(),
        ..doc("acme", "unused", &[])
    };
    let up = cat.put_document(upload.clone(), vec![]).await.unwrap();
    assert_ne!(up.id, path.id, "an upload and a path are two documents");
    assert_eq!(up.origin, Origin::Upload("passwd".into()));
    let got = cat.get_document(&path.id).await.unwrap().unwrap();
    assert_eq!(got.origin, Origin::Path("/srv/docs/passwd".into()));
    assert_eq!(
        cat.find_by_origin("acme", &Origin::Upload("passwd".into()))
            .await
            .unwrap()
            .map(|d| d.id),
        Some(up.id.clone())
    );
    assert!(
        cat.find_by_origin("acme", &Origin::Upload("/srv/docs/passwd".into()))
            .await
            .unwrap()
            .is_none()
    );
    // A row of the other origin under the same text is refused, not replaced.
    let forged = NewDocument {
        origin: Origin::Upload("/srv/docs/passwd".into()),
        ..doc("acme", "unused", &[])
    };
    let e = cat.put_document(forged, vec![]).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Internal, "{}", e.message);
    assert_eq!(
        cat.get_document(&path.id).await.unwrap().unwrap().version,
        1
    );
    let q = DocQuery {
        origin: Some(OriginKind::Upload),
        ..Default::default()
    };
    let uploads = cat.list_documents(&q).await.unwrap();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].id, up.id);
}

/// The graph of a catalog, as a search of everything would assemble it, with each chunk
/// named by its document's source and its ordinal (chunk ids differ between catalogs).
async fn graph_of(cat: &SqliteCatalog) -> (Vec<String>, Vec<String>) {
    let ids = cat.chunk_ids().await.unwrap();
    let stored = cat.concepts(&ids).await.unwrap();
    let chunks = cat.get_chunks(&ids).await.unwrap();
    let docs = cat.list_documents(&DocQuery::default()).await.unwrap();
    let name = |id: ChunkId| {
        let c = chunks.iter().find(|c| c.id == id).unwrap();
        let d = docs.iter().find(|d| d.id == c.doc_id).unwrap();
        format!("{}#{}", d.source(), c.ordinal)
    };
    let g = cairn_graph::assemble(
        stored.iter().map(|(id, c)| (*id, c)),
        &cairn_graph::Settings::default(),
    );
    let concepts = g
        .concepts
        .iter()
        .map(|c| {
            let mut at: Vec<String> = c.chunks.iter().map(|id| name(*id)).collect();
            at.sort();
            format!(
                "{} {:?} aliases {:?} mentions {} in {:?}",
                c.key, c.kind, c.aliases, c.mentions, at
            )
        })
        .collect();
    let edges = g
        .edges
        .iter()
        .map(|e| {
            format!(
                "{} ~ {}: {} sentences, pmi {:.6}",
                g.concepts[e.a].key, g.concepts[e.b].key, e.sentences, e.pmi
            )
        })
        .collect();
    (concepts, edges)
}

/// Stores one chunk of `text` with the concepts it mentions as the document `source`.
async fn put(cat: &SqliteCatalog, (source, text): (&str, &str)) -> cairn_core::Document {
    let mut c = chunk(text, 1.0);
    c.concepts = cairn_graph::extract(text, Lang::En);
    cat.put_document(doc("t", source, &[]), vec![c])
        .await
        .unwrap()
}

/// Issue 23's test of exactness: ingest A, B and C, delete B, and the graph (concepts,
/// aliases from merges, mentions, edges and their weights) is the graph of A and C
/// ingested into a fresh catalog.
#[tokio::test]
async fn after_a_delete_the_graph_is_the_graph_of_what_remains() {
    let texts = [
        (
            "a.md",
            "The Logical Volume Manager (LVM) resizes a Volume Group. \
             Debian installs the Volume Group tools with apt-get install lvm2.",
        ),
        (
            "b.md",
            "Grow a Volume Group with LVM before you resize the File System. \
             The Network File System (NFS) exports a File System over the network.",
        ),
        (
            "c.md",
            "A File System lives on a Volume Group. LVM snapshots need a Volume Group \
             with free space. Debian keeps the File System tools in e2fsprogs.",
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let cat = open(&tmp).await;
    put(&cat, texts[0]).await;
    let b = put(&cat, texts[1]).await;
    put(&cat, texts[2]).await;
    let with_b = graph_of(&cat).await;
    cat.delete_document(&b.id).await.unwrap();
    let after = graph_of(&cat).await;

    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = open(&fresh_dir).await;
    put(&fresh, texts[0]).await;
    put(&fresh, texts[2]).await;
    let expected = graph_of(&fresh).await;

    assert_eq!(after, expected);
    assert_ne!(
        with_b, expected,
        "B changed the graph, so the test can fail"
    );
    assert!(
        with_b.0.iter().any(|c| c.contains("b.md")),
        "{:#?}",
        with_b.0
    );
    assert!(!expected.1.is_empty(), "edges are compared too");
}
