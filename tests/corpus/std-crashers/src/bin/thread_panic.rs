use std::sync::{Arc, Mutex};
use std::thread;

#[inline(never)]
fn worker(id: usize, shared: Arc<Mutex<Vec<usize>>>) {
    shared.lock().unwrap().push(id);
    if id == 2 {
        panic!("worker {} failed", id);
    }
}

fn main() {
    let shared = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..4)
        .map(|id| {
            let s = shared.clone();
            thread::Builder::new().name(format!("worker-{}", id)).spawn(move || worker(id, s)).unwrap()
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    println!("done: {:?}", shared.lock().unwrap());
}
