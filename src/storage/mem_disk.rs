//! [`MemDisk`]: an in-memory, deterministic [`Disk`] for tests.
//!
//! Every file keeps two images: `current` (what reads see) and `synced` (what
//! survived the last `fdatasync`). [`MemDisk::crash`] throws the unsynced
//! part away, [`MemDisk::crash_tearing`] keeps only some of its bytes (a torn
//! write), [`MemDisk::crash_blocks`] keeps any chosen subset of its blocks, [`MemDisk::corrupt`] flips a byte at rest, and
//! [`MemDisk::fail_writes`] / [`MemDisk::fail_syncs`] make later calls fail
//! with an errno (EIO, ENOSPC...), and [`MemDisk::fail_after`] lets a given
//! number of mutating operations succeed and fails every later one (a fault,
//! or the process dying, at any chosen point of a flush or a recovery). Alignment rules are enforced like O_DIRECT
//! so misuse fails in unit tests, not only on a real disk.
//!
//! Simplification: directory entries are always durable (creating or
//! renaming a file survives a crash without `sync_dir`).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::disk::{is_aligned, misaligned, Disk, DiskFile, IoBuffer, BLOCK_BYTES};

/// A heap buffer standing in for DMA memory.
#[derive(Debug)]
pub struct MemBuffer(Vec<u8>);

impl IoBuffer for MemBuffer {
    fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
    fn trim_to(&mut self, len: usize) {
        assert!(len <= self.0.len(), "trim_to grows the buffer");
        self.0.truncate(len);
    }
}

#[derive(Default, Debug)]
struct FileImage {
    current: Vec<u8>,
    synced: Vec<u8>,
}

#[derive(Default, Debug)]
struct Faults {
    write_errno: Option<i32>,
    sync_errno: Option<i32>,
    /// `fdatasync` never completes (a stuck device), so a test can drop a
    /// flush while it waits.
    syncs_stall: bool,
    /// (mutating operations still allowed, errno once they are used up).
    countdown: Option<(u64, i32)>,
}

