#[derive(Clone, Copy)]
enum State {
    Idle,
    Running,
    Done,
}

#[inline(never)]
fn next(s: State, code: i32) -> State {
    match s {
        State::Idle => State::Running,
        State::Running => State::Done,
        State::Done => unreachable!("no state after Done (code {}, flag {}, mark {})", code, true, 'x'),
    }
}

fn main() {
    let mut s = State::Idle;
    for i in 0..(std::env::args().count() as i32 + 3) {
        s = next(s, i);
    }
    let _ = s;
}
