//! Link flags for the `rsvpd` binary.
//!
//! Relative relocations packed (`DT_RELR`, glibc ≥ 2.36, GNU ld ≥ 2.38): a
//! position-independent executable otherwise carries 1.6 MB of relocation
//! records that the loader reads once at start, and those pages then stay
//! resident for the life of the daemon (idle RSS −0.5 to −1 MiB, measured in
//! `BENCHMARKS.md`, milestone 6). Hand-written because it is one line of
//! linker flags; the tests' binaries are linked as before.

fn main() {
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    let gnu = std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if linux && gnu {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