impl Faults {
    /// Spends one mutating operation of the countdown, if one is armed.
    fn spend(&mut self) -> io::Result<()> {
        match &mut self.countdown {
            Some((0, errno)) => Err(io::Error::from_raw_os_error(*errno)),
            Some((left, _)) => {
                *left -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

#[derive(Default, Debug)]
struct MemFs {
    files: BTreeMap<PathBuf, Rc<RefCell<FileImage>>>,
    dirs: BTreeSet<PathBuf>,
    faults: Faults,
}

/// In-memory disk; clones share the same file system. `!Send`.
#[derive(Clone, Default, Debug)]
pub struct MemDisk {
    fs: Rc<RefCell<MemFs>>,
}

/// An open [`MemDisk`] file. Like a Unix fd it still works after removal.
#[derive(Debug)]
pub struct MemFile {
    image: Rc<RefCell<FileImage>>,
    fs: Rc<RefCell<MemFs>>,
}

impl MemDisk {
    /// An empty file system.
    pub fn new() -> Self {
        Self::default()
    }

    /// Simulates power loss: every file reverts to its last synced image.
    pub fn crash(&self) {
        self.crash_tearing(0);
    }

    /// Simulates power loss during a write: every file reverts to its synced
    /// image except the first `keep_bytes` bytes of its unsynced changes
    /// (counted from the first byte that differs), which made it to disk.
    pub fn crash_tearing(&self, keep_bytes: usize) {
        for image in self.fs.borrow().files.values() {
            let mut image = image.borrow_mut();
            let torn = torn_image(&image.synced, &image.current, keep_bytes);
            image.current = torn.clone();
            image.synced = torn;
        }
    }

    /// Simulates power loss during writes that reached the device in any
    /// order: each block of [`BLOCK_BYTES`] that differs from the synced
    /// image keeps its new content if `keep(path, block_index)` says so, and
    /// each file keeps its new size if `keep(path, u64::MAX)` says so.
    pub fn crash_blocks(&self, mut keep: impl FnMut(&Path, u64) -> bool) {
        for (path, image) in self.fs.borrow().files.iter() {
            let mut image = image.borrow_mut();
            let len = match keep(path, u64::MAX) {
                true => image.current.len(),
                false => image.synced.len(),
            };
            let mut kept = image.synced.clone();
            kept.resize(len, 0);
            for (block, start) in (0..len).step_by(BLOCK_BYTES).enumerate() {
                let end = (start + BLOCK_BYTES).min(len);
                let new = image.current.get(start..end.min(image.current.len()));
                let Some(new) = new.filter(|new| kept[start..start + new.len()] != **new) else {
                    continue;
                };
                if keep(path, block as u64) {
                    kept[start..start + new.len()].copy_from_slice(new);
                }
            }
            image.current = kept.clone();
            image.synced = kept;
        }
    }

    /// Makes every later write fail with `errno` (`None` clears it).
    pub fn fail_writes(&self, errno: Option<i32>) {
        self.fs.borrow_mut().faults.write_errno = errno;
    }

    /// Makes every later `fdatasync` fail with `errno` (`None` clears it).
    pub fn fail_syncs(&self, errno: Option<i32>) {
        self.fs.borrow_mut().faults.sync_errno = errno;
    }

    /// Makes every later `fdatasync` wait forever (until
    /// [`MemDisk::clear_faults`] and a new call), like a stuck device.
    pub fn stall_syncs(&self) {
        self.fs.borrow_mut().faults.syncs_stall = true;
    }

    /// Lets the next `ops` mutating operations (write, fdatasync, truncate,
    /// preallocate, rename, remove) succeed, then fails every later one with
    /// `errno` until [`MemDisk::clear_faults`].
    pub fn fail_after(&self, ops: u64, errno: i32) {
        self.fs.borrow_mut().faults.countdown = Some((ops, errno));
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.fs.borrow_mut().faults = Faults::default();
    }

    /// Fails the call if the fault countdown is used up, else spends one.
    fn spend(&self) -> io::Result<()> {
        self.fs.borrow_mut().faults.spend()
    }

    /// Flips bits (`xor`) of the byte at `pos` of `path`, at rest (both
    /// images). Returns false if there is no such byte.
    pub fn corrupt(&self, path: &Path, pos: u64, xor: u8) -> bool {
        let Some(image) = self.fs.borrow().files.get(path).cloned() else {
            return false;
        };
        let mut image = image.borrow_mut();
        let image = &mut *image;
        let pos = pos as usize;
        let mut hit = false;
        for bytes in [&mut image.current, &mut image.synced] {
            if let Some(byte) = bytes.get_mut(pos) {
                *byte ^= xor;
                hit = true;
            }
        }
        hit
    }

    /// What reads of `path` currently see.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let image = self.fs.borrow().files.get(path).cloned()?;
        let bytes = image.borrow().current.clone();
        Some(bytes)
    }

    /// Replaces `path`'s content (synced), creating the file.
    pub fn set_contents(&self, path: &Path, bytes: &[u8]) {
        let image = FileImage {
            current: bytes.to_vec(),
            synced: bytes.to_vec(),
        };
        let mut fs = self.fs.borrow_mut();
        fs.files
            .insert(path.to_path_buf(), Rc::new(RefCell::new(image)));
    }

    fn parent_exists(fs: &MemFs, path: &Path) -> bool {
        match path.parent() {
            None => true,
            Some(p) if p.as_os_str().is_empty() => true,
            Some(p) => fs.dirs.contains(p),
        }
    }
}

/// `synced` overlaid with the first `keep` bytes of what `current` changed.
fn torn_image(synced: &[u8], current: &[u8], keep: usize) -> Vec<u8> {
    let common = synced.len().min(current.len());
    let first_diff = (0..common)
        .find(|&i| synced[i] != current[i])
        .unwrap_or(common);
    let kept_end = current.len().min(first_diff.saturating_add(keep));
    let mut torn = synced.to_vec();
    if torn.len() < kept_end {
        torn.resize(kept_end, 0);
    }
    torn[first_diff..kept_end].copy_from_slice(&current[first_diff..kept_end]);
    torn
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found", path.display()),
    )
}

/// What [`MemDisk::alloc_write_buffer`] fills buffers with.
const WRITE_BUFFER_POISON: u8 = 0xA5;

impl Disk for MemDisk {
    type Buffer = MemBuffer;
    type File = MemFile;

    fn alloc_buffer(&self, len: usize) -> MemBuffer {
        assert!(is_aligned(len as u64), "buffer length {len} not aligned");
        MemBuffer(vec![0; len])
    }

    /// Poisoned rather than zeroed: a byte of it that reaches a file
    /// without being written or zero-padded shows up as corruption in the
    /// tests and the simulation (DmaDisk leaves such buffers as the
    /// allocator had them).
    fn alloc_write_buffer(&self, len: usize) -> MemBuffer {
        assert!(is_aligned(len as u64), "buffer length {len} not aligned");
        MemBuffer(vec![WRITE_BUFFER_POISON; len])
    }

    async fn open(&self, path: &Path) -> io::Result<MemFile> {
        let mut fs = self.fs.borrow_mut();
        if !Self::parent_exists(&fs, path) {
            return Err(not_found(path));
        }
        let image = fs.files.entry(path.to_path_buf()).or_default().clone();
        Ok(MemFile {
            image,
            fs: self.fs.clone(),
        })
    }

    async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        for dir in path.ancestors() {
            if !dir.as_os_str().is_empty() {
                fs.dirs.insert(dir.to_path_buf());
            }
        }
        Ok(())
    }

    async fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let fs = self.fs.borrow();
        if !fs.dirs.contains(path) {
            return Err(not_found(path));
        }
        let files = fs.files.keys().map(|p| p.as_path());
        let dirs = fs.dirs.iter().map(|p| p.as_path());
        let mut names: Vec<String> = files
            .chain(dirs)
            .filter(|p| p.parent() == Some(path))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    async fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.spend()?;
        match self.fs.borrow_mut().files.remove(path) {
            Some(_) => Ok(()),
            None => Err(not_found(path)),
        }
    }

