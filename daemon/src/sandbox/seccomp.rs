//! Seccomp policies: JSON data in seccomp/, compiled to BPF once.
