//! The layering ARCHITECTURE.md promises, checked from the sources and the lock file:
//! no top-level module of any crate is in an import cycle with another, and the engine's
//! dependency tree holds no HTTP server and no database.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const CRATES: [&str; 6] = ["contract", "seccomp", "registry", "engine", "daemon", "cli"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ has a parent")
        .to_owned()
}

/// `from -> to -> files`: which top-level modules of a crate name which others
/// (`crate::to` anywhere in a file below `from`, including `use crate::{to, ...}`).
type Imports = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn top_level_modules(src: &Path) -> BTreeSet<String> {
    std::fs::read_dir(src)
        .unwrap_or_else(|err| panic!("read {}: {err}", src.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !matches!(name.as_str(), "lib.rs" | "main.rs"))
        .map(|name| name.trim_end_matches(".rs").to_owned())
        .collect()
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// The module names a file refers to through `crate::`.
fn referenced_modules(text: &str) -> BTreeSet<String> {
    let word = |text: &str| -> String {
        text.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        match rest.strip_prefix('{') {
            Some(group) => {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                for item in group.split(',') {
                    names.insert(word(item.trim()));
                }
            }
            None => {
                names.insert(word(rest));
            }
        }
    }
    names
}

fn imports_of(krate: &str) -> Imports {
    let src = workspace().join(krate).join("src");
    let modules = top_level_modules(&src);
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut imports = Imports::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap().as_os_str();
        let from = first.to_string_lossy().trim_end_matches(".rs").to_owned();
        if !modules.contains(&from) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for to in referenced_modules(&text) {
            if to != from && modules.contains(&to) {
                imports
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_default()
                    .insert(relative.display().to_string());
            }
        }
    }
    imports
}

/// The strongly connected components with more than one module (Tarjan's algorithm).
fn cycles(imports: &Imports) -> Vec<Vec<String>> {
    struct Search<'a> {
        imports: &'a Imports,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Search<'a> {
        fn visit(&mut self, module: &'a str) {
            let index = self.index.len();
            self.index.insert(module, index);
            self.low.insert(module, index);
            self.stack.push(module);
            for next in self
                .imports
                .get(module)
                .into_iter()
                .flat_map(|to| to.keys())
            {
                if !self.index.contains_key(next.as_str()) {
                    self.visit(next);
                    let low = self.low[module].min(self.low[next.as_str()]);
                    self.low.insert(module, low);
                } else if self.stack.contains(&next.as_str()) {
                    let low = self.low[module].min(self.index[next.as_str()]);
                    self.low.insert(module, low);
                }
            }
            if self.low[module] == self.index[module] {
                let at = self.stack.iter().position(|m| *m == module).unwrap();
                let component: Vec<String> = self.stack.drain(at..).map(str::to_owned).collect();
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
        }
    }
    let mut search = Search {
        imports,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for module in imports.keys() {
        if !search.index.contains_key(module.as_str()) {
            search.visit(module);
        }
    }
    search.found
}

#[test]
fn no_top_level_module_of_any_crate_is_in_an_import_cycle() {
    let mut report = String::new();
    for krate in CRATES {
        let imports = imports_of(krate);
        for component in cycles(&imports) {
            report.push_str(&format!("{krate}: cycle {component:?}\n"));
            for from in &component {
                for (to, files) in &imports[from] {
                    if component.contains(to) {
                        report.push_str(&format!("  {from} -> {to} in {files:?}\n"));
                    }
                }
            }
        }
    }
    assert!(report.is_empty(), "{report}");
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let source = |pairs: &[(&str, &str)]| -> Imports {
        let mut imports = Imports::new();
        for (from, to) in pairs {
            imports
                .entry(from.to_string())
                .or_default()
                .insert(to.to_string(), BTreeSet::new());
        }
        imports
    };
    let found = cycles(&source(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]));
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].iter().collect::<BTreeSet<_>>(),
        ["a", "b", "c"]
            .iter()
            .map(|m| m.to_string())
            .collect::<BTreeSet<_>>()
            .iter()
            .collect()
    );
    assert!(cycles(&source(&[("a", "b"), ("b", "c")])).is_empty());
    assert_eq!(
        referenced_modules("use crate::{archive::x, sys};\nlet y = crate::cache::key();"),
        ["archive", "cache", "sys"].map(String::from).into()
    );
}

/// Every package the lock file says `package` depends on, directly or not. Dev and
/// build dependencies are included, so this over-approximates what the engine links.
fn locked_dependencies(package: &str) -> BTreeSet<String> {
    let lock = std::fs::read_to_string(workspace().join("Cargo.lock")).unwrap();
    let mut dependencies: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for block in lock.split("[[package]]").skip(1) {
        let name = block
            .lines()
            .find_map(|line| line.strip_prefix("name = "))
            .map(|name| name.trim_matches('"').to_owned())
            .unwrap();
        let listed = block
            .split_once("dependencies = [")
            .map(|(_, rest)| rest.split_once(']').unwrap().0)
            .unwrap_or("");
        let names = listed
            .split(',')
            .map(|item| item.trim().trim_matches('"'))
            .filter(|item| !item.is_empty())
            .map(|item| item.split(' ').next().unwrap().to_owned())
            .collect();
        dependencies
            .entry(name)
            .or_default()
            .extend::<Vec<_>>(names);
    }
    let mut seen = BTreeSet::new();
    let mut todo = vec![package.to_owned()];
    while let Some(next) = todo.pop() {
        for dependency in dependencies.get(&next).into_iter().flatten() {
            if seen.insert(dependency.clone()) {
                todo.push(dependency.clone());
            }
        }
    }
    seen
}

#[test]
fn the_engine_depends_on_no_http_server_and_no_database() {
    let engine = locked_dependencies("hermetic");
    assert!(
        engine.contains("blake3"),
        "the lock file was not read: {engine:?}"
    );
    for server_or_database in ["axum", "hyper", "rusqlite", "libsqlite3-sys"] {
        assert!(
            !engine.contains(server_or_database),
            "the engine depends on {server_or_database}"
        );
    }
    let daemon = locked_dependencies("hermetic-daemon");
    assert!(daemon.contains("axum") && daemon.contains("rusqlite"));
}

#[test]
fn the_contract_depends_on_serde_alone() {
    let mut serde = BTreeSet::from(["serde".to_owned(), "serde_json".to_owned()]);
    serde.extend(locked_dependencies("serde"));
    serde.extend(locked_dependencies("serde_json"));
    let contract = locked_dependencies("hermetic-contract");
    let outside_serde: Vec<_> = contract.difference(&serde).collect();
    assert!(outside_serde.is_empty(), "{outside_serde:?}");
}
