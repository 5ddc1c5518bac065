//! Recorded HTTP exchanges. `corral run --record DIR` keeps each request a run's guest
//! made and the answer it got, as the guest saw them, in `DIR/<instance>.jsonl`; a run
//! given a [`Tape`] of them is answered from it, with no network. Nothing secret is
//! kept: the guest names secrets and never holds their values (the host fills them in
//! after this point), and answers are recorded as the guest got them, scrubbed of every
//! secret value in every encoding the redactor knows.

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// One request and its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exchange {
    pub method: String,
    /// The URL as the guest asked for it.
    pub url: String,
    /// The guest's own headers (a secret appears only as its `{{secret:NAME}}` reference).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_headers: Vec<(String, String)>,
    /// The credentials the guest asked for, by reference (`bearer:NAME`,
    /// `basic:USER:NAME`); a replayed request must ask for the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body: Option<Body>,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    /// Where the answer came from (after redirects), as the guest was shown it.
    pub final_url: String,
}

/// Bytes as text when they are UTF-8 (as JSON and most bodies are), else as numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Body {
    Text(String),
    Bytes { bytes: Vec<u8> },
}

impl Body {
    pub fn of(bytes: Vec<u8>) -> Body {
        match String::from_utf8(bytes) {
            Ok(text) => Body::Text(text),
            Err(e) => Body::Bytes {
                bytes: e.into_bytes(),
            },
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Body::Text(t) => t.into_bytes(),
            Body::Bytes { bytes } => bytes,
        }
    }
}

/// The file of an instance's recordings in `dir`. Instance ids are checked when the
/// configuration is read (lower-case letters, digits, `-`, `_`), so the name stays
/// inside `dir`.
pub fn file_of(dir: &Path, instance: &str) -> PathBuf {
    dir.join(format!("{instance}.jsonl"))
}

/// Most bytes one run records; past them, exchanges are counted, not written (the
/// recording is then incomplete, and says so).
pub const MAX_RECORDED_BYTES: u64 = 1 << 30;

/// Writes a run's exchanges, one JSON line each, as they complete.
pub struct Recorder {
    path: PathBuf,
    file: Mutex<std::io::BufWriter<std::fs::File>>,
    written: AtomicU64,
    /// Whether an exchange was left out (past [`MAX_RECORDED_BYTES`], or a write failed).
    incomplete: AtomicBool,
}

