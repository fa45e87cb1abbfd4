#[inline(never)]
fn average(total: u32, count: u32) -> u32 {
    total / count
}

fn main() {
    let count = std::env::args().count() as u32 - 1;
    println!("average = {}", average(100, count));
}
