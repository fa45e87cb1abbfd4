//! An access violation four calls deep, with an inlined function in a middle frame:
//! mainCRTStartup -> level1 -> level2 -> [inlined middle] -> level3 -> minicore::poke.
#![feature(no_core)]
#![no_core]
#![no_main]

extern crate minicore;

use minicore::{answer, poke};

#[inline(never)]
fn level3(p: *mut i32) -> i32 {
    poke(p, answer(3));
    answer(4)
}

#[inline(always)]
fn middle(p: *mut i32, v: i32) -> i32 {
    let r = level3(p);
    r + answer(v)
}

#[inline(never)]
fn level2(p: *mut i32) -> i32 {
    middle(p, 2) + answer(5)
}

#[inline(never)]
fn level1(p: *mut i32) -> i32 {
    let r = level2(p);
    answer(r)
}

#[no_mangle]
pub extern "C" fn mainCRTStartup() -> i32 {
    let r = level1(0 as *mut i32);
    answer(r)
}
