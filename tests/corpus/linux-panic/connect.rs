// A std program for Linux that panics (built by tests/test_std_crashes.py with the
// machine's rustc, panic = "abort"); its panic line is the oracle.
#[inline(never)]
fn connect(host: &str, port: u16, attempt: i64) {
    if attempt > 2 {
        panic!("could not connect to {}:{} after {} attempts", host, port, attempt);
    }
}

fn main() {
    let n = std::env::args().count() as i64 + 2;
    connect("db.internal", 5432, n);
}
