#[inline(never)]
fn check(level: i32) -> Result<i32, &'static str> {
    if level > 3 { Err("level too high") } else { Ok(level) }
}

#[inline(never)]
fn configure(level: i32) -> i32 {
    check(level).unwrap()
}

fn main() {
    let level = std::env::args().count() as i32 + 4;
    println!("level = {}", configure(level));
}
