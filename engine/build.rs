//! Two things hermetic's library embeds are made here:
//! - the variation shim (shim/vary.c), compiled into a shared object that the second run of
//!   a dual build preloads. It is built with the system C compiler because it must be a
//!   small, dependency-free object loaded into every build process;
//! - the built-in seccomp policies (../seccomp/*.json), compiled to BPF by the same
//!   compiler the library uses at run time (the `hermetic-seccomp` crate), so that no
//!   sandbox started on the defaults pays for parsing and compiling them (about half a
//!   millisecond).
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    compile_shim(&out_dir);
    precompile_policies(&out_dir);
}

fn compile_shim(out_dir: &Path) {
    let source = PathBuf::from("shim/vary.c");
    println!("cargo:rerun-if-changed={}", source.display());
    let out = out_dir.join("hermetic-vary.so");
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

/// Writes `builtin_seccomp.rs`: `PRECOMPILED`, (name, SHA-256 of the file, program) for
/// every policy in ../seccomp. Empty when the target is not x86_64, whose numbers the
/// policies use (loading one then fails as it would at run time).
fn precompile_policies(out_dir: &Path) {
    // The compiler's own changes rebuild this script, as a build dependency.
    println!("cargo:rerun-if-changed=../seccomp");
    let mut policies: Vec<PathBuf> = std::fs::read_dir("../seccomp")
        .expect("read ../seccomp")
        .map(|entry| entry.expect("list ../seccomp").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    policies.sort();
    let x86_64 = std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|arch| arch == "x86_64");
    let mut generated = String::from(
        "/// (name, SHA-256 of the policy file, program) of every built-in policy, compiled when\n\
         /// hermetic was built (engine/build.rs).\n\
         const PRECOMPILED: &[(&str, &str, &[BpfInstruction])] = &[\n",
    );
    for path in policies.iter().filter(|_| x86_64) {
        let name = path.file_stem().expect("a file name").to_string_lossy();
        let text = std::fs::read(path).expect("read a policy");
        let program = hermetic_seccomp::program(&text).unwrap_or_else(|err| {
            panic!("the built-in policy {} is broken: {err:?}", path.display())
        });
        let sha256: String = <sha2::Sha256 as sha2::Digest>::digest(&text)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        generated.push_str(&format!("    (\"{name}\", \"{sha256}\", &[\n"));
        for hermetic_seccomp::BpfInstruction { code, jt, jf, k } in program {
            generated.push_str(&format!(
                "        BpfInstruction {{ code: {code}, jt: {jt}, jf: {jf}, k: {k} }},\n"
            ));
        }
        generated.push_str("    ]),\n");
    }
    generated.push_str("];\n");
    std::fs::write(out_dir.join("builtin_seccomp.rs"), generated)
        .expect("write builtin_seccomp.rs");
}
