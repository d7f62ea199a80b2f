//! The content-addressed image store: plate crops and overview pictures that arrive inside a
//! vendor's message (Genetec's base64 JPEGs, Rekor's `plate_crop_jpeg`) or beside it (Plate
//! Recognizer's multipart upload) are written here once, and reads carry only their reference.
//!
//! A reference is `sha256:<64 lowercase hex digits>` of the image bytes. Storing the same picture
//! twice (a vendor retrying a webhook, a replayed topic) writes nothing new and yields the same
//! reference, so references are stable across replays and archives never disagree with the store.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The prefix of every reference this store hands out.
pub const IMAGE_REF_PREFIX: &str = "sha256:";

#[derive(Debug, thiserror::Error)]
pub enum ImageStoreError {
    #[error("image store {root}: cannot write {path}: {error}")]
    Write {
        root: PathBuf,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("image is empty")]
    Empty,
}

/// What kind of picture, for the file extension and for whoever serves it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Jpeg,
    Png,
    /// Anything else: kept, served as octet-stream.
    Unknown,
}

impl ImageFormat {
    /// Sniffs the format from the first bytes; vendors' declared content types are unreliable.
    pub fn sniff(bytes: &[u8]) -> Self {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Self::Jpeg
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Self::Png
        } else {
            Self::Unknown
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Unknown => "bin",
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Unknown => "application/octet-stream",
        }
    }
}

/// A reference to a stored image: the SHA-256 of its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImageRef([u8; 32]);

impl ImageRef {
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Parses `sha256:<hex>`; `None` for anything else (a URL, a vendor's own id).
    pub fn parse(text: &str) -> Option<Self> {
        let hex = text.strip_prefix(IMAGE_REF_PREFIX)?;
        if hex.len() != 64 {
            return None;
        }
        let mut digest = [0u8; 32];
        for (index, byte) in digest.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(index * 2..index * 2 + 2)?, 16).ok()?;
        }
        Some(Self(digest))
    }

    pub fn hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = String::with_capacity(64);
        for byte in self.0 {
            hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
            hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
        hex
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{IMAGE_REF_PREFIX}{}", self.hex())
    }
}

/// Where decoders and the ingest server put images. Implementations must be idempotent: storing
/// the same bytes again returns the same reference.
pub trait ImageStore: Send + Sync {
    fn put(&self, bytes: &[u8]) -> Result<ImageRef, ImageStoreError>;
}

/// Images as files under a directory: `<root>/<first two hex digits>/<hex>.<ext>`. The fan-out
/// directory keeps any one directory to a few thousand entries at city scale.
#[derive(Debug, Clone)]
pub struct DirectoryImageStore {
    root: PathBuf,
}

impl DirectoryImageStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_for(&self, reference: &ImageRef, format: ImageFormat) -> PathBuf {
        let hex = reference.hex();
        self.root
            .join(&hex[..2])
            .join(format!("{hex}.{}", format.extension()))
    }

    /// The stored file of a reference and its format, if the store holds it.
    pub fn locate(&self, reference: &ImageRef) -> Option<(PathBuf, ImageFormat)> {
        [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::Unknown]
            .into_iter()
            .map(|format| (self.path_for(reference, format), format))
            .find(|(path, _)| path.is_file())
    }
}

impl ImageStore for DirectoryImageStore {
    fn put(&self, bytes: &[u8]) -> Result<ImageRef, ImageStoreError> {
        if bytes.is_empty() {
            return Err(ImageStoreError::Empty);
        }
        let reference = ImageRef::of(bytes);
        let path = self.path_for(&reference, ImageFormat::sniff(bytes));
        if path.is_file() {
            return Ok(reference);
        }
        let write_error = |path: &Path, error| ImageStoreError::Write {
            root: self.root.clone(),
            path: path.to_owned(),
            error,
        };
        let directory = path.parent().unwrap_or(&self.root);
        fs::create_dir_all(directory).map_err(|error| write_error(directory, error))?;
        // Write to a unique temporary name, then rename: a reader never sees half an image, and two
        // writers of the same image both end with the same complete file.
        let mut temporary =
            tempfile_in(directory).map_err(|error| write_error(directory, error))?;
        temporary
            .1
            .write_all(bytes)
            .and_then(|()| temporary.1.sync_all())
            .map_err(|error| write_error(&temporary.0, error))?;
        fs::rename(&temporary.0, &path).map_err(|error| write_error(&path, error))?;
        Ok(reference)
    }
}

fn tempfile_in(directory: &Path) -> std::io::Result<(PathBuf, fs::File)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        ".tmp-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let path = directory.join(name);
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    Ok((path, file))
}

/// Keeps images in memory: for benches and tests, where disk writes would measure the disk.
#[derive(Debug, Default)]
pub struct MemoryImageStore {
    images: std::sync::Mutex<std::collections::HashMap<ImageRef, Vec<u8>>>,
}

impl MemoryImageStore {
    pub fn get(&self, reference: &ImageRef) -> Option<Vec<u8>> {
        self.images
            .lock()
            .ok()
            .and_then(|images| images.get(reference).cloned())
    }

    pub fn len(&self) -> usize {
        self.images.lock().map(|images| images.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ImageStore for MemoryImageStore {
    fn put(&self, bytes: &[u8]) -> Result<ImageRef, ImageStoreError> {
        if bytes.is_empty() {
            return Err(ImageStoreError::Empty);
        }
        let reference = ImageRef::of(bytes);
        if let Ok(mut images) = self.images.lock() {
            images.entry(reference).or_insert_with(|| bytes.to_vec());
        }
        Ok(reference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JPEG: &[u8] = &[
        0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 0xFF, 0xD9,
    ];

    #[test]
    fn storing_twice_gives_one_file_and_one_reference() {
        let directory = tempfile::tempdir().unwrap();
        let store = DirectoryImageStore::new(directory.path());
        let first = store.put(JPEG).unwrap();
        let second = store.put(JPEG).unwrap();
        assert_eq!(first, second);
        let (path, format) = store.locate(&first).unwrap();
        assert_eq!(format, ImageFormat::Jpeg);
        assert_eq!(fs::read(&path).unwrap(), JPEG);
        let files: Vec<_> = walk(directory.path());
        assert_eq!(files.len(), 1, "{files:?}");
    }

    #[test]
    fn references_round_trip_and_other_text_is_not_one() {
        let reference = ImageRef::of(b"abc");
        assert_eq!(
            reference.to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(ImageRef::parse(&reference.to_string()), Some(reference));
        assert_eq!(ImageRef::parse("https://cam/1.jpg"), None);
        assert_eq!(ImageRef::parse("sha256:zz"), None);
    }

    #[test]
    fn empty_images_are_refused() {
        assert!(matches!(
            MemoryImageStore::default().put(b""),
            Err(ImageStoreError::Empty)
        ));
    }

    fn walk(root: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for entry in fs::read_dir(root).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(walk(&path));
            } else {
                files.push(path);
            }
        }
        files
    }
}
