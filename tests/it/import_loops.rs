//! The import-loop check (issue 14, item 4): reads `src/`, builds the file-level module dependency
//! graph and fails, naming the cycle, if two files import each other directly or transitively.
//!
//! An edge goes from a file to the file that defines what it names through `use crate::a::b`,
//! `super::x`, `self::x`, a bare child path (`routes::x` where `mod routes;` is declared) or a
//! module alias brought in by a `use`, in `use` trees and in code alike. A name a `mod.rs` re-exports
//! from a child resolves to the child, so a parent that only declares and re-exports its children is
//! not a loop; a child that uses an item *defined* in its parent while the parent uses the child is.
//! A `pub use` whose name the file does not use itself is a re-export, not an edge. Comments, doc
//! comments, string literals and `#[cfg(test)]` items (and the files of `#[cfg(test)] mod x;`) are
//! ignored. `use` of outside crates and paths this check cannot map to a gm module add no edge.
//!
//! No loop is tolerated: [`KNOWN_LOOPS`] is empty, and an entry there would need the reason it
//! cannot be broken yet; any other loop fails. This is a plain std-only test: no tools beyond `cargo test`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

/// Loops found when the check was added, in folders whose owners break them (each entry is the set
/// of files of one strongly connected component, `src/`-relative). A listed loop that grows fails;
/// one that disappears must be deleted here.
const KNOWN_LOOPS: &[&[&str]] = &[];

/// One `src/` file after stripping.
struct File {
    /// `src/`-relative path with `/` separators, e.g. `probe/checks.rs`.
    rel: String,
    /// Module path, e.g. `["probe", "checks"]`; empty for `lib.rs`.
    module: Vec<String>,
    /// Tokens of the code without comments, literals and `#[cfg(test)]` items.
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    text: String,
    line: usize,
}

/// One import as written: the path, the name it binds, whether it is `pub` and where it is.
#[derive(Debug, Clone)]
struct Import {
    path: Vec<String>,
    name: String,
    public: bool,
    line: usize,
}

/// Why a file depends on another: the first place it does so.
#[derive(Debug, Clone)]
struct Reason {
    line: usize,
    path: String,
}

/// The dependency graph: file index -> (file index -> first reason).
struct Graph {
    files: Vec<File>,
    edges: BTreeMap<usize, BTreeMap<usize, Reason>>,
}

