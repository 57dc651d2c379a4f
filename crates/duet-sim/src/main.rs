//! duet-sim: runs duet's dual-core programs on the host (work in progress).
fn main() {
    println!("duet-sim: nothing here yet");
}
