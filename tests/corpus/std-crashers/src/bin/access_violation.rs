#[inline(never)]
fn write_through(p: *mut u32) {
    unsafe { std::ptr::write_volatile(p, 0xdead) }
}

fn main() {
    println!("about to write through a bad pointer");
    let p = (std::env::args().count() * 0x10) as *mut u32;
    write_through(p);
}
