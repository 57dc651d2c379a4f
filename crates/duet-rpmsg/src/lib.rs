//! duet-rpmsg (work in progress).
#![no_std]