fn blank(c: char) -> char {
    if c == '\n' {
        '\n'
    } else {
        ' '
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `src` with comments, string/char literals blanked out (newlines kept, so lines still count).
fn strip_comments_and_literals(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let at = |i: usize| b.get(i).copied();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while let Some(c) = at(i) {
        let next = at(i + 1);
        // `br"..."` is a raw string too: look past a lone `b`.
        let before = if i > 0 && at(i - 1) == Some('b') { i.checked_sub(2) } else { i.checked_sub(1) };
        let prev_ident = i > 0 && before.and_then(at).is_some_and(is_ident_char);
        if c == '/' && next == Some('/') {
            while let Some(c) = at(i) {
                if c == '\n' {
                    break;
                }
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0usize;
            while let Some(c) = at(i) {
                if c == '/' && at(i + 1) == Some('*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c == '*' && at(i + 1) == Some('/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(c));
                    i += 1;
                }
            }
        } else if c == 'r'
            && !prev_ident
            && matches!(next, Some('"') | Some('#'))
            && raw_string_hashes(&b, i + 1).is_some()
        {
            let hashes = raw_string_hashes(&b, i + 1).unwrap_or(0);
            let mut j = i + 1 + hashes + 1;
            loop {
                match at(j) {
                    None => break,
                    Some('"') if (1..=hashes).all(|h| at(j + h) == Some('#')) => {
                        j += 1 + hashes;
                        break;
                    }
                    Some(_) => j += 1,
                }
            }
            out.extend(b.iter().take(j).skip(i).map(|&c| blank(c)));
            i = j;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while let Some(c) = at(i) {
                out.push(blank(c));
                i += 1;
                if c == '\\' {
                    if let Some(e) = at(i) {
                        out.push(blank(e));
                        i += 1;
                    }
                } else if c == '"' {
                    break;
                }
            }
        } else if c == '\'' && next == Some('\\') {
            // An escaped char literal: '\n', '\'', '\u{1F600}'.
            out.push_str("  ");
            i += 2;
            let mut first = true;
            while let Some(c) = at(i) {
                out.push(blank(c));
                i += 1;
                if c == '\'' && !first {
                    break;
                }
                first = false;
            }
        } else if c == '\'' && at(i + 2) == Some('\'') {
            out.push_str("   ");
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// With `b[start]` after an `r`: the number of `#` before the opening `"` of a raw string, if it is one.
fn raw_string_hashes(b: &[char], start: usize) -> Option<usize> {
    let mut n = 0;
    loop {
        match b.get(start + n) {
            Some('#') => n += 1,
            Some('"') => return Some(n),
            _ => return None,
        }
    }
}

/// `code` (already stripped) without the items marked `#[cfg(test)]`.
fn strip_cfg_test(code: &str) -> String {
    const ATTR: &str = "#[cfg(test)]";
    let chars: Vec<char> = code.chars().collect();
    let mut out: Vec<char> = chars.clone();
    let text: String = chars.iter().collect();
    let mut search = 0;
    while let Some(found) = text.get(search..).and_then(|t| t.find(ATTR)) {
        let start_byte = search + found;
        let start = text[..start_byte].chars().count();
        let mut j = start + ATTR.chars().count();
        let mut depth = 0i32;
        while let Some(&c) = chars.get(j) {
            j += 1;
            match c {
                '{' | '(' | '[' => depth += 1,
                ')' | ']' => depth -= 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                ';' if depth == 0 => break,
                _ => {}
            }
        }
        for slot in out.iter_mut().take(j).skip(start) {
            *slot = blank(*slot);
        }
        search = text.char_indices().nth(j).map_or(text.len(), |(b, _)| b);
    }
    out.into_iter().collect()
}

/// Identifiers, `::` and single punctuation characters, each with its line.
fn tokenize(code: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            line += 1;
        } else if c.is_whitespace() {
        } else if is_ident_char(c) {
            let mut text = String::from(c);
            while let Some(&n) = chars.peek() {
                if !is_ident_char(n) {
                    break;
                }
                text.push(n);
                chars.next();
            }
            tokens.push(Token { text, line });
        } else if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            tokens.push(Token { text: "::".into(), line });
        } else {
            tokens.push(Token { text: c.to_string(), line });
        }
    }
    tokens
}

fn text(tokens: &[Token], i: usize) -> &str {
    tokens.get(i).map_or("", |t| t.text.as_str())
}

/// Parses the use tree at `tokens[*pos]` under `prefix`, appending the imports it binds.
fn parse_use_tree(tokens: &[Token], pos: &mut usize, prefix: Vec<String>, public: bool, out: &mut Vec<Import>) {
    let mut path = prefix;
    let line = tokens.get(*pos).map_or(0, |t| t.line);
    loop {
        match text(tokens, *pos) {
            "{" => {
                *pos += 1;
                loop {
                    match text(tokens, *pos) {
                        "}" => {
                            *pos += 1;
                            return;
                        }
                        "," => *pos += 1,
                        "" => return,
                        _ => parse_use_tree(tokens, pos, path.clone(), public, out),
                    }
                }
            }
            "*" => {
                *pos += 1;
                return;
            }
            "::" => *pos += 1,
            t if t.chars().all(is_ident_char) && !t.is_empty() => {
                let segment = t.to_string();
                *pos += 1;
                if text(tokens, *pos) == "::" {
                    path.push(segment);
                    continue;
                }
                let mut name =
                    if segment == "self" { path.last().cloned().unwrap_or_default() } else { segment.clone() };
                if segment != "self" {
                    path.push(segment);
                }
                if text(tokens, *pos) == "as" {
                    name = text(tokens, *pos + 1).to_string();
                    *pos += 2;
                }
                out.push(Import { path, name, public, line });
                return;
            }
            _ => return,
        }
    }
}

/// The `use` declarations of `tokens` and the indexes of the tokens they cover.
fn imports(tokens: &[Token]) -> (Vec<Import>, BTreeSet<usize>) {
    let mut found = Vec::new();
    let mut covered = BTreeSet::new();
    let mut i = 0;
    while i < tokens.len() {
        if text(tokens, i) == "use" && (i == 0 || matches!(text(tokens, i - 1), ";" | "}" | "{" | "]" | ")" | "pub")) {
            let public = text(tokens, i.wrapping_sub(1)) == "pub"
                || (text(tokens, i.wrapping_sub(1)) == ")"
                    && tokens[..i].iter().rev().take(5).any(|t| t.text == "pub"));
            let start = i;
            let mut pos = i + 1;
            parse_use_tree(tokens, &mut pos, Vec::new(), public, &mut found);
            while pos < tokens.len() && text(tokens, pos) != ";" {
                pos += 1;
            }
            covered.extend(start..=pos);
            i = pos + 1;
        } else {
            i += 1;
        }
    }
    (found, covered)
}

/// Paths in code (outside `use`): each maximal `a::b::c` not preceded by `::`, with its line.
fn code_paths(tokens: &[Token], covered: &BTreeSet<usize>) -> Vec<(Vec<String>, usize)> {
    let mut paths = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let starts = !covered.contains(&i)
            && text(tokens, i).chars().all(is_ident_char)
            && text(tokens, i + 1) == "::"
            && text(tokens, i.wrapping_sub(1)) != "::";
        if !starts {
            i += 1;
            continue;
        }
        let line = tokens[i].line;
        let mut path = vec![tokens[i].text.clone()];
        let mut j = i + 1;
        while text(tokens, j) == "::"
            && text(tokens, j + 1).chars().all(is_ident_char)
            && !text(tokens, j + 1).is_empty()
        {
            path.push(tokens[j + 1].text.clone());
            j += 2;
        }
        paths.push((path, line));
        i = j;
    }
    paths
}

/// Declared child modules (`mod x;`, `pub mod x;`) of a file's tokens.
fn declared_children(tokens: &[Token]) -> BTreeSet<String> {
    let mut children = BTreeSet::new();
    for (i, t) in tokens.iter().enumerate() {
        if t.text == "mod" && text(tokens, i + 2) == ";" {
            children.insert(text(tokens, i + 1).to_string());
        }
    }
    children
}

/// The absolute module path `path` names from `module` (with its declared `children` and the module
/// `aliases` its `use`s bring in), or `None` for paths outside gm (std, other crates, local names).
fn absolute(
    module: &[String],
    children: &BTreeSet<String>,
    aliases: &BTreeMap<String, Vec<String>>,
    path: &[String],
) -> Option<Vec<String>> {
    let first = path.first()?;
    let (mut abs, rest): (Vec<String>, &[String]) = match first.as_str() {
        "crate" => (Vec::new(), &path[1..]),
        "self" => (module.to_vec(), &path[1..]),
        "super" => {
            let mut abs = module.to_vec();
            let mut rest = path;
            while rest.first().is_some_and(|s| s == "super") {
                abs.pop()?;
                rest = &rest[1..];
            }
            (abs, rest)
        }
        name if children.contains(name) => (module.to_vec(), path),
        name => (aliases.get(name)?.clone(), &path[1..]),
    };
    abs.extend(rest.iter().cloned());
    Some(abs)
}

fn module_of(rel: &str) -> Vec<String> {
    let trimmed = rel.trim_end_matches(".rs");
    let mut parts: Vec<String> = trimmed.split('/').map(str::to_string).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

impl Graph {
    /// Builds the graph of `sources` (`src/`-relative path, text). Files not reached through `mod`
    /// declarations from `lib.rs` (the binary's `main.rs`, `#[cfg(test)] mod x;` files) are left out.
    fn build(sources: &[(String, String)]) -> Graph {
        let mut all: BTreeMap<Vec<String>, File> = BTreeMap::new();
        for (rel, src) in sources {
            if rel == "main.rs" {
                continue;
            }
            let code = strip_cfg_test(&strip_comments_and_literals(src));
            all.insert(module_of(rel), File { rel: rel.clone(), module: module_of(rel), tokens: tokenize(&code) });
        }
        // Keep what lib.rs reaches.
        let mut reached = BTreeSet::new();
        let mut queue = VecDeque::from([Vec::<String>::new()]);
        while let Some(m) = queue.pop_front() {
            let Some(file) = all.get(&m) else { continue };
            if !reached.insert(m.clone()) {
                continue;
            }
            for child in declared_children(&file.tokens) {
                let mut c = m.clone();
                c.push(child);
                queue.push_back(c);
            }
        }
        let files: Vec<File> = all.into_iter().filter(|(m, _)| reached.contains(m)).map(|(_, f)| f).collect();
        let index: BTreeMap<Vec<String>, usize> =
            files.iter().enumerate().map(|(i, f)| (f.module.clone(), i)).collect();
        let parsed: Vec<(Vec<Import>, BTreeSet<usize>, BTreeSet<String>)> = files
            .iter()
            .map(|f| {
                let (imports, covered) = imports(&f.tokens);
                (imports, covered, declared_children(&f.tokens))
            })
            .collect();
        let mut graph = Graph { files, edges: BTreeMap::new() };
        for (from, (imports, covered, children)) in parsed.iter().enumerate() {
            let module = graph.files[from].module.clone();
            let used: BTreeSet<&str> = graph.files[from]
                .tokens
                .iter()
                .enumerate()
                .filter(|(i, _)| !covered.contains(i))
                .map(|(_, t)| t.text.as_str())
                .collect();
            let mut aliases: BTreeMap<String, Vec<String>> = BTreeMap::new();
            let mut targets: Vec<(Vec<String>, Reason)> = Vec::new();
            for import in imports {
                let Some(abs) = absolute(&module, children, &BTreeMap::new(), &import.path) else { continue };
                if index.contains_key(&abs) {
                    aliases.insert(import.name.clone(), abs);
                    continue;
                }
                if import.public && !used.contains(import.name.as_str()) {
                    continue;
                }
                targets.push((abs, Reason { line: import.line, path: format!("use {}", import.path.join("::")) }));
            }
            for (path, line) in code_paths(&graph.files[from].tokens, covered) {
                if let Some(abs) = absolute(&module, children, &aliases, &path) {
                    targets.push((abs, Reason { line, path: path.join("::") }));
                }
            }
            for (abs, reason) in targets {
                if let Some(to) = graph.defining_file(&index, &parsed, &abs) {
                    if to != from {
                        graph.edges.entry(from).or_default().entry(to).or_insert(reason);
                    }
                }
            }
        }
        graph
    }

    /// The file defining the item at absolute path `abs`, following `mod.rs` re-exports.
    fn defining_file(
        &self,
        index: &BTreeMap<Vec<String>, usize>,
        parsed: &[(Vec<Import>, BTreeSet<usize>, BTreeSet<String>)],
        abs: &[String],
    ) -> Option<usize> {
        let mut abs = abs.to_vec();
        for _ in 0..16 {
            let (len, file) = (0..=abs.len()).rev().find_map(|n| index.get(&abs[..n]).map(|f| (n, *f)))?;
            let Some(name) = abs.get(len) else { return Some(file) };
            let (imports, _, children) = &parsed[file];
            let module = &self.files[file].module;
            let Some(source) = imports
                .iter()
                .filter(|i| i.public && &i.name == name)
                .find_map(|i| absolute(module, children, &BTreeMap::new(), &i.path))
            else {
                return Some(file);
            };
            let mut next = source;
            next.extend(abs[len + 1..].iter().cloned());
            if next == abs {
                return Some(file);
            }
            abs = next;
        }
        None
    }

    /// Strongly connected components with more than one file (Tarjan), each sorted.
    fn loops(&self) -> Vec<Vec<usize>> {
        struct Tarjan<'a> {
            edges: &'a BTreeMap<usize, BTreeMap<usize, Reason>>,
            index: Vec<Option<usize>>,
            low: Vec<usize>,
            on_stack: Vec<bool>,
            stack: Vec<usize>,
            next: usize,
            found: Vec<Vec<usize>>,
        }
        impl Tarjan<'_> {
            fn visit(&mut self, v: usize) {
                self.index[v] = Some(self.next);
                self.low[v] = self.next;
                self.next += 1;
                self.stack.push(v);
                self.on_stack[v] = true;
                for &w in self.edges.get(&v).map(|e| e.keys().copied().collect::<Vec<_>>()).unwrap_or_default().iter() {
                    match self.index[w] {
                        None => {
                            self.visit(w);
                            self.low[v] = self.low[v].min(self.low[w]);
                        }
                        Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                        Some(_) => {}
                    }
                }
                if Some(self.low[v]) == self.index[v] {
                    let mut component = Vec::new();
                    while let Some(w) = self.stack.pop() {
                        self.on_stack[w] = false;
                        component.push(w);
                        if w == v {
                            break;
                        }
                    }
                    if component.len() > 1 {
                        component.sort_unstable();
                        self.found.push(component);
                    }
                }
            }
        }
        let n = self.files.len();
        let mut t = Tarjan {
            edges: &self.edges,
            index: vec![None; n],
            low: vec![0; n],
            on_stack: vec![false; n],
            stack: Vec::new(),
            next: 0,
            found: Vec::new(),
        };
        for v in 0..n {
            if t.index[v].is_none() {
                t.visit(v);
            }
        }
        t.found.sort();
        t.found
    }

    /// One cycle through the component, as `a.rs:12 (use crate::b::X) -> b.rs:3 (super::Y) -> a.rs`.
    fn describe(&self, component: &[usize]) -> String {
        let members: BTreeSet<usize> = component.iter().copied().collect();
        let start = component[0];
        // Breadth-first from `start` inside the component back to `start`.
        let mut previous: BTreeMap<usize, usize> = BTreeMap::new();
        let mut queue = VecDeque::from([start]);
        let mut closing = None;
        'search: while let Some(v) = queue.pop_front() {
            for &w in self.edges.get(&v).map(|e| e.keys().copied().collect::<Vec<_>>()).unwrap_or_default().iter() {
                if !members.contains(&w) {
                    continue;
                }
                if w == start {
                    closing = Some(v);
                    break 'search;
                }
                if let std::collections::btree_map::Entry::Vacant(e) = previous.entry(w) {
                    e.insert(v);
                    queue.push_back(w);
                }
            }
        }
        let mut path = vec![start];
        let mut v = closing.unwrap_or(start);
        while v != start {
            path.push(v);
            v = previous[&v];
        }
        path[1..].reverse();
        path.push(start);
        let mut out = String::new();
        for pair in path.windows(2) {
            let reason = &self.edges[&pair[0]][&pair[1]];
            out.push_str(&format!("src/{}:{} ({}) -> ", self.files[pair[0]].rel, reason.line, reason.path));
        }
        out.push_str(&format!("src/{}", self.files[start].rel));
        out
    }

    fn rels(&self, component: &[usize]) -> BTreeSet<String> {
        component.iter().map(|&i| self.files[i].rel.clone()).collect()
    }
}

