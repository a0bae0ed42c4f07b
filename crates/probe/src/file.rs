//! `FILE_CHECK`: read a tracked file's value.

use health::eval::parse_file_value;
use health::FileCheck;
use tokio::io::AsyncReadExt;

/// The most of a tracked file that is read; keepalived's files hold one number.
pub const MAX_FILE: u64 = 4096;

/// Reads the tracked file of `check` (its first [`MAX_FILE`] bytes) and parses it as
/// keepalived does: a missing, unreadable or unparsable file counts as 0. Feed the
/// value to `health::Service::set_file_value`.
pub async fn read_tracked_file(check: &FileCheck) -> i64 {
    let mut content = String::new();
    let read = async {
        let f = tokio::fs::File::open(&check.file).await?;
        f.take(MAX_FILE).read_to_string(&mut content).await
    };
    match read.await {
        Ok(_) => parse_file_value(Some(&content)),
        Err(_) => parse_file_value(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_values() {
        struct Tmp(std::path::PathBuf);
        impl Drop for Tmp {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let dir = Tmp(std::env::temp_dir().join(format!("probe-file-{}", std::process::id())));
        std::fs::create_dir_all(&dir.0).unwrap();
        let path = dir.0.join("weight");
        let check = FileCheck {
            file: path.to_string_lossy().into_owned(),
            weight: 0,
            reverse: false,
        };
        assert_eq!(read_tracked_file(&check).await, 0, "missing file");
        std::fs::write(&path, " 42\n").unwrap();
        assert_eq!(read_tracked_file(&check).await, 42);
        std::fs::write(&path, "-7").unwrap();
        assert_eq!(read_tracked_file(&check).await, -7);
        std::fs::write(&path, "drain").unwrap();
        assert_eq!(read_tracked_file(&check).await, 0);
    }
}
