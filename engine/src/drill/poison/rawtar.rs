//! Tar streams member by member, including what no well-behaved writer produces: the
//! drill's hostile archives (`..` paths, hardlinks, devices, PAX tricks, ...), and the
//! cache tests' (tests/cache/poison.rs). Written here because the `tar` crate's builder
//! refuses most of them; it is used only for the headers.
use std::io::{self, Write};

/// mtime of every member: 1980-01-01, as the packer's default.
const MTIME: u64 = 315_532_800;

#[derive(Default)]
pub struct RawTar(Vec<u8>);

impl RawTar {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// A member with a raw name, typeflag, mode, data and link name, owned by root.
    pub fn member(self, typeflag: u8, name: &[u8], mode: u32, data: &[u8], link: &[u8]) -> Self {
        self.member_owned_by(typeflag, name, mode, data, link, 0)
    }

    /// A regular file owned by `uid` (and the group of that number).
    pub fn owned_by(self, uid: u64, name: &[u8], data: &[u8]) -> Self {
        self.member_owned_by(b'0', name, 0o644, data, b"", uid)
    }

    fn member_owned_by(
        mut self,
        typeflag: u8,
        name: &[u8],
        mode: u32,
        data: &[u8],
        link: &[u8],
        uid: u64,
    ) -> Self {
        let mut header = tar::Header::new_ustar();
        let old = header.as_old_mut();
        old.name[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
        old.linkname[..link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_uid(uid);
        header.set_gid(uid);
        header.set_mtime(MTIME);
        header.set_entry_type(tar::EntryType::new(typeflag));
        header.set_cksum();
        self.0.extend_from_slice(header.as_bytes());
        self.0.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.0.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    pub fn dir(self, name: &str) -> Self {
        self.member(b'5', name.as_bytes(), 0o755, b"", b"")
    }

    pub fn file(self, name: &str, mode: u32, data: &[u8]) -> Self {
        self.member(b'0', name.as_bytes(), mode, data, b"")
    }

    pub fn symlink(self, name: &str, target: &str) -> Self {
        self.member(b'2', name.as_bytes(), 0o777, b"", target.as_bytes())
    }

    /// A PAX extended header with these records, for the member that follows.
    pub fn pax(self, records: &[(&str, &[u8])]) -> Self {
        let mut data = Vec::new();
        for (key, value) in records {
            // The record's length counts its own digits: grow until it is a fixed point.
            let body = key.len() + value.len() + 3;
            let mut len = body + 1;
            while len.to_string().len() + body != len {
                len = len.to_string().len() + body;
            }
            data.extend_from_slice(format!("{len} {key}=").as_bytes());
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        self.member(b'x', b"PaxHeaders/x", 0o644, &data, b"")
    }

    /// The stream so far with the end-of-archive marker.
    pub fn end(mut self) -> Vec<u8> {
        self.0.extend(std::iter::repeat_n(0u8, 1024));
        self.0
    }

    /// The stream so far, without an end marker.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// The members of a complete tar stream, without its end marker and padding.
    pub fn members_of(tar: &[u8]) -> io::Result<Self> {
        let mut end = 0;
        let mut archive = tar::Archive::new(tar);
        for entry in archive.entries()?.raw(true) {
            let entry = entry?;
            let size = entry.header().entry_size()?;
            end = entry.raw_file_position() + size.div_ceil(512) * 512;
        }
        let end = usize::try_from(end).map_err(io::Error::other)?;
        Ok(Self(tar[..end].to_vec()))
    }
}

/// zstd with a content checksum, as the packer writes it.
pub fn zstd(tar: &[u8]) -> io::Result<Vec<u8>> {
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3)?;
    encoder.include_checksum(true)?;
    encoder.write_all(tar)?;
    encoder.finish()
}
