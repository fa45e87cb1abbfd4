#[inline(never)]
fn grow(x: u8) -> u8 {
    x + 200
}

fn main() {
    let x = std::env::args().count() as u8 * 100;
    println!("grown = {}", grow(x));
}
