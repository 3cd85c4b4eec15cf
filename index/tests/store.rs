//! The embedded store end to end: SQLite catalog, tantivy and HNSW in one data dir. What
//! is acknowledged survives reopening, lost or stale indexes are rebuilt from the catalog,
//! and a data dir has one owner and one embedding model.

use cairn_core::{
    Acl, Catalog, DocumentStore, ErrorKind, Lang, NewChunk, NewDocument, Principal, Scope, Seq,
    Span,
};
use cairn_index::{SqliteCatalog, Store, StoreOptions};
use std::path::Path;

const DIMS: usize = 4;

fn options(dir: &Path) -> StoreOptions {
    StoreOptions {
        data_dir: dir.to_path_buf(),
        embedder_id: "test-embedder".into(),
        dims: DIMS,
    }
}

fn new_doc(source: &str) -> NewDocument {
    NewDocument {
        title: format!("Notes on {source}"),
        origin: cairn_core::Origin::upload(source).unwrap(),
        mime: "text/markdown".into(),
        content_hash: format!("h-{source}"),
        chunker: "pack-v1".into(),
        acl: Acl::tenant_wide("acme"),
        pages: 1,
    }
}

fn new_chunk(text: &str, axis: usize) -> NewChunk {
    let mut embedding = vec![0.0; DIMS];
    embedding[axis % DIMS] = 1.0;
    NewChunk {
        text: text.into(),
        page: 1,
        span: Span::new(0, text.len()),
        heading_path: vec!["Guide".into()],
        token_count: 4,
        lang: Lang::En,
        embedding,
        pieces: Vec::new(),
        concepts: Default::default(),
    }
}

fn scope(store: &Store) -> Scope {
    Scope {
        principal: Principal::new("acme", vec![]),
        doc_ids: None,
        max_seq: store.visible_seq(),
    }
}

/// Lexical hits for `query`, as chunk texts.
async fn lexical_texts(store: &Store, query: &str) -> Vec<String> {
    let hits = store
        .lexical()
        .search(query, 10, &scope(store))
        .await
        .unwrap();
    let ids: Vec<_> = hits.iter().map(|h| h.chunk_id).collect();
    let mut texts: Vec<String> = store
        .catalog()
        .get_chunks(&ids)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.text)
        .collect();
    texts.sort();
    texts
}

#[tokio::test]
async fn writes_are_searchable_and_survive_a_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let (doc, seq) = {
        let store = Store::open_embedded(options(tmp.path())).await.unwrap();
        assert_eq!(store.visible_seq(), Seq(0));
        let doc = store
            .put_document(
                new_doc("kiwi.md"),
                vec![
                    new_chunk("kiwis are flightless birds", 0),
                    new_chunk("penguins swim", 1),
                ],
            )
            .await
            .unwrap();
        store
            .put_document(new_doc("oak.md"), vec![new_chunk("oaks are trees", 2)])
            .await
            .unwrap();
        let seq = store
            .delete_document(
                &store
                    .find_by_origin("acme", &cairn_core::Origin::upload("oak.md").unwrap())
                    .await
                    .unwrap()
                    .unwrap()
                    .id,
            )
            .await
            .unwrap();
        assert_eq!(store.visible_seq(), seq);
        assert_eq!(
            lexical_texts(&store, "birds").await,
            ["kiwis are flightless birds"]
        );
        assert!(lexical_texts(&store, "trees").await.is_empty());
        let dense = store
            .vectors()
            .search(&[0.0, 1.0, 0.0, 0.0], 1, &scope(&store))
            .await
            .unwrap();
        let chunks = store.catalog().chunks_of(&doc.id).await.unwrap();
        assert_eq!(dense[0].chunk_id, chunks[1].id);
        assert!(store.check_consistency().await.unwrap().is_consistent());
        // No flush: whatever the indexes did not persist is replayed from the catalog.
        (doc, seq)
    };

    let store = Store::open_embedded(options(tmp.path())).await.unwrap();
    assert_eq!(store.visible_seq(), seq);
    assert_eq!(
        store
            .catalog()
            .get_document(&doc.id)
            .await
            .unwrap()
            .unwrap(),
        doc
    );
    assert_eq!(lexical_texts(&store, "penguins").await, ["penguins swim"]);
    let report = store.check_consistency().await.unwrap();
    assert!(report.is_consistent(), "{report:?}");
    assert_eq!(report.catalog_chunks, 2);
}

#[tokio::test]
async fn writes_acknowledged_by_the_catalog_alone_are_indexed_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    drop(Store::open_embedded(options(tmp.path())).await.unwrap());
    // As if the process died right after the catalog commit, before any index applied it.
    {
        let catalog = SqliteCatalog::open(&tmp.path().join("catalog.sqlite"))
            .await
            .unwrap();
        catalog
            .put_document(new_doc("late.md"), vec![new_chunk("a late arrival", 0)])
            .await
            .unwrap();
        catalog.close().await;
    }
    let store = Store::open_embedded(options(tmp.path())).await.unwrap();
    assert_eq!(store.visible_seq(), Seq(1));
    assert_eq!(lexical_texts(&store, "arrival").await, ["a late arrival"]);
    assert!(store.check_consistency().await.unwrap().is_consistent());
}

