#[inline(never)]
fn window(data: &[u8], start: usize, len: usize) -> &[u8] {
    &data[start..start + len]
}

fn main() {
    let data = vec![7u8; 10];
    let len = std::env::args().count() * 16;
    println!("{:?}", window(&data, 4, len));
}
