#[inline(never)]
fn validate(retries: u32, name: &str) {
    assert!(retries < 3, "too many retries for {}: {} (limit {})", name, retries, 3);
}

fn main() {
    let retries = std::env::args().count() as u32 + 6;
    validate(retries, "fetch");
}
