//! `--ignore-tool` / `--allow-tool`, as mcp-remote offers them: tools the user does not want the
//! agent to see are removed from every `tools/list` result (both eras), and a `tools/call` of one
//! is answered by the bridge with an error naming it, never sent to the server.
//!
//! Precedence: an `--ignore-tool` match always hides a tool; when `--allow-tool` patterns are
//! given, only tools matching one of them are shown. Patterns are globs where `*` matches any
//! run of characters (nothing else is special), compared case-insensitively — twenty lines that
//! do not need a crate.

use std::collections::{BTreeSet, HashSet};
use std::sync::Mutex;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::config::ToolPatterns;
use crate::jsonrpc::Id;
use crate::sync::lock;

/// Names of hidden tools remembered for the test client's report (a bound against a server
/// that invents new names forever).
const MAX_REMEMBERED: usize = 1000;

pub struct ToolFilter {
    /// Lower-cased patterns.
    ignore: Vec<String>,
    allow: Vec<String>,
    /// Ids of the client's `tools/list` requests in flight: their results are filtered.
    list_requests: Mutex<HashSet<Id>>,
    /// Tools removed from a listing so far, in name order.
    hidden: Mutex<BTreeSet<String>>,
}

impl ToolFilter {
    pub fn new(patterns: &ToolPatterns) -> Self {
        let lower = |v: &[String]| v.iter().map(|p| p.to_lowercase()).collect();
        Self {
            ignore: lower(&patterns.ignore),
            allow: lower(&patterns.allow),
            list_requests: Mutex::new(HashSet::new()),
            hidden: Mutex::new(BTreeSet::new()),
        }
    }

    /// Whether any pattern was given.
    pub fn is_active(&self) -> bool {
        !self.ignore.is_empty() || !self.allow.is_empty()
    }

    /// Whether the client may see and call the tool `name`.
    pub fn allows(&self, name: &str) -> bool {
        let name = name.to_lowercase();
        if self.ignore.iter().any(|p| glob_match(p, &name)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|p| glob_match(p, &name))
    }

    /// The error message for a `tools/call` of a hidden tool.
    pub fn refusal(&self, name: &str) -> String {
        format!("tool '{name}' is not available: the bridge hides it (--ignore-tool/--allow-tool)")
    }

    /// A `tools/list` request with this id is being sent: filter its result.
    pub fn expect_list(&self, id: &Id) {
        if self.is_active() {
            lock(&self.list_requests).insert(id.clone());
        }
    }

    /// The request failed without an answer from the server: stop watching for one.
    pub fn forget(&self, id: &Id) {
        lock(&self.list_requests).remove(id);
    }

    /// If `frame` answers a watched `tools/list`, return it with the hidden tools removed;
    /// otherwise return it unchanged.
    pub fn absorb(&self, id: Option<&Id>, frame: Vec<u8>) -> Vec<u8> {
        match id {
            Some(id) if lock(&self.list_requests).remove(id) => self.filter(frame),
            _ => frame,
        }
    }

    /// Tools removed from the listings so far, in name order.
    pub fn hidden(&self) -> Vec<String> {
        lock(&self.hidden).iter().cloned().collect()
    }

    fn filter(&self, frame: Vec<u8>) -> Vec<u8> {
        #[derive(Deserialize)]
        struct ToolsOnly<'a> {
            #[serde(borrow)]
            tools: &'a RawValue,
        }
        #[derive(Deserialize)]
        struct NameOnly {
            name: Option<String>,
        }
        // An error response, or a result that is not a tool list: nothing to hide in it.
        let Some(result) = crate::jsonrpc::result_raw(&frame) else {
            return frame;
        };
        let Ok(ToolsOnly { tools }) = serde_json::from_str(result.get()) else {
            return frame;
        };
        let Ok(list) = serde_json::from_str::<Vec<&RawValue>>(tools.get()) else {
            return frame;
        };
        let mut removed = Vec::new();
        let kept: Vec<&RawValue> = list
            .into_iter()
            .filter(|tool| {
                let name = serde_json::from_str::<NameOnly>(tool.get())
                    .ok()
                    .and_then(|t| t.name);
                match name {
                    Some(name) if !self.allows(&name) => {
                        removed.push(name);
                        false
                    }
                    _ => true,
                }
            })
            .collect();
        if removed.is_empty() {
            return frame;
        }
        log::debug!("tools/list: hiding {}", removed.join(", "));
        let mut hidden = lock(&self.hidden);
        for name in removed {
            if hidden.len() < MAX_REMEMBERED {
                hidden.insert(name);
            }
        }
        drop(hidden);
        crate::modern::splice_tools(&frame, tools, &kept).unwrap_or_else(|_| frame.clone())
    }
}

/// `*` matches any run of characters (also none); everything else matches itself. Greedy with
/// backtracking to the last `*` only, so it runs in O(pattern × name).
fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if let Some((star_pi, star_ni)) = star {
            pi = star_pi + 1;
            ni = star_ni + 1;
            star = Some((star_pi, star_ni + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(ignore: &[&str], allow: &[&str]) -> ToolFilter {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        ToolFilter::new(&ToolPatterns {
            ignore: owned(ignore),
            allow: owned(allow),
        })
    }

    #[test]
    fn globs_match_star_runs_and_nothing_else() {
        for (pattern, name) in [
            ("echo", "echo"),
            ("*", ""),
            ("*", "anything"),
            ("delete_*", "delete_file"),
            ("delete_*", "delete_"),
            ("*_file", "delete_file"),
            ("a*b*c", "axxbyyc"),
            ("a*b*c", "abcbc"),
            ("**x", "x"),
            ("t?ol", "t?ol"),
        ] {
            assert!(glob_match(pattern, name), "{pattern} vs {name}");
        }
        for (pattern, name) in [
            ("echo", "echo2"),
            ("echo", "ech"),
            ("delete_*", "undelete_file"),
            ("a*b*c", "axxbyy"),
            ("t?ol", "tool"),
            ("", "x"),
        ] {
            assert!(!glob_match(pattern, name), "{pattern} vs {name}");
        }
    }

    #[test]
    fn ignore_wins_over_allow_and_case_does_not_matter() {
        let f = filter(&["*SECRET*"], &["read_*", "list_*"]);
        assert!(f.allows("Read_File"));
        assert!(f.allows("list_dirs"));
        assert!(!f.allows("write_file"), "not on the allow-list");
        assert!(!f.allows("read_secret_file"), "ignored, though allowed");
        let none = filter(&[], &[]);
        assert!(!none.is_active() && none.allows("anything"));
    }

    #[test]
    fn a_watched_listing_loses_its_hidden_tools_and_keeps_the_rest_byte_for_byte() {
        let f = filter(&["delete_*"], &[]);
        let id = Id::Num(7);
        f.expect_list(&id);
        let frame = br#"{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"read", "x":1},{"name":"DELETE_all"},{"name":"write"}],"nextCursor":"c"}}"#;
        let out = f.absorb(Some(&id), frame.to_vec());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"read", "x":1},{"name":"write"}],"nextCursor":"c"}}"#
        );
        assert_eq!(f.hidden(), ["DELETE_all"]);
        // Answered once: the same id later is another request, not a listing.
        let again = f.absorb(Some(&id), frame.to_vec());
        assert_eq!(again, frame.to_vec());
    }
}
