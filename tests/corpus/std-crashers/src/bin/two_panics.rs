// Two different panics in one program: which one depends on the first argument.
#[inline(never)]
fn parse_header(text: &str) -> u32 {
    text.trim().parse().expect("header must be a number")
}

#[inline(never)]
fn checked_ratio(a: u32, b: u32) -> u32 {
    if b == 0 {
        panic!("ratio of {} to zero", a);
    }
    a / b
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    if mode == "header" {
        println!("{}", parse_header("12x"));
    } else {
        println!("{}", checked_ratio(7, mode.len() as u32 * 0));
    }
}