fn read_sources(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
                out.push((rel, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn no_two_files_in_src_import_each_other_directly_or_transitively() {
    let graph = Graph::build(&read_sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src")));
    assert!(graph.files.len() > 100, "read only {} files of src/", graph.files.len());
    let known: Vec<BTreeSet<String>> = KNOWN_LOOPS.iter().map(|l| l.iter().map(|s| s.to_string()).collect()).collect();
    let loops = graph.loops();
    let mut problems = Vec::new();
    for component in &loops {
        if !known.contains(&graph.rels(component)) {
            problems.push(format!(
                "import loop: {}\n  (all files of this loop: {:?})",
                graph.describe(component),
                graph.rels(component)
            ));
        }
    }
    for listed in &known {
        if !loops.iter().any(|c| &graph.rels(c) == listed) {
            problems.push(format!("KNOWN_LOOPS lists {listed:?}, which is no longer a loop: delete the entry"));
        }
    }
    assert!(
        problems.is_empty(),
        "{}\nhint: move what both files need into a file both import (e.g. a types file), or pass it in as a value",
        problems.join("\n")
    );
}

fn fixture(files: &[(&str, &str)]) -> Vec<String> {
    let sources: Vec<(String, String)> = files.iter().map(|(r, s)| (r.to_string(), s.to_string())).collect();
    let graph = Graph::build(&sources);
    graph.loops().iter().map(|c| graph.describe(c)).collect()
}

#[test]
fn a_parent_that_only_declares_and_reexports_its_children_is_not_a_loop() {
    let loops = fixture(&[
        ("lib.rs", "pub mod p;"),
        ("p/mod.rs", "mod a;\nmod types;\npub use a::run;\npub use types::{Opts, Kind};"),
        ("p/types.rs", "pub struct Opts;\npub enum Kind { A }"),
        ("p/a.rs", "use super::Opts;\nuse crate::p::Kind;\npub fn run(_: Opts, _: Kind) {}"),
    ]);
    assert_eq!(loops, Vec::<String>::new());
}

#[test]
fn a_child_using_an_item_defined_in_its_parent_that_calls_the_child_is_a_loop() {
    let loops = fixture(&[
        ("lib.rs", "pub mod p;"),
        ("p/mod.rs", "mod a;\n/// uses a::run in docs only\npub struct Opts;\npub fn go() { a::run(Opts) }"),
        ("p/a.rs", "// super::nothing\nuse super::Opts;\npub fn run(_: Opts) {}"),
    ]);
    assert_eq!(loops, vec!["src/p/mod.rs:4 (a::run) -> src/p/a.rs:2 (use super::Opts) -> src/p/mod.rs"]);
}

#[test]
fn transitive_loops_are_found_and_comments_strings_and_test_modules_are_not_imports() {
    let loops = fixture(&[
        ("lib.rs", "pub mod x;\npub mod y;\npub mod z;\n#[cfg(test)]\nmod t;"),
        ("x.rs", "use crate::y::Y;\npub struct X(Y);"),
        ("y.rs", "pub struct Y(crate::z::Z);\nconst S: &str = \"crate::x::X\";"),
        ("z.rs", "pub struct Z;\n/* use crate::x::X; */\n#[cfg(test)]\nmod tests { use crate::x::X; }\nfn f() -> char { '\"' }\nfn g() { let _ = crate::x::X; }"),
        ("t.rs", "use crate::x::X;"),
    ]);
    assert_eq!(
        loops,
        vec!["src/x.rs:1 (use crate::y::Y) -> src/y.rs:1 (crate::z::Z) -> src/z.rs:6 (crate::x::X) -> src/x.rs"]
    );
}
