//! Rebuilds the crate when a migration file changes: `embed_migrations!` reads `../migrations`
//! at compile time, and cargo does not see that dependency on its own.

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
