//! The zip containers Keras (`.keras`) and PyTorch (`.pt`) write, read
//! from bytes already in memory. Both tools store their members
//! uncompressed, so statectl reads stored members only: a compressed one
//! is refused before a byte is inflated, which is what keeps a zip bomb
//! harmless.

use std::io::{Cursor, Read};

use anyhow::{anyhow, bail, Result};
use zip::{CompressionMethod, ZipArchive};

/// More members than any model file has; a central directory claiming
/// millions is refused before it is walked.
const MAX_MEMBERS: usize = 100_000;

pub struct Zipped<'a> {
    archive: ZipArchive<Cursor<&'a [u8]>>,
    names: Vec<String>,
}

impl<'a> Zipped<'a> {
    /// Opens the zip and checks every member is stored, not compressed.
    pub fn open(bytes: &'a [u8]) -> Result<Zipped<'a>> {
        let mut archive = ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
            anyhow!("it is not a readable zip ({e}); the file may be truncated: save it again")
        })?;
        if archive.len() > MAX_MEMBERS {
            bail!(
                "its zip directory lists {} members (at most {MAX_MEMBERS} are read); this is not a model file",
                archive.len()
            );
        }
        let mut names = Vec::with_capacity(archive.len());
        for index in 0..archive.len() {
            let member = archive.by_index_raw(index).map_err(|e| {
                anyhow!("its zip member {index} cannot be read ({e}); save the file again")
            })?;
            let name = member
                .name()
                .map_err(|e| {
                    anyhow!(
                        "its zip member {index} has an unreadable name ({e}); save the file again"
                    )
                })?
                .into_owned();
            if member.compression() != CompressionMethod::Stored {
                bail!(
                    "its zip member '{}' is compressed ({}); statectl reads members stored as Keras and PyTorch write them: save the model again with keras or torch.save (not re-zipped)",
                    name,
                    member.compression()
                );
            }
            names.push(name);
        }
        Ok(Zipped { archive, names })
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn has(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// The size the directory gives a member (stored: its bytes in the file).
    pub fn size(&mut self, name: &str) -> Result<u64> {
        Ok(self
            .archive
            .by_name(name)
            .map_err(|e| anyhow!("its zip member '{name}' cannot be read ({e})"))?
            .size())
    }

    /// A member's bytes, refused when it is larger than `limit`.
    pub fn read(&mut self, name: &str, limit: u64) -> Result<Vec<u8>> {
        let member = self
            .archive
            .by_name(name)
            .map_err(|e| anyhow!("its zip member '{name}' cannot be read ({e})"))?;
        if member.size() > limit {
            bail!(
                "its zip member '{name}' is {} bytes, more than the {limit} statectl reads for it; this is not a model file it can import",
                member.size()
            );
        }
        let mut bytes = Vec::with_capacity(member.size() as usize);
        member
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| {
                anyhow!("its zip member '{name}' is damaged ({e}); save the file again")
            })?;
        Ok(bytes)
    }
}
