//! Peak resident memory of this process, from Linux's `/proc/self/status` (`VmHWM`), and its
//! reset (`/proc/self/clear_refs`), so each run of a bench can report its own peak. Both are
//! `None` / `false` where `/proc` does not offer them.

/// The peak resident set size (`VmHWM`) in bytes since the start or the last [`reset_peak`].
pub fn peak_resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    vm_hwm_bytes(&status)
}

/// Resets the peak to the current resident size (Linux 4.0 and later); false when refused.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// `VmHWM:   123456 kB` of a `/proc/<pid>/status` text, in bytes.
fn vm_hwm_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Bytes as MiB or GiB with one decimal (`-` when unknown).
pub fn human(bytes: Option<u64>) -> String {
    match bytes {
        None => "-".to_owned(),
        Some(b) if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        Some(b) => format!("{:.0} MiB", b as f64 / (1u64 << 20) as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_hwm_in_bytes() {
        let status = "Name:\tbattles\nVmPeak:\t  999 kB\nVmHWM:\t   13532 kB\nVmRSS:\t 100 kB\n";
        assert_eq!(vm_hwm_bytes(status), Some(13532 * 1024));
        assert_eq!(vm_hwm_bytes("Name:\tx\n"), None);
    }

    #[test]
    fn this_process_has_a_peak() {
        if std::path::Path::new("/proc/self/status").exists() {
            assert!(peak_resident_bytes().unwrap() > 0);
        }
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(None), "-");
        assert_eq!(human(Some(300 << 20)), "300 MiB");
        assert_eq!(human(Some(3 << 30)), "3.0 GiB");
    }
}