#[tokio::test]
async fn lost_or_corrupt_indexes_are_rebuilt_from_the_catalog() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let store = Store::open_embedded(options(tmp.path())).await.unwrap();
        for i in 0..5 {
            let text = format!("chunk number {i} about rivers");
            store
                .put_document(new_doc(&format!("d{i}.md")), vec![new_chunk(&text, i)])
                .await
                .unwrap();
        }
        store.flush().await.unwrap();
    }
    std::fs::remove_dir_all(tmp.path().join("lexical")).unwrap();
    for entry in std::fs::read_dir(tmp.path().join("vectors")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::write(&path, b"garbage").unwrap();
        }
    }
    let store = Store::open_embedded(options(tmp.path())).await.unwrap();
    assert_eq!(store.visible_seq(), Seq(5));
    assert_eq!(lexical_texts(&store, "rivers").await.len(), 5);
    let report = store.check_consistency().await.unwrap();
    assert!(report.is_consistent(), "{report:?}");
    assert!(report.indexes.iter().all(|i| i.live_chunks == 5));
}

#[tokio::test]
async fn a_data_dir_has_one_owner() {
    let tmp = tempfile::tempdir().unwrap();
    let first = Store::open_embedded(options(tmp.path())).await.unwrap();
    let err = Store::open_embedded(options(tmp.path())).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(
        err.message.contains("in use by another cairn process"),
        "{}",
        err.message
    );
    drop(first);
    Store::open_embedded(options(tmp.path())).await.unwrap();
}

#[tokio::test]
async fn another_embedding_model_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    drop(Store::open_embedded(options(tmp.path())).await.unwrap());
    let other = StoreOptions {
        embedder_id: "bigger-model".into(),
        dims: 8,
        ..options(tmp.path())
    };
    let err = Store::open_embedded(other).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(
        err.message.starts_with(
            "this index was built with embedding model test-embedder (4 dims) but the configured model is bigger-model (8 dims)"
        ),
        "{}",
        err.message
    );
    // The refusal released the data dir and changed nothing.
    let store = Store::open_embedded(options(tmp.path())).await.unwrap();
    assert_eq!(
        store
            .catalog()
            .meta_get("embedder_id")
            .await
            .unwrap()
            .as_deref(),
        Some("test-embedder")
    );
}

/// Stores one chunk of `text`, with the concepts it mentions, as `source` under `acl`.
async fn put_with_concepts(
    store: &Store,
    source: &str,
    acl: Acl,
    text: &str,
) -> cairn_core::Document {
    let mut chunk = new_chunk(text, 0);
    chunk.concepts = cairn_graph::extract(text, Lang::En);
    let doc = NewDocument {
        acl,
        ..new_doc(source)
    };
    store.put_document(doc, vec![chunk]).await.unwrap()
}

/// The graph as a third derived index of the embedded store: caught up from the log when
/// added (and after a reopen, when it starts empty), and each caller's graph assembled from
/// the chunks they may read: another tenant's or another group's concepts never appear,
/// and a deleted document's are gone from the next graph.
#[tokio::test]
async fn the_graph_index_follows_the_store_and_each_caller_sees_only_readable_concepts() {
    use cairn_graph::{GraphIndex, Settings};
    use std::sync::Arc;

    let tmp = tempfile::tempdir().unwrap();
    let hr = Acl {
        tenant: "acme".into(),
        groups: vec!["hr".into()],
    };
    let (public, secret) = {
        let store = Store::open_embedded(options(tmp.path())).await.unwrap();
        let public = put_with_concepts(
            &store,
            "public.md",
            Acl::tenant_wide("acme"),
            "Resize the Volume Group with the Logical Volume Manager.",
        )
        .await;
        let secret = put_with_concepts(
            &store,
            "salaries.md",
            hr.clone(),
            "The Salary Review Board meets in March.",
        )
        .await;
        put_with_concepts(
            &store,
            "other.md",
            Acl::tenant_wide("globex"),
            "See the Merger Plan and the Acquisition Target.",
        )
        .await;
        (public, secret)
    };

    // Reopened, the graph index starts empty and is caught up from the catalog.
    let graph = Arc::new(GraphIndex::new());
    let store = Store::open_embedded(options(tmp.path()))
        .await
        .unwrap()
        .with_index(graph.clone())
        .unwrap();
    assert_eq!(
        store.visible_seq(),
        Seq(0),
        "nothing visible before catch-up"
    );
    let last = store.sync().await.unwrap();
    assert_eq!(store.visible_seq(), last);
    assert_eq!(cairn_core::DerivedIndex::live_count(&*graph), 3);
    assert!(store.check_consistency().await.unwrap().is_consistent());

    let loose = Settings {
        min_chunks: 1,
        min_pair: 1,
    };
    let keys = |tenant: &str, groups: &[&str]| -> Vec<String> {
        let scope = Scope {
            principal: Principal::new(tenant, groups.iter().map(|g| g.to_string()).collect()),
            doc_ids: None,
            max_seq: store.visible_seq(),
        };
        let g = graph.graph_for(&scope, &loose);
        g.concepts.iter().map(|c| c.key.clone()).collect()
    };
    let acme = keys("acme", &[]);
    assert!(
        acme.contains(&"logical volume manager".to_string()),
        "{acme:?}"
    );
    assert!(!acme.iter().any(|k| k.contains("salary")), "{acme:?}");
    assert!(!acme.iter().any(|k| k.contains("merger")), "{acme:?}");
    let in_hr = keys("acme", &["hr"]);
    assert!(
        in_hr.contains(&"salary review board".to_string()),
        "{in_hr:?}"
    );
    assert!(!in_hr.iter().any(|k| k.contains("merger")), "{in_hr:?}");
    let globex = keys("globex", &[]);
    assert_eq!(globex, ["acquisition target", "merger plan"]);

    // A deleted document's concepts are gone from the next graph.
    store.delete_document(&secret.id).await.unwrap();
    assert!(!keys("acme", &["hr"]).iter().any(|k| k.contains("salary")));
    assert_eq!(keys("acme", &["hr"]), keys("acme", &[]));
    store.delete_document(&public.id).await.unwrap();
    assert!(keys("acme", &[]).is_empty());
    assert!(store.check_consistency().await.unwrap().is_consistent());
}
