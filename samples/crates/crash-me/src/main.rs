//! Crashes with an access violation on purpose: a binary whose name has a dash,
//! so cargo names its PDB `crash_me.pdb` (the case symtool verify must handle).
#![feature(no_core)]
#![no_core]
#![no_main]

extern crate minicore;

#[inline(never)]
fn crash_now(p: *mut i32) {
    minicore::poke(p, minicore::answer(1));
}

#[no_mangle]
pub extern "C" fn mainCRTStartup() -> i32 {
    crash_now(0 as *mut i32);
    0
}
