//! External tensor data: reading it safely and writing the sidecar.
//!
//! A model is untrusted input, and its external `location`s are paths it chooses. A location is
//! accepted only when it is relative, has no `..` component, and resolves (symlinks followed)
//! to a file inside the model's folder; its `offset` and `length` must lie inside that file.
//! Each file is memory-mapped once, and tensors are slices of the map.

use rustc_hash::FxHashMap as HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use onnx_rewrite_proto::{StringStringEntryProto, TensorProto};

use crate::pending::PendingPayload;

/// Why a tensor's external data was refused.
#[derive(Debug, thiserror::Error)]
pub enum ExternalDataError {
    #[error("external data has no `location`")]
    MissingLocation,
    #[error("external data location '{0}' is not a plain relative path")]
    NotRelative(String),
    #[error("external data location '{0}' contains '..'")]
    ParentComponent(String),
    #[error("external data location '{location}' resolves to {}, outside the model's folder", resolved.display())]
    OutsideModelFolder { location: String, resolved: PathBuf },
    #[error("cannot open external data file '{location}': {source}")]
    Open {
        location: String,
        #[source]
        source: io::Error,
    },
    #[error("external data key '{key}' has value '{value}', which is not a byte count")]
    BadNumber { key: String, value: String },
    #[error(
        "external data '{location}' offset {offset} + length {length} runs past the end of the file ({file_len} bytes)"
    )]
    OutOfBounds {
        location: String,
        offset: u64,
        length: u64,
        file_len: u64,
    },
    #[error(
        "the model has external data, but was not loaded from a file, so there is no folder to read it from"
    )]
    NoModelFolder,
}

/// The `location`, `offset` and `length` of an external tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalRef {
    pub location: String,
    pub offset: u64,
    pub length: Option<u64>,
}

impl ExternalRef {
    /// Reads the reference out of a tensor's `external_data` entries.
    pub fn of(tensor: &TensorProto) -> Result<Self, ExternalDataError> {
        let mut location = None;
        let mut offset = 0;
        let mut length = None;
        for entry in &tensor.external_data {
            let number = || {
                entry
                    .value()
                    .parse::<u64>()
                    .map_err(|_| ExternalDataError::BadNumber {
                        key: entry.key().to_owned(),
                        value: entry.value().to_owned(),
                    })
            };
            match entry.key() {
                "location" => location = Some(entry.value().to_owned()),
                "offset" => offset = number()?,
                "length" => length = Some(number()?),
                _ => {}
            }
        }
        let location = location.ok_or(ExternalDataError::MissingLocation)?;
        Ok(Self {
            location,
            offset,
            length,
        })
    }
}

/// Checks a location's spelling: relative, no `..`, no root, no drive prefix, no NUL.
pub fn check_location(location: &str) -> Result<&Path, ExternalDataError> {
    if location.is_empty() || location.contains('\0') {
        return Err(ExternalDataError::NotRelative(location.to_owned()));
    }
    let path = Path::new(location);
    for component in path.components() {
        match component {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => {
                return Err(ExternalDataError::ParentComponent(location.to_owned()));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(ExternalDataError::NotRelative(location.to_owned()));
            }
        }
    }
    // A Windows-style absolute path or `..` spelled with backslashes is a single odd file name
    // on Unix; refuse it anyway so a model means the same thing everywhere.
    if location.contains('\\')
        && (location.contains("..")
            || location.starts_with('\\')
            || location.get(1..2) == Some(":"))
    {
        return Err(ExternalDataError::NotRelative(location.to_owned()));
    }
    Ok(path)
}

/// The external files of one model, each mapped at most once.
pub struct ExternalFiles {
    folder: Option<PathBuf>,
    mapped: HashMap<PathBuf, Bytes>,
}

impl ExternalFiles {
    /// `model_folder` is the folder of the model file (`None` for a model given as bytes: then
    /// any external tensor is an error).
    pub fn new(model_folder: Option<&Path>) -> Self {
        Self {
            folder: model_folder.map(Path::to_path_buf),
            mapped: HashMap::default(),
        }
    }

    /// The payload of an external tensor, after every check.
    pub fn read(&mut self, tensor: &TensorProto) -> Result<Bytes, ExternalDataError> {
        let reference = ExternalRef::of(tensor)?;
        let relative = check_location(&reference.location)?;
        let folder = self
            .folder
            .as_ref()
            .ok_or(ExternalDataError::NoModelFolder)?;
        let open_error = |source| ExternalDataError::Open {
            location: reference.location.clone(),
            source,
        };
        let canonical_folder = folder.canonicalize().map_err(open_error)?;
        let resolved = folder.join(relative).canonicalize().map_err(open_error)?;
        if !resolved.starts_with(&canonical_folder) {
            return Err(ExternalDataError::OutsideModelFolder {
                location: reference.location,
                resolved,
            });
        }
        let file = match self.mapped.get(&resolved) {
            Some(bytes) => bytes.clone(),
            None => {
                let bytes = map_file(&resolved).map_err(open_error)?;
                self.mapped.insert(resolved, bytes.clone());
                bytes
            }
        };
        let file_len = file.len() as u64;
        let length = reference
            .length
            .unwrap_or_else(|| file_len.saturating_sub(reference.offset));
        let end = reference
            .offset
            .checked_add(length)
            .filter(|end| *end <= file_len);
        let Some(end) = end else {
            return Err(ExternalDataError::OutOfBounds {
                location: reference.location,
                offset: reference.offset,
                length,
                file_len,
            });
        };
        // Both bounds are at most `file_len`, which is a `usize` (the map's length).
        Ok(file.slice(reference.offset as usize..end as usize))
    }
}

