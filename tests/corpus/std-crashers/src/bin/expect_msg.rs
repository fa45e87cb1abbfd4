use std::env;

#[inline(never)]
fn load_config() -> String {
    env::var("SYMTOOL_CORPUS_NO_SUCH_VARIABLE").ok().expect("config path must be set")
}

fn main() {
    println!("config = {}", load_config());
}