impl Recorder {
    /// Starts `dir/<instance>.jsonl` afresh.
    pub fn create(dir: &Path, instance: &str) -> std::io::Result<Recorder> {
        std::fs::create_dir_all(dir)?;
        let path = file_of(dir, instance);
        let file = create_no_follow(&path)?;
        Ok(Recorder {
            path,
            file: Mutex::new(std::io::BufWriter::new(file)),
            written: AtomicU64::new(0),
            incomplete: AtomicBool::new(false),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `e`; past the byte bound, or on a write error, marks the recording
    /// incomplete instead.
    pub fn write(&self, e: &Exchange) {
        let Ok(mut line) = serde_json::to_vec(e) else {
            self.incomplete.store(true, Ordering::Relaxed);
            return;
        };
        line.push(b'\n');
        let total = self
            .written
            .fetch_add(line.len() as u64, Ordering::Relaxed)
            .saturating_add(line.len() as u64);
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if total > MAX_RECORDED_BYTES || file.write_all(&line).and_then(|_| file.flush()).is_err() {
            self.incomplete.store(true, Ordering::Relaxed);
        }
    }

    pub fn incomplete(&self) -> bool {
        self.incomplete.load(Ordering::Relaxed)
    }
}

/// Creates (or truncates) `path` for writing, refusing a symbolic link there: a
/// directory someone else prepared must not send the writes elsewhere.
pub fn create_no_follow(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// What a request is matched by: method, URL, body and credentials by reference.
type Key = (String, String, Option<Vec<u8>>, Option<String>);

/// Recorded answers, each given once, in the order they were recorded for their request.
pub struct Tape {
    answers: Mutex<HashMap<Key, VecDeque<Exchange>>>,
    path: PathBuf,
}

impl Tape {
    /// Reads `dir/<instance>.jsonl`; an unreadable file or line is an error naming it.
    pub fn load(dir: &Path, instance: &str) -> anyhow::Result<Tape> {
        let path = file_of(dir, instance);
        let file = std::fs::File::open(&path).map_err(|e| {
            anyhow::anyhow!(
                "{}: no recording for instance {instance}: {e}",
                path.display()
            )
        })?;
        let mut answers: HashMap<Key, VecDeque<Exchange>> = HashMap::new();
        for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line =
                line.map_err(|e| anyhow::anyhow!("{}: line {}: {e}", path.display(), n + 1))?;
            if line.trim().is_empty() {
                continue;
            }
            let e: Exchange = serde_json::from_str(&line)
                .map_err(|e| anyhow::anyhow!("{}: line {}: {e}", path.display(), n + 1))?;
            answers.entry(key_of(&e)).or_default().push_back(e);
        }
        Ok(Tape {
            answers: Mutex::new(answers),
            path,
        })
    }

    /// The next recorded answer to this request, or an error naming the request.
    pub fn answer(
        &self,
        method: &str,
        url: &str,
        body: Option<&[u8]>,
        auth: Option<&str>,
    ) -> Result<Exchange, String> {
        let key = (
            method.to_string(),
            url.to_string(),
            body.map(<[u8]>::to_vec),
            auth.map(String::from),
        );
        let mut answers = self.answers.lock().unwrap_or_else(|p| p.into_inner());
        match answers.get_mut(&key).and_then(VecDeque::pop_front) {
            Some(e) => Ok(e),
            None => Err(format!(
                "no recording of {method} {url}{}{} in {}",
                auth.map(|a| format!(" with {a}")).unwrap_or_default(),
                if answers.contains_key(&key) {
                    " left (each recorded answer is given once)"
                } else {
                    ""
                },
                self.path.display()
            )),
        }
    }
}

impl Tape {
    /// The recorded answers no request took, as `METHOD URL` (a run that made fewer
    /// requests than the recording did behaves differently).
    pub fn unused(&self) -> Vec<String> {
        let answers = self.answers.lock().unwrap_or_else(|p| p.into_inner());
        let mut left: Vec<String> = answers
            .values()
            .flatten()
            .map(|e| format!("{} {}", e.method, e.url))
            .collect();
        left.sort();
        left
    }
}

fn key_of(e: &Exchange) -> Key {
    (
        e.method.clone(),
        e.url.clone(),
        e.request_body.clone().map(Body::into_bytes),
        e.auth.clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(url: &str, status: u16, body: &[u8]) -> Exchange {
        Exchange {
            method: "GET".into(),
            url: url.into(),
            request_headers: vec![("authorization".into(), "Bearer {{secret:token}}".into())],
            request_body: None,
            auth: None,
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Body::of(body.to_vec()),
            final_url: url.into(),
        }
    }

    #[test]
    fn recorded_answers_are_given_once_each_in_order() {
        let dir = std::env::temp_dir().join(format!("corral-tape-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let rec = Recorder::create(&dir, "i").unwrap();
        rec.write(&exchange("https://x/a", 429, b"{}"));
        rec.write(&exchange("https://x/a", 200, b"[1]"));
        rec.write(&exchange("https://x/bin", 200, &[0xff, 0x00, 0xfe]));
        assert!(!rec.incomplete());
        let tape = Tape::load(&dir, "i").unwrap();
        assert_eq!(
            tape.answer("GET", "https://x/a", None, None)
                .unwrap()
                .status,
            429
        );
        assert_eq!(
            tape.answer("GET", "https://x/a", None, None)
                .unwrap()
                .status,
            200
        );
        let spent = tape.answer("GET", "https://x/a", None, None).unwrap_err();
        assert!(
            spent.contains("no recording of GET https://x/a left"),
            "{spent}"
        );
        let other = tape.answer("POST", "https://x/a", None, None).unwrap_err();
        assert!(
            other.starts_with("no recording of POST https://x/a in "),
            "{other}"
        );
        assert_eq!(tape.unused(), ["GET https://x/bin"]);
        let bin = tape.answer("GET", "https://x/bin", None, None).unwrap();
        assert_eq!(bin.body.into_bytes(), vec![0xff, 0x00, 0xfe]);
        assert!(tape.unused().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_replayed_request_must_ask_for_the_same_credentials() {
        let dir = std::env::temp_dir().join(format!("corral-tape-auth-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let rec = Recorder::create(&dir, "i").unwrap();
        let mut e = exchange("https://x/a", 200, b"{}");
        e.auth = Some("bearer:token".into());
        rec.write(&e);
        let tape = Tape::load(&dir, "i").unwrap();
        let without = tape.answer("GET", "https://x/a", None, None).unwrap_err();
        assert!(
            without.starts_with("no recording of GET https://x/a in "),
            "{without}"
        );
        let other = tape
            .answer("GET", "https://x/a", None, Some("bearer:other"))
            .unwrap_err();
        assert!(other.contains("with bearer:other"), "{other}");
        assert!(
            tape.answer("GET", "https://x/a", None, Some("bearer:token"))
                .is_ok()
        );
        // The recorder does not write through a link someone left in its directory.
        let _ = std::fs::remove_file(file_of(&dir, "j"));
        std::os::unix::fs::symlink(dir.join("elsewhere"), file_of(&dir, "j")).unwrap();
        assert!(Recorder::create(&dir, "j").is_err());
        assert!(!dir.join("elsewhere").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_recording_is_an_error_naming_its_line() {
        let dir = std::env::temp_dir().join(format!("corral-tape-bad-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(file_of(&dir, "i"), "\n{\"method\":\"GET\"}\n").unwrap();
        let err = Tape::load(&dir, "i").err().unwrap().to_string();
        assert!(err.contains("i.jsonl: line 2"), "{err}");
        let missing = Tape::load(&dir, "other").err().unwrap().to_string();
        assert!(
            missing.contains("no recording for instance other"),
            "{missing}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
