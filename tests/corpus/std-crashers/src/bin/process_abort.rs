#[inline(never)]
fn give_up(reason: &str) {
    eprintln!("giving up: {}", reason);
    std::process::abort();
}

fn main() {
    if std::env::args().count() < 5 {
        give_up("state is inconsistent");
    }
}
