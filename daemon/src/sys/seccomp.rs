//! Raw calls used to install seccomp filters.
