#[inline(never)]
fn connect(host: &str, port: u16, attempt: i64) {
    if attempt > 2 {
        panic!("could not connect to {}:{} after {} attempts, {} left", host, port, attempt, -1i8);
    }
}

fn main() {
    let n = std::env::args().count() as i64 + 2;
    connect("db.internal", 5432, n);
}
