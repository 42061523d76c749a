//! `replacements`: copy a field of one object into fields of others.

use crate::target::{Accumulator, Target};
use crate::{Error, Result};

pub fn run(t: &Target, _ra: &mut Accumulator) -> Result<()> {
    if t.kust.replacements.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(&t.file, "field 'replacements' is not implemented yet"))
}
