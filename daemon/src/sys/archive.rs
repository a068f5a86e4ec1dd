//! Raw calls used by the archive packer and strict extractor.
