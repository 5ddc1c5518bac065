//! The directory one run's output is built in, and how it replaces the previous run's.
//!
//! A run's output is built beside `DIR/<id>/` and swapped in whole, so a reader never
//! sees half a run. Building a fresh tree (a directory per step and kind, a file per
//! group of objects) and removing the old one made and freed about 40 inodes for each
//! small run; on ext4, finding a free inode past many just-freed ones was the largest
//! cost of delivering small runs in `corral serve` (`docs/benchmarks.md`). So the tree
//! a swap takes out, when it is small, is kept as `DIR/.<id>.spare`, and the next run
//! builds in it: finding a directory that is there and writing over a file that is
//! there allocate no inode. What the new run does not write is removed before its swap.

use crate::ownership::{private, user};
use anyhow::Context;
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Directories below the root a run writes: `graph/<step>/<kind>/`. A recycled tree
/// deeper than that was not written by a run and goes whole.
const MAX_DEPTH: usize = 3;

/// A tree being built for one run, fresh or recycled.
pub struct RunDir {
    root: PathBuf,
    /// What the recycled tree held when claimed (relative): removed unless written again.
    found_files: Vec<PathBuf>,
    found_dirs: Vec<PathBuf>,
    written: HashSet<PathBuf>,
    /// Directories this run writes in, with their ancestors.
    used_dirs: HashSet<PathBuf>,
}

/// A file of the tree, written over from its start: [`TreeFile::finish`] ends it where
/// the new text ends, whatever a recycled file held before.
pub struct TreeFile {
    file: File,
    len: u64,
    path: PathBuf,
}

impl TreeFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn finish(self) -> anyhow::Result<()> {
        self.file
            .set_len(self.len)
            .with_context(|| format!("{}: cannot write", self.path.display()))
    }
}

impl Write for TreeFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Where instance `id`'s spare tree is kept in `out`.
fn spare_path(out: &Path, id: &str) -> PathBuf {
    out.join(format!(".{id}.spare"))
}

impl RunDir {
    /// A tree to build instance `id`'s next output in (`id` is one path component):
    /// the spare when there is one and it is this user's own, else a new directory.
    pub fn claim(out: &Path, id: &str) -> anyhow::Result<RunDir> {
        let root = out.join(format!(".{id}.tmp-{}", std::process::id()));
        // Left by a run of this process that failed while writing.
        remove_any(&root).with_context(|| format!("{}: cannot remove", root.display()))?;
        let mut dir = RunDir::at(root);
        if !dir.recycle(&spare_path(out, id)) {
            std::fs::create_dir_all(out)
                .with_context(|| format!("{}: cannot create", out.display()))?;
            // Not `create_dir_all`: a link put in its place is not followed.
            std::fs::create_dir(&dir.root)
                .with_context(|| format!("{}: cannot create", dir.root.display()))?;
        }
        Ok(dir)
    }

    /// Takes the spare as this tree, if it is there and every directory in it is this
    /// user's and writable by no one else (so nothing can change in it while it is
    /// written); one that is not is put out of the way.
    fn recycle(&mut self, spare: &Path) -> bool {
        // One rename: of two processes delivering the instance, one takes the spare.
        if std::fs::rename(spare, &self.root).is_err() {
            return false;
        }
        let trusted = user().is_some_and(|user| {
            std::fs::symlink_metadata(&self.root).is_ok_and(|m| m.is_dir() && private(&m, user))
                && self.scan(PathBuf::new(), 0, user).is_ok()
        });
        if !trusted {
            self.found_files.clear();
            self.found_dirs.clear();
            if remove_any(&self.root).is_err() {
                let aside = format!("{}-discarded-{}", self.root.display(), unique());
                let _ = std::fs::rename(&self.root, aside);
            }
        }
        trusted
    }