    async fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        if !fs.dirs.contains(path) {
            return Err(not_found(path));
        }
        fs.files.retain(|p, _| !p.starts_with(path));
        fs.dirs.retain(|p| !p.starts_with(path));
        Ok(())
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.spend()?;
        let mut fs = self.fs.borrow_mut();
        let image = fs.files.remove(from).ok_or_else(|| not_found(from))?;
        fs.files.insert(to.to_path_buf(), image);
        Ok(())
    }

    async fn sync_dir(&self, path: &Path) -> io::Result<()> {
        match self.fs.borrow().dirs.contains(path) {
            true => Ok(()),
            false => Err(not_found(path)),
        }
    }

    async fn exists(&self, path: &Path) -> io::Result<bool> {
        let fs = self.fs.borrow();
        Ok(fs.files.contains_key(path) || fs.dirs.contains(path))
    }
}

impl MemFile {
    /// Fails with the errno `errno` picks, else spends one countdown step.
    fn injected(&self, errno: impl Fn(&Faults) -> Option<i32>) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        match errno(&fs.faults) {
            Some(errno) => Err(io::Error::from_raw_os_error(errno)),
            None => fs.faults.spend(),
        }
    }
}

impl DiskFile for MemFile {
    type Buffer = MemBuffer;
    type ReadBuffer = Vec<u8>;

    async fn write_at(&self, buf: Rc<MemBuffer>, pos: u64) -> io::Result<usize> {
        let bytes = buf.as_bytes();
        if !is_aligned(pos) || !is_aligned(bytes.len() as u64) {
            return Err(misaligned("write_at", pos, bytes.len()));
        }
        self.injected(|f| f.write_errno)?;
        let mut image = self.image.borrow_mut();
        let start = pos as usize;
        let end = start + bytes.len();
        if image.current.len() < end {
            image.current.resize(end, 0);
        }
        image.current[start..end].copy_from_slice(bytes);
        Ok(bytes.len())
    }

    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Vec<u8>> {
        if !is_aligned(pos) || !is_aligned(len as u64) {
            return Err(misaligned("read_at", pos, len));
        }
        let image = self.image.borrow();
        let start = (pos as usize).min(image.current.len());
        let end = start.saturating_add(len).min(image.current.len());
        Ok(image.current[start..end].to_vec())
    }

    async fn fdatasync(&self) -> io::Result<()> {
        if self.fs.borrow().faults.syncs_stall {
            futures::future::pending::<()>().await;
        }
        self.injected(|f| f.sync_errno)?;
        let mut image = self.image.borrow_mut();
        image.synced = image.current.clone();
        Ok(())
    }

    async fn truncate(&self, len: u64) -> io::Result<()> {
        self.injected(|_| None)?;
        self.image.borrow_mut().current.resize(len as usize, 0);
        Ok(())
    }

    async fn preallocate(&self, len: u64) -> io::Result<()> {
        self.injected(|_| None)?;
        let mut image = self.image.borrow_mut();
        if (image.current.len() as u64) < len {
            image.current.resize(len as usize, 0);
        }
        Ok(())
    }

    async fn size(&self) -> io::Result<u64> {
        Ok(self.image.borrow().current.len() as u64)
    }
}
