//! The import directions the design promises, read from the source: the
//! front ends (`commands/`, `cli.rs`, the Python package) sit on the
//! library and nothing in the library reaches back up to them; the numeric
//! kernels are a leaf (nothing of the model, the state, the store or the
//! operations); and no two files import each other, directly or round a
//! loop.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A source file's module path (`src/model/fused.rs` -> `model::fused`).
type Module = Vec<String>;

struct Crate {
    root: PathBuf,
    /// Module -> its file's text (comments dropped).
    files: BTreeMap<Module, String>,
}

fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The code of a file without its comment lines (doc links name paths).
fn code_of(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .map(|l| l.split(" // ").next().unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

impl Crate {
    fn read(root: &Path) -> Crate {
        let src = root.join("src");
        let mut paths = Vec::new();
        rust_files(&src, &mut paths);
        let files = paths
            .iter()
            .filter(|p| !p.ends_with("main.rs"))
            .map(|p| {
                (
                    module_of(&src, p),
                    code_of(&std::fs::read_to_string(p).unwrap()),
                )
            })
            .collect();
        Crate {
            root: root.to_path_buf(),
            files,
        }
    }

    /// Where a path's item lives: the deepest module the path names, or,
    /// when that module only re-exports the item (`pub use sub::Item`),
    /// the module it comes from.
    fn resolve(&self, path: &[String]) -> Option<Module> {
        let mut module: Module = Vec::new();
        let mut rest = path;
        while let Some((first, tail)) = rest.split_first() {
            let mut next = module.clone();
            next.push(first.clone());
            if !self.files.contains_key(&next) {
                break;
            }
            module = next;
            rest = tail;
        }
        let item = rest.first()?;
        let text = self.files.get(&module)?;
        for line in text.lines().map(str::trim) {
            let Some(reexport) = line.strip_prefix("pub use ") else {
                continue;
            };
            let (source, names) = reexport
                .split_once("::{")
                .map(|(s, n)| (s.to_string(), n.to_string()))
                .unwrap_or_else(|| {
                    let (s, n) = reexport.rsplit_once("::").unwrap_or(("", reexport));
                    (s.to_string(), n.to_string())
                });
            let names_item = names
                .split(|c: char| c == ',' || c == '}' || c == ';' || c.is_whitespace())
                .any(|n| n == item.as_str());
            if names_item && !source.is_empty() {
                let mut target = module.clone();
                target.extend(
                    source
                        .trim_start_matches("self::")
                        .split("::")
                        .map(String::from),
                );
                if let Some(found) = self.resolve_module_prefix(&target) {
                    return Some(found);
                }
            }
        }
        Some(module)
    }

    fn resolve_module_prefix(&self, path: &[String]) -> Option<Module> {
        (1..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|m| self.files.contains_key(m))
    }

    /// Every module a file imports from (its `pub use` re-exports aside),
    /// with the item names it takes.
    fn imports_of(&self, module: &Module) -> BTreeSet<Module> {
        let text = &self.files[module];
        let mut out = BTreeSet::new();
        for path in paths_in(text) {
            let (anchor, rest) = path.split_first().unwrap();
            let mut full: Module = match anchor.as_str() {
                "crate" => Vec::new(),
                _ => {
                    // `super::` from a file: its parent module (a `mod.rs`
                    // is its folder's module, so its parent is one up).
                    let supers = path.iter().take_while(|s| *s == "super").count();
                    let mut base = module.clone();
                    for _ in 0..supers {
                        base.pop();
                    }
                    let tail = path[supers..].to_vec();
                    base.extend(tail);
                    if let Some(target) = self.resolve(&base) {
                        if target != *module && self.defines(&target, &base) {
                            out.insert(target);
                        }
                    }
                    continue;
                }
            };
            full.extend(rest.iter().cloned());
            if let Some(target) = self.resolve(&full) {
                if target != *module {
                    out.insert(target);
                }
            }
        }
        out
    }

    /// Whether the resolved module really holds the path (a `super::` in
    /// an inline `mod tests` means the file itself).
    fn defines(&self, target: &Module, path: &[String]) -> bool {
        let Some(item) = path.get(target.len()) else {
            return true;
        };
        let text = &self.files[target];
        let mut child = target.clone();
        child.push(item.clone());
        self.files.contains_key(&child)
            || text.contains(&format!(" {item}("))
            || text.contains(&format!(" {item}<"))
            || text.contains(&format!(" {item} "))
            || text.contains(&format!(" {item}:"))
            || text.contains(&format!("{item},"))
            || text.contains(&format!("{item}}}"))
            || text.contains(&format!("::{item};"))
    }
}

/// Every `crate::...` and `super::...` path in the code, `use` groups
/// expanded (`use crate::a::{b, c::d}` gives `crate::a::b`, `crate::a::c::d`),
/// `pub use` lines left out.
fn paths_in(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("pub use "))
        .collect::<Vec<_>>()
        .join("\n");
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let starts = ["crate::", "super::"].iter().find(|p| {
            code[char_offset(&code, i)..].starts_with(**p)
                && (i == 0 || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_'))
        });
        let Some(_) = starts else {
            i += 1;
            continue;
        };
        let (path, end) = read_path(&bytes, i);
        out.extend(path);
        i = end.max(i + 1);
    }
    out
}

fn char_offset(s: &str, chars: usize) -> usize {
    s.char_indices().nth(chars).map_or(s.len(), |(o, _)| o)
}

/// Reads `a::b::{c, d::e}` from `at`: the full paths, and where it ended.
fn read_path(chars: &[char], at: usize) -> (Vec<Vec<String>>, usize) {
    let mut segments = Vec::new();
    let mut i = at;
    loop {
        let start = i;
        while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
            i += 1;
        }
        if i > start {
            segments.push(chars[start..i].iter().collect::<String>());
        }
        if i + 1 < chars.len() && chars[i] == ':' && chars[i + 1] == ':' {
            i += 2;
            if i < chars.len() && chars[i] == '{' {
                let mut depth = 0;
                let mut j = i;
                while j < chars.len() {
                    match chars[j] {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                let inner: String = chars[i + 1..j.min(chars.len())].iter().collect();
                let mut paths = Vec::new();
                for item in split_top(&inner) {
                    let item = item.trim();
                    if item.is_empty() || item == "self" {
                        paths.push(segments.clone());
                        continue;
                    }
                    let item_chars: Vec<char> = item.chars().collect();
                    let (subs, _) = read_path(&item_chars, 0);
                    for sub in subs {
                        let mut full = segments.clone();
                        full.extend(sub.into_iter().filter(|s| s != "self"));
                        paths.push(full);
                    }
                }
                return (paths, j + 1);
            }
            continue;
        }
        return (vec![segments], i);
    }
}

/// Splits on commas not inside braces.
fn split_top(text: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut depth = 0;
    for c in text.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(String::new());
                continue;
            }
            _ => {}
        }
        parts.last_mut().unwrap().push(c);
    }
    parts
}

