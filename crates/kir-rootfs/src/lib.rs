//! Container and image filesystems as trees, read in place: no mounting, no extraction, no link
//! ever followed. `source` recognizes the inputs (OCI layouts, image archives, layer tars,
//! exports, folders, overlay upperdirs, kubelet checkpoint archives); `tree` applies layers with
//! the OCI image spec's whiteouts; `elf` says what an executable is while its bytes stream by.
//!
//! Architecture invariants: nothing here writes to disk except the temporary copy of a
//! compressed outer archive; only regular files are opened; memory grows with the number of
//! files, not their size (contents are hashed as they stream and never kept).

pub mod elf;
pub mod source;
pub mod tree;

pub use elf::{ElfInfo, sniff};
pub use source::{
    ContainerForm, ContentObserver, Error, ImageForm, TarIndex, decompress, open_container, open_image,
    open_image_observed, read_folder, read_layer,
};
pub use tree::{Entry, Kind, Layer, Problem, Tree, normalize};
