//! How long `claimline rules import` (and `evaluate --rules`) takes to
//! read CMS's files, and its peak memory. `cargo bench --bench import`
//! prints, per file or set, the rows read and kept, the wall time and the
//! peak RSS of a process that reads only that (each in a child process of
//! its own, so one reading's peak does not hide the next's).
//!
//! - CMS's real files, whole, from `CMS_DIR` (default `../shared/cms`,
//!   where the workspace keeps CMS's files; see its README): PPRRVU2025_Oct
//!   (2.5 MB), the 2026 Q2 MUE table (917 KB), GPCI2025. A missing one is
//!   reported and skipped.
//! - A PTP quarter of real size, GENERATED for this bench (CMS's parts are
//!   tens of MB each and not in reach): four tab-separated parts in CMS's
//!   layout, `PTP_ROWS_PER_PART` rows each (default 1,000,000), with
//!   random codes, dates, indicators and a Latin-1 rationale; 1 row in
//!   2,000 pairs two catalogue codes, so some rows are kept. Written once
//!   under target/bench-import/ and reused.
//!
//! Targets (issue 20): a whole PPRRVU file in 0.5 s, the whole MUE file in
//! 0.3 s, the four PTP parts in 10 s; memory bounded by the rows kept, not
//! by the file.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use claimline::cms::{read_file, Given};
use claimline::domain::Rules;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--one") {
        return one(&args[1..]);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let cms = std::env::var_os("CMS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/cms"));
    let rows_per_part: usize = std::env::var("PTP_ROWS_PER_PART")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    println!("file(s)\tMB\trows read\trows kept\twall s\tpeak RSS MiB");
    for name in [
        "PPRRVU2025_Oct.csv",
        "MCR_MUE_PractitionerServices_Eff_04-01-2026.csv",
        "GPCI2025.csv",
    ] {
        let path = cms.join(name);
        if path.exists() {
            child(name, &[path]);
        } else {
            println!(
                "{name}\tnot found in {} (set CMS_DIR): skipped",
                cms.display()
            );
        }
    }
    let parts = generate_ptp(&root.join("target/bench-import"), rows_per_part);
    child(
        &format!("PTP quarter, 4 parts x {rows_per_part} rows (GENERATED)"),
        &parts,
    );
    child("PTP part f1 alone (GENERATED)", &parts[..1]);
}

/// Runs this binary with `--one` on `files` and prints its line.
fn child(label: &str, files: &[PathBuf]) {
    let out = Command::new(std::env::current_exe().expect("own path"))
        .arg("--one")
        .args(files)
        .output()
        .expect("run the bench child");
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        panic!("{label}: {}{}", text, String::from_utf8_lossy(&out.stderr));
    }
    let mb: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    println!("{label}\t{:.1}\t{}", mb as f64 / 1e6, text.trim_end());
}

/// In the child: reads `files` as `rules import` does, prints rows read,
/// rows kept, the wall time and the peak RSS.
fn one(files: &[String]) {
    let rules = Rules::builtin();
    let start = Instant::now();
    let (mut read, mut kept) = (0, 0);
    for f in files {
        let file = read_file(Path::new(f), Given::default(), rules).expect("the file reads");
        read += file.rows_read;
        kept += file.table.rows.len();
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{read}\t{kept}\t{secs:.3}\t{:.1}", peak_rss_mib());
}

/// VmHWM of this process, from /proc.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Four parts of a generated v32.3 (2026 Q4) PTP quarter in CMS's layout.
fn generate_ptp(dir: &Path, rows: usize) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).expect("bench dir");
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        // xorshift64*: repeatable, no dependency.
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let therapy = [
        "97110", "97112", "97116", "97140", "97150", "97530", "97535", "97161",
    ];
    (1..=4)
        .map(|part| {
            let path = dir.join(format!("ccipra-v323r0-f{part}.GENERATED-{rows}.txt"));
            if path.exists() {
                return path;
            }
            let tmp = path.with_extension("partial");
            let mut w = BufWriter::new(std::fs::File::create(&tmp).expect("bench file"));
            w.write_all(b"CPT codes and descriptions only are copyright American Medical Association. GENERATED FOR A BENCHMARK: not CMS's rows.\t\t\t\t\t\t\r\n").unwrap();
            w.write_all(b"Column1/Column2 Edits\t\t\t\t\t\t\r\n").unwrap();
            w.write_all(b"Column 1\tColumn 2\t*=in existence\tEffective\tDeletion\tModifier\tPTP Edit Rationale\r\n").unwrap();
            w.write_all(b"\t\tprior to 1996\tDate\tDate\t0=not allowed\t\r\n").unwrap();
            w.write_all(b"\t\t\t\t*=no data\t1=allowed\t\r\n").unwrap();
            w.write_all(b"\t\t\t\t\t9=not applicable\t\r\n").unwrap();
            for _ in 0..rows {
                let r = next();
                let (c1, c2) = if r % 2000 == 0 {
                    (
                        therapy[(r >> 8) as usize % therapy.len()].to_owned(),
                        therapy[(r >> 16) as usize % therapy.len()].to_owned(),
                    )
                } else {
                    (
                        format!("{:05}", 10_000 + (r >> 8) % 89_999),
                        format!("{:05}", 10_000 + (r >> 24) % 89_999),
                    )
                };
                let effective = 19_960_101 + (r >> 40) % 30 * 10_000;
                let deletion = if r % 7 == 0 {
                    format!("{}", effective + 10_000)
                } else {
                    "*".to_owned()
                };
                let prior = if r % 5 == 0 { "*" } else { "" };
                let indicator = [b'0', b'1', b'1', b'9'][(r >> 4) as usize % 4] as char;
                write!(w, "{c1}\t{c2}\t{prior}\t{effective}\t{deletion}\t{indicator}\t").unwrap();
                // A Latin-1 byte, as CMS's rationale column may hold.
                w.write_all(b"Standards of medical / surgical practice \xe9\r\n").unwrap();
            }
            w.flush().unwrap();
            drop(w);
            std::fs::rename(&tmp, &path).expect("bench file in place");
            path
        })
        .collect()
}
