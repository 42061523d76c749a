//! kustomize's root-only load restrictor and bounded reads: the one check
//! every local file of a build passes (see [`crate::loader::Root::read`]).

use std::io::Read;
use std::path::Path;

use crate::Error;
use crate::yaml::limits::MAX_FILE_BYTES;

/// Refuses `real` (the file `joined` names, links resolved) unless it lies
/// in or below the root directory `root` (itself resolved).
pub(crate) fn check(root: &Path, joined: &Path, real: &Path) -> Result<(), Error> {
    if real.starts_with(root) {
        return Ok(());
    }
    Err(Error::invalid(
        joined,
        format!(
            "security; file '{}' is not in or below '{}' (root-only load restrictor)",
            real.display(),
            root.display()
        ),
    ))
}

/// Reads a file, refusing one past [`MAX_FILE_BYTES`] without reading it all
/// (a FIFO or `/dev/zero` behind a name never ends).
pub(crate) fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let hint = file.metadata().map(|m| m.len()).unwrap_or(0).min(MAX_FILE_BYTES);
    let mut bytes = Vec::with_capacity(hint as usize);
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB; refused",
            MAX_FILE_BYTES >> 20
        )));
    }
    Ok(bytes)
}