    /// A tree at `root`, a directory that is there, written as new (nothing pruned).
    pub fn at(root: PathBuf) -> RunDir {
        RunDir {
            root,
            found_files: Vec::new(),
            found_dirs: Vec::new(),
            written: HashSet::new(),
            used_dirs: HashSet::new(),
        }
    }

    /// Directory `rel` of the tree, made where missing.
    pub fn dir(&mut self, rel: &Path) -> anyhow::Result<PathBuf> {
        let path = self.root.join(rel);
        if std::fs::create_dir_all(&path).is_err() {
            // A recycled file where this run has a directory (or its parent): replaced.
            let mut prefixes: Vec<&Path> = rel.ancestors().collect();
            prefixes.reverse();
            for p in prefixes.into_iter().map(|p| self.root.join(p)) {
                if p.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
                    remove_any(&p)?;
                }
            }
            std::fs::create_dir_all(&path)
                .with_context(|| format!("{}: cannot create", path.display()))?;
        }
        for a in rel.ancestors() {
            self.used_dirs.insert(a.to_path_buf());
        }
        Ok(path)
    }

    /// File `rel` of the tree (in a directory made with [`RunDir::dir`]), written over
    /// from its start, never opened through a link.
    pub fn file(&mut self, rel: PathBuf) -> anyhow::Result<TreeFile> {
        let path = self.root.join(&rel);
        // Not truncated on open: ext4 writes a file truncated to nothing back when it is
        // closed (its `auto_da_alloc`), which cost each delivery a flush; the old text
        // past the new is cut off by `TreeFile::finish` instead.
        let open = || {
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
        };
        // A recycled directory where this run has a file: replaced.
        let file = match open() {
            Err(e)
                if e.kind() == ErrorKind::IsADirectory || e.raw_os_error() == Some(libc::ELOOP) =>
            {
                remove_any(&path).and_then(|_| open())
            }
            opened => opened,
        }
        .with_context(|| format!("{}: cannot write", path.display()))?;
        self.written.insert(rel);
        Ok(TreeFile { file, len: 0, path })
    }

    /// Removes what the recycled tree held and this run did not write, then puts the
    /// tree in place as `out/<id>`; the tree it replaces becomes the spare.
    pub fn install(self, out: &Path, id: &str) -> anyhow::Result<PathBuf> {
        self.prune()?;
        let dest = out.join(id);
        if exchange(&self.root, &dest).is_ok() {
            retire(&self.root, &spare_path(out, id));
            return Ok(dest);
        }
        // No previous output (an instance's first run), or no exchange on this file
        // system: the old one goes first.
        if dest.symlink_metadata().is_ok() {
            remove_any(&dest).with_context(|| format!("{}: cannot replace", dest.display()))?;
        }
        std::fs::rename(&self.root, &dest)
            .with_context(|| format!("{}: cannot move into place", dest.display()))?;
        Ok(dest)
    }

    /// Lists the recycled tree's files and directories; anything else in it (a link, a
    /// device, a file linked from elsewhere, which writing over would change there too,
    /// or another user's) and anything deeper than a run writes is removed now. An error
    /// when a directory is not `user`'s own.
    fn scan(&mut self, rel: PathBuf, depth: usize, user: u32) -> std::io::Result<()> {
        for entry in std::fs::read_dir(self.root.join(&rel))? {
            let entry = entry?;
            let child = rel.join(entry.file_name());
            let meta = entry.metadata()?;
            if meta.is_dir() && depth < MAX_DEPTH {
                if !private(&meta, user) {
                    return Err(std::io::Error::other("not this user's own"));
                }
                self.scan(child.clone(), depth + 1, user)?;
                self.found_dirs.push(child);
            } else if meta.is_file() && meta.nlink() == 1 && meta.uid() == user {
                self.found_files.push(child);
            } else {
                remove_any(&self.root.join(&child))?;
            }
        }
        Ok(())
    }

    /// Removes the recycled files and directories this run did not write.
    fn prune(&self) -> anyhow::Result<()> {
        // A file replaced by a directory of this run is not there to remove.
        let stale = self
            .found_files
            .iter()
            .filter(|f| !self.written.contains(*f));
        for f in stale.filter(|f| !self.used_dirs.contains(*f)) {
            let path = self.root.join(f);
            remove_any(&path).with_context(|| format!("{}: cannot remove", path.display()))?;
        }
        // Listed children first, so each is gone before its parent; one replaced by a
        // file of this run stays.
        let stale = self
            .found_dirs
            .iter()
            .filter(|d| !self.used_dirs.contains(*d));
        for d in stale.filter(|d| !self.written.contains(*d)) {
            let path = self.root.join(d);
            remove_any(&path).with_context(|| format!("{}: cannot remove", path.display()))?;
        }
        Ok(())
    }
}

