//! Rebuilds the relay when anything under `www/` changes, including files that are added or
//! removed: the page is embedded in the binary, and cargo only tracks files it already knows.

fn main() {
    println!("cargo:rerun-if-changed=../www");
}
