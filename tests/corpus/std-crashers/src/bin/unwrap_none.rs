use std::collections::HashMap;

#[inline(never)]
fn lookup(m: &HashMap<String, u32>, k: &str) -> u32 {
    *m.get(k).unwrap()
}

fn main() {
    let mut m = HashMap::new();
    m.insert("alpha".to_string(), 1u32);
    println!("alpha = {}", lookup(&m, "alpha"));
    println!("beta = {}", lookup(&m, "beta"));
}