/// Maps a whole file read-only (an empty file becomes empty bytes: it cannot be mapped).
pub fn map_file(path: &Path) -> io::Result<Bytes> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(Bytes::new());
    }
    // SAFETY: the map is read-only. Another process truncating the file while we read it would
    // fault (SIGBUS), as for every mmap-based reader (onnxruntime included); we never write to
    // input files, and outputs are written to fresh temporary files, never over a mapped one.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    Ok(Bytes::from_owner(map))
}

/// Tensors of at least this size start at a multiple of [`ALIGNMENT`] in the sidecar, so that
/// runtimes can map them directly (onnx's own writer uses the same threshold and granularity).
pub const ALIGN_THRESHOLD: u64 = 1 << 20;
pub const ALIGNMENT: u64 = 1 << 16;

/// Appends tensor payloads to a sidecar file and rewrites the tensors to point at them.
pub struct SidecarWriter<W: Write> {
    out: BufWriter<W>,
    location: String,
    offset: u64,
}

impl<W: Write> SidecarWriter<W> {
    /// `location` is what the saved tensors record: the sidecar's name relative to the model.
    pub fn new(out: W, location: String) -> Self {
        Self {
            out: BufWriter::with_capacity(1 << 20, out),
            location,
            offset: 0,
        }
    }

    /// Writes `tensor`'s raw payload to the sidecar and turns the tensor into a reference to it.
    /// Entries other than location/offset/length (a checksum, say) are kept: the bytes are the same.
    pub fn externalize(&mut self, tensor: &mut TensorProto, payload: &[u8]) -> io::Result<()> {
        self.externalize_with(tensor, payload.len() as u64, |out| out.write_all(payload))
    }

    /// Like [`SidecarWriter::externalize`], the bytes computed as they are written.
    pub(crate) fn externalize_pending(
        &mut self,
        tensor: &mut TensorProto,
        payload: &PendingPayload,
    ) -> io::Result<()>
    where
        W: Send,
    {
        self.externalize_with(tensor, payload.len() as u64, |out| payload.write_to(out))
    }

    fn externalize_with(
        &mut self,
        tensor: &mut TensorProto,
        len: u64,
        write: impl FnOnce(&mut BufWriter<W>) -> io::Result<()>,
    ) -> io::Result<()> {
        if len >= ALIGN_THRESHOLD {
            let padding = self.offset.next_multiple_of(ALIGNMENT) - self.offset;
            io::copy(&mut io::repeat(0).take(padding), &mut self.out)?;
            self.offset += padding;
        }
        write(&mut self.out)?;
        let kept: Vec<StringStringEntryProto> = tensor
            .external_data
            .drain(..)
            .filter(|e| !matches!(e.key(), "location" | "offset" | "length"))
            .collect();
        let entry = |key: &str, value: String| StringStringEntryProto {
            key: Some(key.to_owned()),
            value: Some(value),
        };
        tensor.external_data = vec![
            entry("location", self.location.clone()),
            entry("offset", self.offset.to_string()),
            entry("length", len.to_string()),
        ];
        tensor.external_data.extend(kept);
        tensor.data_location =
            Some(onnx_rewrite_proto::tensor_proto::DataLocation::External as i32);
        tensor.raw_data = None;
        self.offset += len;
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.offset
    }

    pub fn is_empty(&self) -> bool {
        self.offset == 0
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(self) -> io::Result<W> {
        self.out
            .into_inner()
            .map_err(io::IntoInnerError::into_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_must_be_plain_relative_paths() {
        assert!(check_location("weights.bin").is_ok());
        assert!(check_location("sub/weights.bin").is_ok());
        assert!(check_location("./weights.bin").is_ok());
        for bad in [
            "",
            "/etc/passwd",
            "../secret",
            "a/../../b",
            "a\0b",
            "..\\x",
            "C:\\x",
            "\\\\server\\share",
        ] {
            assert!(check_location(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_out_of_the_folder_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"0123456789").unwrap();
        let folder = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), folder.path().join("link"))
            .unwrap();
        std::fs::write(folder.path().join("inside"), b"0123456789").unwrap();
        let tensor = |location: &str, offset: &str, length: &str| TensorProto {
            external_data: vec![
                StringStringEntryProto {
                    key: Some("location".into()),
                    value: Some(location.into()),
                },
                StringStringEntryProto {
                    key: Some("offset".into()),
                    value: Some(offset.into()),
                },
                StringStringEntryProto {
                    key: Some("length".into()),
                    value: Some(length.into()),
                },
            ],
            ..Default::default()
        };
        let mut files = ExternalFiles::new(Some(folder.path()));
        assert!(matches!(
            files.read(&tensor("link", "0", "4")),
            Err(ExternalDataError::OutsideModelFolder { .. })
        ));
        assert_eq!(
            &files.read(&tensor("inside", "2", "4")).unwrap()[..],
            b"2345"
        );
        assert!(matches!(
            files.read(&tensor("inside", "8", "4")),
            Err(ExternalDataError::OutOfBounds { .. })
        ));
        assert!(matches!(
            files.read(&tensor("inside", "18446744073709551615", "2")),
            Err(ExternalDataError::OutOfBounds { .. })
        ));
        assert!(matches!(
            files.read(&tensor("inside", "x", "2")),
            Err(ExternalDataError::BadNumber { .. })
        ));
        assert!(matches!(
            files.read(&tensor("missing", "0", "2")),
            Err(ExternalDataError::Open { .. })
        ));
    }
}
