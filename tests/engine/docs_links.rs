//! Every relative link in README.md and docs/*.md resolves inside the
//! repository: the file exists, it does not leave the repository, and an
//! anchor (`file.md#heading`, `#heading`) names a heading of that file, as
//! GitHub renders it. Links to other sites are not checked.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

/// The markdown files whose links are checked.
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut docs = vec![root.join("README.md")];
    let mut in_docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ is readable")
        .map(|e| e.expect("a docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    in_docs.sort();
    docs.extend(in_docs);
    docs
}

/// The lines of `text` outside fenced code blocks, with their numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            lines.push((i + 1, line));
        }
    }
    lines
}

/// `line` without its inline code spans (a link inside backticks is text).
fn without_code_spans(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_code = false;
    for c in line.chars() {
        if c == '`' {
            in_code = !in_code;
            // Keep the structure: `[`x`](y)` is still a link.
            out.push(' ');
        } else if !in_code {
            out.push(c);
        } else {
            out.push('x');
        }
    }
    out
}

/// The targets of the inline links `[text](target)` in `text` (outside
/// code), with their line numbers.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in prose_lines(text) {
        let line = without_code_spans(line);
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            let target = after[..end].trim();
            // `[text](target "title")`: the title is not part of the target.
            let target = target.split_whitespace().next().unwrap_or("");
            found.push((n, target.to_string()));
            rest = &after[end..];
        }
    }
    found
}

/// The anchor GitHub gives a heading: lower case, punctuation removed
/// (letters, digits, `-`, `_` and spaces kept), spaces as `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .chars()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every anchor of a markdown file (repeated headings get `-1`, `-2`, ...).
fn anchors(text: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    for (_, line) in prose_lines(text) {
        let trimmed = line.trim_start();
        let hashes = trimmed.chars().take_while(|c| *c == '#').count();
        if hashes == 0 || hashes > 6 || !trimmed[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(&trimmed[hashes..]);
        let mut anchor = base.clone();
        let mut n = 0;
        while seen.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        seen.insert(anchor);
    }
    seen
}

/// `path` with `.` and `..` resolved lexically; `None` if it climbs above
/// its start.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop()?;
            }
            Component::Normal(part) => out.push(part),
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out.iter().collect())
}

/// Whether `target` points at another site (not checked).
fn is_external(target: &str) -> bool {
    target.contains("://") || target.starts_with("mailto:")
}

#[test]
fn relative_links_and_anchors_in_the_docs_resolve_inside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut broken = Vec::new();
    let mut checked = 0;
    for doc in documents(root) {
        let text = std::fs::read_to_string(&doc).expect("a readable markdown file");
        let rel_doc = doc.strip_prefix(root).expect("inside the repository").to_path_buf();
        for (line, target) in links(&text) {
            if target.is_empty() || is_external(&target) {
                continue;
            }
            checked += 1;
            let (file, anchor) = match target.split_once('#') {
                Some((file, anchor)) => (file, Some(anchor)),
                None => (target.as_str(), None),
            };
            let where_ = format!("{}:{line}: ({target})", rel_doc.display());
            let linked = if file.is_empty() {
                Some(rel_doc.clone())
            } else {
                normalize(&rel_doc.parent().unwrap_or(Path::new("")).join(file))
            };
            let Some(linked) = linked else {
                broken.push(format!("{where_} leaves the repository"));
                continue;
            };
            let full = root.join(&linked);
            if !full.exists() {
                broken.push(format!("{where_} names {}, which does not exist", linked.display()));
                continue;
            }
            if let Some(anchor) = anchor {
                if full.extension().is_some_and(|e| e == "md") {
                    let linked_text = std::fs::read_to_string(&full).expect("a readable markdown file");
                    if !anchors(&linked_text).contains(anchor) {
                        broken.push(format!("{where_}: {} has no heading with the anchor #{anchor}", linked.display()));
                    }
                }
            }
        }
    }
    assert!(checked > 10, "only {checked} relative links found: is the parser broken?");
    assert!(broken.is_empty(), "broken links in the docs:\n{}", broken.join("\n"));
}

#[test]
fn slugs_follow_github() {
    assert_eq!(slug("Shutting down: drain on SIGINT and SIGTERM"), "shutting-down-drain-on-sigint-and-sigterm");
    assert_eq!(slug("Ingest: `POST /ingest`"), "ingest-post-ingest");
    assert_eq!(slug("`Job::run_blocking` — from a plain `main`"), "jobrun_blocking--from-a-plain-main");
    assert_eq!(slug("Metrics: finding the bottleneck"), "metrics-finding-the-bottleneck");
    let text = "# A\n## Dup\n```\n# not a heading\n```\n## Dup\n";
    let got = anchors(text);
    assert!(got.contains("a") && got.contains("dup") && got.contains("dup-1") && !got.contains("not-a-heading"));
}

#[test]
fn links_are_found_outside_code_only() {
    let text = "See [a](a.md) and `[b](b.md)`.\n```\n[c](c.md)\n```\n[d](d.md#x \"title\")";
    let got: Vec<String> = links(text).into_iter().map(|(_, t)| t).collect();
    assert_eq!(got, vec!["a.md".to_string(), "d.md#x".to_string()]);
}
