//! Recursion 40 levels deep, then an access violation at the bottom.
#![feature(no_core)]
#![no_core]
#![no_main]

extern crate minicore;

use minicore::{answer, poke};

#[inline(never)]
fn recurse(p: *mut i32, n: i32) -> i32 {
    match n {
        40 => {
            poke(p, n);
            n
        }
        _ => answer(recurse(p, n + 1)),
    }
}

#[no_mangle]
pub extern "C" fn mainCRTStartup() -> i32 {
    let r = recurse(0 as *mut i32, 0);
    answer(r)
}