fn name(m: &Module) -> String {
    if m.is_empty() {
        "lib.rs".into()
    } else {
        m.join("/")
    }
}

fn graph(krate: &Crate) -> BTreeMap<Module, BTreeSet<Module>> {
    krate
        .files
        .keys()
        .map(|m| (m.clone(), krate.imports_of(m)))
        .collect()
}

/// One cycle through the graph, if there is any.
fn find_cycle(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Option<Vec<Module>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        m: &Module,
        graph: &BTreeMap<Module, BTreeSet<Module>>,
        marks: &mut BTreeMap<Module, Mark>,
        stack: &mut Vec<Module>,
    ) -> Option<Vec<Module>> {
        match marks.get(m) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let from = stack.iter().position(|s| s == m).unwrap();
                let mut cycle = stack[from..].to_vec();
                cycle.push(m.clone());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(m.clone(), Mark::Open);
        stack.push(m.clone());
        for next in graph.get(m).into_iter().flatten() {
            if let Some(c) = visit(next, graph, marks, stack) {
                return Some(c);
            }
        }
        stack.pop();
        marks.insert(m.clone(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for m in graph.keys() {
        if let Some(c) = visit(m, graph, &mut marks, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

fn crate_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_reader_sees_real_imports() {
    // The check below is only as good as this reader: it must see a
    // grouped `use`, a re-export and a `super::` path for what they are.
    let krate = Crate::read(&crate_root());
    let g = graph(&krate);
    let of = |m: &str| g[&m.split('/').map(String::from).collect::<Module>()].clone();
    let fused = of("model/fused");
    for expected in [
        "kernels/gemm",
        "kernels/cells",
        "kernels/team",
        "model/config",
        "state/layout",
    ] {
        let m: Module = expected.split('/').map(String::from).collect();
        assert!(
            fused.contains(&m),
            "model/fused imports {expected}; read: {:?}",
            fused.iter().map(name).collect::<Vec<_>>()
        );
    }
    let streams = of("ops/streams");
    assert!(streams.contains(&vec!["ops".to_string(), "model_handle".to_string()]));
    assert!(krate.root.join("src/lib.rs").exists());
    // A cycle is found when there is one.
    let mut looped = g.clone();
    looped
        .get_mut(&vec!["kernels".to_string(), "gemm".to_string()])
        .unwrap()
        .insert(vec!["model".to_string(), "fused".to_string()]);
    assert!(find_cycle(&looped).is_some());
}

#[test]
fn imports_run_one_way() {
    let krate = Crate::read(&crate_root());
    let g = graph(&krate);
    let front_ends = ["commands", "cli"];
    let mut wrong = Vec::new();
    for (m, imports) in &g {
        let top = m.first().map(String::as_str).unwrap_or("");
        for target in imports {
            let to = target.first().map(String::as_str).unwrap_or("");
            if !front_ends.contains(&top) && front_ends.contains(&to) {
                wrong.push(format!(
                    "{} imports the front end {}",
                    name(m),
                    name(target)
                ));
            }
            if top == "kernels" && ["model", "state", "store", "ops"].contains(&to) {
                wrong.push(format!("{} (a kernel) imports {}", name(m), name(target)));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the design:\n{}",
        wrong.join("\n")
    );
    if let Some(cycle) = find_cycle(&g) {
        panic!(
            "files import each other round a loop: {}",
            cycle.iter().map(name).collect::<Vec<_>>().join(" -> ")
        );
    }
}

#[test]
fn the_python_package_uses_the_library_not_the_cli() {
    let mut files = Vec::new();
    rust_files(&crate_root().join("python/src"), &mut files);
    assert!(!files.is_empty());
    for file in files {
        let code = code_of(&std::fs::read_to_string(&file).unwrap());
        for banned in ["statectl::cli", "statectl::commands"] {
            assert!(
                !code.contains(banned),
                "{} uses {banned}: the Python package calls the operations (statectl::ops)",
                file.display()
            );
        }
    }
}
