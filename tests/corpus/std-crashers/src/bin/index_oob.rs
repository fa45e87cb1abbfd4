#[inline(never)]
fn pick(v: &[u64], i: usize) -> u64 {
    v[i]
}

fn main() {
    let v: Vec<u64> = (0..10).map(|x| x * x).collect();
    let i = std::env::args().count() + 41; // not const-foldable
    println!("sum = {}", v.iter().sum::<u64>());
    println!("v[{}] = {}", i, pick(&v, i));
}
