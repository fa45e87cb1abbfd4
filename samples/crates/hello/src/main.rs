//! A well-behaved binary: returns the answer as its exit code.
#![feature(no_core)]
#![no_core]
#![no_main]

extern crate minicore;

#[no_mangle]
pub extern "C" fn mainCRTStartup() -> i32 {
    minicore::answer(1)
}