/// Swaps `a` and `b` in one step (Linux's `RENAME_EXCHANGE`); an error when `b` is
/// missing or the file system cannot.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c =
        |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: both are NUL-terminated paths that live across the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// Keeps the tree a swap took out (at `old`) as the spare when it is small; removed
/// otherwise, or when a spare is there already (another process's). Its files keep their
/// text until the instance's next delivery writes over them, so a reader that opened one
/// before this swap reads it whole unless it holds it that long. The run is delivered:
/// nothing here fails it.
fn retire(old: &Path, spare: &Path) {
    let kept = old.symlink_metadata().is_ok_and(|m| m.is_dir())
        && small(old, 0, &mut Budget::default()).unwrap_or(false)
        && std::fs::rename(old, spare).is_ok();
    if !kept {
        let _ = remove_any(old);
    }
}

/// A spare holds the disk of one more copy of its instance's output. Kept only when small:
/// a large run's inodes are few next to its objects, and its copy would be large.
const SPARE_MAX_BYTES: u64 = 4 << 20;
const SPARE_MAX_ENTRIES: usize = 512;

#[derive(Default)]
struct Budget {
    bytes: u64,
    entries: usize,
}

/// Whether the tree under `dir` is within [`SPARE_MAX_BYTES`] and [`SPARE_MAX_ENTRIES`]
/// (links are not followed).
fn small(dir: &Path, depth: usize, used: &mut Budget) -> std::io::Result<bool> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        used.entries += 1;
        used.bytes = used.bytes.saturating_add(meta.len());
        if used.entries > SPARE_MAX_ENTRIES || used.bytes > SPARE_MAX_BYTES {
            return Ok(false);
        }
        if meta.is_dir() && (depth >= MAX_DEPTH || !small(&entry.path(), depth + 1, used)?) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A suffix no other name this process makes has.
fn unique() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

