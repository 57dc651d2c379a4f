//! duet-codec (work in progress).
#![no_std]
