use cairn_core::{ChunkId, Lang};
use cairn_graph::{CommunitySettings, Settings, assemble, detect, extract};
use std::io::BufRead;
use std::time::Instant;

fn main() {
    let n: usize = std::env::args().nth(1).unwrap().parse().unwrap();
    let path = std::env::args().nth(2).unwrap();
    let f = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut ev = Vec::new();
    let t = Instant::now();
    for (i, line) in f.lines().take(n).enumerate() {
        let line = line.unwrap();
        let start = line.find("\"text\": \"").unwrap() + 9;
        let text = &line[start..line.len() - 2];
        ev.push((ChunkId(i as i64), extract(text, Lang::En)));
    }
    eprintln!("extract {:?}", t.elapsed());
    let t = Instant::now();
    let g = assemble(ev.iter().map(|(i, c)| (*i, c)), &Settings::default());
    eprintln!(
        "assemble {:?}: {} concepts {} edges",
        t.elapsed(),
        g.concepts.len(),
        g.edges.len()
    );
    let t = Instant::now();
    let c = detect(&g, &CommunitySettings::default());
    eprintln!(
        "detect {:?}: {} communities, {} levels",
        t.elapsed(),
        c.list.len(),
        c.levels()
    );
    for lvl in 0..c.levels() {
        let sizes: Vec<usize> = c
            .list
            .iter()
            .filter(|x| x.level == lvl)
            .map(|x| x.concepts.len())
            .collect();
        let mut s = sizes.clone();
        s.sort_unstable_by(|a, b| b.cmp(a));
        eprintln!(
            "level {lvl}: {} communities; largest {:?}",
            sizes.len(),
            &s[..s.len().min(10)]
        );
    }
    for x in c.list.iter().filter(|x| x.level == 0).take(12) {
        let names: Vec<&str> = x
            .concepts
            .iter()
            .take(8)
            .map(|&i| g.concepts[i].key.as_str())
            .collect();
        eprintln!(
            "[{}] {} concepts {} chunks: {}",
            x.id,
            x.concepts.len(),
            x.chunks.len(),
            names.join(", ")
        );
    }
    let leaves: Vec<_> = c
        .list
        .iter()
        .filter(|x| x.children.is_empty() && x.level > 0)
        .take(8)
        .collect();
    for x in leaves {
        let names: Vec<&str> = x
            .concepts
            .iter()
            .take(8)
            .map(|&i| g.concepts[i].key.as_str())
            .collect();
        eprintln!(
            "leaf [{}] {} concepts: {}",
            x.id,
            x.concepts.len(),
            names.join(", ")
        );
    }
}