/// Removes `path` whatever it is (a link itself, not what it names); nothing there is fine.
fn remove_any(path: &Path) -> std::io::Result<()> {
    match path.symlink_metadata() {
        // Nothing there, or a parent that is now a file: nothing to remove.
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("corral-run-dir-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Writes `files` (relative path, content) as one run's output of instance `i`.
    fn deliver(out: &Path, files: &[(&str, &str)]) -> PathBuf {
        let mut tree = RunDir::claim(out, "i").unwrap();
        for (rel, text) in files {
            let rel = PathBuf::from(rel);
            tree.dir(rel.parent().unwrap()).unwrap();
            let mut file = tree.file(rel).unwrap();
            file.write_all(text.as_bytes()).unwrap();
            file.finish().unwrap();
        }
        tree.install(out, "i").unwrap()
    }

    /// Every file and directory under `dir`, relative, with each file's content.
    fn listing(dir: &Path) -> Vec<(String, Option<String>)> {
        let mut all = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                if e.file_type().unwrap().is_dir() {
                    todo.push(p);
                    all.push((rel, None));
                } else {
                    all.push((rel, Some(std::fs::read_to_string(&p).unwrap())));
                }
            }
        }
        all.sort();
        all
    }

    /// The listing `items` (path, content) stand for.
    fn tree(items: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        items
            .iter()
            .map(|(path, text)| (path.to_string(), text.map(String::from)))
            .collect()
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().mode() & 0o777
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    }

    #[test]
    fn each_run_leaves_exactly_its_own_files_and_reuses_the_last_tree() {
        let out = scratch("reuse");
        let first = [
            // Longer than what the third run writes over it.
            ("summary.json", "the first run's summary"),
            ("graph/a/entities/t-0.json", "a1 a1 a1"),
            ("graph/b/relationships/r-0.json", "b1"),
        ];
        let dest = deliver(&out, &first);
        let first_listing = listing(&dest);
        // The second run: no spare yet; the first run's tree becomes it, as it was.
        deliver(
            &out,
            &[("summary.json", "2"), ("graph/a/entities/t-0.json", "a2")],
        );
        assert_eq!(names(&out), [".i.spare", "i"]);
        assert_eq!(listing(&out.join(".i.spare")), first_listing);
        // A mode no new directory gets marks the spare's directories.
        let private = std::fs::Permissions::from_mode(0o700);
        std::fs::set_permissions(out.join(".i.spare/graph/a"), private).unwrap();
        // The third builds in the first's tree, and step `b`, which this run did not
        // write, is gone with its directories.
        deliver(
            &out,
            &[
                ("summary.json", "3"),
                ("graph/a/entities/t-0.json", "a3"),
                ("graph/a/entities/t-1.json", "a3b"),
            ],
        );
        assert_eq!(mode(&dest.join("graph/a")), 0o700);
        assert_eq!(
            listing(&dest),
            tree(&[
                ("graph", None),
                ("graph/a", None),
                ("graph/a/entities", None),
                ("graph/a/entities/t-0.json", Some("a3")),
                ("graph/a/entities/t-1.json", Some("a3b")),
                ("summary.json", Some("3")),
            ])
        );
        assert_eq!(names(&out), [".i.spare", "i"]);
        let _ = std::fs::remove_dir_all(&out);
    }

    #[test]
    fn a_large_tree_is_removed_not_kept() {
        let out = scratch("large");
        let big = "x".repeat(SPARE_MAX_BYTES as usize + 1);
        deliver(&out, &[("graph/a/entities/t-0.json", &big)]);
        deliver(&out, &[("summary.json", "small")]);
        assert_eq!(names(&out), ["i"]);
        // Many small files are as large.
        let many: Vec<String> = (0..SPARE_MAX_ENTRIES)
            .map(|n| format!("graph/a/entities/t-{n}.json"))
            .collect();
        let files: Vec<(&str, &str)> = many.iter().map(|f| (f.as_str(), "{}")).collect();
        deliver(&out, &files);
        deliver(&out, &[("summary.json", "small")]);
        assert_eq!(names(&out), ["i"]);
        // A small one is kept.
        deliver(&out, &[("summary.json", "again")]);
        assert_eq!(names(&out), [".i.spare", "i"]);
        let _ = std::fs::remove_dir_all(&out);
    }

    #[test]
    fn links_in_a_spare_are_removed_never_written_through() {
        let out = scratch("links");
        let outside = out.join("outside.txt");
        std::fs::write(&outside, "keep").unwrap();
        let spare = out.join(".i.spare/graph/a/entities");
        std::fs::create_dir_all(&spare).unwrap();
        std::os::unix::fs::symlink(&outside, spare.join("t-0.json")).unwrap();
        std::os::unix::fs::symlink(&out, out.join(".i.spare/summary.json")).unwrap();
        // A file linked from outside: written over, it would change there too.
        let linked = out.join("linked.txt");
        std::fs::write(&linked, "keep too").unwrap();
        std::fs::hard_link(&linked, spare.join("t-1.json")).unwrap();
        // Kinds swapped: a directory where a file goes, a file where a directory goes.
        std::fs::create_dir_all(out.join(".i.spare/log.jsonl/x")).unwrap();
        std::fs::write(out.join(".i.spare/graph/b"), "a file").unwrap();
        // Deeper than any run writes: not followed, removed whole.
        std::fs::create_dir_all(out.join(".i.spare/graph/a/entities/x/y")).unwrap();
        let dest = deliver(
            &out,
            &[
                ("graph/a/entities/t-0.json", "new"),
                ("graph/a/entities/t-1.json", "new 1"),
                ("graph/b/entities/t-0.json", "b"),
                ("log.jsonl", "log"),
            ],
        );
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(&linked).unwrap(), "keep too");
        assert_eq!(
            listing(&dest),
            tree(&[
                ("graph", None),
                ("graph/a", None),
                ("graph/a/entities", None),
                ("graph/a/entities/t-0.json", Some("new")),
                ("graph/a/entities/t-1.json", Some("new 1")),
                ("graph/b", None),
                ("graph/b/entities", None),
                ("graph/b/entities/t-0.json", Some("b")),
                ("log.jsonl", Some("log")),
            ])
        );
        assert!(
            !dest
                .join("graph/a/entities/t-0.json")
                .symlink_metadata()
                .unwrap()
                .is_symlink()
        );
        let _ = std::fs::remove_dir_all(&out);
    }

    #[test]
    fn a_spare_that_is_a_link_and_a_dest_that_is_a_file_are_replaced() {
        let out = scratch("odd");
        let elsewhere = scratch("odd-elsewhere");
        std::fs::write(elsewhere.join("summary.json"), "theirs").unwrap();
        std::os::unix::fs::symlink(&elsewhere, out.join(".i.spare")).unwrap();
        std::fs::write(out.join("i"), "not a directory").unwrap();
        let dest = deliver(&out, &[("summary.json", "ours")]);
        assert_eq!(listing(&dest), tree(&[("summary.json", Some("ours"))]));
        assert_eq!(
            std::fs::read_to_string(elsewhere.join("summary.json")).unwrap(),
            "theirs"
        );
        // The file the swap took out is not kept as a spare.
        assert_eq!(names(&out), ["i"]);
        let _ = std::fs::remove_dir_all(&out);
        let _ = std::fs::remove_dir_all(&elsewhere);
    }

    #[test]
    fn a_spare_others_could_change_is_not_written_in() {
        let out = scratch("shared");
        let spare = out.join(".i.spare");
        std::fs::create_dir_all(spare.join("graph")).unwrap();
        std::fs::write(spare.join("summary.json"), "old").unwrap();
        // Anyone may write in it: a link could replace a directory while it is written.
        std::fs::set_permissions(spare.join("graph"), std::fs::Permissions::from_mode(0o777))
            .unwrap();
        let dest = deliver(
            &out,
            &[("summary.json", "new"), ("graph/a/entities/t-0.json", "a")],
        );
        // Built fresh: its `graph` is not the spare's.
        assert_eq!(mode(&dest.join("graph")) & 0o022, 0);
        assert_eq!(
            std::fs::read_to_string(dest.join("summary.json")).unwrap(),
            "new"
        );
        assert_eq!(names(&out), ["i"]);
        let _ = std::fs::remove_dir_all(&out);
    }

    #[test]
    fn a_tree_left_by_a_failed_write_is_cleared_first() {
        let out = scratch("left");
        let left = out.join(format!(".i.tmp-{}", std::process::id()));
        std::fs::create_dir_all(left.join("graph/stale")).unwrap();
        let dest = deliver(&out, &[("summary.json", "1")]);
        assert_eq!(listing(&dest), tree(&[("summary.json", Some("1"))]));
        assert_eq!(names(&out), ["i"]);
        let _ = std::fs::remove_dir_all(&out);
    }
}
