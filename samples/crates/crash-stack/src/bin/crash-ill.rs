//! An illegal instruction (ud2, STATUS_ILLEGAL_INSTRUCTION C000001D) two calls deep.
#![feature(no_core, intrinsics, rustc_attrs)]
#![no_core]
#![no_main]
#![allow(internal_features)]

extern crate minicore;

use minicore::answer;

#[rustc_intrinsic]
fn abort() -> !;

#[inline(never)]
fn bad_op(v: i32) -> i32 {
    match v {
        42 => abort(),
        _ => v,
    }
}

#[inline(never)]
fn run(seed: i32) -> i32 {
    let r = bad_op(answer(seed));
    answer(r)
}

#[no_mangle]
pub extern "C" fn mainCRTStartup() -> i32 {
    let r = run(1);
    answer(r)
}
