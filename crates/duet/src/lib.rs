//! duet (work in progress).
#![no_std]
