//! Keeps the relay's layer order (docs/architecture.md, "Layers") true: every `crate::` path in
//! `relay/src` must point to the same module or to a lower layer, and no two source files may
//! import each other. Reading the sources is cheap and needs no build of anything else; the
//! table below is the one in docs/architecture.md, so changing one means changing the other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The relay's modules, lowest layer first. A path belongs to its longest matching prefix.
const LAYERS: &[(&str, u8)] = &[
    ("tls", 0),
    ("cluster::config", 0),
    ("store::config", 0),
    ("config", 1),
    ("metrics", 2),
    ("cluster::metrics", 2),
    ("history", 2),
    ("limits", 2),
    ("auth", 2),
    ("store", 2),
    ("outbox", 3),
    ("cluster", 4),
    ("matchmaker", 5),
    ("state", 6),
    ("session", 7),
    ("http", 8),
    ("cli", 9),
    ("server", 9),
];

/// The table entry a module path belongs to.
fn unit(path: &str) -> Option<(&'static str, u8)> {
    LAYERS
        .iter()
        .filter(|(prefix, _)| path == *prefix || path.starts_with(&format!("{prefix}::")))
        .max_by_key(|(prefix, _)| prefix.len())
        .copied()
}

/// One source file: its module path (`cluster::link`) and its text.
struct Source {
    module: String,
    text: String,
}

fn read_sources(dir: &Path, module: &str, out: &mut Vec<Source>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("relay/src is readable")
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 file name")
            .to_owned();
        let join = |child: &str| {
            if module.is_empty() {
                child.to_owned()
            } else {
                format!("{module}::{child}")
            }
        };
        if path.is_dir() {
            read_sources(&path, &join(&name), out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let module = match name.as_str() {
                "mod" => module.to_owned(),
                "lib" | "main" => continue, // the crate root only declares modules
                _ => join(&name),
            };
            let text = std::fs::read_to_string(&path).expect("source is readable");
            out.push(Source { module, text });
        }
    }
}

/// The code of a file without comments (doc links name modules too, and may point anywhere)
/// and without its test module (tests may reach into whatever they test).
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    code.lines().map(|line| match line.find("//") {
        Some(at) => &line[..at],
        None => line,
    })
}

/// Every module path a file names: `crate::a::b` anywhere in its code, and `super::x` /
/// `self::x` / a child module in its `use` lines (for the file-to-file graph).
fn imports(source: &Source, modules: &BTreeSet<String>) -> Vec<String> {
    let mut found = Vec::new();
    let parent = source
        .module
        .rsplit_once("::")
        .map_or(String::new(), |(p, _)| p.to_owned());
    for line in code_lines(&source.text) {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let path: String = rest[at + 7..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            found.push(path.trim_end_matches(':').to_owned());
            rest = &rest[at + 7..];
        }
        let Some(used) = line.trim().strip_prefix("use ") else {
            continue;
        };
        let path: String = used
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let path = path.trim_end_matches(':');
        let (base, tail) = path.split_once("::").unwrap_or((path, ""));
        let from = match base {
            "super" => parent.clone(),
            "self" => source.module.clone(),
            // A child module of this one (`use publisher::Publisher` in cluster/mod.rs).
            child if modules.contains(&format!("{}::{child}", source.module)) => {
                format!("{}::{path}", source.module)
            }
            _ => continue,
        };
        let full = match (base, tail) {
            ("super" | "self", "") => from,
            ("super" | "self", tail) if from.is_empty() => tail.to_owned(),
            ("super" | "self", tail) => format!("{from}::{tail}"),
            _ => from,
        };
        found.push(full);
    }
    found
}

/// The file (module) a path lands in: its longest prefix that is a source file.
fn file_of(path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|m| modules.contains(m))
}

/// Every breach of the layer order and every pair of files importing each other.
fn check(sources: &[Source]) -> Vec<String> {
    let modules: BTreeSet<String> = sources.iter().map(|s| s.module.clone()).collect();
    let mut problems = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for source in sources {
        let Some((from_unit, from_layer)) = unit(&source.module) else {
            problems.push(format!("{} is in no layer of the table", source.module));
            continue;
        };
        for path in imports(source, &modules) {
            if let Some(file) = file_of(&path, &modules) {
                if file != source.module {
                    edges.entry(source.module.clone()).or_default().insert(file);
                }
            }
            let Some((to_unit, to_layer)) = unit(&path) else {
                continue; // `super::*` in a test module and the like: inside the same file
            };
            if to_unit != from_unit && to_layer >= from_layer {
                problems.push(format!(
                    "{} (layer {from_layer}) imports {path} (layer {to_layer})",
                    source.module
                ));
            }
        }
    }
    for (from, targets) in &edges {
        for to in targets {
            if from < to && edges.get(to).is_some_and(|back| back.contains(from)) {
                problems.push(format!("{from} and {to} import each other"));
            }
        }
    }
    problems
}

#[test]
fn relay_imports_follow_the_layer_order() {
    let mut sources = Vec::new();
    read_sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        "",
        &mut sources,
    );
    assert!(sources.len() > 20, "read the relay's sources");
    let problems = check(&sources);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_check_catches_an_upward_import_and_a_cycle() {
    let source = |module: &str, text: &str| Source {
        module: module.to_owned(),
        text: text.to_owned(),
    };
    let sources = [
        source("outbox", "use crate::session::Peers;\n"),
        source("session", "// use crate::http::x; is a comment\n"),
        source("cluster", "pub mod link;\nuse link::Task;\n"),
        source("cluster::link", "use super::Cluster;\n"),
    ];
    let problems = check(&sources);
    assert_eq!(
        problems,
        [
            "outbox (layer 3) imports session::Peers (layer 7)",
            "cluster and cluster::link import each other",
        ]
    );
}
