#[inline(never)]
fn port(text: &str) -> u16 {
    text.parse::<u16>().unwrap()
}

fn main() {
    let text = if std::env::args().count() > 5 { "80" } else { "80x" };
    println!("port = {}", port(text));
}
