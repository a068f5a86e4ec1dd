//! Compiles the variation shim (shim/vary.c) into a shared object that the library embeds:
//! the second run of a dual build preloads it. It is built with the system C compiler
//! because it must be a small, dependency-free object loaded into every build process.
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let source = PathBuf::from("shim/vary.c");
    println!("cargo:rerun-if-changed={}", source.display());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("hermetic-vary.so");
    let compiler = cc::Build::new().get_compiler();
    let status = Command::new(compiler.path())
        .args([
            "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-o",
        ])
        .arg(&out)
        .arg(&source)
        .arg("-ldl")
        .status()
        .unwrap_or_else(|err| {
            panic!(
                "failed to run the C compiler {}: {err}",
                compiler.path().display()
            )
        });
    assert!(
        status.success(),
        "failed to compile {} (a C compiler is needed to build hermetic)",
        source.display()
    );
}
